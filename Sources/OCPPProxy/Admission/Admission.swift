import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket
import OCPP

/// What admission decided about one connection's WebSocket upgrade.
enum AdmissionDecision {
    /// Answered with this status instead of the upgrade; nothing is left open.
    case refuse(AdmissionRefusal)
    /// OCPP-J §3.2: none of the offered subprotocols is served: upgrade without one, then close at once.
    case upgradeWithoutSubprotocol(offered: [String])
    /// The upgrade goes ahead with these response headers; the upstream link is open and the session built and
    /// registered (before the 101 is written, so a charger that has its answer is listed).
    case admit(AdmittedCharger, link: WebSocketLink, headers: HTTPHeaders)

}

/// A charger admission let in: its upstream link is open, its session built and registered.
struct AdmittedCharger {
    var identity: ChargerIdentity
    var generation: UInt64
    var upstream: WebSocketLink
    /// Its session, whose charger link is the one the transport gave ``Admission/open(_:version:channel:charger:)``.
    var session: ChargerSession
    /// False when a newer connection claimed the identity meanwhile: this one is closed as replaced.
    var registered: Bool
}

/// What became of a charger admission opened: in, or refused.
enum AdmissionOutcome {
    case admitted(AdmittedCharger)
    case refused(AdmissionRefusal)
}

/// Why admission refused a charger: the HTTP status and text it gets, the metric label, extra headers.
struct AdmissionRefusal: Error {
    var status: HTTPResponseStatus
    var reason: String
    var metric: String
    var headers: [(String, String)] = []
}

/// Decides, for one incoming connection, whether its WebSocket upgrade goes ahead: identity from the URL, security
/// profile, subprotocol, duplicate identities, and the upstream link, which must be open before the charger's
/// upgrade completes. It returns a decision; ``ChargerUpgrade`` carries it out on the connection.
final class Admission {
    private let listener: ListenerConfiguration
    private let runtime: ProxyContext
    private var logger: Logger
    /// For the audit log's records of refusals.
    private var identity: ChargerIdentity?
    private let remoteAddress: String

    init(listener: ListenerConfiguration, runtime: ProxyContext, channel: Channel) {
        self.listener = listener
        self.runtime = runtime
        self.logger = runtime.logger
        self.remoteAddress = Self.describe(channel.remoteAddress)
        logger[metadataKey: "listener"] = "\(listener.name)"
        logger[metadataKey: "remote"] = "\(Self.describe(channel.remoteAddress))"
    }

    // MARK: Before the upgrade

    /// The decision about one upgrade request.
    func decide(channel: Channel, request: HTTPRequestHead) -> EventLoopFuture<AdmissionDecision> {
        let eventLoop = channel.eventLoop
        let identity: ChargerIdentity
        switch ConnectionPath.resolve(requestTarget: request.uri, mountPath: listener.path) {
        case .notFound:
            return refuse(
                .notFound, "no charger endpoint at \(request.uri); expected \(listener.path)/{identity}",
                metric: "path", on: eventLoop
            ).map { .refuse($0) }
        case .badIdentity(let error):
            return refuse(.badRequest, "\(error)", metric: "identity", on: eventLoop).map { .refuse($0) }
        case .charger(let id):
            identity = id
        }
        logger[metadataKey: "identity"] = "\(identity)"
        self.identity = identity
        // Before the credentials are checked: a storm costs a token each, not a password hash each.
        if let refusal = limitHandshake(identity, channel: channel) {
            return eventLoop.makeSucceededFuture(.refuse(refusal))
        }
        return authenticate(identity, channel: channel, request: request).flatMap { [self] refusal in
            if let refusal { return eventLoop.makeSucceededFuture(.refuse(refusal)) }
            return admit(identity, channel: channel, request: request)
        }
    }

    /// The security profile's checks of one request (every SOAP request passes them, not only the first): nil when
    /// they pass, else the refusal, counted and logged, and fed to the lockout.
    func authenticate(_ identity: ChargerIdentity, channel: Channel, request: HTTPRequestHead)
        -> EventLoopFuture<AdmissionRefusal?>
    {
        logger[metadataKey: "identity"] = "\(identity)"
        self.identity = identity
        return checkCredentials(identity, channel: channel, request: request).map { _ in nil }.flatMapError {
            [self] error in
            guard let failure = error as? AuthenticationFailure else {
                return refuse(
                    .internalServerError, "admission failed: \(error)", metric: "internal", on: channel.eventLoop
                )
                .map { Optional($0) }
            }
            return refuseAuthentication(failure, channel: channel).map { Optional($0) }
        }
    }

