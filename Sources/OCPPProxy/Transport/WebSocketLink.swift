import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import OCPP
import OCPPWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// One WebSocket connection of a session: the charger's (the proxy is the server) or the CSMS's (the proxy is the
/// client), once NIO's upgrader has completed the handshake. It is the connection's frame relay: it reads frame
/// headers off the socket's bytes itself (`OCPPWebSocket`, RFC 6455 §5.2), unmasks a client's payload in the one
/// copy that takes it out of the read buffer, joins fragments, answers pings, and writes each outgoing frame as one
/// buffer that holds its header and its payload (masked in the same pass when the proxy is the client). It turns
/// frames into session events and owns the closing handshake and the keepalive of its connection. Lives on its
/// channel's event loop, like its session.
///
/// What it does is what NIO's `WebSocketFrameDecoder`, `WebSocketProtocolErrorHandler`,
/// `NIOWebSocketFrameAggregator` and `WebSocketFrameEncoder` did in front of it, with the same close codes
/// (the differential tests hold the framing to NIO's): a header that breaks RFC 6455 (a payload over
/// `limits.maxFrameBytes`, a fragmented or long control frame) is answered with a close frame of 1009 or 1002 and
/// the connection closed once it is written; bad fragmentation is a closing handshake with 1002, a message over
/// `limits.maxFrameBytes` one with 1009. RSV bits and reserved opcodes are passed over, as NIO did.
final class WebSocketLink: ChannelInboundHandler, RemovableChannelHandler, FrameLink {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let side: Side
    /// A client masks every frame it sends (RFC 6455 §5.3).
    private let isClient: Bool
    var transport: ListenerTransport { .websocket }
    private let keepalive: KeepaliveConfiguration
    /// The largest payload of a frame, and of a message joined from fragments (`limits.maxFrameBytes`).
    private let maxFrameBytes: Int
    private(set) var state: LinkState = .open
    private var context: ChannelHandlerContext?
    /// Messages that arrive before the session is attached (the CSMS may speak before the charger's upgrade has
    /// completed): the opcode (text or binary) and the payload.
    private var early: [(opcode: UInt8, data: ByteBuffer)] = []
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

    // Reading
    /// The bytes of a frame not yet complete, kept across reads (nil when a read ended on a frame boundary).
    private var partial: ByteBuffer?
    /// The fragments of a message so far, unmasked, and the opcode of its first frame.
    private var message: ByteBuffer?
    private var messageOpcode: UInt8 = 0
    private var messageFrames = 0
    /// Set by a header that breaks RFC 6455: the close frame is on its way and nothing more is read.
    private var broken = false

    /// Frames held for a session that does not exist yet; more is a peer that does not wait for answers.
    static let earlyFramesKept = 64

    /// How long to wait for the peer's close frame (or its TCP close) after ours.
    static let closeLinger = TimeAmount.seconds(3)

    /// Fragments of one message at most, as NIO's aggregator was configured.
    static let maxFragments = 1024

    init(side: Side, isClient: Bool, keepalive: KeepaliveConfiguration, maxFrameBytes: Int = 65536) {
        self.side = side
        self.isClient = isClient
        self.keepalive = keepalive
        self.maxFrameBytes = maxFrameBytes
    }

