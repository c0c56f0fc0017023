import OCPP
import OCPPRules

/// A charger's SOAP request, read: everything the transport needs to forward it as a CALL.
public struct SOAPRequest: Sendable, Equatable {
    public var soapVersion: SOAPVersion
    public var ocppVersion: OCPPVersion
    public var action: String
    /// The `chargeBoxIdentity` header, as sent.
    public var identity: String
    /// `wsa:MessageID`; the answer's `wsa:RelatesTo`.
    public var messageID: String?
    /// `wsa:From/wsa:Address`: where the charger listens for the CSMS's calls (OCPP-S §3.7, §5).
    public var from: String?
    /// `wsa:ReplyTo/wsa:Address`, when given.
    public var replyTo: String?
    /// `wsa:To`, when given.
    public var to: String?
    /// The body as a JSON object with OCPP-J's field names, checked against the version's definitions.
    public var payload: JSONValue
    /// Who sent the call: a charger, unless a test reads the CSMS's side.
    var caller: Side = .charger
}

/// A charger's request that cannot be forwarded: the fault to answer, and what was learnt before it failed.
public struct SOAPRequestFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var fault: SOAPFault
    /// The version to answer in: the request's, or 1.2 when it had none.
    public var soapVersion: SOAPVersion
    public var ocppVersion: OCPPVersion?
    public var action: String?
    public var identity: String?
    public var messageID: String?
    /// For a body that does not match its definition: how.
    public var violation: ShapeViolation?

    public var description: String { fault.description }
}

/// A SOAP message to send: the bytes and their HTTP content type.
public struct SOAPMessage: Sendable, Equatable {
    public var bytes: [UInt8]
    public var contentType: String
}

/// Why the proxy cannot write a message.
public enum SOAPWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// There is no SOAP layout for the version.
    case unsupportedVersion(OCPPVersion)
    /// The version has no such action, or not in that direction.
    case unknownAction(String)
    /// The payload does not match the definition.
    case invalidPayload(ShapeViolation)
    /// A string holds a character XML 1.0 cannot carry.
    case unwritable(XMLWriteError)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version): return "no SOAP layout for \(version)"
        case .unknownAction(let action): return "unknown action \(action)"
        case .invalidPayload(let violation): return "payload does not match its definition: \(violation)"
        case .unwritable(let error): return error.description
        }
    }
}

/// What a charger answered to a call of the proxy.
public enum SOAPCallAnswer: Sendable, Equatable {
    /// The response body as a JSON payload, checked against the definition.
    case result(JSONValue)
    /// The charger's own SOAP Fault.
    case fault(SOAPFault)
    /// An answer the proxy cannot use, and why (malformed XML, the wrong body, a payload off its definition).
    case invalid(reason: String, violation: ShapeViolation?)
}

/// OCPP-S messages ⇄ OCPP payloads, driven by the SOAP layouts of the rules directory. Pure: bytes and strings in,
/// bytes out; no HTTP, no clocks, no random ids (message ids come in as arguments).
///
/// The transport uses it in five ways: ``readRequest(_:contentType:soapAction:)`` (a charger's call),
/// ``writeResponse(to:payload:)`` (the answer), ``writeFault(_:soapVersion:ocppVersion:relatesTo:)`` (a fault
/// instead), ``writeCall(action:payload:ocppVersion:identity:messageID:to:from:)`` (the CSMS's call to a charger)
/// and ``readCallAnswer(_:action:ocppVersion:messageID:)`` (the charger's answer to it).
public struct SOAPCodec: Sendable {
    public var layouts: SOAPLayouts
    public var limits: XMLReader.Limits

    public init(layouts: SOAPLayouts, limits: XMLReader.Limits = XMLReader.Limits()) {
        self.layouts = layouts
        self.limits = limits
    }

    // MARK: (a) A charger's request

