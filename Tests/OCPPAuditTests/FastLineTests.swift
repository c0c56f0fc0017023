import Crypto
import Foundation
import OCPP
import TestSupport
import Testing

@testable import OCPPAudit

/// Random records whose keys crowd around "hash" in the sort order (and sort by more than ASCII), with values of
/// every JSON kind, escapes and non-ASCII text.
struct RandomRecords {
    var random: SplitMix64

    static let keys = [
        "", "a", "event", "node", "h", "ha", "has", "hasg", "hash0", "hash_", "hasi", "hash ", "hashes", "Hash", "HASH",
        "i", "z", "~", "é", "e\u{301}x", "ḧash", "日本", "🔒", "seq", "ts", "prev", "payload", "msg", "cause", "charger",
        "session", "remote", "leg", "decision", "version", "redacted", "key\"quote", "back\\slash", "tab\tkey", "\u{1}",
        "hash\u{301}", "ha\u{0}sh",
    ]
    static let strings = [
        "", "x", "hmac:0123456789abcdef0123456789abcdef", "quote \" and backslash \\", "line\nbreak\r\t", "\u{0}\u{1f}",
        "é", "e\u{301}", "日本語", "🔒 emoji", "2026-11-30T08:00:00.123456Z", "/slash/", "\u{7f}\u{80}",
        String(decoding: (0..<0x20).map { UInt8($0) } + Array("\"\\/".utf8), as: UTF8.self),
        String(repeating: "long text without escapes ", count: 20),
    ]

    mutating func int(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }

    mutating func value(depth: Int) -> JSONValue {
        switch int(depth > 2 ? 6 : 8) {
        case 0: return .null
        case 1: return .bool(int(2) == 0)
        case 2: return .integer(Int64(bitPattern: random.next()) >> Int64(int(64)))
        case 3: return .number(Double(Int64(bitPattern: random.next()) >> 40) / 8)
        case 4, 5: return .string(Self.strings[int(Self.strings.count)])
        case 6: return .array((0..<int(4)).map { _ in value(depth: depth + 1) })
        default: return .object(object(depth: depth + 1, members: int(5)))
        }
    }

    mutating func object(depth: Int, members: Int) -> JSONObject {
        var fields: JSONObject = [:]
        for _ in 0..<members { fields[Self.keys[int(Self.keys.count)]] = value(depth: depth) }
        return fields
    }

    /// A record's fields without `hash` (0 to 20 members, sometimes all sorting after "hash").
    mutating func record() -> JSONObject {
        var fields = object(depth: 0, members: int(21))
        fields["hash"] = nil
        if int(8) == 0 { fields = fields.filter { "hash" < $0.key } }
        return fields
    }
}

@Suite struct FastLineTests {
    /// A line is its body with `hash` appended as the last member: the body comes back from the line, and the line
    /// reads back as the record with its hash.
    @Test func aLineIsItsBodyWithTheHashLast() {
        var records = RandomRecords(random: SplitMix64(seed: 14))
        var line: [UInt8] = []
        for _ in 0..<5000 {
            let fields = records.record()
            var body: [UInt8] = []
            CanonicalJSON.write(.object(fields), into: &body)
            let hash = Array(AuditRecord.hash(ofCanonical: body).utf8)
            line = [0x2A]  // appended after what is there
            let count = AuditRecord.line(body: body, hash: hash, into: &line)
            #expect(count == line.count - 1)
            #expect(line.last == UInt8(ascii: "\n"))
            let text = line.dropFirst().dropLast()
            var sealed = AuditRecord(fields: fields)
            sealed.fields["hash"] = .string(String(decoding: hash, as: UTF8.self))
            // A number like 1.0 reads back as the integer 1: the serialisations are what must be equal.
            #expect(AuditRecord(line: text)?.lineBytes == sealed.lineBytes)
            if fields.isEmpty {
                #expect(AuditRecord.body(ofLine: text) == nil, "no member before hash: read as the first format")
                #expect(AuditRecord.leaf(line: text, record: sealed) == body)
            } else {
                #expect(AuditRecord.body(ofLine: text) == body)
                #expect(AuditRecord.leaf(line: text, record: sealed) == Array(SHA256.hash(data: body)))
            }
        }
    }

    /// Lines of the first format (`hash` at its sorted place) are not read as the current one.
    @Test func aFirstFormatLineHasNoBody() {
        let record = AuditRecord(fields: ["seq": 1, "event": "start", "prev": .string(AuditRecord.genesisHash)])
            .sealed()
        let line = record.lineBytes.dropLast()
        #expect(AuditRecord.body(ofLine: line) == nil)
        #expect(AuditRecord.leaf(line: line, record: record) == record.canonicalBytes)
    }

