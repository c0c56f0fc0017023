import Foundation
import OCPP

/// The first thing wrong with an audit log, as `file:line: why` (`file: why` when no line is concerned).
public struct AuditVerificationFailure: Error, CustomStringConvertible, Equatable {
    public let file: String
    /// 1-based; 0 when the failure is about the file or directory as a whole.
    public let line: Int
    public let reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)" }
}

/// What ``AuditVerifier/verify(dir:publicKey:)`` found in an intact log.
public struct AuditVerification: Sendable, Equatable {
    public var segments = 0
    /// Complete records, checkpoints included.
    public var records = 0
    public var checkpoints = 0
    public var firstSeq: Int64?
    public var lastSeq: Int64?
    /// `ts` of the last checkpoint.
    public var lastCheckpointTime: String?
    /// Whether every checkpoint's signature was checked against a public key.
    public var signaturesChecked = false
    /// The key id signatures were checked with.
    public var keyID: String?
    /// What is allowed but worth saying: a torn last line, a last segment not closed, a log not starting at seq 1.
    public var notes: [String] = []

    /// One line: segments, records, last checkpoint time, signatures.
    public var summary: String {
        let range = firstSeq.map { first in " (seq \(first)–\(lastSeq ?? first))" } ?? ""
        let signatures =
            signaturesChecked
            ? "signatures verified with key \(keyID ?? "?")" : "signatures not checked (no public key given)"
        return
            "audit log OK: \(segments) segment\(segments == 1 ? "" : "s"), \(records) record\(records == 1 ? "" : "s")\(range), \(checkpoints) checkpoint\(checkpoints == 1 ? "" : "s"), last checkpoint \(lastCheckpointTime ?? "none"); \(signatures)"
    }
}

