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

    /// Whether `hash` is present and matches the canonical form.
    public var hashIsValid: Bool { hash == computedHash }

    /// Whether `text` is 64 lowercase hex digits.
    public static func isHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
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
