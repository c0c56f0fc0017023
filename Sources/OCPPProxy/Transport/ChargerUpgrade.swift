import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import OCPP

/// Carries out admission's decision on one charger connection, in the terms of NIO's WebSocket upgrader: the
/// headers of the 101 (or none, to refuse), the answer to a request that was not upgraded, and the session wired
/// in once the upgrade is done. An upstream link opened for an upgrade never outlives the connection.
final class ChargerUpgrade {
    private let admission: Admission
    private let listener: ListenerConfiguration
    private let runtime: ProxyContext
    private let logger: Logger
    private(set) var decision: AdmissionDecision?
    /// Set once the session owns the links.
    private var handedOver = false
    private var closed = false

    init(listener: ListenerConfiguration, runtime: ProxyContext, channel: Channel) {
        self.admission = Admission(listener: listener, runtime: runtime, channel: channel)
        self.listener = listener
        self.runtime = runtime
        var logger = runtime.logger
        logger[metadataKey: "listener"] = "\(listener.name)"
        self.logger = logger
        channel.closeFuture.whenComplete { [self] _ in
            closed = true
            releaseUnused()
        }
    }

    /// `shouldUpgrade`: the headers to add to the 101, or nil to refuse.
    func shouldUpgrade(channel: Channel, request: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> {
        admission.decide(channel: channel, request: request).map { [self] decision in
            self.decision = decision
            // The charger may have left while the upstream link was being opened.
            if closed { releaseUnused() }
            switch decision {
            case .refuse: return nil
            case .upgradeWithoutSubprotocol: return HTTPHeaders()
            case .admit(_, _, let headers): return headers
            }
        }
    }

    /// An admitted upgrade whose session never took over: its upstream link and its claim go.
    private func releaseUnused() {
        guard case .admit(let admitted, _, _) = decision, !handedOver else { return }
        handedOver = true
        admitted.upstream.close(code: .goingAway, reason: "charger_gone", text: "charger disconnected")
        runtime.registry.release(admitted.identity, generation: admitted.generation)
    }

    /// The answer for a request that was not upgraded.
    func refusal(for request: HTTPRequestHead) -> (HTTPResponseStatus, String, [(String, String)]) {
        if case .refuse(let refusal) = decision { return (refusal.status, refusal.reason, refusal.headers) }
        // The upgrader never asked: not a (complete) WebSocket upgrade.
        if case .notFound = ConnectionPath.resolve(requestTarget: request.uri, mountPath: listener.path) {
            runtime.metrics.admissionRejected(listener: listener.name, reason: "path", transport: .websocket)
            return (.notFound, "no charger endpoint at \(request.uri); expected \(listener.path)/{identity}", [])
        }
        runtime.metrics.admissionRejected(listener: listener.name, reason: "not_websocket", transport: .websocket)
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

    /// `upgradePipelineHandler`: wires the charger's link into its session.
    func upgraded(channel: Channel) -> EventLoopFuture<Void> {
        HandshakeTimeout.done(on: channel)
        switch decision {
        case .upgradeWithoutSubprotocol(let offered):
            runtime.metrics.admissionRejected(listener: listener.name, reason: "subprotocol", transport: .websocket)
            logger.notice(
                "closing: none of the offered subprotocols \(offered) is served here (\(listener.versions.map(\.rawValue)))"
            )
            var data = channel.allocator.buffer(capacity: 64)
            data.write(webSocketErrorCode: .protocolError)
            data.writeString("no supported OCPP subprotocol")
            return channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).flatMap {
                channel.close()
            }
        case .admit(let admitted, let link, _) where !handedOver:
            handedOver = true
            let session = admitted.session
            do {
                try WebSocketLink.install(link, in: channel.pipeline.syncOperations)
            } catch {
                admitted.upstream.close(code: .goingAway, reason: "charger_gone", text: "charger disconnected")
                runtime.registry.release(admitted.identity, generation: admitted.generation)
                return channel.eventLoop.makeFailedFuture(error)
            }
            session.start()
            if !admitted.registered {
                // A newer connection claimed the identity while this one was connecting.
                session.close(code: .normalClosure, reason: "replaced", text: "replaced by a new connection")
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        case .admit, .refuse, nil:
            return channel.close()
        }
    }
}

/// Answers every request that was not upgraded with the status admission decided, then closes.
final class AdmissionResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upgrade: ChargerUpgrade
    private var assembler = RequestAssembler()

    init(upgrade: ChargerUpgrade) {
        self.upgrade = upgrade
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let request = assembler.receive(unwrapInboundIn(data)) else { return }
        let (status, reason, headers) = upgrade.refusal(for: request)
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
