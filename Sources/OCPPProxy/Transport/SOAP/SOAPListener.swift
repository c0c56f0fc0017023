import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL

/// A socket SOAP chargers POST their requests to (OCPP-S): HTTP/1.1, TLS when the listener has it, request bodies
/// decompressed (OCPP-S asks for gzip/deflate support) up to `soap.maxRequestBytes`. Each request is handed to the
/// listener's ``SOAPChargers``.
final class SOAPListener {
    let configuration: ListenerConfiguration
    private let runtime: ProxyContext
    let chargers: SOAPChargers
    private(set) var channel: Channel?

    init(configuration: ListenerConfiguration, runtime: ProxyContext, chargers: SOAPChargers) {
        self.configuration = configuration
        self.runtime = runtime
        self.chargers = chargers
    }

    func bind(on group: EventLoopGroup) -> EventLoopFuture<Channel> {
        let listener = configuration
        let runtime = self.runtime
        let chargers = self.chargers
        let maxBytes = runtime.configuration.soapMaxBodyBytes
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHandler(
                        HandshakeTimeout.make(for: channel, listener: listener, runtime: runtime))
                    try TLSFailureObserver.addTLS(to: channel, listener: listener, runtime: runtime)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandlers([
                        NIOHTTPRequestDecompressor(limit: .size(maxBytes)),
                        SOAPRequestHandler(listener: listener, chargers: chargers, maxBytes: maxBytes),
                    ])
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(host: listener.host, port: listener.port)
            .map { channel in
                self.channel = channel
                return channel
            }
    }
}

/// One HTTP connection of a SOAP listener: collects each request (bounded), hands it to ``SOAPChargers`` and writes
/// the answer. NIO's pipelining handler passes one request at a time.
final class SOAPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let listener: ListenerConfiguration
    private let chargers: SOAPChargers
    private let maxBytes: Int
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var answering = false

    init(listener: ListenerConfiguration, chargers: SOAPChargers, maxBytes: Int) {
        self.listener = listener
        self.chargers = chargers
        self.maxBytes = maxBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            tooLarge = false
        case .body(var part):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + part.readableBytes > maxBytes {
                tooLarge = true
                body = nil
            } else {
                body?.writeBuffer(&part)
            }
        case .end:
            // A complete request: the connection's handshake is done.
            HandshakeTimeout.done(on: context.channel)
            guard let head else { return }
            self.head = nil
            let received = body ?? context.channel.allocator.buffer(capacity: 0)
            body = nil
            answer(head, received, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let reply: EventLoopFuture<SOAPReply>
        if path != listener.path {
            reply = context.eventLoop.makeSucceededFuture(
                .plain(.notFound, "no SOAP endpoint at \(path); chargers POST to \(listener.path)"))
        } else if head.method != .POST {
            reply = context.eventLoop.makeSucceededFuture(
                .plain(.methodNotAllowed, "SOAP requests are POSTed", headers: [("Allow", "POST")]))
        } else if tooLarge {
            reply = context.eventLoop.makeSucceededFuture(chargers.tooLarge(limit: maxBytes))
        } else {
            reply = chargers.handle(head, body: body, channel: context.channel)
        }
        answering = true
        let keepAlive = head.isKeepAlive && !tooLarge
        reply.hop(to: context.eventLoop).whenComplete { [self] result in
            answering = false
            let reply: SOAPReply
            switch result {
            case .success(let value): reply = value
            case .failure(let error): reply = chargers.internalFault("\(error)")
            }
            guard context.channel.isActive else { return }
            HTTPResponseWriter.write(
                context, request: head, status: reply.status, contentType: reply.contentType, body: reply.body,
                headers: reply.headers, keepAlive: keepAlive)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A body whose decompression passes soap.maxRequestBytes, or that is not valid gzip/deflate. (HTTP parse
        // errors are answered by NIO's protocol error handler, before this one.)
        let decompression =
            error is NIOHTTPDecompression.DecompressionError || error is NIOHTTPDecompression.ExtraDecompressionError
        if decompression, let head, !answering {
            self.head = nil
            let reply =
                (error as? NIOHTTPDecompression.DecompressionError) == .limit
                ? chargers.tooLarge(limit: maxBytes) : chargers.undecodable("\(error)")
            HTTPResponseWriter.write(
                context, request: head, status: reply.status, contentType: reply.contentType, body: reply.body,
                headers: reply.headers, keepAlive: false)
            return
        }
        context.close(promise: nil)
    }
}

/// One HTTP answer to a SOAP charger: a SOAP envelope (answer or fault), or plain text for what is not SOAP at all.
struct SOAPReply {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)] = []

    static func plain(_ status: HTTPResponseStatus, _ text: String, headers: [(String, String)] = []) -> SOAPReply {
        SOAPReply(
            status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8),
            headers: headers)
    }
}
