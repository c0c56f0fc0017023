import Foundation

/// The resident set size of this process: what the kernel would count against a container's memory limit.
enum ResidentMemory {
    /// Bytes resident now, from `/proc/self/statm`; nil where there is no such file (not Linux) or it cannot be read.
    static func current() -> Int? {
        let descriptor = open("/proc/self/statm", O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parse(statm: buffer.prefix(count), pageSize: sysconf(Int32(_SC_PAGESIZE)))
    }

    /// `statm`'s second field (resident pages) times the page size; nil when it is not there or overflows.
    static func parse(statm: some Collection<UInt8>, pageSize: Int) -> Int? {
        let fields = String(decoding: statm, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard pageSize > 0, fields.count >= 2, let pages = Int(fields[1]), pages >= 0 else { return nil }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? nil : bytes
    }
}
