import Crypto
import Foundation
import OCPP
import Testing

@testable import OCPPAudit

/// A log written with small segments so that rotation happens a few times.
struct SampleLog {
    static let start = Date(timeIntervalSince1970: 1_796_025_600)
    let directory: TemporaryDirectory
    let signer: AuditSigner
    var path: String { directory.path }

    /// `count` frame records one second apart, committed in groups of 3, a checkpoint every 10, then closed.
    /// `prefix` changes the content without changing any length, so two logs have the same segment layout.
    init(
        count: Int = 40, signer: AuditSigner = AuditSigner(Curve25519.Signing.PrivateKey()), prefix: String = "CP",
        options: SegmentWriter.Options = .init(maxBytes: 3000, maxAge: 3600, node: "edge-1")
    ) throws {
        directory = try TemporaryDirectory()
        self.signer = signer
        let writer = try SegmentWriter(directory: directory.path, signer: signer, options: options)
        for index in 0..<count {
            writer.add(Self.frame(index, prefix: prefix), ts: Self.start + Double(index))
            if index % 3 == 2 { try writer.commit() }
            if index % 10 == 9 { try writer.checkpoint(ts: Self.start + Double(index) + 0.5) }
        }
        try writer.close(ts: Self.start + Double(count))
    }

    static func frame(_ index: Int, prefix: String = "CP") -> JSONObject {
        let charger = prefix + "-" + String(format: "%02d", index % 7)
        return [
            "event": "frame", "node": "edge-1", "leg": "charger-proxy", "charger": .string(charger),
            "session": .string("s-\(index % 3)"),
            "msg": ["type": "call", "id": .string("m\(index)"), "action": "Heartbeat"],
            "payload": [:], "decision": "forwarded",
        ]
    }

    var segments: [String] { (try? AuditSegments.list(path)) ?? [] }
    func file(_ index: Int) -> String { path + "/" + segments[index] }

    func lines(_ index: Int) throws -> [[UInt8]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: file(index)))
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Array($0) }
        if lines.last == [] { lines.removeLast() }
        return lines
    }

    func write(_ index: Int, lines: [[UInt8]]) throws {
        let bytes = lines.flatMap { $0 + [UInt8(ascii: "\n")] }
        try Data(bytes).write(to: URL(fileURLWithPath: file(index)))
    }

    func verify(_ key: AuditPublicKey?) throws -> AuditVerification {
        try AuditVerifier.verify(dir: path, publicKey: key)
    }

    /// The failure `verify` must report.
    func expectFailure(
        segment: Int, line: Int, containing words: String, key: AuditPublicKey? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let result = try AuditVerifier.verify(dir: path, publicKey: key ?? signer.publicKey)
            Issue.record("verify passed a tampered log: \(result.summary)", sourceLocation: sourceLocation)
        } catch let error as AuditVerificationFailure {
            #expect(error.file == file(segment), sourceLocation: sourceLocation)
            #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
            #expect(error.reason.contains(words), "\(error)", sourceLocation: sourceLocation)
            #expect("\(error)".hasPrefix("\(file(segment)):\(line): "), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }
}

extension SegmentWriter {
    /// `append` for tests, where a record is always accepted.
    func add(_ fields: JSONObject, ts: Date) {
        _ = try! append(fields, ts: ts)
    }
}

@Suite struct WriterVerifierTests {
    @Test func roundTripOverRotation() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        #expect(log.segments.count >= 3)
        #expect(log.segments.first == "audit-00000000000000000001.jsonl")
        let result = try log.verify(log.signer.publicKey)
        #expect(result.segments == log.segments.count)
        #expect(result.records == 40 + result.checkpoints)
        #expect(result.firstSeq == 1 && result.lastSeq == Int64(result.records))
        #expect(result.signaturesChecked && result.keyID == log.signer.keyID)
        #expect(result.notes.isEmpty)
        #expect(result.lastCheckpointTime == "2026-11-30T08:00:39.500000Z")
        #expect(result.summary.hasPrefix("audit log OK: \(result.segments) segments, \(result.records) records"))

        // Every segment ends with a checkpoint; each file is named after its first seq; the first prev is zeros.
        var previousHash = AuditRecord.genesisHash
        for index in log.segments.indices {
            let records = try log.lines(index).map { AuditRecord(line: $0)! }
            #expect(records.last?.isCheckpoint == true)
            #expect(log.segments[index] == AuditSegments.fileName(firstSeq: records[0].seq!))
            #expect(records[0].prev == previousHash)
            previousHash = records.last!.hash!
        }

