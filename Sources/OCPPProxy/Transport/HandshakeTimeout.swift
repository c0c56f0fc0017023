import NIOCore

/// Closes a connection that has not finished its handshake — TLS, then the WebSocket upgrade or its first complete
/// SOAP request — within `limits.handshakeTimeout`. Without it, a peer that opens a socket and sends half a request
/// holds a file descriptor for as long as it likes, and a few thousand such peers lock every charger out. The first
/// handler of every charger connection; the transport removes it when the handshake is done (``done(on:)``).
final class HandshakeTimeout: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let expired: () -> Void
    private var task: Scheduled<Void>?

    /// `expired` runs on the connection's event loop when the timeout closes it (for metrics and the audit log).
    init(timeout: TimeAmount, expired: @escaping () -> Void) {
        self.timeout = timeout
        self.expired = expired
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard task == nil else { return }
        let channel = context.channel
        task = context.eventLoop.scheduleTask(in: timeout) { [self] in
            task = nil
            expired()
            channel.close(promise: nil)
        }
    }

    private func cancel() {
        task?.cancel()
        task = nil
    }

    /// The handshake of the connection on `channel` is done: its timeout goes. Called on the channel's event loop.
    static func done(on channel: Channel) {
        let pipeline = channel.pipeline.syncOperations
        guard let handler = try? pipeline.handler(type: HandshakeTimeout.self) else { return }
        handler.cancel()
        pipeline.removeHandler(handler, promise: nil)
    }
}

extension HandshakeTimeout {
    /// The timeout of one connection of `listener`: counted, logged and recorded in the audit log when it fires.
    static func make(for channel: Channel, listener: ListenerConfiguration, runtime: ProxyContext) -> HandshakeTimeout {
        HandshakeTimeout(timeout: runtime.configuration.limits.handshakeTimeout) {
            let address = Admission.describe(channel.remoteAddress)
            runtime.metrics.handshakeTimedOut(listener: listener.name, transport: listener.transport)
            runtime.logger.debug(
                "closing a connection that did not finish its handshake in limits.handshakeTimeout",
                metadata: ["listener": "\(listener.name)", "remote": "\(address)"])
            runtime.audit?.record(
                .event(
                    "handshake_timeout",
                    [
                        "remote": AuditRemote(
                            address: address, securityProfile: listener.securityProfile, listener: listener.name
                        ).json,
                        "transport": .string(listener.transport.rawValue),
                    ]))
        }
    }
}
