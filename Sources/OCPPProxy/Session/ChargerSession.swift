import Foundation
import Logging
import NIOCore
import NIOWebSocket
import OCPP

/// One connected charger: the unit of work and of failure. It owns its two links, the ordered stages every frame
/// passes, the path behind them, and closing. Frames from either link are read (as the path needs), run through
/// the stages, handed to the path, and what comes back goes through the stages again on its way out. Everything
/// here runs on the event loop both links share; nothing here reaches another session, and nothing calls into
/// the session but its links.
final class ChargerSession: LinkEvents {
    /// Replaced, with the CSMS link and the path, when the charger is cut over to another upstream.
    var context: SessionContext
    let listenerName: String
    let remoteAddress: String
    let connectedSince: Date
    let generation: UInt64
    private let charger: FrameLink
    /// Replaced when it reopens after a CSMS outage, and when the charger is cut over to another upstream.
    var upstream: FrameLink
    /// The route that chose its upstream (`context.upstreamName`), as admission resolved it or a cutover set it.
    var route: Route
    let stages: [FrameStage]
    /// The stages that watch frames as they arrive and the session's events (the audit tap).
    private let observers: [FrameStage]
    var path: FramePath
    /// The CSMS outage handling: what happens to frames for the CSMS while its link is down.
    var outage: UpstreamOutage?
    /// A cutover to another upstream: the new link being opened and fed the charger's boot and statuses, then the
    /// old link kept until the transactions that started on it end.
    var cutover = CutoverState()
    /// Builds what a cutover to another upstream needs (set by the factory); nil: this session cannot move, or not
    /// to that upstream (its version cannot be joined to the charger's).
    var makeCutover: ((Upstream, Route) -> CutoverTarget?)?
    /// The second CSMS the charger's CALLs are copied to, when its route names one.
    private var shadow: ShadowLeg?
    /// Frames that arrived before the path was ready (translation reads the charger's state first).
    private var waiting: [Frame] = []
    private var started = false
    /// ``start()`` has run: a shadow made from now on starts at once.
    private var linksAttached = false
    private lazy var waitingLimit = PendingCallLimit(maximum: context.limits.maxPendingCalls)
    /// The one timer of the session, armed for the path's next deadline.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let closedPromise: EventLoopPromise<Void>
    private(set) var finished = false
    var onFinish: ((ChargerSession) -> Void)?

    var identity: ChargerIdentity { context.identity }
    var eventLoop: EventLoop { context.eventLoop }
    var logger: Logger { context.logger }

    /// Completes when both links are closed.
    var closed: EventLoopFuture<Void> { closedPromise.futureResult }

    init(
        context: SessionContext, listenerName: String, remoteAddress: String, generation: UInt64, charger: FrameLink,
        upstream: FrameLink, stages: [FrameStage], path: FramePath, reconnector: UpstreamReconnector? = nil,
        route: Route? = nil
    ) {
        self.context = context
        self.route = route ?? Route(upstream: context.upstreamName, reason: .default)
        self.listenerName = listenerName
        self.remoteAddress = remoteAddress
        self.generation = generation
        self.charger = charger
        self.upstream = upstream
        self.stages = stages
        self.observers = stages.filter(\.watchesArrivals)
        self.path = path
        self.connectedSince = Date()
        self.closedPromise = context.eventLoop.makePromise()
        self.outage = reconnector.map { UpstreamOutage(reconnector: $0, context: context, host: self) }
    }

    /// Makes the shadow leg a route names (nil when the route names none or that shadow cannot serve the
    /// charger); its events go into the charger's audit record. Set by the factory.
    var makeShadow: ((Route, @escaping (String, JSONObject) -> Void) -> ShadowLeg?)?

    /// Gives the session the shadow its route names: before ``start()`` for the route it connected on, and after a
    /// cutover, which ends a shadow the new route no longer names (the upstream moved to is never its own shadow)
    /// and starts the one it names.
    func followShadow(of route: Route) {
        guard shadow?.upstream.name != route.shadow else { return }
        if let previous = shadow {
            logger.notice(
                "shadow \(previous.upstream.name) ends for this charger: its route names \(route.shadow ?? "no shadow") now"
            )
            previous.end(reason: "route_changed", text: "the charger's route changed")
        }
        shadow = makeShadow?(route) { [weak self] name, fields in
            guard let self else { return }
            for observer in observers { observer.sessionEvent(name, fields) }
        }
        if linksAttached { shadow?.start() }
    }

