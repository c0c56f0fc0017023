import NIOConcurrencyHelpers
import OCPP
import Prometheus

extension Side {
    /// The label for frames flowing from this side to the other.
    var flow: String { self == .charger ? "charger_to_csms" : "csms_to_charger" }
}

/// The proxy's Prometheus metrics. Every label value is drawn from a bounded set: actions and error codes
/// a peer invents are counted as "other", so a misbehaving charger cannot grow the registry.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let upstreamConnect: DurationHistogram
    /// The per-frame counters, kept once made: the registry builds the metric name and help text anew on every
    /// `makeCounter`, which showed in the pass-through profile.
    private let frameCounters = NIOLockedValueBox<[FrameKey: Counter]>([:])

    private struct FrameKey: Hashable {
        var transport: ListenerTransport
        var side: Side
        var type: MessageTypeNumber
        var action: String
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        upstreamConnect = registry.makeDurationHistogram(
            descriptor: Self.descriptor(
                "upstream_connect", unit: "seconds",
                help: "Time from accepting a charger's upgrade request to an open upstream WebSocket link"),
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .milliseconds(2500), .seconds(5), .seconds(10),
            ])
    }

    func chargersConnected(_ version: OCPPVersion, transport: ListenerTransport) -> Gauge {
        registry.makeGauge(
            descriptor: Self.descriptor(
                "chargers_connected", unit: "",
                help: "Chargers with an open session, by the OCPP version they speak and their transport"),
            labels: [("version", version.rawValue), ("transport", transport.rawValue)])
    }

    func frame(
        from side: Side, type: MessageTypeNumber, action: String?, version: OCPPVersion, transport: ListenerTransport
    ) {
        let key = FrameKey(transport: transport, side: side, type: type, action: Self.actionLabel(action, version))
        if let counter = frameCounters.withLockedValue({ $0[key] }) {
            counter.increment()
            return
        }
        let counter = registry.makeCounter(
            descriptor: Self.descriptor(
                "frames", unit: "total", help: "RPC frames forwarded, by direction, message type and action"),
            labels: [
                ("direction", side.flow), ("type", Self.typeLabel(type)), ("action", key.action),
                ("transport", transport.rawValue),
            ])
        frameCounters.withLockedValue { $0[key] = counter }
        counter.increment()
    }

    func callError(sender: String, code: String, version: OCPPVersion, transport: ListenerTransport) {
        let label = RPCErrorCode.wireNames(in: version).contains(code) ? code : "other"
        registry.makeCounter(
            descriptor: Self.descriptor(
                "callerrors", unit: "total",
                help: "CALLERROR frames by who sent them (charger, csms, or the proxy itself) and error code"),
            labels: [("sender", sender), ("code", label), ("transport", transport.rawValue)]
        ).increment()
    }

    func malformed(from side: Side, reason: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "malformed_frames", unit: "total",
                help: "Frames refused because they are not well-formed OCPP-J RPC frames"),
            labels: [("from", side.rawValue), ("reason", reason), ("transport", transport.rawValue)]
        ).increment()
    }

    func unmatchedResponse(from side: Side, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "unmatched_responses", unit: "total",
                help: "CALLRESULT or CALLERROR frames dropped because no pending CALL has their id"),
            labels: [("from", side.rawValue), ("transport", transport.rawValue)]
        ).increment()
    }

    /// Translation problems the proxy logged: `warning` for input a rule could not translate or answers that did
    /// not match their definition, `error` for translated frames that would have broken their target (rule bugs).
    func translationProblem(level: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "translation_problems", unit: "total",
                help: "Frames translation could not handle, by log level (error: a rule produced an invalid frame)"),
            labels: [("level", level), ("transport", transport.rawValue)]
        ).increment()
    }

    /// A CALL a translation rule answered itself instead of passing it on (a message the other version has no home
    /// for, a retry of what the peer already acknowledged, a request the proxy refuses for the charger).
    func translationAnswered(from side: Side, action: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "translation_answered", unit: "total",
                help: "CALLs a translation rule answered itself instead of passing them on, by sender and action"),
            labels: [("from", side.rawValue), ("action", action), ("transport", transport.rawValue)]
        ).increment()
    }

    /// A CALL the proxy answered with a CALLERROR instead of forwarding, because its sender already has
    /// `limits.maxPendingCalls` CALLs awaiting an answer.
    func callRefused(from side: Side, reason: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "calls_refused", unit: "total",
                help: "CALLs answered by the proxy with a CALLERROR instead of being forwarded, by sender and reason"),
            labels: [("from", side.rawValue), ("reason", reason), ("transport", transport.rawValue)]
        ).increment()
    }

    func callTimedOut(from side: Side, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "call_timeouts", unit: "total",
                help: "CALLs forgotten after limits.callTimeout without an answer, by the side that sent them"),
            labels: [("from", side.rawValue), ("transport", transport.rawValue)]
        ).increment()
    }

    func upstreamConnected(after duration: Duration) {
        upstreamConnect.record(duration)
    }

    func upstreamFailed(_ reason: String, upstream: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "upstream_connect_failures", unit: "total",
                help: "Upstream links that could not be opened: refused, rejected, unreachable or timeout"),
            labels: [("reason", reason), ("upstream", upstream), ("transport", transport.rawValue)]
        ).increment()
    }

    func admissionRejected(listener: String, reason: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "admissions_rejected", unit: "total",
                help: "Charger connections refused before or at the WebSocket upgrade"),
            labels: [("listener", listener), ("reason", reason), ("transport", transport.rawValue)]
        ).increment()
    }

    func messageLimited(from side: Side, action: String, decision: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "messages_limited", unit: "total",
                help:
                    "CALLs over their message limit (limits.messages), by who sent them, action and what became of them: delayed, answered (by the proxy), rejected"
            ),
            labels: [
                ("from", side.rawValue), ("action", action), ("decision", decision), ("transport", transport.rawValue),
            ]
        ).increment()
    }

    func handshakeTimedOut(listener: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "handshake_timeouts", unit: "total",
                help:
                    "Connections closed because their TLS handshake and upgrade (or first SOAP request) took longer than limits.handshakeTimeout"
            ),
            labels: [("listener", listener), ("transport", transport.rawValue)]
        ).increment()
    }

    func authenticationFailed(listener: String, reason: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "auth_failures", unit: "total",
                help: "Chargers refused by their security profile: credentials, certificate, registration or lockout"),
            labels: [("listener", listener), ("reason", reason), ("transport", transport.rawValue)]
        ).increment()
    }

    func linkClosed(_ side: Side, reason: String, transport: ListenerTransport) {
        registry.makeCounter(
            descriptor: Self.descriptor("links_closed", unit: "total", help: "Links closed, by side and reason"),
            labels: [("side", side.rawValue), ("reason", reason), ("transport", transport.rawValue)]
        ).increment()
    }

    /// Called before each exposition, for gauges that are a function of the time (an age).
    func beforeExposition(_ update: @escaping @Sendable () -> Void) {
        updates.withLockedValue { $0.append(update) }
    }
    private let updates = NIOLockedValueBox<[@Sendable () -> Void]>([])

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        for update in updates.withLockedValue({ $0 }) { update() }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    static func descriptor(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ocpp_proxy", metricName: metric, unitName: unit, helpText: help)
    }

    static func typeLabel(_ type: MessageTypeNumber) -> String {
        switch type {
        case .call: return "call"
        case .callResult: return "callresult"
        case .callError: return "callerror"
        case .callResultError: return "callresulterror"
        case .send: return "send"
        }
    }

    static func actionLabel(_ action: String?, _ version: OCPPVersion) -> String {
        guard let action else { return "unknown" }
        return MessageCatalog.isKnown(action, in: version) ? action : "other"
    }

    // MARK: Overload protection

    /// The overload step as the monitor last set it. Kept here because the metrics are what every session already
    /// holds of the whole proxy: admission and the message-limit stage read it from here.
    let overload = OverloadState()

    /// The step entered: its gauge, and a transition counted by the step entered.
    func overloadStepChanged(to step: OverloadStep) {
        overloadStep(step)
        registry.makeCounter(
            descriptor: Self.descriptor(
                "overload_transitions", unit: "total", help: "Changes of the overload step, by the step entered"),
            labels: [("step", step.name)]
        ).increment()
    }

    /// The step's gauge alone (at start: the proxy starts at `normal`, which is no transition).
    func overloadStep(_ step: OverloadStep) {
        registry.makeGauge(
            descriptor: Self.descriptor(
                "overload_step", unit: "",
                help:
                    "The overload step: 0 normal, 1 shed (Heartbeats answered by the proxy), 2 refuse (new handshakes 503), 3 stop (no accepts)"
            )
        ).set(Int64(step.rawValue))
    }

    /// What the monitors read, and the step each asks for on its own.
    func overloadReadings(_ readings: OverloadReadings, steps: [OverloadMonitorKind: OverloadStep]) {
        if let memory = readings.memory {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "overload_memory", unit: "bytes",
                    help: "Resident set size of the process, as overload.memory reads it"
                )
            ).set(Int64(memory))
        }
        if let lag = readings.eventLoopLag {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "overload_event_loop_lag", unit: "seconds",
                    help: "How late the worst event loop ran a task scheduled for it, as overload.eventLoopLag reads it"
                )
            ).set(Double(lag) / 1e9)
        }
        if let pending = readings.pendingCalls {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "overload_pending_calls", unit: "",
                    help:
                        "CALLs of every charger forwarded to the CSMS and awaiting its answer, as overload.pendingCalls reads them"
                )
            ).set(Int64(pending))
        }
        for (kind, step) in steps {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "overload_monitor_step", unit: "", help: "The overload step each monitor asks for on its own"),
                labels: [("monitor", kind.rawValue)]
            ).set(Int64(step.rawValue))
        }
    }
}