        let unchecked = try log.verify(nil)
        #expect(!unchecked.signaturesChecked)
        #expect(unchecked.summary.contains("signatures not checked"))
        // Another key's checkpoints are not this key's.
        let stranger = AuditSigner(Curve25519.Signing.PrivateKey()).publicKey
        let firstCheckpoint = try log.lines(0).firstIndex { AuditRecord(line: $0)!.isCheckpoint }! + 1
        log.expectFailure(segment: 0, line: firstCheckpoint, containing: "signed with key", key: stranger)
    }

    @Test func rotationByAge() throws {
        let log = try SampleLog(count: 12, options: .init(maxBytes: 1 << 30, maxAge: 5))
        defer { log.directory.remove() }
        // Records at 0…11 s: segments start at the records of 0, 5 and 10 s (checkpoints in between add seq).
        #expect(log.segments.count == 3)
        #expect(try log.verify(log.signer.publicKey).records == 12 + 3)
    }

    @Test func reopenAfterACleanShutdownAndAfterACrash() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let signer = AuditSigner(Curve25519.Signing.PrivateKey())
        let options = SegmentWriter.Options(maxBytes: 1500, maxAge: 3600)
        var writer = try SegmentWriter(directory: temp.path, signer: signer, options: options)
        for index in 0..<7 { writer.add(SampleLog.frame(index), ts: SampleLog.start + Double(index)) }
        try writer.close(ts: SampleLog.start + 7)
        let afterClose = try AuditVerifier.verify(dir: temp.path, publicKey: signer.publicKey)
        #expect(afterClose.records == 7 + afterClose.checkpoints)

        // Restart: the chain goes on in the same segment, and rotates on.
        writer = try SegmentWriter(directory: temp.path, signer: signer, options: options)
        #expect(writer.warnings.isEmpty)
        #expect(writer.lastSeq == Int64(afterClose.records))
        for index in 7..<20 { writer.add(SampleLog.frame(index), ts: SampleLog.start + Double(index)) }
        try writer.commit()
        // Killed after a commit (no closing checkpoint); then restarted, and killed again with three records
        // not committed (no rotation in between): a crash loses them, and the log is still intact.
        let committedSeq = writer.lastSeq
        writer = try SegmentWriter(directory: temp.path, signer: signer, options: .init(maxBytes: 1 << 20))
        #expect(writer.lastSeq == committedSeq)
        for index in 20..<23 { writer.add(SampleLog.frame(index), ts: SampleLog.start + Double(index)) }
        writer = try SegmentWriter(directory: temp.path, signer: signer, options: options)
        #expect(writer.warnings.isEmpty)
        let afterCrash = try AuditVerifier.verify(dir: temp.path, publicKey: signer.publicKey)
        #expect(afterCrash.lastSeq == committedSeq)
        #expect(afterCrash.notes.contains { $0.contains("does not end with a checkpoint") })
        #expect(writer.lastSeq == committedSeq)

        // The reopened writer's checkpoint covers the whole last segment, records from before the restart too.
        for index in 23..<30 { writer.add(SampleLog.frame(index), ts: SampleLog.start + Double(index)) }
        try writer.close(ts: SampleLog.start + 30)
        let result = try AuditVerifier.verify(dir: temp.path, publicKey: signer.publicKey)
        #expect(result.notes.isEmpty)
        #expect(result.segments >= 2)
        #expect(result.lastSeq == Int64(result.records))
    }

    @Test func tornLastLineIsReportedThenCutOffOnReopen() throws {
        let log = try SampleLog(count: 25)
        defer { log.directory.remove() }
        let last = log.segments.count - 1
        var lines = try log.lines(last)
        let lineCount = lines.count
        // A crash in the middle of writing one more record.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log.file(last)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"charger":"CP-01","event":"fr"#.utf8))
        try handle.close()

        let result = try log.verify(log.signer.publicKey)
        #expect(result.notes.count == 1)
        #expect(result.notes[0].hasPrefix("\(log.file(last)):\(lineCount + 1): torn last line"))

        let writer = try SegmentWriter(
            directory: log.path, signer: log.signer, options: .init(maxBytes: 1500, maxAge: 3600))
        #expect(writer.warnings.count == 1)
        #expect(writer.warnings[0].hasPrefix("\(log.file(last)):\(lineCount + 1): cut off a torn last line"))
        lines = try log.lines(last)
        #expect(lines.count == lineCount)
        writer.add(SampleLog.frame(99), ts: SampleLog.start + 99)
        try writer.close(ts: SampleLog.start + 100)
        let after = try log.verify(log.signer.publicKey)
        #expect(after.notes.isEmpty)
        #expect(after.records == result.records + 2)
    }

    @Test func aTornFirstLineLeavesAnEmptySegmentThatReopenRemoves() throws {
        let log = try SampleLog(count: 12)
        defer { log.directory.remove() }
        let next = AuditSegments.fileName(firstSeq: try log.verify(nil).lastSeq! + 1)
        FileManager.default.createFile(atPath: log.path + "/" + next, contents: Data(#"{"seq""#.utf8))
        #expect(try log.verify(log.signer.publicKey).notes.count == 2)
        let writer = try SegmentWriter(directory: log.path, signer: log.signer)
        #expect(writer.warnings.count == 1)
        writer.add(SampleLog.frame(1), ts: SampleLog.start + 50)
        try writer.close(ts: SampleLog.start + 51)
        #expect(try log.verify(log.signer.publicKey).notes.isEmpty)
    }

    @Test func checkpointsAreTheWritersOwn() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let writer = try SegmentWriter(directory: temp.path, signer: AuditSigner(Curve25519.Signing.PrivateKey()))
        #expect(throws: AuditWriterError.self) { try writer.append(["event": "checkpoint"], ts: SampleLog.start) }
    }

    @Test func emptyDirectoryFails() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        #expect(throws: AuditVerificationFailure.self) { try AuditVerifier.verify(dir: temp.path, publicKey: nil) }
    }
}

