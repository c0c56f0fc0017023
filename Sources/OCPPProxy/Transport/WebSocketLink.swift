import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import OCPP

#if canImport(Glibc)
    import Glibc
#endif

/// One WebSocket connection of a session: the charger's (the proxy is the server) or the CSMS's
/// (the proxy is the client). It turns frames into session events and owns the closing handshake
/// and the keepalive of its connection. Lives on its channel's event loop, like its session.
final class WebSocketLink: ChannelInboundHandler, RemovableChannelHandler, FrameLink {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let side: Side
    /// A client masks every frame it sends (RFC 6455 §5.3).
    private let isClient: Bool
    var transport: ListenerTransport { .websocket }
    private let keepalive: KeepaliveConfiguration
    private(set) var state: LinkState = .open
    private var context: ChannelHandlerContext?
    /// Frames that arrive before the session is attached (the CSMS may speak before the charger's
    /// upgrade has completed).
    private var early: [WebSocketFrame] = []
    /// Held strongly while the session runs; the session lets go when both of its links are closed.
    var events: LinkEvents? {
        didSet { replayEarlyFrames() }
    }
    /// The close code the peer sent, if it sent a close frame.
    private(set) var peerCloseCode: WebSocketErrorCode?
    /// Why the link ended, for metrics and logs, when the proxy ended it.
    private(set) var closeReason: String?
    private var pingTask: RepeatedTask?
    private var pongDeadline: Scheduled<Void>?
    /// When the oldest ping not followed by a pong was sent.
    private var unansweredPingSince: NIODeadline?
    private var forcedClose: Scheduled<Void>?

    /// Frames held for a session that does not exist yet; more is a peer that does not wait for answers.
    static let earlyFramesKept = 64

    /// How long to wait for the peer's close frame (or its TCP close) after ours.
    static let closeLinger = TimeAmount.seconds(3)

    init(side: Side, isClient: Bool, keepalive: KeepaliveConfiguration) {
        self.side = side
        self.isClient = isClient
        self.keepalive = keepalive
    }

    var channel: Channel? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        startKeepalive(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard state == .open else { return }
            if let events {
                deliver(frame, to: events)
            } else if early.count < Self.earlyFramesKept {
                early.append(frame)
            } else {
                // A peer that keeps sending before the session exists is not speaking OCPP-J (one CALL at a time).
                close(
                    code: .policyViolation, reason: "too_many_early_frames",
                    text: "too many frames before the session started")
            }
        case .ping:
            guard state == .open else { return }
            send(WebSocketFrame(fin: true, opcode: .pong, maskKey: mask(), data: frame.unmaskedData), context: context)
        case .pong:
            // Not a cancellation: NIO cancels by searching every task scheduled on the event loop, and every link
            // pongs twice a minute. The deadline finds the pong when it fires.
            unansweredPingSince = nil
        case .connectionClose:
            var data = frame.unmaskedData
            peerCloseCode = data.readWebSocketErrorCode()
            if state == .open {
                // Echo the code (RFC 6455 §5.5.1), then close the connection.
                state = .closing
                var echo = context.channel.allocator.buffer(capacity: 2)
                if let code = peerCloseCode { echo.write(webSocketErrorCode: code) }
                context.writeAndFlush(
                    wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: mask(), data: echo))
                )
                .whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    private func deliver(_ frame: WebSocketFrame, to events: LinkEvents) {
        if frame.opcode == .text {
            events.received(text: frame.unmaskedData, from: side)
        } else {
            events.receivedBinary(from: side)
        }
    }

