import Logging
import NIOCore
import OCPP
import OCPPRules

/// Builds the session of an admitted charger: its context, its stages in order, and its path.
struct SessionFactory {
    let proxy: ProxyContext

    /// Stages every session runs, first to last. Credentials is the first; audit, limits and routing join here.
    func stages(for context: SessionContext) -> [FrameStage] {
        [CredentialStage(context: context, credentials: proxy.upstreamCredentials)]
    }

    func path(for context: SessionContext, listener: String) -> FramePath {
        guard let ruleSet = proxy.ruleSet(for: context.chargerVersion) else {
            return PassThroughPath(context: context)
        }
        return TranslatingPath(
            context: context, ruleSet: ruleSet,
            tolerance: proxy.tolerance(for: context.identity, listener: listener, ruleSet: ruleSet),
            store: proxy.stateStore)
    }

    func makeSession(
        identity: ChargerIdentity, version: OCPPVersion, generation: UInt64, listener: String, remoteAddress: String,
        charger: FrameLink, upstream: FrameLink, eventLoop: EventLoop
    ) -> ChargerSession {
        var logger = proxy.logger
        logger[metadataKey: "identity"] = "\(identity)"
        logger[metadataKey: "version"] = "\(version)"
        let context = SessionContext(
            identity: identity, chargerVersion: version, upstreamVersion: proxy.configuration.upstream.version,
            eventLoop: eventLoop, metrics: SessionMetrics(proxy: proxy.metrics, transport: charger.transport),
            limits: proxy.configuration.limits, logger: logger)
        return ChargerSession(
            context: context, listenerName: listener, remoteAddress: remoteAddress, generation: generation,
            charger: charger, upstream: upstream, stages: stages(for: context),
            path: path(for: context, listener: listener))
    }
}
