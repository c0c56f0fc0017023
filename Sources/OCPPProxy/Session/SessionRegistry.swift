import NIOConcurrencyHelpers
import OCPP

/// Which identities are connected, across all listeners and event loops. An identity is claimed
/// before its upstream link is opened, so two connections for one charger never both reach the CSMS.
/// Unchecked: it hands out sessions, which are confined to their event loops; every caller touches a session only
/// through `session.eventLoop` (everything else here is behind the lock).
final class SessionRegistry: @unchecked Sendable {
    enum Claim {
        /// The identity is ours under `generation`; `previous` must be closed first (policy replace).
        case granted(generation: UInt64, previous: ChargerSession?)
        /// Policy reject and the identity is connected or connecting.
        case conflict
    }

    private struct Slot {
        var generation: UInt64
        var session: ChargerSession?
    }

    private let lock = NIOLock()
    private var slots: [ChargerIdentity: Slot] = [:]
    private var nextGeneration: UInt64 = 0

    func claim(_ identity: ChargerIdentity, policy: DuplicateIdentityPolicy) -> Claim {
        lock.withLock {
            if slots[identity] != nil, policy == .reject {
                return .conflict
            }
            nextGeneration += 1
            let previous = slots[identity]?.session
            slots[identity] = Slot(generation: nextGeneration, session: nil)
            return .granted(generation: nextGeneration, previous: previous)
        }
    }

    /// Records the session of a claim; false when a newer connection has claimed the identity since.
    func activate(_ session: ChargerSession) -> Bool {
        lock.withLock {
            guard slots[session.identity]?.generation == session.generation else { return false }
            slots[session.identity]?.session = session
            return true
        }
    }

    /// Gives up a claim, unless a newer connection holds the identity now.
    func release(_ identity: ChargerIdentity, generation: UInt64) {
        lock.withLock {
            if slots[identity]?.generation == generation { slots[identity] = nil }
        }
    }

    var sessions: [ChargerSession] {
        lock.withLock { slots.values.compactMap(\.session) }
    }

    var isEmpty: Bool {
        lock.withLock { slots.isEmpty }
    }
}
