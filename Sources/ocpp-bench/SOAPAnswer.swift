import Foundation
import NIOCore

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// What the load reads of the answer to a SOAP request.
enum SOAPAnswer: Equatable {
    /// The expected response element (and, when it has one, its `transactionId`).
    case result(transactionId: Int?)
    /// A SOAP 1.2 Fault in the body.
    case fault
    /// Anything else: not XML, not a SOAP 1.2 envelope, no response element of the request's action in the
    /// version's namespace, a `wsa:Action` other than `/{action}Response`, a `wsa:RelatesTo` other than the request's
    /// `wsa:MessageID`, a markup declaration, too deep or too many elements.
    case malformed
}

/// Reads a SOAP answer with FoundationXML's `XMLParser` (libxml2), hardened as the proxy's reader is: a body with a
/// markup declaration (`<!DOCTYPE`, `<!ENTITY`, …) is refused before parsing, external entities are never
/// resolved, nesting depth and element count are bounded, and a parse counts only when `parse()` succeeded *and*
/// `parserError` is unset (libxml2 recovers from some errors and still returns true).
final class SOAPAnswerReader: NSObject, XMLParserDelegate {
    static let maxDepth = 32
    static let maxElements = 4096
    /// Longest text kept of a captured element (RelatesTo, Action, transactionId).
    static let maxText = 512

    private let namespaces: Set<String>
    private let response: String
    private var depth = 0
    private var elements = 0
    private var sawEnvelope = false
    private var sawBody = false
    private var inHeader = false
    private var inBody = false
    private var inResponse = false
    private var fault = false
    private var bodyElement: (namespace: String, name: String)?
    private var relatesTo: String?
    private var action: String?
    private var transactionId: String?
    private enum Field { case relatesTo, action, transactionId }
    /// The element whose text is being gathered (at `captureDepth`), and the text so far.
    private var capturing: Field?
    private var captureDepth = 0
    private var text = ""
    private(set) var refused = false

    private init(response: String, version: SOAPVersion) {
        self.response = response
        // The 1.6 namespace is also seen without its trailing slash (issue 12); 1.5's as written.
        var namespaces: Set<String> = [version.namespace]
        if version == .v16 { namespaces.insert(String(version.namespace.dropLast())) }
        self.namespaces = namespaces
    }

    /// The answer in `body` to a request of `action` whose response element is `response`.
    static func read(
        _ body: ByteBuffer, response: String, action: String, version: SOAPVersion, messageID: String
    ) -> SOAPAnswer {
        guard !hasMarkupDeclaration(body) else { return .malformed }
        let reader = SOAPAnswerReader(response: response, version: version)
        let parser = XMLParser(data: Data(body.readableBytesView))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = reader
        let parsed = parser.parse()
        guard parsed, parser.parserError == nil, !reader.refused, reader.sawEnvelope, reader.sawBody else {
            return .malformed
        }
        if reader.fault { return .fault }
        guard let element = reader.bodyElement, element.name == response, reader.namespaces.contains(element.namespace)
        else { return .malformed }
        if let text = reader.action, trimmed(text) != "/\(action)Response" { return .malformed }
        if let text = reader.relatesTo, trimmed(text) != messageID { return .malformed }
        return .result(transactionId: reader.transactionId.flatMap { Int(trimmed($0)) })
    }

    /// Whether the bytes hold `<!` other than a comment (`<!--`) or a CDATA section (`<![CDATA[`).
    static func hasMarkupDeclaration(_ body: ByteBuffer) -> Bool {
        body.withUnsafeReadableBytes { p in
            var i = 0
            while i + 2 < p.count {
                if p[i] == UInt8(ascii: "<") && p[i + 1] == UInt8(ascii: "!") {
                    let next = p[i + 2]
                    if next != UInt8(ascii: "-") && next != UInt8(ascii: "[") { return true }
                }
                i += 1
            }
            return false
        }
    }

    static func trimmed(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func refuse(_ parser: XMLParser) {
        refused = true
        parser.abortParsing()
    }

    // MARK: XMLParserDelegate

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        guard !refused else { return }
        depth += 1
        elements += 1
        guard depth <= Self.maxDepth, elements <= Self.maxElements else { return refuse(parser) }
        let namespace = namespaceURI ?? ""
        switch depth {
        case 1:
            guard namespace == SOAPNamespace.envelope, name == "Envelope" else { return refuse(parser) }
            sawEnvelope = true
        case 2:
            guard namespace == SOAPNamespace.envelope else { return }
            inHeader = name == "Header"
            inBody = name == "Body"
            if inBody { sawBody = true }
        case 3 where inHeader && namespace == SOAPNamespace.addressing:
            if name == "RelatesTo" { capture(.relatesTo) }
            if name == "Action" { capture(.action) }
        case 3 where inBody:
            guard bodyElement == nil, !fault else { return refuse(parser) }  // one body element only
            if namespace == SOAPNamespace.envelope && name == "Fault" {
                fault = true
            } else {
                bodyElement = (namespace, name)
                inResponse = true
            }
        case 4 where inResponse && name == "transactionId" && namespaces.contains(namespace):
            capture(.transactionId)
        default:
            break
        }
    }

    private func capture(_ field: Field) {
        capturing = field
        captureDepth = depth
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard capturing != nil, !refused else { return }
        guard text.utf8.count + string.utf8.count <= Self.maxText else { return refuse(parser) }
        text += string
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if let field = capturing, depth == captureDepth {
            switch field {
            case .relatesTo: relatesTo = text
            case .action: action = text
            case .transactionId: transactionId = text
            }
            capturing = nil
        }
        if depth == 2 {
            inHeader = false
            inBody = false
        }
        if depth == 3 { inResponse = false }
        depth -= 1
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        refused = true
    }
}
