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

    /// The caller's event loop: a future completed there needs no hop back.
    private var callerLoop: EventLoop { MultiThreadedEventLoopGroup.currentEventLoop ?? eventLoop }

    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]> {
        callerLoop.makeSucceededFuture(passwords.withLockedValue { $0 })
    }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity, upstream: String)
        -> EventLoopFuture<Void>
    {
        passwords.withLockedValue { $0[UpstreamCredentialKey(upstream: upstream, identity: identity.value)] = password }
        return callerLoop.makeSucceededVoidFuture()
    }

    private let translation = NIOLockedValueBox<[UpstreamCredentialKey: ChainState]>([:])

    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        return callerLoop.makeSucceededFuture(translation.withLockedValue { $0[key] } ?? ChainState())
    }

    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        translation.withLockedValue { states in
            var state = states[key] ?? ChainState()
            changes.forEach { state.apply($0) }
            states[key] = state
        }
        return callerLoop.makeSucceededVoidFuture()
    }

    private let queues = NIOLockedValueBox<[UpstreamCredentialKey: [QueuedMessage]]>([:])

    func queuedMessages(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<[QueuedMessage]> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        return callerLoop.makeSucceededFuture(queues.withLockedValue { $0[key] ?? [] })
    }

    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queues.withLockedValue { $0[key, default: []].append(message) }
        return callerLoop.makeSucceededVoidFuture()
    }

    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queues.withLockedValue { $0[key]?.removeAll { $0.sequence == sequence } }
        return callerLoop.makeSucceededVoidFuture()
    }

    private let routes = NIOLockedValueBox<[String: String]>([:])

    func routeOverrides() -> EventLoopFuture<[String: String]> {
        callerLoop.makeSucceededFuture(routes.withLockedValue { $0 })
    }

    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        routes.withLockedValue { $0[identity.value] = upstream }
        return callerLoop.makeSucceededVoidFuture()
    }

    func close() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
}

/// The embedded default: one SQLite file. Its writes (and the reads that must see them) go through one
/// ``SQLiteWriter`` with statements prepared once, its WAL checkpoints through ``SQLiteCheckpoints`` on a second
/// connection, and translation changes through ``SeqNoReservations``. Futures complete on the caller's event loop.
final class SQLiteStateStore: StateStore {
    /// The statements the writer keeps prepared.
    struct Statements: Sendable {
        let upsertState: SQLiteWriter.Statement
        let deleteState: SQLiteWriter.Statement
        let selectState: SQLiteWriter.Statement
        let enqueue: SQLiteWriter.Statement
        let dequeue: SQLiteWriter.Statement
        let selectQueue: SQLiteWriter.Statement
        let upsertPassword: SQLiteWriter.Statement
        let selectPasswords: SQLiteWriter.Statement
        let upsertRoute: SQLiteWriter.Statement
        let deleteRoute: SQLiteWriter.Statement
        let selectRoutes: SQLiteWriter.Statement

        init(_ writer: SQLiteWriter) throws {
            upsertState = try writer.prepare(
                """
                INSERT INTO translation_state (upstream, identity, key, value) VALUES (?, ?, ?, ?)
                ON CONFLICT(upstream, identity, key) DO UPDATE SET value = excluded.value
                """)
            deleteState = try writer.prepare(
                "DELETE FROM translation_state WHERE upstream = ? AND identity = ? AND key = ?")
            selectState = try writer.prepare(
                "SELECT key, value FROM translation_state WHERE upstream = ? AND identity = ?")
            enqueue = try writer.prepare(
                "INSERT INTO outage_queue (upstream, identity, sequence, frame) VALUES (?, ?, ?, ?)")
            dequeue = try writer.prepare(
                "DELETE FROM outage_queue WHERE upstream = ? AND identity = ? AND sequence = ?")
            selectQueue = try writer.prepare(
                "SELECT sequence, frame FROM outage_queue WHERE upstream = ? AND identity = ? ORDER BY sequence")
            upsertPassword = try writer.prepare(
                """
                INSERT INTO upstream_credentials (upstream, identity, password, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(upstream, identity) DO UPDATE SET password = excluded.password,
                    updated_at = excluded.updated_at
                """)
            selectPasswords = try writer.prepare("SELECT upstream, identity, password FROM upstream_credentials")
            upsertRoute = try writer.prepare(
                """
                INSERT INTO route_overrides (identity, upstream, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(identity) DO UPDATE SET upstream = excluded.upstream, updated_at = excluded.updated_at
                """)
            deleteRoute = try writer.prepare("DELETE FROM route_overrides WHERE identity = ?")
            selectRoutes = try writer.prepare("SELECT identity, upstream FROM route_overrides")
        }
    }

