import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SQLiteNIO

/// WAL checkpoints of a store's SQLite file, from a connection of their own (SQLiteNIO's, on its thread pool), so
/// that the writer's commits never run one and never wait on its `fsync` (``SQLiteWriter`` sets
/// `wal_autocheckpoint=0`). Every `interval` a PASSIVE checkpoint copies what it can without taking the write lock;
/// the writer starts the WAL over once a checkpoint has copied all of it, which under a steady load never happens
/// (see ``checkpoint()``). Once the WAL has grown past `truncateAbove` bytes, a PASSIVE checkpoint is followed by a
/// TRUNCATE, which waits for the writer between two of its commits, copies what came during the PASSIVE one and
/// empties the file: the writer waits for that part only (two `fsync`s of little data).
final class SQLiteCheckpoints: Sendable {
    /// When and how checkpoints run.
    struct Configuration: Sendable {
        /// Between two checkpoints. Each complete one costs the writer one small `fsync` when it starts the WAL
        /// over (SQLite syncs a new WAL header), so not much more often than needed.
        var interval: TimeAmount = .seconds(5)
        /// A WAL larger than this at a checkpoint's start is checkpointed with TRUNCATE.
        var truncateAbove: Int64 = 64 << 20
    }

    /// What one checkpoint did (`PRAGMA wal_checkpoint`'s row).
    struct Outcome: Equatable, Sendable {
        enum Mode: String, Sendable {
            case passive = "PASSIVE"
            case truncate = "TRUNCATE"
        }
        var mode: Mode
        /// True when it could not finish (a TRUNCATE that met a busy writer); the next one goes on.
        var busy: Bool
        /// Frames in the WAL, and how many of them are now in the database file.
        var walFrames: Int
        var checkpointedFrames: Int
    }

    private let connection: SQLiteConnection
    private let walPath: String
    private let configuration: Configuration
    private let logger: Logger
    private let task: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    init(connection: SQLiteConnection, path: String, configuration: Configuration, logger: Logger) {
        self.connection = connection
        self.walPath = path + "-wal"
        self.configuration = configuration
        self.logger = logger
    }

    /// Makes `connection` (to `path`, in WAL mode) the checkpoint connection.
    static func using(
        _ connection: SQLiteConnection, path: String, configuration: Configuration, logger: Logger
    ) async throws -> SQLiteCheckpoints {
        // This connection writes no transactions; its checkpoints sync the WAL before copying it and the
        // database file after (NORMAL and FULL both do), which is what makes a later power loss lose nothing
        // that was checkpointed.
        _ = try await connection.query("PRAGMA synchronous=NORMAL", [])
        _ = try await connection.query("PRAGMA wal_autocheckpoint=0", [])
        // A TRUNCATE waits (on the thread pool, not an event loop) for the writer's transaction to end rather
        // than giving up at once; the writer's own transactions are short.
        _ = try await connection.query("PRAGMA busy_timeout=1000", [])
        return SQLiteCheckpoints(connection: connection, path: path, configuration: configuration, logger: logger)
    }

    /// Runs a checkpoint every `interval` until ``close()``.
    func start() {
        let interval = configuration.interval
        let repeated = connection.eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) {
            [self] _ in
            checkpoint().map { _ in }.recover { [logger] error in
                logger.warning("state store: checkpoint failed: \(error)")
            }
        }
        task.withLockedValue { $0 = repeated }
    }

    /// One checkpoint now: PASSIVE; past the bound, a TRUNCATE right after it.
    ///
    /// Under a steady load the WAL never starts over by itself: a PASSIVE checkpoint copies the frames committed
    /// before it began, and by the time its `fsync`s are done the writer has appended more, so the writer never
    /// finds the WAL fully copied (measured: 5 MB/s of WAL at 1,500 translated CALLs/s). A TRUNCATE empties it
    /// but holds the writer back until it has copied and synced the rest; run straight after a PASSIVE, the rest
    /// is what the writer committed during that one checkpoint, not everything since the last.
    func checkpoint() -> EventLoopFuture<Outcome> {
        let size = (try? FileManager.default.attributesOfItem(atPath: walPath)[.size] as? NSNumber)?.int64Value ?? 0
        let passive = checkpoint(.passive)
        guard size > configuration.truncateAbove else { return passive }
        return passive.flatMap { [self] _ in checkpoint(.truncate) }
    }

    func checkpoint(_ mode: Outcome.Mode) -> EventLoopFuture<Outcome> {
        logger.debug("state store: checkpoint started", metadata: ["mode": "\(mode.rawValue)"])
        return connection.query("PRAGMA wal_checkpoint(\(mode.rawValue))", []).map { [logger] rows in
            let row = rows.first
            let outcome = Outcome(
                mode: mode, busy: (row?.column("busy")?.integer ?? 0) != 0,
                walFrames: row?.column("log")?.integer ?? 0,
                checkpointedFrames: row?.column("checkpointed")?.integer ?? 0)
            logger.debug(
                "state store: checkpoint finished",
                metadata: [
                    "mode": "\(mode.rawValue)", "busy": "\(outcome.busy)", "walFrames": "\(outcome.walFrames)",
                    "checkpointed": "\(outcome.checkpointedFrames)",
                ])
            return outcome
        }
    }

    /// Stops the timer (waiting for a checkpoint that runs) and closes the connection.
    func close() -> EventLoopFuture<Void> {
        let eventLoop = connection.eventLoop
        let promise = eventLoop.makePromise(of: Void.self)
        if let task = task.withLockedValue({ $0 }) {
            task.cancel(promise: promise)
        } else {
            promise.succeed()
        }
        return promise.futureResult.flatMap { [connection] in connection.close() }
    }
}
