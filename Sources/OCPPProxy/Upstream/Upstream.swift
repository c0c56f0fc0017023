import Logging
import NIOCore
import NIOSSL
import OCPP
import OCPPRules

/// One CSMS at run time, as `upstreams[]` (or `upstream:`) configures it: the connector that opens its links with
/// its own TLS context, its health (one CSMS down refuses only the chargers routed to it), and its pacing of new
/// links (`limits.upstreamConnects` protects each CSMS: a storm toward one does not hold back chargers of another).
final class Upstream: Sendable {
    let configuration: UpstreamConfiguration
    let connector: UpstreamConnector
    let health: UpstreamHealth
    let pacer: UpstreamPacer

    var name: String { configuration.name }

    init(
        _ configuration: UpstreamConfiguration, proxy: ProxyConfiguration, tlsContext: NIOSSLContext?,
        credentials: UpstreamCredentials, metrics: ProxyMetrics, logger: Logger
    ) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "upstream"] = "\(configuration.name)"
        connector = UpstreamConnector(
            configuration: configuration, limits: proxy.limits, keepalive: proxy.keepalive, tlsContext: tlsContext,
            credentials: credentials, logger: logger)
        health = UpstreamHealth(proxy.upstreamOutage, metrics: metrics, upstream: configuration.name)
        pacer = UpstreamPacer(proxy.limits, connectTimeout: configuration.connectTimeout)
    }

    /// What a session linked to this CSMS needs to reopen its link after an outage: this connector, pacing and
    /// health, never another upstream's.
    func reconnector(_ outage: UpstreamOutageConfiguration?, store: StateStore) -> UpstreamReconnector {
        let connector = self.connector
        return UpstreamReconnector(
            configuration: outage ?? UpstreamOutageConfiguration(), handlesOutages: outage != nil,
            connect: { identity, eventLoop in connector.connect(identity, on: eventLoop) }, pacer: pacer,
            health: health, store: store)
    }

    /// A link for a session that is already running (a shadow, a cutover), in its turn under `limits.upstreamConnects`;
    /// nil when pacing refuses one now (the caller tries again later).
    func pacedConnect(_ identity: ChargerIdentity, on eventLoop: EventLoop) -> EventLoopFuture<WebSocketLink>? {
        let wait: TimeAmount
        switch pacer.reserve() {
        case .after(let amount): wait = amount
        case .refused: return nil
        }
        let connector = self.connector
        guard wait > .zero else { return connector.connect(identity, on: eventLoop) }
        return eventLoop.scheduleTask(in: wait) {}.futureResult.flatMap { connector.connect(identity, on: eventLoop) }
    }

    /// Whether a charger speaking `version` can be linked to this CSMS: the same version, or rule files that join
    /// the two (one, or several in a row such as 1.5 → 1.6 → 2.0.1).
    func canServe(_ version: OCPPVersion, rules: RuleLibrary?) -> Bool {
        version == configuration.version || rules?.chain(charger: version, csms: configuration.version) != nil
    }
}
