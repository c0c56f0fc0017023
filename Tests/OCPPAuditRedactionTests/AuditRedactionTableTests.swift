import Foundation
import OCPP
import OCPPRules
import Testing

@testable import OCPPAuditRedaction

/// The definition files of the repository, read with OCPPRules.
enum Definitions {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Rules/definitions")

    static func all() throws -> [MessageDefinitions] {
        try ["ocpp1.5", "ocpp1.6", "ocpp2.0.1"].map { name in
            let text = try String(contentsOf: directory.appendingPathComponent("\(name).yaml"), encoding: .utf8)
            return try RuleLibrary.readDefinitions(text, file: "definitions/\(name).yaml")
        }
    }

    /// Every leaf field's path (dotted, `[]` for list elements), in definition order.
    static func leaves(_ shape: Shape, prefix: String = "") -> [String] {
        switch shape {
        case .object(let object):
            return object.fields.flatMap { leaves($0.shape, prefix: prefix.isEmpty ? $0.name : "\(prefix).\($0.name)") }
        case .array(let element, _, _):
            return leaves(element, prefix: prefix + "[]")
        default:
            return prefix.isEmpty ? [] : [prefix]
        }
    }
}

@Suite("AuditRedactionTable drift: the table matches Rules/definitions/*.yaml")
struct AuditRedactionTableDriftTests {
    @Test func theGeneratedTableIsWhatTheDefinitionFilesGive() throws {
        var recomputed: Set<AuditRedactionTable.Entry> = []
        for definitions in try Definitions.all() {
            for (action, message) in definitions.messages {
                for (kind, shape) in [
                    (AuditRedactionTable.Kind.request, message.request), (.response, message.response),
                ] {
                    for path in Definitions.leaves(shape) {
                        if let treatment = AuditRedactionTable.classify(action: action, path: path) {
                            recomputed.insert(.init(definitions.version.rawValue, action, kind, path, treatment))
                        }
                    }
                }
            }
        }
        let table = Set(AuditRedactionTable.generated)
        #expect(table.count == AuditRedactionTable.generated.count, "duplicate entries")
        let missing = recomputed.subtracting(table).map(\.description).sorted()
        let stale = table.subtracting(recomputed).map(\.description).sorted()
        #expect(missing.isEmpty, "run tools/gen_audit_redaction.py; missing: \(missing)")
        #expect(stale.isEmpty, "run tools/gen_audit_redaction.py; stale: \(stale)")
    }

    @Test func everyConditionalSecretNamesFieldsOfItsMessage() throws {
        let byVersion = Dictionary(uniqueKeysWithValues: try Definitions.all().map { ($0.version.rawValue, $0) })
        for secret in AuditRedactionTable.conditionalSecrets {
            let message = try #require(byVersion[secret.version]?.messages[secret.action], "\(secret)")
            let leaves = Set(Definitions.leaves(secret.kind == .request ? message.request : message.response))
            let prefix = secret.container.isEmpty ? "" : secret.container + "."
            #expect(leaves.contains(prefix + secret.namePath), "\(secret.action): \(prefix + secret.namePath)")
            #expect(leaves.contains(secret.path), "\(secret.action): \(secret.path)")
        }
    }

    @Test func theContractsFieldsAreInTheTable() {
        let table = Set(
            AuditRedactionTable.generated.map { "\($0.version) \($0.action) \($0.kind.rawValue) \($0.path)" })
        for expected in [
            "ocpp1.6 SendLocalList request localAuthorizationList[].idTag",
            "ocpp1.6 SendLocalList request localAuthorizationList[].idTagInfo.parentIdTag",
            "ocpp1.5 SendLocalList request localAuthorisationList[].idTag",
            "ocpp2.0.1 SendLocalList request localAuthorizationList[].idToken.idToken",
            "ocpp2.0.1 TransactionEvent request idToken.idToken",
            "ocpp2.0.1 RequestStartTransaction request groupIdToken.idToken",
            "ocpp2.0.1 SetNetworkProfile request connectionData.vpn.password",
            "ocpp1.6 SignCertificate request csr",
            "ocpp2.0.1 DataTransfer response data",
        ] {
            #expect(table.contains(expected), "\(expected)")
        }
    }
}

