import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The two OCPP-J versions the benchmark speaks.
enum BenchVersion: String, CaseIterable {
    case v16 = "ocpp1.6"
    case v201 = "ocpp2.0.1"
}

/// What the minimal scanner reads of an OCPP-J frame: `[type, "id", "action", ...]`. Offsets index the
/// scanned bytes; the payload is never looked at.
struct FrameHead {
    var type: Int
    /// The message id, without its quotes, escapes kept as they were on the wire.
    var id: Range<Int>
    /// The action of a CALL, without its quotes; empty for other types.
    var action: Range<Int>
    /// Where scanning stopped: just after the id (answers) or the action (CALLs).
    var end: Int
}

/// A scanner for the head of an OCPP-J frame: the message type number, the message id and, for a CALL,
/// the action. It does not validate the rest of the frame; that is the point (the sink must stay cheap).
enum FrameScanner {
    static func scan(_ p: UnsafeRawBufferPointer) -> FrameHead? {
        var i = 0
        let n = p.count
        @inline(__always) func skipSpace() {
            while i < n, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
        }
        @inline(__always) func expect(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < n, p[i] == byte else { return false }
            i += 1
            return true
        }
        /// A JSON string's contents (escapes kept), i at its opening quote.
        @inline(__always) func string() -> Range<Int>? {
            guard expect(0x22) else { return nil }
            let start = i
            while i < n {
                switch p[i] {
                case 0x5C: i += 2  // backslash: skip the escaped character
                case 0x22:
                    let range = start..<i
                    i += 1
                    return range
                default: i += 1
                }
            }
            return nil
        }
        guard expect(0x5B) else { return nil }  // [
        skipSpace()
        var type = 0
        var digits = 0
        while i < n, p[i] >= 0x30, p[i] <= 0x39, digits < 3 {
            type = type * 10 + Int(p[i] - 0x30)
            i += 1
            digits += 1
        }
        guard digits > 0, expect(0x2C), let id = string() else { return nil }
        guard type == 2 else { return FrameHead(type: type, id: id, action: 0..<0, end: i) }
        guard expect(0x2C), let action = string() else { return nil }
        return FrameHead(type: type, id: id, action: action, end: i)
    }

    /// The decimal number in `range`, when it is one (the load generator's own message ids).
    static func decimal(_ p: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty, range.count <= 19 else { return nil }
        var value: UInt64 = 0
        for i in range {
            let b = p[i]
            guard b >= 0x30, b <= 0x39 else { return nil }
            value = value * 10 + UInt64(b - 0x30)
        }
        return value
    }

    /// The integer value of the first `"key":` in the bytes from `start` on (e.g. transactionId in a
    /// StartTransaction.conf); nil when absent.
    static func integer(after key: StaticString, in p: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let k = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        guard k.count > 0, p.count - start >= k.count else { return nil }
        var i = start
        while i + k.count <= p.count {
            if p[i] == k[0] && memcmp(p.baseAddress! + i, k.baseAddress!, k.count) == 0 {
                var j = i + k.count
                while j < p.count, p[j] == 0x20 || p[j] == 0x3A { j += 1 }  // spaces and the colon
                var value = 0
                var digits = 0
                while j < p.count, p[j] >= 0x30, p[j] <= 0x39, digits < 18 {
                    value = value * 10 + Int(p[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }

    /// Whether `literal` occurs in the bytes from `start` on.
    static func contains(_ p: UnsafeRawBufferPointer, _ literal: StaticString, from start: Int) -> Bool {
        let k = literal.utf8CodeUnitCount
        guard k > 0, start >= 0, p.count - start >= k else { return false }
        let first = literal.utf8Start.pointee
        var i = start
        while i + k <= p.count {
            if p[i] == first && memcmp(p.baseAddress! + i, literal.utf8Start, k) == 0 { return true }
            i += 1
        }
        return false
    }

    static func equals(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        return memcmp(p.baseAddress! + range.lowerBound, literal.utf8Start, range.count) == 0
    }
}

/// The current UTC time as OCPP's date-time text (`2025-01-31T12:34:56Z`), formatted at most once a second.
/// One per event loop (or per handler): not thread-safe.
final class ClockText {
    private var second: time_t = -1
    private var text: String = ""

    var now: String {
        var t = time(nil)
        if t != second {
            var parts = tm()
            gmtime_r(&t, &parts)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            text =
                "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
            second = t
        }
        return text
    }
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC, as NIODeadline).
@inline(__always) func monotonicNanos() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
}
