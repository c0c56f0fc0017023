import Crypto
import Foundation
import OCPP

/// One audit record: a JSON object written as one line (JSON Lines), chained to the record before it by `prev` and
/// sealed by `hash` (the contract in the module's README, issue 14).
///
/// The line is `{…,"hash":"<64 hex>"}` and `"\n"`: `hash` is the last member, the lowercase hex SHA-256 of the line
/// without it (``body(ofLine:)``: the bytes as written, `{…}`); the record's Merkle leaf is that hash (its 32
/// bytes), so the record is hashed once. The writer
/// puts the members in any order and a payload as the peer sent it (whitespace removed), so that nothing is sorted
/// or serialised twice. Lines of the first format (every member sorted, `hash` among them: ``canonicalBytes``)
/// still verify: ``body(ofLine:)`` and ``leaf(line:record:)`` tell the two apart.
public struct AuditRecord: Hashable, Sendable {
    /// Every field, `hash` included when the record is sealed.
    public var fields: JSONObject

    /// `prev` of the first record of a log: 64 zeros.
    public static let genesisHash = String(repeating: "0", count: 64)

    public init(fields: JSONObject) { self.fields = fields }

    /// Reads one line (without its `"\n"`); nil when it is not a JSON object.
    public init?(line: some Collection<UInt8>) {
        guard case .object(let fields)? = JSONValue(parsing: line) else { return nil }
        self.fields = fields
    }

    public var seq: Int64? {
        if case .integer(let value)? = fields["seq"] { return value }
        return nil
    }
    public var ts: String? { fields["ts"]?.stringValue }
    public var event: String? { fields["event"]?.stringValue }
    public var prev: String? { fields["prev"]?.stringValue }
    public var hash: String? { fields["hash"]?.stringValue }
    public var isCheckpoint: Bool { event == "checkpoint" }

    /// The canonical form: every field but `hash`, sorted keys, compact.
    public var canonicalBytes: [UInt8] {
        var unsealed = fields
        unsealed["hash"] = nil
        var out: [UInt8] = []
        out.reserveCapacity(512)
        JSONValue.object(unsealed).write(into: &out)
        return out
    }

    /// Lowercase hex SHA-256 of the canonical form, what `hash` must hold.
    public var computedHash: String { Self.hash(ofCanonical: canonicalBytes) }

    public static func hash(ofCanonical canonical: [UInt8]) -> String { Hex.string(SHA256.hash(data: canonical)) }

    /// The record with `hash` set from its canonical form.
    public func sealed() -> AuditRecord {
        var copy = self
        copy.fields["hash"] = .string(computedHash)
        return copy
    }

    /// The line on disk: the record as it is (with `hash`), sorted keys, compact, `"\n"`-terminated.
    public var lineBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        JSONValue.object(fields).write(into: &out)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// Whether `hash` is present and matches the canonical form.
    public var hashIsValid: Bool { hash == computedHash }

    /// `,"hash":"` — the last member of a line.
    static let lastHashMember = Array(",\"hash\":\"".utf8)

    /// The bytes a line's `hash` is computed over when `hash` is its last member: the line without that member,
    /// `{…}`; nil for a line of the first format (or not ending in a hash member at all).
    public static func body(ofLine line: some Collection<UInt8>) -> [UInt8]? {
        let bytes = Array(line)
        let tail = lastHashMember.count + 64 + 2  // ,"hash":" + 64 hex + "}
        guard bytes.count >= tail + 1, bytes.last == UInt8(ascii: "}") else { return nil }
        let start = bytes.count - tail
        guard bytes[start..<(start + lastHashMember.count)].elementsEqual(lastHashMember),
            bytes[bytes.count - 2] == UInt8(ascii: "\""),
            bytes[(start + lastHashMember.count)..<(bytes.count - 2)].allSatisfy({
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66)
            })
        else { return nil }
        var body = Array(bytes[..<start])
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// A line's Merkle leaf, given the line and its record: the 32 bytes of its `hash` in the current format, the
    /// canonical form in the first (which hashed every record twice).
    public static func leaf(line: some Collection<UInt8>, record: AuditRecord) -> [UInt8] {
        guard body(ofLine: line) != nil, let hash = record.hash, let bytes = Hex.bytes(hash) else {
            return record.canonicalBytes
        }
        return bytes
    }

