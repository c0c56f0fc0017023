import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import OCPP
import OCPPAudit
import OCPPAuditRedaction
import Testing

@testable import OCPPProxy

/// An audit directory of its own under the temporary directory, with its keys beside it.
func auditConfiguration(
    _ name: String, queue: Int = 65536, onBackpressure: AuditBackpressure = .refuseNew,
    payloads: AuditPayloadMode = .redacted
) throws -> AuditConfiguration {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent(
        "audit-\(name)-\(UUID().uuidString.prefix(8))"
    ).path
    try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    var configuration = AuditConfiguration(
        directory: base + "/audit", pseudonymKey: .text("a pseudonym key for tests"),
        signingKey: base + "/audit-signing.key", node: "test-node")
    configuration.queueRecords = queue
    configuration.onBackpressure = onBackpressure
    configuration.payloads = payloads
    return configuration
}

/// Every record of a directory, in order, after checking the whole log with its public key.
func verifiedRecords(_ configuration: AuditConfiguration) throws -> [JSONObject] {
    let key = try AuditKeys.loadPublic(path: configuration.signingKey + ".pub")
    _ = try AuditVerifier.verify(dir: configuration.directory, publicKey: key)
    var records: [JSONObject] = []
    for segment in try AuditSegments.list(directory: configuration.directory) {
        try AuditSegments.forEachLine(of: segment) { line, _ in
            guard case .object(let fields)? = JSONValue(parsing: line) else { return }
            records.append(fields)
        }
    }
    return records
}

func openAudit(_ configuration: AuditConfiguration, metrics: ProxyMetrics = ProxyMetrics()) throws -> AuditLog {
    try AuditLog.open(configuration: configuration, metrics: metrics, logger: Logger(label: "test"))
}

private func note(_ number: Int) -> AuditEntry {
    .event("note", ["n": .integer(Int64(number))])
}

private func notes(in records: [JSONObject]) -> [Int64] {
    records.compactMap { record in
        guard record["event"]?.stringValue == "note", case .integer(let n)? = record["n"] else { return nil }
        return n
    }
}

@Suite("Audit log writer")
struct AuditLogTests {
    @Test func writesStartRecordsAndStopThenAClosingCheckpointThatVerifies() throws {
        let configuration = try auditConfiguration("basic")
        let log = try openAudit(configuration)
        log.start()
        for n in 1...10 { log.record(note(n)) }
        log.stop()
        let records = try verifiedRecords(configuration)
        #expect(records.first?["event"]?.stringValue == "start")
        #expect(notes(in: records) == Array(1...10))
        #expect(records.dropLast().last?["event"]?.stringValue == "stop")
        #expect(records.last?["event"]?.stringValue == "checkpoint")
        #expect(records.allSatisfy { $0["node"]?.stringValue == "test-node" })
    }

    @Test func makesTheSigningAndPseudonymKeysWhenMissing() throws {
        var configuration = try auditConfiguration("keys")
        let keyFile = (configuration.directory as NSString).deletingLastPathComponent + "/pseudonym.key"
        configuration.pseudonymKey = .file(keyFile)
        let log = try openAudit(configuration)
        log.start()
        log.stop()
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(FileManager.default.fileExists(atPath: configuration.signingKey + ".pub"))
        // A second start reads both back: the log goes on under the same key.
        let again = try openAudit(configuration)
        again.start()
        again.stop()
        let records = try verifiedRecords(configuration)
        #expect(records.filter { $0["event"]?.stringValue == "start" }.count == 2)
    }

    @Test func goesOnFromTheLastRecordAfterARestart() throws {
        let configuration = try auditConfiguration("restart")
        let first = try openAudit(configuration)
        first.start()
        for n in 1...3 { first.record(note(n)) }
        first.stop()
        let second = try openAudit(configuration)
        second.start()
        for n in 4...6 { second.record(note(n)) }
        second.stop()
        let records = try verifiedRecords(configuration)
        #expect(notes(in: records) == Array(1...6))
        let seqs = records.compactMap { record -> Int64? in
            if case .integer(let seq)? = record["seq"] { return seq }
            return nil
        }
        #expect(seqs == Array(1...Int64(records.count)))
    }

