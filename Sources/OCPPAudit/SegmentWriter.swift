import Crypto
import Foundation
import OCPP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum AuditWriterError: Error, CustomStringConvertible {
    /// Checkpoints are the writer's own records.
    case reservedEvent(String)
    /// A line of the segment being reopened is not a record (`file:line: why`): run `ocpp-proxy audit verify`.
    case corrupt(path: String, line: Int, reason: String)
    /// An earlier write or sync failed: what is on disk is unknown until the directory is reopened.
    case failed

    public var description: String {
        switch self {
        case .reservedEvent(let event): return "the event \"\(event)\" is written by the audit writer itself"
        case .corrupt(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .failed: return "an earlier write to the audit log failed; reopen the directory"
        }
    }
}

/// Appends records to the audit log's current segment and keeps the chain: assigns `seq`, `ts` (given by the
/// caller), `prev` and `hash`; writes signed checkpoints (an RFC 6962 Merkle root over the segment's records before
/// them); rotates by size and age, closing a segment with a checkpoint; reopens a directory after a restart.
///
/// Records are buffered by ``append(_:ts:)`` and reach the disk at ``commit()``, which writes them all and `fsync`s
/// once (group commit). A building block: one owner calls it; the threading, queue and backpressure are the caller's.
public final class SegmentWriter {
    public struct Options: Sendable {
        /// A segment is closed before the record that finds it at least this big (it may exceed it by one record
        /// and the closing checkpoint).
        public var maxBytes: Int
        /// A segment is closed before the first record whose `ts` is this many seconds or more after its first.
        public var maxAge: TimeInterval
        /// `node` written into checkpoints (records carry their own).
        public var node: String?

        public init(maxBytes: Int = 256 << 20, maxAge: TimeInterval = 3600, node: String? = nil) {
            self.maxBytes = maxBytes
            self.maxAge = maxAge
            self.node = node
        }
    }

    public let directory: String
    public let signer: AuditSigner
    public let options: Options
    /// What reopening the directory found and repaired, e.g. a torn last line cut off after a crash.
    public let warnings: [String]

    /// The last record's `seq` (0 for an empty log) and `hash` (64 zeros for an empty log).
    public private(set) var lastSeq: Int64
    public var lastHash: String { String(decoding: lastHashHex, as: UTF8.self) }
    /// The last record's hash as the 64 hex digits written into the next record's `prev`.
    private var lastHashHex: [UInt8]
    /// Records appended (checkpoints included) since the last checkpoint, committed or not.
    public private(set) var recordsSinceCheckpoint = 0
    /// `ts` of the last checkpoint this writer wrote (nil before the first).
    public private(set) var lastCheckpointTime: Date?

    /// Bytes this writer has written to disk (committed), over every segment.
    public private(set) var bytesWritten = 0
    /// Bytes appended and not committed yet.
    public var pendingBytes: Int { pending.count }

    /// The segment being written; nil until the first record after opening an empty directory or a rotation.
    public var currentSegment: String? { fd >= 0 ? currentPath : nil }

    private var fd: Int32 = -1
    private var currentPath = ""
    /// Bytes of the current segment, on disk and pending.
    private var segmentBytes = 0
    private var segmentFirstTime: Date?
    private var tree = MerkleTree()
    private var pending: [UInt8] = []
    private var lastWasCheckpoint = false
    private var broken = false

    /// Opens `directory` (created when missing). When it holds segments, the last one is read back: the chain goes on
    /// from its last complete line, a torn last line (no trailing newline: an interrupted write) is cut off and
    /// noted in ``warnings``, and its Merkle tree is rebuilt so that the next checkpoint covers the whole segment.
    public init(directory: String, signer: AuditSigner, options: Options = Options()) throws {
        self.directory = directory
        self.signer = signer
        self.options = options
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        var warnings: [String] = []
        lastSeq = 0
        lastHashHex = Array(AuditRecord.genesisHash.utf8)
        let files = try AuditSegments.list(directory)
        guard let lastFile = files.last else {
            self.warnings = []
            return
        }
        let path = directory + "/" + lastFile
        var cutAt: Int?
        var reader = try LineReader(path: path)
        defer { reader.close() }
        while let line = try reader.next() {
            guard line.terminated else {
                cutAt = line.offset
                warnings.append(
                    "\(path):\(line.number): cut off a torn last line of \(line.bytes.count) bytes (an interrupted write)"
                )
                break
            }
            guard let record = AuditRecord(line: line.bytes), let seq = record.seq, seq >= 0, seq < Int64.max,
                let hash = record.hash
            else {
                throw AuditWriterError.corrupt(path: path, line: line.number, reason: "not an audit record")
            }
            tree.append(leaf: AuditRecord.leaf(line: line.bytes, record: record))
            lastSeq = seq
            lastHashHex = Array(hash.utf8)
            if segmentFirstTime == nil { segmentFirstTime = record.ts.flatMap(AuditTimestamp.date(from:)) }
            lastWasCheckpoint = record.isCheckpoint
            recordsSinceCheckpoint = record.isCheckpoint ? 0 : recordsSinceCheckpoint + 1
        }
        if tree.count == 0 {
            // Nothing complete in the last segment: drop it and go on from the segment before, if any.
            unlink(path)
            try POSIXFile.syncDirectory(directory)
            if cutAt == nil { warnings.append("\(path): removed an empty segment") }
            if files.count >= 2 {
                let previous = directory + "/" + files[files.count - 2]
                var reader = try LineReader(path: previous)
                defer { reader.close() }
                var last: AuditRecord?
                while let line = try reader.next() {
                    guard line.terminated, let record = AuditRecord(line: line.bytes), let seq = record.seq, seq >= 0,
                        seq < Int64.max, record.hash != nil
                    else {
                        throw AuditWriterError.corrupt(path: previous, line: line.number, reason: "not an audit record")
                    }
                    last = record
                }
                if let last, let seq = last.seq, let hash = last.hash {
                    lastSeq = seq
                    lastHashHex = Array(hash.utf8)
                    lastWasCheckpoint = last.isCheckpoint
                }
            }
            self.warnings = warnings
            return
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw AuditIOError(path: path, operation: "open", code: errno) }
        currentPath = path
        if let cutAt {
            guard ftruncate(fd, off_t(cutAt)) == 0 else {
                throw AuditIOError(path: path, operation: "ftruncate", code: errno)
            }
            try POSIXFile.sync(fd, path: path)
        }
        segmentBytes = try POSIXFile.size(path)
        self.warnings = warnings
    }

    deinit {
        if fd >= 0 { closeDescriptor(fd) }
    }

    /// Appends one record (buffered until ``commit()``), after rotating when the current segment is too big or too
    /// old. `fields` are the record's own (event, leg, charger, payload, …); `seq`, `ts`, `prev` and `hash` are set
    /// here. Returns the sealed record.
    @discardableResult
    public func append(_ fields: consuming JSONObject, ts: Date) throws -> AuditRecord {
        guard !broken else { throw AuditWriterError.failed }
        if let event = fields["event"]?.stringValue, event == "checkpoint" {
            throw AuditWriterError.reservedEvent(event)
        }
        try rotateIfDue(ts: ts)
        return try write(fields, ts: ts, signed: false)
    }

    /// Appends one record whose members `members` writes straight into the line (`"name":value` pairs separated by
    /// commas, without `seq`, `ts`, `prev` or `hash`, which come from here): the writer's path for frame records,
    /// with no dictionary and no sorting. Returns the record's hash.
    public func appendMembers(ts: Date, _ members: (inout [UInt8]) -> Void) throws {
        guard !broken else { throw AuditWriterError.failed }
        try rotateIfDue(ts: ts)
        if fd < 0 { try openSegment() }
        body.removeAll(keepingCapacity: true)
        body.append(contentsOf: Self.seqMember)
        JSONValue.writeInteger(lastSeq + 1, into: &body)
        body.append(contentsOf: Self.tsMember)
        AuditTimestamp.append(ts, into: &body, cache: &secondText)
        body.append(contentsOf: Self.prevMember)
        body.append(contentsOf: lastHashHex)
        body.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ",")])
        members(&body)
        body.append(UInt8(ascii: "}"))
        seal(ts: ts, signed: false)
    }

    /// The text of the last whole second a record's `ts` named.
    private var secondText: (seconds: Int64, text: [UInt8]) = (0, [])

    private static let seqMember = Array("{\"seq\":".utf8)
    private static let tsMember = Array(",\"ts\":\"".utf8)
    private static let prevMember = Array("\",\"prev\":\"".utf8)

    private func rotateIfDue(ts: Date) throws {
        if fd >= 0, tree.count > 0,
            segmentBytes >= options.maxBytes
                || segmentFirstTime.map({ ts.timeIntervalSince($0) >= options.maxAge }) == true
        {
            try rotate(ts: ts)
        }
    }

    /// The body of the record being written (reused: one buffer for the writer's life).
    private var body: [UInt8] = []

    /// Appends a signed checkpoint over the current segment's records so far (buffered until ``commit()``).
    @discardableResult
    public func checkpoint(ts: Date) throws -> AuditRecord {
        guard !broken else { throw AuditWriterError.failed }
        var fields: JSONObject = [
            "event": .string("checkpoint"),
            "count": .integer(Int64(tree.count)),
            "root": .string(tree.rootHex),
            "head": .string(lastHash),
            "key": .string(signer.keyID),
        ]
        if let node = options.node { fields["node"] = .string(node) }
        let record = try write(fields, ts: ts, signed: true)
        recordsSinceCheckpoint = 0
        lastCheckpointTime = ts
        return record
    }

    /// Closes the current segment with a checkpoint (unless it already ends with one), writes and syncs it; the
    /// next record starts a new segment file. Nothing happens when no segment is open.
    public func rotate(ts: Date) throws {
        guard !broken else { throw AuditWriterError.failed }
        guard fd >= 0 else { return }
        if !lastWasCheckpoint { try checkpoint(ts: ts) }
        try commit()
        closeDescriptor(fd)
        fd = -1
        tree = MerkleTree()
        segmentBytes = 0
        segmentFirstTime = nil
    }

    /// Writes every record appended since the last commit and `fsync`s the segment: after it returns they survive
    /// a crash. A failure leaves the writer unusable (see ``AuditWriterError/failed``).
    public func commit() throws {
        guard !broken else { throw AuditWriterError.failed }
        guard !pending.isEmpty, fd >= 0 else { return }
        do {
            try POSIXFile.writeAll(fd, pending, path: currentPath)
            try POSIXFile.sync(fd, path: currentPath)
            bytesWritten += pending.count
        } catch {
            broken = true
            throw error
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// At shutdown: a checkpoint (unless the segment already ends with one), commit, close the file.
    public func close(ts: Date) throws {
        guard !broken else { throw AuditWriterError.failed }
        if fd >= 0 {
            if !lastWasCheckpoint { try checkpoint(ts: ts) }
            try commit()
            closeDescriptor(fd)
            fd = -1
        }
    }

    private func write(_ fields: consuming JSONObject, ts: Date, signed: Bool) throws -> AuditRecord {
        if fd < 0 { try openSegment() }
        if fields["hash"] != nil { fields["hash"] = nil }
        fields["seq"] = .integer(lastSeq + 1)
        fields["ts"] = .string(AuditTimestamp.string(from: ts))
        fields["prev"] = .string(lastHash)
        if signed {
            fields["sig"] = nil
            var unsigned: [UInt8] = []
            JSONValue.object(copy fields).write(into: &unsigned)
            fields["sig"] = .string(try signer.sign(unsigned))
        }
        // Events and checkpoints: the members sorted (as a checkpoint's signature covers them).
        body.removeAll(keepingCapacity: true)
        CanonicalJSON.write(.object(copy fields), into: &body)
        seal(ts: ts, signed: signed)
        fields["hash"] = .string(lastHash)
        return AuditRecord(fields: fields)
    }

    /// Hashes ``body`` (the record without `hash`), adds it to the Merkle tree, and appends its line; the record is
    /// the last of the chain.
    private func seal(ts: Date, signed: Bool) {
        let digest = SHA256.hash(data: body)
        lastHashHex.removeAll(keepingCapacity: true)
        Hex.append(digest, into: &lastHashHex)
        tree.append(leafHash: MerkleTree.leafHash(Array(digest)))
        segmentBytes += AuditRecord.line(body: body, hash: lastHashHex, into: &pending)
        if segmentFirstTime == nil { segmentFirstTime = ts }
        lastSeq += 1
        lastWasCheckpoint = signed
        recordsSinceCheckpoint += 1
    }

    /// Creates the next segment file, named after the seq of the record about to be written.
    private func openSegment() throws {
        let path = directory + "/" + AuditSegments.fileName(firstSeq: lastSeq + 1)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw AuditIOError(path: path, operation: "create", code: errno) }
        fd = descriptor
        currentPath = path
        segmentBytes = 0
        segmentFirstTime = nil
        tree = MerkleTree()
        try POSIXFile.syncDirectory(directory)
    }
}
