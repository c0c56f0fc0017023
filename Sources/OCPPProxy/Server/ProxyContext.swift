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
    /// Every configured CSMS, by name: each with its own connector, TLS, health and pacing.
    let upstreams: [String: Upstream]
    /// `routing.default`'s.
    let defaultUpstream: Upstream
    /// Where each charger's link goes: the configuration's routes under those set through the admin API.
    let routes: LiveRoutes
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
    /// What the shadow CSMSs answered differently, per charger, for `GET /api/shadow/{identity}`.
    let shadowReports: ShadowReports

    /// `upstreamTLS`: the client TLS context of each `wss://` upstream, by name.
    init(
        configuration: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger, listenerTLS: [String: ListenerTLS],
        upstreamTLS: [String: NIOSSLContext] = [:], upstreamCredentials: UpstreamCredentials,
        rules: RuleLibrary? = nil, stateStore: StateStore, audit: AuditLog? = nil,
        routeOverrides: [String: String] = [:]
    ) {
        self.audit = audit
        self.shadowReports = ShadowReports(kept: configuration.shadow.keptPerCharger)
        self.admissionLimits = AdmissionLimits(configuration.limits, listeners: configuration.listeners)
        self.rules = rules
        self.stateStore = stateStore
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.listenerTLS = listenerTLS
        self.upstreamCredentials = upstreamCredentials
        self.authenticator = ChargerAuthenticator(chargers: configuration.chargers)
        self.lockout = Lockout(configuration.lockout)
        self.routes = LiveRoutes(configuration.routes, overrides: routeOverrides)
        func make(_ upstream: UpstreamConfiguration) -> Upstream {
            Upstream(
                upstream, proxy: configuration, tlsContext: upstreamTLS[upstream.name],
                credentials: upstreamCredentials, metrics: metrics, logger: logger)
        }
        let defaultUpstream = make(configuration.upstream)
        var upstreams = [defaultUpstream.name: defaultUpstream]
        for upstream in configuration.upstreams where upstream.name != defaultUpstream.name {
            upstreams[upstream.name] = make(upstream)
        }
        self.defaultUpstream = defaultUpstream
        self.upstreams = upstreams
    }

    /// A charger's route and the upstream it names. Configuration reading guarantees every route names a
    /// configured upstream; should one not, the default upstream serves it rather than a trap.
    func route(for identity: ChargerIdentity) -> (route: Route, upstream: Upstream) {
        let route = routes.route(for: identity)
        if let upstream = upstreams[route.upstream] { return (route, upstream) }
        logger.error("route of \(identity) names unknown upstream \(route.upstream); using \(defaultUpstream.name)")
        return (Route(upstream: defaultUpstream.name, reason: .default), defaultUpstream)
    }

    /// SIGHUP: reads the routes of the configuration file again (`routing`, `chargers[].upstream`) and cuts every
    /// connected charger whose route changed over to its new upstream. Upstreams themselves are read at start only:
    /// a file that names another set of them is refused, with the routes left as they were.
    func reloadRoutes(from path: String) {
        let reloaded: ProxyConfiguration
        do {
            reloaded = try ConfigurationLoader().load(path: path)
        } catch {
            for issue in error.issues { logger.error("SIGHUP: routes not reloaded: \(issue)") }
            return
        }
        let known = Set(upstreams.keys)
        let named = Set(reloaded.upstreams.map(\.name))
        guard named == known else {
            logger.error(
                "SIGHUP: routes not reloaded: the file names upstreams \(named.sorted().joined(separator: ", ")) and the proxy runs \(known.sorted().joined(separator: ", ")); upstreams change with a restart"
            )
            return
        }
        routes.replace(reloaded.routes)
        logger.notice("SIGHUP: routes reloaded from \(path)")
        audit?.record(.event("reload", ["what": .string("routes"), "file": .string(path)]))
        applyRoutes()
    }

    /// Cuts every connected charger whose effective route names another upstream over to it.
    func applyRoutes() {
        for session in registry.sessions {
            session.eventLoop.execute { [self] in
                let (route, upstream) = self.route(for: session.identity)
                session.cutOver(to: upstream, route: route)
            }
        }
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
