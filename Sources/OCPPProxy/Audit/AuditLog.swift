import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import OCPP
import OCPPAudit
import OCPPAuditRedaction
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The audit log of one proxy process. Any thread (an event loop) hands it entries with ``record(_:)``, which only
/// queues them; one dedicated thread takes everything queued at once, turns it into records (payloads parsed and
/// redacted), appends them to the current segment and `fsync`s once per group (group commit). It also writes the
/// signed checkpoints (every `checkpointInterval`, at rotation, at shutdown), the index of each closed segment, and
/// deletes segments past `retention`.
///
/// When the writer falls behind or cannot write (disk full), ``AuditConfiguration/onBackpressure`` decides: `block`
/// makes ``record(_:)`` wait for room; `refuse-new` keeps recording the sessions already connected (up to twice the
/// bound) and makes ``admitsNewSessions`` false, so admission answers 503; `drop-and-count` drops. A dropped record
/// is counted and the log says so itself: a `gap` record with the number is written as soon as it can be. A failed
/// commit is retried every second after reopening the directory, with the records that did not reach the disk.
final class AuditLog: @unchecked Sendable {
    let configuration: AuditConfiguration
    let metrics: AuditMetrics
    private let logger: Logger
    private let builder: AuditRecordBuilder
    /// Confined to the writer thread once it runs (and to the caller of ``open`` before).
    private var writer: SegmentWriter?
    private let signer: AuditSigner

    // Shared between recorders and the writer, under `condition`.
    private let condition = NSCondition()
    private var queue: [AuditEntry] = []
    private var dropped = 0
    private var stopping = false
    private var stopped = false
    private var failing = false
    private var thread: Thread?
    private let finished = NSCondition()
    private var done = false

    /// Records of a commit that failed and are not on disk, retried before anything newer.
    private var retry: [AuditEntry] = []
    private var lastRetention: Date = .distantPast
    /// The boot id: the first half of every session id of this process.
    let bootID: String

    private init(
        configuration: AuditConfiguration, writer: SegmentWriter, signer: AuditSigner, redactor: AuditRedactor,
        metrics: AuditMetrics, logger: Logger
    ) {
        self.configuration = configuration
        self.writer = writer
        self.signer = signer
        self.metrics = metrics
        self.logger = logger
        self.builder = AuditRecordBuilder(redactor: redactor, node: configuration.node)
        var random = SystemRandomNumberGenerator()
        bootID = String(random.next() & 0xFFFF_FFFF, radix: 16)
    }

