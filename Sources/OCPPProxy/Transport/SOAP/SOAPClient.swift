import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// POSTs the proxy's requests to SOAP chargers' own endpoints: one connection per request (CSMS → charger CALLs are
/// rare), NIO's HTTP/1.1 codec, TLS for `https://` with `soap.endpointCA`, the whole exchange bounded by a timeout and
/// the answer by a size.
struct SOAPClient: Sendable {
    /// What the charger answered.
    struct Response {
        var status: HTTPResponseStatus
        var contentType: String?
        var body: [UInt8]
    }

    enum Failure: Error, CustomStringConvertible {
        case badURL(String)
        case timedOut(TimeAmount)
        case tooLarge(Int)
        case closedEarly

        var description: String {
            switch self {
            case .badURL(let url): return "not an http(s) URL: \(url)"
            case .timedOut(let after): return "no answer within \(after.nanoseconds / 1_000_000)ms"
            case .tooLarge(let limit): return "the answer is larger than \(limit) bytes"
            case .closedEarly: return "the connection closed before the answer was complete"
            }
        }
    }

    let tls: NIOSSLContext?
    let maxResponseBytes: Int

    func post(
        _ urlText: String, contentType: String, body: [UInt8], timeout: TimeAmount, on eventLoop: EventLoop
    ) -> EventLoopFuture<Response> {
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return eventLoop.makeFailedFuture(Failure.badURL(urlText)) }
        let secure = scheme == "https"
        let port = url.port ?? (secure ? 443 : 80)
        let target = url.path.isEmpty ? "/" : url.path + (url.query.map { "?\($0)" } ?? "")
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target, headers: headers)
        let promise = eventLoop.makePromise(of: Response.self)
        let limit = maxResponseBytes
        let tls = self.tls
        let deadline = eventLoop.scheduleTask(in: timeout) { promise.fail(Failure.timedOut(timeout)) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                do {
                    if secure {
                        let context = try tls ?? NIOSSLContext(configuration: .makeClientConfiguration())
                        let hostname = SocketAddressText.isIPAddress(host) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: hostname))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        SOAPResponseCollector(promise: promise, limit: limit))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        bootstrap.connect(host: host, port: port).whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(error)
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(
                    HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
            }
        }
        return promise.futureResult
    }
}

/// Collects one HTTP response, bounded.
private final class SOAPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<SOAPClient.Response>
    private let limit: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<SOAPClient.Response>, limit: Int) {
        self.promise = promise
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 100 Continue and other informational answers precede the real one.
            if head.status.code >= 200 { self.head = head }
        case .body(let part):
            guard head != nil else { return }
            guard body.count + part.readableBytes <= limit else {
                promise.fail(SOAPClient.Failure.tooLarge(limit))
                context.close(promise: nil)
                return
            }
            body.append(contentsOf: part.readableBytesView)
        case .end:
            guard let head else { return }
            promise.succeed(
                SOAPClient.Response(status: head.status, contentType: head.headers["content-type"].first, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(SOAPClient.Failure.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
