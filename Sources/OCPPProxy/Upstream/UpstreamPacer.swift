import NIOConcurrencyHelpers
import NIOCore

/// Opens new upstream links at most `limits.upstreamConnects` a second for the whole proxy: after a CSMS or network
/// outage every charger reconnects at once, and the CSMS would fall over again if all their links reached it
/// together. A charger beyond the rate waits in its handshake for its slot (spread by up to `jitter`), as long as
/// its handshake has time for it; else it is refused with 503 and Retry-After.
final class UpstreamPacer: Sendable {
    enum Slot: Equatable {
        /// Connect after this long (zero: at once).
        case after(TimeAmount)
        /// No slot within the wait a handshake allows: come back after this many seconds.
        case refused(retryAfter: Int)
    }

    private let bucket: NIOLockedValueBox<TokenBucket>?
    private let jitter: TimeAmount
    /// The longest a charger waits for its slot: what its handshake timeout leaves after the connect itself.
    let maxWait: TimeAmount

    init(_ limits: LimitsConfiguration, connectTimeout: TimeAmount, now: NIODeadline = .now()) {
        bucket = limits.upstreamConnects.map { NIOLockedValueBox(TokenBucket($0, now: now)) }
        jitter = limits.upstreamConnectJitter
        maxWait = max(.zero, min(connectTimeout, limits.handshakeTimeout - connectTimeout - .seconds(1)))
    }

    /// The slot of one new upstream link; `random` (0..<1) spreads the ones that wait.
    func reserve(now: NIODeadline = .now(), random: Double = Double.random(in: 0..<1)) -> Slot {
        guard let bucket else { return .after(.zero) }
        let wait = bucket.withLockedValue { $0.reserve(now: now, maxWait: maxWait) }
        guard let wait else {
            let perSecond = bucket.withLockedValue { $0.rate.perSecond }
            return .refused(retryAfter: max(1, Int((1 / perSecond).rounded(.up))))
        }
        guard wait > .zero else { return .after(.zero) }
        let spread = TimeAmount.nanoseconds(Int64(Double(jitter.nanoseconds) * random))
        return .after(min(maxWait, wait + spread))
    }
}
