import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// Whether the node can reach one CSMS (each upstream has its own). It goes down when a charger's outage grace runs out with the CSMS still
/// unreachable, and up as soon as any upstream link opens. While it is down, new chargers are answered 503 with a
/// Retry-After spread between `backoff.initial` and `backoff.max` (so that they do not all come back together),
/// except one handshake every `backoff.initial`, which tries the CSMS and finds out whether it is back.
final class UpstreamHealth: Sendable {
    private struct State {
        var down = false
        var nextProbe = NIODeadline.uptimeNanoseconds(0)
    }

    private let state = NIOLockedValueBox(State())
    private let probeInterval: TimeAmount
    private let retryAfter: ClosedRange<Int>
    private let gauge: Gauge

    init(
        _ configuration: UpstreamOutageConfiguration?, metrics: ProxyMetrics,
        upstream: String = UpstreamConfiguration.defaultName
    ) {
        let outage = configuration ?? UpstreamOutageConfiguration()
        probeInterval = outage.initialBackoff
        let low = max(1, Int(outage.initialBackoff.nanoseconds / 1_000_000_000))
        retryAfter = low...max(low, Int(outage.maxBackoff.nanoseconds / 1_000_000_000))
        gauge = metrics.upstreamReachable(upstream)
        gauge.set(Int64(1))
    }

    var isDown: Bool { state.withLockedValue { $0.down } }

    /// An upstream link opened. True when the CSMS was down until now.
    @discardableResult
    func reachable() -> Bool {
        let was = state.withLockedValue { state in
            defer { state.down = false }
            return state.down
        }
        if was { gauge.set(Int64(1)) }
        return was
    }

    /// A charger's grace ran out. True when the CSMS was up until now.
    @discardableResult
    func unreachable(now: NIODeadline = .now()) -> Bool {
        let newly = state.withLockedValue { state in
            defer {
                state.down = true
                state.nextProbe = now + probeInterval
            }
            return !state.down
        }
        if newly { gauge.set(Int64(0)) }
        return newly
    }

    /// nil: a new charger may try the CSMS now; else the Retry-After (seconds) of its 503.
    func admit(now: NIODeadline = .now(), random: Double = Double.random(in: 0..<1)) -> Int? {
        state.withLockedValue { state in
            guard state.down else { return nil }
            if now >= state.nextProbe {
                state.nextProbe = now + probeInterval
                return nil
            }
            let span = Double(retryAfter.upperBound - retryAfter.lowerBound)
            return retryAfter.lowerBound + Int((span * random).rounded(.down))
        }
    }
}
