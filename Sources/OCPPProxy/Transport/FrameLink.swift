import Logging
import NIOCore
import NIOWebSocket
import OCPP

/// Where a link's connection stands.
enum LinkState {
    case open
    /// The proxy sent its close and waits for the peer's (or for the connection to drop).
    case closing
    case closed
}

/// One connection of a session, to the charger or to the CSMS: RPC frames as text go out through it, and what
/// arrives on it goes to its ``LinkEvents``. The WebSocket link is one; a SOAP transport is the next.
protocol FrameLink: AnyObject {
    var side: Side { get }
    /// How the peer is connected: a charger's transport labels its session's metrics.
    var transport: ListenerTransport { get }
    /// Where the proxy reaches the peer by itself, when it does (a SOAP charger's endpoint); for the admin API.
    var endpoint: String? { get }
    var state: LinkState { get }
    /// Whether it takes more outgoing frames without queueing past its high-water mark.
    var isWritable: Bool { get }
    /// The close code the peer sent, if it sent one.
    var peerCloseCode: WebSocketErrorCode? { get }
    /// Why the link ended, when the proxy ended it.
    var closeReason: String? { get }
    /// Who hears what arrives; frames that arrive before it is set are held (bounded) and delivered then.
    var events: LinkEvents? { get set }

    func send(text: ByteBuffer)
    func send(utf8 bytes: [UInt8])
    /// Starts closing; `reason` is for metrics and logs, `text` for the peer.
    func close(code: WebSocketErrorCode, reason: String, text: String)
    /// Reads from the connection only while `on` (backpressure).
    func setReading(_ on: Bool)
}

extension FrameLink {
    var endpoint: String? { nil }
}

/// What a link reports to the session it belongs to: the data flow's forward direction.
protocol LinkEvents: AnyObject {
    var logger: Logger { get }
    func received(text: ByteBuffer, from side: Side)
    func receivedBinary(from side: Side)
    func linkClosed(_ side: Side, peerCode: WebSocketErrorCode?, reason: String?)
    func writabilityChanged()
}
