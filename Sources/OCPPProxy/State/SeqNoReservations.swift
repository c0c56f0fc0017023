import NIOConcurrencyHelpers
import OCPPRules

/// Turns translation state changes into the rows a store writes, reserving 2.0.1 TransactionEvent seqNos in blocks.
///
/// Translation sends a TransactionEvent with the transaction's next seqNo at once, and the change that moves the
/// seqNo on comes when the CSMS has answered it (it is written before the answer reaches the charger). With a block
/// of 1 (the default) the row holds exactly that next seqNo: a transaction resumes after a restart (SIGKILL
/// included) where it was, and a charger's retry of a message whose answer it never got goes out with the same
/// seqNo, as the same message. With a block of `n` > 1 the row holds a high-water mark at least one past the seqNo
/// the next event will take (reserve ahead: `next + n` when written, and again for every transaction a session
/// reads back), and a change that moves only the seqNo while it stays below the mark writes nothing: its answer
/// goes back without waiting for the store, one write in `n`. A seqNo that went out is then always below what the
/// store holds, so after a crash no seqNo goes to a second message; the price is a gap of up to `n` after a
/// restart, which a CSMS may read as messages it missed.
///
/// Knows what the store holds (or holds once queued writes commit) for each transaction it saw: written, or read
/// at a session's start. Shared by the sessions of every event loop.
final class SeqNoReservations: Sendable {
    /// What a change becomes in the store, under its ``EdgeStateChange/key``.
    enum Write: Sendable, Equatable {
        case upsert(key: String, value: String)
        case delete(key: String)
    }

    let block: Int64
    /// What the store holds (or holds once queued writes commit) for each transaction, by owner (upstream and identity) and row key.
    private let stored = NIOLockedValueBox<[String: TranslationState.Transaction]>([:])

    init(block: Int64) {
        precondition(block >= 1, "a seqNo block holds at least one seqNo")
        self.block = block
    }

    /// The rows `changes` need, in order; none when the store already holds all that a crash must not lose.
    func writes(for changes: [EdgeStateChange], owner: String) -> [Write] {
        stored.withLockedValue { stored in
            var writes: [Write] = []
            for change in changes {
                let key = change.key
                let storedKey = owner + "\u{0}" + key
                switch change.change {
                case .transaction(let transaction):
                    let previous = stored[storedKey]
                    // With blocks, the seqNo the next event takes must be below the mark too.
                    let needed = transaction.nextSeqNo + (block > 1 ? 1 : 0)
                    if let previous, Self.sameButSeqNo(previous, transaction), needed <= previous.nextSeqNo {
                        continue
                    }
                    var row = transaction
                    if block > 1 {
                        row.nextSeqNo = max(previous?.nextSeqNo ?? 0, transaction.nextSeqNo + block)
                    }
                    stored[storedKey] = row
                    writes.append(.upsert(key: key, value: StateChange.transaction(row).json.wireText))
                case .forgetTransaction:
                    stored[storedKey] = nil
                    writes.append(.delete(key: key))
                default:
                    // Key order means nothing in a stored value: no sorting.
                    writes.append(.upsert(key: key, value: change.change.json.wireText))
                }
            }
            return writes
        }
    }

    /// What a session read back from the store, and the rows it needs before it starts: with blocks, each
    /// transaction's next event takes the seqNo the row holds, so the mark moves a block ahead of it first.
    func read(_ state: ChainState, owner: String) -> [Write] {
        stored.withLockedValue { stored in
            var writes: [Write] = []
            for (edge, edgeState) in state.edges {
                for transaction in edgeState.transactions.values {
                    let key = EdgeStateChange(edge: edge, change: .transaction(transaction)).key
                    var row = transaction
                    if block > 1 {
                        row.nextSeqNo = transaction.nextSeqNo + block
                        writes.append(.upsert(key: key, value: StateChange.transaction(row).json.wireText))
                    }
                    stored[owner + "\u{0}" + key] = row
                }
            }
            return writes
        }
    }

    /// Writes that failed: the store may not hold them, so the next change of those transactions writes again.
    func failed(_ writes: [Write], owner: String) {
        stored.withLockedValue { stored in
            for case .upsert(let key, _) in writes { stored[owner + "\u{0}" + key] = nil }
        }
    }

    private static func sameButSeqNo(_ a: TranslationState.Transaction, _ b: TranslationState.Transaction) -> Bool {
        var a = a
        a.nextSeqNo = b.nextSeqNo
        return a == b
    }
}
