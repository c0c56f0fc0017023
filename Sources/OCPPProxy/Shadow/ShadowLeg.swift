import Foundation
import Logging
import NIOCore
import NIOWebSocket
import OCPP

/// A charger's second CSMS, the shadow (`chargers[].shadow`, `routing.rules[].shadow`): the charger's CALLs are
/// copied to it, translated to its version by a path of its own, under message ids of its own; its answers are
/// compared with the primary's and never reach the charger; its CALLs are answered by the proxy. It never delays the
/// charger: copies wait in a bounded queue and go one at a time (OCPP-J allows one CALL in flight), and a shadow that
/// is down, slow or full loses copies, counted. Lives on its session's event loop; the session calls it at three
/// points (a charger CALL let through, the primary's answer on its way to the charger, the session's end).
final class ShadowLeg: LinkEvents {
    /// A charger CALL waiting for the shadow.
    private struct Copy {
        var frame: Frame
        var action: String
        var copied: NIODeadline
    }

    /// The copy the shadow has now: its id as the shadow knows it, and the charger's.
    private struct InFlight {
        var shadowId: String
        var chargerId: String
        var deadline: NIODeadline
    }

    /// One charger CALL being compared: the two answers, in the charger's version, as they come.
    private struct Comparison {
        var action: String
        var primary: RPCFrame?
        var shadow: RPCFrame?
        var shadowTimedOut = false
        /// When it is given up on if the primary never answers.
        var expires: NIODeadline
    }

    private enum Phase {
        case connecting
        case open(FrameLink)
        /// Waiting to reconnect after a failure.
        case waiting
        case ended
    }

    let upstream: Upstream
    /// The shadow's: the charger's version on one side, the shadow's on the other.
    let context: SessionContext
    private let path: FramePath
    private let settings: ShadowConfiguration
    private let reports: ShadowReports?
    private let metrics: ProxyMetrics
    /// The session's audit tap: shadow events go into the charger's record.
    private let record: (String, JSONObject) -> Void
    private var phase = Phase.connecting
    private var pathReady = false
    private var queue = CircularBuffer<Copy>()
    private var inFlight: InFlight?
    private var comparisons: [String: Comparison] = [:]
    /// A 1.x charger's transaction ids as the primary gave them, to the shadow's for the same transaction.
    private var transactions: [Int64: Int64] = [:]
    private var nextId: UInt64 = 0
    private var timer: Scheduled<Void>?
    private var retryDelay: TimeAmount

    var logger: Logger { context.logger }
    private var ended: Bool {
        if case .ended = phase { return true }
        return false
    }
    private var eventLoop: EventLoop { context.eventLoop }
    private var identity: String { context.identity.value }
    private var name: String { upstream.name }

    init(
        upstream: Upstream, context: SessionContext, path: FramePath, settings: ShadowConfiguration,
        reports: ShadowReports?, metrics: ProxyMetrics, record: @escaping (String, JSONObject) -> Void
    ) {
        self.upstream = upstream
        self.context = context
        self.path = path
        self.settings = settings
        self.reports = reports
        self.metrics = metrics
        self.record = record
        self.retryDelay = settings.retry
    }

    /// Reads the shadow path's state and opens the link; the charger's session does not wait for either.
    func start() {
        path.start().hop(to: eventLoop).whenComplete { [self] result in
            guard !ended else { return }
            switch result {
            case .success:
                pathReady = true
                pump()
            case .failure(let error):
                logger.error("shadow \(name): cannot read its translation state: \(error); the shadow is off")
                end()
            }
        }
        connect()
    }

