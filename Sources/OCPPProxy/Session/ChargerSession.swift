import Foundation
import Logging
import NIOCore
import NIOWebSocket
import OCPP
import OCPPRules

/// One connected charger: its downstream link, its upstream link, and the pending CALLs of both
/// directions. The unit of work and of failure: everything here runs on the event loop both links
/// share, and nothing here reaches another session.
final class ChargerSession {
    let identity: ChargerIdentity
    let chargerVersion: OCPPVersion
    let upstreamVersion: OCPPVersion
    let listenerName: String
    let remoteAddress: String
    let connectedSince: Date
    let eventLoop: EventLoop
    let logger: Logger
    let generation: UInt64
    let metrics: ProxyMetrics
    let limits: LimitsConfiguration
    /// Where a CSMS-set upstream password goes; nil disables answering credential messages.
    let credentials: UpstreamCredentials?
    /// Set when the charger's version differs from the upstream's: every frame goes through the rules.
    private(set) var translation: TranslationLink?
    private let charger: WebSocketLink
    private let upstream: WebSocketLink
    /// CALLs each side sent that the other has not answered yet, keyed by the sender.
    private var pendingFromCharger = PendingCallTable()
    private var pendingFromCSMS = PendingCallTable()
    private let closedPromise: EventLoopPromise<Void>
    private var finished = false
    var onFinish: ((ChargerSession) -> Void)?

    /// Completes when both links are closed.
    var closed: EventLoopFuture<Void> { closedPromise.futureResult }

    init(
        identity: ChargerIdentity, chargerVersion: OCPPVersion, upstreamVersion: OCPPVersion, listenerName: String,
        remoteAddress: String, generation: UInt64, charger: WebSocketLink, upstream: WebSocketLink,
        eventLoop: EventLoop, metrics: ProxyMetrics, limits: LimitsConfiguration, logger: Logger,
        credentials: UpstreamCredentials? = nil, translation: (RuleSet, Tolerance, StateStore)? = nil
    ) {
        self.credentials = credentials
        self.identity = identity
        self.chargerVersion = chargerVersion
        self.upstreamVersion = upstreamVersion
        self.listenerName = listenerName
        self.remoteAddress = remoteAddress
        self.generation = generation
        self.charger = charger
        self.upstream = upstream
        self.eventLoop = eventLoop
        self.metrics = metrics
        self.limits = limits
        self.connectedSince = Date()
        self.closedPromise = eventLoop.makePromise()
        var logger = logger
        logger[metadataKey: "identity"] = "\(identity)"
        logger[metadataKey: "version"] = "\(chargerVersion)"
        self.logger = logger
        if let (ruleSet, tolerance, store) = translation {
            self.translation = TranslationLink(session: self, ruleSet: ruleSet, tolerance: tolerance, store: store)
        }
    }

    /// Attaches both links; frames the CSMS sent during the charger's upgrade are delivered now.
    func start() {
        eventLoop.assertInEventLoop()
        metrics.chargersConnected(chargerVersion).increment()
        logger.info("charger connected", metadata: ["listener": "\(listenerName)", "remote": "\(remoteAddress)"])
        charger.session = self
        upstream.session = self
        translation?.start()
        // A link may have closed before the session existed to hear of it.
        for link in [charger, upstream] where link.state == .closed {
            linkClosed(link.side, peerCode: link.peerCloseCode, reason: link.closeReason)
        }
    }

    // MARK: Frames

    func receive(text: ByteBuffer, from side: LinkSide) {
        let version = self.version(of: side)
        if let translation {
            switch RPCFrame.parse(text.readableBytesView, version: version) {
            case .success(let frame): translation.handle(frame, from: side)
            case .failure(let error): refuse(error, text: text, from: side)
            }
            return
        }
        // Passing through, the frame's own bytes are forwarded: only its head is read (the payload is checked).
        let envelope = text.withUnsafeReadableBytes {
            RPCEnvelope.parse($0.bindMemory(to: UInt8.self), version: version)
        }
        switch envelope {
        case .success(let envelope): forward(envelope, text: text, from: side)
        case .failure(let error): refuse(error, text: text, from: side)
        }
    }

    /// The payload of a frame that was checked as an envelope, for the few messages the proxy reads.
    private func payload(of text: ByteBuffer, _ envelope: RPCEnvelope) -> JSONValue? {
        text.withUnsafeReadableBytes { JSONValue(parsing: $0[envelope.payloadRange]) }
    }

