import ArgumentParser

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Work with the audit log.",
        subcommands: [AuditQuery.self, AuditExport.self])
}
