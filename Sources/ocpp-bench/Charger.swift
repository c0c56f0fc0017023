import NIOCore

/// One simulated charger, whatever its transport: its state, the CALL it has outstanding and its scenario.
/// A transport (`ChargerHandler` for OCPP-J over WebSocket, `SOAPCharger` for OCPP-S) overrides `connect`,
/// `transmit`, `close` and `abort`, calls `established()` once its connection is up, `markSent` just before it
/// writes a CALL, `answered` when it has read the answer, and `ended()` when the charger's connection is gone.
/// Lives on its worker's event loop and is touched only there.
class BenchCharger {
    enum State { case connecting, booting, booted, failed, closed }

    struct Outstanding {
        var id: UInt64
        var sentAt: UInt64
        var kind: CallKind
    }

    let identity: String
    unowned let worker: LoopWorker
    private(set) var state: State = .connecting
    private(set) var outstanding: Outstanding?
    private var nextId: UInt64 = 0
    var scenario: ScenarioState
    private var timer: RepeatedTask?
    /// Open loop: ticks that found the previous CALL still unanswered (OCPP allows one at a time).
    private var backlog = 0
    private var running = false
    /// Set when this side ends the connection (the end of the run, or the peer's close frame).
    var closing = false

    init(identity: String, index: Int, worker: LoopWorker) {
        self.identity = identity
        self.worker = worker
        self.scenario = ScenarioState(start: index)
    }

    /// When the outstanding CALL of the scenario (not the BootNotification) was written.
    var outstandingSentAt: UInt64? {
        guard let o = outstanding, o.kind != .bootNotification else { return nil }
        return o.sentAt
    }

    var hasOutstanding: Bool { outstanding != nil && (state == .booting || state == .booted) }

    // MARK: What a transport provides

    /// Whether the transport's connection is open now.
    var isOpen: Bool { false }

    /// Whether a CALL can be handed to `transmit` now.
    var canTransmit: Bool { false }

    /// Opens the connection to `address`.
    func connect(to address: SocketAddress) {}

    /// Writes CALL `id` of `kind` (calling `markSent` just before the write).
    func transmit(_ kind: CallKind, id: UInt64) {}

    /// The outstanding CALL was given up (timed out): its answer, if it still comes, must not be taken for another's.
    func abandoned() {}

    /// Ends the run for this charger: the transport closes its connection.
    func close() {}

    /// Drops the connection at once (connect timeout).
    func abort() {}

    // MARK: Called by the transport

    /// The connection or its upgrade failed; counted once.
    func failed(_ reason: String) {
        guard state == .connecting else { return }
        state = .failed
        worker.progress.failed += 1
        worker.stats.failures[reason, default: 0] += 1
    }

    /// The connection is up (after the upgrade, for WebSocket): the charger is connected and boots.
    func established() {
        state = .booting
        worker.progress.established += 1
        worker.stats.established += 1
        worker.stats.bootsSent += 1
        send(.bootNotification)
    }

    /// The charger's connection is gone.
    func ended() {
        if (state == .booting || state == .booted) && !worker.stopping && !closing {
            worker.stats.closedByPeer += 1
        }
        if state == .booting { worker.progress.bootFailed += 1 }
        state = .closed
        timer?.cancel()
        timer = nil
    }

    /// Marks the end of a connection that never came up (the end of the run reached it while connecting).
    func giveUpConnecting() {
        if state == .connecting { state = .failed }
    }

    /// Records CALL `id` as written now; the transport writes it right after.
    func markSent(_ kind: CallKind, id: UInt64) {
        let now = monotonicNanos()
        outstanding = Outstanding(id: id, sentAt: now, kind: kind)
        if kind != .bootNotification { worker.recordSent(at: now) }
    }

    /// The answer to CALL `id`, read at `now`: `error` for a CALLERROR (or, over SOAP, an HTTP error, a SOAP Fault or
    /// an answer without its response element); `transactionId` read from a StartTransaction's answer. An answer to
    /// anything but the outstanding CALL (a late answer to a timed-out one) is ignored.
    func answered(id: UInt64?, error: Bool, transactionId: Int?, at now: UInt64) {
        guard let o = outstanding, o.id == id else { return }
        outstanding = nil
        if o.kind == .bootNotification {
            if error { worker.stats.bootsRejected += 1 } else { worker.stats.bootsAccepted += 1 }
            worker.progress.booted += 1
            state = .booted
            if worker.measuring && !worker.stopping { startScenario() }
            return
        }
        worker.recordAnswer(sentAt: o.sentAt, now: now, error: error)
        if let transactionId { scenario.transactionId = transactionId }
        if o.kind == .stopTransaction { scenario.transactionId = 0 }
        next()
    }

    // MARK: Scenario

    /// After an answer: closed loop sends the next CALL at once; open loop only if a tick is waiting.
    private func next() {
        guard running, !worker.stopping else { return }
        if worker.plan.scenario == .idle { return }
        if worker.plan.openLoop {
            guard backlog > 0 else { return }
            backlog -= 1
        }
        sendScenarioCall()
    }

    private func sendScenarioCall() {
        let kind = scenario.next(worker.plan.scenario)
        send(kind)
    }

    private func send(_ kind: CallKind) {
        guard canTransmit, state == .booting || state == .booted, !closing else { return }
        nextId += 1
        transmit(kind, id: nextId)
    }

    func startScenario() {
        guard state == .booted, !running, canTransmit else { return }
        running = true
        let plan = worker.plan
        switch plan.scenario {
        case .idle:
            let interval = TimeAmount.nanoseconds(Int64(plan.heartbeat * 1e9))
            let phase = TimeAmount.nanoseconds(
                Int64.random(in: 0..<max(1, interval.nanoseconds), using: &worker.random))
            timer = worker.loop.scheduleRepeatedTask(initialDelay: phase, delay: interval) { [weak self] _ in
                guard let self, self.outstanding == nil, !self.worker.stopping else { return }
                self.send(.heartbeat)
            }
        case .mixed, .heartbeat:
            if plan.openLoop {
                let interval = TimeAmount.nanoseconds(Int64(plan.interval * 1e9))
                let phase = TimeAmount.nanoseconds(
                    Int64.random(in: 0..<max(1, interval.nanoseconds), using: &worker.random))
                timer = worker.loop.scheduleRepeatedTask(initialDelay: phase, delay: interval) { [weak self] _ in
                    self?.tick()
                }
            } else {
                sendScenarioCall()
            }
        }
    }

    /// Open loop: one CALL is due. Sent at once when none is outstanding, else queued behind the answer.
    private func tick() {
        guard running, !worker.stopping else { return }
        if outstanding == nil {
            sendScenarioCall()
        } else if backlog < 100 {
            backlog += 1
            worker.stats.openLoopDelayed += 1
        } else {
            worker.stats.openLoopDropped += 1
        }
    }

    func stopScenario() {
        running = false
        timer?.cancel()
        timer = nil
        backlog = 0
    }

    func checkTimeout(now: UInt64, limit: UInt64) {
        guard let o = outstanding, now &- o.sentAt > limit else { return }
        outstanding = nil
        abandoned()
        if o.kind == .bootNotification {
            worker.progress.bootFailed += 1
            worker.stats.failures["boot_timeout", default: 0] += 1
            return
        }
        worker.recordTimeout(sentAt: o.sentAt)
        next()
    }
}

// Every charger lives on one event loop (its worker's); the callbacks that capture it run there too.
extension BenchCharger: @unchecked Sendable {}
