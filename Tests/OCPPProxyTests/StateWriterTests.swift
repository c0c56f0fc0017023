import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPP
import OCPPRules
import SQLiteNIO
import Testing

@testable import OCPPProxy

/// The SQLite store's writer, its checkpoint connection and seqNo blocks (issue 17, point 3).
@Suite("SQLite state writer")
struct StateWriterTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func temporaryPath() -> String {
        NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
    }

    func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    func open(_ path: String, seqNoBlock: Int64 = 1, truncateAbove: Int64 = 64 << 20) async throws
        -> SQLiteStateStore
    {
        // An hour between checkpoints: a test runs the ones it wants itself.
        try await SQLiteStateStore.open(
            path: path, eventLoop: loop, logger: Logger(label: "test"), seqNoBlock: seqNoBlock,
            checkpoints: .init(interval: .hours(1), truncateAbove: truncateAbove))
    }

    func transaction(_ uuid: String, next: Int64, ended: Bool = false) -> EdgeStateChange {
        EdgeStateChange(
            edge: "",
            change: .transaction(
                .init(
                    localId: 1, uuid: uuid, connectorId: 1, nextSeqNo: next, remoteStartId: nil, ended: ended,
                    serial: 1)))
    }

    /// Holds the writer inside a piece of work until `release()`: what is queued meanwhile waits for one wake-up.
    final class Gate: @unchecked Sendable {
        private let lock = ConditionLock(value: false)
        func wait() {
            lock.lock(whenValue: true)
            lock.unlock()
        }
        func release() {
            lock.lock()
            lock.unlock(withValue: true)
        }
    }

    @Test func writesQueuedWhileTheWriterIsBusyAreCommittedTogetherInOneTransaction() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let store = try await open(path)
        let gate = Gate()
        let held = store.writer.submit(on: loop) { _ in gate.wait() }
        let before = store.commits
        let identities = try (0..<100).map { try ChargerIdentity("CP-\($0)") }
        let saves = identities.map { store.save([transaction("tx-\($0.value)", next: 1)], for: $0) }
        gate.release()
        try await held.get()
        try await EventLoopFuture.andAllSucceed(saves, on: loop).get()
        // The held piece's transaction, then one for all hundred saves.
        #expect(store.commits - before <= 2)
        #expect(store.commits - before >= 1)
        try await store.close().get()
        let reopened = try await open(path)
        for identity in identities {
            let state = try await reopened.translationState(for: identity).get()
            #expect(state[edge: ""].transaction(uuid: "tx-\(identity.value)")?.nextSeqNo == 1)
        }
        try await reopened.close().get()
    }

    @Test func theWriterReusesItsPreparedStatementsAcrossFlushes() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let store = try await open(path)
        let identity = try ChargerIdentity("CP-1")
        let prepared = try await store.writer.submit(on: loop) { $0.preparedStatements }.get()
        let runs = store.statements.upsertState.runs
        for next in Int64(1)...5 {
            // Each save waits for its commit: five flushes.
            try await store.save([transaction("u", next: next)], for: identity).get()
        }
        #expect(store.statements.upsertState.runs == runs + 5)
        #expect(try await store.writer.submit(on: loop) { $0.preparedStatements }.get() == prepared)
        try await store.close().get()
    }

    @Test func aFailingPieceOfWorkFailsOnlyItsCallerAndRollsBackOnlyItsOwnRows() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let store = try await open(path)
        let gate = Gate()
        let held = store.writer.submit(on: loop) { _ in gate.wait() }
        let upsert = store.statements.upsertState
        let failing = store.writer.submit(on: loop) { connection in
            try connection.run(upsert, [.text("default"), .text("CP-1"), .text("memo:a"), .text("1")])
            _ = try connection.rows(once: "SELECT * FROM no_such_table")
        }
        let identity = try ChargerIdentity("CP-2")
        let saved = store.save([EdgeStateChange(edge: "", change: .nextLocalId(7))], for: identity)
        gate.release()
        try await held.get()
        await #expect(throws: SQLiteWriter.Failure.self) { try await failing.get() }
        try await saved.get()
        let rows = try await store.writer.submit(on: loop) {
            try $0.rows(once: "SELECT identity FROM translation_state ORDER BY identity")
        }.get()
        #expect(rows == [[.text("CP-2")]])
        try await store.close().get()
    }

    @Test func theWriterNeverCheckpointsAndTheCheckpointConnectionCopiesTheWholeWAL() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let store = try await open(path)
        let autocheckpoint = try await store.writer.submit(on: loop) {
            try $0.rows(once: "PRAGMA wal_autocheckpoint")
        }.get()
        #expect(autocheckpoint == [[.integer(0)]])
        let identities = try (0..<50).map { try ChargerIdentity("CP-\($0)") }
        for identity in identities {
            try await store.save([transaction("u", next: 1)], for: identity).get()
        }
        let outcome = try await store.checkpoints.checkpoint().get()
        #expect(outcome.mode == .passive)
        #expect(!outcome.busy)
        #expect(outcome.walFrames > 0)
        #expect(outcome.checkpointedFrames == outcome.walFrames)
        // What was checkpointed is in the database file: a copy without the WAL reads it.
        let copy = temporaryPath()
        defer { remove(copy) }
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        let reader = try await SQLiteConnection.open(
            storage: .file(path: copy), threadPool: .singleton, logger: Logger(label: "test"), on: loop)
        let count = try await reader.query("SELECT COUNT(*) AS n FROM translation_state", []).first?.column("n")
        try await reader.close()
        #expect(count?.integer == 50)
        try await store.close().get()
    }

    @Test func aWALPastTheBoundIsTruncatedByTheCheckpointConnection() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let store = try await open(path, truncateAbove: 0)
        try await store.save([transaction("u", next: 1)], for: ChargerIdentity("CP-1")).get()
        let outcome = try await store.checkpoints.checkpoint().get()
        #expect(outcome.mode == .truncate)
        #expect(!outcome.busy)
        let size = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber
        #expect(size?.intValue == 0)
        // The writer goes on after it.
        try await store.save([transaction("u", next: 2)], for: ChargerIdentity("CP-1")).get()
        try await store.close().get()
        let reopened = try await open(path)
        let state = try await reopened.translationState(for: ChargerIdentity("CP-1")).get()
        #expect(state[edge: ""].transaction(uuid: "u")?.nextSeqNo == 2)
        try await reopened.close().get()
    }

    @Test func seqNosWithinAReservedBlockWriteNothingAndAReopenedStoreResumesPastTheBlock() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let identity = try ChargerIdentity("CP-1")
        let store = try await open(path, seqNoBlock: 10)
        // The CSMS answered Started (seqNo 0): the row's mark is 11, past seqNo 1, which the next event takes.
        try await store.save([transaction("u", next: 1)], for: identity).get()
        let afterStart = store.commits
        for next in Int64(2)...10 {
            try await store.save([transaction("u", next: next)], for: identity).get()
        }
        #expect(store.commits == afterStart)
        // The next event would take seqNo 11, not below the mark: a write moves it to 21.
        try await store.save([transaction("u", next: 11)], for: identity).get()
        #expect(store.commits == afterStart + 1)
        // Not closed: as after a crash, the file holds only the mark, and the transaction resumes there.
        let reopened = try await open(path, seqNoBlock: 10)
        let next = try await reopened.translationState(for: identity).get()[edge: ""].transaction(uuid: "u")?.nextSeqNo
        #expect(next == 21)
        // Reading it moved the mark a block ahead (to 31) before the session's first event: 22...30 write nothing.
        let commits = reopened.commits
        for next in Int64(22)...30 {
            try await reopened.save([transaction("u", next: next)], for: identity).get()
        }
        #expect(reopened.commits == commits)
        try await reopened.close().get()
        try await store.close().get()
        let third = try await open(path, seqNoBlock: 10)
        let resumed = try await third.translationState(for: identity).get()[edge: ""].transaction(uuid: "u")
        #expect(resumed?.nextSeqNo == 31)
        try await third.close().get()
    }

    @Test func eachUpstreamOfAChargerHasItsOwnRowsAndItsOwnSeqNoMarks() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let identity = try ChargerIdentity("CP-1")
        let store = try await open(path, seqNoBlock: 10)
        try await store.save([transaction("u", next: 1)], for: identity, upstream: "a").get()
        // The same transaction key toward another CSMS is another row: its first change is written too.
        let commits = store.commits
        try await store.save([transaction("u", next: 5)], for: identity, upstream: "b").get()
        #expect(store.commits == commits + 1)
        try await store.close().get()
        let reopened = try await open(path, seqNoBlock: 10)
        let a = try await reopened.translationState(for: identity, upstream: "a").get()[edge: ""]
        let b = try await reopened.translationState(for: identity, upstream: "b").get()[edge: ""]
        #expect(a.transaction(uuid: "u")?.nextSeqNo == 11)
        #expect(b.transaction(uuid: "u")?.nextSeqNo == 15)
        let other = try await reopened.translationState(for: identity, upstream: "c").get()[edge: ""]
        #expect(other.transaction(uuid: "u") == nil)
        try await reopened.close().get()
    }

    @Test func aChangeBesidesTheSeqNoIsWrittenEvenWithinTheBlock() async throws {
        let path = temporaryPath()
        defer { remove(path) }
        let identity = try ChargerIdentity("CP-1")
        let store = try await open(path, seqNoBlock: 10)
        try await store.save([transaction("u", next: 1)], for: identity).get()
        try await store.save([transaction("u", next: 2, ended: true)], for: identity).get()
        try await store.close().get()
        let reopened = try await open(path, seqNoBlock: 10)
        let stored = try await reopened.translationState(for: identity).get()[edge: ""].transaction(uuid: "u")
        #expect(stored?.ended == true)
        #expect(stored?.nextSeqNo == 12)
        try await reopened.close().get()
    }
}

