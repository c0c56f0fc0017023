import Logging
import NIOCore
import NIOWebSocket
import OCPP

/// The charger side of a SOAP charger's session. A SOAP charger has no connection of its own: each of its requests is
/// an HTTP exchange, and the proxy's requests to it are HTTP exchanges the other way. This link turns both into the RPC
/// frames a session speaks. A charger's request becomes a CALL the session receives; the session's answer to it
/// completes the HTTP exchange. A CALL the session sends the charger is POSTed to the charger's endpoint (by the
/// ``SOAPCaller``), and what comes back becomes the charger's CALLRESULT or CALLERROR.
///
/// The link is "open" while the charger is alive: it closes after the idle timeout without a request (counted from its
/// first request, so a link made for an admission that is refused schedules nothing), which closes the session and
/// its upstream link; the charger's next request opens new ones.
final class SOAPChargerLink: FrameLink {
    /// What the session answered a charger's request with.
    enum Answer {
        case result(JSONValue)
        case error(code: String, description: String)
    }

    /// What became of a CALL POSTed to the charger.
    enum CallOutcome {
        case result(JSONValue)
        /// A SOAP Fault, or a failure to reach the charger or to read its answer.
        case error(RPCErrorCode, description: String)
    }

    /// POSTs one CALL (action, payload, message id) to `endpoint`; the future never fails, and completes within the
    /// given timeout.
    typealias SOAPCaller = (
        _ action: String, _ payload: JSONValue, _ messageId: String, _ endpoint: String, _ timeout: TimeAmount
    ) -> EventLoopFuture<CallOutcome>

    let side = Side.charger
    var transport: ListenerTransport { .soap }
    let eventLoop: EventLoop
    let version: OCPPVersion
    private(set) var state: LinkState = .open
    private(set) var closeReason: String?
    var peerCloseCode: WebSocketErrorCode? { nil }
    /// A request is answered on its own HTTP exchange: there is no shared connection to fill up.
    var isWritable: Bool { true }
    var events: LinkEvents? {
        didSet { replayEarly() }
    }

    /// The charger's own endpoint: `chargers[].soapEndpoint` if configured, else the `wsa:From` of its latest
    /// request (nil when it sent none or the anonymous address).
    private(set) var endpoint: String?
    private let configuredEndpoint: String?
    private let caller: SOAPCaller
    private let callTimeout: TimeAmount
    private let configuredIdleTimeout: TimeAmount?
    private var idleTimeout: TimeAmount
    private var idleTimer: Scheduled<Void>?
    private let logger: Logger

    /// The charger's requests awaiting the session's answer, by the message id the link gave their CALL.
    private var waiting: [String: (action: String, promise: EventLoopPromise<Answer>)] = [:]
    private var nextId: UInt64 = 0
    /// CALLs that arrived before the session listened (it starts listening at once; this only covers the gap).
    private var early: [ByteBuffer] = []

    /// The WS-Addressing address that means "no address" (a charger that cannot be reached).
    static let anonymous = "http://www.w3.org/2005/08/addressing/anonymous"

    init(
        eventLoop: EventLoop, version: OCPPVersion, configuredEndpoint: String?, callTimeout: TimeAmount,
        idleTimeout: TimeAmount?, logger: Logger, caller: @escaping SOAPCaller
    ) {
        self.eventLoop = eventLoop
        self.version = version
        self.configuredEndpoint = configuredEndpoint
        self.endpoint = configuredEndpoint
        self.callTimeout = callTimeout
        self.configuredIdleTimeout = idleTimeout
        self.idleTimeout = idleTimeout ?? SOAPConfiguration.idleBeforeBoot
        self.logger = logger
        self.caller = caller
    }

    // MARK: Requests from the charger

