import Logging
import NIOCore
import OCPP

/// What a session's outage handling needs from the session.
protocol OutageHost: AnyObject {
    /// Writes a frame to the CSMS link through the outbound stages (nil: all of them).
    func writeUpstream(_ frame: Outgoing, through stages: ArraySlice<FrameStage>?)
    /// Hands the path a CALLRESULT the proxy gives in the CSMS's place to the CALL `call` (sent to the CSMS).
    func answerInCSMSPlace(_ answer: RPCFrame, to call: Outgoing)
    /// The CSMS link reopened: the session reads from and writes to it from now on.
    func upstreamReopened(_ link: WebSocketLink)
    /// Closes the CSMS link that does not work (its close starts the outage over).
    func closeUpstream(reason: String)
    /// The grace ran out: the session closes the charger.
    func outageGraceExpired()
    /// A record for the audit log.
    func outageEvent(_ name: String, _ fields: JSONObject)
}

/// What the proxy needs to reopen a charger's CSMS link: the connector, the pacing of new links, the node's
/// view of the CSMS, the store that holds acknowledged messages, and the settings.
struct UpstreamReconnector {
    let configuration: UpstreamOutageConfiguration
    /// nil: `upstreamOutage: off`, a drop closes the charger; messages queued before are still delivered.
    let handlesOutages: Bool
    let connect: (ChargerIdentity, EventLoop) -> EventLoopFuture<WebSocketLink>
    let pacer: UpstreamPacer
    let health: UpstreamHealth
    let store: StateStore
}

/// One session's CSMS outage: from the moment its CSMS link drops while the charger stays, through the reconnects
/// (exponential back-off with jitter, through the node's pacing of new links), to the delivery of what was held,
/// or to the end of the grace. While the link is down or what was held is being delivered, every frame for the
/// CSMS comes here instead of the link, and ``OutagePolicy`` decides: answered locally, persisted and
/// acknowledged (then delivered in order, one at a time, each removed from the store once the CSMS answered it),
/// held until the link is back, or dropped. A session starts in delivery when the store holds messages from an
/// earlier connection (or an earlier process, killed during an outage).
final class UpstreamOutage {
    enum Phase: Equatable {
        case up
        case down
        /// The link is open; what was held goes first.
        case delivering
    }

    private(set) var phase: Phase = .up
    private let reconnector: UpstreamReconnector
    private let context: SessionContext
    private unowned let host: OutageHost
    /// Persisted, acknowledged, not yet answered by the CSMS: in order.
    private var queue: [QueuedMessage] = []
    private var nextSequence: Int64 = 1
    /// Messages being persisted: delivery is not over until they are in the queue.
    private var writing = 0
    /// CALLs only the CSMS can answer, held until the link is back, with the stages they still pass.
    private var waiting: [(frame: Outgoing, stages: ArraySlice<FrameStage>)] = []
    /// The latest StatusNotification of each connector answered during the outage, sent when the link is back.
    private var statuses: [(key: String, frame: Outgoing)] = []
    /// The delivered message awaiting the CSMS's answer: its id, and its place in the queue (nil: a status).
    private var inFlight: (id: String, sequence: Int64?, action: String)?
    private var attempts = 0
    private var since: NIODeadline?
    private var reconnectTimer: Scheduled<Void>?
    private var graceTimer: Scheduled<Void>?
    private var deliveryTimer: Scheduled<Void>?
    private var ended = false

    init(reconnector: UpstreamReconnector, context: SessionContext, host: OutageHost) {
        self.reconnector = reconnector
        self.context = context
        self.host = host
    }

    /// Whether frames for the CSMS come here rather than to the link.
    var intercepts: Bool { phase != .up }

    /// Reads what the store holds for this charger; a session with messages from before delivers them first.
    func load() -> EventLoopFuture<Void> {
        reconnector.store.queuedMessages(for: context.identity, upstream: context.upstreamName).hop(
            to: context.eventLoop
        ).map { [self] held in
            guard !held.isEmpty else { return }
            queue = held
            nextSequence = (held.last?.sequence ?? 0) + 1
            phase = .delivering
            context.metrics.proxy.sessionsInOutage.increment()
            context.logger.notice(
                "delivering \(held.count) transaction message(s) acknowledged during an earlier CSMS outage",
                metadata: ["queued": "\(held.count)"])
        }
    }

