/// RFC 3339 date-times as OCPP writes them (`2026-01-31T10:00:00.123+01:00`), read and written without
/// Foundation's formatters, which are slow and locale-sensitive.
public struct DateTimeText: Sendable, Equatable {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// The fraction digits as written, without the dot ("" when there were none).
    public var fraction: String

    public init(seconds: Int64, fraction: String = "") {
        self.seconds = seconds
        self.fraction = fraction
    }

    public static func parse(_ text: String) -> DateTimeText? {
        let b = Array(text.utf8)
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var value = 0
            for i in at..<at + count {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                value = value * 10 + Int(b[i] - 0x30)
            }
            return value
        }
        guard b.count >= 20, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2),
            b[7] == UInt8(ascii: "-"), let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
            let hour = digits(11, 2), b[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
            b[16] == UInt8(ascii: ":"),
            let second = digits(17, 2), (1...12).contains(month), day >= 1, day <= daysIn(month, year), hour < 24,
            minute < 60, second <= 60
        else { return nil }
        var i = 19
        var fraction = ""
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
            fraction = String(decoding: b[start..<i], as: UTF8.self)
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                oh < 24, om < 60
            else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offset)
        return DateTimeText(seconds: seconds, fraction: fraction)
    }

    /// An instant to the microsecond: six fraction digits.
    public init(microseconds: Int64) {
        let (q, r) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        let (seconds, micros) = r < 0 ? (q - 1, r + 1_000_000) : (q, r)
        let digits = String(micros)
        self.init(seconds: seconds, fraction: String(repeating: "0", count: 6 - digits.count) + digits)
    }

    /// Microseconds since 1970-01-01T00:00:00Z (fraction digits past the sixth are cut).
    public var microseconds: Int64 {
        var micros: Int64 = 0
        var scale: Int64 = 100_000
        for digit in fraction.utf8.prefix(6) {
            micros += Int64(digit &- 0x30) * scale
            scale /= 10
        }
        return seconds * 1_000_000 + micros
    }

    /// The same instant in UTC: `YYYY-MM-DDTHH:MM:SS[.fff]Z`, with at most three fraction digits (OCPP 2.0.1 allows
    /// no more; the rest is cut, never rounded up into the next second).
    public var utcText: String { utcText(fractionDigits: nil) }

    /// The same instant in UTC with exactly `fractionDigits` fraction digits (cut or padded with zeros); nil: the
    /// fraction as written, at most three digits.
    public func utcText(fractionDigits: Int?) -> String {
        let days = Int(seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400)
        let rest = Int(seconds - Int64(days) * 86400)
        let (y, m, d) = Self.civilFromDays(days)
        if (0...9999).contains(y) {
            // Written digit by digit into the string's own storage: this runs for every timestamp a rule
            // translates, and interpolation cost more than the rest of the conversion.
            let fractionText = fractionDigits.map { fraction.prefix(max(0, $0)) } ?? fraction.prefix(3)
            let fractionCount = fractionDigits.map { max(0, $0) } ?? fractionText.utf8.count
            let count = 20 + (fractionCount > 0 ? 1 + fractionCount : 0)
            return String(unsafeUninitializedCapacity: count) { out in
                var index = 0
                func put(_ byte: UInt8) {
                    out[index] = byte
                    index += 1
                }
                func digits(_ value: Int, _ width: Int) {
                    var divisor = 1
                    for _ in 1..<width { divisor *= 10 }
                    while divisor > 0 {
                        put(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                        divisor /= 10
                    }
                }
                digits(y, 4)
                put(UInt8(ascii: "-"))
                digits(m, 2)
                put(UInt8(ascii: "-"))
                digits(d, 2)
                put(UInt8(ascii: "T"))
                digits(rest / 3600, 2)
                put(UInt8(ascii: ":"))
                digits(rest / 60 % 60, 2)
                put(UInt8(ascii: ":"))
                digits(rest % 60, 2)
                if fractionCount > 0 {
                    put(UInt8(ascii: "."))
                    for byte in fractionText.utf8 { put(byte) }
                    for _ in fractionText.utf8.count..<fractionCount { put(UInt8(ascii: "0")) }
                }
                put(UInt8(ascii: "Z"))
                return index
            }
        }
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var text = "\(String(repeating: "0", count: max(0, 4 - String(y).count)))\(y)-\(two(m))-\(two(d))"
        text += "T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))"
        if let digits = fractionDigits {
            let cut = fraction.prefix(digits)
            if digits > 0 { text += "." + cut + String(repeating: "0", count: digits - cut.count) }
        } else if !fraction.isEmpty {
            text += ".\(fraction.prefix(3))"
        }
        return text + "Z"
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days algorithms (proleptic Gregorian calendar).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
