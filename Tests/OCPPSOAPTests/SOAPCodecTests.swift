import Foundation
import OCPP
import OCPPRules
import Testing

@testable import OCPPSOAP

@Suite("SOAP layouts of the rules directory")
struct SOAPLayoutTests {
    @Test func bothVersionsLoadWithTheirNamespacesAndEveryAction() throws {
        let layouts = try SOAPLayouts.load(Repository.rules())
        let v15 = try #require(layouts[.v1_5])
        let v16 = try #require(layouts[.v1_6])
        #expect(v15.centralSystemNamespace == "urn://Ocpp/Cs/2012/06/")
        #expect(v16.chargePointNamespace == "urn://Ocpp/Cp/2015/10/")
        #expect(Set(v15.definitions.messages.keys) == MessageCatalog.actions(of: .v1_5))
        #expect(
            v15.elements["BootNotification"]
                == .init(request: "bootNotificationRequest", response: "bootNotificationResponse"))
        #expect(v15.simpleContent.contains("MeterValues.request.values[].value[]"))
        #expect(v16.headerElements == ["chargeBoxIdentity"])
    }

    @Test func aLayoutNamingNoMessagesIsRefusedWithItsFile() throws {
        var sources = try Repository.rules()
        sources.files["soap/broken.yaml"] = "version: ocpp1.5\nnamespaces: {}\n"
        #expect(throws: RuleErrors.self) { try SOAPLayouts.load(sources) }
    }
}

@Suite("A charger's request")
struct ReadRequestTests {
    let codec: SOAPCodec
    init() throws { codec = try Repository.codec() }

    func request(_ bytes: [UInt8], contentType: String? = nil, soapAction: String? = nil) throws -> SOAPRequest {
        try codec.readRequest(bytes, contentType: contentType, soapAction: soapAction).get()
    }

    func failure(_ bytes: [UInt8], contentType: String? = nil, soapAction: String? = nil) throws -> SOAPRequestFailure {
        switch codec.readRequest(bytes, contentType: contentType, soapAction: soapAction) {
        case .success(let request): throw Unexpected(what: "success: \(request)")
        case .failure(let failure): return failure
        }
    }

    struct Unexpected: Error { var what: String }

    @Test func a15BootNotificationBecomesItsPayloadWithTheHeaders() throws {
        let bytes = envelope(
            header: identity15 + """
                <a:Action s:mustUnderstand="true">/BootNotification</a:Action><a:MessageID>urn:uuid:1</a:MessageID>
                <a:From><a:Address>http://10.0.0.5:8080/cp</a:Address></a:From>
                <a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>
                <a:To>http://proxy/ocpp</a:To>
                """,
            body: """
                <bootNotificationRequest xmlns="urn://Ocpp/Cs/2012/06/">
                  <chargePointVendor>V &amp; Co</chargePointVendor><chargePointModel>M1</chargePointModel>
                </bootNotificationRequest>
                """)
        let read = try request(bytes)
        #expect(read.soapVersion == .soap12)
        #expect(read.ocppVersion == .v1_5)
        #expect(read.action == "BootNotification")
        #expect(read.identity == "CP1")
        #expect(read.messageID == "urn:uuid:1")
        #expect(read.from == "http://10.0.0.5:8080/cp")
        #expect(read.replyTo == "http://www.w3.org/2005/08/addressing/anonymous")
        #expect(read.to == "http://proxy/ocpp")
        #expect(read.payload == .object(["chargePointVendor": .string("V & Co"), "chargePointModel": .string("M1")]))
    }

