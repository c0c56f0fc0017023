import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import OCPP

/// Reads the overload monitors every `overload.interval` and moves the proxy between steps (``OverloadSteps``):
/// each change is published where admission and the sessions read it, logged once (warning going up, info going
/// down), counted, recorded in the audit log, and at `stop` the charger listeners stop accepting until the step
/// falls again.
///
/// Each event loop runs a probe every interval: how late it ran (the loop's lag) and, when `pendingCalls` is
/// monitored, the CALLs its sessions await from the CSMS. The readings are taken on a queue of their own, so a loop
/// that is stuck is seen as late (its probe overdue) instead of stopping the monitor with it.
final class OverloadMonitor: Sendable {
    private let configuration: OverloadConfiguration
    private let runtime: ProxyContext
    private let loops: [EventLoop]
    private let listeners: [Channel]
    private let queue = DispatchQueue(label: "ocpp-proxy.overload")

    /// One event loop's last probe: when the next is due, how late the last ran, the CALLs it counted.
    private struct Probe {
        var due: NIODeadline
        var lag = TimeAmount.zero
        var pendingCalls = 0
    }

    private struct State {
        var steps: OverloadSteps
        var stopped = false
    }

    private let probes: NIOLockedValueBox<[Probe]>
    private let state: NIOLockedValueBox<State>

    init(configuration: OverloadConfiguration, runtime: ProxyContext, loops: [EventLoop], listeners: [Channel]) {
        self.configuration = configuration
        self.runtime = runtime
        self.loops = loops
        self.listeners = listeners
        self.probes = NIOLockedValueBox(Array(repeating: Probe(due: .now()), count: loops.count))
        self.state = NIOLockedValueBox(State(steps: OverloadSteps(configuration: configuration)))
    }

    func start() {
        if configuration.memory != nil && ResidentMemory.current() == nil {
            runtime.logger.warning("overload.memory: cannot read /proc/self/statm here; the memory monitor is inactive")
        }
        runtime.metrics.overloadStep(.normal)
        for (index, loop) in loops.enumerated() { probe(index, on: loop) }
        queue.async { [self] in sample() }
    }

    func stop() {
        state.withLockedValue { $0.stopped = true }
    }

    private var isStopped: Bool { state.withLockedValue { $0.stopped } }

    // MARK: Probes (on each event loop)

    private func probe(_ index: Int, on loop: EventLoop) {
        guard !isStopped else { return }
        let due = NIODeadline.now() + configuration.interval
        probes.withLockedValue { $0[index].due = due }
        loop.scheduleTask(deadline: due) { [self] in
            let lag = NIODeadline.now() - due
            let pending = configuration.pendingCalls == nil ? 0 : pendingCalls(onThisLoop: loop)
            probes.withLockedValue {
                $0[index].lag = lag
                $0[index].pendingCalls = pending
            }
            probe(index, on: loop)
        }
    }

    /// CALLs the chargers of this loop's sessions sent that the CSMS has not answered yet. Sessions are walked
    /// because no single place sees a pending CALL end (a session that closes takes its pending CALLs with it).
    private func pendingCalls(onThisLoop loop: EventLoop) -> Int {
        var total = 0
        for session in runtime.registry.sessions where session.eventLoop === loop {
            total += session.snapshot().pendingCalls.fromCharger
        }
        return total
    }

    // MARK: Readings (on the monitor's queue)

    private func sample() {
        guard !isStopped else { return }
        let readings = read(now: .now())
        let (change, steps) = state.withLockedValue { state in
            (state.steps.update(readings, now: .now()), state.steps.steps(readings))
        }
        runtime.metrics.overloadReadings(readings, steps: steps)
        if let change { apply(change, readings) }
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(configuration.interval.nanoseconds))) { [self] in
            sample()
        }
    }

    private func read(now: NIODeadline) -> OverloadReadings {
        let probes = probes.withLockedValue { $0 }
        // A probe that is overdue is as late as it is overdue already: a loop that is stuck shows now.
        let lag = probes.map { max($0.lag, now > $0.due ? now - $0.due : .zero) }.max() ?? .zero
        return OverloadReadings(
            memory: configuration.memory == nil ? nil : ResidentMemory.current(),
            eventLoopLag: configuration.eventLoopLag == nil || probes.isEmpty ? nil : Int(lag.nanoseconds),
            pendingCalls: configuration.pendingCalls == nil ? nil : probes.reduce(0) { $0 + $1.pendingCalls })
    }

    private func apply(_ change: OverloadSteps.Change, _ readings: OverloadReadings) {
        runtime.metrics.overload.step = change.to
        runtime.metrics.overloadStepChanged(to: change.to)
        let metadata = Self.metadata(readings)
        if change.to > change.from {
            let causes = change.causes.map { kind in
                let threshold = kind.thresholds(in: configuration)?.threshold(of: change.to)
                return
                    "\(kind.rawValue) \(readings[kind].map(kind.describe) ?? "?") >= \(change.to.name)At \(threshold.map(kind.describe) ?? "?")"
            }
            runtime.logger.warning(
                "overload: step \(change.to.rawValue) (\(change.to.name)), \(change.to.doing): \(causes.joined(separator: ", "))",
                metadata: metadata)
        } else {
            runtime.logger.info(
                "overload: step \(change.to.rawValue) (\(change.to.name)), \(change.to.doing): the pressure stayed below step \(change.from.name)'s thresholds for \(ConfigurationReader.seconds(configuration.recoverAfter))",
                metadata: metadata)
        }
        if change.from < .stop && change.to >= .stop {
            setAccepting(false)
        } else if change.from >= .stop && change.to < .stop {
            setAccepting(true)
        }
        runtime.audit?.record(.event("overload", Self.auditFields(change, readings)))
    }

    /// The charger listeners accept again, or stop accepting: connections wait in the kernel's backlog meanwhile.
    private func setAccepting(_ accepting: Bool) {
        for channel in listeners {
            channel.setOption(ChannelOptions.autoRead, value: accepting).whenFailure { [runtime] error in
                runtime.logger.debug("overload: cannot set autoRead on a listener: \(error)")
            }
        }
    }

    private static func metadata(_ readings: OverloadReadings) -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for kind in OverloadMonitorKind.allCases {
            if let value = readings[kind] { metadata[kind.rawValue] = "\(kind.describe(value))" }
        }
        return metadata
    }

    static func auditFields(_ change: OverloadSteps.Change, _ readings: OverloadReadings) -> JSONObject {
        var values: JSONObject = [:]
        if let memory = readings.memory { values["memoryBytes"] = .integer(Int64(memory)) }
        if let lag = readings.eventLoopLag { values["eventLoopLagMicroseconds"] = .integer(Int64(lag / 1000)) }
        if let pending = readings.pendingCalls { values["pendingCalls"] = .integer(Int64(pending)) }
        return [
            "step": .string(change.to.name), "previous": .string(change.from.name),
            "causes": .array(change.causes.map { .string($0.rawValue) }), "readings": .object(values),
        ]
    }
}