    let writer: SQLiteWriter
    let statements: Statements
    let checkpoints: SQLiteCheckpoints
    let reservations: SeqNoReservations
    /// Futures of callers that are not on an event loop complete here.
    private let eventLoop: EventLoop
    /// Rows of the outage queue by upstream and identity: a charger with none (nearly all) costs its session no
    /// query.
    private let queued: NIOLockedValueBox<[UpstreamCredentialKey: Int]>

    private init(
        writer: SQLiteWriter, statements: Statements, checkpoints: SQLiteCheckpoints, reservations: SeqNoReservations,
        eventLoop: EventLoop, queued: [UpstreamCredentialKey: Int]
    ) {
        self.writer = writer
        self.statements = statements
        self.checkpoints = checkpoints
        self.reservations = reservations
        self.eventLoop = eventLoop
        self.queued = NIOLockedValueBox(queued)
    }

    /// The caller's event loop: a future completed there needs no hop back.
    private var callerLoop: EventLoop { MultiThreadedEventLoopGroup.currentEventLoop ?? eventLoop }

    /// Whose translation state rows are: ``SeqNoReservations`` keeps its marks per upstream and identity.
    private static func owner(upstream: String, identity: String) -> String { upstream + "\u{0}" + identity }

    /// Commits the writer has made (group commits), for tests.
    var commits: Int { writer.commits }

