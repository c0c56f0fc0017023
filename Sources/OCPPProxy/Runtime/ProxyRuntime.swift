import Logging
import NIOCore
import NIOSSL
import OCPP

/// What every listener and session of one proxy process shares.
final class ProxyRuntime: @unchecked Sendable {
    let configuration: ProxyConfiguration
    let registry = SessionRegistry()
    let metrics: ProxyMetrics
    let connector: UpstreamConnector
    let logger: Logger
    let authenticator: ChargerAuthenticator
    let lockout: Lockout
    let upstreamCredentials: UpstreamCredentials
    /// TLS of each listener that has it, by listener name.
    let listenerTLS: [String: ListenerTLS]

    init(
        configuration: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger, listenerTLS: [String: ListenerTLS],
        upstreamTLS: NIOSSLContext?, upstreamCredentials: UpstreamCredentials
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.listenerTLS = listenerTLS
        self.upstreamCredentials = upstreamCredentials
        self.authenticator = ChargerAuthenticator(chargers: configuration.chargers)
        self.lockout = Lockout(configuration.lockout)
        self.connector = UpstreamConnector(
            configuration: configuration.upstream, limits: configuration.limits, keepalive: configuration.keepalive,
            tlsContext: upstreamTLS, credentials: upstreamCredentials, logger: logger)
    }

    /// Whether a charger speaking `version` can be served by the configured upstream.
    func canServe(_ version: OCPPVersion) -> Bool {
        version == configuration.upstream.version
    }
}