    /// Starts the delivery of what was loaded (once the session's path is ready).
    func resume() {
        if phase == .delivering { deliverNext() }
    }

    /// Whether a drop of the CSMS link is an outage this session rides out.
    func handles(peerCode: UInt16?, reason: String?) -> Bool {
        reconnector.handlesOutages && !ended && OutagePolicy.isOutage(peerCode: peerCode, reason: reason)
    }

    // MARK: The link drops

    func begin() {
        let now = context.eventLoop.now
        let first = phase == .up
        phase = .down
        since = now
        inFlight = nil
        deliveryTimer?.cancel()
        attempts = 0
        if first { context.metrics.proxy.sessionsInOutage.increment() }
        context.metrics.proxy.upstreamOutage("started", upstream: context.upstreamName)
        context.logger.warning(
            "CSMS link lost; the charger stays connected while the proxy reconnects",
            metadata: ["grace": "\(Self.seconds(reconnector.configuration.grace))s"])
        host.outageEvent("upstream_outage", ["phase": .string("started"), "queued": .integer(Int64(queue.count))])
        graceTimer?.cancel()
        graceTimer = context.eventLoop.scheduleTask(in: reconnector.configuration.grace) { [self] in expire() }
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !ended, phase == .down else { return }
        let configuration = reconnector.configuration
        let exponent = min(attempts, 30)
        let ceiling = min(
            configuration.maxBackoff.nanoseconds,
            configuration.initialBackoff.nanoseconds.multipliedReportingOverflow(by: 1 << exponent).overflow
                ? Int64.max : configuration.initialBackoff.nanoseconds << exponent)
        attempts += 1
        // Jitter: between half and all of the step, so sessions that lost the CSMS together do not retry together.
        let wait = TimeAmount.nanoseconds(ceiling / 2 + Int64(Double(ceiling / 2) * Double.random(in: 0..<1)))
        reconnectTimer = context.eventLoop.scheduleTask(in: wait) { [self] in reconnect() }
    }

    private func reconnect() {
        guard !ended, phase == .down else { return }
        switch reconnector.pacer.reserve() {
        case .refused:
            context.metrics.proxy.upstreamReconnect("paced", upstream: context.upstreamName)
            scheduleReconnect()
        case .after(let wait):
            let eventLoop = context.eventLoop
            let slot =
                wait > .zero ? eventLoop.scheduleTask(in: wait) {}.futureResult : eventLoop.makeSucceededVoidFuture()
            slot.flatMap { [reconnector, context] in reconnector.connect(context.identity, eventLoop) }
                .hop(to: eventLoop).whenComplete { [self] result in
                    switch result {
                    case .success(let link): reopened(link)
                    case .failure(let error):
                        context.metrics.proxy.upstreamReconnect("failed", upstream: context.upstreamName)
                        context.logger.info(
                            "CSMS link not reopened yet: \(UpstreamFailure.classify(error))",
                            metadata: ["attempt": "\(attempts)"])
                        scheduleReconnect()
                    }
                }
        }
    }

    private func reopened(_ link: WebSocketLink) {
        guard !ended, phase == .down else {
            link.close(code: .goingAway, reason: "session_ended", text: "charger disconnected")
            return
        }
        context.metrics.proxy.upstreamReconnect("opened", upstream: context.upstreamName)
        context.metrics.proxy.upstreamOutage("restored", upstream: context.upstreamName)
        if reconnector.health.reachable() { context.logger.notice("the CSMS is reachable again") }
        graceTimer?.cancel()
        graceTimer = nil
        let lasted = since.map { context.eventLoop.now - $0 } ?? .zero
        context.logger.notice(
            "CSMS link reopened; delivering what was held",
            metadata: [
                "queued": "\(queue.count)", "waiting": "\(waiting.count)", "statuses": "\(statuses.count)",
                "outageSeconds": "\(Double(lasted.nanoseconds) / 1e9)",
            ])
        host.outageEvent(
            "upstream_outage",
            [
                "phase": .string("restored"), "queued": .integer(Int64(queue.count)),
                "milliseconds": .integer(lasted.nanoseconds / 1_000_000),
            ])
        phase = .delivering
        host.upstreamReopened(link)
        deliverNext()
    }

