import NIOCore
import Yams

/// `overload:`: `off`, or the sampling interval, `recoverAfter`, and each monitor's thresholds.
extension ConfigurationReader {
    /// Sampling faster than this costs more than it tells (each sample walks every session for pending CALLs).
    static let minimumOverloadInterval = TimeAmount.milliseconds(10)

    mutating func readOverload(_ node: Node?) -> OverloadConfiguration? {
        var overload = OverloadConfiguration()
        guard let node else { return overload }
        if Self.isOff(node) { return nil }
        guard let map = mapping(node, "overload") else { return overload }
        checkKeys(map, "overload", allowed: ["interval", "recoverAfter", "memory", "eventLoopLag", "pendingCalls"])
        if let interval = duration(map["interval"], "overload.interval", positive: true) {
            if interval < Self.minimumOverloadInterval {
                fail(
                    "overload.interval", map["interval"],
                    "expected at least \(Self.seconds(Self.minimumOverloadInterval)), got \(Self.seconds(interval))")
            } else {
                overload.interval = interval
            }
        }
        overload.recoverAfter =
            duration(map["recoverAfter"], "overload.recoverAfter", positive: false) ?? overload.recoverAfter
        if let memory = map["memory"] {
            overload.memory = thresholds(memory, "overload.memory", show: OverloadMonitorKind.memory.describe) {
                $0.byteSize($1, $2, range: (1 << 20)...(1 << 50))
            }
        }
        if let lag = map["eventLoopLag"] {
            overload.eventLoopLag = thresholds(
                lag, "overload.eventLoopLag", show: { Self.seconds(.nanoseconds(Int64($0))) }
            ) {
                ($0.duration($1, $2, positive: true)?.nanoseconds).map { Int($0) }
            }
        }
        if let pending = map["pendingCalls"] {
            overload.pendingCalls = thresholds(pending, "overload.pendingCalls", show: { "\($0)" }) {
                $0.integer($1, $2, range: 1...100_000_000)
            }
        }
        return overload
    }

    /// `{ shedAt, refuseAt, stopAt }` (each optional, each `off` or a reading that is more than the one before), or
    /// `off`. A configured mapping replaces the defaults: a step it does not name is not asked for by this monitor.
    private mutating func thresholds(
        _ node: Node, _ key: String, show: (Int) -> String, read: (inout ConfigurationReader, Node, String) -> Int?
    ) -> OverloadThresholds? {
        if Self.isOff(node) { return nil }
        guard let map = mapping(node, key) else { return nil }
        checkKeys(map, key, allowed: ["shedAt", "refuseAt", "stopAt"])
        var thresholds = OverloadThresholds()
        var below: (name: String, value: Int)?
        let steps: [(String, WritableKeyPath<OverloadThresholds, Int?>)] = [
            ("shedAt", \.shedAt), ("refuseAt", \.refuseAt), ("stopAt", \.stopAt),
        ]
        for (name, path) in steps {
            guard let valueNode = map[name], !Self.isOff(valueNode),
                let value = read(&self, valueNode, "\(key).\(name)")
            else { continue }
            if let below, value <= below.value {
                fail(
                    "\(key).\(name)", valueNode,
                    "expected more than \(below.name) (\(show(below.value))), got \(show(value))")
                continue
            }
            thresholds[keyPath: path] = value
            below = (name, value)
        }
        return thresholds
    }

    static func isOff(_ node: Node) -> Bool {
        if case .scalar(let scalar) = node, scalar.string == "off" { return true }
        return false
    }
}
