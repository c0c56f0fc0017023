import Foundation
import NIOCore

/// A token bucket: `rate` tokens a second, at most `burst` saved up. Time comes in as an argument, so that tests
/// drive it with a clock of their own.
struct TokenBucket: Sendable {
    let rate: RateLimit
    private var tokens: Double
    private var last: NIODeadline

    init(_ rate: RateLimit, now: NIODeadline) {
        self.rate = rate
        self.tokens = Double(rate.burst)
        self.last = now
    }

    /// Takes a token if there is one; else how long until there will be.
    mutating func take(now: NIODeadline) -> TimeAmount? {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        let seconds = (1 - tokens) / rate.perSecond
        return .nanoseconds(Int64(min(seconds, 86_400) * 1e9))
    }

    /// Reserves the next token even when it is still to come: how long until it is due (zero when one is there);
    /// nil, and nothing reserved, when that is longer than `maxWait`. Reservations keep their order.
    mutating func reserve(now: NIODeadline, maxWait: TimeAmount) -> TimeAmount? {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return .zero
        }
        let seconds = (1 - tokens) / rate.perSecond
        guard seconds * 1e9 <= Double(maxWait.nanoseconds) else { return nil }
        tokens -= 1
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// Whether the bucket is full again at `now` (it can be forgotten: a new one would be the same).
    mutating func isFull(now: NIODeadline) -> Bool {
        refill(now: now)
        return tokens >= Double(rate.burst)
    }

    private mutating func refill(now: NIODeadline) {
        guard now > last else { return }
        let elapsed = Double((now - last).nanoseconds) / 1e9
        tokens = min(Double(rate.burst), tokens + elapsed * rate.perSecond)
        last = now
    }
}

/// `{ rate: 200/s, burst: 400 }`: a sustained rate and how many may come at once.
public struct RateLimit: Sendable, Equatable {
    /// Tokens a second (`6/min` is 0.1).
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// `N/s`, `N/min` or `N/h` (N a positive number): tokens a second; nil for anything else.
    public static func parseRate(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let count = Double(parts[0]), count.isFinite, count > 0 else { return nil }
        switch parts[1] {
        case "s": return count
        case "min": return count / 60
        case "h": return count / 3600
        default: return nil
        }
    }
}