    private func forward(_ frame: RPCEnvelope, text: ByteBuffer, from side: LinkSide) {
        let now = NIODeadline.now()
        let id = frame.messageId
        switch frame.messageType {
        case .call:
            let action = frame.action ?? ""
            let expired = withPending(of: side) { $0.expire(olderThan: limits.callTimeout, now: now) }
            for _ in 0..<expired { metrics.callTimedOut(from: side) }
            if withPending(of: side, { $0.contains(id) }) {
                // 2.0.1 part 4 §4.2.3: a CALL whose id is already being handled is answered with a CALLERROR.
                answer(
                    side, id: id, code: version(of: side).isTwoX ? .rpcFrameworkError : .genericError,
                    description: "a CALL with message id \(id) is already pending")
                return
            }
            if withPending(of: side, { $0.count }) >= limits.maxPendingCalls {
                refuseBeyondPendingLimit(id: id, action: action, from: side)
                return
            }
            metrics.frame(from: side, type: .call, action: action, version: version(of: side))
            if side == .csms, credentials != nil, CredentialMessage.mayConcern(action: action),
                let payload = payload(of: text, frame)
            {
                let message = CredentialMessage.classify(action: action, payload: payload, version: version(of: side))
                if message != .forward {
                    terminate(id: id, action: action, message, now: now)
                    return
                }
            }
            refusingBurst[side == .charger ? 0 : 1] = false
            withPending(of: side) { $0.insert(id, action: action, now: now) }
            link(side.other).send(text: text)
        case .send:
            metrics.frame(from: side, type: .send, action: frame.action, version: version(of: side))
            link(side.other).send(text: text)
        case .callResult, .callError:
            // An answer after limits.callTimeout finds its CALL forgotten: the caller gave up on it too.
            let pending = withPending(of: side.other, { $0.remove(id) })
            if let pending, now - pending.sentAt >= limits.callTimeout { metrics.callTimedOut(from: side.other) }
            guard let call = pending, now - call.sentAt < limits.callTimeout else {
                metrics.unmatchedResponse(from: side)
                logger.warning(
                    "dropped a \(frame.messageType == .callResult ? "CALLRESULT" : "CALLERROR") that answers no pending CALL",
                    metadata: ["from": "\(side)", "messageId": "\(id)"])
                return
            }
            metrics.frame(from: side, type: frame.messageType, action: call.action, version: version(of: side))
            if frame.messageType == .callError, let code = frame.errorCode {
                metrics.callError(sender: side.rawValue, code: code, version: version(of: side))
            }
            if let own = call.ownResults, frame.messageType == .callResult, let payload = payload(of: text, frame) {
                guard let merged = CredentialMessage.merge(own, into: payload) else {
                    answer(
                        side.other, id: id, code: .protocolError,
                        description: "the charging station's SetVariables answer has no setVariableResult")
                    return
                }
                link(side.other).send(text: JSONValue.array([.integer(3), .string(id), merged]).jsonText)
                return
            }
            link(side.other).send(text: text)
        case .callResultError:
            metrics.frame(from: side, type: .callResultError, action: nil, version: version(of: side))
            link(side.other).send(text: text)
        }
    }

    /// Answers a credential or network-profile CALL from the CSMS in the proxy's place (see ``CredentialMessage``).
    func terminate(id: String, action: String, _ message: CredentialMessage, now: NIODeadline) {
        let csms = link(.csms)
        func reply(_ payload: JSONValue) {
            metrics.frame(from: .charger, type: .callResult, action: action, version: upstreamVersion)
            csms.send(text: JSONValue.array([.integer(3), .string(id), payload]).jsonText)
        }
        switch message {
        case .forward:
            return
        case .answer(let payload):
            logger.notice(
                "answered \(action) in the charger's place: it concerns the proxy's own link",
                metadata: ["messageId": "\(id)"])
            reply(payload)
        case .changePassword(let password, let payload):
            storePassword(password, id: id, action: action) { reply(payload) }
        case .changePasswordAndForward(let password, let forwarded, let ownResults):
            storePassword(password, id: id, action: action) { [self] in
                withPending(of: .csms) { $0.insert(id, action: action, now: now, ownResults: ownResults) }
                link(.charger).send(
                    text: JSONValue.array([.integer(2), .string(id), .string(action), forwarded]).jsonText)
            }
        }
    }

    /// Persists the CSMS's new upstream password before anything that depends on it is sent.
    func storePassword(_ password: String, id: String, action: String, then: @escaping () -> Void) {
        guard let credentials else { return }
        credentials.update(password, for: identity).hop(to: eventLoop).whenComplete { [self] result in
            switch result {
            case .success:
                // Never the password itself (A01.FR.12).
                logger.notice(
                    "the CSMS changed this charger's upstream password; it is used from the next connection on")
                then()
            case .failure(let error):
                logger.error("could not persist the new upstream password: \(error)")
                answer(.csms, id: id, code: .internalError, description: "the proxy could not store the new password")
            }
        }
    }

