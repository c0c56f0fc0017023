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
    let fields: JSONObject
    /// The same as a record's members (`"charger":…,"node":…,…`, no braces): written once, copied into every frame
    /// record of the session.
    let members: [UInt8]

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
        var object: [UInt8] = []
        JSONValue.object(fields).write(into: &object)
        members = Array(object.dropFirst().dropLast())
    }

    private init(_ info: AuditSessionInfo, upstream: String, upstreamVersion: OCPPVersion) {
        charger = info.charger
        session = info.session
        chargerVersion = info.chargerVersion
        self.upstreamVersion = upstreamVersion
        var fields = info.fields
        fields["upstream"] = .string(upstream)
        self.fields = fields
        var object: [UInt8] = []
        JSONValue.object(fields).write(into: &object)
        members = Array(object.dropFirst().dropLast())
    }

    /// The same connection after a cutover to another CSMS (`upstream`: its URL).
    func moved(to upstream: String, version: OCPPVersion) -> AuditSessionInfo {
        AuditSessionInfo(self, upstream: upstream, upstreamVersion: version)
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
        var fields: JSONObject = [
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
        case event(String, JSONObject)
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
            case .text(let text, _)?, .malformed(let text, _)?: return 256 + text.readableBytes
            case .parsed, nil: return 512
            }
        case .event, .gap: return 256
        }
    }

    static func event(_ name: String, _ fields: JSONObject, session: AuditSessionInfo? = nil) -> AuditEntry {
        var all = session?.fields ?? [:]
        all.merge(fields)
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
        /// The frame's bytes, read by the writer; with where its payload is in them, when the reader that let the
        /// frame in found it (an envelope read): then a payload with nothing to redact is written as it came.
        case text(ByteBuffer, payload: Range<Int>? = nil)
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

    func fields(_ entry: AuditEntry) -> JSONObject {
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
            // The writer writes a frame's members straight into its line; these are the same, read back.
            var object: [UInt8] = [UInt8(ascii: "{")]
            writeMembers(frame, into: &object)
            object.append(UInt8(ascii: "}"))
            guard case .object(let fields)? = JSONValue(parsing: object) else { return [:] }
            return fields
        }
    }

    // MARK: Frame records, written straight into their line

    /// The members of a frame record (everything but `seq`, `ts`, `prev` and `hash`), written into the record's line
    /// without a dictionary: the writer's path for every frame. A payload of a CALL or CALLRESULT that came as bytes
    /// (pass-through) and holds nothing the redactor could act on (``AuditRedactor/mayRedact(_:)``) is copied as the
    /// peer sent it, whitespace removed; any other is parsed and redacted (an error's details as if they were the
    /// answer's payload: they have no schema).
    func writeMembers(_ frame: AuditFrame, into out: inout [UInt8]) {
        out.append(contentsOf: Self.eventFrame)
        out.append(contentsOf: frame.session.members)
        Self.member("leg", frame.leg.rawValue, into: &out)
        Self.member("decision", frame.decision, into: &out)
        let version = frame.session.version(of: frame.leg.side)
        Self.member("version", version.rawValue, into: &out)
        if let cause = frame.cause {
            out.append(contentsOf: Self.causeLeg)
            JSONValue.writeString(cause.leg.rawValue, into: &out)
            out.append(contentsOf: Self.causeId)
            JSONValue.writeString(cause.id, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        var description: String?
        switch frame.content {
        case nil:
            break
        case .malformed(let text, let reason)?:
            Self.member("reason", reason, into: &out)
            Self.member("bytes", .integer(Int64(text.readableBytes)), into: &out)
            // The bytes may hold anything, a token included: kept whole only when payloads are kept in full.
            let raw = String(decoding: text.readableBytesView, as: UTF8.self)
            switch redactor.mode {
            case .full: Self.member("raw", raw, into: &out)
            case .redacted: Self.member("raw", AuditRedactor.digest(raw), into: &out)
            case .none: break
            }
        case .text(let text, let range)?:
            if let range, frame.type == .call || frame.type == .callResult, range.upperBound <= text.readableBytes {
                if redactor.mode == .none { break }
                let copied = text.withUnsafeReadableBytes { bytes in
                    AuditRedactor.copyPayload(UnsafeRawBufferPointer(rebasing: bytes[range]), into: &out)
                }
                if copied { break }
            }
            if let parsed = try? RPCFrame.parse(text.readableBytesView, version: version).get() {
                description = writePayload(parsed, frame: frame, version: version, into: &out)
            }
        case .parsed(let rpc)?:
            description = writePayload(rpc, frame: frame, version: version, into: &out)
        }
        out.append(contentsOf: Self.msgOpen)
        var first = true
        func msg(_ name: String, _ value: String?) {
            guard let value else { return }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONValue.writeString(name, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONValue.writeString(value, into: &out)
        }
        msg("type", frame.type.map(Self.typeName))
        msg("id", frame.messageId)
        msg("action", frame.action)
        msg("errorCode", frame.errorCode)
        msg("description", description)
        out.append(UInt8(ascii: "}"))
    }

    /// A parsed frame's payload (or error details), redacted, and the list of what was; returns a CALLERROR's
    /// description for `msg`.
    private func writePayload(_ parsed: RPCFrame, frame: AuditFrame, version: OCPPVersion, into out: inout [UInt8])
        -> String?
    {
        let (payload, kind, details) = Self.payload(of: parsed)
        let (kept, redacted) = redactor.redact(
            payload: payload, version: version, action: frame.action ?? "", kind: kind)
        if let kept { Self.member(details ? "details" : "payload", kept, into: &out) }
        if !redacted.isEmpty { Self.member("redacted", .array(redacted.map(JSONValue.string)), into: &out) }
        switch parsed {
        case .callError(_, _, let description, _), .callResultError(_, _, let description, _): return description
        default: return nil
        }
    }

    private static let eventFrame = Array(#""event":"frame","#.utf8)
    private static let causeLeg = Array(#","cause":{"leg":"#.utf8)
    private static let causeId = Array(#","id":"#.utf8)
    private static let msgOpen = Array(#","msg":{"#.utf8)

    private static func member(_ name: String, _ value: String, into out: inout [UInt8]) {
        member(name, .string(value), into: &out)
    }

    /// `,"name":value`.
    private static func member(_ name: String, _ value: JSONValue, into out: inout [UInt8]) {
        out.append(UInt8(ascii: ","))
        JSONValue.writeString(name, into: &out)
        out.append(UInt8(ascii: ":"))
        value.write(into: &out)
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
