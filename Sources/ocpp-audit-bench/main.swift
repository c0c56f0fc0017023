import Foundation
import OCPPAuditRedaction
import OCPPProxy

// Audit records per second the proxy's writer sustains on one core (BENCHMARKS.md, "Audit log on vs off").
// Usage: ocpp-audit-bench [--mode phases|log] [--exchanges N] [--batch N] [--scenario mixed|meter]
//                         [--payloads redacted|full|none] [--dir DIR] [--no-verify]
// Each exchange is four records (a CALL and its CALLRESULT, each received and forwarded). Build with -c release.

var options = AuditWriterBenchmark.Options(directory: "/tmp/ocpp-audit-bench")
var arguments = CommandLine.arguments.dropFirst()
func value(_ name: String, _ arguments: inout ArraySlice<String>) -> String {
    guard let value = arguments.popFirst() else {
        FileHandle.standardError.write(Data("error: \(name) needs a value\n".utf8))
        exit(2)
    }
    return value
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--mode": options.mode = AuditWriterBenchmark.Mode(rawValue: value(argument, &arguments)) ?? .phases
    case "--exchanges": options.exchanges = Int(value(argument, &arguments)) ?? options.exchanges
    case "--batch": options.batch = max(1, Int(value(argument, &arguments)) ?? options.batch)
    case "--scenario": options.scenario = value(argument, &arguments)
    case "--payloads": options.payloads = AuditPayloadMode(rawValue: value(argument, &arguments)) ?? .redacted
    case "--dir": options.directory = value(argument, &arguments)
    case "--no-verify": options.verify = false
    default:
        FileHandle.standardError.write(Data("error: unknown argument \(argument)\n".utf8))
        exit(2)
    }
}
do {
    print(try AuditWriterBenchmark.run(options))
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
