import NIOCore
import OCPP

/// The first stage: CSMS CALLs about the charger's credentials or network connection concern the proxy's own link
/// to the CSMS (TLS and Basic auth end at the proxy), so the proxy answers them (see ``CredentialMessage``). A new
/// upstream password is stored before the answer leaves (A01.FR.03); a SetVariables that mixes it with other
/// variables goes on without it, and the proxy's own results are put back into the charger's answer.
final class CredentialStage: FrameStage {
    let name = "credentials"
    private var context: SessionContext
    private let credentials: UpstreamCredentials
    /// Results the proxy answered itself for part of a CSMS CALL (SetVariables with BasicAuthPassword), by its id.
    private var ownResults: [String: [Int: JSONValue]] = [:]
    /// A CSMS that never gets its answers cannot grow this without bound.
    private static let ownResultsKept = 64

    func upstreamChanged(_ context: SessionContext) { self.context = context }

    init(context: SessionContext, credentials: UpstreamCredentials) {
        self.context = context
        self.credentials = credentials
    }

    func inbound(_ frame: Frame) -> StageVerdict {
        guard frame.side == .csms, frame.type == .call, let action = frame.action,
            CredentialMessage.mayConcern(action: action), let payload = frame.payload
        else { return .pass }
        let id = frame.messageId
        switch CredentialMessage.classify(action: action, payload: payload, version: context.upstreamVersion) {
        case .forward:
            return .pass
        case .answer(let answer):
            context.logger.notice(
                "answered \(action) in the charger's place: it concerns the proxy's own link",
                metadata: ["messageId": "\(id)"])
            return .answer([reply(id: id, action: action, answer)])
        case .changePassword(let password, let answer):
            return .hold(
                store(password, id: id).map { [self] stored in
                    stored ?? .answer([reply(id: id, action: action, answer)])
                })
        case .changePasswordAndForward(let password, let forwarded, let own):
            return .hold(
                store(password, id: id).map { [self] stored in
                    if let stored { return stored }
                    if ownResults.count >= Self.ownResultsKept, let any = ownResults.keys.first {
                        ownResults.removeValue(forKey: any)
                    }
                    ownResults[id] = own
                    return .rewrite(
                        Frame(
                            side: .csms, replacing: .call(id: id, action: action, payload: forwarded),
                            allocator: ByteBufferAllocator(), arrived: frame.arrived))
                })
        }
    }

    /// Only while the proxy holds its own results of a SetVariables it passed on.
    var watchesOutbound: Bool { !ownResults.isEmpty }

    /// The charger's SetVariables answer, with the proxy's own results put back in request order.
    func outbound(_ frame: Outgoing) -> Outgoing {
        guard frame.side == .csms, frame.type == .callResult, !ownResults.isEmpty,
            let own = ownResults.removeValue(forKey: frame.messageId)
        else { return frame }
        guard let payload = frame.payload, let merged = CredentialMessage.merge(own, into: payload) else {
            return context.callError(
                to: .csms, id: frame.messageId, code: .protocolError,
                description: "the charging station's SetVariables answer has no setVariableResult")
        }
        return .frame(.callResult(id: frame.messageId, payload: merged), to: .csms)
    }

    private func reply(id: String, action: String, _ payload: JSONValue) -> Outgoing {
        context.metrics.frame(from: .charger, type: .callResult, action: action, version: context.upstreamVersion)
        return .frame(.callResult(id: id, payload: payload), to: .csms)
    }

    /// Persists the CSMS's new upstream password; nil when stored, else the CALLERROR that answers the CALL.
    private func store(_ password: String, id: String) -> EventLoopFuture<StageVerdict?> {
        credentials.update(password, for: context.identity, upstream: context.upstreamName).hop(to: context.eventLoop)
            .map { [self] in
                // Never the password itself (A01.FR.12).
                context.logger.notice(
                    "the CSMS changed this charger's upstream password; it is used from the next connection on")
                if let audit = context.audit {
                    audit.log.record(
                        .event(
                            "credential_change", ["what": .string("upstream_password"), "result": .string("stored")],
                            session: audit.session))
                }
                return nil
            }.flatMapError { [self] error in
                context.logger.error("could not persist the new upstream password: \(error)")
                return context.eventLoop.makeSucceededFuture(
                    .answer([
                        context.callError(
                            to: .csms, id: id, code: .internalError,
                            description: "the proxy could not store the new password")
                    ]))
            }
    }
}