    private func connect() {
        guard !ended else { return }
        phase = .connecting
        guard let opened = upstream.pacedConnect(context.identity, on: eventLoop) else { return retryLater("paced") }
        opened.hop(to: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let link):
                guard case .connecting = phase else {
                    return link.close(code: .normalClosure, reason: "shadow_ended", text: "session ended")
                }
                phase = .open(link)
                retryDelay = settings.retry
                metrics.shadowLink("opened", upstream: name)
                record("shadow_link", ["shadow": .string(name), "state": .string("opened")])
                link.events = self
                if link.state == .closed {
                    return linkClosed(.csms, peerCode: link.peerCloseCode, reason: link.closeReason)
                }
                pump()
            case .failure(let error):
                retryLater("\(UpstreamFailure.classify(error))")
            }
        }
    }

    private func retryLater(_ why: String) {
        guard !ended else { return }
        phase = .waiting
        metrics.shadowLink("failed", upstream: name)
        record("shadow_link", ["shadow": .string(name), "state": .string("failed"), "reason": .string(why)])
        logger.warning("shadow \(name) unreachable: \(why); retrying in \(retryDelay.nanoseconds / 1_000_000) ms")
        failInFlight()
        for copy in queue where comparisons.removeValue(forKey: copy.frame.messageId) != nil {
            drop("shadow_down")
        }
        queue.removeAll()
        let delay = retryDelay
        retryDelay = min(retryDelay * 2, .minutes(5))
        eventLoop.scheduleTask(in: delay) { [self] in
            if case .waiting = phase { connect() }
        }
    }

    // MARK: From the session

    /// A charger CALL every stage let through, on its way to the primary.
    func copy(_ frame: Frame) {
        guard frame.type == .call, let action = frame.action else { return }
        guard !ended else { return }
        // Down: the copy is lost now rather than queued for a shadow that may not be back before it is stale.
        if case .waiting = phase { return drop("shadow_down") }
        guard queue.count < settings.maxQueued else { return drop("queue_full") }
        comparisons[frame.messageId] = Comparison(
            action: action, expires: frame.arrived + settings.timeout + settings.timeout)
        queue.append(Copy(frame: frame, action: action, copied: frame.arrived))
        pump()
        armTimer()
    }

    /// An answer on its way to the charger: the primary's, when it answers a CALL the shadow got too.
    func primaryAnswered(_ answer: Outgoing) {
        guard answer.type == .callResult || answer.type == .callError, comparisons[answer.messageId] != nil,
            let frame = answer.rpc(version: context.chargerVersion)
        else { return }
        comparisons[answer.messageId]?.primary = frame
        settle(answer.messageId)
    }

    /// The session ended (or its route names another shadow now): the shadow link closes, what is left
    /// uncompared is dropped.
    func end(reason: String = "charger_disconnected", text: String = "charger disconnected") {
        guard !ended else { return }
        let previous = phase
        phase = .ended
        timer?.cancel()
        timer = nil
        if !comparisons.isEmpty { drop("session_ended") }
        comparisons = [:]
        queue.removeAll()
        if case .open(let link) = previous { link.close(code: .goingAway, reason: reason, text: text) }
    }

    // MARK: To the shadow

    /// Sends the next queued copy when the shadow has none in flight.
    private func pump() {
        guard inFlight == nil, pathReady, case .open(let link) = phase, link.isWritable else { return }
        while let copy = queue.popFirst() {
            guard comparisons[copy.frame.messageId] != nil else { continue }
            if eventLoop.now > copy.copied + settings.timeout {
                comparisons[copy.frame.messageId] = nil
                drop("stale")
                continue
            }
            guard let frame = shadowFrame(copy) else { continue }
            if let refusal = path.admit(frame) {
                _ = refusal
                comparisons[copy.frame.messageId] = nil
                drop("refused")
                continue
            }
            inFlight = InFlight(
                shadowId: frame.messageId, chargerId: copy.frame.messageId,
                deadline: eventLoop.now + settings.timeout)
            deliver(path.receive(frame))
            armTimer()
            return
        }
    }

    /// The copy as the shadow gets it: a message id of its own, and a 1.x charger's transaction id mapped to the
    /// shadow's. Nil (dropped) when its transaction is one the shadow never started.
    private func shadowFrame(_ copy: Copy) -> Frame? {
        let version = context.chargerVersion
        let parsed: RPCFrame
        if let frame = copy.frame.parsed {
            parsed = frame
        } else if case .success(let frame) = RPCFrame.parse(copy.frame.text.readableBytesView, version: version) {
            parsed = frame
        } else {
            comparisons[copy.frame.messageId] = nil
            drop("unreadable")
            return nil
        }
        guard case .call(_, let action, var payload) = parsed else { return nil }
        if !version.isTwoX, action == "MeterValues" || action == "StopTransaction",
            case .object(var fields) = payload, case .integer(let primaryId)? = fields["transactionId"]
        {
            guard let shadowId = transactions[primaryId] else {
                comparisons[copy.frame.messageId] = nil
                drop("unmapped_transaction")
                return nil
            }
            fields["transactionId"] = .integer(shadowId)
            payload = .object(fields)
        }
        nextId &+= 1
        let id = "shadow-\(nextId)"
        let frame = RPCFrame.call(id: id, action: action, payload: payload)
        return Frame(
            side: .charger, parsed: frame, text: ByteBuffer(bytes: frame.json.wireBytes), arrived: eventLoop.now)
    }

    /// What the shadow path sends: to the shadow over its link; toward the charger, the shadow's answer (in the
    /// charger's version), which goes no further than the comparison.
    private func deliver(_ outbox: Outbox) {
        switch outbox {
        case .one(let frame): handle(frame)
        case .now(let frames): frames.forEach(handle)
        case .after(let future):
            future.hop(to: eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let frames): frames.forEach(handle)
                case .failure(let error):
                    logger.error("shadow \(name): cannot store its translation state: \(error); the shadow is off")
                    end()
                }
            }
        }
    }

    private func handle(_ frame: Outgoing) {
        guard !ended else { return }
        switch frame.side {
        case .csms:
            guard case .open(let link) = phase else { return }
            switch frame.content {
            case .forwarded(let text): link.send(text: text)
            case .frame(let rpc): link.send(utf8: rpc.json.wireBytes)
            }
        case .charger:
            guard let inFlight, frame.messageId == inFlight.shadowId,
                frame.type == .callResult || frame.type == .callError,
                let answer = frame.rpc(version: context.chargerVersion)
            else { return }
            self.inFlight = nil
            comparisons[inFlight.chargerId]?.shadow = answer
            settle(inFlight.chargerId)
            pump()
        }
    }

    // MARK: From the shadow

    func received(text: ByteBuffer, from side: Side) {
        guard !ended else { return }
        let version = context.upstreamVersion
        let frame: Frame
        switch RPCFrame.parse(text.readableBytesView, version: version) {
        case .success(let parsed): frame = Frame(side: .csms, parsed: parsed, text: text, arrived: eventLoop.now)
        case .failure(let error):
            logger.warning("shadow \(name) sent a malformed frame: \(error)")
            record("shadow_malformed", ["shadow": .string(name), "reason": .string(error.reason)])
            return
        }
        switch frame.parsed {
        case .call(let id, let action, _)?, .send(let id, let action, _)?:
            answerShadowCall(id: id, action: action, isSend: frame.type == .send)
        default:
            deliver(path.receive(frame))
        }
    }

    /// A shadow's CALL never reaches the charger: the proxy answers it, with `upstreams[].answerLocally`'s result
    /// for its action, else NotSupported.
    private func answerShadowCall(id: String, action: String, isSend: Bool) {
        guard case .open(let link) = phase else { return }
        reports?.shadowCall(identity: identity, shadow: name)
        let answer: RPCFrame?
        let label: String
        if isSend {
            answer = nil
            label = "send"
        } else if let payload = upstream.configuration.answerLocally.results[action] {
            answer = .callResult(id: id, payload: payload)
            label = "result"
        } else {
            answer = RPCFrame.makeCallError(
                id: id, code: .notSupported,
                description: "\(action) from a shadow CSMS is answered by the proxy, never passed to the charger",
                version: context.upstreamVersion)
            label = "NotSupported"
        }
        metrics.shadowCallAnswered(label, upstream: name)
        record(
            "shadow_call",
            [
                "shadow": .string(name), "action": .string(action), "messageId": .string(id),
                "answer": .string(label),
            ])
        if let answer { link.send(utf8: answer.json.wireBytes) }
    }

    func receivedBinary(from side: Side) {
        guard case .open(let link) = phase else { return }
        link.close(code: .unacceptableData, reason: "binary_frame", text: "OCPP-J accepts text frames only")
    }

    func linkClosed(_ side: Side, peerCode: WebSocketErrorCode?, reason: String?) {
        guard case .open(let link) = phase else { return }
        link.events = nil
        metrics.shadowLink("closed", upstream: name)
        let code = peerCode.map { Int64(UInt16(webSocketErrorCode: $0)) }
        record(
            "shadow_link",
            [
                "shadow": .string(name), "state": .string("closed"),
                "reason": .string(reason ?? (peerCode == nil ? "connection_lost" : "peer_closed")),
                "code": code.map(JSONValue.integer) ?? .null,
            ])
        retryLater("link closed")
    }

    func writabilityChanged() { pump() }

    // MARK: Comparing

    /// Compares once both answers are in (or the shadow's time ran out), then records the outcome.
    private func settle(_ chargerId: String) {
        guard let comparison = comparisons[chargerId], let primary = comparison.primary,
            comparison.shadow != nil || comparison.shadowTimedOut
        else { return }
        comparisons[chargerId] = nil
        if comparison.action == "StartTransaction", !context.chargerVersion.isTwoX,
            case .callResult(_, .object(let mine)) = primary,
            case .callResult(_, .object(let theirs))? = comparison.shadow,
            case .integer(let primaryId)? = mine["transactionId"],
            case .integer(let shadowId)? = theirs["transactionId"]
        {
            transactions[primaryId] = shadowId
        }
        if comparison.action == "StopTransaction", !context.chargerVersion.isTwoX {
            // The transaction has ended on both: its mapping is no longer needed.
            forgetEndedTransactions()
        }
        let divergences = ShadowComparison.compare(
            primary: primary, shadow: comparison.shadow, ignore: settings.ignoreFields)
        let action = ProxyMetrics.actionLabel(comparison.action, context.chargerVersion)
        metrics.shadowCompared(action: action, divergences: divergences)
        let outcome = ShadowOutcome(
            time: Date(), shadow: name, action: comparison.action, messageId: chargerId, divergences: divergences)
        reports?.record(outcome, identity: identity)
        record("shadow_compared", outcome.fields)
        if !divergences.isEmpty {
            logger.info(
                "shadow \(name) answered \(comparison.action) differently",
                metadata: ["divergences": "\(divergences.map { $0.field ?? $0.kind.rawValue })"])
        }
    }

    /// Keeps the map small: a charger has few transactions open at once.
    private func forgetEndedTransactions() {
        if transactions.count > 64 { transactions.removeAll() }
    }

    private func failInFlight() {
        guard let inFlight else { return }
        self.inFlight = nil
        comparisons[inFlight.chargerId] = nil
        drop("shadow_down")
    }

    private func drop(_ reason: String) {
        metrics.shadowDropped(reason, upstream: name)
        reports?.dropped(reason, identity: identity, shadow: name)
    }

    // MARK: The timer

    private func armTimer() {
        guard timer == nil, !ended else { return }
        let deadlines = [inFlight?.deadline, comparisons.values.map(\.expires).min(), path.nextDeadline].compactMap {
            $0
        }
        guard let deadline = deadlines.min() else { return }
        timer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            timer = nil
            expire(now: eventLoop.now)
        }
    }

    private func expire(now: NIODeadline) {
        guard !ended else { return }
        if let inFlight, inFlight.deadline <= now {
            self.inFlight = nil
            comparisons[inFlight.chargerId]?.shadowTimedOut = true
            settle(inFlight.chargerId)
            pump()
        }
        for (id, comparison) in comparisons where comparison.expires <= now {
            // The primary never answered (nothing to compare with), or the copy never reached the shadow.
            comparisons[id] = nil
            drop(comparison.primary == nil ? "primary_unanswered" : "stale")
        }
        if let deadline = path.nextDeadline, deadline <= now { deliver(path.expire(now: now)) }
        armTimer()
    }
}
