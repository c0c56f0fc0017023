import Foundation
import OCPP
import TestSupport
import Testing

@testable import OCPPAuditRedaction

/// The audit writer copies a payload as it came when ``AuditRedactor/mayRedact(_:)`` says the redactor has nothing
/// to act on: that must never let through what the redactor would have changed, in any mode, for any action.
@Suite("Payloads copied as they came: only what the redactor would keep whole")
struct PayloadCopyTests {
    static let names = [
        "connectorId", "status", "timestamp", "meterValue", "sampledValue", "value", "idTag", "IdTag", "parentIdTag",
        "idToken", "additionalIdToken", "groupIdToken", "key", "vpn", "data", "vendorId", "certificate",
        "caCertificate", "csr", "exiRequest", "exiResponse", "simPin", "password", "WifiPassword", "basicAuthPassword",
        "connectionData", "configurationKey", "variable", "name", "attributeValue", "setVariableData", "customData",
        "PRIVATE KEY x", "transactionId", "info", "id\\u0054ag",
    ]
    static let strings = [
        "Accepted", "AuthorizationKey", "BasicAuthPassword", "WifiPassword", "-----BEGIN PRIVATE KEY-----", "x y",
        "2026-12-07T08:00:00Z", "id\\u0054ag", "Key", "DATA",
    ]

    static func value(_ random: inout SplitMix64, depth: Int) -> String {
        switch random.next() % (depth > 2 ? 3 : 5) {
        case 0: return "\"\(strings[Int(random.next() % UInt64(strings.count))])\""
        case 1: return "\(Int(random.next() % 2000) - 1000)"
        case 2: return ["true", "null", "1.5e3"][Int(random.next() % 3)]
        case 3:
            return "["
                + (0..<Int(random.next() % 3)).map { _ in value(&random, depth: depth + 1) }.joined(separator: " , ")
                + "]"
        default: return object(&random, depth: depth + 1)
        }
    }

    static func object(_ random: inout SplitMix64, depth: Int) -> String {
        let members = (0..<Int(random.next() % 4)).map { _ in
            "\"\(names[Int(random.next() % UInt64(names.count))])\" :\n \(value(&random, depth: depth))"
        }
        return "{ " + members.joined(separator: ",\t") + " }"
    }

    static let actions: [(OCPPVersion, String)] = [
        (.v1_6, "Authorize"), (.v1_6, "StartTransaction"), (.v1_6, "ChangeConfiguration"),
        (.v1_6, "GetConfiguration"), (.v1_6, "DataTransfer"), (.v1_6, "MeterValues"), (.v1_6, "SendLocalList"),
        (.v2_0_1, "SetVariables"), (.v2_0_1, "GetVariables"), (.v2_0_1, "NotifyReport"), (.v2_0_1, "SetNetworkProfile"),
        (.v2_0_1, "TransactionEvent"), (.v2_0_1, "InstallCertificate"), (.v2_0_1, "Get15118EVCertificate"),
        (.v2_1, "VendorAction"), (.v1_5, "Authorize"),
    ]

    @Test func aPayloadCopiedAsItCameIsOneTheRedactorKeepsWhole() {
        var random = SplitMix64(seed: 14)
        var copied = 0
        for _ in 0..<1200 {
            let text = Self.object(&random, depth: 0)
            let bytes = Array(text.utf8)
            guard let parsed = JSONValue(parsing: bytes) else {
                Issue.record("not JSON: \(text)")
                continue
            }
            let may = bytes.withUnsafeBytes { AuditRedactor.mayRedact($0) }
            if may { continue }
            copied += 1
            for mode in [AuditPayloadMode.redacted, .full] {
                let redactor = AuditRedactor(mode: mode, pseudonymKey: "k")
                for (version, action) in Self.actions {
                    for kind in [AuditRedactor.Kind.request, .response] {
                        let (kept, redacted) = redactor.redact(
                            payload: parsed, version: version, action: action, kind: kind)
                        #expect(redacted.isEmpty && kept == parsed, "\(action) \(kind) \(mode): \(text)")
                    }
                }
            }
        }
        #expect(copied > 100, "the generator makes payloads with nothing to redact too")
    }

    @Test func theCopyDropsWhitespaceBetweenTokensOnly() {
        let text = " { \"a\" : [ 1 ,\t2 ] ,\n\r \"s\" : \"x  y , z\" } "
        var out: [UInt8] = []
        let copied = Array(text.utf8).withUnsafeBytes { AuditRedactor.copyPayload($0, into: &out) }
        #expect(copied)
        #expect(String(decoding: out, as: UTF8.self) == #","payload":{"a":[1,2],"s":"x  y , z"}"#)
    }

    @Test func aPayloadWithATokenOrAnEscapeIsNotCopied() {
        for text in [
            #"{"idTag":"T"}"#, #"{"IDTOKEN":{}}"#, #"{"x":"-----BEGIN PRIVATE KEY-----"}"#, #"{"id\u0054ag":"T"}"#,
        ] {
            var out: [UInt8] = []
            #expect(!Array(text.utf8).withUnsafeBytes { AuditRedactor.copyPayload($0, into: &out) }, "\(text)")
            #expect(out.isEmpty)
        }
    }
}
