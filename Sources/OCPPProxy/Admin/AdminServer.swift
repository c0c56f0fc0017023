import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operator's endpoint on its own port: liveness, readiness, Prometheus metrics and the charger list.
final class AdminServer {
    private let configuration: AdminConfiguration
    private let runtime: ProxyContext
    private let readiness: Readiness
    private(set) var channel: Channel?

    init(configuration: AdminConfiguration, runtime: ProxyContext, readiness: Readiness) {
        self.configuration = configuration
        self.runtime = runtime
        self.readiness = readiness
    }

    func bind(on group: EventLoopGroup) -> EventLoopFuture<Channel> {
        let runtime = self.runtime
        let readiness = self.readiness
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHandler(runtime: runtime, readiness: readiness))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .map { channel in
                self.channel = channel
                return channel
            }
    }
}

/// Whether the proxy takes chargers: set once every listener is bound, cleared at shutdown.
final class Readiness: Sendable {
    private let ready = NIOLockedValueBox(false)

    var isReady: Bool {
        get { ready.withLockedValue { $0 } }
        set { ready.withLockedValue { $0 = newValue } }
    }
}

final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: ProxyContext
    private let readiness: Readiness
    private var assembler = RequestAssembler()

    init(runtime: ProxyContext, readiness: Readiness) {
        self.runtime = runtime
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let request = assembler.receive(unwrapInboundIn(data)) { route(request, context: context) }
    }

    private func route(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let known = ["/healthz", "/readyz", "/metrics", "/api/chargers"]
        guard known.contains(path) else {
            return respond(context, request, .notFound, "text/plain", Array("not found\n".utf8))
        }
        guard request.method == .GET || request.method == .HEAD else {
            return respond(
                context, request, .methodNotAllowed, "text/plain", Array("only GET is allowed\n".utf8),
                extra: [("Allow", "GET, HEAD")])
        }
        switch path {
        case "/healthz":
            respond(context, request, .ok, "text/plain", Array("ok\n".utf8))
        case "/readyz":
            let ready = readiness.isReady
            respond(
                context, request, ready ? .ok : .serviceUnavailable, "text/plain",
                Array((ready ? "ready\n" : "not ready\n").utf8))
        case "/metrics":
            respond(context, request, .ok, "text/plain; version=0.0.4; charset=utf-8", runtime.metrics.exposition())
        default:
            chargers(on: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let body): self.respond(context, request, .ok, "application/json", body)
                case .failure:
                    self.respond(
                        context, request, .internalServerError, "text/plain", Array("cannot list chargers\n".utf8))
                }
            }
        }
    }

    /// Each session is read on its own event loop.
    private func chargers(on eventLoop: EventLoop) -> EventLoopFuture<[UInt8]> {
        let snapshots = runtime.registry.sessions.map { session in
            session.eventLoop.submit { session.snapshot() }
        }
        return EventLoopFuture.whenAllSucceed(snapshots, on: eventLoop).flatMapThrowing { list in
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            struct Body: Encodable { var chargers: [ChargerSnapshot] }
            return Array(try encoder.encode(Body(chargers: list.sorted { $0.identity < $1.identity })))
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String,
        _ body: [UInt8], extra: [(String, String)] = []
    ) {
        HTTPResponseWriter.write(
            context, request: request, status: status, contentType: type, body: body, headers: extra,
            keepAlive: request.isKeepAlive)
    }
}