@Suite struct TamperingTests {
    @Test func editOneByteOfARecord() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(1)
        let charger = Array(#""charger":"CP-0"#.utf8)
        let at = lines[2].firstRange(of: charger)!.upperBound
        lines[2][at] += 1  // CP-0x → CP-1x: still valid JSON, another charger
        try log.write(1, lines: lines)
        log.expectFailure(segment: 1, line: 3, containing: "hash does not match")
    }

    @Test func editAByteOutsideTheValues() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(0)
        // A space after the first comma: the same JSON value, but not the bytes that were hashed.
        let comma = lines[4].firstIndex(of: UInt8(ascii: ","))!
        lines[4].insert(UInt8(ascii: " "), at: comma + 1)
        try log.write(0, lines: lines)
        log.expectFailure(segment: 0, line: 5, containing: "hash does not match")
    }

    @Test func deleteALine() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(1)
        lines.remove(at: 3)
        try log.write(1, lines: lines)
        log.expectFailure(segment: 1, line: 4, containing: "missing or out of order")
    }

    @Test func deleteTheFirstLineOfASegment() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(2)
        lines.removeFirst()
        try log.write(2, lines: lines)
        log.expectFailure(segment: 2, line: 1, containing: "file name says")
    }

    @Test func swapTwoLines() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(0)
        lines.swapAt(5, 6)
        try log.write(0, lines: lines)
        log.expectFailure(segment: 0, line: 6, containing: "missing or out of order")
    }

    @Test func insertALine() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(1)
        lines.insert(lines[2], at: 2)
        try log.write(1, lines: lines)
        log.expectFailure(segment: 1, line: 4, containing: "missing or out of order")
    }

    @Test func truncateInTheMiddleOfASegment() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        let lines = try log.lines(0)
        let cut = lines[0..<3].reduce(0) { $0 + $1.count + 1 } + lines[3].count / 2
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log.file(0)))
        try handle.truncate(atOffset: UInt64(cut))
        try handle.close()
        log.expectFailure(segment: 0, line: 4, containing: "truncated")
    }

    @Test func truncateASegmentAtALineBoundary() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        try log.write(1, lines: Array(try log.lines(1).prefix(4)))
        log.expectFailure(segment: 1, line: 4, containing: "does not end with a checkpoint")
    }

    @Test func replaceASegmentWithAnotherValidChain() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        // Another log, same layout and even the same signing key (an insider), other content.
        let other = try SampleLog(signer: log.signer, prefix: "XX")
        defer { other.directory.remove() }
        #expect(other.segments == log.segments)
        #expect(try other.verify(other.signer.publicKey).records == (try log.verify(nil)).records)
        try Data(contentsOf: URL(fileURLWithPath: other.file(1))).write(to: URL(fileURLWithPath: log.file(1)))
        log.expectFailure(segment: 1, line: 1, containing: "prev does not match")
    }

    @Test func removeAWholeSegment() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        let removed = try log.lines(1).count
        let lastOfFirst = try log.lines(0).count
        try FileManager.default.removeItem(atPath: log.file(1))
        // Segment 2 is now the second file; its first record is not the one after segment 0's last.
        log.expectFailure(segment: 1, line: 1, containing: "seq \(lastOfFirst + removed + 1) where")
    }

    @Test func forgeACheckpointSignature() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(0)
        let index = lines.count - 1
        var checkpoint = AuditRecord(line: lines[index])!
        #expect(checkpoint.isCheckpoint)
        // Signed by someone else's key over exactly what the real key signed, hash made to match.
        checkpoint.fields["hash"] = nil
        checkpoint.fields["sig"] = nil
        var unsigned: [UInt8] = []
        JSONValue.object(checkpoint.fields).write(into: &unsigned)
        checkpoint.fields["sig"] = .string(try AuditSigner(Curve25519.Signing.PrivateKey()).sign(unsigned))
        lines[index] = Array(checkpoint.sealed().lineBytes.dropLast())
        try log.write(0, lines: lines)
        log.expectFailure(segment: 0, line: index + 1, containing: "signature does not verify")
    }

    @Test func changeACheckpointsRoot() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var lines = try log.lines(1)
        let index = lines.count - 1
        var checkpoint = AuditRecord(line: lines[index])!
        #expect(checkpoint.isCheckpoint)
        // Even re-signed with the real key and re-hashed, a root that is not the segment's is found.
        checkpoint.fields["root"] = .string(hex(sha256(Array("another tree".utf8))))
        checkpoint.fields["hash"] = nil
        checkpoint.fields["sig"] = nil
        var unsigned: [UInt8] = []
        JSONValue.object(checkpoint.fields).write(into: &unsigned)
        checkpoint.fields["sig"] = .string(try log.signer.sign(unsigned))
        lines[index] = Array(checkpoint.sealed().lineBytes.dropLast())
        try log.write(1, lines: lines)
        log.expectFailure(segment: 1, line: index + 1, containing: "root does not match")

        // Changed without re-hashing: the hash gives it away first.
        var plain = try log.lines(0)
        let last = plain.count - 1
        var text = String(decoding: plain[last], as: UTF8.self)
        let root = AuditRecord(line: plain[last])!.fields["root"]!.stringValue!
        text = text.replacingOccurrences(of: root, with: String(root.reversed()))
        plain[last] = Array(text.utf8)
        try log.write(0, lines: plain)
        log.expectFailure(segment: 0, line: last + 1, containing: "hash does not match")
    }

    /// Every single-byte change anywhere is found, but for the last newline of the log (a torn last line).
    @Test func everySingleByteChangeIsFound() throws {
        let log = try SampleLog(count: 20)
        defer { log.directory.remove() }
        for (index, name) in log.segments.enumerated() {
            let url = URL(fileURLWithPath: log.file(index))
            let original = try Data(contentsOf: url)
            let isLast = index == log.segments.count - 1
            for position in stride(from: index * 13, to: original.count, by: 37) {
                for replacement: UInt8 in [original[position] ^ 0x01, UInt8(ascii: "\n"), UInt8(ascii: " ")]
                where replacement != original[position] {
                    var edited = original
                    edited[position] = replacement
                    try edited.write(to: url)
                    do {
                        let result = try AuditVerifier.verify(dir: log.path, publicKey: log.signer.publicKey)
                        let allowed = isLast && position == original.count - 1
                        #expect(allowed, "\(name) byte \(position) → \(replacement) passed: \(result.summary)")
                    } catch {
                        #expect(error.file == log.file(index))
                    }
                }
            }
            try original.write(to: url)
        }
        #expect(try log.verify(log.signer.publicKey).notes.isEmpty)
    }

    @Test func hostileSeqDoesNotTrap() throws {
        let log = try SampleLog(count: 5)
        defer { log.directory.remove() }
        let last = log.segments.count - 1
        var lines = try log.lines(last)
        var record = AuditRecord(line: lines[lines.count - 1])!
        record.fields["seq"] = .integer(Int64.max)
        lines[lines.count - 1] = Array(record.sealed().lineBytes.dropLast())
        try log.write(last, lines: lines)
        log.expectFailure(segment: last, line: lines.count, containing: "invalid seq")
        #expect(throws: AuditWriterError.self) { try SegmentWriter(directory: log.path, signer: log.signer) }
    }

    @Test func tornLineInASegmentThatIsNotTheLast() throws {
        let log = try SampleLog()
        defer { log.directory.remove() }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: log.file(1)))
        bytes.removeLast()  // the closing checkpoint loses its newline
        try bytes.write(to: URL(fileURLWithPath: log.file(1)))
        log.expectFailure(segment: 1, line: try log.lines(1).count, containing: "truncated")
    }
}

