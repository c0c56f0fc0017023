import NIOCore
import NIOHTTP1
import OCPP

/// A charger's SOAP request, as the proxy needs it.
struct SOAPChargerRequest {
    var version: OCPPVersion
    var action: String
    /// The `chargeBoxIdentity` header, nil when absent.
    var identity: String?
    /// The `wsa:From` address, nil when absent.
    var from: String?
    var payload: JSONValue
}

/// A SOAP fault's code: OCPP-S names its subcodes (SecurityError, IdentityMismatch, ProtocolError for the sender;
/// InternalError, NotSupported for the receiver).
enum SOAPFaultCode: Equatable {
    case sender(String)
    case receiver(String)

    /// The fault that tells a SOAP charger what the RPC error code of its request's CALLERROR said.
    init(rpcErrorCode code: String) {
        switch code {
        case "NotImplemented", "NotSupported": self = .receiver("NotSupported")
        case "SecurityError": self = .sender("SecurityError")
        case "InternalError", "GenericError": self = .receiver("InternalError")
        default: self = .sender("ProtocolError")
        }
    }
}

/// The SOAP messages of OCPP 1.5 and 1.6 in the proxy's terms: what a charger's request says, the answers and faults
/// that go back, and the requests the proxy sends chargers with what they answer.
struct SOAPMessages: Sendable {
    /// A request that is not one the proxy can take: the reply it gets, why (for the log) and the metric label.
    struct Refusal: Error {
        var reply: SOAPReply
        var reason: String
        var metric: String
    }

    /// A request to a charger, ready to POST.
    struct Outgoing {
        var contentType: String
        var body: [UInt8]
    }

    init(rules: Any) throws {}

    func read(_ body: ByteBuffer, contentType: String?, soapAction: String?) -> Result<SOAPChargerRequest, Refusal> {
        .failure(Refusal(reply: .plain(.notImplemented, "not yet"), reason: "not yet", metric: "soap"))
    }

    func answer(_ request: SOAPChargerRequest, payload: JSONValue) -> SOAPReply {
        .plain(.notImplemented, "not yet")
    }

    func fault(_ request: SOAPChargerRequest?, _ code: SOAPFaultCode, _ reason: String) -> SOAPReply {
        .plain(.notImplemented, "not yet")
    }

    func request(
        action: String, payload: JSONValue, version: OCPPVersion, identity: String, messageId: String, to: String,
        from: String
    ) -> Result<Outgoing, SOAPMessageProblem> {
        .failure(SOAPMessageProblem(description: "not yet"))
    }

    func answer(to action: String, version: OCPPVersion, response: SOAPClient.Response) -> SOAPChargerLink.CallOutcome {
        .error(.internalError, description: "not yet")
    }
}

struct SOAPMessageProblem: Error, CustomStringConvertible {
    var description: String
}
