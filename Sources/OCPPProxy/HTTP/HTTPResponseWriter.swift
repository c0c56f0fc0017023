import NIOCore
import NIOHTTP1

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