    private func replayEarlyFrames() {
        guard let events, !early.isEmpty else { return }
        let frames = early
        early = []
        for frame in frames where state == .open {
            deliver(frame, to: events)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        stopTimers()
        events?.linkClosed(side, peerCode: peerCloseCode, reason: closeReason)
        context.fireChannelInactive()
    }

    /// Whether the connection takes more outgoing frames without queueing past its high-water mark.
    var isWritable: Bool { context?.channel.isWritable ?? true }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        events?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    /// Reads from the socket only while `on`: backpressure, so that what a peer sends waits in its own socket
    /// buffers, not in the proxy's memory, while the frames it causes cannot be written.
    func setReading(_ on: Bool) {
        guard let context, reading != on else { return }
        reading = on
        // A pong that waited unread while reading was paused gets the full pongTimeout to be read now.
        if on, unansweredPingSince != nil { unansweredPingSince = context.eventLoop.now }
        // Setting autoRead back on issues the read that was skipped.
        _ = context.channel.setOption(ChannelOptions.autoRead, value: on)
    }
    private var reading = true

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch error {
        case is NIOWebSocketError:
            // WebSocketProtocolErrorHandler already sent the close frame (1002 or 1009) and closed the channel;
            // the channel may already be inactive, which must stay the final state.
            if state == .open { state = .closing }
            closeReason =
                closeReason
                ?? (error as? NIOWebSocketError == .invalidFrameLength ? "frame_too_large" : "protocol_error")
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            close(code: .messageTooLarge, reason: "frame_too_large", text: "message exceeds limits.maxFrameBytes")
        case is NIOWebSocketFrameAggregator.Error:
            close(code: .protocolError, reason: "protocol_error", text: "invalid fragmentation")
        default:
            closeReason = closeReason ?? "io_error"
            events?.logger.debug("link error", metadata: ["side": "\(side)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Sending

    /// Sends one text message.
    func send(text: ByteBuffer) {
        send(count: text.readableBytes) { $0.writeImmutableBuffer(text) }
    }

    func send(text: String) {
        send(count: text.utf8.count) { $0.writeString(text) }
    }

    /// Sends one text message given as UTF-8 bytes.
    func send(utf8 bytes: [UInt8]) {
        send(count: bytes.count) { $0.writeBytes(bytes) }
    }

    /// Sends one text message of `count` bytes that `write` puts into the frame's buffer.
    private func send(count: Int, _ write: (inout ByteBuffer) -> Void) {
        guard state == .open, let context else { return }
        // A buffer of our own with room in front: the encoder writes the frame header into that room, so the frame
        // can leave as one buffer. The caller's buffer (often a slice of a read buffer still shared with the
        // decoder) has no such room and would cost a second buffer for the header.
        var payload = context.channel.allocator.buffer(capacity: Self.headerRoom + count)
        payload.moveWriterIndex(forwardBy: Self.headerRoom)
        payload.moveReaderIndex(forwardBy: Self.headerRoom)
        write(&payload)
        send(WebSocketFrame(fin: true, opcode: .text, maskKey: mask(), data: payload), context: context)
    }

    /// The longest WebSocket frame header: 2 bytes, an 8-byte length and a 4-byte mask (RFC 6455 §5.2).
    private static let headerRoom = 14

    private func send(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    /// Starts the closing handshake; the connection is dropped if the peer does not finish it in time.
    func close(code: WebSocketErrorCode, reason: String, text: String) {
        close(code: code, reason: reason, text: text, linger: Self.closeLinger)
    }

    func close(code: WebSocketErrorCode, reason: String, text: String, linger: TimeAmount) {
        guard let context else { return }
        guard state == .open else { return }
        state = .closing
        closeReason = reason
        var data = context.channel.allocator.buffer(capacity: 2 + text.utf8.count)
        data.write(webSocketErrorCode: code)
        // A close reason is at most 123 bytes (RFC 6455 §5.5).
        data.writeString(String(decoding: text.utf8.prefix(123), as: UTF8.self))
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: mask(), data: data)),
            promise: nil)
        forcedClose = context.eventLoop.scheduleTask(in: linger) { [weak self] in
            self?.context?.close(promise: nil)
        }
    }

    /// Drops the connection without a closing handshake.
    func abort() {
        context?.close(promise: nil)
    }

    private func mask() -> WebSocketMaskingKey? {
        isClient ? MaskingKeys.next() : nil
    }

    // MARK: Keepalive

    private func startKeepalive(context: ChannelHandlerContext) {
        guard keepalive.pingInterval.nanoseconds > 0 else { return }
        let interval = keepalive.pingInterval
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.sendPing()
        }
    }

    private func sendPing() {
        guard state == .open, let context else { return }
        send(
            WebSocketFrame(
                fin: true, opcode: .ping, maskKey: mask(), data: context.channel.allocator.buffer(string: "ocpp-proxy")),
            context: context)
        if unansweredPingSince == nil { unansweredPingSince = context.eventLoop.now }
        if pongDeadline == nil { armPongDeadline(context: context, at: context.eventLoop.now + keepalive.pongTimeout) }
    }

    private func armPongDeadline(context: ChannelHandlerContext, at deadline: NIODeadline) {
        pongDeadline = context.eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.pongDeadline = nil
            guard self.state == .open, let since = self.unansweredPingSince, let context = self.context else { return }
            // Not reading because the partner cannot write: a pong may be waiting unread in the socket, and the
            // silence is not this peer's. The partner's own keepalive judges the partner.
            if !self.reading && self.isWritable {
                self.armPongDeadline(context: context, at: context.eventLoop.now + self.keepalive.pongTimeout)
                return
            }
            let due = since + self.keepalive.pongTimeout
            guard due <= context.eventLoop.now else {
                // Pongs came, but a later ping is still unanswered: wait for its own deadline.
                self.armPongDeadline(context: context, at: due)
                return
            }
            self.events?.logger.info(
                "no pong within keepalive.pongTimeout; closing the link", metadata: ["side": "\(self.side)"])
            // The peer is not answering: no point in waiting for its close frame.
            self.close(
                code: .unexpectedServerError, reason: "keepalive_timeout", text: "keepalive timeout",
                linger: .milliseconds(100))
        }
    }

    private func stopTimers() {
        pingTask?.cancel()
        pingTask = nil
        pongDeadline?.cancel()
        pongDeadline = nil
        forcedClose?.cancel()
        forcedClose = nil
    }
}