    /// Security profile checks: lockout, Basic auth (profiles 1-2), client certificate (profile 3),
    /// registration and registered profile.
    private func checkCredentials(_ identity: ChargerIdentity, channel: Channel, request: HTTPRequestHead)
        -> EventLoopFuture<ChargerRegistration?>
    {
        let eventLoop = channel.eventLoop
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        if let remaining = runtime.lockout.remaining(address: address, identity: identity.value) {
            let seconds = max(1, (remaining.nanoseconds + 999_999_999) / 1_000_000_000)
            return eventLoop.makeFailedFuture(
                AuthenticationFailure(
                    status: .tooManyRequests, reason: "locked_out",
                    message:
                        "too many failed authentications of \(identity) or from \(address); locked out for \(seconds)s more",
                    headers: [("Retry-After", "\(seconds)")]))
        }
        let tls = runtime.listenerTLS[listener.name]
        if tls?.configuration.allowLegacyTLS == true,
            let version = try? channel.pipeline.syncOperations.nioSSL_tlsVersion(),
            version == .tlsv1 || version == .tlsv11
        {
            logger.warning("legacy TLS connection (\(version)) admitted by tls.allowLegacyTLS")
        }
        let certificate =
            listener.securityProfile == 3 ? (try? channel.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil : nil
        return runtime.authenticator.authenticate(
            identity, request: request, peerCertificate: certificate, listener: listener,
            revocations: tls?.revocations, on: eventLoop
        ).map { [self] registration in
            if listener.securityProfile > 0 {
                runtime.lockout.recordSuccess(address: address, identity: identity.value)
            }
            return registration
        }
    }

    private func refuseAuthentication(_ failure: AuthenticationFailure, channel: Channel) -> EventLoopFuture<
        AdmissionRefusal
    > {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        runtime.metrics.authenticationFailed(
            listener: listener.name, reason: failure.reason, transport: listener.transport)
        if failure.reason != "locked_out"
            && runtime.lockout.recordFailure(address: address, identity: identity?.value)
        {
            logger.warning(
                "locking out \(identity.map { "\($0) at " } ?? "")\(address) after repeated authentication failures")
        }
        var headers = failure.headers
        if failure.status == .unauthorized {
            headers.append(("WWW-Authenticate", "Basic realm=\"OCPP\", charset=\"UTF-8\""))
        }
        // The answer says only what kind of refusal it is: an unknown identity must look exactly like a wrong
        // password. The log line has the detail, never a credential.
        let answer = failure.status == .tooManyRequests ? failure.message : "authentication failed"
        return refuse(
            failure.status, answer, metric: "auth_\(failure.reason)", headers: headers,
            detail: "authentication failed (\(failure.reason)): \(failure.message)", on: channel.eventLoop)
    }

    /// After authentication: subprotocol, version, duplicate identity, and the upstream link.
    private func admit(
        _ identity: ChargerIdentity, channel: Channel, request: HTTPRequestHead
    ) -> EventLoopFuture<AdmissionDecision> {
        let eventLoop = channel.eventLoop
        let version: OCPPVersion
        var responseHeaders = HTTPHeaders()
        switch SubprotocolNegotiation.negotiate(
            offeredHeaderValues: request.headers["sec-websocket-protocol"], served: listener.versions,
            defaultVersion: listener.defaultVersion)
        {
        case .missing:
            return refuse(
                .badRequest, "no Sec-WebSocket-Protocol offered and the listener has no defaultVersion",
                metric: "subprotocol",
                on: eventLoop
            ).map { .refuse($0) }
        case .noneAcceptable(let offered):
            return eventLoop.makeSucceededFuture(.upgradeWithoutSubprotocol(offered: offered))
        case .defaulted(let v):
            version = v
        case .agreed(let v):
            version = v
            responseHeaders.add(name: "Sec-WebSocket-Protocol", value: v.subprotocol)
        }
        let link = WebSocketLink(
            side: .charger, isClient: false, keepalive: runtime.configuration.keepalive,
            maxFrameBytes: runtime.configuration.limits.maxFrameBytes)
        return open(identity, version: version, channel: channel, charger: link).map { outcome in
            switch outcome {
            case .admitted(let admitted): return .admit(admitted, link: link, headers: responseHeaders)
            case .refused(let refusal): return .refuse(refusal)
            }
        }
    }

    /// The handshake budgets (`limits.handshakes`, `…PerAddress`, `…PerIdentity`): nil when a token was taken from
    /// each, else the refusal (503 or 429 with Retry-After), counted, recorded, and logged once per interval. At the
    /// overload step `refuse` or above, every handshake is refused (503, rule `overload`) before any budget.
    func limitHandshake(_ identity: ChargerIdentity, channel: Channel) -> AdmissionRefusal? {
        if let overload = runtime.configuration.overload, runtime.metrics.overload.step >= .refuse {
            return limitRefusal(overload.handshakeRefusal())
        }
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        guard let limit = runtime.admissionLimits.admitHandshake(address: address, identity: identity.value) else {
            return nil
        }
        return limitRefusal(limit)
    }

    private func limitRefusal(_ limit: AdmissionLimits.Refusal) -> AdmissionRefusal {
        let suppressed = runtime.admissionLimits.shouldLog(limit.rule)
        return refuseNow(
            limit.status, limit.message, metric: limit.rule, headers: [("Retry-After", "\(limit.retryAfter)")],
            detail: suppressed.map { "\(limit.message) (\($0) more refused by \(limit.rule) since the last line)" },
            log: suppressed != nil)
    }

    /// After authentication, for any transport: the version, duplicate identities, the upstream link, and the
    /// session of `charger` (a link on `channel`'s event loop), registered. A SOAP charger's new session is its
    /// handshake (`limitHandshake`); a WebSocket charger's was limited before its credentials were checked.
    func open(
        _ identity: ChargerIdentity, version: OCPPVersion, channel: Channel, charger link: FrameLink
    ) -> EventLoopFuture<AdmissionOutcome> {
        let eventLoop = channel.eventLoop
        logger[metadataKey: "version"] = "\(version)"
        if link.transport == .soap, let refusal = limitHandshake(identity, channel: channel) {
            return eventLoop.makeSucceededFuture(.refused(refusal))
        }
        if let limit = runtime.admissionLimits.claimConnection(listener: listener.name) {
            return eventLoop.makeSucceededFuture(.refused(limitRefusal(limit)))
        }
        // The connection counts until its session ends, or until admission gives up on it.
        let claim = ConnectionClaim(limits: runtime.admissionLimits, listener: listener.name)
        return openClaimed(identity, version: version, channel: channel, charger: link).map { outcome in
            switch outcome {
            case .admitted(let admitted):
                let previous = admitted.session.onFinish
                admitted.session.onFinish = { session in
                    previous?(session)
                    claim.release()
                }
                if !admitted.registered { claim.release() }
            case .refused:
                claim.release()
            }
            return outcome
        }.flatMapErrorThrowing { error in
            claim.release()
            throw error
        }
    }

    private func openClaimed(
        _ identity: ChargerIdentity, version: OCPPVersion, channel: Channel, charger link: FrameLink
    ) -> EventLoopFuture<AdmissionOutcome> {
        let eventLoop = channel.eventLoop
        func refused(_ refusal: EventLoopFuture<AdmissionRefusal>) -> EventLoopFuture<
            AdmissionOutcome
        > {
            refusal.map { .refused($0) }
        }

        if let audit = runtime.audit, !audit.admitsNewSessions {
            audit.metrics.refusedAdmissions.increment()
            return refused(
                refuse(
                    .serviceUnavailable, "the audit log cannot keep up; try again later", metric: "audit_backpressure",
                    headers: [("Retry-After", "5")], on: eventLoop))
        }
        // Its own CSMS: translated to that upstream's version, refused or paced by that upstream alone.
        let (route, upstream) = runtime.route(for: identity)
        logger[metadataKey: "upstream"] = "\(upstream.name)"
        guard upstream.canServe(version, rules: runtime.rules) else {
            return refused(
                refuse(
                    .badRequest,
                    "\(version) chargers cannot be served: upstream \(upstream.name) speaks \(upstream.configuration.version) and no rules translate between them",
                    metric: "version", on: eventLoop))
        }

        if let retryAfter = upstream.health.admit() {
            return refused(
                refuse(
                    .serviceUnavailable, "the CSMS (upstream \(upstream.name)) is unreachable; try again later",
                    metric: "upstream_unreachable", headers: [("Retry-After", "\(retryAfter)")], on: eventLoop))
        }
        let wait: TimeAmount
        switch upstream.pacer.reserve() {
        case .after(let amount):
            wait = amount
        case .refused(let retryAfter):
            return refused(
                refuse(
                    .serviceUnavailable,
                    "the proxy opens no more links to upstream \(upstream.name) a second now; try again later",
                    metric: "upstream_connects", headers: [("Retry-After", "\(retryAfter)")], on: eventLoop))
        }
        switch runtime.registry.claim(identity, policy: runtime.configuration.duplicateIdentity) {
        case .conflict:
            return refused(
                refuse(
                    .conflict, "charger \(identity) is already connected (duplicateIdentity: reject)",
                    metric: "duplicate", on: eventLoop))
        case .granted(let generation, let previous):
            let replaced = closePrevious(previous, on: eventLoop)
            let started = NIODeadline.now()
            // Waiting for its slot (limits.upstreamConnects) counts toward nothing but the handshake timeout.
            let slot =
                wait > .zero
                ? replaced.flatMap { eventLoop.scheduleTask(in: wait) {}.futureResult } : replaced
            return slot.flatMap { [self] in
                upstream.connector.connect(identity, on: eventLoop)
            }.map { [self] upstreamLink -> AdmissionOutcome in
                runtime.metrics.upstreamConnected(after: .nanoseconds((NIODeadline.now() - started).nanoseconds))
                if upstream.health.reachable() { logger.notice("the CSMS is reachable again") }
                let session = SessionFactory(proxy: runtime).makeSession(
                    identity: identity, version: version, generation: generation, listener: listener.name,
                    remoteAddress: Self.describe(channel.remoteAddress), charger: link,
                    upstream: SessionUpstream(link: upstreamLink, upstream: upstream, route: route),
                    eventLoop: eventLoop, remote: runtime.audit == nil ? nil : auditRemote(channel))
                let registry = runtime.registry
                session.onFinish = { registry.release($0.identity, generation: $0.generation) }
                return .admitted(
                    AdmittedCharger(
                        identity: identity, generation: generation, upstream: upstreamLink,
                        session: session, registered: registry.activate(session)))
            }.flatMapError { [self] error in
                runtime.registry.release(identity, generation: generation)
                let failure = UpstreamFailure.classify(error)
                runtime.metrics.upstreamFailed(
                    failure.metricReason, upstream: upstream.name, transport: listener.transport)
                return refused(
                    refuse(failure.status, "\(failure)", metric: "upstream_\(failure.metricReason)", on: eventLoop))
            }
        }
    }

    /// Closes the session a new connection replaces and waits (briefly) for its upstream link to close,
    /// so that the CSMS sees the old connection go before the new one arrives.
    private func closePrevious(_ previous: ChargerSession?, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        guard let previous else { return eventLoop.makeSucceededVoidFuture() }
        logger.info("replacing the open connection of this identity (duplicateIdentity: replace)")
        previous.eventLoop.execute {
            previous.close(code: .normalClosure, reason: "replaced", text: "replaced by a new connection")
        }
        let waited = eventLoop.makePromise(of: Void.self)
        let timer = eventLoop.scheduleTask(in: WebSocketLink.closeLinger + .seconds(1)) { waited.succeed(()) }
        previous.closed.hop(to: eventLoop).whenComplete { _ in
            timer.cancel()
            waited.succeed(())
        }
        return waited.futureResult
    }

    func refuse(
        _ status: HTTPResponseStatus, _ reason: String, metric: String, headers: [(String, String)] = [],
        detail: String? = nil, on eventLoop: EventLoop
    ) -> EventLoopFuture<AdmissionRefusal> {
        eventLoop.makeSucceededFuture(refuseNow(status, reason, metric: metric, headers: headers, detail: detail))
    }

    /// A refusal, counted, logged (unless `log` is false: a storm's refusals are logged once per interval) and
    /// recorded in the audit log.
    func refuseNow(
        _ status: HTTPResponseStatus, _ reason: String, metric: String, headers: [(String, String)] = [],
        detail: String? = nil, log: Bool = true
    ) -> AdmissionRefusal {
        runtime.metrics.admissionRejected(listener: listener.name, reason: metric, transport: listener.transport)
        if log { logger.notice("connection refused: \(detail ?? reason)", metadata: ["status": "\(status.code)"]) }
        if let audit = runtime.audit {
            var fields: JSONObject = [
                "status": .integer(Int64(status.code)), "rule": .string(metric), "reason": .string(reason),
                "remote": AuditRemote(
                    address: remoteAddress, securityProfile: listener.securityProfile, listener: listener.name
                ).json,
                "transport": .string(listener.transport.rawValue),
            ]
            if let identity { fields["charger"] = .string(identity.value) }
            audit.record(.event("refused", fields))
        }
        return AdmissionRefusal(status: status, reason: reason, metric: metric, headers: headers)
    }

    /// Where an admitted charger connected from, for its audit records: address, TLS version, the SHA-256 of its
    /// client certificate (profile 3), the security profile. Read on the connection's event loop.
    private func auditRemote(_ channel: Channel) -> AuditRemote {
        var remote = AuditRemote(
            address: remoteAddress, securityProfile: listener.securityProfile, listener: listener.name)
        guard channel.eventLoop.inEventLoop else { return remote }
        if let version = (try? channel.pipeline.syncOperations.nioSSL_tlsVersion()) ?? nil {
            remote.tlsVersion = Self.name(version)
        }
        if let certificate = (try? channel.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil,
            let der = try? certificate.toDERBytes()
        {
            remote.certificateFingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        }
        return remote
    }

    static func name(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: return "TLSv1.0"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4, .v6:
            let ip = address.ipAddress ?? "?"
            let host = address.protocol == .inet6 ? "[\(ip)]" : ip
            return "\(host):\(address.port ?? 0)"
        case .unixDomainSocket:
            return "unix"
        }
    }
}
