import Logging
import NIOCore
import OCPP

/// What every listener and session of one proxy process shares.
final class ProxyRuntime: @unchecked Sendable {
    let configuration: ProxyConfiguration
    let registry = SessionRegistry()
    let metrics: ProxyMetrics
    let connector: UpstreamConnector
    let logger: Logger

    init(configuration: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.connector = UpstreamConnector(
            configuration: configuration.upstream, limits: configuration.limits, keepalive: configuration.keepalive)
    }

    /// Whether a charger speaking `version` can be served by the configured upstream.
    func canServe(_ version: OCPPVersion) -> Bool {
        version == configuration.upstream.version
    }
}
