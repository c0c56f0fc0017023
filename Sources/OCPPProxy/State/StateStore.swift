import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPP
import OCPPRules
import SQLiteNIO

/// What the proxy keeps across restarts. A protocol with an embedded SQLite implementation (the default)
/// beside an in-memory one for tests and for configurations without `state.sqlite`.
protocol StateStore: Sendable {
    /// Every upstream password a CSMS has set, by identity.
    func upstreamPasswords() async throws -> [String: String]
    /// Persists a CSMS-set upstream password; completes once it is durable.
    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void>
    /// What translation remembers about a charger (transactions, seqNos, remote starts, request ids).
    func translationState(for identity: ChargerIdentity) -> EventLoopFuture<TranslationState>
    /// Persists translation state changes in order; completes once they are durable.
    func save(_ changes: [StateChange], for identity: ChargerIdentity) -> EventLoopFuture<Void>
    func close() async
}

final class MemoryStateStore: StateStore {
    private let passwords = NIOLockedValueBox<[String: String]>([:])
    private let eventLoop: EventLoop

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func upstreamPasswords() async throws -> [String: String] { passwords.withLockedValue { $0 } }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        passwords.withLockedValue { $0[identity.value] = password }
        return eventLoop.makeSucceededVoidFuture()
    }

    private let translation = NIOLockedValueBox<[String: TranslationState]>([:])

    func translationState(for identity: ChargerIdentity) -> EventLoopFuture<TranslationState> {
        eventLoop.makeSucceededFuture(translation.withLockedValue { $0[identity.value] } ?? TranslationState())
    }

    func save(_ changes: [StateChange], for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        translation.withLockedValue { states in
            var state = states[identity.value] ?? TranslationState()
            changes.forEach { state.apply($0) }
            states[identity.value] = state
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    func close() async {}
}

/// The embedded default: one SQLite file, written through SQLiteNIO's thread pool.
final class SQLiteStateStore: StateStore {
    private let connection: SQLiteConnection

    private init(connection: SQLiteConnection) {
        self.connection = connection
    }

    static func open(path: String, eventLoop: EventLoop, logger: Logger) async throws -> SQLiteStateStore {
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
        _ = try await connection.query("PRAGMA synchronous=FULL", [])
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS upstream_credentials (
                identity TEXT PRIMARY KEY NOT NULL,
                password TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """, [])
        // One row per remembered item (a transaction, a counter, ...): a change replaces its row.
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS translation_state (
                identity TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (identity, key)
            )
            """, [])
        return SQLiteStateStore(connection: connection)
    }

    func translationState(for identity: ChargerIdentity) -> EventLoopFuture<TranslationState> {
        connection.query("SELECT value FROM translation_state WHERE identity = ?", [.text(identity.value)]).map {
            rows in
            var state = TranslationState()
            for row in rows {
                guard let text = row.column("value")?.string, let json = JSONValue(parsing: Array(text.utf8)),
                    let change = StateChange(json: json)
                else { continue }
                state.apply(change)
            }
            return state
        }
    }

    func save(_ changes: [StateChange], for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        // The last change of each key is the one that counts; one statement each for upserts and deletes, so
        // that every write is atomic on the connection other sessions share.
        var latest: [String: StateChange] = [:]
        var order: [String] = []
        for change in changes {
            if latest.updateValue(change, forKey: change.key) == nil { order.append(change.key) }
        }
        var upserts: [SQLiteData] = []
        var deletes: [SQLiteData] = []
        for key in order {
            if case .forgetTransaction = latest[key]! {
                deletes.append(.text(key))
            } else {
                upserts += [.text(identity.value), .text(key), .text(latest[key]!.json.jsonText)]
            }
        }
        var future = connection.eventLoop.makeSucceededVoidFuture()
        if !upserts.isEmpty {
            let rows = Array(repeating: "(?, ?, ?)", count: upserts.count / 3).joined(separator: ", ")
            future = connection.query(
                "INSERT INTO translation_state (identity, key, value) VALUES \(rows) ON CONFLICT(identity, key) DO UPDATE SET value = excluded.value",
                upserts
            ).map { _ in }
        }
        if !deletes.isEmpty {
            let marks = Array(repeating: "?", count: deletes.count).joined(separator: ", ")
            let connection = self.connection
            future = future.flatMap {
                connection.query(
                    "DELETE FROM translation_state WHERE identity = ? AND key IN (\(marks))",
                    [.text(identity.value)] + deletes
                ).map { _ in }
            }
        }
        return future
    }

    func upstreamPasswords() async throws -> [String: String] {
        let rows = try await connection.query("SELECT identity, password FROM upstream_credentials", [])
        var passwords: [String: String] = [:]
        for row in rows {
            if let identity = row.column("identity")?.string, let password = row.column("password")?.string {
                passwords[identity] = password
            }
        }
        return passwords
    }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        connection.query(
            """
            INSERT INTO upstream_credentials (identity, password, updated_at) VALUES (?, ?, ?)
            ON CONFLICT(identity) DO UPDATE SET password = excluded.password, updated_at = excluded.updated_at
            """,
            [.text(identity.value), .text(password), .text(ISO8601DateFormatter().string(from: Date()))]
        ).map { _ in }
    }

    func close() async {
        try? await connection.close()
    }
}

/// The upstream password to use for each charger: a CSMS-set one (persisted) wins over the configured one.
final class UpstreamCredentials: @unchecked Sendable {
    private let configured: [ChargerIdentity: ChargerRegistration]
    private let overrides: NIOLockedValueBox<[String: String]>
    private let store: StateStore

    init(configured: [ChargerIdentity: ChargerRegistration], persisted: [String: String], store: StateStore) {
        self.configured = configured
        self.overrides = NIOLockedValueBox(persisted)
        self.store = store
    }

    func password(for identity: ChargerIdentity) -> String? {
        overrides.withLockedValue { $0[identity.value] } ?? configured[identity]?.upstreamPassword
    }

    /// Persists first; the new password is used from the charger's next upstream connection on.
    func update(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        store.setUpstreamPassword(password, for: identity).map {
            self.overrides.withLockedValue { $0[identity.value] = password }
        }
    }
}
