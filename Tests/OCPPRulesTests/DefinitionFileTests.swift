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
    @Test func numberConstraintsMinimumAndMultipleOf() throws {
        let text = """
            version: ocpp1.6
            messages:
              X:
                sentBy: csms
                request: {a: "number(multipleOf 0.1)", b: "number(>=0 multipleOf 0.5)", c: number(>=1), d: number}
                response: {}
            """
        let definitions = try RuleLibrary.readDefinitions(text, file: "definitions/x.yaml")
        guard case .object(let request)? = definitions.messages["X"]?.request else {
            Issue.record("no request")
            return
        }
        func constraints(_ name: String) -> (Double?, Double?)? {
            guard case .number(let minimum, let step)? = request.field(name)?.shape else { return nil }
            return (minimum, step)
        }
        #expect(constraints("a").map { $0.0 == nil && $0.1 == 0.1 } == true)
        #expect(constraints("b").map { $0.0 == 0 && $0.1 == 0.5 } == true)
        #expect(constraints("c").map { $0.0 == 1 && $0.1 == nil } == true)
        #expect(constraints("d").map { $0.0 == nil && $0.1 == nil } == true)
        for bad in [
            "number(multipleOf)", "number(multipleOf 0)", "number(multipleOf -1)", "number(>=0,multipleOf 1)",
            "number(multipleOf 0.1 multipleOf 0.2)", "number()",
        ] {
            let broken = text.replacingOccurrences(of: "number(multipleOf 0.1)", with: bad)
            #expect(throws: RuleErrors.self, "\(bad)") {
                try RuleLibrary.readDefinitions(broken, file: "definitions/x.yaml")
            }
        }
    }

    @Test func theOCPP16ChargingLimitsAreMultiplesOfATenth() throws {
        let library = try RuleLibrary.load(try Self.repositorySources())
        let message = try #require(library.definitions[.v1_6]?.messages["SetChargingProfile"])
        func payload(_ limit: String) -> JSONValue {
            JSONValue(
                parsing: Array(
                    (#"{"connectorId":1,"csChargingProfiles":{"chargingProfileId":1,"stackLevel":0,"#
                        + #""chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Relative","#
                        + #""chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"#
                        + #""limit":\#(limit)}]}}}"#).utf8))!
        }
        for good in ["16", "16.3", "0.3", "7.7", "-0.1", "22000.1", "1e3"] {
            #expect(message.request.violation(of: payload(good)) == nil, "\(good)")
        }
        for bad in ["16.35", "0.01", "7.77", "1e-3"] {
            let violation = message.request.violation(of: payload(bad))
            #expect(violation?.kind == .badValue, "\(bad)")
            #expect(violation?.path == "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit")
        }
    }
}