    /// Reads a charger's request. `contentType` and `soapAction` are the HTTP headers' values, when sent: they
    /// name the action when the envelope has no `wsa:Action`.
    ///
    /// The action is, in this order: `wsa:Action`'s last path segment, the content type's `action` parameter, the
    /// `SOAPAction` header, the body element's name (`bootNotificationRequest` → `BootNotification`); it must agree
    /// with the body element. The OCPP version is the body's namespace (Central System service of 1.5 or 1.6, with
    /// or without the trailing slash).
    public func readRequest(
        _ bytes: some Collection<UInt8>, contentType: String? = nil, soapAction: String? = nil
    ) -> Result<SOAPRequest, SOAPRequestFailure> {
        readCall(bytes, contentType: contentType, soapAction: soapAction, from: .charger)
    }

    /// Reads a call sent by `caller`: ``readRequest(_:contentType:soapAction:)`` for a charger; the CSMS's side
    /// for tests, which read what ``writeCall(action:payload:ocppVersion:identity:messageID:to:from:caller:)``
    /// writes.
    func readCall(
        _ bytes: some Collection<UInt8>, contentType: String?, soapAction: String?, from caller: Side
    ) -> Result<SOAPRequest, SOAPRequestFailure> {
        var failure = SOAPRequestFailure(fault: SOAPFault(.protocolError, ""), soapVersion: .soap12)
        func fail(_ fault: SOAPFault, _ violation: ShapeViolation? = nil) -> Result<SOAPRequest, SOAPRequestFailure> {
            failure.fault = fault
            failure.violation = violation
            return .failure(failure)
        }
        let envelope: SOAPEnvelope
        do {
            envelope = try SOAPEnvelope.open(try XMLReader.read(bytes, limits: limits))
        } catch let error as XMLReadError {
            return fail(SOAPFault(.protocolError, "unreadable XML: \(error)"))
        } catch let refusal as SOAPEnvelope.Refusal {
            failure.soapVersion = refusal.version
            return fail(refusal.fault)
        } catch {
            return fail(SOAPFault(.internalError, "\(error)"))
        }
        failure.soapVersion = envelope.version
        failure.messageID = envelope.addressing("MessageID")

        let notUnderstood = envelope.notUnderstood { understands($0) }
        if !notUnderstood.isEmpty {
            return fail(
                SOAPFault(
                    code: .mustUnderstand,
                    reason:
                        "header not understood: \(notUnderstood.map { "{\($0.namespace)}\($0.name)" }.joined(separator: ", "))",
                    notUnderstood: notUnderstood))
        }
        guard let (layout, side) = service(of: envelope.body.namespace) else {
            return fail(SOAPFault(.notSupported, "unknown OCPP namespace '\(envelope.body.namespace)'"))
        }
        failure.ocppVersion = layout.version
        guard side == caller else {
            return fail(
                SOAPFault(
                    .protocolError, "the body is in the namespace of the other service (\(envelope.body.namespace))"))
        }
        failure.identity = identity(envelope)
        guard let identity = failure.identity else {
            return fail(SOAPFault(.protocolError, "the chargeBoxIdentity header is missing (OCPP-S §3.3)"))
        }
        let bodyAction = layout.action(ofElement: envelope.body.name, response: false)
        let named =
            envelope.addressing("Action").map(Self.lastSegment)
            ?? Self.parameter("action", of: contentType).map(Self.lastSegment)
            ?? soapAction.map(Self.lastSegment).flatMap { $0.isEmpty ? nil : $0 }
        guard let action = named ?? bodyAction ?? Self.action(ofBodyElement: envelope.body.name) else {
            return fail(SOAPFault(.protocolError, "no action"))
        }
        failure.action = action
        guard let message = layout.definitions.messages[action], message.sentBy.includes(caller),
            let elements = layout.elements[action]
        else {
            return fail(SOAPFault(.notSupported, "\(layout.version) has no action \(action) sent by the \(caller)"))
        }
        guard envelope.body.name == elements.request else {
            return fail(
                SOAPFault(
                    .protocolError, "action \(action) with body element \(envelope.body.name), not \(elements.request)")
            )
        }
        switch SOAPBody.decode(
            envelope.body, shape: message.request, path: action + ".request", namespace: envelope.body.namespace,
            layout: layout)
        {
        case .failure(let violation):
            return fail(SOAPFault(.protocolError, "\(action): \(violation)"), violation)
        case .success(let payload):
            return .success(
                SOAPRequest(
                    soapVersion: envelope.version, ocppVersion: layout.version, action: action, identity: identity,
                    messageID: failure.messageID, from: envelope.addressing("From", address: true),
                    replyTo: envelope.addressing("ReplyTo", address: true), to: envelope.addressing("To"),
                    payload: payload, caller: caller))
        }
    }