@Suite("seqNo reservations")
struct SeqNoReservationTests {
    func change(next: Int64, uuid: String = "u") -> EdgeStateChange {
        EdgeStateChange(
            edge: "",
            change: .transaction(
                .init(
                    localId: 1, uuid: uuid, connectorId: 1, nextSeqNo: next, remoteStartId: nil, ended: false,
                    serial: 1)))
    }

    func storedSeqNos(_ writes: [SeqNoReservations.Write]) -> [Int64] {
        writes.compactMap { write in
            guard case .upsert(_, let value) = write, let json = JSONValue(parsing: Array(value.utf8)),
                case .transaction(let t)? = StateChange(json: json)
            else { return nil }
            return t.nextSeqNo
        }
    }

    @Test func aBlockOfOneWritesEverySeqNoAsItIs() {
        let reservations = SeqNoReservations(block: 1)
        let written = (1...4).flatMap { storedSeqNos(reservations.writes(for: [change(next: $0)], owner: "CP")) }
        #expect(written == [1, 2, 3, 4])
    }

    @Test func aBlockOfFourWritesOnceEveryFourSeqNosAndAlwaysAheadOfTheOneInUse() {
        let reservations = SeqNoReservations(block: 4)
        var written: [Int64] = []
        for next in Int64(1)...9 {
            let rows = storedSeqNos(reservations.writes(for: [change(next: next)], owner: "CP"))
            // The seqNo the next event takes (next) is below the mark the store holds.
            #expect((rows.last ?? written.last ?? 0) > next)
            written += rows
        }
        #expect(written == [5, 9, 13])
    }

