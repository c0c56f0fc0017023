import NIOCore
import Yams

/// `upstreamOutage:`: what a charger's session does when its CSMS link drops while the charger is connected.
public struct UpstreamOutageConfiguration: Sendable {
    /// How long the charger stays connected while the proxy reconnects to the CSMS; then it is closed with 1011.
    public var grace: TimeAmount = .seconds(60)
    /// The first wait between reconnect attempts; it doubles each attempt up to `maxBackoff`, each wait drawn at
    /// random between half and all of it (jitter).
    public var initialBackoff: TimeAmount = .seconds(1)
    public var maxBackoff: TimeAmount = .seconds(30)
    /// Transaction messages one charger may have acknowledged by the proxy and not yet delivered; beyond, its
    /// transaction messages wait unacknowledged like any other CALL.
    public var maxQueued: Int = 10000
}

extension ConfigurationReader {
    /// `off` keeps the behaviour without outage handling: the charger is closed as soon as its CSMS link drops.
    mutating func readUpstreamOutage(_ node: Node?) -> UpstreamOutageConfiguration? {
        var outage = UpstreamOutageConfiguration()
        guard let node else { return outage }
        if case .scalar(let scalar) = node, scalar.string == "off" { return nil }
        guard let map = mapping(node, "upstreamOutage") else { return outage }
        checkKeys(map, "upstreamOutage", allowed: ["grace", "backoff", "maxQueued"])
        outage.grace = duration(map["grace"], "upstreamOutage.grace", positive: true) ?? outage.grace
        outage.maxQueued =
            integer(map["maxQueued"], "upstreamOutage.maxQueued", range: 1...10_000_000) ?? outage.maxQueued
        if let backoff = map["backoff"], let backoffMap = mapping(backoff, "upstreamOutage.backoff") {
            checkKeys(backoffMap, "upstreamOutage.backoff", allowed: ["initial", "max"])
            outage.initialBackoff =
                duration(backoffMap["initial"], "upstreamOutage.backoff.initial", positive: true)
                ?? outage.initialBackoff
            outage.maxBackoff =
                duration(backoffMap["max"], "upstreamOutage.backoff.max", positive: true) ?? outage.maxBackoff
            if outage.maxBackoff < outage.initialBackoff {
                fail(
                    "upstreamOutage.backoff.max", backoffMap["max"] ?? backoff,
                    "expected at least upstreamOutage.backoff.initial (\(Self.seconds(outage.initialBackoff))), got \(Self.seconds(outage.maxBackoff))"
                )
            }
        }
        return outage
    }
}
