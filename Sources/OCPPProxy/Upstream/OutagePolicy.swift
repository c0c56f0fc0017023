import OCPP

/// What becomes of a frame on its way to the CSMS while the charger's CSMS link is down, or while what was held
/// during the outage is delivered.
enum OutageDecision: Equatable {
    /// Answered by the proxy in the CSMS's place with this CALLRESULT payload, and not forwarded.
    case answerLocally(JSONValue)
    /// Persisted, then acknowledged with this CALLRESULT payload; delivered in order once the link is back.
    case queue(ack: JSONValue)
    /// Held, unanswered, until the link is back: only the CSMS can answer it.
    case wait
    /// Not delivered: an answer to a CALL the CSMS made on the link that is gone (that CSMS has given up on it),
    /// or a SEND (never answered, and its stream goes on after the outage).
    case drop
}

/// Which frames the proxy may acknowledge in the CSMS's place during an outage. The rule: only what the CSMS's
/// answer carries nothing for the charger to act on, or what the proxy itself decides in translation.
/// - Heartbeat: answered with the proxy's time. StatusNotification: answered, and its latest per connector is sent
///   when the link is back.
/// - Transaction messages whose answer the charger does not act on: 1.6 StopTransaction and MeterValues of a
///   transaction; 2.0.1 TransactionEvent without an idToken (an idToken asks for an authorisation).
/// - In translation, a 1.x charger's StartTransaction, StopTransaction and transaction MeterValues become
///   TransactionEvents whose transaction id the proxy owns: acknowledged (an idToken in them accepted, as a charger
///   with offline authorisation would), since the CSMS's id is not needed for the charger's answer.
/// - Everything else (Authorize, BootNotification, a pass-through StartTransaction, DataTransfer, ...) waits.
enum OutagePolicy {
    static func decide(
        type: MessageTypeNumber, action: String?, payload: () -> JSONValue?, upstream: OCPPVersion,
        translatedFrom chargerAction: String?, now: Int64
    ) -> OutageDecision {
        switch type {
        case .callResult, .callError, .callResultError, .send:
            return .drop
        case .call:
            break
        }
        switch action {
        case "Heartbeat":
            return .answerLocally(.object(["currentTime": .string(DateTimeText(seconds: now).utcText)]))
        case "StatusNotification":
            return .answerLocally(.object([:]))
        case "StopTransaction" where upstream.isOCPP1x:
            return .queue(ack: .object([:]))
        case "MeterValues" where upstream.isOCPP1x:
            guard case .object(let fields)? = payload(), fields["transactionId"] != nil else { return .wait }
            return .queue(ack: .object([:]))
        case "TransactionEvent" where !upstream.isOCPP1x:
            guard case .object(let fields)? = payload() else { return .wait }
            if fields["idToken"] == nil { return .queue(ack: .object([:])) }
            guard let chargerAction, ["StartTransaction", "StopTransaction", "MeterValues"].contains(chargerAction)
            else { return .wait }
            return .queue(ack: .object(["idTokenInfo": .object(["status": .string("Accepted")])]))
        default:
            return .wait
        }
    }

    /// The frame as it is held for the CSMS: a TransactionEvent says it happened while the CSMS could not be told
    /// (`offline: true`, OCPP 2.0.1 E12); everything else as it was.
    static func held(_ frame: RPCFrame) -> RPCFrame {
        guard case .call(let id, "TransactionEvent", .object(var fields)) = frame else { return frame }
        fields["offline"] = .bool(true)
        return .call(id: id, action: "TransactionEvent", payload: .object(fields))
    }

    /// Why the proxy closes a link on which a message delivered after an outage got no answer.
    static let deliveryTimeout = "delivery_timeout"

    /// Whether a CSMS close of a charger's link means an outage (the charger stays while the proxy reconnects), or
    /// the CSMS's decision about this charger (passed on to it). Lost connections, a keepalive timeout, and the
    /// codes of a server going away or failing (1001, 1006, 1011–1014) are outages; a normal close, a policy
    /// violation, application codes (3000–4999) and a close without a code are decisions. A link the proxy closed is an outage only when it
    /// found the link dead (keepalive, or no answer to a delivered message).
    static func isOutage(peerCode: UInt16?, reason: String?) -> Bool {
        if let reason { return reason == "keepalive_timeout" || reason == deliveryTimeout }
        guard let peerCode else { return true }
        return [1001, 1006, 1011, 1012, 1013, 1014].contains(peerCode)
    }
}

extension OCPPVersion {
    /// 1.5 and 1.6: transaction ids are integers the CSMS assigns.
    var isOCPP1x: Bool {
        switch self {
        case .v1_5, .v1_6: return true
        case .v2_0_1, .v2_1: return false
        }
    }
}