    @Test func chargersAndTransactionsHaveBlocksOfTheirOwn() {
        let reservations = SeqNoReservations(block: 4)
        #expect(storedSeqNos(reservations.writes(for: [change(next: 1)], owner: "A")) == [5])
        #expect(storedSeqNos(reservations.writes(for: [change(next: 1)], owner: "B")) == [5])
        #expect(storedSeqNos(reservations.writes(for: [change(next: 1, uuid: "v")], owner: "A")) == [5])
        #expect(reservations.writes(for: [change(next: 2)], owner: "A").isEmpty)
    }

    @Test func aForgottenTransactionIsDeletedAndAFailedWriteIsWrittenAgain() {
        let reservations = SeqNoReservations(block: 4)
        let first = reservations.writes(for: [change(next: 1)], owner: "CP")
        reservations.failed(first, owner: "CP")
        #expect(storedSeqNos(reservations.writes(for: [change(next: 2)], owner: "CP")) == [6])
        let forget = EdgeStateChange(edge: "", change: .forgetTransaction(uuid: "u"))
        #expect(reservations.writes(for: [forget], owner: "CP") == [.delete(key: "tx:u")])
    }

    @Test func aTransactionReadBackGetsItsMarkMovedAheadOfTheSeqNoItResumesAt() {
        let reservations = SeqNoReservations(block: 4)
        var state = ChainState()
        state.apply(change(next: 7))
        #expect(storedSeqNos(reservations.read(state, owner: "CP")) == [11])
        #expect(reservations.writes(for: [change(next: 8)], owner: "CP").isEmpty)
        #expect(SeqNoReservations(block: 1).read(state, owner: "CP").isEmpty)
    }
}
