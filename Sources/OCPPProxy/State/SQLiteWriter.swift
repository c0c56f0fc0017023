import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SQLiteNIO
// SQLiteNIO's own build of SQLite: SQLiteNIO prepares a statement per query and has no way to keep one, so the
// writer drives the same library through its C interface for the statements it reuses.
import VaporCSQLite

/// The one connection that writes a store's SQLite file, on a thread of its own. Work queued from any event loop
/// runs in arrival order; everything waiting when the thread wakes runs in one transaction (group commit: a
/// thousand chargers' writes cost a few commits), each piece in a savepoint of its own so that one failing piece
/// fails only its caller. Statements are prepared once, when the file opens, and reset after each use.
///
/// Checkpoints are not its business: `wal_autocheckpoint=0`, so a commit never runs one and never waits on its
/// `fsync`; ``SQLiteCheckpoints`` runs them from another connection. A caller's future completes on the caller's
/// event loop: the thread hands the result straight back, with no hop through a loop of the store's.
final class SQLiteWriter: @unchecked Sendable {
    /// A statement prepared for the life of the connection. Used only on the writer's thread once it runs.
    final class Statement: @unchecked Sendable {
        fileprivate let handle: OpaquePointer
        let sql: String

        fileprivate init(handle: OpaquePointer, sql: String) {
            self.handle = handle
            self.sql = sql
        }