    /// Attaches both links; frames the CSMS sent during the charger's upgrade are delivered now.
    func start() {
        eventLoop.assertInEventLoop()
        context.metrics.chargersConnected(context.chargerVersion).increment()
        logger.info("charger connected", metadata: ["listener": "\(listenerName)", "remote": "\(remoteAddress)"])
        charger.events = self
        upstream.events = self
        for observer in observers { observer.connected() }
        linksAttached = true
        shadow?.start()
        let loaded = outage?.load() ?? eventLoop.makeSucceededVoidFuture()
        path.start().hop(to: eventLoop).and(loaded).whenComplete { [self] result in
            switch result {
            case .success:
                started = true
                // What was acknowledged during an earlier outage goes to the CSMS before anything new.
                outage?.resume()
                let frames = waiting
                waiting = []
                for frame in frames { handle(frame) }
            case .failure(let error):
                fail("cannot read the charger's translation state: \(error)")
            }
        }
        // A link may have closed before the session existed to hear of it.
        for link in [charger, upstream] where link.state == .closed {
            linkClosed(link.side, peerCode: link.peerCloseCode, reason: link.closeReason)
        }
    }

    // MARK: Frames in

    func received(text: ByteBuffer, from side: Side) {
        guard !failed else { return }
        let version = context.version(of: side)
        let now = eventLoop.now
        let frame: Frame
        if path.readsPayloads || (side == .charger && cutover.draining != nil) {
            switch RPCFrame.parse(text.readableBytesView, version: version) {
            case .success(let parsed): frame = Frame(side: side, parsed: parsed, text: text, arrived: now)
            case .failure(let error): return refuse(error, text: text, from: side)
            }
        } else {
            // Passing through, the frame's own bytes are forwarded: only its head is read (the payload is checked).
            let envelope = text.withUnsafeReadableBytes {
                RPCEnvelope.parse($0.bindMemory(to: UInt8.self), version: version)
            }
            switch envelope {
            case .success(let envelope): frame = Frame(side: side, envelope: envelope, text: text, arrived: now)
            case .failure(let error): return refuse(error, text: text, from: side)
            }
        }
        for observer in observers { observer.arrived(frame) }
        if side == .csms, let outage, outage.intercepts, outage.consumes(frame) { return }
        guard started else { return wait(frame) }
        handle(frame)
    }

    /// Before the path is ready no CALL of the proxy is out, so only CALLs can wait; bounded like pending CALLs.
    private func wait(_ frame: Frame) {
        guard frame.type == .call else {
            context.metrics.unmatchedResponse(from: frame.side)
            return
        }
        let count = waiting.count { $0.side == frame.side }
        if let refusal = waitingLimit.check(
            frame, count: count, context: context)
        {
            return send(refusal, cause: frame)
        }
        waiting.append(frame)
    }

    private func handle(_ frame: Frame) {
        if let refusal = leg(for: frame).path.admit(frame) { return send(refusal, cause: frame) }
        run(frame, from: 0)
    }

    /// Runs `frame` through the stages from `index` on, then the path.
    private func run(_ frame: Frame, from index: Int) {
        var frame = frame
        var index = index
        while index < stages.count {
            switch stages[index].inbound(frame) {
            case .pass:
                index += 1
            case .rewrite(let next):
                frame = next
                index += 1
            case .answer(let frames):
                return send(frames, after: index, cause: frame)
            case .hold(let verdict):
                return resume(frame, after: index, verdict)
            }
        }
        if frame.side == .charger, let shadow { shadow.copy(frame) }
        let leg = leg(for: frame)
        if frame.side == .charger { cutover.track(frame, version: context.chargerVersion) }
        deliver(
            leg.path.receive(frame), cause: FrameCause(side: frame.side, id: frame.messageId, action: frame.action),
            csms: leg.link)
    }