    /// A record's `ts` written with the cache of its second is ``AuditTimestamp/string(from:)``, across second,
    /// day and year boundaries and before 1970.
    @Test func timestampsWrittenWithTheirSecondCachedAreTheSame() {
        var random = SplitMix64(seed: 3339)
        var cache: (seconds: Int64, text: [UInt8]) = (0, [])
        var time = -86_400.0 * 400
        for _ in 0..<20000 {
            time += Double(random.next() % 3_000_000) / 1_000_000 * (random.next() % 50 == 0 ? 40_000 : 1)
            let date = Date(timeIntervalSince1970: time)
            var out: [UInt8] = []
            AuditTimestamp.append(date, into: &out, cache: &cache)
            #expect(String(decoding: out, as: UTF8.self) == AuditTimestamp.string(from: date))
        }
    }

    /// The writer's serialiser is JSONValue's, byte for byte, on values of every kind.
    @Test func canonicalJSONEqualsJSONValueWrite() {
        var records = RandomRecords(random: SplitMix64(seed: 8259))
        for _ in 0..<5000 {
            let value = records.value(depth: 0)
            var fast: [UInt8] = []
            CanonicalJSON.write(value, into: &fast)
            var reference: [UInt8] = []
            value.write(into: &reference)
            #expect(fast == reference)
        }
        // A string that is not native UTF-8 (bridged) takes the copying path; the same bytes either way.
        var fast: [UInt8] = []
        CanonicalJSON.writeString(String(NSString(string: "caf\u{e9} \"x\"\n")), into: &fast)
        #expect(String(decoding: fast, as: UTF8.self) == JSONValue.string("caf\u{e9} \"x\"\n").jsonText)
    }

    /// The Merkle leaf hash of contiguous bytes (no copy) is that of the same bytes as any other sequence.
    @Test func leafHashOfArrayAndSequenceAgree() {
        var random = SplitMix64(seed: 6962)
        for length in [0, 1, 55, 56, 63, 64, 65, 500, 4096] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let expected = sha256([0x00] + bytes)
            #expect(MerkleTree.leafHash(bytes) == expected)
            #expect(MerkleTree.leafHash(bytes.lazy.map { $0 }) == expected)
            #expect(MerkleTree.leafHash(bytes[...]) == expected)
        }
    }

    /// Random records through the writer: every line, hash, link and checkpoint verifies, and every line is what
    /// AuditRecord serialises for the record it reads back as.
    @Test func writerOnRandomRecordsVerifies() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let signer = AuditSigner(Curve25519.Signing.PrivateKey())
        let writer = try SegmentWriter(
            directory: directory.path, signer: signer, options: .init(maxBytes: 20_000, maxAge: 3600, node: "n"))
        var records = RandomRecords(random: SplitMix64(seed: 2026))
        var written: [AuditRecord] = []
        for index in 0..<600 {
            var fields = records.record()
            if fields["event"]?.stringValue == "checkpoint" { fields["event"] = "frame" }
            if index % 2 == 1 {
                // The frame path: members written straight into the line, in their own order.
                for name in ["seq", "ts", "prev", "event"] { fields[name] = nil }
                let members = fields
                try writer.appendMembers(ts: SampleLog.start + Double(index)) { out in
                    var object: [UInt8] = []
                    JSONValue.object(members).write(into: &object, sortedKeys: false)
                    out.append(contentsOf: object.dropFirst().dropLast())
                    if !members.isEmpty { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: Array(#""event":"frame""#.utf8))
                }
                fields["event"] = "frame"
                fields["seq"] = .integer(writer.lastSeq)
                fields["hash"] = .string(writer.lastHash)
                written.append(AuditRecord(fields: fields))
                continue
            }
            written.append(try writer.append(fields, ts: SampleLog.start + Double(index)))
            if index % 7 == 6 { try writer.commit() }
            if index % 100 == 99 { try writer.checkpoint(ts: SampleLog.start + Double(index) + 0.5) }
        }
        try writer.close(ts: SampleLog.start + 600)
        _ = try AuditVerifier.verify(dir: directory.path, publicKey: signer.publicKey)
        var lines: [[UInt8]] = []
        for segment in try AuditSegments.list(directory.path) {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + segment))
            lines += data.split(separator: UInt8(ascii: "\n")).map { Array($0) }
        }
        let read = lines.compactMap { AuditRecord(line: $0) }.filter { !$0.isCheckpoint }
        #expect(read.count == written.count)
        for (line, returned) in zip(read, written) {
            // A number like 1.0 reads back as the integer 1: the serialisations are what must be equal (`ts` and
            // `prev` of a frame record are the writer's: compared through the chain, which verify checked).
            var expected = returned.fields
            var found = line.fields
            for name in ["ts", "prev"] where expected[name] == nil { found[name] = nil }
            expected["event"] = found["event"]
            #expect(AuditRecord(fields: found).lineBytes == AuditRecord(fields: expected).lineBytes)
        }
    }
}
