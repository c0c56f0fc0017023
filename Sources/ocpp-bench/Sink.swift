import ArgumentParser
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// `ocpp-bench sink`: a CSMS that answers every CALL with a canned, schema-valid CALLRESULT.
struct Sink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A canned CSMS: accepts OCPP 1.6 and 2.0.1 chargers on /anything/{identity} and answers every CALL.")

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to bind.")
    var port: Int

    @Option(help: "Event loop threads (default: the number of cores).")
    var threads: Int = System.coreCount

    @Option(help: "Exit by itself after this many seconds (a bound for forgotten runs).")
    var lifetime: Int = 7200

    @Option(help: "Largest WebSocket message accepted, in bytes.")
    var maxFrameBytes: Int = 1 << 20

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port: expected 1-65535") }
        guard threads >= 1 else { throw ValidationError("--threads: expected at least 1") }
        guard lifetime >= 1 else { throw ValidationError("--lifetime: expected at least 1 second") }
    }

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let loops = Array(group.makeIterator())
        let counters = loops.map { _ in SinkCounters() }
        let maxFrame = maxFrameBytes

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let index = loops.firstIndex { $0 === channel.eventLoop } ?? 0
                let counter = counters[index]
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxFrame, automaticErrorHandling: true,
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(SinkHandshake.headers(for: head))
                    },
                    upgradePipelineHandler: { channel, head in
                        let version = SinkHandshake.version(for: head)
                        counter.connections += 1
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers([
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                    maxAccumulatedFrameSize: maxFrame),
                                SinkHandler(version: version, counters: counter),
                            ])
                        }
                    })
                // The responder answers requests that do not upgrade; it leaves once the upgrade is done.
                let responder = NotFoundResponder()
                return channel.pipeline.configureHTTPServerPipeline(
                    withServerUpgrade: (
                        upgraders: [upgrader],
                        completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(responder, promise: nil)
                        }
                    ),
                    withErrorHandling: true
                ).flatMap { channel.pipeline.addHandler(responder) }
            }
        let channel = try bootstrap.bind(host: host, port: port).wait()
        print(
            "sink: listening on ws://\(host):\(port)/{anything}/{identity} (ocpp1.6, ocpp2.0.1), \(threads) event loops"
        )
        fflush(nil)

        // SIGTERM / SIGINT: print what was answered, then exit 0.
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { done.signal() }
            source.resume()
            sources.append(source)
        }
        if done.wait(timeout: .now() + .seconds(lifetime)) == .timedOut {
            print("sink: --lifetime \(lifetime) s reached; exiting")
        }
        var totals = SinkCounters.Snapshot()
        for (loop, counter) in zip(loops, counters) {
            if let s = try? loop.submit({ counter.snapshot }).wait() { totals.add(s) }
        }
        print(
            "sink: \(totals.connections) connections, \(totals.calls) CALLs answered, \(totals.malformed) malformed frames"
        )
        fflush(nil)
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        _ = sources
    }
}

/// Per event loop; touched only on its loop.
final class SinkCounters {
    struct Snapshot {
        var connections = 0
        var calls = 0
        var malformed = 0
        mutating func add(_ o: Snapshot) {
            connections += o.connections
            calls += o.calls
            malformed += o.malformed
        }
    }

    var connections = 0
    var calls = 0
    var malformed = 0
    let clock = ClockText()

    var snapshot: Snapshot { Snapshot(connections: connections, calls: calls, malformed: malformed) }
}

enum SinkHandshake {
    /// Any path of at least two segments (`/anything/{identity}`) is accepted; the subprotocol is the first of
    /// the client's list that the sink speaks. A client offering none it speaks is refused (nil: HTTP 400).
    static func headers(for head: HTTPRequestHead) -> HTTPHeaders? {
        let path = head.uri.split(separator: "?", maxSplits: 1).first ?? ""
        guard path.split(separator: "/").count >= 2 else { return nil }
        var headers = HTTPHeaders()
        let offered = offeredProtocols(head)
        if offered.isEmpty { return headers }  // no subprotocol asked for: plain upgrade, spoken as 1.6
        guard let chosen = offered.first(where: { BenchVersion(rawValue: $0) != nil }) else { return nil }
        headers.add(name: "Sec-WebSocket-Protocol", value: chosen)
        return headers
    }

