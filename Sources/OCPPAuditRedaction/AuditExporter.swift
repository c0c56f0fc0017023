import Foundation
import OCPP

/// `ocpp-proxy audit export` formats: the records for SIEMs, one line per record.
public enum AuditExportFormat: String, Sendable, CaseIterable {
    /// The records as they are on disk.
    case jsonl
    /// One OCSF event (JSON) per record, mapped by ``AuditExporter/ocsfClasses``.
    case ocsf
    /// RFC 5424 syslog lines with the record as MSG.
    case syslog
}

public enum AuditExporter {
    /// One output line (without "\n") for a record read from `line`.
    public static func line(_ record: JSONValue, text line: String, format: AuditExportFormat) -> String {
        switch format {
        case .jsonl: return line
        case .ocsf: return ocsf(record).jsonText
        case .syslog: return syslog(record, text: line)
        }
    }

    // MARK: Outcome

    /// Whether a record tells of a success, a failure or neither (OCSF status_id 1, 2, 0): an error frame, a frame
    /// the proxy refused, found malformed or answered for a timeout, an admission refusal, a TLS handshake failure,
    /// dropped records and a failed reload are failures; other frames and events that have an outcome succeed.
    enum Outcome {
        case unknown, success, failure

        static let failedEvents: Set<String> = ["refused", "tls_failure", "gap"]
        static let failedDecisions: Set<String> = ["refused", "malformed", "timeout"]
        static let succeededEvents: Set<String> = ["connect", "credential_change", "start", "stop"]

        init(_ record: JSONObject) {
            let event = record["event"]?.stringValue ?? ""
            if case .object(let msg)? = record["msg"],
                let type = msg["type"]?.stringValue, type == "CALLERROR" || type == "CALLRESULTERROR"
            {
                self = .failure
            } else if Self.failedEvents.contains(event) || record["result"]?.stringValue == "failed" {
                self = .failure
            } else if let decision = record["decision"]?.stringValue {
                self = Self.failedDecisions.contains(decision) ? .failure : .success
            } else if Self.succeededEvents.contains(event) || record["result"] != nil {
                self = .success
            } else {
                self = .unknown
            }
        }
    }

    // MARK: RFC 5424

    /// IANA's example private enterprise number (RFC 5612) names the structured-data element `ocpp@32473`.
    public static let structuredDataID = "ocpp@32473"

    /// `<PRI>1 TIMESTAMP HOSTNAME ocpp-proxy - MSGID [ocpp@32473 …] MSG`: facility 13 (log audit), severity 4
    /// (warning) for a failure and 6 (informational) otherwise; HOSTNAME the record's `node`, MSGID its `event`, the
    /// parameters `seq`, `charger`, `session`, `action`, `leg` when present, MSG the record line (JSON, no BOM).
    public static func syslog(_ record: JSONValue, text line: String) -> String {
        guard case .object(let fields) = record else { return line }
        let severity = Outcome(fields) == .failure ? 4 : 6
        let pri = 13 * 8 + severity
        let timestamp = fields["ts"]?.stringValue.flatMap { AuditTime.microseconds($0) != nil ? $0 : nil } ?? "-"
        let hostname = headerField(fields["node"]?.stringValue, maxLength: 255)
        let msgid = headerField(fields["event"]?.stringValue, maxLength: 32)
        var parameters: [(String, String)] = []
        if case .integer(let seq)? = fields["seq"] { parameters.append(("seq", String(seq))) }
        for name in ["charger", "session"] {
            if let value = fields[name]?.stringValue { parameters.append((name, value)) }
        }
        if case .object(let msg)? = fields["msg"], let action = msg["action"]?.stringValue {
            parameters.append(("action", action))
        }
        if let leg = fields["leg"]?.stringValue { parameters.append(("leg", leg)) }
        let sd =
            "[" + structuredDataID
            + parameters.map { " \($0.0)=\"\(escapeParameterValue($0.1))\"" }.joined() + "]"
        return "<\(pri)>1 \(timestamp) \(hostname) ocpp-proxy - \(msgid) \(sd) \(line)"
    }

