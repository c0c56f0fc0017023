import Foundation
import OCPP
import Testing

@testable import OCPPRules

@Suite("Definition files of the repository and of other kinds")
struct DefinitionFileTests {
    static let rulesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Rules")

    static func repositorySources() throws -> RuleSources {
        var files: [String: String] = [:]
        for folder in RuleSources.folders {
            let directory = rulesDirectory.appendingPathComponent(folder)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
            where name.hasSuffix(".yaml") {
                files[folder + name] = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            }
        }
        return RuleSources(files: files, directory: "Rules")
    }

    @Test func theRulesDirectoryLoadsWithTheOCPP15DefinitionsAndTheSOAPLayouts() throws {
        let sources = try Self.repositorySources()
        #expect(sources.files["definitions/ocpp1.5.yaml"] != nil)
        #expect(sources.files["soap/ocpp1.6.yaml"] != nil)
        let library = try RuleLibrary.load(sources)
        #expect(Set(library.definitions.keys) == [.v1_5, .v1_6, .v2_0_1])
        let boot = try #require(library.definitions[.v1_5]?.messages["BootNotification"])
        #expect(boot.sentBy == .chargingStation)
        guard case .object(let response) = boot.response else { Issue.record("not an object"); return }
        #expect(response.fields.map(\.name) == ["status", "currentTime", "heartbeatInterval"])
    }

    @Test func aFileOfAnotherKindMayCarryMessagesBesideItsOwnKeys() throws {
        let text = """
            version: ocpp1.6
            namespaces: {centralSystem: "urn://x/"}
            messages:
              Heartbeat: {sentBy: chargingStation, request: {}, response: {currentTime!: datetime}}
            """
        let definitions = try RuleLibrary.readDefinitions(text, file: "soap/x.yaml", otherKeys: ["namespaces"])
        #expect(definitions.messages["Heartbeat"]?.sentBy == .chargingStation)
        #expect(throws: RuleErrors.self) { try RuleLibrary.readDefinitions(text, file: "soap/x.yaml") }
    }
}
