import Foundation
import NIOCore
import OCPP
import OCPPAuditRedaction

/// The four legs a frame can travel: a translated exchange shows the original (into the proxy) and the translation
/// (out of it) as two records.
enum AuditLeg: String, Sendable {
    case chargerToProxy = "charger_to_proxy"
    case proxyToCSMS = "proxy_to_csms"
    case csmsToProxy = "csms_to_proxy"
    case proxyToCharger = "proxy_to_charger"

    static func inbound(from side: Side) -> AuditLeg { side == .charger ? .chargerToProxy : .csmsToProxy }
    static func outbound(to side: Side) -> AuditLeg { side == .charger ? .proxyToCharger : .proxyToCSMS }

    /// The peer at the far end of the leg.
    var side: Side { self == .chargerToProxy || self == .proxyToCharger ? .charger : .csms }
    var isInbound: Bool { self == .chargerToProxy || self == .csmsToProxy }
}

/// What every record of one charger connection carries: who, which connection, from where, in which versions.
/// Built once per session; its fields are shared by every record of the session.
final class AuditSessionInfo: Sendable {
    let charger: String
    /// The connection id: unique in the node's log (the process's boot id and the connection's number).
    let session: String
    let chargerVersion: OCPPVersion
    let upstreamVersion: OCPPVersion
    /// `node`, `charger`, `session`, `remote`, `transport`, `upstream`, ready to merge into a record.
    let fields: [String: JSONValue]

    init(
        node: String, charger: String, session: String, chargerVersion: OCPPVersion, upstreamVersion: OCPPVersion,
        remote: AuditRemote, transport: String, upstream: String
    ) {
        self.charger = charger
        self.session = session
        self.chargerVersion = chargerVersion
        self.upstreamVersion = upstreamVersion
        fields = [
            "node": .string(node), "charger": .string(charger), "session": .string(session),
            "remote": remote.json, "transport": .string(transport), "upstream": .string(upstream),
        ]
    }

    func version(of side: Side) -> OCPPVersion { side == .charger ? chargerVersion : upstreamVersion }
}

/// Where a connection came from: address, TLS, client certificate, security profile.
struct AuditRemote: Sendable {
    var address: String
    var tlsVersion: String?
    /// SHA-256 of the client certificate's DER, hex (security profile 3).
    var certificateFingerprint: String?
    var securityProfile: Int
    var listener: String

    var json: JSONValue {
        var fields: [String: JSONValue] = [
            "address": .string(address), "profile": .integer(Int64(securityProfile)), "listener": .string(listener),
        ]
        if let tlsVersion { fields["tls"] = .string(tlsVersion) }
        if let certificateFingerprint { fields["certificateSha256"] = .string(certificateFingerprint) }
        return .object(fields)
    }
}

/// One record on its way to the writer: taken on an event loop with as little work as possible (the frame's bytes
/// are shared, not copied; payloads are parsed and redacted on the writer's thread).
struct AuditEntry: Sendable {
    /// Microseconds since 1970, when the proxy saw it.
    var time: Int64
    var body: Body

    enum Body: Sendable {
        case frame(AuditFrame)
        /// A security or lifecycle event: its name and fields (never a secret).
        case event(String, [String: JSONValue])
        /// Records dropped before this one (written by the writer itself when it can write again).
        case gap(dropped: Int)
    }

    init(time: Int64 = AuditEntry.now(), body: Body) {
        self.time = time
        self.body = body
    }

    /// About the memory it holds while queued: a frame's bytes, or a few hundred bytes of fields.
    var weight: Int {
        switch body {
        case .frame(let frame):
            switch frame.content {
            case .text(let text)?, .malformed(let text, _)?: return 256 + text.readableBytes
            case .parsed, nil: return 512
            }
        case .event, .gap: return 256
        }
    }

    static func event(_ name: String, _ fields: [String: JSONValue], session: AuditSessionInfo? = nil) -> AuditEntry {
        var all = session?.fields ?? [:]
        all.merge(fields) { _, new in new }
        return AuditEntry(body: .event(name, all))
    }

    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) &* 1_000_000 &+ Int64(spec.tv_nsec / 1000)
    }
}

/// One frame on one leg.
struct AuditFrame: Sendable {
    enum Content: Sendable {
        /// Parsed already (translation reads every payload).
        case parsed(RPCFrame)
        /// The frame's bytes, parsed by the writer.
        case text(ByteBuffer)
        /// Bytes that are not a well-formed RPC frame, and why.
        case malformed(ByteBuffer, reason: String)
    }

