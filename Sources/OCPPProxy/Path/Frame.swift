import NIOCore
import OCPP

/// One RPC frame on its way through a session: its head (type, id, action) always, its own bytes as received, and
/// its payload built when the path reads payloads (translation) or a stage asked for it.
struct Frame {
    /// Who sent it.
    let side: Side
    let type: MessageTypeNumber
    let messageId: String
    /// CALL and SEND.
    let action: String?
    /// CALLERROR and CALLRESULTERROR.
    let errorCode: String?
    /// The frame's bytes: forwarded unchanged by the pass-through path.
    let text: ByteBuffer
    /// Where the payload is in `text`, for a reader that needs it.
    let payloadRange: Range<Int>
    /// The whole frame, when it was parsed with its payload.
    let parsed: RPCFrame?
    /// When it arrived: the one reading of the clock a frame costs (pending-call ages and timeouts use it).
    let arrived: NIODeadline

    init(side: Side, envelope: RPCEnvelope, text: ByteBuffer, arrived: NIODeadline) {
        self.side = side
        self.type = envelope.messageType
        self.messageId = envelope.messageId
        self.action = envelope.action
        self.errorCode = envelope.errorCode
        self.text = text
        self.payloadRange = envelope.payloadRange
        self.parsed = nil
        self.arrived = arrived
    }

    init(side: Side, parsed: RPCFrame, text: ByteBuffer, arrived: NIODeadline) {
        self.side = side
        self.type = parsed.messageType
        self.messageId = parsed.messageId
        switch parsed {
        case .call(_, let action, _), .send(_, let action, _):
            self.action = action
            self.errorCode = nil
        case .callError(_, let code, _, _), .callResultError(_, let code, _, _):
            self.action = nil
            self.errorCode = code
        case .callResult:
            self.action = nil
            self.errorCode = nil
        }
        self.text = text
        self.payloadRange = 0..<0
        self.parsed = parsed
        self.arrived = arrived
    }

    /// A frame a stage made in place of one it received (same sender, same arrival), written out as JSON.
    init(side: Side, replacing frame: RPCFrame, allocator: ByteBufferAllocator, arrived: NIODeadline = .now()) {
        self.init(side: side, parsed: frame, text: allocator.buffer(bytes: frame.json.wireBytes), arrived: arrived)
    }

    /// The CALL's payload, the CALLRESULT's, or the CALLERROR's details; nil only if the bytes do not hold one.
    var payload: JSONValue? {
        switch parsed {
        case .call(_, _, let payload)?, .send(_, _, let payload)?, .callResult(_, let payload)?: return payload
        case .callError(_, _, _, let details)?, .callResultError(_, _, _, let details)?: return details
        case nil: return text.withUnsafeReadableBytes { JSONValue(parsing: $0[payloadRange]) }
        }
    }
}

/// A frame a path or a stage sends to one side.
struct Outgoing {
    enum Content {
        /// A received frame's own bytes, forwarded.
        case forwarded(ByteBuffer)
        /// A frame the proxy made (a translation, an answer in a peer's place, a CALLERROR).
        case frame(RPCFrame)
    }

    /// Where it goes.
    var side: Side
    var type: MessageTypeNumber
    var messageId: String
    var content: Content
    /// A CALLERROR relayed from the other peer rather than made by the proxy (counted when it arrived).
    var relayed = false
    /// A forwarded CALL's action (a frame the proxy made carries its own).
    var action: String?
    /// The received frame this one was made from or answers (set by the session), for the audit log.
    var cause: FrameCause?
    /// Held during a CSMS outage and delivered after it.
    var replayed = false

    static func forward(_ frame: Frame) -> Outgoing {
        Outgoing(
            side: frame.side.other, type: frame.type, messageId: frame.messageId, content: .forwarded(frame.text),
            action: frame.action)
    }

    static func frame(_ frame: RPCFrame, to side: Side, relayed: Bool = false) -> Outgoing {
        Outgoing(
            side: side, type: frame.messageType, messageId: frame.messageId, content: .frame(frame), relayed: relayed)
    }

    /// The payload of what is sent (for stages that rewrite answers).
    /// A CALLRESULT's payload (for stages that rewrite answers); nil for any other frame.
    var payload: JSONValue? {
        guard type == .callResult else { return nil }
        switch content {
        case .frame(.callResult(_, let payload)): return payload
        case .frame: return nil
        case .forwarded(let text):
            // `[3, "id", payload]`: the bytes were checked as a CALLRESULT when they arrived.
            guard case .array(let elements)? = JSONValue(parsing: text.readableBytesView), elements.count == 3 else {
                return nil
            }
            return elements[2]
        }
    }
}

extension Outgoing {
    /// The frame as an RPC frame in `version` (the receiver's): what a path made, or forwarded bytes read again.
    func rpc(version: OCPPVersion) -> RPCFrame? {
        switch content {
        case .frame(let rpc): return rpc
        case .forwarded(let text):
            guard case .success(let rpc) = RPCFrame.parse(text.readableBytesView, version: version) else { return nil }
            return rpc
        }
    }
}

/// Which received frame led to an outgoing one: who sent it and its message id.
struct FrameCause {
    var side: Side
    var id: String
    /// A CALL's action, when the session knows it (what a translated frame was made from).
    var action: String? = nil
}

/// What a path answers to a frame: frames to send now, or once the state they depend on is stored.
enum Outbox {
    /// One frame, the common case: no array to allocate for it.
    case one(Outgoing)
    case now([Outgoing])
    /// Sent when the future succeeds (in order with every earlier outbox); a failure ends the session, since the
    /// proxy cannot keep the state translation needs.
    case after(EventLoopFuture<[Outgoing]>)

    static let empty = Outbox.now([])
}
