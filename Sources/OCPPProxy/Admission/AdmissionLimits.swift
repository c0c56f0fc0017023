import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The admission budgets of one proxy (issue 15): handshakes a second for the whole proxy, per remote address and
/// per identity (a charger reconnecting in a loop), as token buckets; and connected chargers, in total
/// (`limits.maxConnections`) and per listener (`listeners[].maxConnections`). Shared by every event loop.
final class AdmissionLimits: Sendable {
    /// Why a handshake was refused: its answer (503 when the proxy as a whole is at its budget, 429 when one
    /// address or identity is), the rule, and when to come back.
    struct Refusal: Equatable {
        var status: HTTPResponseStatus
        var rule: String
        var retryAfter: Int
        var message: String
    }

    private struct State {
        var global: TokenBucket?
        var perAddress: [String: TokenBucket] = [:]
        var perIdentity: [String: TokenBucket] = [:]
        var connected = 0
        var connectedByListener: [String: Int] = [:]
        /// Per rule: when a refusal was last logged, and how many were not logged since.
        var logged: [String: (at: NIODeadline, suppressed: Int)] = [:]
    }

    /// How often a refusal of one rule is logged: a storm is one line per interval, with its count.
    static let logInterval = TimeAmount.seconds(10)

    /// Whether to log a refusal of `rule` now; then the number of refusals not logged since the last line.
    func shouldLog(_ rule: String, now: NIODeadline = .now()) -> Int? {
        state.withLockedValue { state in
            if let last = state.logged[rule], now - last.at < Self.logInterval {
                state.logged[rule] = (last.at, last.suppressed + 1)
                return nil
            }
            let suppressed = state.logged[rule]?.suppressed ?? 0
            state.logged[rule] = (now, 0)
            return suppressed
        }
    }

    private let limits: LimitsConfiguration
    private let listenerMaxima: [String: Int]
    private let state: NIOLockedValueBox<State>
    /// Buckets kept per address or identity before full ones are forgotten.
    static let tableBound = 10_000

    init(_ limits: LimitsConfiguration, listeners: [ListenerConfiguration], now: NIODeadline = .now()) {
        self.limits = limits
        var maxima: [String: Int] = [:]
        for listener in listeners { maxima[listener.name] = listener.maxConnections }
        self.listenerMaxima = maxima
        self.state = NIOLockedValueBox(State(global: limits.handshakes.map { TokenBucket($0, now: now) }))
    }

    /// One handshake from `address` for `identity`: a token from each budget, or the first that has none. Nothing is
    /// taken from any budget when one refuses.
    func admitHandshake(address: String, identity: String, now: NIODeadline = .now()) -> Refusal? {
        state.withLockedValue { state in
            // Each budget is tried on a copy; the copies are kept only when all of them had a token.
            var global = state.global
            if let wait = global?.take(now: now) {
                return Self.refusal(
                    .serviceUnavailable, "handshakes", wait, "the proxy admits no more handshakes a second now")
            }
            var perAddress = limits.handshakesPerAddress.map { state.perAddress[address] ?? TokenBucket($0, now: now) }
            if let wait = perAddress?.take(now: now) {
                return Self.refusal(
                    .tooManyRequests, "handshakes_per_address", wait, "too many handshakes from \(address)")
            }
            var perIdentity = limits.handshakesPerIdentity.map {
                state.perIdentity[identity] ?? TokenBucket($0, now: now)
            }
            if let wait = perIdentity?.take(now: now) {
                return Self.refusal(
                    .tooManyRequests, "handshakes_per_identity", wait, "charger \(identity) reconnects too often")
            }
            state.global = global
            if let perAddress { Self.keep(perAddress, for: address, in: &state.perAddress, now: now) }
            if let perIdentity { Self.keep(perIdentity, for: identity, in: &state.perIdentity, now: now) }
            return nil
        }
    }

    /// Counts a charger connected on `listener`, or refuses it when the listener or the proxy is full.
    func claimConnection(listener: String) -> Refusal? {
        state.withLockedValue { state in
            if state.connected >= limits.maxConnections {
                return Refusal(
                    status: .serviceUnavailable, rule: "max_connections", retryAfter: 10,
                    message: "the proxy holds limits.maxConnections (\(limits.maxConnections)) chargers")
            }
            let onListener = state.connectedByListener[listener, default: 0]
            if let maximum = listenerMaxima[listener] ?? nil, onListener >= maximum {
                return Refusal(
                    status: .serviceUnavailable, rule: "max_connections_listener", retryAfter: 10,
                    message: "listener \(listener) holds its maxConnections (\(maximum)) chargers")
            }
            state.connected += 1
            state.connectedByListener[listener] = onListener + 1
            return nil
        }
    }

    func releaseConnection(listener: String) {
        state.withLockedValue { state in
            state.connected = max(0, state.connected - 1)
            state.connectedByListener[listener] = max(0, state.connectedByListener[listener, default: 1] - 1)
        }
    }

    var connected: Int { state.withLockedValue { $0.connected } }

    private static func keep(
        _ bucket: TokenBucket, for key: String, in table: inout [String: TokenBucket], now: NIODeadline
    ) {
        table[key] = bucket
        if table.count > tableBound {
            // A full bucket is the same as none: forget those, so a spray of addresses cannot grow the table.
            table = table.filter { _, value in
                var bucket = value
                return !bucket.isFull(now: now)
            }
        }
    }

    private static func refusal(
        _ status: HTTPResponseStatus, _ rule: String, _ wait: TimeAmount, _ message: String
    ) -> Refusal {
        let seconds = max(1, Int((wait.nanoseconds + 999_999_999) / 1_000_000_000))
        return Refusal(status: status, rule: rule, retryAfter: seconds, message: message)
    }
}

/// One charger counted against `maxConnections`, released once whatever happens to it.
final class ConnectionClaim: Sendable {
    private let limits: AdmissionLimits
    private let listener: String
    private let released = NIOLockedValueBox(false)

    init(limits: AdmissionLimits, listener: String) {
        self.limits = limits
        self.listener = listener
    }

    func release() {
        let first = released.withLockedValue { released in
            defer { released = true }
            return !released
        }
        if first { limits.releaseConnection(listener: listener) }
    }
}