    /// Puts the link where NIO's upgrader left its frame handlers, in front of them: the socket's bytes (or TLS's)
    /// reach the link, and what it writes goes straight out. NIO's decoder is removed; its encoder and protocol
    /// error handler cannot be, and stay behind the link where no frame reaches them. Run in the upgrader's
    /// completion, on the channel's event loop, before the bytes that followed the handshake are replayed.
    static func install(_ link: WebSocketLink, in pipeline: ChannelPipeline.SynchronousOperations) throws {
        let encoder = try pipeline.handler(type: WebSocketFrameEncoder.self)
        try pipeline.addHandler(link, position: .before(encoder))
        let decoder = try pipeline.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        pipeline.removeHandler(decoder, promise: nil)
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

    // MARK: Reading frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else {
            // As NIO's decoder did in its error state: whatever else arrives ends the connection at once.
            context.close(promise: nil)
            return
        }
        var bytes = unwrapInboundIn(data)
        if var held = partial {
            // Let go of the stored copy first, so that the held buffer is the only reference and grows in place.
            partial = nil
            held.writeBuffer(&bytes)
            readFrames(from: &held, context: context)
            if !broken, held.readableBytes > 0 {
                // What the frames read took is given back, so a held buffer is never more than one frame.
                held.discardReadBytes()
                partial = held
            }
        } else {
            let needed = readFrames(from: &bytes, context: context)
            if !broken, bytes.readableBytes > 0 {
                // The rest of a frame: copied out of the read buffer (which the channel reuses), with room for the
                // whole frame when its header has been read (its length is checked against maxFrameBytes).
                var held = context.channel.allocator.buffer(capacity: max(needed, bytes.readableBytes))
                held.writeBuffer(&bytes)
                partial = held
            }
        }
    }

    /// Reads every complete frame at the front of `buffer`; returns the length of the incomplete frame that stops
    /// it when its header is known (0 otherwise).
    @discardableResult
    private func readFrames(from buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Int {
        let limit = maxFrameBytes
        while !broken {
            let parse = buffer.withUnsafeReadableBytes { WebSocketFrameHeader.parse($0, maxPayloadLength: limit) }
            switch parse {
            case .needMore:
                return 0
            case .invalid(let violation):
                violated(violation, context: context)
                return 0
            case .header(let header):
                // Both at most maxFrameBytes + 14: no overflow.
                let total = header.headerLength + header.payloadLength
                guard buffer.readableBytes >= total else { return total }
                frameArrived(header, payload: buffer.readerIndex + header.headerLength, in: buffer, context: context)
                buffer.moveReaderIndex(forwardBy: total)
            }
        }
        return 0
    }

    /// A frame whose payload starts at index `payload` of `buffer`.
    private func frameArrived(
        _ header: WebSocketFrameHeader, payload: Int, in buffer: ByteBuffer, context: ChannelHandlerContext
    ) {
        switch header.opcode {
        case WebSocketFrameHeader.Opcode.continuation:
            guard message != nil else { return fragmentationFailed(tooLarge: false) }
            append(header, payload: payload, in: buffer, context: context)
        case WebSocketFrameHeader.Opcode.text, WebSocketFrameHeader.Opcode.binary:
            guard message == nil else { return fragmentationFailed(tooLarge: false) }
            if header.fin {
                dataArrived(
                    opcode: header.opcode, unmasked(header, payload: payload, in: buffer, context: context),
                    context: context)
            } else {
                messageOpcode = header.opcode
                messageFrames = 0
                message = context.channel.allocator.buffer(capacity: header.payloadLength)
                append(header, payload: payload, in: buffer, context: context)
            }
        default:
            controlArrived(
                opcode: header.opcode, unmasked(header, payload: payload, in: buffer, context: context),
                context: context)
        }
    }

    /// A frame's payload, unmasked: a client's copied out and unmasked in one pass; a server's, which travels in
    /// clear, is a view of the read buffer.
    private func unmasked(
        _ header: WebSocketFrameHeader, payload: Int, in buffer: ByteBuffer, context: ChannelHandlerContext
    ) -> ByteBuffer {
        guard let key = header.maskingKey else {
            return buffer.getSlice(at: payload, length: header.payloadLength) ?? ByteBuffer()
        }
        var data = context.channel.allocator.buffer(capacity: header.payloadLength)
        Self.unmask(header, key: key, payload: payload, in: buffer, into: &data)
        return data
    }

    private static func unmask(
        _ header: WebSocketFrameHeader, key: UInt32, payload: Int, in buffer: ByteBuffer, into data: inout ByteBuffer
    ) {
        let count = header.payloadLength
        let offset = payload - buffer.readerIndex
        data.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { destination in
            buffer.withUnsafeReadableBytes { source in
                WebSocketMasking.apply(
                    key, from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]), to: destination)
            }
            return count
        }
    }

    /// One fragment of the message being joined, with the limits NIO's aggregator had: at most
    /// `maxFragments` frames and `maxFrameBytes` in all.
    private func append(
        _ header: WebSocketFrameHeader, payload: Int, in buffer: ByteBuffer, context: ChannelHandlerContext
    ) {
        guard var joined = message else { return }
        message = nil
        guard messageFrames < Self.maxFragments, header.fin || messageFrames + 1 < Self.maxFragments else {
            return fragmentationFailed(tooLarge: false)
        }
        guard header.payloadLength <= maxFrameBytes - joined.readableBytes else {
            return fragmentationFailed(tooLarge: true)
        }
        messageFrames += 1
        if let key = header.maskingKey {
            Self.unmask(header, key: key, payload: payload, in: buffer, into: &joined)
        } else {
            var slice = buffer.getSlice(at: payload, length: header.payloadLength) ?? ByteBuffer()
            joined.writeBuffer(&slice)
        }
        if header.fin {
            dataArrived(opcode: messageOpcode, joined, context: context)
        } else {
            message = joined
        }
    }

    private func fragmentationFailed(tooLarge: Bool) {
        message = nil
        if tooLarge {
            close(code: .messageTooLarge, reason: "frame_too_large", text: "message exceeds limits.maxFrameBytes")
        } else {
            close(code: .protocolError, reason: "protocol_error", text: "invalid fragmentation")
        }
    }

    /// A header that breaks RFC 6455: a close frame with 1009 or 1002 (no reason, as NIO's protocol error handler
    /// sent it), the connection closed once it is written, and nothing more read.
    private func violated(_ violation: WebSocketFrameViolation, context: ChannelHandlerContext) {
        broken = true
        partial = nil
        message = nil
        if state == .open { state = .closing }
        closeReason = closeReason ?? (violation == .tooLarge ? "frame_too_large" : "protocol_error")
        var code = context.channel.allocator.buffer(capacity: 2)
        code.writeInteger(violation.closeCode)
        let frame = makeFrame(opcode: WebSocketFrameHeader.Opcode.close, payload: code, context: context)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
    }

    /// A whole text or binary message.
    private func dataArrived(opcode: UInt8, _ data: ByteBuffer, context: ChannelHandlerContext) {
        guard state == .open else { return }
        if let events {
            deliver(opcode: opcode, data, to: events)
        } else if early.count < Self.earlyFramesKept {
            early.append((opcode, data))
        } else {
            // A peer that keeps sending before the session exists is not speaking OCPP-J (one CALL at a time).
            close(
                code: .policyViolation, reason: "too_many_early_frames",
                text: "too many frames before the session started")
        }
    }

    private func controlArrived(opcode: UInt8, _ data: ByteBuffer, context: ChannelHandlerContext) {
        switch opcode {
        case WebSocketFrameHeader.Opcode.ping:
            guard state == .open else { return }
            context.writeAndFlush(
                wrapOutboundOut(makeFrame(opcode: WebSocketFrameHeader.Opcode.pong, payload: data, context: context)),
                promise: nil)
        case WebSocketFrameHeader.Opcode.pong:
            // Not a cancellation: NIO cancels by searching every task scheduled on the event loop, and every link
            // pongs twice a minute. The deadline finds the pong when it fires.
            unansweredPingSince = nil
        case WebSocketFrameHeader.Opcode.close:
            var data = data
            peerCloseCode = data.readWebSocketErrorCode()
            if state == .open {
                // Echo the code (RFC 6455 §5.5.1), then close the connection.
                state = .closing
                var echo = context.channel.allocator.buffer(capacity: 2)
                if let code = peerCloseCode { echo.write(webSocketErrorCode: code) }
                let frame = makeFrame(opcode: WebSocketFrameHeader.Opcode.close, payload: echo, context: context)
                context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            // Reserved opcodes: passed over, as they were behind NIO's decoder.
            break
        }
    }

    private func deliver(opcode: UInt8, _ data: ByteBuffer, to events: LinkEvents) {
        if opcode == WebSocketFrameHeader.Opcode.text {
            events.received(text: data, from: side)
        } else {
            events.receivedBinary(from: side)
        }
    }

    private func replayEarlyFrames() {
        guard let events, !early.isEmpty else { return }
        let frames = early
        early = []
        for frame in frames where state == .open {
            deliver(opcode: frame.opcode, frame.data, to: events)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        stopTimers()
        partial = nil
        message = nil
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
        closeReason = closeReason ?? "io_error"
        events?.logger.debug("link error", metadata: ["side": "\(side)", "error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Sending

    /// Sends one text message.
    func send(text: ByteBuffer) {
        guard state == .open, let context else { return }
        send(makeFrame(opcode: WebSocketFrameHeader.Opcode.text, payload: text, context: context), context: context)
    }

    func send(text: String) {
        guard state == .open, let context else { return }
        var text = text
        let frame = text.withUTF8 { utf8 in
            makeFrame(opcode: WebSocketFrameHeader.Opcode.text, payload: UnsafeRawBufferPointer(utf8), context: context)
        }
        send(frame, context: context)
    }

    /// Sends one text message given as UTF-8 bytes.
    func send(utf8 bytes: [UInt8]) {
        guard state == .open, let context else { return }
        let frame = bytes.withUnsafeBytes {
            makeFrame(opcode: WebSocketFrameHeader.Opcode.text, payload: $0, context: context)
        }
        send(frame, context: context)
    }

    private func makeFrame(opcode: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) -> ByteBuffer {
        payload.withUnsafeReadableBytes { makeFrame(opcode: opcode, payload: $0, context: context) }
    }

    /// One frame as one buffer: the header, then the payload copied (masked in the same pass, as a client).
    private func makeFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> ByteBuffer
    {
        let key = isClient ? MaskingKeys.next() : nil
        let header = WebSocketFrameHeader(
            fin: true, opcode: opcode, maskingKey: key, payloadLength: payload.count,
            headerLength: WebSocketFrameHeader.length(payloadLength: payload.count, masked: key != nil))
        let total = header.headerLength + payload.count
        var frame = context.channel.allocator.buffer(capacity: total)
        frame.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { destination in
            let start = header.write(to: destination)
            let body = UnsafeMutableRawBufferPointer(rebasing: destination[start..<(start + payload.count)])
            if let key {
                WebSocketMasking.apply(key, from: payload, to: body)
            } else if payload.count > 0 {
                body.copyMemory(from: payload)
            }
            return start + payload.count
        }
        return frame
    }

    private func send(_ frame: ByteBuffer, context: ChannelHandlerContext) {
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
        send(makeFrame(opcode: WebSocketFrameHeader.Opcode.close, payload: data, context: context), context: context)
        forcedClose = context.eventLoop.scheduleTask(in: linger) { [weak self] in
            self?.context?.close(promise: nil)
        }
    }

    /// Drops the connection without a closing handshake.
    func abort() {
        context?.close(promise: nil)
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
        let ping = StaticString("ocpp-proxy")
        let frame = makeFrame(
            opcode: WebSocketFrameHeader.Opcode.ping,
            payload: UnsafeRawBufferPointer(start: ping.utf8Start, count: ping.utf8CodeUnitCount), context: context)
        send(frame, context: context)
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
