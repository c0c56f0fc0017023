import NIOCore
import NIOWebSocket
import OCPP

/// What a stage decides about a frame.
enum StageVerdict {
    /// On to the next stage and the path, as it is (no copy of the frame to make).
    case pass
    /// On to the next stage and the path, rewritten.
    case rewrite(Frame)
    /// Answered in the proxy's name: these go out instead, and the frame goes no further.
    case answer([Outgoing])
    /// Decided later (after an asynchronous step such as storing a credential); the session waits for it on the
    /// session's event loop, while other frames go on.
    case hold(EventLoopFuture<StageVerdict>)
}

/// One step of a session's pipeline, between the transport and the path: it sees every frame from either side
/// before the path does, and every frame the path sends before it goes out. Credential handling is one; audit,
/// limits and routing will be others. A stage keeps its own state and never reaches into the session.
protocol FrameStage: AnyObject {
    /// For logs and the README's list.
    var name: String { get }

    /// A frame a peer sent, on its way to the path.
    func inbound(_ frame: Frame) -> StageVerdict

    /// Whether ``outbound(_:)`` would look at frames now; frames go out without the call when not.
    var watchesOutbound: Bool { get }

    /// A frame on its way to a peer (from the path or an earlier stage's answer); returns what goes out instead.
    func outbound(_ frame: Outgoing) -> Outgoing

    /// Whether the stage observes frames as they arrive (``arrived(_:)``, ``malformed(_:from:reason:)``) and the
    /// session's connect and link closes: a tap that records, never decides.
    var watchesArrivals: Bool { get }

    /// Every well-formed frame as it is read, before the path's checks and any stage's decision.
    func arrived(_ frame: Frame)

    /// Bytes that are not a well-formed RPC frame (refused), or a binary frame; with the message id when it could
    /// be read (the proxy's CALLERROR answers that id).
    func malformed(_ text: ByteBuffer, from side: Side, reason: String, messageId: String?)

    /// The session started: both links are open.
    func connected()

    /// One of the session's links closed: the code the peer sent (nil: none, the connection was lost) and why.
    func linkClosed(_ side: Side, code: WebSocketErrorCode?, reason: String)

    /// Something else that happened to the session (a CSMS outage: started, restored, expired), for the record.
    func sessionEvent(_ name: String, _ fields: JSONObject)

    /// The charger was cut over to another upstream: from now on the CSMS side is the one `context` names.
    func upstreamChanged(_ context: SessionContext)
}

extension FrameStage {
    var watchesOutbound: Bool { false }
    func outbound(_ frame: Outgoing) -> Outgoing { frame }
    var watchesArrivals: Bool { false }
    func arrived(_ frame: Frame) {}
    func malformed(_ text: ByteBuffer, from side: Side, reason: String, messageId: String?) {}
    func connected() {}
    func linkClosed(_ side: Side, code: WebSocketErrorCode?, reason: String) {}
    func sessionEvent(_ name: String, _ fields: JSONObject) {}
    func upstreamChanged(_ context: SessionContext) {}
}