    private func expire() {
        guard !ended, phase == .down else { return }
        context.metrics.proxy.upstreamOutage("expired", upstream: context.upstreamName)
        if reconnector.health.unreachable() {
            context.logger.error(
                "the CSMS is unreachable: new chargers are answered 503 with Retry-After until a link to it opens")
        }
        context.logger.warning(
            "CSMS still unreachable after upstreamOutage.grace; closing the charger with 1011",
            metadata: ["queued": "\(queue.count)", "waiting": "\(waiting.count)"])
        host.outageEvent(
            "upstream_outage",
            [
                "phase": .string("expired"), "queued": .integer(Int64(queue.count)),
                "waiting": .integer(Int64(waiting.count)),
            ])
        for held in waiting { label(held.frame, "expired") }
        waiting = []
        host.outageGraceExpired()
    }

    /// The session ended: nothing more is scheduled, and a link that opens late is closed.
    func end() {
        guard !ended else { return }
        ended = true
        if phase != .up { context.metrics.proxy.sessionsInOutage.decrement() }
        reconnectTimer?.cancel()
        graceTimer?.cancel()
        deliveryTimer?.cancel()
    }

    // MARK: Frames for the CSMS

    /// A frame for the CSMS while ``intercepts``: answered, queued, held or dropped.
    func take(_ frame: Outgoing, through stages: ArraySlice<FrameStage>) {
        // While what was held is delivered, the link is up: the charger's answers to the CSMS's CALLs on it (and
        // SENDs) go at once; only the charger's CALLs queue behind the delivery.
        if phase == .delivering, frame.type != .call { return host.writeUpstream(frame, through: stages) }
        let chargerAction = context.chargerVersion == context.upstreamVersion ? nil : frame.cause?.action
        let action = frame.action ?? Self.action(of: frame)
        // Read at most once, and only for the actions whose payload the decision or the queue needs.
        var read: RPCFrame??
        func rpc() -> RPCFrame? {
            if let read { return read }
            let parsed = frame.rpc(version: context.upstreamVersion)
            read = .some(parsed)
            return parsed
        }
        func payload() -> JSONValue? {
            if case .call(_, _, let payload)? = rpc() { return payload }
            return nil
        }
        var decision = OutagePolicy.decide(
            type: frame.type, action: action, payload: payload,
            upstream: context.upstreamVersion, translatedFrom: chargerAction, now: context.wallClock())
        if case .queue = decision, queue.count + writing >= reconnector.configuration.maxQueued {
            decision = .wait
        }
        switch decision {
        case .drop:
            label(frame, "dropped")
        case .answerLocally(let answer):
            label(frame, "answered")
            if action == "StatusNotification", let key = MessageLimitStage.status(payload())?.connector {
                statuses.removeAll { $0.key == key }
                statuses.append((key, frame))
            }
            host.answerInCSMSPlace(.callResult(id: frame.messageId, payload: answer), to: frame)
        case .wait:
            label(frame, "waited")
            waiting.append((frame, stages))
        case .queue(let ack):
            guard let rpc = rpc() else {
                label(frame, "waited")
                waiting.append((frame, stages))
                return
            }
            let message = QueuedMessage(sequence: nextSequence, text: OutagePolicy.held(rpc).json.wireText)
            nextSequence += 1
            writing += 1
            reconnector.store.enqueue(message, for: context.identity, upstream: context.upstreamName).hop(
                to: context.eventLoop
            ).whenComplete {
                [self] result in
                writing -= 1
                switch result {
                case .success:
                    label(frame, "queued")
                    queue.append(message)
                    guard !ended else { return }
                    host.answerInCSMSPlace(.callResult(id: frame.messageId, payload: ack), to: frame)
                    if phase == .delivering, inFlight == nil { deliverNext() }
                case .failure(let error):
                    // Not stored, so not acknowledged: it waits for the CSMS like any CALL.
                    context.logger.error(
                        "cannot persist a transaction message for delivery after the outage: \(error); it waits unacknowledged"
                    )
                    label(frame, "waited")
                    waiting.append((frame, stages))
                }
            }
        }
    }