    // MARK: (b) The answer to it

    /// The answer to `request`: `payload` as the response body (checked against the definition first), with
    /// `wsa:Action` `/XResponse`, `wsa:RelatesTo` the request's MessageID and the `chargeBoxIdentity` header, in
    /// the request's SOAP version. `messageID`, when given, is the answer's own `wsa:MessageID`.
    public func writeResponse(to request: SOAPRequest, payload: JSONValue, messageID: String? = nil)
        throws(SOAPWriteError) -> SOAPMessage
    {
        guard let layout = layouts[request.ocppVersion] else { throw .unsupportedVersion(request.ocppVersion) }
        var addressing: [(String, String)] = [("Action", "/\(request.action)Response")]
        if let messageID { addressing.append(("MessageID", messageID)) }
        if let id = request.messageID { addressing.append(("RelatesTo", id)) }
        return try write(
            action: request.action, response: true, payload: payload, layout: layout,
            namespace: layout.namespace(ofCallsFrom: request.caller), soapVersion: request.soapVersion,
            identity: request.identity, addressing: addressing)
    }

    // MARK: (c) A fault

    /// A fault in `soapVersion`: code Sender/Receiver (1.1: Client/Server, the OCPP subcode after a dot), the
    /// subcode in the OCPP namespace of `ocppVersion` (1.6's Central System namespace when unknown), the reason,
    /// and for MustUnderstand the SOAP 1.2 `NotUnderstood` headers. Send it with
    /// ``SOAPFault/httpStatus(in:)``. Characters XML cannot carry in the reason become U+FFFD.
    public func writeFault(
        _ fault: SOAPFault, soapVersion: SOAPVersion, ocppVersion: OCPPVersion? = nil, relatesTo: String? = nil
    ) -> SOAPMessage {
        let env = soapVersion.namespace
        let ocpp = ocppVersion.flatMap { layouts[$0]?.centralSystemNamespace } ?? "urn://Ocpp/Cs/2015/10/"
        var writer = XMLWriter()
        let reason = Self.writable(fault.reason)
        // The names and namespaces below are the proxy's own; only `reason` and `relatesTo` come from outside.
        try? writer.start("s:Envelope", [("xmlns:s", env), ("xmlns:a", SOAPEnvelope.addressing), ("xmlns:o", ocpp)])
        try? writer.start("s:Header")
        if soapVersion == .soap12 {
            for (index, name) in fault.notUnderstood.enumerated() {
                try? writer.element(
                    "s:NotUnderstood", [("qname", "n\(index):\(name.name)"), ("xmlns:n\(index)", name.namespace)],
                    text: "")
            }
        }
        try? writer.element("a:Action", text: SOAPEnvelope.faultAction)
        if let relatesTo { try? writer.element("a:RelatesTo", text: Self.writable(relatesTo)) }
        writer.end()
        try? writer.start("s:Body")
        try? writer.start("s:Fault")
        switch soapVersion {
        case .soap12:
            try? writer.start("s:Code")
            try? writer.element("s:Value", text: "s:" + fault.code.name(in: .soap12))
            if let subcode = fault.subcode {
                try? writer.start("s:Subcode")
                try? writer.element("s:Value", text: "o:" + Self.writable(subcode))
                writer.end()
            }
            writer.end()
            try? writer.start("s:Reason")
            try? writer.element("s:Text", [("xml:lang", "en")], text: reason)
            writer.end()
        case .soap11:
            let code = "s:" + fault.code.name(in: .soap11) + (fault.subcode.map { "." + Self.writable($0) } ?? "")
            try? writer.element("faultcode", text: code)
            try? writer.element("faultstring", text: reason)
        }
        return SOAPMessage(bytes: writer.document, contentType: soapVersion.contentType)
    }

    /// The fault answering a request that could not be read, in its SOAP version, related to its MessageID.
    public func writeFault(for failure: SOAPRequestFailure) -> SOAPMessage {
        writeFault(
            failure.fault, soapVersion: failure.soapVersion, ocppVersion: failure.ocppVersion,
            relatesTo: failure.messageID)
    }

