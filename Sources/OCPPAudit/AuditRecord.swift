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

/// `ts`: RFC 3339 in UTC with six fraction digits, e.g. `2026-11-30T08:00:00.123456Z`.
public enum AuditTimestamp {
    /// Formats `date` to the microsecond (rounded to the nearest), without Foundation's formatters.
    public static func string(from date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (seconds, fraction) = floorDivide(micros, 1_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))Z"
    }

    /// Reads back what ``string(from:)`` writes (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); nil for anything else.
    public static func date(from text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 27, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            bytes[19] == UInt8(ascii: "."), bytes[26] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            let fraction = number(20..<26), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        let seconds = days(fromCivil: year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: Double(seconds) + Double(fraction) / 1_000_000)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b
        let r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// Days since 1970-01-01 → proleptic Gregorian date (H. Hinnant's algorithm).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