    /// Opens (and creates or migrates) the store; `defaultUpstream` owns the CSMS-set passwords of a store written
    /// before upstreams had names. `seqNoBlock`: seqNos reserved per write (``SeqNoReservations``).
    static func open(
        path: String, eventLoop: EventLoop, logger: Logger,
        defaultUpstream: String = UpstreamConfiguration.defaultName, seqNoBlock: Int64 = 1,
        checkpoints checkpointConfiguration: SQLiteCheckpoints.Configuration = .init()
    ) async throws -> SQLiteStateStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // The file holds CSMS-issued credentials: owner-only.
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        // This connection creates and migrates the tables, then stays as the checkpoint connection.
        let connection = try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: .singleton, logger: logger, on: eventLoop)
        _ = try await connection.query("PRAGMA journal_mode=WAL", [])
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
        let checkpoints = try await SQLiteCheckpoints.using(
            connection, path: path, configuration: checkpointConfiguration, logger: logger)
        let writer: SQLiteWriter
        let statements: Statements
        do {
            writer = try SQLiteWriter(path: path)
            statements = try Statements(writer)
        } catch {
            try? await connection.close().get()
            throw error
        }
        writer.start()
        checkpoints.start()
        return SQLiteStateStore(
            writer: writer, statements: statements, checkpoints: checkpoints,
            reservations: SeqNoReservations(block: seqNoBlock), eventLoop: eventLoop, queued: queued)
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
            return callerLoop.makeSucceededFuture([])
        }
        let select = statements.selectQueue
        return writer.submit(on: callerLoop) { connection in
            try connection.rows(select, [.text(upstream), .text(identity.value)]).compactMap { row in
                guard case .integer(let sequence) = row[0], case .text(let text) = row[1] else { return nil }
                return QueuedMessage(sequence: Int64(sequence), text: text)
            }
        }
    }

    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        // Counted first: a message being written is read back by a session that starts meanwhile.
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        queued.withLockedValue { $0[key, default: 0] += 1 }
        let insert = statements.enqueue
        return writer.submit(on: callerLoop) { connection in
            try connection.run(
                insert,
                [.text(upstream), .text(identity.value), .integer(Int(message.sequence)), .text(message.text)])
        }.map { _ in }
    }

    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        let delete = statements.dequeue
        return writer.submit(on: callerLoop) { connection in
            try connection.run(delete, [.text(upstream), .text(identity.value), .integer(Int(sequence))])
        }.map { [queued] removed in
            guard removed > 0 else { return }
            queued.withLockedValue { counts in
                counts[key] = (counts[key] ?? 1) - 1
                if counts[key] ?? 0 <= 0 { counts[key] = nil }
            }
        }
    }

    /// A row's key names its edge (``EdgeStateChange/key``): rows written before chains existed are the first edge's.
    /// Read by the writer, after every write queued before it; with seqNo blocks, the reservations the session
    /// needs are written in the same piece of work.
    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState> {
        let (select, upsert) = (statements.selectState, statements.upsertState)
        let reservations = self.reservations
        let name = identity.value
        let owner = Self.owner(upstream: upstream, identity: name)
        return writer.submit(on: callerLoop) { connection in
            var state = ChainState()
            for row in try connection.rows(select, [.text(upstream), .text(name)]) {
                guard case .text(let key) = row[0], case .text(let text) = row[1],
                    let json = JSONValue(parsing: Array(text.utf8)), let change = EdgeStateChange(key: key, json: json)
                else { continue }
                state.apply(change)
            }
            let writes = reservations.read(state, owner: owner)
            do {
                for case .upsert(let key, let value) in writes {
                    try connection.run(upsert, [.text(upstream), .text(name), .text(key), .text(value)])
                }
            } catch {
                reservations.failed(writes, owner: owner)
                throw error
            }
            return state
        }
    }

    func routeOverrides() -> EventLoopFuture<[String: String]> {
        let select = statements.selectRoutes
        return writer.submit(on: callerLoop) { connection in
            var routes: [String: String] = [:]
            for row in try connection.rows(select) {
                if case .text(let identity) = row[0], case .text(let upstream) = row[1] {
                    routes[identity] = upstream
                }
            }
            return routes
        }
    }

    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        let (upsert, delete) = (statements.upsertRoute, statements.deleteRoute)
        let name = identity.value
        let updatedAt = ISO8601DateFormatter().string(from: Date())
        return writer.submit(on: callerLoop) { connection in
            if let upstream {
                try connection.run(upsert, [.text(name), .text(upstream), .text(updatedAt)])
            } else {
                try connection.run(delete, [.text(name)])
            }
        }.map { _ in }
    }

    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]> {
        let select = statements.selectPasswords
        return writer.submit(on: callerLoop) { connection in
            var passwords: [UpstreamCredentialKey: String] = [:]
            for row in try connection.rows(select) {
                if case .text(let upstream) = row[0], case .text(let identity) = row[1],
                    case .text(let password) = row[2]
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
        let upsert = statements.upsertPassword
        let updatedAt = ISO8601DateFormatter().string(from: Date())
        return writer.submit(on: callerLoop) { connection in
            try connection.run(
                upsert, [.text(upstream), .text(identity.value), .text(password), .text(updatedAt)])
        }.map { _ in }
    }

    /// The rows ``SeqNoReservations`` asks for, in one piece of the writer's next transaction (with every other
    /// session's writes waiting then: group commit). A change that needs no row completes at once, on the
    /// caller's loop.
    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        let loop = callerLoop
        let name = identity.value
        let owner = Self.owner(upstream: upstream, identity: name)
        let writes = reservations.writes(for: changes, owner: owner)
        guard !writes.isEmpty else { return loop.makeSucceededVoidFuture() }
        let (upsert, delete) = (statements.upsertState, statements.deleteState)
        return writer.submit(on: loop) { connection in
            for write in writes {
                switch write {
                case .upsert(let key, let value):
                    try connection.run(upsert, [.text(upstream), .text(name), .text(key), .text(value)])
                case .delete(let key): try connection.run(delete, [.text(upstream), .text(name), .text(key)])
                }
            }
        }.flatMapErrorThrowing { [reservations] error in
            reservations.failed(writes, owner: owner)
            throw error
        }
    }

    /// Stops the checkpoints, then lets the writer commit what is queued and close its connection.
    func close() -> EventLoopFuture<Void> {
        let writer = self.writer
        return checkpoints.close().flatMap { [eventLoop] in
            let promise = eventLoop.makePromise(of: Void.self)
            Thread {
                writer.stop()
                promise.succeed()
            }.start()
            return promise.futureResult
        }
    }
}