    /// Goes on with a frame stage `index` held, once it has decided; frames that came later may have gone ahead.
    private func resume(_ frame: Frame, after index: Int, _ verdict: EventLoopFuture<StageVerdict>) {
        verdict.hop(to: eventLoop).whenComplete { [self] result in
            guard !finished, !failed else { return }
            switch result {
            case .success(.pass): run(frame, from: index + 1)
            case .success(.rewrite(let next)): run(next, from: index + 1)
            case .success(.answer(let frames)): send(frames, after: index, cause: frame)
            case .success(.hold(let later)): resume(frame, after: index, later)
            case .failure(let error):
                logger.error("the \(stages[index].name) stage failed on a frame: \(error); the frame is dropped")
            }
        }
    }

    /// Sends what the path returned; `cause` is the received frame it answers (nil for a timeout). `csms`: the link
    /// its frames for the CSMS go to when that is not the session's own (during a cutover).
    func deliver(_ outbox: Outbox, cause: FrameCause?, csms: FrameLink? = nil) {
        switch outbox {
        case .one(let frame):
            send(frame, through: stages[...], cause: cause, csms: csms)
        case .now(let frames):
            send(frames, through: stages[...], cause: cause, csms: csms)
        case .after(let future):
            future.hop(to: eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let frames): send(frames, through: stages[...], cause: cause, csms: csms)
                case .failure(let error): fail("cannot persist translation state: \(error)")
                }
            }
        }
        armTimer()
    }

    /// A frame that is not a well-formed RPC frame: answered as the sender's OCPP-J version prescribes, never
    /// forwarded. A broken answer to a pending CALL fails that CALL for its caller at once.
    private func refuse(_ error: RPCFrameError, text: ByteBuffer, from side: Side) {
        context.metrics.malformed(from: side, reason: error.reason)
        for observer in observers {
            observer.malformed(text, from: side, reason: error.reason, messageId: error.messageId)
        }
        logger.warning(
            "refused a malformed frame: \(error)",
            metadata: ["from": "\(side)", "frame": "\(Self.excerpt(text))"])
        let version = context.version(of: side)
        if error.answersSender(version: version) {
            return send(
                [
                    context.callError(
                        to: side, id: error.answerMessageId, code: error.callErrorCode(version: version),
                        description: "\(error)")
                ], through: stages[...], cause: FrameCause(side: side, id: error.answerMessageId))
        }
        let isAnswer = [MessageTypeNumber.callResult.rawValue, MessageTypeNumber.callError.rawValue].contains(
            error.messageType)
        if isAnswer, let id = error.messageId, started {
            let peer = side == .charger ? "charging station" : "CSMS"
            deliver(
                path.receiveBrokenAnswer(
                    id: id, from: side, description: "the \(peer) answered with a malformed frame: \(error)"),
                cause: FrameCause(side: side, id: id))
        }
    }

    func receivedBinary(from side: Side) {
        context.metrics.malformed(from: side, reason: "binary_frame")
        for observer in observers {
            observer.malformed(ByteBuffer(), from: side, reason: "binary_frame", messageId: nil)
        }
        logger.warning(
            "closing the link: binary frame received; OCPP-J uses text frames only", metadata: ["from": "\(side)"])
        // RFC 6455 §7.4.1: 1003 is for an endpoint that received a type of data it cannot accept.
        link(side).close(code: .unacceptableData, reason: "binary_frame", text: "OCPP-J accepts text frames only")
    }

    // MARK: Frames out

    /// Sends frames that stage `index` answered `cause` with: they pass the stages before it on their way out.
    private func send(_ frames: [Outgoing], after index: Int, cause: Frame) {
        send(frames, through: stages[..<index], cause: FrameCause(side: cause.side, id: cause.messageId))
    }

    /// The path's answer in the proxy's name to a frame it did not let in.
    private func send(_ frames: [Outgoing], cause: Frame) {
        send(frames, through: stages[...], cause: FrameCause(side: cause.side, id: cause.messageId))
    }

    func send(
        _ frames: [Outgoing], through stages: ArraySlice<FrameStage>, cause: FrameCause?, csms: FrameLink? = nil
    ) {
        for frame in frames { send(frame, through: stages, cause: cause, csms: csms) }
    }

    func send(
        _ frame: Outgoing, through stages: ArraySlice<FrameStage>, cause: FrameCause?, csms: FrameLink? = nil
    ) {
        guard !failed else { return }
        var frame = frame
        if frame.cause == nil { frame.cause = cause }
        if frame.side == .charger {
            // The answer to a CALL the proxy replayed to a new CSMS is the proxy's, not the charger's.
            if cutover.isReplayAnswer(frame) { return replayAnswered(frame) }
            let byDraining = csms != nil && csms === cutover.draining?.leg.link
            cutover.answered(frame, version: context.chargerVersion, byDraining: byDraining)
            if let shadow { shadow.primaryAnswered(frame) }
        }
        if frame.side == .csms, csms == nil, let outage, outage.intercepts {
            return outage.take(frame, through: stages)
        }
        write(frame, through: stages, csms: csms)
    }

    func write(_ frame: Outgoing, through stages: ArraySlice<FrameStage>, csms: FrameLink? = nil) {
        var frame = frame
        for stage in stages.reversed() where stage.watchesOutbound { frame = stage.outbound(frame) }
        let link = frame.side == .csms ? csms ?? upstream : charger
        switch frame.content {
        case .forwarded(let text): link.send(text: text)
        case .frame(let rpc): link.send(utf8: rpc.json.wireBytes)
        }
    }

    // MARK: The path's timer

    /// One timer per session, for the path's earliest deadline. A timer per CALL would cost a cancellation per
    /// answer, and NIO cancels by searching every task scheduled on the event loop (every charger's keepalive).
    func armTimer() {
        guard let deadline = cutover.earliest(path.nextDeadline), !finished else { return }
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            expireOtherLegs(now: eventLoop.now)
            deliver(path.expire(now: eventLoop.now), cause: nil)
        }
    }

    // MARK: Backpressure

    /// Both links read only while both can write: what one link reads is written to the other, and what the proxy
    /// answers itself (CALLERRORs, local answers) goes back on the link it came from. A peer that sends faster than
    /// its partner (or itself) takes frames then waits in its socket buffers, and the proxy's memory per session
    /// stays bounded by the high-water marks.
    func writabilityChanged() {
        // During an outage nothing is written to the CSMS: only the charger's link counts.
        let writable = charger.isWritable && (outage?.phase == .down || upstream.isWritable)
        charger.setReading(writable)
        upstream.setReading(writable)
    }

    // MARK: Closing

    private(set) var failed = false

    /// State that cannot be read or written makes translation unsafe: the session ends rather than guess.
    private func fail(_ message: String) {
        guard !failed else { return }
        failed = true
        logger.error("\(message); closing the session")
        close(code: .unexpectedServerError, reason: "state_store", text: "proxy state store unavailable")
    }

    /// Called by a link when its connection is gone; closes the partner link with a fitting code.
    func linkClosed(_ side: Side, peerCode: WebSocketErrorCode?, reason: String?) {
        let partner = link(side.other)
        let why = reason ?? (peerCode != nil ? "peer_closed" : "connection_lost")
        context.metrics.linkClosed(side, reason: why)
        for observer in observers { observer.linkClosed(side, code: peerCode, reason: why) }
        if side == .csms, !failed, !finished, charger.state == .open, let outage,
            outage.handles(peerCode: peerCode.map { UInt16(webSocketErrorCode: $0) }, reason: reason)
        {
            outage.begin()
            return writabilityChanged()
        }
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
        if side == .charger { endCutover(code: .goingAway, reason: "partner_closed", text: "charger disconnected") }
        if charger.state == .closed && upstream.state == .closed { finish() }
    }

    /// Closes both links, e.g. at shutdown or when a newer connection replaces this one.
    func close(code: WebSocketErrorCode, reason: String, text: String) {
        eventLoop.assertInEventLoop()
        charger.close(code: code, reason: reason, text: text)
        upstream.close(code: code, reason: reason, text: text)
        shadow?.end()
        endCutover(code: code, reason: reason, text: text)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        timer = nil
        outage?.end()
        shadow?.end()
        shadow = nil
        endCutover(code: .goingAway, reason: "charger_disconnected", text: "charger disconnected")
        charger.events = nil
        upstream.events = nil
        context.metrics.chargersConnected(context.chargerVersion).decrement()
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
        let pending = path.pendingCalls
        return ChargerSnapshot(
            identity: identity.value, transport: charger.transport.rawValue, endpoint: charger.endpoint,
            version: context.chargerVersion.rawValue,
            upstreamVersion: context.upstreamVersion.rawValue, upstream: context.upstreamName, listener: listenerName,
            remoteAddress: remoteAddress,
            connectedSince: connectedSince,
            upstreamState: outage?.phase == .down
                ? "outage"
                : outage?.phase == .delivering
                    ? "delivering"
                    : upstream.state == .open ? "connected" : upstream.state == .closing ? "closing" : "closed",
            pendingCalls: .init(fromCharger: pending.fromCharger, fromCSMS: pending.fromCSMS),
            translation: path.translation, draining: cutover.draining?.leg.upstream,
            cutover: cutover.incoming?.target.upstream.name)
    }

    func link(_ side: Side) -> FrameLink { side == .charger ? charger : upstream }

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