    /// A frame that is not a well-formed RPC frame: answered as the sender's OCPP-J version prescribes,
    /// never forwarded.
    private func refuse(_ error: RPCFrameError, text: ByteBuffer, from side: LinkSide) {
        metrics.malformed(from: side, reason: error.reason)
        logger.warning(
            "refused a malformed frame: \(error)",
            metadata: ["from": "\(side)", "frame": "\(Self.excerpt(text))"])
        let version = self.version(of: side)
        if error.answersSender(version: version) {
            answer(
                side, id: error.answerMessageId, code: error.callErrorCode(version: version), description: "\(error)")
            return
        }
        // A broken answer to a pending CALL: the caller learns it will not get a usable one.
        let isAnswer = [MessageTypeNumber.callResult.rawValue, MessageTypeNumber.callError.rawValue].contains(
            error.messageType)
        if isAnswer, let id = error.messageId, let translation {
            let peer = side == .charger ? "charging station" : "CSMS"
            translation.brokenAnswer(
                id: id, from: side, description: "the \(peer) answered with a malformed frame: \(error)")
            return
        }
        if isAnswer, let id = error.messageId, withPending(of: side.other, { $0.remove(id) }) != nil {
            let peer = side == .charger ? "charging station" : "CSMS"
            answer(
                side.other, id: id, code: .protocolError,
                description: "the \(peer) answered with a malformed frame: \(error)")
        }
    }

    /// A CALL from a peer that already has `limits.maxPendingCalls` CALLs awaiting an answer (OCPP-J allows one):
    /// answered GenericError in the proxy's place and never forwarded, so the proxy holds no more of them. Logged
    /// once per burst (again only after the peer has been within the limit), counted always.
    func refuseBeyondPendingLimit(id: String, action: String, from side: LinkSide) {
        metrics.callRefused(from: side, reason: "max_pending_calls")
        if !refusingBurst[side == .charger ? 0 : 1] {
            refusingBurst[side == .charger ? 0 : 1] = true
            logger.warning(
                "refusing CALLs beyond limits.maxPendingCalls: the \(side == .charger ? "charger" : "CSMS") sends CALLs without waiting for answers; each is answered GenericError",
                metadata: [
                    "from": "\(side)", "messageId": "\(id)", "action": "\(action)",
                    "maxPendingCalls": "\(limits.maxPendingCalls)",
                ])
        }
        answer(
            side, id: id, code: .genericError,
            description: "more than \(limits.maxPendingCalls) CALLs await an answer; OCPP-J allows one at a time")
    }

    /// Whether a burst of refusals from the charger (0) or the CSMS (1) has been logged.
    private var refusingBurst = [false, false]

    /// Sends a CALLERROR generated by the proxy to `side`.
    private func answer(_ side: LinkSide, id: String, code: RPCErrorCode, description: String) {
        let version = self.version(of: side)
        metrics.callError(sender: "proxy", code: code.name(in: version), version: version)
        link(side).send(text: RPCFrame.callErrorText(id: id, code: code, description: description, version: version))
    }

    func receivedBinary(from side: LinkSide) {
        metrics.malformed(from: side, reason: "binary_frame")
        logger.warning(
            "closing the link: binary frame received; OCPP-J uses text frames only", metadata: ["from": "\(side)"])
        // RFC 6455 §7.4.1: 1003 is for an endpoint that received a type of data it cannot accept.
        link(side).close(code: .unacceptableData, reason: "binary_frame", text: "OCPP-J accepts text frames only")
    }

    // MARK: Backpressure

    /// Both links read only while both can write: what one link reads is written to the other, and what the proxy
    /// answers itself (CALLERRORs, local answers) goes back on the link it came from. A peer that sends faster than
    /// its partner (or itself) takes frames then waits in its socket buffers, and the proxy's memory per session
    /// stays bounded by the high-water marks.
    func writabilityChanged() {
        let writable = charger.isWritable && upstream.isWritable
        charger.setReading(writable)
        upstream.setReading(writable)
    }

    // MARK: Closing

