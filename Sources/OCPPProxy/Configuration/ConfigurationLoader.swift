import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPRules
import Yams

/// Reads a YAML configuration file and validates all of it, collecting every problem before it fails.
public struct ConfigurationLoader {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads and validates the file at `path`.
    public func load(path: String) throws(ConfigurationError) -> ProxyConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(issues: [
                ConfigurationIssue(
                    keyPath: "", message: "cannot read configuration file \(path): \(Self.reason(error))")
            ])
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try load(yaml: text, file: path, baseDirectory: directory.isEmpty ? "." : directory)
    }

    /// Validates YAML text; relative paths in it are taken relative to `baseDirectory`.
    public func load(yaml: String, file: String, baseDirectory: String) throws(ConfigurationError) -> ProxyConfiguration
    {
        let root: Node?
        switch YAMLReader.compose(yaml) {
        case .success(let node): root = node
        case .failure(let failure): throw ConfigurationError(issues: [Self.syntaxIssue(failure, file: file)])
        }
        var reader = ConfigurationReader(file: file, baseDirectory: baseDirectory, environment: environment)
        let configuration = reader.readProxy(root)
        if let configuration, reader.issues.isEmpty { return configuration }
        throw ConfigurationError(issues: reader.issues)
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
            underlying.domain == NSPOSIXErrorDomain, let raw = Int32(exactly: underlying.code),
            let code = POSIXErrorCode(rawValue: raw)
        {
            return String(cString: strerror(code.rawValue))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }

    static func syntaxIssue(_ failure: YAMLReader.Failure, file: String) -> ConfigurationIssue {
        let what = [failure.context, failure.problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
        switch failure.kind {
        case .syntax:
            return ConfigurationIssue(
                keyPath: "", message: "YAML syntax error: \(what)", file: file, line: failure.line)
        case .structure:
            return ConfigurationIssue(keyPath: "", message: "YAML error: \(what)", file: file, line: failure.line)
        case .duplicateKeys(let duplicates):
            return ConfigurationIssue(
                keyPath: "", message: "key appears twice in one mapping: \(duplicates.joined(separator: ", "))",
                file: file, line: failure.line)
        case .unreadable:
            return ConfigurationIssue(
                keyPath: "", message: "cannot read the file as YAML: \(failure.problem)", file: file)
        case .other:
            return ConfigurationIssue(keyPath: "", message: "YAML error: \(failure.error)", file: file)
        case .unexpected:
            return ConfigurationIssue(keyPath: "", message: failure.error, file: file)
        }
    }
}

/// Walks the configuration's nodes (read by ``YAMLReader``), recording one ``ConfigurationIssue`` per problem and
/// carrying on.
struct ConfigurationReader {
    let file: String
    let baseDirectory: String
    let environment: [String: String]
    var issues: [ConfigurationIssue] = []
    /// The upstreams' names once read, for `chargers[].upstream` (nil: not read, so not checked).
    var upstreamNames: [String]?

    /// A duration as a configuration file writes it: `5s`, `1.5s`, `250ms`.
    static func seconds(_ amount: TimeAmount) -> String {
        let nanoseconds = amount.nanoseconds
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(Double(nanoseconds) / 1e9)s"
    }

    // MARK: The document

    mutating func readProxy(_ root: Node?) -> ProxyConfiguration? {
        guard let root else {
            fail("", root, "the configuration file is empty; expected a mapping with at least listeners and upstream")
            return nil
        }
        guard let top = mapping(root, "") else { return nil }
        checkKeys(
            top, "",
            allowed: [
                "listeners", "upstream", "duplicateIdentity", "rules", "state", "admin", "limits", "keepalive",
                "logging", "shutdown", "chargers", "lockout", "soap", "models",
                "audit", "overload",
                "upstreamOutage", "upstreams", "routing", "shadow", "eventLoops",
            ])
        let listeners = readListeners(top["listeners"])
        let upstreams = readUpstreams(one: top["upstream"], several: top["upstreams"])
        upstreamNames = upstreams?.map(\.name)
        let routing = readRouting(top["routing"], upstreams: upstreams)
        let duplicate =
            enumeration(top["duplicateIdentity"], "duplicateIdentity", DuplicateIdentityPolicy.self) ?? .replace
        let rules = top["rules"].flatMap { path($0, "rules") }
        var statePath: String?
        var seqNoBlock: Int?
        var checkpointInterval: TimeAmount?
        if let state = top["state"], let stateMap = mapping(state, "state") {
            checkKeys(stateMap, "state", allowed: ["sqlite", "seqNoBlock", "checkpointInterval"])
            statePath = stateMap["sqlite"].flatMap { path($0, "state.sqlite") }
            seqNoBlock = integer(stateMap["seqNoBlock"], "state.seqNoBlock", range: 1...1_000_000)
            checkpointInterval = duration(stateMap["checkpointInterval"], "state.checkpointInterval", positive: true)
        }
        let admin = readAdmin(top["admin"])
        var limits = readLimits(top["limits"])
        let keepalive = readKeepalive(top["keepalive"])
        let logging = readLogging(top["logging"])
        let shutdown = readShutdown(top["shutdown"])
        let chargers = readChargers(top["chargers"])
        let lockout = readLockout(top["lockout"])
        let soap = readSOAP(top["soap"])
        let models = readModels(top["models"])
        let audit = readAudit(top["audit"])
        let outage = readUpstreamOutage(top["upstreamOutage"])
        let overload = readOverload(top["overload"])
        let shadow = readShadow(top["shadow"])
        let eventLoops = integer(top["eventLoops"], "eventLoops", range: 1...256)
        if rules == nil, let sequence = top["listeners"]?.sequence {
            // The rules directory holds the SOAP layouts generated from the WSDLs (Rules/soap/).
            for (index, listener) in (listeners ?? []).enumerated() where listener.transport == .soap {
                fail(
                    "listeners[\(index)].transport", sequence[index].mapping?["transport"],
                    "a SOAP listener needs rules: the rules directory holds the SOAP message layouts (Rules/soap/)")
            }
        }
        checkPortsUnique(listeners ?? [], admin: admin)
        let handshakeTimeoutNode = top["limits"]?.mapping?["handshakeTimeout"]
        // The slowest upstream: every charger's upgrade waits for its own CSMS link.
        let slowest = upstreams?.max { $0.connectTimeout < $1.connectTimeout }
        if let upstream = slowest, handshakeTimeoutNode == nil {
            // Not configured: long enough for the CSMS link the upgrade waits for.
            limits.handshakeTimeout = max(limits.handshakeTimeout, upstream.connectTimeout + .seconds(5))
        } else if let upstream = slowest, limits.handshakeTimeout <= upstream.connectTimeout {
            // A charger's upgrade waits for its CSMS link: a shorter handshake timeout would close every charger
            // whose CSMS is slow to answer, while its link is still being opened.
            fail(
                "limits.handshakeTimeout", handshakeTimeoutNode,
                "expected more than \(upstream.key).connectTimeout (\(Self.seconds(upstream.connectTimeout))), got \(Self.seconds(limits.handshakeTimeout))"
            )
        }

        guard let listeners, let upstreams, let routing, let chargers else { return nil }
        var configuration = ProxyConfiguration(
            listeners: listeners, upstreams: upstreams, routing: routing, duplicateIdentity: duplicate,
            rulesDirectory: rules,
            stateSQLitePath: statePath, admin: admin, limits: limits, keepalive: keepalive, logging: logging,
            shutdown: shutdown, chargers: chargers, models: models, lockout: lockout, soap: soap, audit: audit,
            upstreamOutage: outage, overload: overload)
        configuration.shadow = shadow
        if let eventLoops { configuration.eventLoops = eventLoops }
        if let seqNoBlock { configuration.stateSeqNoBlock = seqNoBlock }
        if let checkpointInterval { configuration.stateCheckpointInterval = checkpointInterval }
        return configuration
    }

}

/// Duration text as written in configuration files.
public enum DurationText {
    public static func parse(_ text: String) -> TimeAmount? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, nanoseconds: Double)] = [
            ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86400e9),
        ]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": only accept a clean number before the suffix.
            guard let value = Double(number), value.isFinite else { continue }
            return nanoseconds(value * unit.nanoseconds)
        }
        if let seconds = Double(trimmed) { return nanoseconds(seconds * 1e9) }
        return nil
    }

    /// nil past what a TimeAmount holds (about 292 years): `1e300s` is a bad value, not a trap.
    private static func nanoseconds(_ value: Double) -> TimeAmount? {
        Int64(exactly: value.rounded()).map(TimeAmount.nanoseconds)
    }
}

/// swift-log level names, as accepted in configuration and on the command line.
public enum LogLevelName {
    public static let all = "trace, debug, info, notice, warning, error, critical"

    public static func parse(_ text: String) -> String? {
        let lower = text.lowercased()
        return all.components(separatedBy: ", ").contains(lower) ? lower : nil
    }
}