    // MARK: (d) A call to a charger

    /// The CSMS's call `action` to a charger, in SOAP 1.2 and the Charge Point namespace of `ocppVersion`, with
    /// the full WS-Addressing set (OCPP-S §3.4–3.9): Action `/X`, MessageID, To (the charger's endpoint), From (the
    /// proxy's own SOAP URL), ReplyTo anonymous, and `chargeBoxIdentity`.
    ///
    /// `caller: .charger` writes a charger's request to the Central System service instead (for tests and load
    /// generators that play the charger); `from` is then the charger's own URL.
    public func writeCall(
        action: String, payload: JSONValue, ocppVersion: OCPPVersion, identity: String, messageID: String,
        to endpoint: String, from proxyURL: String, caller: Side = .csms
    ) throws(SOAPWriteError) -> SOAPMessage {
        guard let layout = layouts[ocppVersion] else { throw .unsupportedVersion(ocppVersion) }
        guard let message = layout.definitions.messages[action], message.sentBy.includes(caller) else {
            throw .unknownAction(action)
        }
        return try write(
            action: action, response: false, payload: payload, layout: layout,
            namespace: layout.namespace(ofCallsFrom: caller),
            soapVersion: .soap12, identity: identity,
            addressing: [
                ("Action", "/\(action)"), ("MessageID", messageID), ("To", endpoint), ("From", proxyURL),
                ("ReplyTo", SOAPEnvelope.anonymous),
            ])
    }

    // MARK: (e) The charger's answer to it

    /// Reads a charger's answer to the call `action` sent with `messageID`: the response body as a payload, or the
    /// charger's SOAP Fault, or why the answer is unusable. A `wsa:RelatesTo` that names another message makes it
    /// unusable; a missing one is accepted.
    ///
    /// `caller: .charger` reads the Central System's answer to a charger's request instead.
    public func readCallAnswer(
        _ bytes: some Collection<UInt8>, action: String, ocppVersion: OCPPVersion, messageID: String? = nil,
        caller: Side = .csms
    ) -> SOAPCallAnswer {
        guard let layout = layouts[ocppVersion], let message = layout.definitions.messages[action],
            let elements = layout.elements[action]
        else { return .invalid(reason: "no SOAP layout for \(ocppVersion) \(action)", violation: nil) }
        let envelope: SOAPEnvelope
        do {
            envelope = try SOAPEnvelope.open(try XMLReader.read(bytes, limits: limits))
        } catch let error as XMLReadError {
            return .invalid(reason: "unreadable XML: \(error)", violation: nil)
        } catch let refusal as SOAPEnvelope.Refusal {
            return .invalid(reason: refusal.fault.reason, violation: nil)
        } catch {
            return .invalid(reason: "\(error)", violation: nil)
        }
        if let fault = envelope.fault { return .fault(fault) }
        if let relatesTo = envelope.addressing("RelatesTo"), let messageID, relatesTo != messageID {
            return .invalid(
                reason: "RelatesTo '\(relatesTo)' is not the call's MessageID '\(messageID)'", violation: nil)
        }
        let namespace = layout.namespace(ofCallsFrom: caller)
        guard envelope.body.name == elements.response, SOAPNamespaces.same(envelope.body.namespace, namespace) else {
            return .invalid(
                reason:
                    "expected {\(namespace)}\(elements.response), got {\(envelope.body.namespace)}\(envelope.body.name)",
                violation: nil)
        }
        switch SOAPBody.decode(
            envelope.body, shape: message.response, path: action + ".response", namespace: envelope.body.namespace,
            layout: layout)
        {
        case .success(let payload): return .result(payload)
        case .failure(let violation): return .invalid(reason: "\(action) response: \(violation)", violation: violation)
        }
    }

    // MARK: Shared

    /// The version and the sender of the calls whose body namespace is `namespace`.
    func service(of namespace: String) -> (SOAPLayout, Side)? {
        for layout in layouts.layouts.values.sorted(by: { $0.version.rawValue < $1.version.rawValue }) {
            if SOAPNamespaces.same(namespace, layout.centralSystemNamespace) { return (layout, .charger) }
            if SOAPNamespaces.same(namespace, layout.chargePointNamespace) { return (layout, .csms) }
        }
        return nil
    }