    static func version(for head: HTTPRequestHead) -> BenchVersion {
        offeredProtocols(head).lazy.compactMap(BenchVersion.init(rawValue:)).first ?? .v16
    }

    static func offeredProtocols(_ head: HTTPRequestHead) -> [String] {
        head.headers["sec-websocket-protocol"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// Answers a request that did not upgrade (wrong path, no WebSocket headers).
final class NotFoundResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .notFound, headers: headers))),
            promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

/// One charger's connection at the sink. Reads the head of each frame, answers CALLs, flushes once per read
/// burst.
final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let version: BenchVersion
    private let counters: SinkCounters
    private var needsFlush = false
    private var transactionId = 0
    private var closing = false

    init(version: BenchVersion, counters: SinkCounters) {
        self.version = version
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard !closing else { return }
            let text = frame.unmaskedData
            if let reply = answer(text, allocator: context.channel.allocator) {
                context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: reply)), promise: nil)
                needsFlush = true
            }
        case .ping:
            context.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .connectionClose:
            guard !closing else {
                context.close(promise: nil)
                return
            }
            closing = true
            var data = frame.unmaskedData
            var echo = context.channel.allocator.buffer(capacity: 2)
            if let code = data.readWebSocketErrorCode() { echo.write(webSocketErrorCode: code) }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)))
                .whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// The CALLRESULT (or, for a frame whose head cannot be read, a CALLERROR) to send back; nil for answers.
    private func answer(_ text: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        text.withUnsafeReadableBytes { p -> ByteBuffer? in
            guard let head = FrameScanner.scan(p) else {
                counters.malformed += 1
                let code = version == .v16 ? "FormationViolation" : "RpcFrameworkError"
                return allocator.buffer(string: "[4,\"-1\",\"\(code)\",\"unreadable frame\",{}]")
            }
            guard head.type == 2 else { return nil }
            counters.calls += 1
            let payload = cannedPayload(p, action: head.action)
            var out = allocator.buffer(capacity: 8 + head.id.count + payload.utf8.count)
            out.writeStaticString("[3,\"")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[head.id]))
            out.writeStaticString("\",")
            out.writeString(payload)
            out.writeStaticString("]")
            return out
        }
    }

    private func cannedPayload(_ p: UnsafeRawBufferPointer, action a: Range<Int>) -> String {
        func `is`(_ name: StaticString) -> Bool { FrameScanner.equals(p, a, name) }
        switch version {
        case .v16:
            if `is`("Heartbeat") { return "{\"currentTime\":\"\(counters.clock.now)\"}" }
            if `is`("StatusNotification") || `is`("MeterValues") { return "{}" }
            if `is`("Authorize") || `is`("StopTransaction") { return "{\"idTagInfo\":{\"status\":\"Accepted\"}}" }
            if `is`("StartTransaction") {
                transactionId += 1
                return "{\"transactionId\":\(transactionId),\"idTagInfo\":{\"status\":\"Accepted\"}}"
            }
            if `is`("BootNotification") {
                return "{\"status\":\"Accepted\",\"currentTime\":\"\(counters.clock.now)\",\"interval\":300}"
            }
            return "{}"
        case .v201:
            if `is`("Heartbeat") { return "{\"currentTime\":\"\(counters.clock.now)\"}" }
            if `is`("StatusNotification") || `is`("MeterValues") { return "{}" }
            if `is`("Authorize") { return "{\"idTokenInfo\":{\"status\":\"Accepted\"}}" }
            if `is`("TransactionEvent") {
                // A CSMS answers an event that carries an idToken (Started, Ended here) with its idTokenInfo,
                // as the 1.6 sink answers StartTransaction / StopTransaction with idTagInfo; Updated gets {}.
                return FrameScanner.contains(p, "\"idToken\"", from: a.upperBound)
                    ? "{\"idTokenInfo\":{\"status\":\"Accepted\"}}" : "{}"
            }
            if `is`("BootNotification") {
                return "{\"currentTime\":\"\(counters.clock.now)\",\"interval\":300,\"status\":\"Accepted\"}"
            }
            return "{}"
        }
    }
}
