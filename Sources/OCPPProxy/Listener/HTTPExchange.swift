import NIOCore
import NIOHTTP1

/// Keeps a request's head until its end arrives: the proxy's HTTP handlers answer complete requests only.
struct RequestAssembler {
    private var head: HTTPRequestHead?

    /// The request, once its last part has arrived; bodies are ignored.
    mutating func receive(_ part: HTTPServerRequestPart) -> HTTPRequestHead? {
        switch part {
        case .head(let head):
            self.head = head
            return nil
        case .body:
            return nil
        case .end:
            defer { head = nil }
            return head
        }
    }
}

/// Writes one whole response, and closes the connection after it unless it is kept alive.
enum HTTPResponseWriter {
    static func write(
        _ context: ChannelHandlerContext, request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String,
        body: [UInt8], headers extra: [(String, String)] = [], keepAlive: Bool
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.count)")] + extra)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if request.method != .HEAD {
            let buffer = context.channel.allocator.buffer(bytes: body)
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        }
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