    @Test func a15MeterValueIsAnObjectWithItsTextInValueAndItsAttributesAsFields() throws {
        let bytes = envelope(
            header: identity15,
            body: """
                <meterValuesRequest xmlns="urn://Ocpp/Cs/2012/06/"><connectorId>1</connectorId>
                  <values><timestamp>2024-05-01T10:00:00Z</timestamp>
                    <value unit="Wh" measurand="Energy.Active.Import.Register" context="Sample.Periodic">1234.5</value>
                  </values>
                </meterValuesRequest>
                """)
        let read = try request(bytes)
        let value: JSONValue = .object([
            "value": .string("1234.5"), "unit": .string("Wh"), "measurand": .string("Energy.Active.Import.Register"),
            "context": .string("Sample.Periodic"),
        ])
        #expect(
            read.payload
                == .object([
                    "connectorId": .integer(1),
                    "values": .array([
                        .object(["timestamp": .string("2024-05-01T10:00:00Z"), "value": .array([value])])
                    ]),
                ]))
    }

    @Test func anArrayWithOneElementIsStillAnArray() throws {
        let bytes = envelope(
            header: identity15,
            body: """
                <meterValuesRequest xmlns="urn://Ocpp/Cs/2012/06/"><connectorId>1</connectorId>
                <values><timestamp>2024-05-01T10:00:00Z</timestamp><value>7</value></values></meterValuesRequest>
                """)
        guard case .object(let members) = try request(bytes).payload, case .array(let values)? = members["values"]
        else {
            Issue.record("values is not an array")
            return
        }
        #expect(values.count == 1)
    }

    @Test func a16RequestIsReadWithAndWithoutTheTrailingSlash() throws {
        for namespace in ["urn://Ocpp/Cs/2015/10/", "urn://Ocpp/Cs/2015/10"] {
            let bytes = envelope(
                header: #"<chargeBoxIdentity xmlns="\#(namespace)">CP16</chargeBoxIdentity>"#,
                body: #"<heartbeatRequest xmlns="\#(namespace)"/>"#)
            let read = try request(bytes)
            #expect(read.ocppVersion == .v1_6)
            #expect(read.action == "Heartbeat")
            #expect(read.identity == "CP16")
        }
    }

    @Test func theIdentityHeaderNameIsMatchedCaseInsensitively() throws {
        let bytes = envelope(
            header: #"<ChargeBoxIdentity xmlns="urn://Ocpp/Cs/2012/06/"> CP-9 </ChargeBoxIdentity>"#, body: heartbeat15)
        #expect(try request(bytes).identity == "CP-9")
    }

    @Test func aSOAP11EnvelopeIsReadAndAnsweredIn11() throws {
        let bytes = envelope(soap: "http://schemas.xmlsoap.org/soap/envelope/", header: identity15, body: heartbeat15)
        let read = try request(bytes)
        #expect(read.soapVersion == .soap11)
        let answer = try codec.writeResponse(
            to: read, payload: .object(["currentTime": .string("2024-05-01T10:00:00Z")]))
        #expect(answer.contentType == "text/xml; charset=utf-8")
        #expect(answer.text.contains(#"xmlns:s="http://schemas.xmlsoap.org/soap/envelope/""#))
    }

    // MARK: Where the action comes from

    static let statusBody = """
        <statusNotificationRequest xmlns="urn://Ocpp/Cs/2012/06/"><connectorId>1</connectorId>
        <status>Available</status><errorCode>NoError</errorCode></statusNotificationRequest>
        """

    @Test func theActionIsWsaActionsLastSegmentFirst() throws {
        for action in ["/StatusNotification", "urn://Ocpp/Cs/2012/06//StatusNotification"] {
            let bytes = envelope(header: identity15 + "<a:Action>\(action)</a:Action>", body: Self.statusBody)
            #expect(
                try request(bytes, contentType: #"application/soap+xml; action="/Heartbeat""#).action
                    == "StatusNotification")
        }
    }

    @Test func thenTheContentTypeActionParameter() throws {
        let bytes = envelope(header: identity15, body: heartbeat15)
        let read = try request(
            bytes, contentType: #"application/soap+xml;charset=utf-8;action="/Heartbeat""#, soapAction: "/Other")
        #expect(read.action == "Heartbeat")
    }

    @Test func thenTheSOAPActionHeader() throws {
        let bytes = envelope(header: identity15, body: heartbeat15)
        #expect(
            try request(bytes, contentType: "application/soap+xml", soapAction: #""/Heartbeat""#).action == "Heartbeat")
    }

    @Test func thenTheBodyElementName() throws {
        let bytes = envelope(header: identity15, body: Self.statusBody)
        #expect(try request(bytes, soapAction: #""""#).action == "StatusNotification")
    }

    @Test func anActionThatDisagreesWithTheBodyIsAProtocolError() throws {
        let bytes = envelope(header: identity15 + "<a:Action>/Heartbeat</a:Action>", body: Self.statusBody)
        let failed = try failure(bytes)
        #expect(failed.fault.code == .sender)
        #expect(failed.fault.ocppSubcode == .protocolError)
    }

    // MARK: Bad input: each gets its fault, none traps

    @Test func malformedXMLIsASenderProtocolError() throws {
        let failed = try failure(Array("<s:Envelope xmlns:s='x'><a></b></s:Envelope>".utf8))
        #expect(failed.fault.code == .sender)
        #expect(failed.fault.ocppSubcode == .protocolError)
        #expect(failed.fault.httpStatus(in: failed.soapVersion) == 400)
    }

    @Test func aTruncatedDocumentIsRefusedThoughTheParserRecovers() throws {
        let whole = envelope(header: identity15, body: heartbeat15)
        for cut in [whole.count - 1, whole.count - 12, whole.count / 2] {
            let failed = try failure(Array(whole.prefix(cut)))
            #expect(failed.fault.ocppSubcode == .protocolError)
        }
    }

    @Test func anEntityBombIsRefusedBeforeParsing() throws {
        let bomb = """
            <?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">
            <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>
            """
        let failed = try failure(Array(bomb.utf8))
        #expect(failed.fault.ocppSubcode == .protocolError)
        #expect(failed.fault.reason.contains("DOCTYPE"))
    }

    @Test func anExternalEntityIsRefusedBeforeParsing() throws {
        let external = """
            <?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>
            <s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&x;</s:Body></s:Envelope>
            """
        #expect(try failure(Array(external.utf8)).fault.ocppSubcode == .protocolError)
    }

    @Test func anUndeclaredEntityIsMalformed() throws {
        let bytes = envelope(
            header: identity15, body: "<heartbeatRequest xmlns='urn://Ocpp/Cs/2012/06/'>&x;</heartbeatRequest>")
        #expect(try failure(bytes).fault.ocppSubcode == .protocolError)
    }

    @Test func aMissingChargeBoxIdentityIsASenderProtocolError() throws {
        let failed = try failure(envelope(header: "<a:MessageID>m1</a:MessageID>", body: heartbeat15))
        #expect(failed.fault.code == .sender)
        #expect(failed.fault.ocppSubcode == .protocolError)
        #expect(failed.fault.reason.contains("chargeBoxIdentity"))
        #expect(failed.messageID == "m1")
        #expect(failed.ocppVersion == .v1_5)
    }

    @Test func anUnknownActionIsAReceiverNotSupported() throws {
        let failed = try failure(
            envelope(
                header: identity15 + "<a:Action>/Teleport</a:Action>",
                body: "<teleportRequest xmlns='urn://Ocpp/Cs/2012/06/'/>"))
        #expect(failed.fault.code == .receiver)
        #expect(failed.fault.ocppSubcode == .notSupported)
        #expect(failed.fault.httpStatus(in: .soap12) == 500)
    }

    @Test func anActionTheChargerDoesNotSendIsNotSupported() throws {
        let failed = try failure(
            envelope(
                header: identity15,
                body: "<resetRequest xmlns='urn://Ocpp/Cs/2012/06/'><type>Hard</type></resetRequest>"))
        #expect(failed.fault.ocppSubcode == .notSupported)
    }

    @Test func anUnknownOCPPNamespaceIsNotSupported() throws {
        let failed = try failure(
            envelope(header: identity15, body: "<heartbeatRequest xmlns='urn://Ocpp/Cs/2010/08/'/>"))
        #expect(failed.fault.ocppSubcode == .notSupported)
    }

    @Test func aBodyOverTheLimitIsRefused() throws {
        let small = try Repository.codec(limits: XMLReader.Limits(maxBytes: 300))
        let bytes = envelope(header: identity15 + String(repeating: " ", count: 400), body: heartbeat15)
        guard case .failure(let failed) = small.readRequest(bytes) else {
            Issue.record("accepted")
            return
        }
        #expect(failed.fault.ocppSubcode == .protocolError)
        #expect(failed.fault.reason.contains("300 bytes"))
    }

    @Test func aDepthBombIsRefused() throws {
        let deep = String(repeating: "<x>", count: 10_000) + String(repeating: "</x>", count: 10_000)
        let failed = try failure(envelope(header: identity15, body: deep))
        #expect(failed.fault.reason.contains("deeper than 32"))
    }

    @Test func anElementCountBombIsRefused() throws {
        let codec = try Repository.codec(limits: XMLReader.Limits(maxElements: 100))
        let wide =
            "<heartbeatRequest xmlns='urn://Ocpp/Cs/2012/06/'>" + String(repeating: "<x/>", count: 1000)
            + "</heartbeatRequest>"
        guard case .failure(let failed) = codec.readRequest(envelope(header: identity15, body: wide)) else {
            Issue.record("accepted")
            return
        }
        #expect(failed.fault.reason.contains("more than 100 elements"))
    }

    @Test func anUnknownMustUnderstandHeaderIsAMustUnderstandFault() throws {
        for flag in ["true", "1"] {
            let header = identity15 + #"<x:Secret xmlns:x="urn:vendor" s:mustUnderstand="\#(flag)">1</x:Secret>"#
            let failed = try failure(envelope(header: header, body: heartbeat15))
            #expect(failed.fault.code == .mustUnderstand)
            #expect(failed.fault.notUnderstood == [.init(namespace: "urn:vendor", name: "Secret")])
            #expect(failed.fault.httpStatus(in: .soap12) == 500)
            let text = codec.writeFault(for: failed).text
            #expect(text.contains("<s:Value>s:MustUnderstand</s:Value>"))
            #expect(text.contains(#"<s:NotUnderstood qname="n0:Secret" xmlns:n0="urn:vendor">"#))
        }
    }

    @Test func understoodAndOptionalHeadersAndOtherRolesPass() throws {
        let header =
            identity15 + #"<a:Action s:mustUnderstand="true">/Heartbeat</a:Action>"#
            + #"<x:Note xmlns:x="urn:vendor">ignored</x:Note>"#
            + #"<x:Relay xmlns:x="urn:vendor" s:mustUnderstand="true" s:role="urn:other">r</x:Relay>"#
        #expect(try request(envelope(header: header, body: heartbeat15)).action == "Heartbeat")
    }

    @Test func anUnknownEnvelopeNamespaceIsAVersionMismatch() throws {
        let failed = try failure(envelope(soap: "urn:not-soap", header: identity15, body: heartbeat15))
        #expect(failed.fault.code == .versionMismatch)
    }

    @Test func bodiesOffTheirDefinitionAreProtocolErrorsThatSayWhere() throws {
        let cases: [(String, String)] = [
            ("<heartbeatRequest xmlns='urn://Ocpp/Cs/2012/06/'><extra>1</extra></heartbeatRequest>", "extra"),
            ("<authorizeRequest xmlns='urn://Ocpp/Cs/2012/06/'/>", "idTag"),
            (
                "<statusNotificationRequest xmlns='urn://Ocpp/Cs/2012/06/'><connectorId>1</connectorId><status>Charging</status><errorCode>NoError</errorCode></statusNotificationRequest>",
                "status"
            ),
            (
                "<statusNotificationRequest xmlns='urn://Ocpp/Cs/2012/06/'><connectorId>1.5</connectorId><status>Available</status><errorCode>NoError</errorCode></statusNotificationRequest>",
                "connectorId"
            ),
            (
                "<statusNotificationRequest xmlns='urn://Ocpp/Cs/2012/06/'><connectorId>99999999999</connectorId><status>Available</status><errorCode>NoError</errorCode></statusNotificationRequest>",
                "connectorId"
            ),
            (
                "<authorizeRequest xmlns='urn://Ocpp/Cs/2012/06/'><idTag>123456789012345678901</idTag></authorizeRequest>",
                "idTag"
            ),
        ]
        for (body, path) in cases {
            let failed = try failure(envelope(header: identity15, body: body))
            #expect(failed.fault.ocppSubcode == .protocolError, "\(body)")
            #expect(failed.violation?.path == path, "\(body)")
        }
    }

    @Test(arguments: [
        "", "<", "<a", "\u{0}", "<?xml version='1.0' encoding='UTF-16'?><a/>", "<s:Envelope/>",
        "<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'/>",
        "<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>",
        "<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body><a/><b/></s:Body></s:Envelope>",
        "<a x:y='1'/>", "<a/><b/>", "\u{FE}\u{FF}",
    ])
    func garbageIsAFaultNeverATrap(text: String) throws {
        guard case .failure(let failed) = codec.readRequest(Array(text.utf8)) else {
            Issue.record("accepted \(text)")
            return
        }
        #expect(failed.fault.code != .receiver || failed.fault.ocppSubcode == .notSupported)
    }
}

@Suite("Answers, faults and calls written")
struct WriteTests {
    let codec: SOAPCodec
    init() throws { codec = try Repository.codec() }

    func bootRequest() throws -> SOAPRequest {
        let bytes = envelope(
            header: identity15 + "<a:Action>/BootNotification</a:Action><a:MessageID>urn:uuid:7</a:MessageID>",
            body: """
                <bootNotificationRequest xmlns="urn://Ocpp/Cs/2012/06/"><chargePointVendor>V</chargePointVendor>
                <chargePointModel>M</chargePointModel></bootNotificationRequest>
                """)
        return try codec.readRequest(bytes).get()
    }

    @Test func theAnswerCarriesActionRelatesToIdentityAndTheBodyInWSDLOrder() throws {
        let answer = try codec.writeResponse(
            to: bootRequest(),
            payload: .object([
                "heartbeatInterval": .integer(300), "status": .string("Accepted"),
                "currentTime": .string("2024-05-01T10:00:00Z"),
            ]))
        #expect(answer.contentType == "application/soap+xml; charset=utf-8")
        let text = answer.text
        #expect(text.hasPrefix(#"<?xml version="1.0" encoding="UTF-8"?>"#))
        #expect(text.contains("<a:Action>/BootNotificationResponse</a:Action>"))
        #expect(text.contains("<a:RelatesTo>urn:uuid:7</a:RelatesTo>"))
        #expect(text.contains(#"<chargeBoxIdentity xmlns="urn://Ocpp/Cs/2012/06/">CP1</chargeBoxIdentity>"#))
        #expect(
            text.contains(
                #"<bootNotificationResponse xmlns="urn://Ocpp/Cs/2012/06/"><status>Accepted</status><currentTime>2024-05-01T10:00:00Z</currentTime><heartbeatInterval>300</heartbeatInterval></bootNotificationResponse>"#
            ))
    }

    @Test func anAnswerOffItsDefinitionIsNotWritten() throws {
        #expect(throws: SOAPWriteError.self) {
            try codec.writeResponse(to: bootRequest(), payload: .object(["status": .string("Pending")]))
        }
    }

    @Test func faultsIn12HaveCodeSubcodeInTheOCPPNamespaceAndReason() throws {
        let fault = SOAPFault(.identityMismatch, "CP1 is not CP2 <&>")
        let message = codec.writeFault(fault, soapVersion: .soap12, ocppVersion: .v1_6, relatesTo: "m1")
        let text = message.text
        #expect(text.contains(#"xmlns:o="urn://Ocpp/Cs/2015/10/""#))
        #expect(
            text.contains("<s:Value>s:Sender</s:Value><s:Subcode><s:Value>o:IdentityMismatch</s:Value></s:Subcode>"))
        #expect(text.contains(#"<s:Text xml:lang="en">CP1 is not CP2 &lt;&amp;&gt;</s:Text>"#))
        #expect(text.contains("<a:RelatesTo>m1</a:RelatesTo>"))
        #expect(fault.httpStatus(in: .soap12) == 400)
        #expect(SOAPFault(.internalError, "x").httpStatus(in: .soap12) == 500)
        #expect(fault.httpStatus(in: .soap11) == 500)
    }

    @Test func faultsIn11UseClientServerWithTheSubcodeAfterADot() throws {
        let text = codec.writeFault(SOAPFault(.notSupported, "no"), soapVersion: .soap11).text
        #expect(text.contains("<faultcode>s:Server.NotSupported</faultcode><faultstring>no</faultstring>"))
        #expect(
            codec.writeFault(SOAPFault(.protocolError, "x"), soapVersion: .soap11).text.contains(
                "s:Client.ProtocolError"))
    }

    @Test func aFaultReasonWithCharactersXMLCannotCarryIsStillWritten() throws {
        let text = codec.writeFault(SOAPFault(.protocolError, "bad \u{1} byte"), soapVersion: .soap12).text
        #expect(text.contains("bad \u{FFFD} byte"))
    }

    @Test func aCallToAChargerHasTheFullAddressingSetInTheChargePointNamespace() throws {
        let call = try codec.writeCall(
            action: "Reset", payload: .object(["type": .string("Hard")]), ocppVersion: .v1_6, identity: "CP16",
            messageID: "urn:uuid:42", to: "http://10.0.0.5:8080/cp", from: "http://proxy:8190/ocpp/soap")
        let text = call.text
        #expect(call.contentType == "application/soap+xml; charset=utf-8")
        #expect(text.contains(#"<chargeBoxIdentity xmlns="urn://Ocpp/Cp/2015/10/">CP16</chargeBoxIdentity>"#))
        #expect(text.contains("<a:Action>/Reset</a:Action><a:MessageID>urn:uuid:42</a:MessageID>"))
        #expect(text.contains("<a:To>http://10.0.0.5:8080/cp</a:To>"))
        #expect(text.contains("<a:From><a:Address>http://proxy:8190/ocpp/soap</a:Address></a:From>"))
        #expect(
            text.contains(
                "<a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>"))
        #expect(text.contains(#"<resetRequest xmlns="urn://Ocpp/Cp/2015/10/"><type>Hard</type></resetRequest>"#))
    }

    @Test func aCallTheCSMSDoesNotSendOrOffItsDefinitionIsRefused() throws {
        #expect(throws: SOAPWriteError.unknownAction("Heartbeat")) {
            try codec.writeCall(
                action: "Heartbeat", payload: .object([:]), ocppVersion: .v1_5, identity: "c", messageID: "m", to: "t",
                from: "f")
        }
        #expect(throws: SOAPWriteError.self) {
            try codec.writeCall(
                action: "Reset", payload: .object(["type": .string("Warm")]), ocppVersion: .v1_5, identity: "c",
                messageID: "m", to: "t", from: "f")
        }
    }

    @Test func aStringXMLCannotCarryIsRefusedNotReplaced() throws {
        #expect(throws: SOAPWriteError.unwritable(XMLWriteError(scalar: 1))) {
            try codec.writeCall(
                action: "DataTransfer", payload: .object(["vendorId": .string("v\u{1}")]), ocppVersion: .v1_5,
                identity: "c", messageID: "m", to: "t", from: "f")
        }
    }

    @Test func theChargersAnswerIsItsPayloadOrItsFault() throws {
        let answer = envelope(
            header: "<a:RelatesTo>m1</a:RelatesTo>",
            body: "<resetResponse xmlns='urn://Ocpp/Cp/2015/10'><status>Accepted</status></resetResponse>")
        #expect(
            codec.readCallAnswer(answer, action: "Reset", ocppVersion: .v1_6, messageID: "m1")
                == .result(.object(["status": .string("Accepted")])))
        let fault = envelope(
            header: "",
            body: """
                <s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value xmlns:v="urn:v">v:Busy</s:Value>
                </s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">try later</s:Text></s:Reason></s:Fault>
                """)
        #expect(
            codec.readCallAnswer(fault, action: "Reset", ocppVersion: .v1_6)
                == .fault(SOAPFault(code: .receiver, subcode: "Busy", reason: "try later")))
        let fault11 = envelope(
            soap: "http://schemas.xmlsoap.org/soap/envelope/", header: "",
            body: "<s:Fault><faultcode>s:Client.SecurityError</faultcode><faultstring>no</faultstring></s:Fault>")
        #expect(
            codec.readCallAnswer(fault11, action: "Reset", ocppVersion: .v1_6)
                == .fault(SOAPFault(.securityError, "no")))
    }

    @Test func anAnswerToAnotherMessageOrOfAnotherActionIsInvalid() throws {
        let answer = envelope(
            header: "<a:RelatesTo>other</a:RelatesTo>",
            body: "<resetResponse xmlns='urn://Ocpp/Cp/2015/10/'><status>Accepted</status></resetResponse>")
        guard case .invalid = codec.readCallAnswer(answer, action: "Reset", ocppVersion: .v1_6, messageID: "m1") else {
            Issue.record("accepted")
            return
        }
        guard case .invalid = codec.readCallAnswer(answer, action: "ClearCache", ocppVersion: .v1_6) else {
            Issue.record("accepted")
            return
        }
        let bad = envelope(
            header: "", body: "<resetResponse xmlns='urn://Ocpp/Cp/2015/10/'><status>Maybe</status></resetResponse>")
        guard case .invalid(_, let violation?) = codec.readCallAnswer(bad, action: "Reset", ocppVersion: .v1_6) else {
            Issue.record("accepted")
            return
        }
        #expect(violation.path == "status")
    }
}