    /// Appends a line given its body (`{…}`, the hashed bytes) and hash: the body without its closing brace, then
    /// `,"hash":"…"}` and `"\n"`. Returns the number of bytes appended.
    @discardableResult
    public static func line(body: [UInt8], hash: [UInt8], into out: inout [UInt8]) -> Int {
        let before = out.count
        out.append(contentsOf: body[..<(body.count - 1)])
        // `{}`: the hash is the only member (never a record of the writer's, which always has seq, ts and prev).
        out.append(contentsOf: body.count > 2 ? lastHashMember[...] : lastHashMember.dropFirst())
        out.append(contentsOf: hash)
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: "}"), UInt8(ascii: "\n")])
        return out.count - before
    }

    /// Whether `text` is 64 lowercase hex digits.
    public static func isHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// ``JSONValue/write(into:sortedKeys:)`` with sorted keys — the same bytes (a test compares the two on random values)
/// — for the writer, which serialises every record: a string's UTF-8 is read in place and copied in runs, an
/// object's members are sorted once as pairs instead of sorting the keys and looking each one up again.
enum CanonicalJSON {
    static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .string(let text):
            writeString(text, into: &out)
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            var first = true
            for member in members.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .null, .bool, .integer, .number:
            // Numbers in particular: exactly JSONValue's formatting.
            value.write(into: &out)
        }
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        JSONValue.writeString(text, into: &out)
    }
}

/// Lowercase hex.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// The bytes of lowercase hex text; nil for anything else.
    static func bytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: return digit - 0x30
            case 0x61...0x66: return digit - 0x61 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// Appends the hex digits of `bytes` to `out`.
    static func append(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
    }

    static func string(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// `ts`: RFC 3339 in UTC with six fraction digits, e.g. `2026-11-30T08:00:00.123456Z` (OCPP's ``DateTimeText``).
public enum AuditTimestamp {
    /// Formats `date` to the microsecond (rounded to the nearest), without Foundation's formatters.
    public static func string(from date: Date) -> String {
        DateTimeText(microseconds: Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
            .utcText(fractionDigits: 6)
    }

    /// Appends what ``string(from:)`` returns, reusing `cache` (the text of the last whole second written) so that
    /// the records of one second cost the calendar arithmetic once.
    public static func append(_ date: Date, into out: inout [UInt8], cache: inout (seconds: Int64, text: [UInt8])) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (quotient, remainder) = micros.quotientAndRemainder(dividingBy: 1_000_000)
        let (seconds, fraction) = remainder < 0 ? (quotient - 1, remainder + 1_000_000) : (quotient, remainder)
        if seconds != cache.seconds || cache.text.isEmpty {
            // `YYYY-MM-DDTHH:MM:SS` of the whole second (its text without the zone).
            cache = (seconds, Array(DateTimeText(seconds: seconds).utcText(fractionDigits: nil).utf8.dropLast()))
        }
        out.append(contentsOf: cache.text)
        out.append(UInt8(ascii: "."))
        var divisor: Int64 = 100_000
        while divisor > 0 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: fraction / divisor % 10))
            divisor /= 10
        }
        out.append(UInt8(ascii: "Z"))
    }

    /// Reads back what ``string(from:)`` writes (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); nil for anything else.
    public static func date(from text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 27, bytes[19] == UInt8(ascii: "."), bytes[26] == UInt8(ascii: "Z"),
            let parsed = DateTimeText.parse(text)
        else { return nil }
        let micros = parsed.microseconds - parsed.seconds * 1_000_000
        return Date(timeIntervalSince1970: Double(parsed.seconds) + Double(micros) / 1_000_000)
    }
}