// MARK: CSMS outages

extension ChargerSession: OutageHost {
    func writeUpstream(_ frame: Outgoing, through stages: ArraySlice<FrameStage>?) {
        guard !failed, !finished else { return }
        write(frame, through: stages ?? self.stages[...])
    }

    func answerInCSMSPlace(_ answer: RPCFrame, to call: Outgoing) {
        guard !failed, !finished else { return }
        let frame = Frame(
            side: .csms, parsed: answer, text: ByteBuffer(bytes: answer.json.wireBytes), arrived: eventLoop.now)
        // Passing through, the path forwards the answer's bytes: they are the proxy's, and go out as its own.
        let made: (Outgoing) -> Outgoing = { outgoing in
            guard case .forwarded = outgoing.content, outgoing.messageId == answer.messageId else { return outgoing }
            var own = outgoing
            own.content = .frame(answer)
            return own
        }
        let outbox: Outbox
        switch path.receive(frame) {
        case .one(let outgoing): outbox = .one(made(outgoing))
        case .now(let frames): outbox = .now(frames.map(made))
        case .after(let future): outbox = .after(future.map { $0.map(made) })
        }
        deliver(outbox, cause: call.cause)
    }

    func upstreamReopened(_ link: WebSocketLink) {
        upstream = link
        link.events = self
        writabilityChanged()
        if link.state == .closed { linkClosed(.csms, peerCode: link.peerCloseCode, reason: link.closeReason) }
    }

