import Foundation
import OCPP
import Testing

@testable import OCPPAuditRedaction

@Suite("Audit query, index and export")
struct AuditReadingTests {
    /// A directory with two segments of plain JSON lines (and one torn line), removed afterwards.
    final class LogDirectory {
        let path: String

        init() throws {
            path = NSTemporaryDirectory() + "audit-read-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func write(_ name: String, _ records: [String]) throws {
            try Data(records.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: "\(path)/\(name)"))
        }

        func segment(_ first: Int) -> String {
            "\(path)/audit-\(String(repeating: "0", count: 20 - String(first).count))\(first).jsonl"
        }
    }

    static func record(
        _ seq: Int, _ ts: String, event: String = "frame", charger: String? = "CP1", session: String? = "s1",
        action: String? = "Heartbeat", leg: String = "charger_to_proxy", decision: String? = nil
    ) -> String {
        var fields: JSONObject = [
            "seq": .integer(Int64(seq)), "ts": .string(ts), "node": .string("edge-1"), "event": .string(event),
            "prev": .string(String(repeating: "0", count: 64)), "hash": .string("h\(seq)"),
        ]
        if let charger { fields["charger"] = .string(charger) }
        if let session { fields["session"] = .string(session) }
        if event == "frame" {
            fields["leg"] = .string(leg)
            fields["msg"] = .object([
                "type": .string("CALL"), "id": .string("m\(seq)"), "action": action.map(JSONValue.string) ?? .null,
            ])
            fields["payload"] = .object([:])
        }
        if let decision { fields["decision"] = .string(decision) }
        return JSONValue.object(fields).jsonText
    }

    static func makeLog() throws -> LogDirectory {
        let log = try LogDirectory()
        try log.write(
            "audit-00000000000000000001.jsonl",
            [
                record(1, "2026-11-30T08:00:00.000001Z", event: "start", charger: nil, session: nil),
                record(2, "2026-11-30T08:00:01.000000Z", event: "refused", decision: nil),
                record(3, "2026-11-30T08:00:02.000000Z", action: "BootNotification"),
                record(4, "2026-11-30T08:00:03.000000Z", charger: "CP2", session: "s2"),
            ])
        try log.write(
            "audit-00000000000000000005.jsonl",
            [
                record(5, "2026-11-30T09:00:00.000000Z", action: "Authorize"),
                "{\"seq\":6,\"ts\":\"2026-11-30T09:00:01",  // torn
                record(7, "2026-11-30T09:30:00.000000Z", charger: "CP2", session: "s3", action: "Authorize"),
            ])
        try log.write("other.jsonl", [record(99, "2026-11-30T09:00:00Z")])
        return log
    }

    static func seqs(_ log: LogDirectory, _ filter: AuditFilter, useIndex: Bool = true) throws -> ([Int64], [String]) {
        var seqs: [Int64] = []
        var unreadable: [String] = []
        try AuditSegments.query(
            directory: log.path, filter: filter, useIndex: useIndex, unreadable: { unreadable.append($0) }
        ) {
            line, record in
            #expect(JSONValue(parsing: line) == record)
            if case .object(let fields) = record, case .integer(let seq)? = fields["seq"] { seqs.append(seq) }
        }
        return (seqs, unreadable.map { ($0 as NSString).lastPathComponent })
    }

    @Test func rfc3339Times() {
        #expect(AuditTime.microseconds("1970-01-01T00:00:00Z") == 0)
        #expect(AuditTime.microseconds("1970-01-01T00:00:01.5Z") == 1_500_000)
        #expect(AuditTime.microseconds("2026-11-30T08:00:00.123456Z") == 1_796_025_600_123_456)
        #expect(AuditTime.microseconds("2026-11-30T09:00:00+01:00") == AuditTime.microseconds("2026-11-30T08:00:00Z"))
        for bad in ["2026-11-30", "2026-11-30T08:00:00", "2026-13-01T00:00:00Z", "2026-11-30T08:00:00.Z", "x"] {
            #expect(AuditTime.microseconds(bad) == nil, "\(bad)")
        }
    }

    @Test func queryFiltersInFileOrderAndReportsUnreadableLines() throws {
        let log = try Self.makeLog()
        let (all, unreadable) = try Self.seqs(log, AuditFilter())
        #expect(all == [1, 2, 3, 4, 5, 7])
        #expect(unreadable == ["audit-00000000000000000005.jsonl:2"])
        #expect(try Self.seqs(log, AuditFilter(charger: "CP2")).0 == [4, 7])
        #expect(try Self.seqs(log, AuditFilter(action: "Authorize")).0 == [5, 7])
        #expect(try Self.seqs(log, AuditFilter(event: "refused")).0 == [2])
        #expect(try Self.seqs(log, AuditFilter(session: "s1")).0 == [2, 3, 5])
        #expect(try Self.seqs(log, AuditFilter(charger: "CP1", action: "Authorize")).0 == [5])
        let since = AuditTime.microseconds("2026-11-30T08:00:02Z")
        let until = AuditTime.microseconds("2026-11-30T09:30:00Z")
        #expect(try Self.seqs(log, AuditFilter(since: since)).0 == [3, 4, 5, 7])
        #expect(try Self.seqs(log, AuditFilter(until: until)).0 == [1, 2, 3, 4, 5])
        #expect(try Self.seqs(log, AuditFilter(since: since, until: until)).0 == [3, 4, 5])
        // Offsets compare as instants.
        #expect(
            try Self.seqs(log, AuditFilter(since: AuditTime.microseconds("2026-11-30T10:00:00+01:00"))).0 == [5, 7])
    }

    @Test func anIndexDescribesASegmentAndLetsTheQuerySkipIt() throws {
        let log = try Self.makeLog()
        let first = log.segment(1)
        let index = try #require(try AuditIndex.build(segment: first))
        #expect(index.firstSeq == 1 && index.lastSeq == 4)
        #expect(index.firstTs == "2026-11-30T08:00:00.000001Z" && index.lastTs == "2026-11-30T08:00:03.000000Z")
        #expect(index.chargers == ["CP1", "CP2"])
        try index.write(forSegment: first)
        #expect(AuditIndex.read(forSegment: first) == index)
        let text = try String(contentsOfFile: AuditIndex.path(forSegment: first), encoding: .utf8)
        #expect(text.hasSuffix("}\n") && text.split(separator: "\n").count == 1)
        #expect(AuditIndex(json: JSONValue(parsing: Array(text.utf8))!) == index)

        let late = AuditFilter(since: AuditTime.microseconds("2026-11-30T09:00:00Z"))
        #expect(!late.mayMatch(index))
        #expect(!AuditFilter(charger: "CP9").mayMatch(index))
        #expect(AuditFilter(charger: "CP2").mayMatch(index))
        #expect(!AuditFilter(until: AuditTime.microseconds("2026-11-30T08:00:00Z")).mayMatch(index))

        // A lying index proves the query reads it: it says the first segment holds only CP9.
        var lying = index
        lying.chargers = ["CP9"]
        try lying.write(forSegment: first)
        #expect(try Self.seqs(log, AuditFilter(charger: "CP2")).0 == [7])
        #expect(try Self.seqs(log, AuditFilter(charger: "CP2"), useIndex: false).0 == [4, 7])
        // An index whose size no longer matches its segment is ignored.
        let handle = try #require(FileHandle(forWritingAtPath: first))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((Self.record(8, "2026-11-30T08:00:04Z", charger: "CP2") + "\n").utf8))
        try handle.close()
        #expect(AuditIndex.read(forSegment: first) == nil)
        #expect(try Self.seqs(log, AuditFilter(charger: "CP2")).0 == [4, 8, 7])
    }

    // MARK: Export

    @Test func syslogEscapesStructuredDataValuesPerRFC5424() {
        #expect(AuditExporter.escapeParameterValue(#"a"b\c]d[e"#) == #"a\"b\\c\]d[e"#)
        let record = JSONValue.object([
            "seq": .integer(3), "ts": .string("2026-11-30T08:00:02.000000Z"), "node": .string("edge 1"),
            "event": .string("frame"), "charger": .string(#"CP"]\1"#), "session": .string("s1"),
            "leg": .string("charger_to_proxy"),
            "msg": .object(["type": .string("CALL"), "id": .string("1"), "action": .string("Heartbeat")]),
        ])
        let line = record.jsonText
        let out = AuditExporter.syslog(record, text: line)
        #expect(
            out
                == #"<110>1 2026-11-30T08:00:02.000000Z edge_1 ocpp-proxy - frame [ocpp@32473 seq="3" charger="CP\"\]\\1" session="s1" action="Heartbeat" leg="charger_to_proxy"] "#
                + line)
        let refused = JSONValue.object(["event": .string("refused"), "status": .integer(401)])
        #expect(AuditExporter.syslog(refused, text: "{}") == "<108>1 - - ocpp-proxy - refused [ocpp@32473] {}")
    }

    @Test func ocsfMapsAFrameToAPIActivity() {
        let record = json(
            #"{"seq":3,"ts":"2026-11-30T08:00:02.500000Z","node":"edge-1","event":"frame","leg":"proxy_to_csms","charger":"CP1","session":"s1","upstream":"csms-a","version":"ocpp1.6","msg":{"type":"CALL","id":"m3","action":"Authorize"},"payload":{"idTag":"hmac:00"},"redacted":["idTag"],"decision":"forwarded","prev":"p","hash":"h3"}"#
        )
        let event = AuditExporter.ocsf(record)
        #expect(event.objectMember("class_uid") == .integer(6003))
        #expect(event.objectMember("category_uid") == .integer(6))
        #expect(event.objectMember("activity_id") == .integer(99))
        #expect(event.objectMember("activity_name") == .string("CALL proxy_to_csms"))
        #expect(event.objectMember("type_uid") == .integer(600399))
        #expect(event.objectMember("time") == .integer(1_796_025_602_500))
        #expect(event.objectMember("status_id") == .integer(1))
        #expect(event.objectMember("api") == json(#"{"operation":"Authorize","request":{"uid":"m3"}}"#))
        #expect(event.objectMember("src_endpoint") == json(#"{"hostname":"edge-1","svc_name":"ocpp-proxy"}"#))
        #expect(event.objectMember("dst_endpoint") == json(#"{"name":"csms-a"}"#))
        #expect(event.objectMember("actor")?.objectMember("session") == json(#"{"uid":"s1"}"#))
        let metadata = event.objectMember("metadata")
        #expect(metadata?.objectMember("product")?.objectMember("name") == .string("ocpp-proxy"))
        #expect(metadata?.objectMember("uid") == .string("h3"))
        #expect(metadata?.objectMember("sequence") == .integer(3))
        let unmapped = event.objectMember("unmapped")
        #expect(unmapped?.objectMember("payload") == json(#"{"idTag":"hmac:00"}"#))
        #expect(unmapped?.objectMember("leg") == .string("proxy_to_csms"))
        #expect(unmapped?.objectMember("msg") == nil)
        #expect(unmapped?.objectMember("ts") == nil)
        // The charger's side of the same exchange.
        let inbound = AuditExporter.ocsf(
            json(
                #"{"event":"frame","leg":"charger_to_proxy","charger":"CP1","node":"edge-1","remote":{"address":"10.0.0.7:51000"},"msg":{"type":"CALLERROR","id":"m4","action":"Authorize"}}"#
            ))
        #expect(inbound.objectMember("src_endpoint") == json(#"{"uid":"CP1","ip":"10.0.0.7","port":51000}"#))
        #expect(inbound.objectMember("status_id") == .integer(2))
    }

    @Test func ocsfMapsAnAdmissionRefusalToAuthentication() {
        let record = json(
            #"{"seq":9,"ts":"2026-11-30T08:00:00Z","node":"edge-1","event":"refused","charger":"CP7","session":"s9","remote":{"address":"[2001:db8::1]:443","tls":"TLSv1.3"},"status":401,"rule":"auth_unknown_charger","hash":"h9"}"#
        )
        let event = AuditExporter.ocsf(record)
        #expect(event.objectMember("class_uid") == .integer(3002))
        #expect(event.objectMember("category_uid") == .integer(3))
        #expect(event.objectMember("activity_id") == .integer(1))
        #expect(event.objectMember("type_uid") == .integer(300201))
        #expect(event.objectMember("status") == .string("Failure"))
        #expect(event.objectMember("status_id") == .integer(2))
        #expect(event.objectMember("status_detail") == .string("auth_unknown_charger"))
        #expect(event.objectMember("user") == json(#"{"uid":"CP7","name":"CP7"}"#))
        #expect(event.objectMember("session") == json(#"{"uid":"s9"}"#))
        #expect(event.objectMember("src_endpoint") == json(#"{"uid":"CP7","ip":"2001:db8::1","port":443}"#))
        #expect(event.objectMember("time") == .integer(1_796_025_600_000))
        #expect(event.objectMember("unmapped")?.objectMember("remote")?.objectMember("tls") == .string("TLSv1.3"))
        let admitted = AuditExporter.ocsf(json(#"{"event":"connect","charger":"CP7"}"#))
        #expect(admitted.objectMember("class_uid") == .integer(4001))
        #expect(admitted.objectMember("status_id") == .integer(1))
        let forwarded = AuditExporter.ocsf(
            json(#"{"event":"frame","leg":"proxy_to_charger","msg":{"type":"CALLRESULT"},"decision":"forwarded"}"#))
        #expect(forwarded.objectMember("status_id") == .integer(1))
        let reloadFailed = AuditExporter.ocsf(json(#"{"event":"reload","result":"failed"}"#))
        #expect(reloadFailed.objectMember("status_id") == .integer(2))
        let checkpoint = AuditExporter.ocsf(json(#"{"event":"checkpoint"}"#))
        #expect(checkpoint.objectMember("class_uid") == .integer(0))
        #expect(checkpoint.objectMember("activity_name") == .string("checkpoint"))
    }
}