    /// RFC 5424 §6.3.3: in a PARAM-VALUE, `"`, `\` and `]` are escaped with a backslash.
    public static func escapeParameterValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            if character == "\"" || character == "\\" || character == "]" { out.append("\\") }
            out.unicodeScalars.append(character)
        }
        return out
    }

    /// A header field (§6.2): printable US-ASCII without spaces, at most `maxLength`, `-` (NILVALUE) when empty.
    static func headerField(_ value: String?, maxLength: Int) -> String {
        guard let value, !value.isEmpty else { return "-" }
        let printable = value.unicodeScalars.prefix(maxLength).map {
            $0.value >= 33 && $0.value <= 126 ? Character($0) : "_"
        }
        return String(printable)
    }

    // MARK: OCSF

    /// The OCSF schema version the events follow (`metadata.version`).
    public static let ocsfVersion = "1.3.0"

    /// An OCSF class and activity for an audit event.
    public struct OCSFClass: Sendable {
        /// `class_uid`, `class_name`.
        public var classUID: Int
        public var className: String
        /// `category_uid`, `category_name`.
        public var categoryUID: Int
        public var categoryName: String
        /// `activity_id`, `activity_name` (`type_uid` = class_uid × 100 + activity_id).
        public var activityID: Int
        public var activityName: String
    }

    /// The mapping from a record's `event` to its OCSF class and activity: the one table of the export.
    /// - `frame` → API Activity (6003, category 6 Application Activity), activity 99 Other named after the frame's
    ///   `msg.type` and `leg` (OCPP RPC has no create/read/update/delete); `api.operation` = `msg.action`,
    ///   `api.request.uid` = `msg.id`, `src_endpoint`/`dst_endpoint` from the leg.
    /// - `refused` (an admission refusal), `tls_failure` → Authentication (3002, category 3 Identity & Access
    ///   Management), activity 1 Logon, status Failure, `status_detail` the refusal's rule or the TLS error;
    ///   `user.uid` = charger.
    /// - `credential_change` → Authentication, activity 99 Other ("Credential Change").
    /// - `connect`/`disconnect` → Network Activity (4001, category 4), activity 1 Open / 2 Close.
    /// - `start`/`stop`/`reload` → Application Lifecycle (6002, category 6), activity 3 Start / 4 Stop / 8 Update.
    /// - anything else (`checkpoint`, events of later versions) → Base Event (0, category 0), activity 99 Other.
    public static let ocsfClasses: [String: OCSFClass] = [
        "frame": OCSFClass(6003, "API Activity", 6, "Application Activity", 99, "Other"),
        "refused": OCSFClass(3002, "Authentication", 3, "Identity & Access Management", 1, "Logon"),
        "tls_failure": OCSFClass(3002, "Authentication", 3, "Identity & Access Management", 1, "Logon"),
        "credential_change": OCSFClass(
            3002, "Authentication", 3, "Identity & Access Management", 99, "Credential Change"),
        "connect": OCSFClass(4001, "Network Activity", 4, "Network Activity", 1, "Open"),
        "disconnect": OCSFClass(4001, "Network Activity", 4, "Network Activity", 2, "Close"),
        "start": OCSFClass(6002, "Application Lifecycle", 6, "Application Activity", 3, "Start"),
        "stop": OCSFClass(6002, "Application Lifecycle", 6, "Application Activity", 4, "Stop"),
        "reload": OCSFClass(6002, "Application Lifecycle", 6, "Application Activity", 8, "Update"),
    ]
    static let baseEvent = OCSFClass(0, "Base Event", 0, "Uncategorized", 99, "Other")

    /// Record fields an OCSF attribute carries; the others go to `unmapped` under their own names.
    static let mappedFields: Set<String> = [
        "ts", "seq", "hash", "node", "msg", "session", "charger", "decision", "upstream",
    ]

    /// The OCSF event for a record.
    public static func ocsf(_ record: JSONValue) -> JSONValue {
        guard case .object(let fields) = record else { return .object(["unmapped": record]) }
        let event = fields["event"]?.stringValue ?? ""
        var ocsfClass = ocsfClasses[event] ?? baseEvent
        let msg: JSONObject
        if case .object(let m)? = fields["msg"] { msg = m } else { msg = [:] }
        let leg = fields["leg"]?.stringValue
        if event == "frame" {
            // activity_name: the frame's type and leg, e.g. "CALL charger_to_proxy".
            ocsfClass.activityName = [msg["type"]?.stringValue, leg].compactMap { $0 }.joined(separator: " ")
            if ocsfClass.activityName.isEmpty { ocsfClass.activityName = "Other" }
        } else if ocsfClasses[event] == nil, !event.isEmpty {
            ocsfClass.activityName = event
        }
        let outcome = Outcome(fields)
        var out: JSONObject = [
            // Classification.
            "class_uid": .integer(Int64(ocsfClass.classUID)),
            "class_name": .string(ocsfClass.className),
            "category_uid": .integer(Int64(ocsfClass.categoryUID)),
            "category_name": .string(ocsfClass.categoryName),
            "activity_id": .integer(Int64(ocsfClass.activityID)),
            "activity_name": .string(ocsfClass.activityName),
            "type_uid": .integer(Int64(ocsfClass.classUID * 100 + ocsfClass.activityID)),
            // severity_id 1 Informational, 3 Medium for a failure.
            "severity_id": .integer(outcome == .failure ? 3 : 1),
            "severity": .string(outcome == .failure ? "Medium" : "Informational"),
            // status_id 0 Unknown, 1 Success, 2 Failure; status_detail the decision as written.
            "status_id": .integer(outcome == .failure ? 2 : outcome == .success ? 1 : 0),
            "status": .string(outcome == .failure ? "Failure" : outcome == .success ? "Success" : "Unknown"),
        ]
        if let detail = fields["decision"] ?? fields["rule"] ?? fields["result"] { out["status_detail"] = detail }
        // time: epoch milliseconds; metadata.original_time keeps the record's RFC 3339 text.
        var metadata: JSONObject = [
            "product": .object(["name": .string("ocpp-proxy"), "vendor_name": .string("ocpp-proxy")]),
            "version": .string(ocsfVersion),
            "log_name": .string("audit"),
        ]
        if let ts = fields["ts"]?.stringValue {
            metadata["original_time"] = .string(ts)
            if let micros = AuditTime.microseconds(ts) { out["time"] = .integer(micros / 1000) }
        }
        // metadata.uid: the record's hash; metadata.sequence: its seq.
        if let hash = fields["hash"] { metadata["uid"] = hash }
        if let seq = fields["seq"] { metadata["sequence"] = seq }
        out["metadata"] = .object(metadata)

        let charger = chargerEndpoint(fields)
        let proxy = proxyEndpoint(fields)
        let csms = csmsEndpoint(fields)
        let session = fields["session"].map { JSONValue.object(["uid": $0]) }
        switch ocsfClass.classUID {
        case 6003:
            // api.operation: the OCPP action; api.request.uid: the message id, shared by a call and its answer.
            var api: JSONObject = [:]
            if let action = msg["action"] { api["operation"] = action }
            if let id = msg["id"] { api["request"] = .object(["uid": id]) }
            out["api"] = .object(api)
            // actor: the proxy, in the charger's session.
            var actor: JSONObject = ["app_name": .string("ocpp-proxy")]
            if let session { actor["session"] = session }
            out["actor"] = .object(actor)
            let (source, destination): (JSONValue, JSONValue) =
                switch leg {
                case "charger_to_proxy": (charger, proxy)
                case "proxy_to_csms": (proxy, csms)
                case "csms_to_proxy": (csms, proxy)
                case "proxy_to_charger": (proxy, charger)
                default: (charger, proxy)
                }
            out["src_endpoint"] = source
            out["dst_endpoint"] = destination
        case 3002:
            // user: the charger identity that logs on; src_endpoint the charger, dst_endpoint the proxy.
            if let id = fields["charger"] { out["user"] = .object(["uid": id, "name": id]) }
            if let session { out["session"] = session }
            out["src_endpoint"] = charger
            out["dst_endpoint"] = proxy
        case 4001:
            out["src_endpoint"] = charger
            out["dst_endpoint"] = proxy
            if let session { out["connection_info"] = session }
        case 6002:
            // app: the proxy itself.
            out["app"] = .object(["name": .string("ocpp-proxy")])
            out["device"] = proxy
        default:
            break
        }
        var unmapped = fields.filter { !mappedFields.contains($0.key) }
        if ocsfClass.classUID != 6003, !msg.isEmpty { unmapped["msg"] = .object(msg) }
        if ocsfClass.classUID != 6003, let upstream = fields["upstream"] { unmapped["upstream"] = upstream }
        if !unmapped.isEmpty { out["unmapped"] = .object(unmapped) }
        return .object(out)
    }

    /// The charger's endpoint: `uid` its identity, `ip`/`port` from `remote.address` (`host:port`, `[v6]:port`).
    static func chargerEndpoint(_ fields: JSONObject) -> JSONValue {
        var endpoint: JSONObject = [:]
        if let charger = fields["charger"] { endpoint["uid"] = charger }
        if case .object(let remote)? = fields["remote"], let address = remote["address"]?.stringValue {
            let (host, port) = splitAddress(address)
            endpoint["ip"] = .string(host)
            if let port { endpoint["port"] = .integer(Int64(port)) }
        }
        return .object(endpoint)
    }

    /// The proxy's endpoint: `hostname` its node name.
    static func proxyEndpoint(_ fields: JSONObject) -> JSONValue {
        var endpoint: JSONObject = ["svc_name": .string("ocpp-proxy")]
        if let node = fields["node"] { endpoint["hostname"] = node }
        return .object(endpoint)
    }

    /// The CSMS's endpoint: `name` the upstream as configured.
    static func csmsEndpoint(_ fields: JSONObject) -> JSONValue {
        var endpoint: JSONObject = [:]
        if let upstream = fields["upstream"] { endpoint["name"] = upstream }
        return .object(endpoint)
    }

    static func splitAddress(_ address: String) -> (String, Int?) {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            let host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        let colons = address.filter { $0 == ":" }.count
        if colons == 1, let colon = address.firstIndex(of: ":"), let port = Int(address[address.index(after: colon)...])
        {
            return (String(address[..<colon]), port)
        }
        return (address, nil)
    }
}

extension AuditExporter.OCSFClass {
    init(
        _ classUID: Int, _ className: String, _ categoryUID: Int, _ categoryName: String, _ activityID: Int,
        _ activityName: String
    ) {
        self.init(
            classUID: classUID, className: className, categoryUID: categoryUID, categoryName: categoryName,
            activityID: activityID, activityName: activityName)
    }
}
