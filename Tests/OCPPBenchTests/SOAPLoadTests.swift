import Foundation
import NIOCore
import Testing

@testable import ocpp_bench

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// What `ocpp-bench load --transport soap` writes and how it reads answers. Correctness only: the load's speed is
/// measured by Benchmarks/run.sh, never here.
@Suite("SOAP load: answers")
struct SOAPAnswerReaderTests {
    static let messageID = "urn:uuid:6b1d2f4e-1c2a-4b3d-8e4f-0123456789ab"

    static func envelope(
        body: String, action: String? = "/StartTransactionResponse", relatesTo: String? = messageID,
        soap: String = SOAPNamespace.envelope, declaration: String = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    ) -> String {
        var header = ""
        if let action { header += "<a:Action>\(action)</a:Action>" }
        if let relatesTo { header += "<a:RelatesTo>\(relatesTo)</a:RelatesTo>" }
        return "\(declaration)<s:Envelope xmlns:s=\"\(soap)\" xmlns:a=\"\(SOAPNamespace.addressing)\">"
            + "<s:Header>\(header)</s:Header><s:Body>\(body)</s:Body></s:Envelope>"
    }

    static func start(_ namespace: String = OCPPSVersion.v15.namespace, transaction: String = "42") -> String {
        "<startTransactionResponse xmlns=\"\(namespace)\"><transactionId>\(transaction)</transactionId>"
            + "<idTagInfo><status>Accepted</status></idTagInfo></startTransactionResponse>"
    }

    static func read(_ text: String, version: OCPPSVersion = .v15) -> SOAPAnswer {
        SOAPAnswerReader.read(
            ByteBuffer(string: text), response: "startTransactionResponse", action: "StartTransaction",
            version: version, messageID: messageID)
    }

    @Test func readsTheResponseElementAndItsTransaction() {
        #expect(Self.read(Self.envelope(body: Self.start())) == .result(transactionId: 42))
        #expect(Self.read(Self.envelope(body: Self.start(), action: nil, relatesTo: nil)) == .result(transactionId: 42))
        #expect(Self.read(Self.envelope(body: Self.start(), declaration: "")) == .result(transactionId: 42))
        // 1.6 with and without the namespace's trailing slash
        let v16 = OCPPSVersion.v16.namespace
        #expect(Self.read(Self.envelope(body: Self.start(v16)), version: .v16) == .result(transactionId: 42))
        #expect(
            Self.read(Self.envelope(body: Self.start(String(v16.dropLast()))), version: .v16)
                == .result(transactionId: 42))
    }

    @Test func aTransactionIdThatIsNoIntIsNone() {
        for text in ["99999999999999999999999", "1e3", "4.2", "", "x"] {
            #expect(Self.read(Self.envelope(body: Self.start(transaction: text))) == .result(transactionId: nil))
        }
    }

    @Test func aFaultIsAFault() {
        let fault =
            "<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code>"
            + "<s:Reason><s:Text xml:lang=\"en\">no</s:Text></s:Reason></s:Fault>"
        #expect(
            Self.read(Self.envelope(body: fault, action: "http://www.w3.org/2005/08/addressing/soap/fault")) == .fault)
    }

    @Test func anythingElseIsMalformed() {
        let good = Self.envelope(body: Self.start())
        let cases: [String] = [
            "",
            "not xml",
            String(good.prefix(good.utf8.count / 2)),  // truncated
            good.replacingOccurrences(of: "</s:Envelope>", with: ""),
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"
                + good.replacingOccurrences(of: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", with: ""),
            good.replacingOccurrences(of: "<s:Body>", with: "<s:Body><!ENTITY a \"b\">"),
            Self.envelope(body: Self.start(), soap: "http://schemas.xmlsoap.org/soap/envelope/"),  // SOAP 1.1
            Self.envelope(body: Self.start(OCPPSVersion.v16.namespace)),  // 1.6 namespace for a 1.5 request
            Self.envelope(
                body: Self.start().replacingOccurrences(of: "startTransactionResponse", with: "stopTransactionResponse")
            ),
            Self.envelope(body: ""),
            Self.envelope(body: Self.start() + Self.start()),
            Self.envelope(body: Self.start(), action: "/StopTransactionResponse"),
            Self.envelope(body: Self.start(), relatesTo: "urn:uuid:00000000-0000-4000-8000-000000000000"),
            Self.envelope(
                body: String(repeating: "<x>", count: 40) + Self.start() + String(repeating: "</x>", count: 40)),
            Self.envelope(body: "<a>" + String(repeating: "<b/>", count: 5000) + "</a>"),
            Self.envelope(body: Self.start(), relatesTo: String(repeating: "x", count: 1000)),
            "<Envelope>" + Self.start() + "</Envelope>",
        ]
        for (index, text) in cases.enumerated() {
            #expect(Self.read(text) == .malformed, "case \(index)")
        }
    }
}

