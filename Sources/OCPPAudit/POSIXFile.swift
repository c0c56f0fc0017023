import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `close(2)`, callable from types that have a `close()` of their own.
func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// A failed system call, with the path it was about.
public struct AuditIOError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(path): \(operation) failed: \(String(cString: strerror(code)))" }
}

/// Thin wrappers over `open`/`write`/`fsync`/`read`: the audit files are plain POSIX files, no NIO.
enum POSIXFile {
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String = "") throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw AuditIOError(path: path, operation: "write", code: errno)
            }
            offset += written
        }
    }

    static func sync(_ fd: Int32, path: String = "") throws {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw AuditIOError(path: path, operation: "fsync", code: errno)
        }
    }

    /// Syncs a directory, so that a file just created in it survives a crash.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AuditIOError(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        try sync(fd, path: path)
    }

    static func size(_ path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw AuditIOError(path: path, operation: "stat", code: errno) }
        return Int(info.st_size)
    }
}

/// Reads a file line by line in chunks (memory: one chunk plus the longest line). Each line comes without its
/// `"\n"`, with its 1-based number, its byte offset, and whether it was terminated (false only for a last line that
/// stops without `"\n"`: a torn write).
struct LineReader {
    struct Line {
        var number: Int
        var offset: Int
        var bytes: [UInt8]
        var terminated: Bool
    }

    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0
    private var fileOffset = 0
    private var lineNumber = 0
    private var atEnd = false

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AuditIOError(path: path, operation: "open", code: errno) }
    }

    func close() { closeDescriptor(fd) }

    mutating func next() throws -> Line? {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                lineNumber += 1
                let line = Line(
                    number: lineNumber, offset: fileOffset, bytes: Array(buffer[position..<newline]), terminated: true)
                fileOffset += newline - position + 1
                position = newline + 1
                return line
            }
            if atEnd {
                guard position < buffer.count else { return nil }
                lineNumber += 1
                let line = Line(
                    number: lineNumber, offset: fileOffset, bytes: Array(buffer[position...]), terminated: false)
                fileOffset += buffer.count - position
                position = buffer.count
                return line
            }
            buffer.removeFirst(position)
            position = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AuditIOError(path: path, operation: "read", code: errno)
            }
            if count == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<count]) }
        }
    }
}

/// Segment files: `<dir>/audit-<first seq, 20 digits>.jsonl`.
public enum AuditSegments {
    public static func fileName(firstSeq: Int64) -> String {
        let digits = String(firstSeq)
        return "audit-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".jsonl"
    }

    /// The first seq a segment file name announces; nil for any other file name.
    public static func firstSeq(ofFileName name: String) -> Int64? {
        guard name.hasPrefix("audit-"), name.hasSuffix(".jsonl") else { return nil }
        let digits = name.dropFirst(6).dropLast(6)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(digits)
    }

    /// The segment files in `dir`, in log order (names sort as their seq).
    public static func list(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { firstSeq(ofFileName: $0) != nil }.sorted()
    }
}
