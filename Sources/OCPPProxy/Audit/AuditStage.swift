import NIOCore
import NIOWebSocket
import OCPP

/// The audit tap: the first stage of every session when the audit log is on. It records each frame on the leg it
/// travels — as it arrives (before any check, so refused frames are there too), and as it goes out (after every
/// stage, so what is recorded is what the peer gets) — with the decision the proxy took and the frame it was made
/// from, and the session's connect and disconnects. It never changes a frame.
///
/// A forwarded frame's outgoing record has no payload: its bytes are those of the incoming record its `cause` names.
final class AuditStage: FrameStage {
    let name = "audit"
    private let log: AuditLog
    private var session: AuditSessionInfo
    /// The action of each CALL whose answer has not been recorded yet, by the leg the answer will take and its id;
    /// so that an answer's record names its action (and its payload is redacted by the right table).
    private var awaiting: [AwaitKey: String] = [:]
    private let awaitingLimit: Int

    private struct AwaitKey: Hashable {
        let leg: AuditLeg
        let id: String
    }

    /// Records from now on carry the new upstream's URL and are read in its version.
    func upstreamChanged(_ context: SessionContext) {
        if let session = context.audit?.session { self.session = session }
    }

    init(log: AuditLog, session: AuditSessionInfo, maxPendingCalls: Int) {
        self.log = log
        self.session = session
        // CALLs either way, in and out, plus the proxy's own: beyond that an entry belongs to a CALL never answered.
        self.awaitingLimit = 4 * maxPendingCalls + 64
    }

    var watchesArrivals: Bool { true }
    var watchesOutbound: Bool { true }

    func inbound(_ frame: Frame) -> StageVerdict { .pass }

    func arrived(_ frame: Frame) {
        let leg = AuditLeg.inbound(from: frame.side)
        log.record(
            AuditEntry(
                body: .frame(
                    AuditFrame(
                        session: session, leg: leg, type: frame.type, messageId: frame.messageId,
                        action: action(leg: leg, type: frame.type, id: frame.messageId, action: frame.action),
                        errorCode: frame.errorCode,
                        content: frame.parsed.map { .parsed($0) } ?? .text(frame.text, payload: frame.payloadRange),
                        decision: "received", cause: nil))))
    }

    func malformed(_ text: ByteBuffer, from side: Side, reason: String, messageId: String?) {
        log.record(
            AuditEntry(
                body: .frame(
                    AuditFrame(
                        session: session, leg: .inbound(from: side), type: nil, messageId: messageId, action: nil,
                        errorCode: nil, content: .malformed(text, reason: reason), decision: "malformed",
                        cause: nil))))
    }

    func outbound(_ frame: Outgoing) -> Outgoing {
        let leg = AuditLeg.outbound(to: frame.side)
        let cause = frame.cause.map { (leg: AuditLeg.inbound(from: $0.side), id: $0.id) }
        let content: AuditFrame.Content?
        let decision: String
        let action: String?
        var errorCode: String?
        switch frame.content {
        case .forwarded:
            decision = "forwarded"
            content = nil
            action = self.action(leg: leg, type: frame.type, id: frame.messageId, action: frame.action)
        case .frame(let rpc):
            content = .parsed(rpc)
            if frame.replayed {
                decision = "replayed"
            } else if frame.relayed {
                decision = "relayed"
            } else if let cause = frame.cause {
                // Back to the side the cause came from: the proxy answered in the peer's place (or refused).
                decision =
                    cause.side == frame.side ? (frame.type == .callError ? "refused" : "answered") : "translated"
            } else {
                decision = frame.type == .callError ? "timeout" : "proxy"
            }
            var callAction: String?
            switch rpc {
            case .call(_, let name, _), .send(_, let name, _): callAction = name
            case .callError(_, let code, _, _), .callResultError(_, let code, _, _): errorCode = code
            case .callResult: break
            }
            action = self.action(leg: leg, type: frame.type, id: frame.messageId, action: callAction)
        }
        log.record(
            AuditEntry(
                body: .frame(
                    AuditFrame(
                        session: session, leg: leg, type: frame.type, messageId: frame.messageId, action: action,
                        errorCode: errorCode, content: content, decision: decision, cause: cause))))
        return frame
    }

    /// A CALL's action (remembered for its answer's leg), or for an answer the action of the CALL it answers.
    private func action(leg: AuditLeg, type: MessageTypeNumber, id: String, action: String?) -> String? {
        switch type {
        case .call:
            guard let action else { return nil }
            if awaiting.count >= awaitingLimit { awaiting.removeAll(keepingCapacity: true) }
            awaiting[AwaitKey(leg: Self.answerLeg(of: leg), id: id)] = action
            return action
        case .send:
            return action
        case .callResult, .callError:
            return awaiting.removeValue(forKey: AwaitKey(leg: leg, id: id))
        case .callResultError:
            return nil
        }
    }

    /// The leg a CALL's answer takes: back the way it came, on the other side of the proxy's hands.
    static func answerLeg(of leg: AuditLeg) -> AuditLeg {
        switch leg {
        case .chargerToProxy: return .proxyToCharger
        case .proxyToCharger: return .chargerToProxy
        case .csmsToProxy: return .proxyToCSMS
        case .proxyToCSMS: return .csmsToProxy
        }
    }

    // MARK: Session events

    func connected() {
        log.record(.event("connect", [:], session: session))
    }

    func sessionEvent(_ name: String, _ fields: JSONObject) {
        log.record(.event(name, fields, session: session))
    }

    func linkClosed(_ side: Side, code: WebSocketErrorCode?, reason: String) {
        var fields: JSONObject = ["side": .string(side.rawValue), "reason": .string(reason)]
        if let code { fields["code"] = .integer(Int64(UInt16(webSocketErrorCode: code))) }
        log.record(.event("disconnect", fields, session: session))
    }
}
