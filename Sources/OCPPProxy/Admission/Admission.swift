import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket
import OCPP

/// Decides, for one incoming connection, whether its WebSocket upgrade goes ahead: identity from the
/// URL, subprotocol, duplicate identities, and the upstream link, which must be open before the charger's
/// upgrade completes. A refusal is kept here for ``AdmissionResponder`` to answer.
final class Admission {
    enum Outcome {
        case undecided
        case refused(HTTPResponseStatus, reason: String, metric: String, headers: [(String, String)])
        /// OCPP-J §3.2: no common subprotocol; upgrade without one, then close at once.
        case noCommonSubprotocol([String])
        case accepted(Accepted)
        /// The upgrade finished and the session owns the links.
        case upgraded
    }

    struct Accepted {
        var identity: ChargerIdentity
        var generation: UInt64
        var upstream: WebSocketLink
        /// The charger's link, added to the pipeline once the upgrade is done.
        var charger: WebSocketLink
        /// Built and registered before the 101 is written, so a charger that has its answer is listed.
        var session: ChargerSession
        /// False when a newer connection claimed the identity meanwhile: this one is closed as replaced.
        var registered: Bool
    }

    private let listener: ListenerConfiguration
    private let runtime: ProxyContext
    private(set) var outcome: Outcome = .undecided
    private var logger: Logger

    init(listener: ListenerConfiguration, runtime: ProxyContext, channel: Channel) {
        self.listener = listener
        self.runtime = runtime
        self.logger = runtime.logger
        logger[metadataKey: "listener"] = "\(listener.name)"
        logger[metadataKey: "remote"] = "\(Self.describe(channel.remoteAddress))"
        // Whatever the upgrade's fate, an upstream link opened for it must not outlive the connection.
        channel.closeFuture.whenComplete { [self] _ in
            if case .accepted(let accepted) = outcome {
                accepted.upstream.close(code: .goingAway, reason: "charger_gone", text: "charger disconnected")
                runtime.registry.release(accepted.identity, generation: accepted.generation)
            }
        }
    }

    // MARK: Before the upgrade

