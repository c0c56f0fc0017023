import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Sends the upgrade request once connected; reports an upgrade refused with an HTTP status (and its
/// Retry-After) or a hang-up.
final class UpgradeRequester: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead
    private let failed: (_ reason: String, _ retryAfter: Int?) -> Void

    init(head: HTTPRequestHead, failed: @escaping (_ reason: String, _ retryAfter: Int?) -> Void) {
        self.head = head
        self.failed = failed
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { channelActive(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let response) = unwrapInboundIn(data) {
            failed("http_\(response.status.code)", response.headers["retry-after"].first.flatMap { Int($0) })
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failed("closed_during_upgrade", nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if ProcessInfo.processInfo.environment["OCPP_BENCH_DEBUG"] != nil {
            FileHandle.standardError.write(Data("load: upgrade error: \(error)\n".utf8))
        }
        failed("upgrade_error", nil)
        context.close(promise: nil)
    }
}

/// One simulated OCPP-J charger: its WebSocket connection. The CALL it has outstanding and its scenario are
/// `BenchCharger`'s.
final class ChargerHandler: BenchCharger, ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private var channel: Channel?
    private var context: ChannelHandlerContext?

    override var isOpen: Bool { channel?.isActive ?? false }
    override var canTransmit: Bool { context != nil }

    override func connect(to address: SocketAddress) {
        let plan = worker.plan
        let charger = self
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(plan.target.path)/\(identity)")
        head.headers.add(name: "Host", value: "\(plan.target.host):\(plan.target.port)")
        head.headers.add(name: "Sec-WebSocket-Protocol", value: plan.version.rawValue)
        let version = plan.version
        let requester = UpgradeRequester(head: head) { reason, _ in charger.failed(reason) }
        let bootstrap = ClientBootstrap(group: worker.loop)
            .connectTimeout(plan.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 20, automaticErrorHandling: true) {
                    channel, response in
                    channel.eventLoop.makeCompletedFuture {
                        guard response.headers["sec-websocket-protocol"].first == version.rawValue else {
                            charger.failed("subprotocol")
                            channel.close(promise: nil)
                            return
                        }
                        let ops = channel.pipeline.syncOperations
                        ops.removeHandler(requester, promise: nil)
                        try ops.addHandlers([
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: 1 << 20),
                            charger,
                        ])
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(requester)
                }
            }
        bootstrap.connect(to: address).whenComplete { result in
            switch result {
            case .success(let channel): charger.attach(channel)
            case .failure(let error): charger.failed(LoopWorker.classify(error))
            }
        }
    }

    private func attach(_ channel: Channel) {
        self.channel = channel
        if state == .failed { channel.close(promise: nil) }
    }

    override func abort() { channel?.close(promise: nil) }

    // MARK: ChannelHandler

    func handlerAdded(context: ChannelHandlerContext) {
        // The upgrade completed: the charger is connected.
        guard state == .connecting else {
            context.close(promise: nil)
            return
        }
        self.context = context
        channel = context.channel
        established()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            received(frame.unmaskedData, context: context)
        case .ping:
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(
                        fin: true, opcode: .pong, maskKey: .random(using: &worker.random), data: frame.unmaskedData)),
                promise: nil)
        case .connectionClose:
            if !closing {
                closing = true
                var echo = context.channel.allocator.buffer(capacity: 2)
                var data = frame.unmaskedData
                if let code = data.readWebSocketErrorCode() { echo.write(webSocketErrorCode: code) }
                context.writeAndFlush(
                    wrapOutboundOut(
                        WebSocketFrame(
                            fin: true, opcode: .connectionClose, maskKey: .random(using: &worker.random), data: echo))
                )
                .whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: Frames

    private func received(_ text: ByteBuffer, context: ChannelHandlerContext) {
        let now = monotonicNanos()
        // (type, id, transactionId of a StartTransaction.conf)
        let parsed: (Int, UInt64?, Int?, Range<Int>)? = text.withUnsafeReadableBytes { p in
            guard let head = FrameScanner.scan(p) else { return nil }
            let id = FrameScanner.decimal(p, head.id)
            var transaction: Int?
            if head.type == 3, let o = outstanding, o.kind == .startTransaction, worker.plan.version == .v16 {
                transaction = FrameScanner.integer(after: "\"transactionId\"", in: p, from: head.end)
            }
            return (head.type, id, transaction, head.id)
        }
        guard let (type, id, transaction, idRange) = parsed else { return }
        switch type {
        case 3, 4:
            answered(id: id, error: type == 4, transactionId: transaction, at: now)
        case 2:
            // The CSMS never calls in this benchmark; answer anything with an empty CALLRESULT anyway.
            var reply = context.channel.allocator.buffer(capacity: 32)
            reply.writeStaticString("[3,\"")
            _ = text.withUnsafeReadableBytes { reply.writeBytes(UnsafeRawBufferPointer(rebasing: $0[idRange])) }
            reply.writeStaticString("\",{}]")
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(fin: true, opcode: .text, maskKey: .random(using: &worker.random), data: reply)),
                promise: nil)
        default:
            break
        }
    }

    override func transmit(_ kind: CallKind, id: UInt64) {
        guard let context else { return }
        let version = worker.plan.version
        let payload = scenario.payload(kind, version: version, identity: identity, now: worker.clock.now)
        var buffer = context.channel.allocator.buffer(capacity: payload.utf8.count + 48)
        buffer.writeStaticString("[2,\"")
        buffer.writeString(String(id))
        buffer.writeStaticString("\",\"")
        buffer.writeString(kind.action(version))
        buffer.writeStaticString("\",")
        buffer.writeString(payload)
        buffer.writeStaticString("]")
        markSent(kind, id: id)
        context.writeAndFlush(
            wrapOutboundOut(
                WebSocketFrame(fin: true, opcode: .text, maskKey: .random(using: &worker.random), data: buffer)),
            promise: nil)
    }

    /// Ends the run: a close frame (1000), then the TCP connection after the peer's echo or a second.
    override func close() {
        stopScenario()
        guard let context, !closing else {
            giveUpConnecting()
            channel?.close(promise: nil)
            return
        }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .normalClosure)
        context.writeAndFlush(
            wrapOutboundOut(
                WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(using: &worker.random), data: data)
            ), promise: nil)
        let channel = context.channel
        channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }
}

// Both live on one event loop (the charger's); the upgrade callbacks that capture them run there too.
extension UpgradeRequester: @unchecked Sendable {}
extension ChargerHandler: @unchecked Sendable {}