    /// Reads (or makes) the keys and opens the directory, reading back the last segment; every failure is one line
    /// naming the key.
    static func open(configuration: AuditConfiguration, metrics: ProxyMetrics, logger: Logger) throws(StartupError)
        -> AuditLog
    {
        let signer: AuditSigner
        if FileManager.default.fileExists(atPath: configuration.signingKey) {
            do {
                signer = try AuditKeys.loadPrivate(path: configuration.signingKey)
            } catch {
                throw StartupError("audit.signingKey: \(error)")
            }
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: (configuration.signingKey as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true)
                signer = try AuditKeys.generate(out: configuration.signingKey)
            } catch {
                throw StartupError("audit.signingKey: cannot create \(configuration.signingKey): \(error)")
            }
            logger.notice(
                "made a new audit signing key; verify the log with its public key",
                metadata: ["key": "\(configuration.signingKey)", "public": "\(configuration.signingKey).pub"])
        }
        let key: [UInt8]
        switch configuration.pseudonymKey {
        case .text(let text):
            key = Array(text.utf8)
        case .file(let path):
            do {
                key = try Self.pseudonymKey(path: path, logger: logger)
            } catch {
                throw StartupError("audit.pseudonymKeyFile: \(error)")
            }
        }
        let writer: SegmentWriter
        do {
            writer = try openWriter(configuration, signer: signer, logger: logger)
        } catch {
            throw StartupError("audit.dir: cannot open \(configuration.directory): \(error)")
        }
        let log = AuditLog(
            configuration: configuration, writer: writer, signer: signer,
            redactor: AuditRedactor(mode: configuration.payloads, pseudonymKey: key), metrics: AuditMetrics(metrics),
            logger: logger)
        log.indexClosedSegments()
        metrics.beforeExposition { [weak log] in log?.updateCheckpointAge() }
        return log
    }

    /// The directory's writer as configured, reading back its last segment; what it repaired is logged.
    private static func openWriter(_ configuration: AuditConfiguration, signer: AuditSigner, logger: Logger) throws
        -> SegmentWriter
    {
        let writer = try SegmentWriter(
            directory: configuration.directory, signer: signer,
            options: .init(
                maxBytes: configuration.rotateMaxBytes,
                maxAge: Double(configuration.rotateMaxAge.nanoseconds) / 1e9, node: configuration.node))
        for warning in writer.warnings { logger.warning("audit log: \(warning)") }
        return writer
    }

    /// The pseudonym key file's bytes; a missing file is made with 32 random bytes (hex), mode 0600.
    static func pseudonymKey(path: String, logger: Logger) throws -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.utf8.count >= 16 else {
                throw AuditKeyError.unreadable(path: path, reason: "the key must hold at least 16 characters")
            }
            return Array(text.utf8)
        }
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var random = SystemRandomNumberGenerator()
        let text = (0..<4).map { _ in
            let hex = String(random.next(), radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditIOError(path: path, operation: "create", code: errno) }
        defer { Glibc.close(fd) }
        let bytes = Array((text + "\n").utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw AuditIOError(path: path, operation: "write", code: errno)
        }
        logger.notice("made a new audit pseudonym key", metadata: ["key": "\(path)"])
        return Array(text.utf8)
    }

    // MARK: Recording (any thread)

    /// Queues one entry; never blocks unless `onBackpressure` is `block` and the queue is full. An `essential`
    /// entry (the process's own start and stop) is queued whatever the queue holds.
    func record(_ entry: AuditEntry, essential: Bool = false) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        if isFull(1) && !essential {
            switch configuration.onBackpressure {
            case .block:
                while isFull(1) && !stopped { condition.wait() }
                if stopped { return }
            case .refuseNew where !isFull(2):
                break
            case .refuseNew, .dropAndCount:
                dropped += 1
                metrics.dropped.increment()
                return
            }
        }
        queue.append(entry)
        queuedBytes += entry.weight
        if queue.count == 1 { condition.broadcast() }
        if isFull(1) { metrics.backpressure.set(Int64(1)) }
    }

    /// Whether the queue holds `factor` times its bound of records or of bytes (under `condition`).
    private func isFull(_ factor: Int) -> Bool {
        queue.count >= factor * configuration.queueRecords || queuedBytes >= factor * configuration.queueBytes
    }
    private var queuedBytes = 0

    /// Whether a new charger may be admitted: false under `refuse-new` while the writer is behind or failing.
    var admitsNewSessions: Bool {
        guard configuration.onBackpressure == .refuseNew else { return true }
        condition.lock()
        defer { condition.unlock() }
        return !(failing || isFull(1))
    }

    /// A session id unique in this node's log.
    func sessionID(_ generation: UInt64) -> String { "\(bootID)-\(generation)" }

    // MARK: The writer thread

    func start() {
        applyRetention()
        record(
            .event(
                "start",
                [
                    "payloads": .string(configuration.payloads.rawValue), "key": .string(signer.keyID),
                    "pid": .integer(Int64(getpid())),
                ]), essential: true)
        let thread = Thread { [self] in run() }
        thread.name = "audit-writer"
        self.thread = thread
        thread.start()
    }

    /// Writes a `stop` record and everything queued, closes the segment with a checkpoint, and ends the thread.
    func stop() {
        record(.event("stop", [:]), essential: true)
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.lock()
        while !done && thread != nil { finished.wait() }
        finished.unlock()
    }

    private func run() {
        let interval = Double(configuration.checkpointInterval.nanoseconds) / 1e9
        var lastCheckpoint = Date()
        while true {
            condition.lock()
            while queue.isEmpty && !stopping && retry.isEmpty
                && Date().timeIntervalSince(lastCheckpoint) < interval
            {
                _ = condition.wait(until: lastCheckpoint.addingTimeInterval(interval))
            }
            let ending = stopping
            var batch: [AuditEntry] = []
            var lost = 0
            // While a failed group waits to be written again, the queue stays where it is: it fills up to its
            // bound and backpressure does what it is configured to do, instead of the retry growing without bound.
            if retry.isEmpty {
                batch = queue
                queue.removeAll(keepingCapacity: true)
                queuedBytes = 0
                lost = dropped
                dropped = 0
                metrics.queueDepth.record(Int64(batch.count))
                condition.broadcast()
            }
            condition.unlock()

            if lost > 0 { batch.insert(AuditEntry(body: .gap(dropped: lost)), at: 0) }
            batch = retry + batch
            retry = []
            let now = Date()
            let checkpointDue = now.timeIntervalSince(lastCheckpoint) >= interval
            if write(batch, checkpoint: checkpointDue || ending, now: now) {
                if checkpointDue || ending { lastCheckpoint = now }
                setFailing(false)
            } else {
                setFailing(true)
                if ending {
                    let queued = condition.withLock { queue.count }
                    logger.error("audit log: \(retry.count + queued) records could not be written at shutdown")
                    break
                }
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            if ending {
                closeWriter()
                break
            }
            applyRetention()
        }
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        finished.lock()
        done = true
        finished.broadcast()
        finished.unlock()
    }

    /// Appends and commits one group; false (with the records that are not on disk in `retry`) when it failed.
    private func write(_ batch: [AuditEntry], checkpoint: Bool, now: Date) -> Bool {
        guard let writer = writerOrReopen() else {
            retry = batch
            return false
        }
        if batch.isEmpty && !(checkpoint && writer.recordsSinceCheckpoint > 0) {
            // Nothing unsigned: the log is covered by a checkpoint as of now (what the age metric tells).
            if writer.recordsSinceCheckpoint == 0 { coveredAt(now) }
            return true
        }
        let segmentBefore = writer.currentSegment
        let seqBefore = writer.lastSeq
        let bytesBefore = writer.bytesWritten
        let firstSeq = writer.lastSeq + 1
        let started = ContinuousClock.now
        var checkpointed = false
        do {
            for entry in batch {
                let ts = Date(timeIntervalSince1970: Double(entry.time) / 1e6)
                if case .frame(let frame) = entry.body {
                    try writer.appendMembers(ts: ts) { builder.writeMembers(frame, into: &$0) }
                } else {
                    try writer.append(builder.fields(entry), ts: ts)
                }
                // A long queue is written in groups of a few MiB: one buffer of a whole queue would be tens of MiB.
                if writer.pendingBytes >= Self.groupBytes { try writer.commit() }
            }
            if checkpoint && writer.recordsSinceCheckpoint > 0 {
                try writer.checkpoint(ts: now)
                checkpointed = true
            }
            try writer.commit()
        } catch {
            metrics.writeFailures.increment()
            logger.error("audit log: cannot write: \(error); retrying every second")
            self.writer = nil
            // What reached the disk is found when the directory is reopened; the rest is written again.
            retry = batch
            retryFrom = firstSeq
            return false
        }
        metrics.commits.record(ContinuousClock.now - started)
        if checkpointed { checkpointWritten(now) }
        if writer.recordsSinceCheckpoint == 0 { coveredAt(now) }
        metrics.records.increment(by: writer.lastSeq - seqBefore)
        metrics.bytes.increment(by: Int64(writer.bytesWritten - bytesBefore))
        if writer.currentSegment != segmentBefore { indexClosedSegments() }
        return true
    }

    /// The most bytes one commit writes.
    static let groupBytes = 4 << 20

    /// The seq the first record of `retry` had: records up to the reopened log's last seq reached the disk.
    private var retryFrom: Int64 = 0

    private func writerOrReopen() -> SegmentWriter? {
        if let writer { return writer }
        do {
            let reopened = try Self.openWriter(configuration, signer: signer, logger: logger)
            let written = Int(max(0, reopened.lastSeq - retryFrom + 1))
            if written > 0 { retry.removeFirst(min(written, retry.count)) }
            writer = reopened
            logger.notice("audit log: writing again", metadata: ["retried": "\(retry.count)"])
            return reopened
        } catch {
            return nil
        }
    }

    private func setFailing(_ value: Bool) {
        condition.lock()
        let changed = failing != value
        failing = value
        let behind = isFull(1)
        condition.unlock()
        metrics.backpressure.set(Int64(value || behind ? 1 : 0))
        if changed && value {
            logger.critical(
                "audit log cannot be written: \(configuration.onBackpressure == .refuseNew ? "new chargers are refused (503) until it can" : "records queue up to the bound")"
            )
        }
    }

    private func closeWriter() {
        guard let writer else { return }
        let segment = writer.currentSegment
        do {
            try writer.close(ts: Date())
            checkpointWritten(Date())
        } catch {
            logger.error("audit log: cannot close the segment: \(error)")
        }
        if let segment { writeIndex(segment) }
    }

    // MARK: Indexes and retention

    /// Every closed segment (all but the one being written) gets its index if it has none that still fits.
    private func indexClosedSegments() {
        guard let files = try? AuditSegments.list(directory: configuration.directory) else { return }
        let current = writer?.currentSegment
        for segment in files where segment != current && AuditIndex.read(forSegment: segment) == nil {
            writeIndex(segment)
        }
    }

    private func writeIndex(_ segment: String) {
        do {
            if let index = try AuditIndex.build(segment: segment) { try index.write(forSegment: segment) }
        } catch {
            logger.warning("audit log: cannot index \(segment): \(error)")
        }
    }

    /// Deletes closed segments whose newest record is older than `retention` (at most once a minute).
    private func applyRetention() {
        guard let retention = configuration.retention, Date().timeIntervalSince(lastRetention) >= 60 else { return }
        lastRetention = Date()
        let limit = AuditEntry.now() - retention.nanoseconds / 1000
        guard let files = try? AuditSegments.list(directory: configuration.directory) else { return }
        let current = writer?.currentSegment
        for segment in files.dropLast() where segment != current {
            guard let index = AuditIndex.read(forSegment: segment),
                let last = AuditTime.microseconds(index.lastTs), last < limit
            else { continue }
            unlink(segment)
            unlink(AuditIndex.path(forSegment: segment))
            logger.info("audit log: deleted a segment past audit.retention", metadata: ["segment": "\(segment)"])
        }
    }

    private func checkpointWritten(_ time: Date) {
        coveredAt(time)
        metrics.lastCheckpoint.record(time.timeIntervalSince1970)
    }

    /// Every record written so far is covered by a signed checkpoint as of `time`: an idle log is not stale.
    private func coveredAt(_ time: Date) {
        lastCheckpointSeconds.withLockedValue { $0 = time.timeIntervalSince1970 }
    }

    private func updateCheckpointAge() {
        // Read by the scrape; the writer writes `lastCheckpoint` (a gauge is safe to read from any thread).
        let last = lastCheckpointSeconds.withLockedValue { $0 }
        if last > 0 { metrics.lastCheckpointAge.record(Date().timeIntervalSince1970 - last) }
    }
    private let lastCheckpointSeconds = NIOLockedValueBox<Double>(0)
}

/// The audit log in the proxy's service group: it runs until graceful shutdown, then writes the `stop` record and
/// everything queued, and closes the segment with a checkpoint (after the sessions, which stop before it).
struct AuditService: Service {
    let log: AuditLog

    func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            // stop() waits for the writer thread: not on the cooperative pool.
            Thread.detachNewThread {
                log.stop()
                done.resume()
            }
        }
    }
}