    /// `shouldUpgrade` of the WebSocket upgrader: the headers to add to the 101, or nil to refuse.
    func decide(channel: Channel, request: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> {
        let eventLoop = channel.eventLoop
        let identity: ChargerIdentity
        switch ConnectionPath.resolve(requestTarget: request.uri, mountPath: listener.path) {
        case .notFound:
            return refuse(
                .notFound, "no charger endpoint at \(request.uri); expected \(listener.path)/{identity}",
                metric: "path", on: eventLoop)
        case .badIdentity(let error):
            return refuse(.badRequest, "\(error)", metric: "identity", on: eventLoop)
        case .charger(let id):
            identity = id
        }
        logger[metadataKey: "identity"] = "\(identity)"
        return authenticate(identity, channel: channel, request: request).flatMap { [self] _ in
            admit(identity, channel: channel, request: request)
        }.flatMapError { [self] error in
            guard let failure = error as? AuthenticationFailure else {
                return refuse(.internalServerError, "admission failed: \(error)", metric: "internal", on: eventLoop)
            }
            return refuseAuthentication(failure, channel: channel)
        }
    }

    /// Security profile checks: lockout, Basic auth (profiles 1-2), client certificate (profile 3),
    /// registration and registered profile.
    private func authenticate(_ identity: ChargerIdentity, channel: Channel, request: HTTPRequestHead)
        -> EventLoopFuture<ChargerRegistration?>
    {
        let eventLoop = channel.eventLoop
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        if let remaining = runtime.lockout.remaining(for: address) {
            let seconds = max(1, (remaining.nanoseconds + 999_999_999) / 1_000_000_000)
            return eventLoop.makeFailedFuture(
                AuthenticationFailure(
                    status: .tooManyRequests, reason: "locked_out",
                    message: "too many failed authentications from \(address); locked out for \(seconds)s more",
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
            if listener.securityProfile > 0 { runtime.lockout.recordSuccess(for: address) }
            return registration
        }
    }

    private func refuseAuthentication(_ failure: AuthenticationFailure, channel: Channel) -> EventLoopFuture<
        HTTPHeaders?
    > {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        runtime.metrics.authenticationFailed(listener: listener.name, reason: failure.reason)
        if failure.reason != "locked_out" && runtime.lockout.recordFailure(for: address) {
            logger.warning("locking out \(address) after repeated authentication failures")
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
    ) -> EventLoopFuture<HTTPHeaders?> {
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
                on: eventLoop)
        case .noneAcceptable(let offered):
            outcome = .noCommonSubprotocol(offered)
            return eventLoop.makeSucceededFuture(HTTPHeaders())
        case .defaulted(let v):
            version = v
        case .agreed(let v):
            version = v
            responseHeaders.add(name: "Sec-WebSocket-Protocol", value: v.subprotocol)
        }
        logger[metadataKey: "version"] = "\(version)"

        guard runtime.canServe(version) else {
            return refuse(
                .badRequest,
                "\(version) chargers cannot be served: the upstream speaks \(runtime.configuration.upstream.version) and this build does not translate",
                metric: "version", on: eventLoop)
        }

        switch runtime.registry.claim(identity, policy: runtime.configuration.duplicateIdentity) {
        case .conflict:
            return refuse(
                .conflict, "charger \(identity) is already connected (duplicateIdentity: reject)", metric: "duplicate",
                on: eventLoop)
        case .granted(let generation, let previous):
            let replaced = closePrevious(previous, on: eventLoop)
            let started = NIODeadline.now()
            return replaced.flatMap { [self] in
                runtime.connector.connect(identity, on: eventLoop)
            }.map { [self] upstream -> HTTPHeaders? in
                runtime.metrics.upstreamConnected(after: .nanoseconds((NIODeadline.now() - started).nanoseconds))
                let link = WebSocketLink(side: .charger, isClient: false, keepalive: runtime.configuration.keepalive)
                let session = SessionFactory(proxy: runtime).makeSession(
                    identity: identity, version: version, generation: generation, listener: listener.name,
                    remoteAddress: Self.describe(channel.remoteAddress), charger: link, upstream: upstream,
                    eventLoop: eventLoop)
                let registry = runtime.registry
                session.onFinish = { registry.release($0.identity, generation: $0.generation) }
                outcome = .accepted(
                    Accepted(
                        identity: identity, generation: generation, upstream: upstream, charger: link,
                        session: session, registered: registry.activate(session)))
                if !channel.isActive {
                    // The charger left while we were connecting upstream; the close callback cleans up.
                    channel.close(promise: nil)
                }
                return responseHeaders
            }.flatMapError { [self] error in
                runtime.registry.release(identity, generation: generation)
                let failure = UpstreamFailure.classify(error)
                runtime.metrics.upstreamFailed(failure.metricReason)
                return refuse(failure.status, "\(failure)", metric: "upstream_\(failure.metricReason)", on: eventLoop)
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

    private func refuse(
        _ status: HTTPResponseStatus, _ reason: String, metric: String, headers: [(String, String)] = [],
        detail: String? = nil, on eventLoop: EventLoop
    ) -> EventLoopFuture<HTTPHeaders?> {
        outcome = .refused(status, reason: reason, metric: metric, headers: headers)
        runtime.metrics.admissionRejected(listener: listener.name, reason: metric)
        logger.notice("connection refused: \(detail ?? reason)", metadata: ["status": "\(status.code)"])
        return eventLoop.makeSucceededFuture(nil)
    }

    /// The answer for a request that was not upgraded.
    func refusal(for request: HTTPRequestHead) -> (HTTPResponseStatus, String, [(String, String)]) {
        if case .refused(let status, let reason, _, let headers) = outcome { return (status, reason, headers) }
        // The upgrader never asked us: not a (complete) WebSocket upgrade.
        if case .notFound = ConnectionPath.resolve(requestTarget: request.uri, mountPath: listener.path) {
            runtime.metrics.admissionRejected(listener: listener.name, reason: "path")
            return (.notFound, "no charger endpoint at \(request.uri); expected \(listener.path)/{identity}", [])
        }
        runtime.metrics.admissionRejected(listener: listener.name, reason: "not_websocket")
        if request.headers["upgrade"].isEmpty {
            return (
                .upgradeRequired, "this endpoint only accepts OCPP-J WebSocket connections", [("Upgrade", "websocket")]
            )
        }
        return (
            .badRequest,
            "invalid WebSocket upgrade request (Sec-WebSocket-Key and Sec-WebSocket-Version 13 are required)", []
        )
    }

    // MARK: After the upgrade

    /// `upgradePipelineHandler` of the WebSocket upgrader: wires the charger's link into a session.
    func upgraded(channel: Channel) -> EventLoopFuture<Void> {
        let maxFrame = runtime.configuration.limits.maxFrameBytes
        switch outcome {
        case .noCommonSubprotocol(let offered):
            runtime.metrics.admissionRejected(listener: listener.name, reason: "subprotocol")
            logger.notice(
                "closing: none of the offered subprotocols \(offered) is served here (\(listener.versions.map(\.rawValue)))"
            )
            var data = channel.allocator.buffer(capacity: 64)
            data.write(webSocketErrorCode: .protocolError)
            data.writeString("no supported OCPP subprotocol")
            return channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).flatMap {
                channel.close()
            }
        case .accepted(let accepted):
            outcome = .upgraded
            let session = accepted.session
            do {
                try channel.pipeline.syncOperations.addHandlers([
                    NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024, maxAccumulatedFrameSize: maxFrame),
                    accepted.charger,
                ])
            } catch {
                accepted.upstream.close(code: .goingAway, reason: "charger_gone", text: "charger disconnected")
                runtime.registry.release(accepted.identity, generation: accepted.generation)
                return channel.eventLoop.makeFailedFuture(error)
            }
            guard accepted.registered else {
                // A newer connection claimed the identity while this one was connecting.
                session.start()
                session.close(code: .normalClosure, reason: "replaced", text: "replaced by a new connection")
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            session.start()
            return channel.eventLoop.makeSucceededVoidFuture()
        case .undecided, .refused, .upgraded:
            return channel.close()
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

/// Answers every request that was not upgraded with the status the admission decided, then closes.
final class AdmissionResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let admission: Admission
    private var assembler = RequestAssembler()

    init(admission: Admission) {
        self.admission = admission
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let request = assembler.receive(unwrapInboundIn(data)) else { return }
        let (status, reason, headers) = admission.refusal(for: request)
        HTTPResponseWriter.write(
            context, request: request, status: status, contentType: "text/plain; charset=utf-8",
            body: Array((reason + "\n").utf8), headers: headers, keepAlive: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Upgrade errors (a refused or malformed upgrade) arrive here before the request is replayed to
        // channelRead; other errors end the connection.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}
