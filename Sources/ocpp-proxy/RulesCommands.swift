import ArgumentParser
import Foundation
import OCPP
import OCPPProxy
import OCPPRules

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Work with the translation rule files.", subcommands: [RulesCheck.self])
}

struct RulesCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load every rule file and report each problem as file:line (status 1 when there is one).")

    @Option(name: .long, help: "The rules directory.")
    var rules: String = "Rules"

    func run() throws {
        let library = try loadRuleDirectory(rules)
        for set in library.ruleSets {
            print(
                "\(set.file): \(set.from) → \(set.to): \(set.charger.count) charger rules, \(set.csms.count) CSMS rules, \(set.enums.count) enum maps"
            )
        }
        print("rules OK")
    }
}

/// Loads a rules directory, or exits with `status` after printing every problem as `error: <label>file:line: …`.
func loadRuleDirectory(_ path: String, failingWith status: Int32 = 1, label: String = "") throws -> RuleLibrary {
    do {
        return try RuleDirectory.load(path)
    } catch {
        for issue in error.issues { FileHandle.standardError.write(Data("error: \(label)\(issue)\n".utf8)) }
        throw ExitCode(status)
    }
}

struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate OCPP-J frames offline, one per line, and print what the proxy would send.",
        discussion: """
            Each input line is a CALL in the --from version, or the answer (CALLRESULT or CALLERROR) to a CALL printed \
            earlier, by its message id. Each output line is a JSON object: line, input, send (frames with the side they \
            go to), state (what would be written to the state store) and log.
            """)

    @Option(name: .long, help: "The version of the frames' sender (e.g. ocpp1.6).")
    var from: String

    @Option(name: .long, help: "The version to translate into (e.g. ocpp2.0.1).")
    var to: String

    @Option(name: .long, help: "The rules directory.")
    var rules: String = "Rules"

    @Option(
        name: .long,
        help: """
            The charger's version, --from or --to (default: --from when rule files lead from it to --to). Needed when \
            files lead both ways: with ocpp1.6-ocpp2.0.1.yaml and ocpp2.0.1-ocpp1.6.yaml, --from ocpp2.0.1 --to \
            ocpp1.6 reads a 2.0.1 station's CALLs unless --charger ocpp1.6 says they are a 2.0.1 CSMS's.
            """)
    var charger: String?

    @Option(name: .long, help: "The time now() returns, RFC 3339 (default: the current time).")
    var now: String?

    @Option(name: .long, help: "When the charger connected, RFC 3339 (connectedAt() in the rules; default: unknown).")
    var connected: String?

    @Option(name: .long, help: "The charger's identity (names its transaction ids).")
    var identity: String = "translate"

    @Option(name: .long, help: "A capability the charger has (capability(name) in the rules); repeatable.")
    var capability: [String] = []

    @Option(
        name: .long, help: "The charger's EVSE layout as JSON: the 1.6 connector ids of each EVSE, e.g. [[1,2],[3]].")
    var evses: String?

    @Argument(help: "A file of frames, or - for standard input.")
    var file: String = "-"

    func run() throws {
        guard let fromVersion = OCPPVersion(rawValue: from), let toVersion = OCPPVersion(rawValue: to) else {
            throw ValidationError("--from and --to take \(OCPPVersion.allNames)")
        }
        if let now, DateTimeText.parse(now) == nil { throw ValidationError("--now: not an RFC 3339 date-time: \(now)") }
        if let connected, DateTimeText.parse(connected) == nil {
            throw ValidationError("--connected: not an RFC 3339 date-time: \(connected)")
        }
        for name in capability where !ChargerProfile.knownCapabilities.contains(name) {
            throw ValidationError(
                "--capability: unknown capability \(name); expected one of \(ChargerProfile.knownCapabilities.sorted().joined(separator: ", "))"
            )
        }
        var layout: EVSELayout?
        if let evses {
            guard case .array(let items)? = JSONValue(parsing: Array(evses.utf8)) else {
                throw ValidationError("--evses: expected a JSON list of lists of connector ids, e.g. [[1,2],[3]]")
            }
            var ids: [[Int64]] = []
            for item in items {
                guard case .array(let connectors) = item else {
                    throw ValidationError("--evses: expected a JSON list of lists of connector ids, e.g. [[1,2],[3]]")
                }
                ids.append(
                    try connectors.map { connector throws(ValidationError) -> Int64 in
                        guard case .integer(let id) = connector else {
                            throw ValidationError("--evses: connector ids are integers, got \(connector.jsonText)")
                        }
                        return id
                    })
            }
            if let problem = EVSELayout.problem(ids) { throw ValidationError("--evses: \(problem)") }
            layout = EVSELayout(ids)
        }
        let library = try loadRuleDirectory(rules)
        // A CALL comes from the --from side: the charger's when a path of rule files leads from --from to --to
        // (one file, or several in a row: ocpp1.5 → ocpp1.6 → ocpp2.0.1), else the CSMS's of the reverse path.
        let callSide: Side
        let ruleSets: [RuleSet]
        let chargerVersion = try charger.map { name throws(ValidationError) -> OCPPVersion in
            guard let version = OCPPVersion(rawValue: name), version == fromVersion || version == toVersion else {
                throw ValidationError("--charger: expected \(from) or \(to), got \(name)")
            }
            return version
        }
        if let chargerVersion {
            let csmsVersion = chargerVersion == fromVersion ? toVersion : fromVersion
            guard let sets = library.chain(charger: chargerVersion, csms: csmsVersion) else {
                FileHandle.standardError.write(
                    Data("error: no rule files translate \(chargerVersion) chargers to a \(csmsVersion) CSMS\n".utf8))
                throw ExitCode(1)
            }
            (ruleSets, callSide) = (sets, chargerVersion == fromVersion ? .charger : .csms)
        } else if let sets = library.chain(charger: fromVersion, csms: toVersion) {
            (ruleSets, callSide) = (sets, .charger)
        } else if let sets = library.chain(charger: toVersion, csms: fromVersion) {
            (ruleSets, callSide) = (sets, .csms)
        } else {
            FileHandle.standardError.write(Data("error: no rule files translate between \(from) and \(to)\n".utf8))
            throw ExitCode(1)
        }
        let input: String
        if file == "-" {
            input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                FileHandle.standardError.write(Data("error: cannot read \(file)\n".utf8))
                throw ExitCode(1)
            }
            input = text
        }
        let session = TranslationChain(
            ruleSets: ruleSets, state: ChainState(), ids: CountingIdentifiers(), messageIdPrefix: "t",
            profile: ChargerProfile(identity: identity, capabilities: Set(capability), layout: layout),
            connectedAt: connected.flatMap(DateTimeText.parse)?.utcText)
        let clock =
            now.flatMap(DateTimeText.parse)?.utcText
            ?? DateTimeText(seconds: Int64(Date().timeIntervalSince1970)).utcText
        for (index, line) in input.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            var record: JSONObject = ["line": .integer(Int64(index + 1))]
            let parsed = JSONValue(parsing: Array(text.utf8))
            record["input"] = parsed ?? .string(text)
            // A CALL comes from the --from side; an answer from whichever side the proxy sent that message id.
            let side: Side
            if case .array(let elements)? = parsed, elements.first == .integer(2) {
                side = callSide
            } else if case .array(let elements)? = parsed, elements.count > 1, case .string(let id) = elements[1],
                let awaiting = session.side(awaiting: id)
            {
                side = awaiting
            } else {
                side = callSide.other
            }
            switch RPCFrame.parse(Array(text.utf8), version: session.version(of: side)) {
            case .failure(let error):
                record["send"] = .array([])
                record["log"] = .array([.string("not an OCPP-J frame: \(error)")])
            case .success(let frame):
                let output = session.receive(frame, from: side, now: clock)
                record["send"] = .array(
                    output.frames.map { .object(["to": .string($0.side.rawValue), "frame": $0.frame.json]) })
                // The first edge's changes as a single rule file writes them; a later edge's under its name.
                record["state"] = .array(
                    output.changes.map { change in
                        change.edge.isEmpty
                            ? change.change.json
                            : .object(["edge": .string(change.edge), "change": change.change.json])
                    })
                record["log"] = .array(output.logs.map { .string("\($0.level.rawValue): \($0.message)") })
            }
            print(JSONValue.object(record).jsonText)
        }
    }
}
