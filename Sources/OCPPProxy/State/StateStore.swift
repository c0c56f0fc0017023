import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPP
import OCPPRules
import SQLiteNIO

/// What the proxy keeps across restarts. A protocol with an embedded SQLite implementation (the default)
/// beside an in-memory one for tests and for configurations without `state.sqlite`. Every call returns a future:
/// sessions live on event loops, and the store is called from them.
protocol StateStore: Sendable {
    /// Every upstream password a CSMS has set, by the upstream that set it and the charger's identity.
    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]>
    /// Persists the upstream password the CSMS `upstream` set; completes once it is durable.
    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity, upstream: String)
        -> EventLoopFuture<Void>
    /// What translation remembers about a charger toward the CSMS `upstream` (transactions, seqNos, remote starts,
    /// request ids), for each edge of its chain of rule sets. Kept per upstream: a charger shadowed to a second CSMS,
    /// or moved to another, has transactions on each that are that CSMS's.
    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState>
    /// Persists translation state changes in order; completes once they are durable.
    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void>
    /// Transaction messages the proxy acknowledged during an outage of the CSMS `upstream` and has not delivered
    /// to it yet, oldest first. They are that CSMS's (in its version, about its transactions): a charger routed
    /// elsewhere later does not send them to another CSMS.
    func queuedMessages(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<[QueuedMessage]>
    /// Persists one such message; completes once it is durable (only then is it acknowledged to the charger).
    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void>
    /// Forgets a message the CSMS has answered.
    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void>
    /// The routes set through the admin API, by identity: the upstream each charger was moved to.
    func routeOverrides() -> EventLoopFuture<[String: String]>
    /// Persists a charger's route (nil: back to the configuration's); completes once it is durable.
    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void>
    func close() -> EventLoopFuture<Void>
}

extension StateStore {
    /// The translation state toward the upstream `upstream:` configures (named `default`).
    func translationState(for identity: ChargerIdentity) -> EventLoopFuture<ChainState> {
        translationState(for: identity, upstream: UpstreamConfiguration.defaultName)
    }

    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        save(changes, for: identity, upstream: UpstreamConfiguration.defaultName)
    }
}

/// A frame for the CSMS, in the CSMS's version, held for delivery after an outage.
struct QueuedMessage: Equatable, Sendable {
    /// Its place in the charger's queue: delivered in this order.
    var sequence: Int64
    /// The frame as it goes to the CSMS (RPC frame JSON).
    var text: String
}

final class MemoryStateStore: StateStore {
    private let passwords = NIOLockedValueBox<[UpstreamCredentialKey: String]>([:])
    private let eventLoop: EventLoop

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]> {
        eventLoop.makeSucceededFuture(passwords.withLockedValue { $0 })
    }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity, upstream: String)
        -> EventLoopFuture<Void>
    {
        passwords.withLockedValue { $0[UpstreamCredentialKey(upstream: upstream, identity: identity.value)] = password }
        return eventLoop.makeSucceededVoidFuture()
    }

    private let translation = NIOLockedValueBox<[UpstreamCredentialKey: ChainState]>([:])

    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        return eventLoop.makeSucceededFuture(translation.withLockedValue { $0[key] } ?? ChainState())
    }

    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        translation.withLockedValue { states in
            var state = states[key] ?? ChainState()
            changes.forEach { state.apply($0) }
            states[key] = state
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    private let queues = NIOLockedValueBox<[UpstreamCredentialKey: [QueuedMessage]]>([:])

    func queuedMessages(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<[QueuedMessage]> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        return eventLoop.makeSucceededFuture(queues.withLockedValue { $0[key] ?? [] })
    }

    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queues.withLockedValue { $0[key, default: []].append(message) }
        return eventLoop.makeSucceededVoidFuture()
    }

    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queues.withLockedValue { $0[key]?.removeAll { $0.sequence == sequence } }
        return eventLoop.makeSucceededVoidFuture()
    }

    private let routes = NIOLockedValueBox<[String: String]>([:])

    func routeOverrides() -> EventLoopFuture<[String: String]> {
        eventLoop.makeSucceededFuture(routes.withLockedValue { $0 })
    }

    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        routes.withLockedValue { $0[identity.value] = upstream }
        return eventLoop.makeSucceededVoidFuture()
    }

    func close() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
}

