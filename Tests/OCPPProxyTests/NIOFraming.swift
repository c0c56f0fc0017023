import NIOCore
import NIOEmbedded
import NIOWebSocket

/// NIO's WebSocket codec as the oracle of the proxy's own framing: its encoder and decoder run in embedded
/// channels, on bytes.
enum NIOFraming {
    /// The bytes NIO's encoder writes for `frame` (it masks `data` with `maskKey` when there is one).
    static func encode(_ frame: WebSocketFrame) throws -> ByteBuffer {
        let channel = EmbeddedChannel(handler: WebSocketFrameEncoder())
        try channel.writeOutbound(frame)
        var bytes = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&part) }
        _ = try? channel.finish()
        return bytes
    }

    /// What NIO's decoder makes of `chunks`, fed one read at a time: the frames, and the error that stopped it.
    static func decode(_ chunks: [ByteBuffer], maxFrameSize: Int) -> (frames: [WebSocketFrame], error: Error?) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        var frames: [WebSocketFrame] = []
        var failure: Error?
        for chunk in chunks {
            do {
                try channel.writeInbound(chunk)
            } catch {
                failure = error
            }
            while let frame = try? channel.readInbound(as: WebSocketFrame.self) { frames.append(frame) }
            if failure != nil { break }
        }
        _ = try? channel.finish()
        return (frames, failure)
    }
}

/// The wire between a test and a `WebSocketLink` on an embedded channel: frames the test writes in (as NIO's
/// decoder delivers them: `data` as on the wire, masked when `maskKey` is set) reach the link as their bytes, and
/// each buffer the link writes comes out as the frame NIO decodes from it, with its payload unmasked.
final class WireFrames: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // NIO's encoder masks: hand it the payload unmasked so that the bytes are the frame's as given.
        let clear = WebSocketFrame(
            fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
            maskKey: frame.maskKey, data: frame.unmaskedData)
        do {
            context.fireChannelRead(wrapInboundOut(try NIOFraming.encode(clear)))
        } catch {
            context.fireErrorCaught(error)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let decoded = NIOFraming.decode([unwrapOutboundIn(data)], maxFrameSize: 1 << 24)
        for frame in decoded.frames {
            context.write(
                wrapOutboundOut(
                    WebSocketFrame(
                        fin: frame.fin, opcode: frame.opcode, maskKey: frame.maskKey, data: frame.unmaskedData)),
                promise: nil)
        }
        promise?.succeed(())
    }
}

extension EmbeddedChannel {
    /// An embedded channel with `link` behind ``WireFrames``.
    static func wired(_ link: ChannelHandler, loop: EmbeddedEventLoop) -> EmbeddedChannel {
        EmbeddedChannel(handlers: [WireFrames(), link], loop: loop)
    }
}