    /// Called by a link when its connection is gone; closes the partner link with a fitting code.
    func linkClosed(_ side: LinkSide, peerCode: WebSocketErrorCode?, reason: String?) {
        let partner = link(side.other)
        let why = reason ?? (peerCode != nil ? "peer_closed" : "connection_lost")
        metrics.linkClosed(side, reason: why)
        if partner.state == .open {
            // The peer's code is news for the partner only when the peer started the close; when the proxy
            // did (keepalive, binary frame, ...), the peer's code is just the echo of the proxy's own.
            let code = reason == nil ? peerCode.flatMap(Self.forwardable) ?? .goingAway : .goingAway
            logger.info(
                "\(side == .charger ? "charger" : "CSMS") link closed; closing the \(side == .charger ? "CSMS" : "charger") link",
                metadata: [
                    "reason": "\(why)", "peerCode": "\(peerCode.map { "\(UInt16(webSocketErrorCode: $0))" } ?? "none")",
                ])
            partner.close(
                code: code, reason: "partner_closed",
                text: side == .charger ? "charger disconnected" : "CSMS disconnected")
        }
        if charger.state == .closed && upstream.state == .closed { finish() }
    }

    /// Closes both links, e.g. at shutdown or when a newer connection replaces this one.
    func close(code: WebSocketErrorCode, reason: String, text: String) {
        eventLoop.assertInEventLoop()
        charger.close(code: code, reason: reason, text: text)
        upstream.close(code: code, reason: reason, text: text)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        translation?.stop()
        charger.session = nil
        upstream.session = nil
        metrics.chargersConnected(chargerVersion).decrement()
        logger.info("session ended")
        onFinish?(self)
        onFinish = nil
        closedPromise.succeed(())
    }

    /// A close code received on one link that can be repeated on the other; codes that describe the
    /// link itself (protocol error, too large, ...) become 1001 going away.
    static func forwardable(_ code: WebSocketErrorCode) -> WebSocketErrorCode? {
        let raw = UInt16(webSocketErrorCode: code)
        switch raw {
        case 1000, 1001, 1003, 1007, 1008, 1011, 1012, 1013, 3000...4999: return code
        default: return nil
        }
    }

    // MARK: Inspection

    func snapshot() -> ChargerSnapshot {
        eventLoop.assertInEventLoop()
        let now = NIODeadline.now()
        func live(_ table: PendingCallTable) -> Int {
            table.calls.values.filter { now - $0.sentAt < limits.callTimeout }.count
        }
        let pending =
            translation.map { $0.pending } ?? (fromCharger: live(pendingFromCharger), fromCSMS: live(pendingFromCSMS))
        return ChargerSnapshot(
            identity: identity.value, version: chargerVersion.rawValue, upstreamVersion: upstreamVersion.rawValue,
            listener: listenerName, remoteAddress: remoteAddress, connectedSince: connectedSince,
            upstreamState: upstream.state == .open ? "connected" : upstream.state == .closing ? "closing" : "closed",
            pendingCalls: .init(fromCharger: pending.fromCharger, fromCSMS: pending.fromCSMS),
            translation: translation.map { "\($0.ruleSet.from) → \($0.ruleSet.to)" })
    }

    // MARK: Plumbing

    /// Counts a frame in the per-action metrics.
    func countFrame(from side: LinkSide, type: MessageTypeNumber, action: String?, version: OCPPVersion) {
        metrics.frame(from: side, type: type, action: action, version: version)
    }

    func link(_ side: LinkSide) -> WebSocketLink { side == .charger ? charger : upstream }

    private func version(of side: LinkSide) -> OCPPVersion { side == .charger ? chargerVersion : upstreamVersion }

    private func withPending<T>(of side: LinkSide, _ body: (inout PendingCallTable) -> T) -> T {
        side == .charger ? body(&pendingFromCharger) : body(&pendingFromCSMS)
    }

    /// The start of a frame for a log line: enough to recognise it, never the whole of a large frame.
    static func excerpt(_ text: ByteBuffer) -> String {
        let bytes = text.readableBytesView.prefix(200)
        // Control characters escaped: a malformed frame must not be able to forge log lines.
        var string = ""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16)
                string += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            } else {
                string.unicodeScalars.append(scalar)
            }
        }
        return text.readableBytes > 200 ? string + "…" : string
    }
}

/// What the admin API shows of one session.
struct ChargerSnapshot: Encodable {
    struct Pending: Encodable {
        var fromCharger: Int
        var fromCSMS: Int
    }

    var identity: String
    var version: String
    var upstreamVersion: String
    var listener: String
    var remoteAddress: String
    var connectedSince: Date
    var upstreamState: String
    var pendingCalls: Pending
    /// The version pair being translated, nil for pass-through.
    var translation: String?
}