/// The embedded default: one SQLite file, written through SQLiteNIO's thread pool.
final class SQLiteStateStore: StateStore {
    private let connection: SQLiteConnection
    /// Rows of the outage queue by upstream and identity: a charger with none (nearly all) costs its session no
    /// query.
    private let queued: NIOLockedValueBox<[UpstreamCredentialKey: Int]>

    private init(connection: SQLiteConnection, queued: [UpstreamCredentialKey: Int]) {
        self.connection = connection
        self.queued = NIOLockedValueBox(queued)
    }

    /// Opens (and creates or migrates) the store; `defaultUpstream` owns the CSMS-set passwords of a store written
    /// before upstreams had names.
    static func open(
        path: String, eventLoop: EventLoop, logger: Logger,
        defaultUpstream: String = UpstreamConfiguration.defaultName
    ) async throws -> SQLiteStateStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // The file holds CSMS-issued credentials: owner-only.
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let connection = try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: .singleton, logger: logger, on: eventLoop)
        _ = try await connection.query("PRAGMA journal_mode=WAL", [])
        // WAL with synchronous=NORMAL: a commit is in the WAL before the query completes, so a killed process
        // (SIGKILL included) loses nothing; only a power loss may lose the last commits. FULL would fsync on every
        // translated MeterValues (its seqNo) and cost more than the translation itself.
        _ = try await connection.query("PRAGMA synchronous=NORMAL", [])
        try await migrateByUpstream(
            connection, table: "upstream_credentials",
            create: """
                CREATE TABLE IF NOT EXISTS upstream_credentials (
                    upstream TEXT NOT NULL,
                    identity TEXT NOT NULL,
                    password TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (upstream, identity)
                )
                """, columns: "identity, password, updated_at", defaultUpstream: defaultUpstream, logger: logger)
        // One row per remembered item (a transaction, a counter, ...): a change replaces its row.
        try await migrateByUpstream(
            connection, table: "translation_state",
            create: """
                CREATE TABLE IF NOT EXISTS translation_state (
                    upstream TEXT NOT NULL,
                    identity TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (upstream, identity, key)
                )
                """, columns: "identity, key, value", defaultUpstream: defaultUpstream, logger: logger)
        // Transaction messages acknowledged during a CSMS outage, until that CSMS has answered them.
        try await migrateByUpstream(
            connection, table: "outage_queue",
            create: """
                CREATE TABLE IF NOT EXISTS outage_queue (
                    upstream TEXT NOT NULL,
                    identity TEXT NOT NULL,
                    sequence INTEGER NOT NULL,
                    frame TEXT NOT NULL,
                    PRIMARY KEY (upstream, identity, sequence)
                )
                """, columns: "identity, sequence, frame", defaultUpstream: defaultUpstream, logger: logger)
        // Routes set through the admin API: the operator's decision, kept until changed.
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS route_overrides (
                identity TEXT PRIMARY KEY NOT NULL,
                upstream TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """, [])
        var queued: [UpstreamCredentialKey: Int] = [:]
        for row in try await connection.query(
            "SELECT upstream, identity, COUNT(*) AS n FROM outage_queue GROUP BY upstream, identity", [])
        {
            if let upstream = row.column("upstream")?.string, let identity = row.column("identity")?.string,
                let count = row.column("n")?.integer
            {
                queued[UpstreamCredentialKey(upstream: upstream, identity: identity)] = count
            }
        }
        return SQLiteStateStore(connection: connection, queued: queued)
    }

    /// What a CSMS set or is owed belongs to that upstream: CSMS-set passwords and the outage queue are keyed by
    /// upstream too. A store from before named upstreams is rewritten table by table, each in one transaction, its
    /// rows given to `defaultUpstream`, the one CSMS there was. `columns`: the old table's, copied as they were.
    private static func migrateByUpstream(
        _ connection: SQLiteConnection, table: String, create: String, columns: String, defaultUpstream: String,
        logger: Logger
    ) async throws {
        let existing = try await connection.query("PRAGMA table_info(\(table))", []).compactMap {
            $0.column("name")?.string
        }
        guard !existing.isEmpty, !existing.contains("upstream") else {
            _ = try await connection.query(create, [])
            return
        }
        _ = try await connection.query("BEGIN IMMEDIATE", [])
        do {
            _ = try await connection.query("ALTER TABLE \(table) RENAME TO \(table)_v1", [])
            _ = try await connection.query(create, [])
            _ = try await connection.query(
                "INSERT INTO \(table) (upstream, \(columns)) SELECT ?, \(columns) FROM \(table)_v1",
                [.text(defaultUpstream)])
            _ = try await connection.query("DROP TABLE \(table)_v1", [])
            _ = try await connection.query("COMMIT", [])
        } catch {
            _ = try? await connection.query("ROLLBACK", [])
            throw error
        }
        logger.notice("state store: \(table) is now kept per upstream; its existing rows belong to \(defaultUpstream)")
    }

    func queuedMessages(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<[QueuedMessage]> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        guard queued.withLockedValue({ $0[key] ?? 0 }) > 0 else {
            return connection.eventLoop.makeSucceededFuture([])
        }
        return connection.query(
            "SELECT sequence, frame FROM outage_queue WHERE upstream = ? AND identity = ? ORDER BY sequence",
            [.text(upstream), .text(identity.value)]
        ).map { rows in
            rows.compactMap { row in
                guard let sequence = row.column("sequence")?.integer, let text = row.column("frame")?.string else {
                    return nil
                }
                return QueuedMessage(sequence: Int64(sequence), text: text)
            }
        }
    }

    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        // Counted first: a message being written is read back by a session that starts meanwhile.
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queued.withLockedValue { $0[key, default: 0] += 1 }
        return connection.query(
            "INSERT INTO outage_queue (upstream, identity, sequence, frame) VALUES (?, ?, ?, ?)",
            [.text(upstream), .text(identity.value), .integer(Int(message.sequence)), .text(message.text)]
        ).map { _ in }
    }

    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        return connection.query(
            "DELETE FROM outage_queue WHERE upstream = ? AND identity = ? AND sequence = ? RETURNING sequence",
            [.text(upstream), .text(identity.value), .integer(Int(sequence))]
        ).map { [queued] rows in
            guard !rows.isEmpty else { return }
            queued.withLockedValue { counts in
                counts[key] = (counts[key] ?? 1) - 1
                if counts[key] ?? 0 <= 0 { counts[key] = nil }
            }
        }
    }

    /// A row's key names its edge (``EdgeStateChange/key``): rows written before chains existed are the first edge's.
    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState> {
        connection.query(
            "SELECT key, value FROM translation_state WHERE upstream = ? AND identity = ?",
            [.text(upstream), .text(identity.value)]
        ).map { rows in
            var state = ChainState()
            for row in rows {
                guard let key = row.column("key")?.string, let text = row.column("value")?.string,
                    let json = JSONValue(parsing: Array(text.utf8)), let change = EdgeStateChange(key: key, json: json)
                else { continue }
                state.apply(change)
            }
            return state
        }
    }

    func routeOverrides() -> EventLoopFuture<[String: String]> {
        connection.query("SELECT identity, upstream FROM route_overrides", []).map { rows in
            var routes: [String: String] = [:]
            for row in rows {
                if let identity = row.column("identity")?.string, let upstream = row.column("upstream")?.string {
                    routes[identity] = upstream
                }
            }
            return routes
        }
    }

    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        guard let upstream else {
            return connection.query("DELETE FROM route_overrides WHERE identity = ?", [.text(identity.value)]).map {
                _ in
            }
        }
        return connection.query(
            """
            INSERT INTO route_overrides (identity, upstream, updated_at) VALUES (?, ?, ?)
            ON CONFLICT(identity) DO UPDATE SET upstream = excluded.upstream, updated_at = excluded.updated_at
            """,
            [.text(identity.value), .text(upstream), .text(ISO8601DateFormatter().string(from: Date()))]
        ).map { _ in }
    }

    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]> {
        connection.query("SELECT upstream, identity, password FROM upstream_credentials", []).map { rows in
            var passwords: [UpstreamCredentialKey: String] = [:]
            for row in rows {
                if let upstream = row.column("upstream")?.string, let identity = row.column("identity")?.string,
                    let password = row.column("password")?.string
                {
                    passwords[UpstreamCredentialKey(upstream: upstream, identity: identity)] = password
                }
            }
            return passwords
        }
    }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity, upstream: String)
        -> EventLoopFuture<Void>
    {
        connection.query(
            """
            INSERT INTO upstream_credentials (upstream, identity, password, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT(upstream, identity) DO UPDATE SET password = excluded.password, updated_at = excluded.updated_at
            """,
            [
                .text(upstream), .text(identity.value), .text(password),
                .text(ISO8601DateFormatter().string(from: Date())),
            ]
        ).map { _ in }
    }

    /// Writes waiting for the next flush. Every session's writes that arrive while one flush runs go into the
    /// next, as one statement: group commit, so that a thousand chargers' MeterValues cost a few writes, not a
    /// thousand.
    private struct PendingWrite {
        var upstream: String
        var identity: String
        var changes: [EdgeStateChange]
        var promise: EventLoopPromise<Void>
    }

    private let pending = NIOLockedValueBox<(writes: [PendingWrite], flushing: Bool)>(([], false))
    /// Rows per statement, well under SQLite's limit of bound parameters.
    private static let rowsPerStatement = 300

    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let promise = connection.eventLoop.makePromise(of: Void.self)
        let start = pending.withLockedValue { state -> Bool in
            state.writes.append(
                PendingWrite(upstream: upstream, identity: identity.value, changes: changes, promise: promise))
            if state.flushing { return false }
            state.flushing = true
            return true
        }
        if start { connection.eventLoop.execute { self.flush() } }
        return promise.futureResult
    }

    private func flush() {
        let batch = pending.withLockedValue { state -> [PendingWrite] in
            let writes = state.writes
            state.writes = []
            if writes.isEmpty { state.flushing = false }
            return writes
        }
        guard !batch.isEmpty else { return }
        // The last change of each (upstream, identity, key) is the one that counts.
        var latest: [String: (write: PendingWrite, change: EdgeStateChange)] = [:]
        var order: [String] = []
        for write in batch {
            for change in write.changes {
                let key = write.upstream + "\u{0}" + write.identity + "\u{0}" + change.key
                if latest.updateValue((write, change), forKey: key) == nil { order.append(key) }
            }
        }
        var upserts: [[SQLiteData]] = []
        var deletes: [[SQLiteData]] = []
        for key in order {
            guard let (write, change) = latest[key] else { continue }
            if case .forgetTransaction = change.change {
                deletes.append([.text(write.upstream), .text(write.identity), .text(change.key)])
            } else {
                // Key order means nothing in a stored value: skip the sorting.
                upserts.append([
                    .text(write.upstream), .text(write.identity), .text(change.key),
                    .text(change.change.json.wireText),
                ])
            }
        }
        var statements: [(String, [SQLiteData])] = []
        for start in stride(from: 0, to: upserts.count, by: Self.rowsPerStatement) {
            let rows = upserts[start..<min(start + Self.rowsPerStatement, upserts.count)]
            statements.append(
                (
                    "INSERT INTO translation_state (upstream, identity, key, value) VALUES "
                        + Array(repeating: "(?, ?, ?, ?)", count: rows.count).joined(separator: ", ")
                        + " ON CONFLICT(upstream, identity, key) DO UPDATE SET value = excluded.value",
                    rows.flatMap { $0 }
                ))
        }
        for start in stride(from: 0, to: deletes.count, by: Self.rowsPerStatement) {
            let rows = deletes[start..<min(start + Self.rowsPerStatement, deletes.count)]
            statements.append(
                (
                    "DELETE FROM translation_state WHERE "
                        + Array(repeating: "(upstream = ? AND identity = ? AND key = ?)", count: rows.count)
                        .joined(separator: " OR "),
                    rows.flatMap { $0 }
                ))
        }
        let connection = self.connection
        var future = connection.eventLoop.makeSucceededVoidFuture()
        for (sql, binds) in statements {
            future = future.flatMap { connection.query(sql, binds).map { _ in } }
        }
        future.whenComplete { result in
            for write in batch { write.promise.completeWith(result) }
            self.flush()
        }
    }

    func close() -> EventLoopFuture<Void> {
        connection.close()
    }
}
