import NIOConcurrencyHelpers
import NIOCore

/// How far the proxy sheds load (`overload:`). Each step does what the ones below it do, and more.
public enum OverloadStep: Int, Comparable, Sendable, CaseIterable {
    /// Everything is served.
    case normal = 0
    /// Heartbeats are answered by the proxy with the current time and not forwarded: the cheapest CALLs to drop,
    /// and the most numerous.
    case shed = 1
    /// New handshakes are answered 503 with `Retry-After`; connected chargers keep working.
    case refuse = 2
    /// The listeners stop accepting connections (new ones wait in the kernel's backlog).
    case stop = 3

    public static func < (lhs: OverloadStep, rhs: OverloadStep) -> Bool { lhs.rawValue < rhs.rawValue }

    /// For logs, metric labels and audit records.
    var name: String {
        switch self {
        case .normal: return "normal"
        case .shed: return "shed"
        case .refuse: return "refuse"
        case .stop: return "stop"
        }
    }

    /// What the proxy does at this step, for the log line of a change.
    var doing: String {
        switch self {
        case .normal: return "serving everything"
        case .shed: return "answering Heartbeats itself"
        case .refuse: return "answering Heartbeats itself and refusing new handshakes with 503"
        case .stop: return "answering Heartbeats itself and accepting no connections"
        }
    }
}

/// The monitors of `overload:`.
enum OverloadMonitorKind: String, CaseIterable, Sendable {
    case memory
    case eventLoopLag
    case pendingCalls

    func thresholds(in configuration: OverloadConfiguration) -> OverloadThresholds? {
        switch self {
        case .memory: return configuration.memory
        case .eventLoopLag: return configuration.eventLoopLag
        case .pendingCalls: return configuration.pendingCalls
        }
    }

    /// A reading as a person reads it: bytes in MiB, lag in ms.
    func describe(_ value: Int) -> String {
        switch self {
        case .memory:
            if value % (1 << 30) == 0 { return "\(value >> 30)GiB" }
            return value % (1 << 20) == 0 ? "\(value >> 20)MiB" : "\(value)B"
        case .eventLoopLag: return "\(value / 1_000_000)ms"
        case .pendingCalls: return "\(value)"
        }
    }
}

/// What the monitors read at one moment; nil: not read (the monitor is off, or cannot read here).
struct OverloadReadings: Equatable, Sendable {
    /// Resident set size, bytes.
    var memory: Int?
    /// The worst event loop's lateness, nanoseconds.
    var eventLoopLag: Int?
    /// CALLs of the node awaiting the CSMS's answer.
    var pendingCalls: Int?

    subscript(kind: OverloadMonitorKind) -> Int? {
        switch kind {
        case .memory: return memory
        case .eventLoopLag: return eventLoopLag
        case .pendingCalls: return pendingCalls
        }
    }
}

extension OverloadThresholds {
    /// The step `value` asks for, with each threshold multiplied by `scale` (below 1: the lower bar a reading must
    /// pass under before a step is left).
    func step(for value: Int, scale: Double = 1) -> OverloadStep {
        let bars: [(OverloadStep, Int?)] = [(.stop, stopAt), (.refuse, refuseAt), (.shed, shedAt)]
        for (step, threshold) in bars {
            if let threshold, Double(value) >= Double(threshold) * scale { return step }
        }
        return .normal
    }

    func threshold(of step: OverloadStep) -> Int? {
        switch step {
        case .normal: return nil
        case .shed: return shedAt
        case .refuse: return refuseAt
        case .stop: return stopAt
        }
    }
}

/// The proxy's step from the monitors' readings: the highest step any monitor asks for, entered at the first
/// reading that asks for it; left only once every reading has stayed below the step's thresholds less
/// ``recoveryMargin`` for `recoverAfter`, for the highest step they asked for meanwhile. Pure: time comes in as
/// an argument, so tests drive it with a clock of their own.
struct OverloadSteps {
    /// A change of step and the monitors that asked for the new one (going up), or still ask for it (going down).
    struct Change: Equatable {
        var from: OverloadStep
        var to: OverloadStep
        var causes: [OverloadMonitorKind]
    }

    /// Leaving a step takes readings below 90 % of its thresholds: a reading that hovers at a threshold does not
    /// make the proxy flap.
    static let recoveryMargin = 0.9

    let configuration: OverloadConfiguration
    private(set) var step = OverloadStep.normal
    /// Since when every reading has been under the current step's lower bars, and the highest step they asked
    /// for since.
    private var calm: (since: NIODeadline, peak: OverloadStep)?

    init(configuration: OverloadConfiguration) {
        self.configuration = configuration
    }

    /// The step each monitor asks for (monitors without a reading ask for nothing).
    func steps(_ readings: OverloadReadings, scale: Double = 1) -> [OverloadMonitorKind: OverloadStep] {
        var steps: [OverloadMonitorKind: OverloadStep] = [:]
        for kind in OverloadMonitorKind.allCases {
            guard let thresholds = kind.thresholds(in: configuration), let value = readings[kind] else { continue }
            steps[kind] = thresholds.step(for: value, scale: scale)
        }
        return steps
    }

    /// Takes one set of readings; the change of step they make, if any.
    mutating func update(_ readings: OverloadReadings, now: NIODeadline) -> Change? {
        let asked = steps(readings)
        let up = asked.values.max() ?? .normal
        if up > step {
            defer { step = up }
            calm = nil
            return Change(from: step, to: up, causes: Self.causes(asked, at: up))
        }
        let held = steps(readings, scale: Self.recoveryMargin)
        let holding = held.values.max() ?? .normal
        guard holding < step else {
            calm = nil
            return nil
        }
        var window = calm ?? (now, holding)
        window.peak = max(window.peak, holding)
        guard now - window.since >= configuration.recoverAfter else {
            calm = window
            return nil
        }
        defer { step = window.peak }
        calm = nil
        return Change(from: step, to: window.peak, causes: Self.causes(held, at: window.peak))
    }

    private static func causes(_ steps: [OverloadMonitorKind: OverloadStep], at step: OverloadStep)
        -> [OverloadMonitorKind]
    {
        guard step > .normal else { return [] }
        return OverloadMonitorKind.allCases.filter { steps[$0] == step }
    }
}

/// The step the overload monitor last set, read on every event loop: by admission (refuse a handshake) and by the
/// message-limit stage (answer a Heartbeat). `normal` while overload protection is off.
final class OverloadState: Sendable {
    private let current = NIOLockedValueBox(OverloadStep.normal)

    var step: OverloadStep {
        get { current.withLockedValue { $0 } }
        set { current.withLockedValue { $0 = newValue } }
    }
}

extension OverloadConfiguration {
    /// The answer to a handshake while the proxy refuses them: 503 with a `Retry-After` between `recoverAfter` and
    /// twice it (the step can fall no sooner, and a storm of refused chargers comes back spread out).
    func handshakeRefusal(seconds random: (ClosedRange<Int>) -> Int = { Int.random(in: $0) })
        -> AdmissionLimits.Refusal
    {
        let base = max(1, Int((recoverAfter.nanoseconds + 999_999_999) / 1_000_000_000))
        return AdmissionLimits.Refusal(
            status: .serviceUnavailable, rule: "overload", retryAfter: random(base...(2 * base)),
            message: "the proxy is overloaded and admits no new chargers now; try again later")
    }
}
