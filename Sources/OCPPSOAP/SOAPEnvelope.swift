/// A SOAP envelope taken apart: its version, header blocks and the one body element. What is in them is read by
/// ``SOAPCodec``.
struct SOAPEnvelope {
    var version: SOAPVersion
    var headers: [XMLElementNode]
    var body: XMLElementNode

    static let addressing = "http://www.w3.org/2005/08/addressing"
    static let anonymous = "http://www.w3.org/2005/08/addressing/anonymous"
    /// The WS-Addressing action of a fault (WS-Addressing 1.0 SOAP binding §6).
    static let faultAction = "http://www.w3.org/2005/08/addressing/soap/fault"
    /// The WS-Addressing headers the proxy understands (OCPP-S §3.4–3.9; FaultTo is understood and not used).
    static let addressingHeaders: Set<String> = [
        "Action", "MessageID", "To", "From", "ReplyTo", "RelatesTo", "FaultTo",
    ]

    /// Why an envelope could not be taken apart, as the fault to answer and the version to answer in.
    struct Refusal: Error {
        var fault: SOAPFault
        var version: SOAPVersion
    }

    /// The envelope of a parsed document; SOAP 1.2 §5.4.7: an envelope of an unknown namespace is a
    /// VersionMismatch, answered in 1.2.
    static func open(_ root: XMLElementNode) throws(Refusal) -> SOAPEnvelope {
        guard root.name == "Envelope" else {
            throw Refusal(fault: SOAPFault(.protocolError, "the document is not a SOAP envelope"), version: .soap12)
        }
        guard let version = SOAPVersion(namespace: root.namespace) else {
            throw Refusal(
                fault: SOAPFault(
                    code: .versionMismatch, reason: "unknown SOAP envelope namespace '\(root.namespace)'"),
                version: .soap12)
        }
        func refuse(_ reason: String) -> Refusal { Refusal(fault: SOAPFault(.protocolError, reason), version: version) }
        let parts = root.children
        var index = 0
        var headers: [XMLElementNode] = []
        if index < parts.count, parts[index].name == "Header", parts[index].namespace == version.namespace {
            headers = parts[index].children
            index += 1
        }
        guard index < parts.count, parts[index].name == "Body", parts[index].namespace == version.namespace else {
            throw refuse("the envelope has no Body")
        }
        guard index + 1 == parts.count else { throw refuse("the envelope has elements after its Body") }
        let content = parts[index].children
        guard content.count == 1, let body = content.first else {
            throw refuse("the Body must hold exactly one element, it holds \(content.count)")
        }
        return SOAPEnvelope(version: version, headers: headers, body: body)
    }

    /// The first header block named `name` in `namespace`.
    func header(_ name: String, in namespace: String) -> XMLElementNode? {
        headers.first { $0.name == name && $0.namespace == namespace }
    }

    /// The trimmed text of a WS-Addressing header, or of its `Address` child (From, ReplyTo).
    func addressing(_ name: String, address: Bool = false) -> String? {
        guard let block = header(name, in: Self.addressing) else { return nil }
        let text = address ? block.children.first { $0.name == "Address" }?.text : block.text
        return text.map { SOAPScalars.collapsed($0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The header blocks for this node that must be understood and are not (SOAP 1.2 part 1 §5.2.3, §5.4.8;
    /// SOAP 1.1 §4.2.3): a block aimed at another role or actor is not this node's business.
    func notUnderstood(understood: (XMLElementNode) -> Bool) -> [SOAPFault.QualifiedName] {
        headers.filter { block in
            let flag = block.attribute("mustUnderstand", namespace: version.namespace).map(SOAPScalars.collapsed)
            guard flag == "true" || flag == "1" else { return false }
            switch version {
            case .soap12:
                if let role = block.attribute("role", namespace: version.namespace),
                    role != "http://www.w3.org/2003/05/soap-envelope/role/next",
                    role != "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
                {
                    return false
                }
            case .soap11:
                if let actor = block.attribute("actor", namespace: version.namespace),
                    actor != "http://schemas.xmlsoap.org/soap/actor/next"
                {
                    return false
                }
            }
            return !understood(block)
        }.map { SOAPFault.QualifiedName(namespace: $0.namespace, name: $0.name) }
    }

    /// The fault in the body, if the body is one (SOAP 1.2 part 1 §5.4; SOAP 1.1 §4.4). SOAP 1.1 subcodes are
    /// read from the dotted form `Client.ProtocolError`.
    var fault: SOAPFault? {
        guard body.name == "Fault", body.namespace == version.namespace else { return nil }
        func child(_ node: XMLElementNode?, _ name: String, _ namespace: String?) -> XMLElementNode? {
            node?.children.first { $0.name == name && (namespace == nil || $0.namespace == namespace) }
        }
        func localName(_ qualified: String) -> String {
            let trimmed = SOAPScalars.collapsed(qualified)
            return trimmed.split(separator: ":").last.map(String.init) ?? trimmed
        }
        switch version {
        case .soap12:
            let ns = version.namespace
            let codeNode = child(body, "Code", ns)
            let code = child(codeNode, "Value", ns).map { localName($0.text) }
            let subcode = child(child(codeNode, "Subcode", ns), "Value", ns).map { localName($0.text) }
            let reason = child(child(body, "Reason", ns), "Text", ns)?.text ?? ""
            return SOAPFault(
                code: code.flatMap(SOAPFault.Code.init(name:)) ?? .receiver, subcode: subcode, reason: reason)
        case .soap11:
            let code = localName(child(body, "faultcode", nil)?.text ?? "Server")
            let parts = code.split(separator: ".", maxSplits: 1).map(String.init)
            let reason = child(body, "faultstring", nil)?.text ?? ""
            return SOAPFault(
                code: parts.first.flatMap(SOAPFault.Code.init(name:)) ?? .receiver,
                subcode: parts.count > 1 ? parts[1] : nil, reason: reason)
        }
    }
}