@Suite("Round trips of every operation")
struct RoundTripTests {
    let codec: SOAPCodec
    init() throws { codec = try Repository.codec() }

    /// payload → request → payload, and answer → response → answer, for every action of both versions, in the
    /// direction(s) it is sent.
    @Test(arguments: [OCPPVersion.v1_5, .v1_6])
    func everyOperationSurvivesBothDirections(version: OCPPVersion) throws {
        let layout = try #require(codec.layouts[version])
        var checked = 0
        for (action, message) in layout.definitions.messages.sorted(by: { $0.key < $1.key }) {
            for caller in Side.allCases where message.sentBy.includes(caller) {
                for seed in 0..<3 {
                    let payload = Sample.value(message.request, seed: seed)
                    #expect(message.request.violation(of: payload) == nil, "\(action) sample")
                    let call = try codec.writeCall(
                        action: action, payload: payload, ocppVersion: version, identity: "CP&1",
                        messageID: "m\(seed)", to: "http://to", from: "http://from", caller: caller)
                    let read = try codec.readCall(
                        call.bytes, contentType: call.contentType, soapAction: nil, from: caller
                    )
                    .get()
                    #expect(read.action == action)
                    #expect(read.identity == "CP&1")
                    #expect(read.payload == payload, "\(version) \(action) request from \(caller)")

                    let result = Sample.value(message.response, seed: seed)
                    let answer = try codec.writeResponse(to: read, payload: result)
                    #expect(
                        codec.readCallAnswer(
                            answer.bytes, action: action, ocppVersion: version, messageID: "m\(seed)", caller: caller)
                            == .result(result), "\(version) \(action) response to \(caller)")
                }
                checked += 1
            }
        }
        #expect(checked == layout.definitions.messages.count + 1)  // DataTransfer goes both ways
    }
}

