import Foundation
import NIOCore
import OCPPAuditRedaction
import Yams

/// `audit:`: on when the section is there (and `enabled` is not false).
extension ConfigurationReader {
    mutating func readAudit(_ node: Node?) -> AuditConfiguration? {
        guard let node, let map = mapping(node, "audit") else { return nil }
        checkKeys(
            map, "audit",
            allowed: [
                "enabled", "dir", "payloads", "pseudonymKey", "pseudonymKeyFile", "signingKey", "checkpointInterval",
                "rotate", "retention", "onBackpressure", "queue", "queueBytes", "node",
            ])
        if boolean(map["enabled"], "audit.enabled") == false { return nil }
        guard let dirNode = map["dir"] else {
            fail("audit.dir", node, "required key is missing: the directory the audit log is written to")
            return nil
        }
        guard let directory = path(dirNode, "audit.dir") else { return nil }
        // The keys live beside the log's directory, not in it: a copy of the log handed to an auditor carries
        // neither the signing key nor the pseudonym key.
        let parent = (directory as NSString).deletingLastPathComponent
        var pseudonymKey = AuditConfiguration.PseudonymKey.file(
            (parent as NSString).appendingPathComponent(
                "audit-pseudonym.key"))
        if map["pseudonymKey"] != nil && map["pseudonymKeyFile"] != nil {
            fail("audit.pseudonymKeyFile", map["pseudonymKeyFile"], "give pseudonymKey or pseudonymKeyFile, not both")
        }
        if let keyNode = map["pseudonymKey"], let text = string(keyNode, "audit.pseudonymKey", required: true) {
            if text.utf8.count < 16 {
                fail(
                    "audit.pseudonymKey", keyNode,
                    "expected at least 16 characters (a short key lets anyone recompute the pseudonyms), got \(text.utf8.count)"
                )
            }
            pseudonymKey = .text(text)
        }
        if let fileNode = map["pseudonymKeyFile"], let file = path(fileNode, "audit.pseudonymKeyFile") {
            pseudonymKey = .file(file)
        }
        let signingKey =
            map["signingKey"].flatMap { path($0, "audit.signingKey") }
            ?? (parent as NSString).appendingPathComponent("audit-signing.key")
        let nodeName =
            map["node"].flatMap { string($0, "audit.node", required: true) } ?? ProcessInfo.processInfo.hostName
        var audit = AuditConfiguration(
            directory: directory, pseudonymKey: pseudonymKey, signingKey: signingKey, node: nodeName)
        audit.payloads = enumeration(map["payloads"], "audit.payloads", AuditPayloadMode.self) ?? audit.payloads
        audit.checkpointInterval =
            duration(map["checkpointInterval"], "audit.checkpointInterval", positive: true) ?? audit.checkpointInterval
        if let rotate = map["rotate"], let rotateMap = mapping(rotate, "audit.rotate") {
            checkKeys(rotateMap, "audit.rotate", allowed: ["maxBytes", "maxAge"])
            audit.rotateMaxBytes =
                byteSize(rotateMap["maxBytes"], "audit.rotate.maxBytes", range: 4096...(1 << 40))
                ?? audit.rotateMaxBytes
            audit.rotateMaxAge =
                duration(rotateMap["maxAge"], "audit.rotate.maxAge", positive: true) ?? audit.rotateMaxAge
        }
        audit.retention = duration(map["retention"], "audit.retention", positive: true)
        audit.onBackpressure =
            enumeration(map["onBackpressure"], "audit.onBackpressure", AuditBackpressure.self) ?? audit.onBackpressure
        audit.queueRecords = integer(map["queue"], "audit.queue", range: 64...16_777_216) ?? audit.queueRecords
        audit.queueBytes =
            byteSize(map["queueBytes"], "audit.queueBytes", range: (1 << 20)...(1 << 36)) ?? audit.queueBytes
        return audit
    }

    /// A size such as `256MiB`, `64KiB`, `1GiB`, `10MB` or a plain number of bytes, within `range`.
    mutating func byteSize(_ node: Node?, _ key: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        let expected = "expected a size such as 64KiB, 256MiB or 1GiB (\(range.lowerBound) bytes or more)"
        guard case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) else {
            if case .scalar = node { return nil }
            fail(key, node, "\(expected), got \(describe(node))")
            return nil
        }
        guard let bytes = ByteSizeText.parse(text), range.contains(bytes) else {
            fail(key, node, "\(expected), got \(quoted(text, node: node))")
            return nil
        }
        return bytes
    }
}

/// Size text as written in configuration files: a whole number with an optional unit (B, KB, MB, GB, KiB, MiB,
/// GiB, TiB).
public enum ByteSizeText {
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, factor: Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("KB", 1000),
            ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int(number), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit.factor)
            return overflow ? nil : product
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }
}
