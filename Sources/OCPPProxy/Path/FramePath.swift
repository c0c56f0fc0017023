import NIOCore
import OCPP

/// The last step of a session's pipeline: what happens to a frame once every stage has let it through. Pass-through
/// forwards it and tracks the CALLs awaiting answers; translation turns it into frames of the other version. A path
/// never sends anything itself: it returns what to send, and the session sends it; the session also owns the one
/// timer a path may need (``nextDeadline``).
protocol FramePath: AnyObject {
    /// Whether frames must be parsed whole for this path, payload included, or only their envelope read.
    var readsPayloads: Bool { get }

    /// Called once, before the first frame; frames wait until the future completes. A failure ends the session.
    func start() -> EventLoopFuture<Void>

    /// The path's checks of a frame before any stage sees it (duplicate message ids, `limits.maxPendingCalls`):
    /// an answer in the proxy's name, or nil to let it in. Counts the frames it lets in.
    func admit(_ frame: Frame) -> [Outgoing]?

    func receive(_ frame: Frame) -> Outbox

    /// A malformed frame with a readable message id that answers a CALL the other side (or the proxy) made.
    func receiveBrokenAnswer(id: String, from side: Side, description: String) -> Outbox

    /// The earliest time at which ``expire(now:)`` has something to do.
    var nextDeadline: NIODeadline? { get }
    func expire(now: NIODeadline) -> Outbox

    /// Whether a CALL this path sent to the charger with message id `id` still awaits its answer (during a cutover the
    /// charger's answer goes to the path that sent the CALL).
    func awaitsAnswer(fromCharger id: String) -> Bool

    /// CALLs each side sent that are not answered yet, for the admin API.
    var pendingCalls: (fromCharger: Int, fromCSMS: Int) { get }
    /// The version pair translated, nil for pass-through.
    var translation: String? { get }
}

/// `limits.maxPendingCalls` for one session: the refusal and its log line, once per burst and side.
struct PendingCallLimit {
    let maximum: Int
    private var refusing: Set<Side> = []

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// The GenericError answer when `side` already has `count` CALLs awaiting answers, nil when it may send one more.
    mutating func check(
        _ frame: Frame, count: Int, context: SessionContext
    ) -> [Outgoing]? {
        guard count >= maximum else {
            refusing.remove(frame.side)
            return nil
        }
        context.metrics.callRefused(from: frame.side, reason: "max_pending_calls")
        if refusing.insert(frame.side).inserted {
            context.logger.warning(
                "refusing CALLs beyond limits.maxPendingCalls: the \(frame.side == .charger ? "charger" : "CSMS") sends CALLs without waiting for answers; each is answered GenericError",
                metadata: [
                    "from": "\(frame.side)", "messageId": "\(frame.messageId)", "action": "\(frame.action ?? "")",
                    "maxPendingCalls": "\(maximum)",
                ])
        }
        return [
            context.callError(
                to: frame.side, id: frame.messageId, code: .genericError,
                description: "more than \(maximum) CALLs await an answer; OCPP-J allows one at a time")
        ]
    }
}