@Suite("SOAP load: requests")
struct SOAPRequestTests {
    /// The root element's name and namespace and the names of its children, in order, as XMLParser reads them.
    final class Outline: NSObject, XMLParserDelegate {
        var root: (name: String, namespace: String)?
        var children: [String] = []
        var depth = 0

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            depth += 1
            if depth == 1 { root = (name, namespaceURI ?? "") }
            if depth == 2 { children.append(name) }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            depth -= 1
        }
    }

    static func outline(_ xml: String) -> Outline? {
        let parser = XMLParser(data: Data(xml.utf8))
        parser.shouldProcessNamespaces = true
        let outline = Outline()
        parser.delegate = outline
        guard parser.parse(), parser.parserError == nil else { return nil }
        return outline
    }

    @Test(arguments: OCPPSVersion.allCases)
    func everyBodyIsTheWSDLsRequestElementInItsOrder(version: OCPPSVersion) throws {
        var scenario = ScenarioState(start: 0)
        scenario.transactionId = 7
        let now = "2026-03-01T12:00:00Z"
        let v15 = version == .v15
        let expected: [CallKind: (String, [String])] = [
            .bootNotification: (
                "bootNotificationRequest", ["chargePointVendor", "chargePointModel", "firmwareVersion"]
            ),
            .heartbeat: ("heartbeatRequest", []),
            .statusNotification: ("statusNotificationRequest", ["connectorId", "status", "errorCode", "timestamp"]),
            .statusAvailable: ("statusNotificationRequest", ["connectorId", "status", "errorCode", "timestamp"]),
            .authorize: ("authorizeRequest", ["idTag"]),
            .startTransaction: ("startTransactionRequest", ["connectorId", "idTag", "timestamp", "meterStart"]),
            .meterValues: ("meterValuesRequest", ["connectorId", v15 ? "values" : "meterValue"]),
            .transactionUpdated: (
                "meterValuesRequest", ["connectorId", "transactionId", v15 ? "values" : "meterValue"]
            ),
            .stopTransaction: (
                "stopTransactionRequest",
                ["transactionId", "idTag", "timestamp", "meterStop"] + (v15 ? [] : ["reason"])
            ),
        ]
        for kind in CallKind.allCases {
            let body = scenario.soapBody(kind, version: version, identity: "CP&<\"1", now: now)
            let outline = try #require(Self.outline(body), "\(kind): \(body)")
            let (name, children) = try #require(expected[kind])
            #expect(outline.root?.name == name)
            #expect(outline.root?.namespace == version.namespace)
            #expect(outline.children == children, "\(kind)")
            #expect(SOAPCharger.responseElement(kind) == name.replacingOccurrences(of: "Request", with: "Response"))
        }
        let status = scenario.soapBody(.statusNotification, version: version, identity: "CP1", now: now)
        #expect(status.contains(v15 ? "<status>Occupied</status>" : "<status>Preparing</status>"))
    }

    @Test func escapesTextAndAttributes() {
        #expect(XMLText.escape("CP-1") == "CP-1")
        #expect(XMLText.escape("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&apos;f")
    }

    @Test func messageIDsAreVersion4UUIDs() {
        var random = XorShift(seed: 1)
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = SOAPCharger.uuid(&random)
            #expect(id.hasPrefix("urn:uuid:"))
            let uuid = id.dropFirst("urn:uuid:".count)
            #expect(UUID(uuidString: String(uuid)) != nil, "\(id)")
            #expect(Array(uuid)[14] == "4")
            #expect("89ab".contains(Array(uuid)[19]))
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
