import Foundation
import Logging
import NIOCore
import NIOPosix
import OCPP
import OCPPRules
import SQLiteNIO
import Testing

@testable import OCPPProxy

@Suite("SQLite translation state")
struct SQLiteTranslationStateTests {
    func transaction(_ local: Int64, _ uuid: String, seq: Int64, ended: Bool = false) -> TranslationState.Transaction {
        .init(
            localId: local, uuid: uuid, connectorId: 1, nextSeqNo: seq, remoteStartId: nil, ended: ended, serial: local)
    }

    @Test func eachUpstreamHasItsOwnStateAndRowsFromBeforeUpstreamsAreTheDefaultUpstreams() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let identity = try ChargerIdentity("CP-1")
        // The table as the proxy wrote it before translation state was kept per upstream.
        let old = EdgeStateChange(edge: "", change: .transaction(transaction(1, "before", seq: 5)))
        let connection = try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: .singleton, logger: Logger(label: "test"), on: loop)
        _ = try await connection.query(
            "CREATE TABLE translation_state (identity TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (identity, key))",
            [])
        _ = try await connection.query(
            "INSERT INTO translation_state VALUES (?, ?, ?)",
            [.text(identity.value), .text(old.key), .text(old.change.json.wireText)])
        try await connection.close()

        let store = try await SQLiteStateStore.open(
            path: path, eventLoop: loop, logger: Logger(label: "test"), defaultUpstream: "old")
        try await store.save(
            [EdgeStateChange(edge: "", change: .transaction(transaction(1, "shadowed", seq: 1)))], for: identity,
            upstream: "new"
        ).get()
        try await store.close().get()
        let reopened = try await SQLiteStateStore.open(
            path: path, eventLoop: loop, logger: Logger(label: "test"), defaultUpstream: "old")
        let before = try await reopened.translationState(for: identity, upstream: "old").get()[edge: ""]
        let shadowed = try await reopened.translationState(for: identity, upstream: "new").get()[edge: ""]
        try await reopened.close().get()
        #expect(before.transaction(localId: 1)?.uuid == "before")
        #expect(before.transaction(uuid: "before")?.nextSeqNo == 5)
        #expect(shadowed.transaction(localId: 1)?.uuid == "shadowed")
        #expect(shadowed.transaction(uuid: "before") == nil)
    }

    @Test func whatIsSavedIsReadBackAfterReopeningTheFile() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let identity = try ChargerIdentity("CP-1")
        let other = try ChargerIdentity("CP-2")
        let store = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        try await store.save(
            [
                .transaction(transaction(1, "u1", seq: 0)), .nextLocalId(2), .transaction(transaction(1, "u1", seq: 3)),
                .transaction(transaction(2, "u2", seq: 1, ended: true)), .forgetTransaction(uuid: "u2"),
                .remoteStarts([.init(evseId: 1, idToken: "TAG", remoteStartId: 42)]), .requestId(kind: "log", id: 7),
            ].map { EdgeStateChange(edge: "", change: $0) }, for: identity
        ).get()
        try await store.save([EdgeStateChange(edge: "", change: .transaction(transaction(9, "x", seq: 0)))], for: other)
            .get()
        try await store.close().get()

        let reopened = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        let state = try await reopened.translationState(for: identity).get()[edge: ""]
        await reopened.close()
        #expect(state.transaction(uuid: "u1")?.nextSeqNo == 3)
        #expect(state.transaction(localId: 1)?.uuid == "u1")
        #expect(state.transaction(uuid: "u2") == nil)
        #expect(state.transaction(uuid: "x") == nil)
        #expect(state.nextLocalId == 2)
        #expect(state.remoteStarts == [.init(evseId: 1, idToken: "TAG", remoteStartId: 42)])
        #expect(state.requestIds["log"] == 7)
    }

    @Test func eachEdgeOfAChainIsReadBackOnItsOwnAndTheFirstKeepsTheKeysOfASingleRuleSet() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let identity = try ChargerIdentity("CP-15")
        let store = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        try await store.save(
            [
                EdgeStateChange(edge: "", change: .transaction(transaction(42, "first", seq: 0))),
                EdgeStateChange(edge: "ocpp1.6-ocpp2.0.1", change: .transaction(transaction(1, "second", seq: 5))),
                EdgeStateChange(edge: "ocpp1.6-ocpp2.0.1", change: .nextLocalId(2)),
            ], for: identity
        ).get()
        try await store.close().get()
        let reopened = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        let state = try await reopened.translationState(for: identity).get()
        await reopened.close()
        #expect(state.edges.keys.sorted() == ["", "ocpp1.6-ocpp2.0.1"])
        #expect(state[edge: ""].transaction(localId: 42)?.uuid == "first")
        #expect(state[edge: ""].transaction(uuid: "second") == nil)
        #expect(state[edge: "ocpp1.6-ocpp2.0.1"].transaction(uuid: "second")?.nextSeqNo == 5)
        #expect(state[edge: "ocpp1.6-ocpp2.0.1"].nextLocalId == 2)
        #expect(state[edge: ""].nextLocalId == 1)
    }

    @Test func concurrentSavesOfManyChargersAreAllDurableInOrder() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let group = MultiThreadedEventLoopGroup.singleton
        let store = try await SQLiteStateStore.open(path: path, eventLoop: group.any(), logger: Logger(label: "test"))
        let identities = try (0..<200).map { try ChargerIdentity("CP-\($0)") }
        // Every charger saves seqNo 0...4 of its transaction, each save from another event loop, all at once; the
        // store batches them, and the last save of each charger must win.
        var futures: [EventLoopFuture<Void>] = []
        for seq in 0..<5 {
            for (index, identity) in identities.enumerated() {
                futures.append(
                    store.save(
                        [
                            EdgeStateChange(
                                edge: "",
                                change: .transaction(transaction(Int64(index), "tx-\(index)", seq: Int64(seq))))
                        ], for: identity))
            }
        }
        try await EventLoopFuture.andAllSucceed(futures, on: group.any()).get()
        try await store.close().get()
        let reopened = try await SQLiteStateStore.open(
            path: path, eventLoop: group.any(), logger: Logger(label: "test"))
        for (index, identity) in identities.enumerated() {
            let state = try await reopened.translationState(for: identity).get()[edge: ""]
            #expect(state.transaction(uuid: "tx-\(index)")?.nextSeqNo == 4)
        }
        await reopened.close()
    }
}
