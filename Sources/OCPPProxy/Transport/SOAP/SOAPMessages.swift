import Foundation
import NIOCore
import NIOHTTP1
import OCPP
import OCPPRules
import OCPPSOAP

/// The SOAP messages of OCPP 1.5 and 1.6 in the transport's terms: ``OCPPSOAP/SOAPCodec`` (driven by the SOAP
/// layouts of the rules directory) with each message made an HTTP reply.
struct SOAPMessages: Sendable {
    /// A request that is not one the proxy can take: the fault reply it gets, why (for the log) and the metric
    /// label.
    struct Refusal: Error {
        var reply: SOAPReply
        var reason: String
        var metric: String
    }

    let codec: SOAPCodec

    /// The layouts of `rules/soap/*.yaml`; request bodies bounded by `maxBytes`.
    init(rulesDirectory: String, maxBytes: Int) throws(RuleErrors) {
        let layouts = try SOAPLayouts.load(RuleDirectory.read(rulesDirectory))
        codec = SOAPCodec(layouts: layouts, limits: XMLReader.Limits(maxBytes: maxBytes))
    }

    /// A charger's request, or the fault that answers it.
    func read(_ body: ByteBuffer, contentType: String?, soapAction: String?) -> Result<SOAPRequest, Refusal> {
        codec.readRequest(body.readableBytesView, contentType: contentType, soapAction: soapAction).mapError {
            failure in
            Refusal(
                reply: reply(codec.writeFault(for: failure), failure.fault, failure.soapVersion),
                reason: failure.description, metric: Self.metric(failure.fault))
        }
    }

    /// The answer to a charger's request; a payload that cannot be written as the WSDL says gets a fault instead.
    func answer(_ request: SOAPRequest, payload: JSONValue) -> SOAPReply {
        do {
            let message = try codec.writeResponse(to: request, payload: payload)
            return SOAPReply(status: .ok, contentType: message.contentType, body: message.bytes)
        } catch {
            return fault(
                request, SOAPFault(.internalError, "the answer cannot be written as OCPP-S \(request.action): \(error)")
            )
        }
    }

    /// A fault in the request's SOAP version (1.2 when there is no readable request), with its HTTP status.
    func fault(_ request: SOAPRequest?, _ fault: SOAPFault) -> SOAPReply {
        let version = request?.soapVersion ?? .soap12
        let message = codec.writeFault(
            fault, soapVersion: version, ocppVersion: request?.ocppVersion, relatesTo: request?.messageID)
        return reply(message, fault, version)
    }

    private func reply(_ message: SOAPMessage, _ fault: SOAPFault, _ version: SOAPVersion) -> SOAPReply {
        SOAPReply(
            status: HTTPResponseStatus(statusCode: fault.httpStatus(in: version)), contentType: message.contentType,
            body: message.bytes)
    }

    /// A CALL of the CSMS as a request to the charger's endpoint.
    func request(
        action: String, payload: JSONValue, version: OCPPVersion, identity: String, messageID: String,
        to endpoint: String,
        from ownURL: String
    ) -> Result<SOAPMessage, SOAPWriteError> {
        Result { () throws(SOAPWriteError) in
            try codec.writeCall(
                action: action, payload: payload, ocppVersion: version, identity: identity, messageID: messageID,
                to: endpoint, from: ownURL)
        }
    }

    /// What a charger's HTTP answer to `action` means for the CSMS: its payload, or a CALLERROR (its SOAP Fault, an
    /// HTTP error without one, or an answer the proxy cannot read).
    func answer(
        to action: String, version: OCPPVersion, messageID: String, response: SOAPClient.Response
    ) -> SOAPChargerLink.CallOutcome {
        switch codec.readCallAnswer(response.body, action: action, ocppVersion: version, messageID: messageID) {
        case .result(let payload) where response.status == .ok:
            return .result(payload)
        case .result:
            return .error(.genericError, description: "the charging station answered HTTP \(response.status.code)")
        case .fault(let fault):
            return .error(fault.rpcErrorCode, description: "the charging station answered with a SOAP Fault: \(fault)")
        case .invalid(let reason, _):
            let status = response.status == .ok ? "" : " (HTTP \(response.status.code))"
            return .error(.protocolError, description: "the charging station's answer is unusable\(status): \(reason)")
        }
    }

    /// The metric label of a refused request.
    static func metric(_ fault: SOAPFault) -> String {
        switch fault.code {
        case .mustUnderstand: return "soap_must_understand"
        case .versionMismatch: return "soap_version"
        default: return "soap_" + (fault.ocppSubcode.map { Self.snake($0.rawValue) } ?? "fault")
        }
    }

    private static func snake(_ name: String) -> String {
        var out = ""
        for (index, character) in name.enumerated() {
            if character.isUppercase, index > 0 { out.append("_") }
            out.append(contentsOf: character.lowercased())
        }
        return out
    }
}

extension SOAPFault {
    /// The fault that tells a SOAP charger what the CALLERROR answering its request said.
    init(rpcErrorCode code: String, description: String) {
        switch code {
        case "NotImplemented", "NotSupported": self.init(.notSupported, description)
        case "SecurityError": self.init(.securityError, description)
        case "InternalError", "GenericError": self.init(.internalError, description)
        default: self.init(.protocolError, description)
        }
    }

    /// The RPC error code a charger's fault stands for, toward the CSMS.
    var rpcErrorCode: RPCErrorCode {
        switch ocppSubcode {
        case .notSupported: return .notSupported
        case .securityError, .identityMismatch: return .securityError
        case .protocolError: return .protocolError
        case .internalError, nil: return code == .sender ? .protocolError : .internalError
        }
    }
}
