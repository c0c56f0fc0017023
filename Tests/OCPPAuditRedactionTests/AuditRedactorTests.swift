import Crypto
import Foundation
import OCPP
import Testing

@testable import OCPPAuditRedaction

func json(_ text: String) -> JSONValue {
    guard let value = JSONValue(parsing: Array(text.utf8)) else { fatalError("not JSON: \(text)") }
    return value
}

@Suite("AuditRedactor: tokens, secrets, certificates and DataTransfer data per version and action")
struct AuditRedactorTests {
    static let key = "test-pseudonym-key"
    let redacted = AuditRedactor(mode: .redacted, pseudonymKey: key)
    let full = AuditRedactor(mode: .full, pseudonymKey: key)

    func hmac(_ token: String, key: String = key) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: SymmetricKey(data: Array(key.utf8)))
        return "hmac:" + String(mac.map { String(format: "%02x", $0) }.joined().prefix(32))
    }

    func sha(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func run(
        _ redactor: AuditRedactor, _ version: OCPPVersion, _ action: String, _ kind: AuditRedactor.Kind,
        _ payload: String
    ) -> (JSONValue?, [String]) {
        let result = redactor.redact(payload: json(payload), version: version, action: action, kind: kind)
        return (result.payload, result.redacted)
    }

    @Test func pseudonymsAreStablePerKeyAndDifferAcrossKeys() {
        #expect(redacted.pseudonym("04A2B3C4") == redacted.pseudonym("04A2B3C4"))
        #expect(redacted.pseudonym("04A2B3C4") == hmac("04A2B3C4"))
        #expect(redacted.pseudonym("04A2B3C4").count == 5 + 32)
        #expect(redacted.pseudonym("04A2B3C4") != redacted.pseudonym("04A2B3C5"))
        let other = AuditRedactor(mode: .redacted, pseudonymKey: "another-key")
        #expect(other.pseudonym("04A2B3C4") != redacted.pseudonym("04A2B3C4"))
    }

    // MARK: OCPP 1.6

    @Test func v16AuthorizeRequestAndResponse() {
        let (request, paths) = run(redacted, .v1_6, "Authorize", .request, #"{"idTag":"04A2B3C4"}"#)
        #expect(request == json(#"{"idTag":"\#(hmac("04A2B3C4"))"}"#))
        #expect(paths == ["idTag"])
        let (response, responsePaths) = run(
            redacted, .v1_6, "Authorize", .response,
            #"{"idTagInfo":{"status":"Accepted","parentIdTag":"PARENT1","expiryDate":"2026-01-01T00:00:00Z"}}"#)
        #expect(
            response
                == json(
                    #"{"idTagInfo":{"status":"Accepted","parentIdTag":"\#(hmac("PARENT1"))","expiryDate":"2026-01-01T00:00:00Z"}}"#
                ))
        #expect(responsePaths == ["idTagInfo.parentIdTag"])
        // full mode keeps tokens and lists nothing.
        let (kept, keptPaths) = run(full, .v1_6, "Authorize", .request, #"{"idTag":"04A2B3C4"}"#)
        #expect(kept == json(#"{"idTag":"04A2B3C4"}"#))
        #expect(keptPaths.isEmpty)
    }

    @Test func v16StartAndStopTransaction() {
        let (start, startPaths) = run(
            redacted, .v1_6, "StartTransaction", .request,
            #"{"connectorId":1,"idTag":"TAG","meterStart":0,"timestamp":"2026-01-01T00:00:00Z"}"#)
        #expect(start?.objectMember("idTag") == .string(hmac("TAG")))
        #expect(start?.objectMember("connectorId") == .integer(1))
        #expect(startPaths == ["idTag"])
        let (stop, stopPaths) = run(
            redacted, .v1_6, "StopTransaction", .request,
            #"{"transactionId":7,"idTag":"TAG","meterStop":10,"timestamp":"2026-01-01T00:00:00Z"}"#)
        #expect(stop?.objectMember("idTag") == .string(hmac("TAG")))
        #expect(stopPaths == ["idTag"])
        let (stopResponse, responsePaths) = run(
            redacted, .v1_6, "StopTransaction", .response,
            #"{"idTagInfo":{"status":"Accepted","parentIdTag":"P"}}"#)
        #expect(stopResponse?.objectMember("idTagInfo")?.objectMember("parentIdTag") == .string(hmac("P")))
        #expect(responsePaths == ["idTagInfo.parentIdTag"])
    }

    @Test func v16SendLocalListPseudonymisesEveryEntry() {
        let (payload, paths) = run(
            redacted, .v1_6, "SendLocalList", .request,
            #"{"listVersion":3,"updateType":"Full","localAuthorizationList":[{"idTag":"A","idTagInfo":{"status":"Accepted","parentIdTag":"G"}},{"idTag":"B"}]}"#
        )
        #expect(
            payload
                == json(
                    #"{"listVersion":3,"updateType":"Full","localAuthorizationList":[{"idTag":"\#(hmac("A"))","idTagInfo":{"status":"Accepted","parentIdTag":"\#(hmac("G"))"}},{"idTag":"\#(hmac("B"))"}]}"#
                ))
        #expect(paths == ["localAuthorizationList[].idTag", "localAuthorizationList[].idTagInfo.parentIdTag"])
    }

    @Test func v16ChangeConfigurationAuthorizationKeyIsDroppedInEveryMode() {
        for redactor in [redacted, full] {
            let (payload, paths) = run(
                redactor, .v1_6, "ChangeConfiguration", .request,
                #"{"key":"AuthorizationKey","value":"0123456789abcdef0123"}"#)
            #expect(payload == json(#"{"key":"AuthorizationKey"}"#))
            #expect(paths == ["value"])
        }
        let (other, otherPaths) = run(
            redacted, .v1_6, "ChangeConfiguration", .request, #"{"key":"HeartbeatInterval","value":"300"}"#)
        #expect(other == json(#"{"key":"HeartbeatInterval","value":"300"}"#))
        #expect(otherPaths.isEmpty)
        // A charger that still reports the key in GetConfiguration.
        let (report, reportPaths) = run(
            full, .v1_6, "GetConfiguration", .response,
            #"{"configurationKey":[{"key":"authorizationkey","readonly":false,"value":"s3cret"},{"key":"HeartbeatInterval","readonly":false,"value":"300"}]}"#
        )
        #expect(
            report
                == json(
                    #"{"configurationKey":[{"key":"authorizationkey","readonly":false},{"key":"HeartbeatInterval","readonly":false,"value":"300"}]}"#
                ))
        #expect(reportPaths == ["configurationKey[].value"])
    }

    @Test func v16DataTransferDataIsHashedInRedactedModeAndKeptInFull() {
        let data = #"{"meter":"x","idTag":"inside"}"#
        let payload = JSONValue.object(["vendorId": .string("com.example"), "data": .string(data)])
        let result = redacted.redact(payload: payload, version: .v1_6, action: "DataTransfer", kind: .request)
        #expect(result.payload?.objectMember("data") == .string(sha(data)))
        #expect(result.redacted == ["data"])
        let response = redacted.redact(
            payload: .object(["status": .string("Accepted"), "data": .string("answer")]), version: .v1_6,
            action: "DataTransfer", kind: .response)
        #expect(response.payload?.objectMember("data") == .string(sha("answer")))
        let kept = full.redact(payload: payload, version: .v1_6, action: "DataTransfer", kind: .request)
        #expect(kept.payload == payload)
        #expect(kept.redacted.isEmpty)
    }

    @Test func v16SignCertificateAndInstallCertificate() {
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
        let sign = redacted.redact(
            payload: .object(["csr": .string(csr)]), version: .v1_6, action: "SignCertificate", kind: .request)
        #expect(sign.payload == .object(["csr": .string(sha(csr))]))
        #expect(sign.redacted == ["csr"])
        let certificate = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
        let install = redacted.redact(
            payload: .object([
                "certificateType": .string("CentralSystemRootCertificate"), "certificate": .string(certificate),
            ]), version: .v1_6, action: "InstallCertificate", kind: .request)
        #expect(install.payload?.objectMember("certificate") == .string(sha(certificate)))
        #expect(install.redacted == ["certificate"])
        let kept = full.redact(
            payload: .object(["certificateChain": .string(certificate)]), version: .v1_6,
            action: "CertificateSigned", kind: .request)
        #expect(kept.payload == .object(["certificateChain": .string(certificate)]))
    }

    @Test func aPrivateKeyIsDroppedWhereverItIsAndInEveryMode() {
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"
        for redactor in [redacted, full] {
            // Bundled with a certificate in a field that would otherwise be hashed or kept.
            let install = redactor.redact(
                payload: .object(["certificateType": .string("X"), "certificate": .string("CERT\n" + key)]),
                version: .v1_6, action: "InstallCertificate", kind: .request)
            #expect(install.payload == .object(["certificateType": .string("X")]))
            #expect(install.redacted == ["certificate"])
            // In a field no table lists, nested in a list, in an action of a vendor.
            let vendor = redactor.redact(
                payload: json(#"{"a":{"b":["ok","\#(key.replacingOccurrences(of: "\n", with: "\\n"))"]}}"#),
                version: .v2_1, action: "VendorThing", kind: .request)
            #expect(vendor.payload == json(#"{"a":{"b":["ok"]}}"#))
            #expect(vendor.redacted == ["a.b[]"])
            #expect(!(vendor.payload?.jsonText.contains("PRIVATE KEY") ?? true))
            // In a 2.0.1 DataTransfer object (data is `any`), even in redacted mode where data is hashed.
            let transfer = redactor.redact(
                payload: .object(["vendorId": .string("v"), "data": .object(["pem": .string(key)])]),
                version: .v2_0_1, action: "DataTransfer", kind: .request)
            #expect(transfer.payload == .object(["vendorId": .string("v")]))
            #expect(transfer.redacted == ["data"])
        }
    }

    @Test func noneKeepsNoPayload() {
        let none = AuditRedactor(mode: .none, pseudonymKey: Self.key)
        let result = none.redact(payload: json(#"{"idTag":"A"}"#), version: .v1_6, action: "Authorize", kind: .request)
        #expect(result.payload == nil)
        #expect(result.redacted.isEmpty)
    }

    // MARK: OCPP 2.0.1 and 2.1

    @Test func v201AuthorizeIdTokenAndGroupIdToken() {
        let (request, paths) = run(
            redacted, .v2_0_1, "Authorize", .request,
            #"{"idToken":{"idToken":"TOKEN1","type":"ISO14443","additionalInfo":[{"additionalIdToken":"EXTRA","type":"x"}]},"certificate":"PEM"}"#
        )
        #expect(
            request
                == json(
                    #"{"idToken":{"idToken":"\#(hmac("TOKEN1"))","type":"ISO14443","additionalInfo":[{"additionalIdToken":"\#(hmac("EXTRA"))","type":"x"}]},"certificate":"\#(sha("PEM"))"}"#
                ))
        #expect(paths == ["certificate", "idToken.additionalInfo[].additionalIdToken", "idToken.idToken"])
        let (response, responsePaths) = run(
            redacted, .v2_0_1, "Authorize", .response,
            #"{"idTokenInfo":{"status":"Accepted","groupIdToken":{"idToken":"GROUP","type":"Central"}}}"#)
        #expect(
            response?.objectMember("idTokenInfo")?.objectMember("groupIdToken")
                == json(#"{"idToken":"\#(hmac("GROUP"))","type":"Central"}"#))
        #expect(responsePaths == ["idTokenInfo.groupIdToken.idToken"])
    }

    @Test func v201TransactionEventAndV21UsesTheSameShapes() {
        let payload =
            #"{"eventType":"Started","timestamp":"2026-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"t1"},"idToken":{"idToken":"TOKEN2","type":"ISO14443"}}"#
        for version in [OCPPVersion.v2_0_1, .v2_1] {
            let (request, paths) = run(redacted, version, "TransactionEvent", .request, payload)
            #expect(request?.objectMember("idToken") == json(#"{"idToken":"\#(hmac("TOKEN2"))","type":"ISO14443"}"#))
            #expect(request?.objectMember("transactionInfo") == json(#"{"transactionId":"t1"}"#))
            #expect(paths == ["idToken.idToken"])
        }
        let (response, responsePaths) = run(
            redacted, .v2_0_1, "TransactionEvent", .response,
            #"{"idTokenInfo":{"status":"Accepted","groupIdToken":{"idToken":"G","type":"Central"}}}"#)
        #expect(response?.jsonText.contains(hmac("G")) == true)
        #expect(responsePaths == ["idTokenInfo.groupIdToken.idToken"])
    }

    @Test func v201SendLocalList() {
        let (payload, paths) = run(
            redacted, .v2_0_1, "SendLocalList", .request,
            #"{"versionNumber":1,"updateType":"Full","localAuthorizationList":[{"idToken":{"idToken":"A","type":"ISO14443"},"idTokenInfo":{"status":"Accepted","groupIdToken":{"idToken":"G","type":"Central"}}}]}"#
        )
        let entry = payload?.objectMember("localAuthorizationList")?.arrayElements?.first
        #expect(entry?.objectMember("idToken")?.objectMember("idToken") == .string(hmac("A")))
        #expect(
            entry?.objectMember("idTokenInfo")?.objectMember("groupIdToken")?.objectMember("idToken")
                == .string(hmac("G")))
        #expect(
            paths == [
                "localAuthorizationList[].idToken.idToken", "localAuthorizationList[].idTokenInfo.groupIdToken.idToken",
            ])
    }

    @Test func v201SetVariablesBasicAuthPasswordIsDroppedInEveryMode() {
        let payload =
            #"{"setVariableData":[{"attributeValue":"pa55word-long-enough","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}},{"attributeValue":"300","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}"#
        for redactor in [redacted, full] {
            let (result, paths) = run(redactor, .v2_1, "SetVariables", .request, payload)
            #expect(
                result
                    == json(
                        #"{"setVariableData":[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}},{"attributeValue":"300","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}"#
                    ))
            #expect(paths == ["setVariableData[].attributeValue"])
        }
        let report =
            #"{"requestId":1,"generatedAt":"2026-01-01T00:00:00Z","seqNo":0,"reportData":[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"variableAttribute":[{"type":"Actual","value":"leaked"}]}]}"#
        let (reported, reportPaths) = run(full, .v2_0_1, "NotifyReport", .request, report)
        #expect(reported?.jsonText.contains("leaked") == false)
        #expect(reportPaths == ["reportData[].variableAttribute[].value"])
        let get =
            #"{"getVariableResult":[{"attributeStatus":"Accepted","attributeValue":"leaked","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]}"#
        let (got, gotPaths) = run(full, .v2_0_1, "GetVariables", .response, get)
        #expect(got?.jsonText.contains("leaked") == false)
        #expect(gotPaths == ["getVariableResult[].attributeValue"])
    }

    @Test func v201SetNetworkProfileSecretsAreDroppedInEveryMode() {
        let payload =
            #"{"configurationSlot":1,"connectionData":{"ocppVersion":"OCPP20","ocppTransport":"JSON","ocppCsmsUrl":"wss://csms","messageTimeout":30,"securityProfile":1,"ocppInterface":"Wired0","basicAuthPassword":"BASIC","apn":{"apn":"internet","apnPassword":"APNPW","simPin":1234,"apnAuthentication":"AUTO"},"vpn":{"server":"vpn","user":"u","password":"VPNPW","key":"VPNKEY","type":"IKEv2"}}}"#
        for redactor in [redacted, full] {
            let (result, paths) = run(redactor, .v2_0_1, "SetNetworkProfile", .request, payload)
            let text = result?.jsonText ?? ""
            for secret in ["BASIC", "APNPW", "1234", "VPNPW", "VPNKEY"] { #expect(!text.contains(secret)) }
            #expect(text.contains("wss://csms"))
            #expect(
                paths == [
                    "connectionData.apn.apnPassword", "connectionData.apn.simPin", "connectionData.basicAuthPassword",
                    "connectionData.vpn.key", "connectionData.vpn.password",
                ])
        }
    }

    @Test func v201CertificateSignedAndGet15118EVCertificate() {
        let chain = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
        let signed = redacted.redact(
            payload: .object([
                "certificateChain": .string(chain), "certificateType": .string("ChargingStationCertificate"),
            ]),
            version: .v2_0_1, action: "CertificateSigned", kind: .request)
        #expect(signed.payload?.objectMember("certificateChain") == .string(sha(chain)))
        #expect(signed.redacted == ["certificateChain"])
        let request = redacted.redact(
            payload: json(
                #"{"iso15118SchemaVersion":"urn:iso:15118:2:2013:MsgDef","action":"Install","exiRequest":"gAAB"}"#),
            version: .v2_0_1, action: "Get15118EVCertificate", kind: .request)
        #expect(request.payload?.objectMember("exiRequest") == .string(sha("gAAB")))
        #expect(request.redacted == ["exiRequest"])
        // The EXI response carries the contract certificate's (encrypted) private key: dropped in every mode.
        for redactor in [redacted, full] {
            let response = redactor.redact(
                payload: json(#"{"status":"Accepted","exiResponse":"gAAC"}"#), version: .v2_0_1,
                action: "Get15118EVCertificate", kind: .response)
            #expect(response.payload == json(#"{"status":"Accepted"}"#))
            #expect(response.redacted == ["exiResponse"])
        }
    }

    // MARK: OCPP 1.5

    @Test func v15AuthorizeAndStartTransaction() {
        let (authorize, paths) = run(redacted, .v1_5, "Authorize", .request, #"{"idTag":"T15"}"#)
        #expect(authorize == json(#"{"idTag":"\#(hmac("T15"))"}"#))
        #expect(paths == ["idTag"])
        let (start, startPaths) = run(
            redacted, .v1_5, "StartTransaction", .request,
            #"{"connectorId":1,"idTag":"T15","timestamp":"2026-01-01T00:00:00Z","meterStart":0,"reservationId":3}"#)
        #expect(start?.objectMember("idTag") == .string(hmac("T15")))
        #expect(start?.objectMember("reservationId") == .integer(3))
        #expect(startPaths == ["idTag"])
        let (response, responsePaths) = run(
            redacted, .v1_5, "StartTransaction", .response,
            #"{"transactionId":1,"idTagInfo":{"status":"Accepted","parentIdTag":"P15"}}"#)
        #expect(response?.objectMember("idTagInfo")?.objectMember("parentIdTag") == .string(hmac("P15")))
        #expect(responsePaths == ["idTagInfo.parentIdTag"])
    }

    @Test func namesOutsideTheTableAreStillRedacted() {
        // An action 2.0.1's shapes lack (OCPP 2.1 or a vendor's): the same names mean the same.
        let (payload, paths) = run(
            redacted, .v2_1, "RequestBatterySwap", .request,
            #"{"requestId":1,"idToken":{"idToken":"SWAP","type":"ISO14443"},"customData":{"vendorId":"v","password":"pw"}}"#
        )
        #expect(payload?.objectMember("idToken")?.objectMember("idToken") == .string(hmac("SWAP")))
        #expect(payload?.jsonText.contains("pw\"") == false)
        #expect(paths == ["customData.password", "idToken.idToken"])
    }
}

extension JSONValue {
    func objectMember(_ name: String) -> JSONValue? {
        if case .object(let members) = self { return members[name] }
        return nil
    }

    var arrayElements: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}