    @Test func dropAndCountDropsBeyondTheBoundAndSaysSoInAGapRecord() throws {
        let configuration = try auditConfiguration("drop", queue: 64, onBackpressure: .dropAndCount)
        let metrics = ProxyMetrics()
        let log = try openAudit(configuration, metrics: metrics)
        // The writer is not running yet: the queue fills.
        for n in 1...100 { log.record(note(n)) }
        #expect(log.admitsNewSessions, "drop-and-count never refuses chargers")
        log.start()
        log.stop()
        let records = try verifiedRecords(configuration)
        #expect(notes(in: records) == Array(1...64))
        let gap = try #require(records.first { $0["event"]?.stringValue == "gap" })
        #expect(gap["dropped"] == .integer(36))
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.split(separator: "\n").contains("ocpp_proxy_audit_dropped_records_total 36"))
    }

    @Test func refuseNewKeepsRecordingConnectedSessionsAndRefusesNewOnes() throws {
        let configuration = try auditConfiguration("refuse", queue: 64, onBackpressure: .refuseNew)
        let log = try openAudit(configuration)
        for n in 1...63 { log.record(note(n)) }
        #expect(log.admitsNewSessions)
        log.record(note(64))
        #expect(!log.admitsNewSessions, "a full queue refuses new chargers")
        // Sessions already in keep being recorded up to twice the bound; beyond that records are dropped, counted.
        for n in 65...140 { log.record(note(n)) }
        log.start()
        log.stop()
        #expect(log.admitsNewSessions)
        let records = try verifiedRecords(configuration)
        #expect(notes(in: records) == Array(1...128))
        #expect(records.first { $0["event"]?.stringValue == "gap" }?["dropped"] == .integer(12))
    }

    @Test func blockMakesTheRecorderWaitForRoomAndLosesNothing() throws {
        let configuration = try auditConfiguration("block", queue: 64, onBackpressure: .block)
        let log = try openAudit(configuration)
        for n in 1...64 { log.record(note(n)) }
        let returned = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            log.record(note(65))
            returned.signal()
        }
        #expect(returned.wait(timeout: .now() + 0.3) == .timedOut, "the 65th record waits while the queue is full")
        log.start()
        #expect(returned.wait(timeout: .now() + 10) == .success)
        log.stop()
        #expect(notes(in: try verifiedRecords(configuration)) == Array(1...65))
    }

    @Test func rotatesIndexesClosedSegmentsAndQueriesThem() throws {
        var configuration = try auditConfiguration("rotate")
        configuration.rotateMaxBytes = 4096
        let log = try openAudit(configuration)
        log.start()
        for n in 1...200 {
            log.record(.event("note", ["n": .integer(Int64(n)), "charger": .string(n % 2 == 0 ? "EVEN" : "ODD")]))
        }
        log.stop()
        let records = try verifiedRecords(configuration)
        let segments = try AuditSegments.list(directory: configuration.directory)
        #expect(segments.count > 3)
        for segment in segments {
            let index = try #require(AuditIndex.read(forSegment: segment), "every closed segment has its index")
            #expect(!index.chargers.isEmpty || index.firstSeq == 1)
        }
        var even = 0
        try AuditSegments.query(
            directory: configuration.directory, filter: AuditFilter(charger: "EVEN"), unreadable: { _ in }
        ) { _, _ in even += 1 }
        #expect(even == 100)
        #expect(notes(in: records).count == 200)
    }

    @Test func retentionDeletesOnlyClosedSegmentsPastIt() throws {
        var configuration = try auditConfiguration("retention")
        configuration.rotateMaxBytes = 4096
        configuration.retention = .seconds(3600)
        // An old closed segment: written an hour and a half ago (records carry the time they were taken).
        let old = try openAudit(configuration)
        let past = AuditEntry.now() - 5_400_000_000
        for n in 1...40 { old.record(AuditEntry(time: past, body: .event("note", ["n": .integer(Int64(n))]))) }
        old.start()
        old.stop()
        let before = try AuditSegments.list(directory: configuration.directory)
        #expect(before.count >= 2)
        let log = try openAudit(configuration)
        log.start()
        for n in 41...60 { log.record(note(n)) }
        log.stop()
        let after = try AuditSegments.list(directory: configuration.directory)
        #expect(!after.contains(before[0]), "the oldest segment is past retention")
        let kept = try verifiedRecords(configuration)
        #expect(notes(in: kept).suffix(20) == Array(41...60))
    }
}

/// A pass-through session with the audit stage, between two embedded links (``SessionFixture``).
final class AuditedSessionFixture {
    let fixture: SessionFixture
    let log: AuditLog
    let configuration: AuditConfiguration

    var session: ChargerSession { fixture.session }
    var chargerChannel: EmbeddedChannel { fixture.chargerChannel }
    var csmsChannel: EmbeddedChannel { fixture.csmsChannel }

    init(payloads: AuditPayloadMode = .redacted, maxPendingCalls: Int = 16) throws {
        configuration = try auditConfiguration("session", payloads: payloads)
        log = try openAudit(configuration)
        log.start()
        let info = AuditSessionInfo(
            node: "test-node", charger: "CP001", session: log.sessionID(1), chargerVersion: .v1_6,
            upstreamVersion: .v1_6,
            remote: AuditRemote(address: "127.0.0.1:1", securityProfile: 0, listener: "test"),
            transport: "websocket", upstream: "ws://127.0.0.1:2/ocpp")
        fixture = try SessionFixture(maxPendingCalls: maxPendingCalls, audit: (log, info))
    }