    /// Whether `frame` from the CSMS answers a delivered message (then it is consumed here, not by the path).
    func consumes(_ frame: Frame) -> Bool {
        guard let flight = inFlight, frame.messageId == flight.id, frame.type != .call, frame.type != .send else {
            return false
        }
        inFlight = nil
        deliveryTimer?.cancel()
        if frame.type == .callResult {
            context.metrics.proxy.outageMessage(flight.action, decision: "replayed")
            if case .object(let fields)? = frame.payload,
                case .object(let info)? = fields["idTokenInfo"] ?? fields["idTagInfo"],
                let status = info["status"]?.stringValue, status != "Accepted"
            {
                context.logger.warning(
                    "the CSMS answered a \(flight.action) delivered after the outage with status \(status); the charger had been acknowledged",
                    metadata: ["messageId": "\(flight.id)"])
            }
        } else {
            context.metrics.proxy.outageMessage(flight.action, decision: "rejected")
            context.logger.error(
                "the CSMS refused a \(flight.action) delivered after the outage (\(frame.errorCode ?? "CALLERROR")); it is not sent again",
                metadata: ["messageId": "\(flight.id)"])
        }
        if let sequence = flight.sequence {
            queue.removeAll { $0.sequence == sequence }
            reconnector.store.dequeue(sequence: sequence, for: context.identity, upstream: context.upstreamName)
                .whenFailure { [context] error in
                    context.logger.error(
                        "cannot forget a delivered message: \(error); it will be delivered again after a restart")
                }
        }
        deliverNext()
        return true
    }

    // MARK: Delivery

    /// Sends the next held message, one at a time: the queue, then the statuses, then the waiting CALLs; then the
    /// link is the session's again.
    private func deliverNext() {
        guard !ended, phase == .delivering, inFlight == nil else { return }
        if let next = queue.first {
            guard case .success(let rpc) = RPCFrame.parse(Array(next.text.utf8), version: context.upstreamVersion),
                case .call(let id, let action, _) = rpc
            else {
                context.logger.error("a queued message cannot be read and is dropped: \(next.text.prefix(200))")
                queue.removeFirst()
                _ = reconnector.store.dequeue(
                    sequence: next.sequence, for: context.identity, upstream: context.upstreamName)
                return deliverNext()
            }
            send(rpc, id: id, sequence: next.sequence, action: action, cause: nil)
            return
        }
        if writing > 0 { return }  // a message being stored goes before what waits behind it
        if !statuses.isEmpty {
            let status = statuses.removeFirst().frame
            guard let rpc = status.rpc(version: context.upstreamVersion) else { return deliverNext() }
            send(rpc, id: status.messageId, sequence: nil, action: "StatusNotification", cause: status.cause)
            return
        }
        phase = .up
        context.metrics.proxy.sessionsInOutage.decrement()
        let held = waiting
        waiting = []
        for entry in held {
            label(entry.frame, "replayed")
            host.writeUpstream(entry.frame, through: entry.stages)
        }
    }

    private func send(_ rpc: RPCFrame, id: String, sequence: Int64?, action: String, cause: FrameCause?) {
        inFlight = (id, sequence, action)
        var frame = Outgoing.frame(rpc, to: .csms)
        frame.replayed = true
        frame.cause = cause
        host.writeUpstream(frame, through: nil)
        // An answer that does not come means a link that is not working: it is closed, and the outage starts over
        // (the message is sent again on the next link).
        deliveryTimer = context.eventLoop.scheduleTask(in: context.limits.callTimeout) { [self] in
            guard inFlight?.id == id else { return }
            context.logger.warning(
                "the CSMS did not answer a message delivered after the outage within limits.callTimeout; reconnecting",
                metadata: ["messageId": "\(id)", "action": "\(action)"])
            host.outageEvent(
                "upstream_outage", ["phase": .string("unanswered"), "messageId": .string(id)])
            host.closeUpstream(reason: OutagePolicy.deliveryTimeout)
        }
    }

    // MARK: Reading frames

    private func label(_ frame: Outgoing, _ decision: String) {
        let action =
            frame.type == .call
            ? ProxyMetrics.actionLabel(frame.action ?? Self.action(of: frame), context.upstreamVersion) : "answer"
        context.metrics.proxy.outageMessage(action, decision: decision)
    }

    static func action(of frame: Outgoing) -> String? {
        if case .frame(.call(_, let action, _)) = frame.content { return action }
        return nil
    }

    static func seconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000_000 }
}
