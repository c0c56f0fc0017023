import Logging
import NIOCore
import NIOSSL
import OCPP
import OCPPRules

/// What every listener and session of one proxy process shares.
final class ProxyContext: Sendable {
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
    /// The translation rules, when a rules directory is configured.
    let rules: RuleLibrary?
    let stateStore: StateStore
    /// The audit log, when `audit:` is configured.
    let audit: AuditLog?
    /// Handshakes a second and connected chargers.
    let admissionLimits: AdmissionLimits
    /// New upstream links a second.
    let upstreamPacer: UpstreamPacer
    /// Whether the CSMS is reachable (after a charger's outage grace ran out, it is not until a link opens).
    let upstreamHealth: UpstreamHealth

    init(
        configuration: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger, listenerTLS: [String: ListenerTLS],
        upstreamTLS: NIOSSLContext?, upstreamCredentials: UpstreamCredentials, rules: RuleLibrary? = nil,
        stateStore: StateStore, audit: AuditLog? = nil
    ) {
        self.audit = audit
        self.admissionLimits = AdmissionLimits(configuration.limits, listeners: configuration.listeners)
        self.upstreamPacer = UpstreamPacer(configuration.limits, connectTimeout: configuration.upstream.connectTimeout)
        self.upstreamHealth = UpstreamHealth(configuration.upstreamOutage, metrics: metrics)
        self.rules = rules
        self.stateStore = stateStore
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

    /// What a session needs to reopen its CSMS link after an outage.
    var reconnector: UpstreamReconnector {
        let connector = self.connector
        return UpstreamReconnector(
            configuration: configuration.upstreamOutage ?? UpstreamOutageConfiguration(),
            handlesOutages: configuration.upstreamOutage != nil,
            connect: { identity, eventLoop in connector.connect(identity, on: eventLoop) }, pacer: upstreamPacer,
            health: upstreamHealth, store: stateStore)
    }

    /// Whether a charger speaking `version` can be served by the configured upstream: the same version, or rule
    /// files that join the two (one, or several in a row such as 1.5 → 1.6 → 2.0.1).
    func canServe(_ version: OCPPVersion) -> Bool {
        version == configuration.upstream.version
            || rules?.chain(charger: version, csms: configuration.upstream.version) != nil
    }

    /// The vendor quirks accepted from a translated charger: its own tolerance profile, else its listener's.
    /// What translation needs to know of a charger from the configuration: its capabilities and EVSE layout.
    func profile(for identity: ChargerIdentity) -> ChargerProfile {
        let registration = configuration.chargers[identity]
        return ChargerProfile(
            identity: identity.value, capabilities: registration?.capabilities, layout: registration?.layout,
            models: configuration.models)
    }

    func tolerance(for identity: ChargerIdentity, listener: String, ruleSet: RuleSet) -> Tolerance {
        let name =
            configuration.chargers[identity]?.tolerance
            ?? configuration.listeners.first { $0.name == listener }?.tolerance
        return name.flatMap { ruleSet.tolerance[$0] } ?? .strict
    }
}