/// `OCPP_AUDIT_SAMPLE_DIR=/some/new/dir swift test --filter sampleLog` leaves a sample log there, with its key as
/// `<dir>.key`/`<dir>.key.pub`, to try `ocpp-proxy audit verify` by hand.
@Test(.enabled(if: ProcessInfo.processInfo.environment["OCPP_AUDIT_SAMPLE_DIR"] != nil))
func sampleLog() throws {
    let directory = ProcessInfo.processInfo.environment["OCPP_AUDIT_SAMPLE_DIR"]!
    let signer = try AuditKeys.generate(out: directory + ".key")
    let writer = try SegmentWriter(
        directory: directory, signer: signer, options: .init(maxBytes: 3000, maxAge: 3600, node: "edge-1"))
    for index in 0..<40 {
        writer.add(SampleLog.frame(index), ts: SampleLog.start + Double(index))
        if index % 10 == 9 { try writer.checkpoint(ts: SampleLog.start + Double(index) + 0.5) }
    }
    try writer.close(ts: SampleLog.start + 40)
}

/// Logs written in the first format (every member sorted, `hash` at its sorted place, hashed over the canonical form)
/// still verify, and a writer reopening one goes on in the current format in the same chain and Merkle tree.
@Suite struct FirstFormatTests {
    /// Three first-format records, chained, as the writer of that format wrote them.
    static func firstFormatLines() -> [[UInt8]] {
        var prev = AuditRecord.genesisHash
        var lines: [[UInt8]] = []
        for seq in 1...3 {
            let record = AuditRecord(fields: [
                "seq": .integer(Int64(seq)), "ts": .string(AuditTimestamp.string(from: SampleLog.start + Double(seq))),
                "prev": .string(prev), "event": "connect", "node": "n", "charger": .string("CP-\(seq)"),
            ]).sealed()
            prev = record.hash ?? ""
            lines.append(Array(record.lineBytes.dropLast()))
        }
        return lines
    }

