import ArgumentParser
import Foundation
import OCPP
import OCPPAuditRedaction

/// The record filters `audit query` and `audit export` share.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .long, help: "The audit log directory (audit-*.jsonl).")
    var dir: String

    @Option(name: .long, help: "Only records of this charger identity.")
    var charger: String?

    @Option(name: .long, help: "Only frames of this OCPP action (msg.action).")
    var action: String?

    @Option(name: .long, help: "Only records of this event: frame, connect, disconnect, admission, tls, …")
    var event: String?

    @OptionGroup var time: AuditTimeRange

    @Option(name: .long, help: "Only records of this session (connection id).")
    var session: String?

    var filter: AuditFilter {
        AuditFilter(
            charger: charger, action: action, event: event, session: session, since: time.since, until: time.until)
    }

    /// Runs the query, writing one line per matching record to standard output; unreadable lines are named on
    /// standard error as file:line and skipped.
    func run(_ line: (ArraySlice<UInt8>, JSONValue) -> [UInt8]) throws {
        var output = BufferedOutput()
        defer { output.flush() }
        try Self.read(dir: dir, filter: filter) { text, record in output.write(line(text, record)) }
    }

    /// The records of `dir` that match `filter`, in log order; a line that is not JSON is named on standard error
    /// as file:line and skipped, a directory that cannot be read is one error line and exit status 1.
    static func read(dir: String, filter: AuditFilter, _ body: (ArraySlice<UInt8>, JSONValue) -> Void) throws {
        do {
            try AuditSegments.query(
                directory: dir, filter: filter,
                unreadable: {
                    FileHandle.standardError.write(Data("warning: \($0): not a JSON object, skipped\n".utf8))
                }, body)
        } catch {
            FileHandle.standardError.write(Data("error: \(dir): \(error.localizedDescription)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `--since` and `--until`, checked as RFC 3339 times.
struct AuditTimeRange: ParsableArguments {
    @Option(
        name: .customLong("since"), help: "Only records at or after this time (RFC 3339, e.g. 2026-11-30T08:00:00Z).")
    var sinceText: String?

    @Option(name: .customLong("until"), help: "Only records before this time (RFC 3339).")
    var untilText: String?

    func validate() throws {
        for (name, value) in [("--since", sinceText), ("--until", untilText)] {
            if let value, AuditTime.microseconds(value) == nil {
                throw ValidationError(
                    "\(name): expected an RFC 3339 time such as 2026-11-30T08:00:00Z, got \"\(value)\"")
            }
        }
    }

    /// Microseconds since 1970, as the filter takes them.
    var since: Int64? { sinceText.flatMap(AuditTime.microseconds) }
    var until: Int64? { untilText.flatMap(AuditTime.microseconds) }
}

/// Standard output in 64 KiB writes.
struct BufferedOutput {
    var buffer: [UInt8] = []

    mutating func write(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

struct AuditQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print the audit records that match every filter given, as JSON Lines, in log order.",
        discussion: """
            Reads the segments audit-*.jsonl in name order and skips a closed segment whose index (audit-*.idx) \
            shows it cannot match. A line that is not JSON is named on standard error as file:line and skipped: \
            `audit verify` checks the log, `query` only reads it.
            """)

    @OptionGroup var filters: AuditFilterOptions

    func run() throws {
        try filters.run { text, _ in Array(text) }
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write the audit records for a SIEM to standard output: jsonl, ocsf (OCSF 1.3 events) or syslog (RFC 5424)."
    )

    @OptionGroup var filters: AuditFilterOptions

    @Option(name: .long, help: "jsonl, ocsf or syslog.")
    var format: String

    func validate() throws {
        if AuditExportFormat(rawValue: format) == nil {
            throw ValidationError("--format: expected jsonl, ocsf or syslog, got \"\(format)\"")
        }
    }

    func run() throws {
        let format = AuditExportFormat(rawValue: format)!
        try filters.run { text, record in
            format == .jsonl
                ? Array(text)
                : Array(AuditExporter.line(record, text: String(decoding: text, as: UTF8.self), format: format).utf8)
        }
    }
}
