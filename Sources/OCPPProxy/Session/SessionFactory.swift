import Logging
import NIOCore
import OCPP
import OCPPRules

/// The CSMS side of a new session: the open link, the upstream it goes to, and the route that chose it.
struct SessionUpstream {
    var link: FrameLink
    var upstream: Upstream
    var route: Route
}

/// Builds the session of an admitted charger: its context, its stages in order, and its path.
struct SessionFactory {
    let proxy: ProxyContext

    /// Stages every session runs, first to last. Credentials is the first; audit, limits and routing join here.
    func stages(for context: SessionContext) -> [FrameStage] {
        var stages: [FrameStage] = []
        if let audit = context.audit {
            // First: it sees every frame as it arrives, and what the other stages send as it leaves.
            stages.append(
                AuditStage(log: audit.log, session: audit.session, maxPendingCalls: context.limits.maxPendingCalls))
        }
        let messages = context.limits.messages.merging(proxy.configuration.chargers[context.identity]?.messageLimits)
        // Also when only overload protection needs it: it sheds Heartbeats at the overload step `shed`.
        if !messages.byAction.isEmpty || messages.fromCSMS != nil || proxy.configuration.overload != nil {
            stages.append(MessageLimitStage(context: context, limits: messages))
        }
        stages.append(CredentialStage(context: context, credentials: proxy.upstreamCredentials))
        return stages
    }

    /// Pass-through when the charger speaks the CSMS's version; else the chain of rule sets that joins the two
    /// (one file, or several in a row such as 1.5 → 1.6 → 2.0.1).
    func path(for context: SessionContext, listener: String) -> FramePath {
        guard context.chargerVersion != context.upstreamVersion,
            let ruleSets = proxy.rules?.chain(charger: context.chargerVersion, csms: context.upstreamVersion),
            let first = ruleSets.first
        else {
            return PassThroughPath(context: context)
        }
        // Tolerance profiles belong to the rule set that reads the charger's own frames.
        return TranslatingPath(
            context: context, ruleSets: ruleSets,
            tolerance: proxy.tolerance(for: context.identity, listener: listener, ruleSet: first),
            profile: proxy.profile(for: context.identity), store: proxy.stateStore)
    }

    func makeSession(
        identity: ChargerIdentity, version: OCPPVersion, generation: UInt64, listener: String, remoteAddress: String,
        charger: FrameLink, upstream: SessionUpstream, eventLoop: EventLoop, remote: AuditRemote? = nil
    ) -> ChargerSession {
        let target = upstream.upstream.configuration
        var logger = proxy.logger
        logger[metadataKey: "identity"] = "\(identity)"
        logger[metadataKey: "version"] = "\(version)"
        logger[metadataKey: "upstream"] = "\(target.name)"
        var context = SessionContext(
            identity: identity, chargerVersion: version, upstreamVersion: target.version,
            eventLoop: eventLoop, metrics: SessionMetrics(proxy: proxy.metrics, transport: charger.transport),
            limits: proxy.configuration.limits, logger: logger)
        context.upstreamName = target.name
        if let log = proxy.audit {
            let session = AuditSessionInfo(
                node: log.configuration.node, charger: identity.value, session: log.sessionID(generation),
                chargerVersion: version, upstreamVersion: target.version,
                remote: remote
                    ?? AuditRemote(
                        address: remoteAddress, securityProfile: 0, listener: listener),
                transport: charger.transport.rawValue, upstream: target.url)
            context.audit = (log, session)
        }
        let session = ChargerSession(
            context: context, listenerName: listener, remoteAddress: remoteAddress, generation: generation,
            charger: charger, upstream: upstream.link, stages: stages(for: context),
            path: path(for: context, listener: listener),
            reconnector: upstream.upstream.reconnector(proxy.configuration.upstreamOutage, store: proxy.stateStore),
            route: upstream.route)
        let proxy = self.proxy
        session.makeCutover = { target, route in
            guard target.canServe(version, rules: proxy.rules) else { return nil }
            var movedLogger = logger
            movedLogger[metadataKey: "upstream"] = "\(target.name)"
            var moved = SessionContext(
                identity: identity, chargerVersion: version, upstreamVersion: target.configuration.version,
                eventLoop: eventLoop, metrics: context.metrics, limits: context.limits, logger: movedLogger)
            moved.upstreamName = target.name
            moved.wallClock = context.wallClock
            if let audit = context.audit {
                moved.audit = (
                    audit.log,
                    audit.session.moved(to: target.configuration.url, version: target.configuration.version)
                )
            }
            return CutoverTarget(
                upstream: target, route: route, context: moved,
                path: SessionFactory(proxy: proxy).path(for: moved, listener: listener),
                reconnector: target.reconnector(proxy.configuration.upstreamOutage, store: proxy.stateStore))
        }
        session.makeShadow = { route, record in
            guard let name = route.shadow, let shadow = proxy.upstreams[name] else { return nil }
            guard shadow.canServe(version, rules: proxy.rules) else {
                logger.warning(
                    "no shadow for this charger: shadow \(name) speaks \(shadow.configuration.version) and no rules translate \(version) to it"
                )
                proxy.metrics.shadowDropped("version", upstream: name)
                return nil
            }
            let factory = SessionFactory(proxy: proxy)
            let shadowContext = factory.shadowContext(of: context, shadow: shadow)
            return ShadowLeg(
                upstream: shadow, context: shadowContext, path: factory.path(for: shadowContext, listener: listener),
                settings: proxy.configuration.shadow, reports: proxy.shadowReports, metrics: proxy.metrics,
                record: record)
        }
        session.followShadow(of: upstream.route)
        return session
    }

    /// The shadow's side of a session: the charger as it is, the shadow's version and name on the CSMS side, its
    /// frames not counted as the charger's.
    private func shadowContext(of context: SessionContext, shadow: Upstream) -> SessionContext {
        var logger = context.logger
        logger[metadataKey: "shadow"] = "\(shadow.name)"
        var metrics = context.metrics
        metrics.countsFrames = false
        var shadowContext = SessionContext(
            identity: context.identity, chargerVersion: context.chargerVersion,
            upstreamVersion: shadow.configuration.version, eventLoop: context.eventLoop, metrics: metrics,
            limits: context.limits, logger: logger)
        shadowContext.upstreamName = shadow.name
        shadowContext.wallClock = context.wallClock
        return shadowContext
    }
}