    /// One request of the charger: a CALL for the session. Completes with the session's answer; a link that closes
    /// first, or a session that does not answer within the call timeout, fails it (the charger gets a SOAP Fault,
    /// never a made-up answer).
    func request(action: String, payload: JSONValue, from address: String?) -> EventLoopFuture<Answer> {
        eventLoop.assertInEventLoop()
        guard state == .open else {
            return eventLoop.makeFailedFuture(SOAPLinkError.closed(closeReason ?? "closed"))
        }
        if configuredEndpoint == nil, let address, address != Self.anonymous, !address.isEmpty {
            endpoint = address
        }
        armIdleTimer()
        nextId &+= 1
        let id = "soap-\(nextId)"
        let promise = eventLoop.makePromise(of: Answer.self)
        waiting[id] = (action, promise)
        // The session's own timeout answers a CALL the CSMS leaves unanswered; this one is the last resort, so that
        // an HTTP exchange never waits forever.
        let timer = eventLoop.scheduleTask(in: callTimeout + .seconds(1)) { [weak self] in
            guard let self, let entry = self.waiting.removeValue(forKey: id) else { return }
            entry.promise.fail(SOAPLinkError.noAnswer)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        let frame = RPCFrame.call(id: id, action: action, payload: payload)
        deliver(ByteBuffer(bytes: frame.json.wireBytes))
        return promise.futureResult
    }

    private func deliver(_ text: ByteBuffer) {
        if let events {
            events.received(text: text, from: .charger)
        } else {
            early.append(text)
        }
    }

    private func replayEarly() {
        guard let events, !early.isEmpty else { return }
        let frames = early
        early = []
        for frame in frames { events.received(text: frame, from: .charger) }
    }

    // MARK: Frames from the session

    func send(text: ByteBuffer) {
        send(utf8: Array(text.readableBytesView))
    }

    func send(utf8 bytes: [UInt8]) {
        eventLoop.assertInEventLoop()
        guard state == .open else { return }
        switch RPCFrame.parse(bytes, version: version) {
        case .success(.callResult(let id, let payload)):
            guard let entry = waiting.removeValue(forKey: id) else { return }
            if entry.action == "BootNotification" { learnHeartbeatInterval(from: payload) }
            entry.promise.succeed(.result(payload))
        case .success(.callError(let id, let code, let description, _)),
            .success(.callResultError(let id, let code, let description, _)):
            waiting.removeValue(forKey: id)?.promise.succeed(.error(code: code, description: description))
        case .success(.call(let id, let action, let payload)):
            call(id: id, action: action, payload: payload)
        case .success(.send):
            // SEND (2.1) has no SOAP form; no 1.5/1.6 rule produces one.
            logger.warning("dropped a SEND frame for a SOAP charger: OCPP-S has no unanswered messages")
        case .failure(let error):
            logger.error("dropped a frame for the SOAP charger that does not parse: \(error)")
        }
    }

    /// Three heartbeat intervals without a request and the charger counts as gone (unless `soap.idleTimeout` is set).
    private func learnHeartbeatInterval(from payload: JSONValue) {
        guard configuredIdleTimeout == nil, case .object(let fields) = payload else { return }
        // 1.6 says interval, 1.5 heartbeatInterval.
        guard case .integer(let seconds)? = fields["interval"] ?? fields["heartbeatInterval"], seconds >= 1,
            seconds <= 86_400
        else { return }
        idleTimeout = .seconds(seconds * 3)
        armIdleTimer()
    }

    // MARK: CALLs to the charger

    private func call(id: String, action: String, payload: JSONValue) {
        guard let endpoint else {
            logger.warning(
                "cannot send \(action) to the SOAP charger: it has no endpoint (no wsa:From address in its requests and no chargers[].soapEndpoint)",
                metadata: ["messageId": "\(id)"])
            return answer(id, .error(.internalError, description: "the charging station has no SOAP endpoint to call"))
        }
        // The answer must reach the session before its own call timeout forgets the CALL.
        let margin = min(TimeAmount.seconds(1), .nanoseconds(callTimeout.nanoseconds / 10))
        caller(action, payload, id, endpoint, callTimeout - margin).hop(to: eventLoop).whenSuccess { [self] outcome in
            if case .error(_, let description) = outcome {
                logger.warning(
                    "\(action) to the SOAP charger failed: \(description)",
                    metadata: ["endpoint": "\(endpoint)", "messageId": "\(id)"])
            }
            answer(id, outcome)
        }
    }

    private func answer(_ id: String, _ outcome: CallOutcome) {
        guard state == .open else { return }
        let frame: RPCFrame
        switch outcome {
        case .result(let payload): frame = .callResult(id: id, payload: payload)
        case .error(let code, let description):
            frame = .makeCallError(id: id, code: code, description: description, version: version)
        }
        deliver(ByteBuffer(bytes: frame.json.wireBytes))
    }

    // MARK: Closing

    func close(code: WebSocketErrorCode, reason: String, text: String) {
        eventLoop.assertInEventLoop()
        guard state == .open else { return }
        state = .closed
        closeReason = closeReason ?? reason
        idleTimer?.cancel()
        idleTimer = nil
        let pending = waiting
        waiting = [:]
        for entry in pending.values { entry.promise.fail(SOAPLinkError.closed(text)) }
        // Reported on the next tick, as a connection's close would be: never from inside the caller's call.
        eventLoop.execute { [self] in events?.linkClosed(.charger, peerCode: nil, reason: closeReason) }
    }

    /// Backpressure needs nothing here: each request waits for its answer on its own HTTP exchange.
    func setReading(_ on: Bool) {}

    private func armIdleTimer() {
        idleTimer?.cancel()
        let timeout = idleTimeout
        idleTimer = eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, self.state == .open else { return }
            self.logger.info("SOAP charger idle for \(timeout.nanoseconds / 1_000_000_000)s; closing its session")
            self.close(code: .goingAway, reason: "soap_idle", text: "charger idle")
        }
    }
}

/// Why a charger's request got no answer from its session.
enum SOAPLinkError: Error, CustomStringConvertible {
    case closed(String)
    case noAnswer

    var description: String {
        switch self {
        case .closed(let why): return "the charger's session closed (\(why))"
        case .noAnswer: return "no answer from the CSMS in time"
        }
    }
}
