import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import NIOWebSocket

/// A socket chargers connect to with OCPP-J over WebSocket. Each connection gets its own ``Admission``;
/// an accepted one becomes a ``ChargerSession``.
final class ChargerListener {
    let configuration: ListenerConfiguration
    private let runtime: ProxyContext
    private(set) var channel: Channel?

    init(configuration: ListenerConfiguration, runtime: ProxyContext) {
        self.configuration = configuration
        self.runtime = runtime
    }

    func bind(on group: EventLoopGroup) -> EventLoopFuture<Channel> {
        let listener = configuration
        let runtime = self.runtime
        let maxFrame = runtime.configuration.limits.maxFrameBytes
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHandler(
                        HandshakeTimeout.make(for: channel, listener: listener, runtime: runtime))
                    try TLSFailureObserver.addTLS(to: channel, listener: listener, runtime: runtime)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                let upgrade = ChargerUpgrade(listener: listener, runtime: runtime, channel: channel)
                // NIO does the handshake only: the link reads and writes the frames, protocol errors included
                // (WebSocketLink.install).
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxFrame, automaticErrorHandling: false,
                    shouldUpgrade: { channel, request in upgrade.shouldUpgrade(channel: channel, request: request) },
                    upgradePipelineHandler: { channel, _ in upgrade.upgraded(channel: channel) })
                let responder = AdmissionResponder(upgrade: upgrade)
                // The responder answers refused requests; once upgraded, the WebSocket handlers replace it.
                let upgraded: (ChannelHandlerContext) -> Void = { context in
                    context.pipeline.syncOperations.removeHandler(responder, promise: nil)
                }
                return channel.pipeline.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: upgraded), withErrorHandling: true
                ).flatMap {
                    channel.pipeline.addHandler(responder)
                }
            }
            .bind(host: listener.host, port: listener.port)
            .map { channel in
                self.channel = channel
                return channel
            }
    }
}

/// Counts and logs failed TLS handshakes (plaintext on a TLS port, old protocol versions, client certificates
/// that do not verify), with the remote address, and feeds them to the lockout.
final class TLSFailureObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let listener: ListenerConfiguration
    private let runtime: ProxyContext
    private var handshakeDone = false

    init(listener: ListenerConfiguration, runtime: ProxyContext) {
        self.listener = listener
        self.runtime = runtime
    }

    /// TLS at the front of a new connection of a listener that has it, with this observer behind it; nothing
    /// otherwise. Each connection takes the context current at accept time (reloads swap it).
    static func addTLS(to channel: Channel, listener: ListenerConfiguration, runtime: ProxyContext) throws {
        guard let tls = runtime.listenerTLS[listener.name] else { return }
        try channel.pipeline.syncOperations.addHandlers([
            NIOSSLServerHandler(context: tls.context), TLSFailureObserver(listener: listener, runtime: runtime),
        ])
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { handshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !handshakeDone {
            handshakeDone = true
            let address = Admission.describe(context.channel.remoteAddress)
            runtime.metrics.authenticationFailed(
                listener: listener.name, reason: "tls_handshake", transport: listener.transport)
            _ = runtime.lockout.recordFailure(
                address: context.channel.remoteAddress?.ipAddress ?? "unknown", identity: nil)
            runtime.logger.notice(
                "TLS handshake failed: \(error)", metadata: ["listener": "\(listener.name)", "remote": "\(address)"])
            runtime.audit?.record(
                .event(
                    "tls_failure",
                    [
                        "remote": AuditRemote(
                            address: address, securityProfile: listener.securityProfile, listener: listener.name
                        ).json,
                        "reason": .string("\(error)"),
                    ]))
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