/// The metrics of one session: every one labelled with the charger's transport.
struct SessionMetrics {
    let proxy: ProxyMetrics
    let transport: ListenerTransport
    /// False for a shadow CSMS's path: the charger's frames are counted once, by its own session's path (the
    /// shadow has metrics of its own).
    var countsFrames = true

    func chargersConnected(_ version: OCPPVersion) -> Gauge { proxy.chargersConnected(version, transport: transport) }

    func frame(from side: Side, type: MessageTypeNumber, action: String?, version: OCPPVersion) {
        guard countsFrames else { return }
        proxy.frame(from: side, type: type, action: action, version: version, transport: transport)
    }

    func callError(sender: String, code: String, version: OCPPVersion) {
        guard countsFrames else { return }
        proxy.callError(sender: sender, code: code, version: version, transport: transport)
    }

    func malformed(from side: Side, reason: String) {
        guard countsFrames else { return }
        proxy.malformed(from: side, reason: reason, transport: transport)
    }

    func unmatchedResponse(from side: Side) {
        guard countsFrames else { return }
        proxy.unmatchedResponse(from: side, transport: transport)
    }

    func translationProblem(level: String) {
        guard countsFrames else { return }
        proxy.translationProblem(level: level, transport: transport)
    }

    func translationAnswered(from side: Side, action: String) {
        guard countsFrames else { return }
        proxy.translationAnswered(from: side, action: action, transport: transport)
    }

    func callRefused(from side: Side, reason: String) {
        guard countsFrames else { return }
        proxy.callRefused(from: side, reason: reason, transport: transport)
    }

    func callTimedOut(from side: Side) {
        guard countsFrames else { return }
        proxy.callTimedOut(from: side, transport: transport)
    }

    /// `action` is a known action of the sender's version or "other" (the caller checks it against its rules).
    func messageLimited(from side: Side, action: String, decision: String) {
        proxy.messageLimited(from: side, action: action, decision: decision, transport: transport)
    }

    func linkClosed(_ side: Side, reason: String) { proxy.linkClosed(side, reason: reason, transport: transport) }
}
