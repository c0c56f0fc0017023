/// The SOAP version of an envelope, known by its namespace. OCPP-S §2 prescribes 1.2; 1.1 envelopes are read
/// too and answered in 1.1.
public enum SOAPVersion: String, Sendable, Hashable, CustomStringConvertible {
    case soap11 = "1.1"
    case soap12 = "1.2"

    public var namespace: String {
        switch self {
        case .soap11: return "http://schemas.xmlsoap.org/soap/envelope/"
        case .soap12: return "http://www.w3.org/2003/05/soap-envelope"
        }
    }

    /// The HTTP content type of a message in this version (SOAP 1.2 part 2 §7.1.4; SOAP 1.1 §6.1.1).
    public var contentType: String {
        switch self {
        case .soap11: return "text/xml; charset=utf-8"
        case .soap12: return "application/soap+xml; charset=utf-8"
        }
    }

    public init?(namespace: String) {
        switch namespace {
        case SOAPVersion.soap11.namespace: self = .soap11
        case SOAPVersion.soap12.namespace: self = .soap12
        default: return nil
        }
    }

    public var description: String { "SOAP \(rawValue)" }
}

/// A SOAP Fault: what a receiver answers when it cannot process a request (OCPP-S §4 and its errata 3.1, 3.3).
public struct SOAPFault: Error, Sendable, Equatable, CustomStringConvertible {
    /// The fault code. SOAP 1.2 names it Sender/Receiver; SOAP 1.1 writes those as Client/Server.
    public enum Code: String, Sendable, Equatable {
        case versionMismatch = "VersionMismatch"
        case mustUnderstand = "MustUnderstand"
        case dataEncodingUnknown = "DataEncodingUnknown"
        case sender = "Sender"
        case receiver = "Receiver"

        /// The local name in `version`'s envelope namespace.
        public func name(in version: SOAPVersion) -> String {
            switch (self, version) {
            case (.sender, .soap11): return "Client"
            case (.receiver, .soap11): return "Server"
            default: return rawValue
            }
        }

        /// Reads a code's local name in either version.
        public init?(name: String) {
            switch name {
            case "Client": self = .sender
            case "Server": self = .receiver
            default: self.init(rawValue: name)
            }
        }
    }

    /// The subcodes OCPP-S names (§4, table 1), each with the code it goes with.
    public enum OCPPSubcode: String, Sendable, CaseIterable {
        case securityError = "SecurityError"
        case identityMismatch = "IdentityMismatch"
        case protocolError = "ProtocolError"
        case internalError = "InternalError"
        case notSupported = "NotSupported"

        public var code: Code {
            switch self {
            case .securityError, .identityMismatch, .protocolError: return .sender
            case .internalError, .notSupported: return .receiver
            }
        }
    }

    public var code: Code
    /// The subcode's local name: one of ``OCPPSubcode`` in the proxy's faults; any name in a charger's fault, which
    /// a client must accept (OCPP-S errata 3.3).
    public var subcode: String?
    /// The reason text, for a person.
    public var reason: String
    /// For ``Code/mustUnderstand``: the header blocks not understood, as (namespace, local name).
    public var notUnderstood: [QualifiedName]

    public struct QualifiedName: Sendable, Equatable {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    public init(code: Code, subcode: String? = nil, reason: String, notUnderstood: [QualifiedName] = []) {
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.notUnderstood = notUnderstood
    }

    /// A fault with an OCPP-S subcode and the code that goes with it.
    public init(_ subcode: OCPPSubcode, _ reason: String) {
        self.init(code: subcode.code, subcode: subcode.rawValue, reason: reason)
    }

    /// The OCPP-S subcode, when the subcode is one of them.
    public var ocppSubcode: OCPPSubcode? { subcode.flatMap(OCPPSubcode.init(rawValue:)) }

    /// The HTTP status of a response carrying this fault (SOAP 1.2 part 2 §7.5.1.2: Sender 400, every other code
    /// 500; SOAP 1.1 §6.2: 500 for every fault).
    public func httpStatus(in version: SOAPVersion) -> Int {
        version == .soap12 && code == .sender ? 400 : 500
    }

    public var description: String {
        "\(code.rawValue)\(subcode.map { "/\($0)" } ?? ""): \(reason)"
    }
}
