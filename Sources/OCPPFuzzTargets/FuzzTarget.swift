import Foundation
import OCPP
import OCPPRules
import OCPPSOAP

/// An in-process fuzz target: one input in, nothing out. A target traps when the code under test traps, and
/// through ``FuzzInvariant`` when two readers of the same input disagree; it never traps for an input that is
/// merely invalid. Driven by libFuzzer (`ocpp-fuzz` built with `-sanitize=fuzzer`, Tests/Fuzz/run_libfuzzer.sh)
/// and by the corpus replay in `swift test` (Tests/Fuzz/corpus/<target>/).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `JSONValue(parsing:)`: re-serialised text parses to the same value; the envelope's checker agrees.
    case json
    /// `RPCEnvelope.parse` (pass-through) against `RPCFrame.parse` (translating), in every version.
    case envelope
    /// `Shape.violation(of:)` and `tolerate` against every message definition of Rules/definitions/.
    case definitions
    /// `TranslationSession` with the repository's rules, driven from both sides.
    case rules
    /// `SOAPCodec` (the hardened XML reader under it) with the SOAP layouts of Rules/soap/: requests and answers.
    case soap
    /// `WebSocketFrameHeader.parse` (the proxy's frame relay) on any bytes, read as a stream of frames.
    case websocket

    /// Whether the target needs the rules directory.
    public var needsRules: Bool { self != .json && self != .envelope && self != .websocket }
}

/// The loaded state a target needs: nothing for the parsers, the rule library for the others. Loaded once per
/// process; each input then runs without I/O.
public struct FuzzHarness: Sendable {
    public let target: FuzzTarget
    let library: RuleLibrary?
    let ruleSet: RuleSet?
    /// Every message definition, request and response, in a stable order (definitions target).
    let shapes: [DefinitionShape]
    /// The SOAP codec (soap target).
    let soap: SOAPCodec?

    struct DefinitionShape: Sendable {
        var name: String
        var shape: Shape
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(target: FuzzTarget, rulesDirectory: String? = nil) throws(SetupError) {
        self.target = target
        guard target.needsRules else {
            library = nil
            ruleSet = nil
            shapes = []
            soap = nil
            return
        }
        let directory = rulesDirectory ?? Self.defaultRulesDirectory
        let (library, sources) = try Self.loadRules(directory)
        do {
            soap = target == .soap ? SOAPCodec(layouts: try SOAPLayouts.load(sources)) : nil
        } catch {
            throw SetupError(description: "\(directory)/soap: \(error)")
        }
        guard let ruleSet = library.ruleSet(charger: .v1_6, csms: .v2_0_1) else {
            throw SetupError(description: "no ocpp1.6 → ocpp2.0.1 rule file in \(directory)")
        }
        self.library = library
        self.ruleSet = ruleSet
        var shapes: [DefinitionShape] = []
        for version in library.definitions.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            let messages = library.definitions[version]!.messages
            for action in messages.keys.sorted() {
                shapes.append(.init(name: "\(version) \(action) request", shape: messages[action]!.request))
                shapes.append(.init(name: "\(version) \(action) response", shape: messages[action]!.response))
            }
        }
        self.shapes = shapes
    }

    /// `OCPP_RULES_DIR`, else `Rules` in the working directory, else the repository's Rules/ next to this source.
    public static var defaultRulesDirectory: String {
        if let directory = ProcessInfo.processInfo.environment["OCPP_RULES_DIR"], !directory.isEmpty {
            return directory
        }
        if FileManager.default.fileExists(atPath: "Rules/definitions") { return "Rules" }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Rules").path
    }

    static func loadRules(_ directory: String) throws(SetupError) -> (RuleLibrary, RuleSources) {
        var files: [String: String] = [:]
        for folder in RuleSources.folders {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + folder)) ?? []
            for name in names where name.hasSuffix(".yaml") {
                files[folder + name] = try? String(contentsOfFile: directory + "/" + folder + name, encoding: .utf8)
            }
        }
        guard !files.isEmpty else { throw SetupError(description: "no rule files in \(directory) (OCPP_RULES_DIR)") }
        let sources = RuleSources(files: files, directory: directory)
        do {
            return (try RuleLibrary.load(sources), sources)
        } catch {
            throw SetupError(description: "\(directory): \(error)")
        }
    }

    /// Runs one input through the target.
    public func run(_ bytes: UnsafeRawBufferPointer) {
        let buffer = bytes.bindMemory(to: UInt8.self)
        switch target {
        case .json: JSONTargets.json(buffer)
        case .envelope: JSONTargets.envelope(buffer)
        case .definitions: DefinitionsTarget(shapes: shapes).run(bytes)
        case .rules: RulesTarget(rules: ruleSet!).run(bytes)
        case .soap: if let soap { SOAPTarget(codec: soap).run(buffer) }
        case .websocket: WebSocketTarget.run(bytes)
        }
    }

    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }

    /// Tokens for a libFuzzer dictionary (`-dict=`): action, field and enum names of the definitions, and the
    /// JSON and frame fragments the targets look for.
    public func dictionary() -> [String] {
        var tokens: Set<String> = [
            "[2,\"", "[3,\"", "[4,\"", "[5,\"", "[6,\"", "\",{", "\"@\"", "{}", "[]", "null", "true", "false",
            "1e300", "-1e300", "9223372036854775808", "-9223372036854775809", "2147483648", "1.5", "-0", "0.0",
            "\\u0000", "\\ud83d\\ude00", "\\ud800", "2026-01-01T00:00:00Z", "#lenient",
        ]
        for definitions in library?.definitions.values.map({ $0 }) ?? [] {
            for (action, message) in definitions.messages {
                tokens.insert("\"\(action)\"")
                for shape in [message.request, message.response] { Self.names(in: shape, into: &tokens) }
            }
        }
        return tokens.sorted()
    }

    private static func names(in shape: Shape, into tokens: inout Set<String>) {
        switch shape {
        case .object(let object):
            for field in object.fields {
                tokens.insert("\"\(field.name)\":")
                names(in: field.shape, into: &tokens)
            }
        case .array(let element, _, _): names(in: element, into: &tokens)
        case .enumeration(let values): for value in values { tokens.insert("\"\(value)\"") }
        default: break
        }
    }
}

/// A broken invariant: reported on stderr with the detail, then a trap that libFuzzer records as a crash.
enum FuzzInvariant {
    static func check(
        _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
        line: UInt = #line
    ) {
        if !condition() { fail(message(), file: file, line: line) }
    }

    static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        FileHandle.standardError.write(Data("ocpp-fuzz: invariant broken (\(file):\(line)): \(message)\n".utf8))
        fatalError("fuzz invariant broken: \(message)", file: file, line: line)
    }
}
