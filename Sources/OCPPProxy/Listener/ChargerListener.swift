import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A socket chargers connect to with OCPP-J over WebSocket. Each connection gets its own ``Admission``;
/// an accepted one becomes a ``ChargerSession``.
final class ChargerListener {
    let configuration: ListenerConfiguration
    private let runtime: ProxyRuntime
    private(set) var channel: Channel?

    init(configuration: ListenerConfiguration, runtime: ProxyRuntime) {
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
                let admission = Admission(listener: listener, runtime: runtime, channel: channel)
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxFrame, automaticErrorHandling: true,
                    shouldUpgrade: { channel, request in admission.decide(channel: channel, request: request) },
                    upgradePipelineHandler: { channel, _ in admission.upgraded(channel: channel) })
                let responder = AdmissionResponder(admission: admission)
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