@Suite("XML writer and reader")
struct XMLTests {
    @Test func textAndAttributesAreEscaped() throws {
        var writer = XMLWriter(declaration: false)
        try writer.element("a", [("q", "x\"'<&>\t\n\r")], text: "1 < 2 & \"3\" > 'x'\r\n")
        let text = String(decoding: writer.document, as: UTF8.self)
        #expect(
            text
                == "<a q=\"x&quot;&apos;&lt;&amp;&gt;&#9;&#10;&#13;\">1 &lt; 2 &amp; &quot;3&quot; &gt; &apos;x&apos;&#13;\n</a>"
        )
        let read = try XMLReader.read(writer.document)
        #expect(read.attribute("q") == "x\"'<&>\t\n\r")
        #expect(read.text == "1 < 2 & \"3\" > 'x'\r\n")
    }

    @Test func charactersXML10CannotCarryAreRefused() {
        for scalar: UInt32 in [0, 1, 0x1F, 0xFFFE, 0xFFFF] {
            var writer = XMLWriter()
            #expect(throws: XMLWriteError(scalar: scalar)) { try writer.text(String(UnicodeScalar(scalar)!)) }
        }
    }

    @Test func namespacesOfElementsAndPrefixedAttributesAreResolved() throws {
        let root = try XMLReader.read(
            Array(#"<p:a xmlns:p="urn:p" xmlns:q="urn:q" q:x="1" y="2"><b xmlns="urn:d"/></p:a>"#.utf8))
        #expect(root.namespace == "urn:p")
        #expect(root.attribute("x", namespace: "urn:q") == "1")
        #expect(root.attribute("y") == "2")
        #expect(root.children.first?.namespace == "urn:d")
    }

    @Test func cdataIsText() throws {
        #expect(try XMLReader.read(Array("<a>x<![CDATA[<y>]]></a>".utf8)).text == "x<y>")
    }

    /// Even inside a CDATA section: the screen does not parse, and a SOAP message has no need of `<!`.
    @Test func declarationsAreRefusedWhereverTheyAre() {
        for text in ["<!DOCTYPE a><a/>", "<a><!ENTITY x 'y'></a>", "<a><![CDATA[<!DOCTYPE]]></a>"] {
            #expect(throws: XMLReadError.declarationNotAllowed) { _ = try XMLReader.read(Array(text.utf8)) }
        }
    }
}
