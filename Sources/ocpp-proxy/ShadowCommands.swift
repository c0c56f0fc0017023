import ArgumentParser
import Foundation
import OCPP
import OCPPAuditRedaction

struct ShadowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadow", abstract: "Read what shadow CSMSs answered.", subcommands: [ShadowReportCommand.self])
}

struct ShadowReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Sum up the shadow CSMSs' divergences from the primary, per action and per charger.",
        discussion: """
            Reads the shadow_compared, shadow_call and shadow_link records of the audit log (audit.dir): how many \
            answers of each action were compared, how many diverged and how (status, missing_field, extra_field, \
            different_value, error_vs_result, different_error, timeout), and the fields that differed most. \
            Run `audit verify` first when the report has to be trusted.
            """)

    @Option(name: .long, help: "The audit log directory (audit.dir).")
    var audit: String

    @OptionGroup var time: AuditTimeRange

    @Option(name: .long, help: "Only this charger.")
    var charger: String?

    @Option(name: .long, help: "text or json.")
    var format: String = "text"

    func validate() throws {
        guard ["text", "json"].contains(format) else {
            throw ValidationError("--format: expected text or json, got \"\(format)\"")
        }
    }

    func run() throws {
        var report = ShadowReport()
        let filter = AuditFilter(charger: charger, since: time.since, until: time.until)
        try AuditFilterOptions.read(dir: audit, filter: filter) { _, record in report.add(record) }
        let output = format == "json" ? report.json.wireText + "\n" : report.text
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
