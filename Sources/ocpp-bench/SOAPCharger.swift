import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The OCPP-S versions the load speaks: OCPP 1.5 and 1.6 over SOAP 1.2 (OCPP-S 1.6 §2).
enum OCPPSVersion: String, CaseIterable {
    case v15 = "ocpp1.5"
    case v16 = "ocpp1.6"

    /// The namespace of the version's CentralSystemService (OCPP-S 1.6 §8).
    var namespace: String {
        switch self {
        case .v15: return "urn://Ocpp/Cs/2012/06/"
        case .v16: return "urn://Ocpp/Cs/2015/10/"
        }
    }
}

enum SOAPNamespace {
    static let envelope = "http://www.w3.org/2003/05/soap-envelope"
    static let addressing = "http://www.w3.org/2005/08/addressing"
    static let anonymous = "http://www.w3.org/2005/08/addressing/anonymous"
}

/// Text and attribute values escaped for XML.
enum XMLText {
    static func escape(_ text: String) -> String {
        guard text.contains(where: { "&<>\"'".contains($0) }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// One simulated OCPP-S charger: its CALLs are SOAP 1.2 requests POSTed to `--url` over one HTTP/1.1 keep-alive
/// connection (NIO's HTTP client codec), each answered in its HTTP response (OCPP-S 1.6 §3.2). The connection is
/// opened again for the next request when the server closed it between two (keep-alive expiry, `Connection:
/// close`); one closed while a request waits for its answer ends the charger, as a closed WebSocket does.
/// The charger sends an anonymous `wsa:From`: the CSMS has nowhere to send it anything.
final class SOAPCharger: BenchCharger {
    /// Largest answer body read; a larger one counts as malformed.
    static let maxBody = 1 << 20

    private let version: OCPPSVersion
    private var address: SocketAddress?
    private var connection: SOAPConnection?
    private var opening = false
    /// A request written while no connection was open: sent once the new connection is up.
    private var waiting: (head: HTTPRequestHead, body: ByteBuffer)?
    /// `wsa:MessageID` of the outstanding request, which the answer's `wsa:RelatesTo` must name.
    private var messageID = ""
    private let allocator = ByteBufferAllocator()
    /// The envelope up to the `wsa:Action` text, and from the end of `wsa:MessageID` to the body: the same for
    /// every request of this charger.
    private let envelopeHead: String
    private let envelopeMiddle: String

    init(identity: String, index: Int, worker: LoopWorker, version: OCPPSVersion) {
        self.version = version
        let a = SOAPNamespace.anonymous
        envelopeHead =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            + "<s:Envelope xmlns:s=\"\(SOAPNamespace.envelope)\" xmlns:a=\"\(SOAPNamespace.addressing)\">"
            + "<s:Header><chargeBoxIdentity xmlns=\"\(version.namespace)\" s:mustUnderstand=\"true\">"
            + "\(XMLText.escape(identity))</chargeBoxIdentity><a:Action>"
        envelopeMiddle =
            "</a:MessageID><a:From><a:Address>\(a)</a:Address></a:From>"
            + "<a:ReplyTo><a:Address>\(a)</a:Address></a:ReplyTo>"
            + "<a:To>\(XMLText.escape(worker.plan.target.text))</a:To></s:Header><s:Body>"
        super.init(identity: identity, index: index, worker: worker)
    }

    override var isOpen: Bool { connection?.isActive ?? false }
    /// A request can always be written: without a connection, it waits for a new one.
    override var canTransmit: Bool { true }

    override func connect(to address: SocketAddress) {
        self.address = address
        open()
    }

    private func open() {
        guard let address, !opening else { return }
        opening = true
        let charger = self
        ClientBootstrap(group: worker.loop)
            .connectTimeout(worker.plan.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(SOAPConnection(charger: charger))
                }
            }
            .connect(to: address)
            .whenComplete { result in charger.opened(result) }
    }

    private func opened(_ result: Result<Channel, Error>) {
        opening = false
        switch result {
        case .success(let channel) where !channel.isActive:
            // Closed by the server before this callback ran: as a connection that could not be opened.
            opened(.failure(ChannelError.ioOnClosedChannel))
        case .success(let channel):
            // The run ended, or the connect timed out, while connecting.
            guard !closing, state != .failed, state != .closed,
                let connection = try? channel.pipeline.syncOperations.handler(type: SOAPConnection.self)
            else {
                channel.close(promise: nil)
                return
            }
            self.connection = connection
            if state == .connecting {
                established()
            } else if let waiting {
                self.waiting = nil
                connection.send(head: waiting.head, body: waiting.body)
            }
        case .failure(let error):
            switch state {
            case .connecting:
                failed(LoopWorker.classify(error))
            case .booting, .booted:
                // The connection could not be opened again: the charger is gone.
                waiting = nil
                ended()
            case .failed, .closed:
                break  // the connect timed out already, or the charger is gone
            }
        }
    }

    /// Closes the connection as one this charger is done with (NIO may report its end before `close` returns).
    private func dropConnection() {
        let dropped = connection
        connection = nil
        dropped?.close()
    }

    override func abort() { dropConnection() }

    override func abandoned() {
        // A late answer on this connection would be read as the next request's: start a new one.
        waiting = nil
        dropConnection()
    }

    override func close() {
        stopScenario()
        closing = true
        giveUpConnecting()
        waiting = nil
        connection?.close()
    }

    // MARK: Requests

    override func transmit(_ kind: CallKind, id: UInt64) {
        let action = kind.action(.v16)
        let body = scenario.soapBody(kind, version: version, identity: identity, now: worker.clock.now)
        messageID = Self.uuid(&worker.random)
        var buffer = allocator.buffer(
            capacity: envelopeHead.utf8.count + envelopeMiddle.utf8.count + body.utf8.count + 128)
        buffer.writeString(envelopeHead)
        buffer.writeStaticString("/")
        buffer.writeString(action)
        buffer.writeStaticString("</a:Action><a:MessageID>")
        buffer.writeString(messageID)
        buffer.writeString(envelopeMiddle)
        buffer.writeString(body)
        buffer.writeStaticString("</s:Body></s:Envelope>")
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: worker.plan.target.path)
        head.headers.add(name: "Host", value: worker.plan.target.authority)
        head.headers.add(name: "Content-Type", value: "application/soap+xml; charset=utf-8; action=\"/\(action)\"")
        head.headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        markSent(kind, id: id)
        if let connection, connection.isActive {
            connection.send(head: head, body: buffer)
        } else {
            // The server closed the keep-alive connection since the last answer: a new one carries this request.
            connection = nil
            waiting = (head, buffer)
            open()
        }
    }

    /// A random `urn:uuid:` (version 4) from the worker's generator.
    static func uuid(_ random: inout XorShift) -> String {
        let high = (random.next() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let low = (random.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        func hex(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        return "urn:uuid:\(hex(high >> 32, 8))-\(hex((high >> 16) & 0xFFFF, 4))-\(hex(high & 0xFFFF, 4))-"
            + "\(hex(low >> 48, 4))-\(hex(low & 0xFFFF_FFFF_FFFF, 12))"
    }

    // MARK: Called by the connection

    /// A whole HTTP response: its status, its body (nil when it was over `maxBody` or content-encoded) and whether
    /// the connection stays open.
    func response(status: HTTPResponseStatus, body: ByteBuffer?, keepAlive: Bool, from connection: SOAPConnection) {
        let now = monotonicNanos()
        guard connection === self.connection, let o = outstanding else {
            // Nothing was asked on this connection (an answer after a timeout): it cannot be trusted any more.
            connection.close()
            return
        }
        if !keepAlive { dropConnection() }
        var answer = SOAPAnswer.malformed
        if let body {
            answer = SOAPAnswerReader.read(
                body, response: Self.responseElement(o.kind), action: o.kind.action(.v16), version: version,
                messageID: messageID)
        }
        var transactionId: Int?
        switch answer {
        case .result(let transaction) where status == .ok:
            transactionId = o.kind == .startTransaction ? transaction : nil
        case .fault:
            worker.stats.soapFaults += 1
        case .result, .malformed:
            if status != .ok {
                worker.stats.soapHTTPErrors += 1
            } else {
                worker.stats.soapMalformed += 1
            }
        }
        let ok = status == .ok && answer != .fault && answer != .malformed
        answered(id: o.id, error: !ok, transactionId: transactionId, at: now)
    }

    /// The connection is gone.
    func connectionEnded(_ connection: SOAPConnection) {
        guard connection === self.connection else { return }  // one this charger dropped
        self.connection = nil
        // Closed while a request waits for its answer, or at the end of the run: the charger is gone. Closed
        // between two requests: the next one opens a new connection.
        if closing || outstanding != nil { ended() }
    }

    /// The body element that answers `kind`: `bootNotificationResponse`, … (the WSDLs' element names).
    static func responseElement(_ kind: CallKind) -> String {
        let action = kind.action(.v16)
        return action.prefix(1).lowercased() + action.dropFirst() + "Response"
    }
}

/// One HTTP/1.1 connection of a `SOAPCharger`, behind NIO's HTTP client codec: writes requests, gathers each
/// response (its body bounded by `SOAPCharger.maxBody`) and hands it to the charger whole.
final class SOAPConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let charger: SOAPCharger
    private var context: ChannelHandlerContext?
    private var status: HTTPResponseStatus = .ok
    private var keepAlive = true
    private var body: ByteBuffer?
    /// The body is over the limit or content-encoded (the load asks for no encoding): it is not read.
    private var unreadable = false

    init(charger: SOAPCharger) {
        self.charger = charger
    }

    var isActive: Bool { context?.channel.isActive ?? false }

    func send(head: HTTPRequestHead, body: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            keepAlive = head.isKeepAlive
            let encoding = head.headers["content-encoding"].first?.lowercased() ?? "identity"
            unreadable = encoding != "identity"
            let length = head.headers["content-length"].first.flatMap { Int($0) } ?? 0
            body = context.channel.allocator.buffer(capacity: min(max(length, 0), SOAPCharger.maxBody))
        case .body(let part):
            guard !unreadable else { return }
            if (body?.readableBytes ?? 0) + part.readableBytes > SOAPCharger.maxBody {
                unreadable = true
                body = nil
            } else {
                body?.writeImmutableBuffer(part)
            }
        case .end:
            let answer = unreadable ? nil : body
            body = nil
            charger.response(status: status, body: answer, keepAlive: keepAlive, from: self)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        charger.connectionEnded(self)
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

// Both live on the charger's event loop; the bootstrap's callbacks that capture them run there too.
extension SOAPConnection: @unchecked Sendable {}
extension SOAPCharger: @unchecked Sendable {}