/// Checks an audit directory end to end: every line parses and is in canonical form, every `hash` matches, every
/// `prev` links to the record before (across segments), `seq` goes up by one without gaps, each segment file is named
/// after its first seq, every checkpoint's `count`/`head`/`root` match the records before it in its segment and its
/// signature verifies (when a public key is given), every segment but the last ends with a checkpoint, and only the
/// last line of the last segment may be torn (a crash).
public enum AuditVerifier {
    public static func verify(dir: String, publicKey: AuditPublicKey?) throws(AuditVerificationFailure)
        -> AuditVerification
    {
        let files: [String]
        do {
            files = try AuditSegments.list(dir)
        } catch {
            throw AuditVerificationFailure(file: dir, line: 0, reason: "cannot list the directory: \(error)")
        }
        guard !files.isEmpty else {
            throw AuditVerificationFailure(file: dir, line: 0, reason: "no audit segments (audit-<seq>.jsonl)")
        }
        var summary = AuditVerification()
        summary.signaturesChecked = publicKey != nil
        summary.keyID = publicKey?.keyID
        var expectedSeq: Int64?
        var expectedPrev: String?
        for (index, name) in files.enumerated() {
            let path = dir + "/" + name
            let isLast = index == files.count - 1
            var tree = MerkleTree()
            var lastLine = 0
            var lastWasCheckpoint = false
            var reader: LineReader
            do {
                reader = try LineReader(path: path)
            } catch {
                throw AuditVerificationFailure(file: path, line: 0, reason: "cannot open: \(error)")
            }
            defer { reader.close() }
            func fail(_ line: Int, _ reason: String) -> AuditVerificationFailure {
                AuditVerificationFailure(file: path, line: line, reason: reason)
            }
            while true {
                let next: LineReader.Line?
                do {
                    next = try reader.next()
                } catch {
                    throw fail(lastLine + 1, "cannot read: \(error)")
                }
                guard let line = next else { break }
                let n = line.number
                guard line.terminated else {
                    if isLast {
                        summary.notes.append(
                            "\(path):\(n): torn last line (\(line.bytes.count) bytes without a newline: an interrupted write) ignored"
                        )
                        break
                    }
                    throw fail(n, "incomplete line (no newline) in a segment that is not the last: truncated")
                }
                guard let record = AuditRecord(line: line.bytes) else { throw fail(n, "not a JSON object") }
                guard let hash = record.hash, AuditRecord.isHash(hash) else {
                    throw fail(n, "missing or malformed hash")
                }
                // The current format: `hash` is the last member, over the bytes before it. The first: over the
                // canonical form, which the line must be.
                let body = AuditRecord.body(ofLine: line.bytes)
                let hashed = body ?? record.canonicalBytes
                guard AuditRecord.hash(ofCanonical: hashed) == hash else {
                    throw fail(n, "hash does not match the record's content (edited)")
                }
                if body == nil, record.lineBytes.dropLast() != line.bytes[...] {
                    throw fail(n, "line is not in canonical form (edited)")
                }
                guard let seq = record.seq, seq >= 0, seq < Int64.max else { throw fail(n, "missing or invalid seq") }
                guard let prev = record.prev, AuditRecord.isHash(prev) else {
                    throw fail(n, "missing or malformed prev")
                }
                if n == 1, let named = AuditSegments.firstSeq(ofFileName: name), named != seq {
                    throw fail(n, "first record has seq \(seq) but the file name says \(named)")
                }
                if let expectedSeq {
                    guard seq == expectedSeq else {
                        throw fail(n, "seq \(seq) where \(expectedSeq) was expected (a record missing or out of order)")
                    }
                } else {
                    summary.firstSeq = seq
                    if seq == 1 {
                        guard prev == AuditRecord.genesisHash else {
                            throw fail(n, "the first record of the log must have prev = 64 zeros")
                        }
                    } else {
                        summary.notes.append("\(path):\(n): the log starts at seq \(seq): earlier segments are absent")
                    }
                }
                if let expectedPrev, prev != expectedPrev {
                    throw fail(n, "prev does not match the hash of the record before (\(expectedPrev.prefix(16))…)")
                }
                if record.isCheckpoint {
                    try checkCheckpoint(record, tree: tree, publicKey: publicKey, fail: { fail(n, $0) })
                    summary.checkpoints += 1
                    summary.lastCheckpointTime = record.ts
                }
                tree.append(leaf: body == nil ? hashed : AuditRecord.leaf(line: line.bytes, record: record))
                lastWasCheckpoint = record.isCheckpoint
                lastLine = n
                expectedSeq = seq + 1
                expectedPrev = hash
                summary.records += 1
                summary.lastSeq = seq
            }
            summary.segments += 1
            if tree.count == 0 {
                guard isLast else { throw fail(1, "empty segment") }
                summary.notes.append("\(path): the last segment holds no complete record")
            } else if !lastWasCheckpoint {
                guard isLast else {
                    throw fail(lastLine, "segment does not end with a checkpoint (truncated)")
                }
                summary.notes.append(
                    "\(path):\(lastLine): the last segment does not end with a checkpoint (still open, or a crash)")
            }
        }
        return summary
    }

    private static func checkCheckpoint(
        _ record: AuditRecord, tree: MerkleTree, publicKey: AuditPublicKey?,
        fail: (String) -> AuditVerificationFailure
    ) throws(AuditVerificationFailure) {
        guard case .integer(let count)? = record.fields["count"] else { throw fail("checkpoint without count") }
        guard count == tree.count else {
            throw fail("checkpoint count \(count), but \(tree.count) records of this segment come before it")
        }
        guard record.fields["head"]?.stringValue == record.prev else {
            throw fail("checkpoint head is not the hash of the record before it")
        }
        guard record.fields["root"]?.stringValue == tree.rootHex else {
            throw fail("checkpoint root does not match the Merkle root of the \(tree.count) records before it")
        }
        guard let key = record.fields["key"]?.stringValue, let signature = record.fields["sig"]?.stringValue else {
            throw fail("checkpoint without key or sig")
        }
        guard let publicKey else { return }
        guard key == publicKey.keyID else {
            throw fail("checkpoint signed with key \(key), not the given public key \(publicKey.keyID)")
        }
        var unsigned = record.fields
        unsigned["sig"] = nil
        unsigned["hash"] = nil
        var bytes: [UInt8] = []
        JSONValue.object(unsigned).write(into: &bytes)
        guard publicKey.verify(signature: signature, of: bytes) else {
            throw fail("checkpoint signature does not verify with the given public key (forged)")
        }
    }
}