        /// How often it has run since it was prepared (SQLite's own count, `SQLITE_STMTSTATUS_RUN`).
        var runs: Int { Int(sqlite_nio_sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_RUN, 0)) }
    }

    /// What a piece of work sees of the connection: its prepared statements, run with values bound in order.
    struct Connection {
        fileprivate let database: OpaquePointer

        /// Runs a statement that returns no rows; the number of rows it changed.
        @discardableResult
        func run(_ statement: Statement, _ binds: [SQLiteData] = []) throws -> Int {
            try bind(statement, binds)
            defer { sqlite_nio_sqlite3_reset(statement.handle) }
            var code = sqlite_nio_sqlite3_step(statement.handle)
            while code == SQLITE_ROW { code = sqlite_nio_sqlite3_step(statement.handle) }
            guard code == SQLITE_DONE else { throw SQLiteWriter.error(code, database, statement) }
            return Int(sqlite_nio_sqlite3_changes(database))
        }

        /// Runs a statement and returns its rows, each as its columns' values in order.
        func rows(_ statement: Statement, _ binds: [SQLiteData] = []) throws -> [[SQLiteData]] {
            try bind(statement, binds)
            defer { sqlite_nio_sqlite3_reset(statement.handle) }
            var rows: [[SQLiteData]] = []
            let count = sqlite_nio_sqlite3_column_count(statement.handle)
            while true {
                let code = sqlite_nio_sqlite3_step(statement.handle)
                if code == SQLITE_DONE { return rows }
                guard code == SQLITE_ROW else { throw SQLiteWriter.error(code, database, statement) }
                rows.append((0..<count).map { column(statement.handle, $0) })
            }
        }

        /// Prepares, runs and finalizes a statement for this call only (a pragma): its rows.
        func rows(once sql: String) throws -> [[SQLiteData]] {
            var handle: OpaquePointer?
            let code = sqlite_nio_sqlite3_prepare_v3(database, sql, -1, 0, &handle, nil)
            guard code == SQLITE_OK, let handle else {
                throw Failure(code: code, message: SQLiteWriter.message(database), sql: sql)
            }
            let statement = Statement(handle: handle, sql: sql)
            defer { sqlite_nio_sqlite3_finalize(handle) }
            return try rows(statement)
        }

        /// Statements the connection holds prepared now.
        var preparedStatements: Int {
            var count = 0
            var statement = sqlite_nio_sqlite3_next_stmt(database, nil)
            while let current = statement {
                count += 1
                statement = sqlite_nio_sqlite3_next_stmt(database, current)
            }
            return count
        }

        private func bind(_ statement: Statement, _ binds: [SQLiteData]) throws {
            let handle = statement.handle
            for (offset, value) in binds.enumerated() {
                let index = Int32(offset + 1)
                let code: Int32
                switch value {
                case .text(let text):
                    code = sqlite_nio_sqlite3_bind_text64(
                        handle, index, text, UInt64(text.utf8.count), transient, UInt8(SQLITE_UTF8))
                case .integer(let integer):
                    code = sqlite_nio_sqlite3_bind_int64(handle, index, Int64(integer))
                case .float(let float):
                    code = sqlite_nio_sqlite3_bind_double(handle, index, float)
                case .null:
                    code = sqlite_nio_sqlite3_bind_null(handle, index)
                case .blob(let buffer):
                    code = buffer.withUnsafeReadableBytes {
                        sqlite_nio_sqlite3_bind_blob64(handle, index, $0.baseAddress, UInt64($0.count), transient)
                    }
                }
                guard code == SQLITE_OK else { throw SQLiteWriter.error(code, database, statement) }
            }
        }

        private func column(_ handle: OpaquePointer, _ index: Int32) -> SQLiteData {
            switch sqlite_nio_sqlite3_column_type(handle, index) {
            case SQLITE_INTEGER: return .integer(Int(sqlite_nio_sqlite3_column_int64(handle, index)))
            case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(handle, index))
            case SQLITE_TEXT:
                guard let text = sqlite_nio_sqlite3_column_text(handle, index) else { return .null }
                return .text(String(cString: text))
            case SQLITE_BLOB:
                let count = Int(sqlite_nio_sqlite3_column_bytes(handle, index))
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                if let bytes = sqlite_nio_sqlite3_column_blob(handle, index), count > 0 {
                    buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
                }
                return .blob(buffer)
            default: return .null
            }
        }
    }

    /// An SQLite result code other than success, with SQLite's message and the statement that got it.
    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var message: String
        var sql: String

        var description: String { "SQLite error \(code): \(message) (\(sql))" }
    }

    private struct Work {
        var run: (Connection) throws -> Void
        var finish: (Error?) -> Void
    }

    private let database: OpaquePointer
    private var statements: [Statement] = []
    private var begin: Statement!
    private var commit: Statement!
    private var rollback: Statement!
    private var savepoint: Statement!
    private var release: Statement!
    private var rollbackToSavepoint: Statement!
    /// 1 while work waits or the writer is asked to stop: the thread sleeps on 0.
    private let signal = ConditionLock(value: 0)
    private var queue: [Work] = []
    private var stopping = false
    private let stopped = ConditionLock(value: false)
    /// Commits so far (group commits: one per wake-up that found writes), for tests and metrics.
    private let commitCount = NIOLockedValueBox(0)

    /// Opens the writer's connection to `path` (an existing database in WAL mode) and prepares `statements`;
    /// the thread starts with ``start()``, once the caller has prepared what it reuses.
    init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
        let code = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_close_v2(handle) }
            throw Failure(code: code, message: "cannot open \(path)", sql: "")
        }
        database = handle
        do {
            // A checkpoint (ours, or a TRUNCATE of SQLiteCheckpoints) may hold the file's write lock for a while.
            sqlite_nio_sqlite3_busy_timeout(handle, 30_000)
            // WAL with synchronous=NORMAL: a commit is in the WAL (the operating system's page cache) when it
            // returns, so a killed process (SIGKILL) loses nothing; only a power loss may lose the last commits
            // since the last checkpoint synced the WAL. FULL would fsync every commit. The pragma is per
            // connection: the writer's commits follow it, the checkpoint connection syncs what it checkpoints.
            for pragma in ["PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=0"] {
                try execute(pragma)
            }
            begin = try prepare("BEGIN IMMEDIATE")
            commit = try prepare("COMMIT")
            rollback = try prepare("ROLLBACK")
            savepoint = try prepare("SAVEPOINT work")
            release = try prepare("RELEASE work")
            rollbackToSavepoint = try prepare("ROLLBACK TO work")
        } catch {
            close()
            throw error
        }
    }

    /// Prepares a statement the writer keeps: call before ``start()``.
    func prepare(_ sql: String) throws -> Statement {
        var handle: OpaquePointer?
        let code = sqlite_nio_sqlite3_prepare_v3(database, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw Failure(code: code, message: Self.message(database), sql: sql)
        }
        let statement = Statement(handle: handle, sql: sql)
        statements.append(statement)
        return statement
    }

    private func execute(_ sql: String) throws {
        let code = sqlite_nio_sqlite3_exec(database, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw Failure(code: code, message: Self.message(database), sql: sql) }
    }

    func start() {
        let thread = Thread { [self] in
            // Named from the thread itself, for perf, top and strace: Foundation on Linux does not pass a name set
            // before start() on to the system (and Linux keeps 15 bytes of one).
            Thread.current.name = "state-writer"
            run()
        }
        thread.start()
    }

    /// Queues `work` for the writer; the future completes on `eventLoop` once the transaction holding it has
    /// committed (its value then durable as far as ``SQLiteWriter`` promises) or with the error that failed it.
    func submit<Value: Sendable>(
        on eventLoop: EventLoop, _ work: @escaping @Sendable (Connection) throws -> Value
    ) -> EventLoopFuture<Value> {
        let promise = eventLoop.makePromise(of: Value.self)
        let result = ResultBox<Value>()
        let item = Work(
            run: { result.value = try work($0) },
            finish: { error in
                if let error {
                    promise.fail(error)
                } else if let value = result.value {
                    promise.succeed(value)
                }
            })
        signal.lock()
        let accepted = !stopping
        if accepted { queue.append(item) }
        signal.unlock(withValue: 1)
        if !accepted { promise.fail(Failure(code: SQLITE_MISUSE, message: "the state store is closed", sql: "")) }
        return promise.futureResult
    }

    /// Commits so far: a test sees group commit in it.
    var commits: Int { commitCount.withLockedValue { $0 } }

    /// Runs what is queued, then closes the connection; blocks the caller until then (off event loops).
    func stop() {
        signal.lock()
        stopping = true
        signal.unlock(withValue: 1)
        stopped.lock(whenValue: true)
        stopped.unlock()
    }

    private func run() {
        while true {
            signal.lock(whenValue: 1)
            let batch = queue
            queue = []
            let done = stopping && batch.isEmpty
            signal.unlock(withValue: stopping ? 1 : 0)
            if done { break }
            flush(batch)
        }
        close()
        stopped.lock()
        stopped.unlock(withValue: true)
    }

    private func flush(_ batch: [Work]) {
        let connection = Connection(database: database)
        do {
            try connection.run(begin)
        } catch {
            for work in batch { work.finish(error) }
            return
        }
        var failures: [Error?] = Array(repeating: nil, count: batch.count)
        for (index, work) in batch.enumerated() {
            do {
                try connection.run(savepoint)
                try work.run(connection)
                try connection.run(release)
            } catch {
                failures[index] = error
                _ = try? connection.run(rollbackToSavepoint)
                _ = try? connection.run(release)
            }
        }
        do {
            try connection.run(commit)
            commitCount.withLockedValue { $0 += 1 }
        } catch {
            _ = try? connection.run(rollback)
            for work in batch { work.finish(error) }
            return
        }
        for (work, failure) in zip(batch, failures) { work.finish(failure) }
    }

    private func close() {
        for statement in statements { sqlite_nio_sqlite3_finalize(statement.handle) }
        statements = []
        sqlite_nio_sqlite3_close_v2(database)
    }

    fileprivate static func error(_ code: Int32, _ database: OpaquePointer, _ statement: Statement) -> Failure {
        Failure(code: code, message: message(database), sql: statement.sql)
    }

    fileprivate static func message(_ database: OpaquePointer) -> String {
        sqlite_nio_sqlite3_errmsg(database).map { String(cString: $0) } ?? "unknown error"
    }
}

/// Where a piece of work leaves its value for the completion, both on the writer's thread.
private final class ResultBox<Value>: @unchecked Sendable {
    var value: Value?
}

/// SQLite copies a value bound with this destructor before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
