import Foundation
import NIOCore
import OCPPSOAP

/// What the load reads of the answer to a SOAP request.
enum SOAPAnswer: Equatable {
    /// The expected response element (and, when it has one, its `transactionId`).
    case result(transactionId: Int?)
    /// A SOAP 1.2 Fault in the body.
    case fault
    /// Anything else: XML the hardened reader refuses (not XML, truncated, a markup declaration, too large, too
    /// deep, too many elements), not a SOAP 1.2 envelope, not exactly one body element, no response element of the
    /// request's action in the version's namespace, a `wsa:Action` other than `/{action}Response`, a `wsa:RelatesTo`
    /// other than the request's `wsa:MessageID`.
    case malformed
}

/// Reads a SOAP answer with OCPPSOAP's hardened `XMLReader` (libxml2's SAX2 parser behind a byte scan that
/// refuses markup declarations, bounded size, depth and element count, failing at the first error), then checks
/// what a charger needs of it.
enum SOAPAnswerReader {
    static let limits = XMLReader.Limits(maxBytes: SOAPCharger.maxBody, maxDepth: 32, maxElements: 4096)

    /// The answer in `body` to a request of `action` whose response element is `response`.
    static func read(
        _ body: ByteBuffer, response: String, action: String, version: OCPPSVersion, messageID: String
    ) -> SOAPAnswer {
        guard let root = try? XMLReader.read(body.readableBytesView, limits: limits),
            root.namespace == SOAPNamespace.envelope, root.name == "Envelope"
        else { return .malformed }
        func part(_ name: String) -> XMLElementNode? {
            root.children.first { $0.namespace == SOAPNamespace.envelope && $0.name == name }
        }
        guard let soapBody = part("Body"), soapBody.children.count == 1, let element = soapBody.children.first else {
            return .malformed
        }
        if element.namespace == SOAPNamespace.envelope && element.name == "Fault" { return .fault }
        // The 1.6 namespace is also seen without its trailing slash (issue 12); 1.5's as written.
        let namespaces =
            version == .v16 ? [version.namespace, String(version.namespace.dropLast())] : [version.namespace]
        guard element.name == response, namespaces.contains(element.namespace) else { return .malformed }
        func addressing(_ name: String) -> String? {
            part("Header")?.children.first { $0.namespace == SOAPNamespace.addressing && $0.name == name }
                .map { trimmed($0.text) }
        }
        if let text = addressing("Action"), text != "/\(action)Response" { return .malformed }
        if let text = addressing("RelatesTo"), text != messageID { return .malformed }
        let transaction = element.children.first { $0.name == "transactionId" && namespaces.contains($0.namespace) }
        return .result(transactionId: transaction.flatMap { Int(trimmed($0.text)) })
    }

    static func trimmed(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