    func closeUpstream(reason: String) {
        upstream.close(code: .unexpectedServerError, reason: reason, text: "no answer from the CSMS")
    }

    func outageGraceExpired() {
        // 1011, not 1000: some chargers do not reconnect after a normal close.
        charger.close(code: .unexpectedServerError, reason: "upstream_unreachable", text: "CSMS unreachable")
    }

    func outageEvent(_ name: String, _ fields: JSONObject) {
        for observer in observers { observer.sessionEvent(name, fields) }
    }
}

/// What the admin API shows of one session.
struct ChargerSnapshot: Encodable {
    struct Pending: Encodable {
        var fromCharger: Int
        var fromCSMS: Int
    }

    var identity: String
    /// websocket or soap.
    var transport: String
    /// A SOAP charger's own endpoint, where the proxy sends the CSMS's CALLs (nil: none known yet).
    var endpoint: String?
    var version: String
    var upstreamVersion: String
    /// The name of the upstream its CSMS link goes to.
    var upstream: String
    var listener: String
    var remoteAddress: String
    var connectedSince: Date
    var upstreamState: String
    var pendingCalls: Pending
    /// The version pair being translated, nil for pass-through.
    var translation: String?
    /// After a cutover: the upstream the charger left, kept until the transactions that started there end.
    var draining: String?
    /// During a cutover: the upstream being linked (its link opening, the charger's boot and statuses replayed).
    var cutover: String?
}
