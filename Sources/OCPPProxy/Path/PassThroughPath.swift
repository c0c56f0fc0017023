import NIOCore
import OCPP

/// The path of a charger that speaks the CSMS's version: every frame's own bytes are forwarded; only the envelope is
/// read. The CALLs of both directions are tracked until answered, so that an answer that matches no CALL (or comes
/// after `limits.callTimeout`) is dropped and a malformed answer fails its CALL at once.
final class PassThroughPath: FramePath {
    private let context: SessionContext
    /// CALLs each side sent that the other has not answered yet, keyed by the sender.
    private var fromCharger = PendingCallTable()
    private var fromCSMS = PendingCallTable()
    private var limit: PendingCallLimit

    init(context: SessionContext) {
        self.context = context
        self.limit = PendingCallLimit(maximum: context.limits.maxPendingCalls)
    }

    var readsPayloads: Bool { false }
    var translation: String? { nil }
    var nextDeadline: NIODeadline? { nil }

    func start() -> EventLoopFuture<Void> { context.eventLoop.makeSucceededVoidFuture() }

    func expire(now: NIODeadline) -> Outbox { .empty }

    func admit(_ frame: Frame) -> [Outgoing]? {
        guard frame.type == .call else { return nil }
        let side = frame.side
        let now = frame.arrived
        let expired = withPending(of: side) { $0.expire(olderThan: context.limits.callTimeout, now: now) }
        for _ in 0..<expired { context.metrics.callTimedOut(from: side) }
        if withPending(of: side, { $0.contains(frame.messageId) }) {
            // 2.0.1 part 4 §4.2.3: a CALL whose id is already being handled is answered with a CALLERROR.
            return [
                context.callError(
                    to: side, id: frame.messageId,
                    code: context.version(of: side).isTwoX ? .rpcFrameworkError : .genericError,
                    description: "a CALL with message id \(frame.messageId) is already pending")
            ]
        }
        let count = withPending(of: side) { $0.count }
        if let refusal = limit.check(frame, count: count, context: context) {
            return refusal
        }
        context.metrics.frame(from: side, type: .call, action: frame.action, version: context.version(of: side))
        return nil
    }

    func receive(_ frame: Frame) -> Outbox {
        let side = frame.side
        let version = context.version(of: side)
        let now = frame.arrived
        switch frame.type {
        case .call:
            withPending(of: side) { $0.insert(frame.messageId, action: frame.action ?? "", now: now) }
            return .one(.forward(frame))
        case .send:
            context.metrics.frame(from: side, type: .send, action: frame.action, version: version)
            return .one(.forward(frame))
        case .callResult, .callError:
            // An answer after limits.callTimeout finds its CALL forgotten: the caller gave up on it too.
            let pending = withPending(of: side.other) { $0.remove(frame.messageId) }
            if let pending, now - pending.sentAt >= context.limits.callTimeout {
                context.metrics.callTimedOut(from: side.other)
            }
            guard let call = pending, now - call.sentAt < context.limits.callTimeout else {
                context.metrics.unmatchedResponse(from: side)
                context.logger.warning(
                    "dropped a \(frame.type == .callResult ? "CALLRESULT" : "CALLERROR") that answers no pending CALL",
                    metadata: ["from": "\(side)", "messageId": "\(frame.messageId)"])
                return .empty
            }
            context.metrics.frame(from: side, type: frame.type, action: call.action, version: version)
            if frame.type == .callError, let code = frame.errorCode {
                context.metrics.callError(sender: side.rawValue, code: code, version: version)
            }
            return .one(.forward(frame))
        case .callResultError:
            context.metrics.frame(from: side, type: .callResultError, action: nil, version: version)
            return .one(.forward(frame))
        }
    }

    func receiveBrokenAnswer(id: String, from side: Side, description: String) -> Outbox {
        guard withPending(of: side.other, { $0.remove(id) }) != nil else { return .empty }
        return .now([context.callError(to: side.other, id: id, code: .protocolError, description: description)])
    }

    func awaitsAnswer(fromCharger id: String) -> Bool { fromCSMS.contains(id) }

    var pendingCalls: (fromCharger: Int, fromCSMS: Int) {
        let now = context.eventLoop.now
        func live(_ table: PendingCallTable) -> Int {
            table.calls.values.filter { now - $0.sentAt < context.limits.callTimeout }.count
        }
        return (live(fromCharger), live(fromCSMS))
    }

    private func withPending<T>(of side: Side, _ body: (inout PendingCallTable) -> T) -> T {
        side == .charger ? body(&fromCharger) : body(&fromCSMS)
    }
}