    var session: AuditSessionInfo
    var leg: AuditLeg
    var type: MessageTypeNumber?
    var messageId: String?
    /// The CALL's action; for an answer, the action of the CALL it answers (when the stage saw that CALL).
    var action: String?
    var errorCode: String?
    /// nil for a forwarded frame: its bytes are those of the incoming record `cause` names.
    var content: Content?
    /// received, forwarded, translated, answered, refused, relayed, timeout, malformed.
    var decision: String
    /// The frame this one was made from or answers for: its leg and message id.
    var cause: (leg: AuditLeg, id: String)?
}

/// Turns entries into record fields on the writer's thread: payloads parsed and redacted.
struct AuditRecordBuilder: Sendable {
    let redactor: AuditRedactor
    let node: String

    func fields(_ entry: AuditEntry) -> [String: JSONValue] {
        switch entry.body {
        case .event(let name, var fields):
            fields["event"] = .string(name)
            if fields["node"] == nil { fields["node"] = .string(node) }
            return fields
        case .gap(let dropped):
            return [
                "event": .string("gap"), "node": .string(node), "dropped": .integer(Int64(dropped)),
                "reason": .string(
                    "the audit writer's queue was full (audit.onBackpressure); these records were not written"),
            ]
        case .frame(let frame):
            return fields(frame)
        }
    }

    private func fields(_ frame: AuditFrame) -> [String: JSONValue] {
        var fields = frame.session.fields
        // One copy of the session's fields with room for the frame's own (else the dictionary grows, rehashing,
        // once or twice per record).
        fields.reserveCapacity(fields.count + 12)
        fields["event"] = .string("frame")
        fields["leg"] = .string(frame.leg.rawValue)
        fields["decision"] = .string(frame.decision)
        let version = frame.session.version(of: frame.leg.side)
        fields["version"] = .string(version.rawValue)
        var msg = [String: JSONValue](minimumCapacity: 5)
        if let type = frame.type { msg["type"] = .string(Self.typeName(type)) }
        if let id = frame.messageId { msg["id"] = .string(id) }
        if let action = frame.action { msg["action"] = .string(action) }
        if let code = frame.errorCode { msg["errorCode"] = .string(code) }
        if let cause = frame.cause {
            fields["cause"] = .object(["leg": .string(cause.leg.rawValue), "id": .string(cause.id)])
        }
        let parsed: RPCFrame?
        switch frame.content {
        case .parsed(let rpc)?:
            parsed = rpc
        case .text(let text)?:
            parsed = try? RPCFrame.parse(text.readableBytesView, version: version).get()
        case nil:
            parsed = nil
        case .malformed(let text, let reason)?:
            parsed = nil
            fields["reason"] = .string(reason)
            fields["bytes"] = .integer(Int64(text.readableBytes))
            // The bytes may hold anything, a token included: kept whole only when payloads are kept in full.
            let raw = String(decoding: text.readableBytesView, as: UTF8.self)
            switch redactor.mode {
            case .full: fields["raw"] = .string(raw)
            case .redacted: fields["raw"] = .string(AuditRedactor.digest(raw))
            case .none: break
            }
        }
        if let parsed {
            let (payload, kind, details) = Self.payload(of: parsed)
            if case .callError(_, _, let description, _) = parsed { msg["description"] = .string(description) }
            if case .callResultError(_, _, let description, _) = parsed { msg["description"] = .string(description) }
            // An error's details have no schema: redacted as if they were the answer's payload.
            let (kept, redacted) = redactor.redact(
                payload: payload, version: version, action: frame.action ?? "", kind: kind)
            if let kept { fields[details ? "details" : "payload"] = kept }
            if !redacted.isEmpty { fields["redacted"] = .array(redacted.map(JSONValue.string)) }
        }
        fields["msg"] = .object(msg)
        return fields
    }

    static func payload(of frame: RPCFrame) -> (JSONValue, AuditRedactor.Kind, details: Bool) {
        switch frame {
        case .call(_, _, let payload), .send(_, _, let payload): return (payload, .request, false)
        case .callResult(_, let payload): return (payload, .response, false)
        case .callError(_, _, _, let details), .callResultError(_, _, _, let details): return (details, .response, true)
        }
    }

    static func typeName(_ type: MessageTypeNumber) -> String {
        switch type {
        case .call: return "CALL"
        case .callResult: return "CALLRESULT"
        case .callError: return "CALLERROR"
        case .callResultError: return "CALLRESULTERROR"
        case .send: return "SEND"
        }
    }
}
