import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPP
import SQLiteNIO

/// What the proxy keeps across restarts. A protocol with an embedded SQLite implementation (the default)
/// beside an in-memory one for tests and for configurations without `state.sqlite`.
protocol StateStore: Sendable {
    /// Every upstream password a CSMS has set, by identity.
    func upstreamPasswords() async throws -> [String: String]
    /// Persists a CSMS-set upstream password; completes once it is durable.
    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void>
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
        return SQLiteStateStore(connection: connection)
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
