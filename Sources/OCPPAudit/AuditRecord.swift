import Crypto
import Foundation
import OCPP

/// One audit record: a JSON object written as one line (JSON Lines), chained to the record before it by `prev` and
/// sealed by `hash` (the contract in the module's README, issue 14).
///
/// - canonical form: the object without `hash`, as ``JSONValue/jsonText`` (sorted keys, compact);
/// - `hash`: lowercase hex SHA-256 of the canonical form's UTF-8 bytes;
/// - the line: the object *with* `hash`, also as `jsonText`, then `"\n"`.
public struct AuditRecord: Hashable, Sendable {
    /// Every field, `hash` included when the record is sealed.
    public var fields: [String: JSONValue]

    /// `prev` of the first record of a log: 64 zeros.
    public static let genesisHash = String(repeating: "0", count: 64)

    public init(fields: [String: JSONValue]) { self.fields = fields }

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

    /// The canonical form and the line in one serialisation (what the writer does for every record): writes the
    /// canonical form of `fields` (which must not hold `hash`) to `canonical` and returns the offset at which the
    /// line's `"hash"` member goes, the place `hash` takes among the sorted keys. ``line(canonical:hashAt:hash:into:)``
    /// then splices it in, so the line is the bytes of ``lineBytes`` for `fields` plus `hash` without sorting and
    /// serialising the record a second time (a test compares both on random records).
    public static func writeCanonical(_ fields: [String: JSONValue], into canonical: inout [UInt8]) -> Int {
        canonical.append(UInt8(ascii: "{"))
        var hashAt = -1
        // Sorted as JSONValue.write sorts an object's keys (String's `<`); "hash" itself is never among them.
        let members = fields.sorted { $0.key < $1.key }
        for (index, member) in members.enumerated() {
            if hashAt < 0 && hashKey < member.key { hashAt = canonical.count }
            if index > 0 { canonical.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(member.key, into: &canonical)
            canonical.append(UInt8(ascii: ":"))
            CanonicalJSON.write(member.value, into: &canonical)
        }
        if hashAt < 0 { hashAt = canonical.count }
        canonical.append(UInt8(ascii: "}"))
        return hashAt
    }

    private static let hashKey = "hash"
    private static let hashMember = Array("\"hash\":\"".utf8)

    /// Appends the line of a record (`"\n"`-terminated) given its canonical form, the offset
    /// ``writeCanonical(_:into:)`` returned and its hash (64 hex digits); returns the number of bytes appended.
    @discardableResult
    public static func line(canonical: [UInt8], hashAt: Int, hash: String, into out: inout [UInt8]) -> Int {
        let before = out.count
        out.append(contentsOf: canonical[..<hashAt])
        // A member before: `,"hash":"…"` here; none: right after `{`, with a comma when members follow.
        let first = hashAt == 1
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: hashMember)
        out.append(contentsOf: hash.utf8)
        out.append(UInt8(ascii: "\""))
        if first && canonical.count > 2 { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: canonical[hashAt...])
        out.append(UInt8(ascii: "\n"))
        return out.count - before
    }

    /// Whether `hash` is present and matches the canonical form.
    public var hashIsValid: Bool { hash == computedHash }

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
