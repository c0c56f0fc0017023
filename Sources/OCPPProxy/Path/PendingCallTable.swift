import NIOCore
import OCPP

/// A CALL that was forwarded and awaits its CALLRESULT or CALLERROR.
struct PendingCall {
    var action: String
    var sentAt: NIODeadline
}

/// The CALLs one side of a session has sent and not yet had answered. OCPP allows one outstanding CALL
/// per direction, so the table is small. The session refuses CALLs beyond `limits.maxPendingCalls`; the capacity
/// (the largest value that key takes) is a last bound in case a path inserts without asking.
struct PendingCallTable {
    private(set) var calls: [String: PendingCall] = [:]
    static let capacity = 1024
    /// No call in the table was sent before this (a lower bound, exact after an expiry): `expire` runs on every
    /// CALL and returns at once while nothing can be due.
    private var noneSentBefore = NIODeadline.distantFuture

    var count: Int { calls.count }

    func contains(_ id: String) -> Bool { calls[id] != nil }

    mutating func insert(_ id: String, action: String, now: NIODeadline) {
        if calls.count >= Self.capacity, let oldest = calls.min(by: { $0.value.sentAt < $1.value.sentAt }) {
            calls.removeValue(forKey: oldest.key)
        }
        calls[id] = PendingCall(action: action, sentAt: now)
        noneSentBefore = min(noneSentBefore, now)
    }

    mutating func remove(_ id: String) -> PendingCall? {
        calls.removeValue(forKey: id)
    }

    /// Forgets the calls older than `timeout`; returns how many.
    mutating func expire(olderThan timeout: TimeAmount, now: NIODeadline) -> Int {
        guard !calls.isEmpty else {
            noneSentBefore = .distantFuture
            return 0
        }
        guard now - noneSentBefore >= timeout else { return 0 }
        let before = calls.count
        calls = calls.filter { now - $0.value.sentAt < timeout }
        noneSentBefore = calls.values.map(\.sentAt).min() ?? .distantFuture
        return before - calls.count
    }
}
