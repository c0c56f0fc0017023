import NIOCore
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// Masking keys for the frames the proxy sends as a client (RFC 6455 §5.3: unpredictable, from a strong source of
/// entropy). `WebSocketMaskingKey.random()` makes one `getrandom` system call per frame (as does every draw of
/// `SystemRandomNumberGenerator`); this reads 4 KiB at a time from the kernel's generator per event-loop thread:
/// 1,024 keys per system call.
enum MaskingKeys {
    /// The kernel's generator as a file, opened once; -1 if it cannot be opened.
    private static let urandom: Int32 = {
        #if canImport(Glibc)
            return open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        #else
            return -1
        #endif
    }()

    /// Fills `buffer` from the kernel's generator in one read; from the system generator, 8 bytes a call, if that
    /// fails.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        #if canImport(Glibc)
            while urandom >= 0, offset < buffer.count {
                let count = read(urandom, buffer.baseAddress! + offset, buffer.count - offset)
                if count <= 0 {
                    if count < 0 && errno == EINTR { continue }
                    break
                }
                offset += count
            }
        #endif
        var generator = SystemRandomNumberGenerator()
        while offset < buffer.count {
            withUnsafeBytes(of: generator.next() as UInt64) { word in
                let count = min(word.count, buffer.count - offset)
                buffer.baseAddress!.advanced(by: offset).copyMemory(from: word.baseAddress!, byteCount: count)
                offset += count
            }
        }
    }

    /// Thread-specific: only the event-loop thread that made it ever touches it, which is what makes it safe to
    /// hand to `ThreadSpecificVariable` (which requires Sendable values).
    private final class Pool: @unchecked Sendable {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var next = 4096
    }

    private static let pools = ThreadSpecificVariable<Pool>()

    /// The next key, in wire order (the first key byte in the high bits).
    static func next() -> UInt32 {
        let pool: Pool
        if let existing = pools.currentValue {
            pool = existing
        } else {
            pool = Pool()
            pools.currentValue = pool
        }
        if pool.next + 4 > pool.bytes.count {
            pool.bytes.withUnsafeMutableBytes { fill($0) }
            pool.next = 0
        }
        defer { pool.next += 4 }
        let i = pool.next
        return UInt32(pool.bytes[i]) << 24 | UInt32(pool.bytes[i + 1]) << 16 | UInt32(pool.bytes[i + 2]) << 8
            | UInt32(pool.bytes[i + 3])
    }
}