    @Test func aFirstFormatLogVerifiesAndItsEditsAreFound() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/" + AuditSegments.fileName(firstSeq: 1)
        var lines = Self.firstFormatLines()
        try Data(lines.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: file))
        let summary = try AuditVerifier.verify(dir: directory.path, publicKey: nil)
        #expect(summary.records == 3)
        // A space outside the values: the same JSON, no longer the canonical form the hash was computed over.
        let comma = try #require(lines[1].firstIndex(of: UInt8(ascii: ",")))
        lines[1].insert(UInt8(ascii: " "), at: comma + 1)
        try Data(lines.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: file))
        #expect(throws: AuditVerificationFailure.self) { try AuditVerifier.verify(dir: directory.path, publicKey: nil) }
        do {
            _ = try AuditVerifier.verify(dir: directory.path, publicKey: nil)
        } catch {
            #expect(error.line == 2 && error.reason.contains("canonical form"), "\(error)")
        }
    }

    @Test func aWriterGoesOnFromAFirstFormatSegment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/" + AuditSegments.fileName(firstSeq: 1)
        try Data(Self.firstFormatLines().flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: file))
        let signer = AuditSigner(Curve25519.Signing.PrivateKey())
        let writer = try SegmentWriter(directory: directory.path, signer: signer, options: .init(node: "n"))
        #expect(writer.lastSeq == 3)
        try writer.append(["event": "disconnect", "node": "n"], ts: SampleLog.start + 4)
        try writer.appendMembers(ts: SampleLog.start + 5) { $0.append(contentsOf: Array(#""event":"frame""#.utf8)) }
        try writer.close(ts: SampleLog.start + 6)
        // The checkpoint's Merkle root covers the three first-format records and the two new ones.
        let summary = try AuditVerifier.verify(dir: directory.path, publicKey: signer.publicKey)
        #expect(summary.records == 6)
        #expect(summary.checkpoints == 1)
    }
}