    func fromCharger(_ text: String) throws { try fixture.fromCharger(text) }
    func fromCSMS(_ text: String) throws { try fixture.fromCSMS(text) }

    /// Stops the log and returns the frame records.
    func frames() throws -> [JSONObject] {
        log.stop()
        return try verifiedRecords(configuration).filter { $0["event"]?.stringValue == "frame" }
    }
}

private func leg(_ record: JSONObject) -> String? { record["leg"]?.stringValue }
private func decision(_ record: JSONObject) -> String? { record["decision"]?.stringValue }
private func msg(_ record: JSONObject, _ key: String) -> String? {
    guard case .object(let msg)? = record["msg"] else { return nil }
    return msg[key]?.stringValue
}

@Suite("Audit stage")
struct AuditStageTests {
    @Test func recordsACallAndItsResultOnAllFourLegsWithTheirCause() throws {
        let fixture = try AuditedSessionFixture()
        try fixture.fromCharger(#"[2,"c1","Authorize",{"idTag":"SECRET-TAG"}]"#)
        try fixture.fromCSMS(#"[3,"c1",{"idTagInfo":{"status":"Accepted"}}]"#)
        let frames = try fixture.frames()
        #expect(frames.map(leg) == ["charger_to_proxy", "proxy_to_csms", "csms_to_proxy", "proxy_to_charger"])
        #expect(frames.map(decision) == ["received", "forwarded", "received", "forwarded"])
        #expect(frames.map { msg($0, "action") } == Array(repeating: "Authorize", count: 4))
        #expect(frames[1]["cause"] == .object(["leg": .string("charger_to_proxy"), "id": .string("c1")]))
        #expect(frames[3]["cause"] == .object(["leg": .string("csms_to_proxy"), "id": .string("c1")]))
        // The token is a pseudonym; a forwarded frame's bytes are those of its cause, not written twice.
        guard case .object(let payload)? = frames[0]["payload"] else { Issue.record("no payload"); return }
        #expect(payload["idTag"]?.stringValue?.hasPrefix("hmac:") == true)
        #expect(frames[1]["payload"] == nil)
        #expect(frames[0]["redacted"] == .array([.string("idTag")]))
    }

    @Test func recordsAMalformedFrameAndTheProxysRefusal() throws {
        let fixture = try AuditedSessionFixture()
        try fixture.fromCharger(#"[2,"m1","Heartbeat"]"#)
        let frames = try fixture.frames()
        let malformed = try #require(frames.first)
        #expect(decision(malformed) == "malformed")
        #expect(leg(malformed) == "charger_to_proxy")
        #expect(malformed["raw"]?.stringValue?.hasPrefix("sha256:") == true)
        let refusal = try #require(frames.dropFirst().first)
        #expect(leg(refusal) == "proxy_to_charger")
        #expect(decision(refusal) == "refused")
        #expect(msg(refusal, "type") == "CALLERROR")
        #expect(refusal["cause"] == .object(["leg": .string("charger_to_proxy"), "id": .string("m1")]))
    }

    @Test func recordsACallThePathRefusesBeforeAnyStageSeesIt() throws {
        let fixture = try AuditedSessionFixture(maxPendingCalls: 1)
        try fixture.fromCharger(#"[2,"a","Heartbeat",{}]"#)
        try fixture.fromCharger(#"[2,"b","Heartbeat",{}]"#)
        let frames = try fixture.frames()
        let summary = frames.map { "\(leg($0) ?? "")/\(decision($0) ?? "")/\(msg($0, "id") ?? "")" }
        #expect(
            summary == [
                "charger_to_proxy/received/a", "proxy_to_csms/forwarded/a", "charger_to_proxy/received/b",
                "proxy_to_charger/refused/b",
            ])
    }

    @Test func keepsNoPayloadWithPayloadsNone() throws {
        let fixture = try AuditedSessionFixture(payloads: .none)
        try fixture.fromCharger(#"[2,"c1","Authorize",{"idTag":"SECRET-TAG"}]"#)
        let frames = try fixture.frames()
        #expect(frames.count == 2)
        #expect(frames.allSatisfy { $0["payload"] == nil && $0["redacted"] == nil })
        #expect(msg(frames[0], "action") == "Authorize")
    }

    @Test func recordsConnectAndBothDisconnects() throws {
        let fixture = try AuditedSessionFixture()
        fixture.session.close(code: .normalClosure, reason: "test", text: "bye")
        try fixture.chargerChannel.writeInbound(
            WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: ByteBuffer(bytes: [3, 232])))
        try fixture.csmsChannel.writeInbound(
            WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer(bytes: [3, 232])))
        fixture.log.stop()
        let events = try verifiedRecords(fixture.configuration).compactMap { $0["event"]?.stringValue }
        #expect(events.contains("connect"))
        #expect(events.filter { $0 == "disconnect" }.count == 2)
    }
}