    /// Whether `block` is a header the proxy reads: WS-Addressing's, or an OCPP header of the layouts (its name
    /// case-insensitive, OCPP-S §3.3).
    func understands(_ block: XMLElementNode) -> Bool {
        if block.namespace == SOAPEnvelope.addressing { return SOAPEnvelope.addressingHeaders.contains(block.name) }
        guard service(of: block.namespace) != nil else { return false }
        return layouts.layouts.values.contains { layout in
            layout.headerElements.contains { $0.lowercased() == block.name.lowercased() }
        }
    }

    /// The `chargeBoxIdentity` header in an OCPP namespace, its name matched case-insensitively (OCPP-S §3.3).
    func identity(_ envelope: SOAPEnvelope) -> String? {
        let block = envelope.headers.first {
            $0.name.lowercased() == "chargeboxidentity" && service(of: $0.namespace) != nil
        }
        return block.map { SOAPScalars.collapsed($0.text) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    private func write(
        action: String, response: Bool, payload: JSONValue, layout: SOAPLayout, namespace: String,
        soapVersion: SOAPVersion, identity: String, addressing: [(String, String)]
    ) throws(SOAPWriteError) -> SOAPMessage {
        guard let message = layout.definitions.messages[action], let elements = layout.elements[action] else {
            throw .unknownAction(action)
        }
        let shape = response ? message.response : message.request
        if let violation = shape.violation(of: payload) { throw .invalidPayload(violation) }
        var writer = XMLWriter()
        do {
            try writer.start(
                "s:Envelope", [("xmlns:s", soapVersion.namespace), ("xmlns:a", SOAPEnvelope.addressing)])
            try writer.start("s:Header")
            // In the namespace of the service called, as each WSDL declares its own `chargeBoxIdentity`.
            try writer.element("chargeBoxIdentity", [("xmlns", namespace)], text: identity)
            for (name, value) in addressing {
                if name == "From" || name == "ReplyTo" {
                    try writer.start("a:" + name)
                    try writer.element("a:Address", text: value)
                    writer.end()
                } else {
                    try writer.element("a:" + name, text: value)
                }
            }
            writer.end()
            try writer.start("s:Body")
            try SOAPBody.encode(
                payload, shape: shape, name: response ? elements.response : elements.request, namespace: namespace,
                path: action + (response ? ".response" : ".request"), layout: layout, into: &writer)
        } catch {
            throw .unwritable(error)
        }
        return SOAPMessage(bytes: writer.document, contentType: soapVersion.contentType)
    }

    /// `BootNotification` of `/BootNotification`, `urn://Ocpp/Cs/2015/10//BootNotification` or `"/BootNotification"`.
    static func lastSegment(_ text: String) -> String {
        let unquoted = SOAPScalars.collapsed(text).trimmingQuotes
        return unquoted.split(separator: "/").last.map(String.init) ?? ""
    }

    /// A parameter of a content type (`application/soap+xml; charset=utf-8; action="/Heartbeat"`), unquoted.
    static func parameter(_ name: String, of contentType: String?) -> String? {
        guard let contentType else { return nil }
        for part in contentType.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, SOAPScalars.collapsed(String(pair[0])).lowercased() == name else { continue }
            let value = SOAPScalars.collapsed(String(pair[1])).trimmingQuotes
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// `BootNotification` for `bootNotificationRequest`.
    static func action(ofBodyElement name: String) -> String? {
        guard name.hasSuffix("Request"), let first = name.first else { return nil }
        return first.uppercased() + name.dropFirst().dropLast("Request".count)
    }

    /// `text` with every character XML 1.0 cannot carry replaced by U+FFFD: for the proxy's own fault texts, which
    /// may quote what a peer sent.
    static func writable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x09, 0x0A, 0x0D: out.append(scalar)
            case 0..<0x20, 0xFFFE, 0xFFFF: out.append("\u{FFFD}")
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}

extension String {
    fileprivate var trimmingQuotes: String {
        count >= 2 && hasPrefix("\"") && hasSuffix("\"") ? String(dropFirst().dropLast()) : self
    }
}