@Suite("AuditRedactor over every message of every definition file")
struct AuditRedactionSweepTests {
    static let tokenMarker = "SECRET-TOKEN"
    static let secretMarker = "SECRET-PASSWORD"
    static let certificateMarker = "SECRET-CERTIFICATE"

    /// A payload with every field of the shape; marker values in every field the redactor must not keep.
    static func sample(
        _ shape: Shape, path: String, action: String, secrets: [AuditRedactionTable.ConditionalSecret]
    ) -> JSONValue {
        switch shape {
        case .object(let object):
            var members: JSONObject = [:]
            for field in object.fields {
                let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
                members[field.name] = sample(field.shape, path: fieldPath, action: action, secrets: secrets)
            }
            return .object(members)
        case .array(let element, _, _):
            return .array([
                sample(element, path: path + "[]", action: action, secrets: secrets),
                sample(element, path: path + "[]", action: action, secrets: secrets),
            ])
        case .enumeration(let values): return .string(values[0])
        case .integer:
            return AuditRedactionTable.classify(action: action, path: path) == .secret ? .integer(987_654) : .integer(1)
        case .number: return .number(1.5)
        case .boolean: return .bool(true)
        case .dateTime: return .string("2026-01-01T00:00:00Z")
        case .string, .any:
            if secrets.contains(where: { $0.path == path }) { return .string(secretMarker + "-" + path) }
            if let secret = secrets.first(where: {
                ($0.container.isEmpty ? "" : $0.container + ".") + $0.namePath == path
            }) {
                return .string(secret.version.hasPrefix("ocpp2") ? "BasicAuthPassword" : "AuthorizationKey")
            }
            switch AuditRedactionTable.classify(action: action, path: path) {
            case .token: return .string(tokenMarker + "-" + path)
            case .secret: return .string(secretMarker + "-" + path)
            case .certificate, .data: return .string(certificateMarker + "-" + path)
            case nil: return .string("plain")
            }
        }
    }

    @Test func noMarkerSurvivesRedactedModeAndNoSecretSurvivesFullMode() throws {
        let redacted = AuditRedactor(mode: .redacted, pseudonymKey: "k")
        let full = AuditRedactor(mode: .full, pseudonymKey: "k")
        var messages = 0
        var markers = 0
        for definitions in try Definitions.all() {
            let versions: [OCPPVersion] = definitions.version == .v2_0_1 ? [.v2_0_1, .v2_1] : [definitions.version]
            for (action, message) in definitions.messages {
                for (kind, shape) in [
                    (AuditRedactionTable.Kind.request, message.request), (.response, message.response),
                ] {
                    let secrets = AuditRedactionTable.conditionalSecrets.filter {
                        $0.version == definitions.version.rawValue && $0.action == action && $0.kind == kind
                    }
                    let payload = Self.sample(shape, path: "", action: action, secrets: secrets)
                    let before = payload.jsonText
                    if before.contains("SECRET") { markers += 1 }
                    for version in versions {
                        messages += 1
                        let out = redacted.redact(payload: payload, version: version, action: action, kind: kind)
                        let text = out.payload?.jsonText ?? ""
                        #expect(!text.contains("SECRET"), "\(version) \(action) \(kind): \(text)")
                        #expect(!text.contains("987654"), "\(version) \(action) \(kind): \(text)")
                        #expect(before.contains("SECRET") == !out.redacted.isEmpty, "\(version) \(action) \(kind)")
                        let kept = full.redact(payload: payload, version: version, action: action, kind: kind)
                        let keptText = kept.payload?.jsonText ?? ""
                        #expect(!keptText.contains(Self.secretMarker), "\(version) \(action) \(kind): \(keptText)")
                        #expect(!keptText.contains("987654"), "\(version) \(action) \(kind): \(keptText)")
                        // full mode keeps the tokens and certificates as they are.
                        if before.contains(Self.tokenMarker) { #expect(keptText.contains(Self.tokenMarker)) }
                    }
                }
            }
        }
        #expect(messages > 150)
        #expect(markers > 40)
    }
}
