import NIOCore
import OCPP
import OCPPAuditRedaction
import OCPPRules

/// The whole validated configuration of one proxy process. Built only by ``ConfigurationLoader``,
/// so that every instance has passed validation.
public struct ProxyConfiguration: Sendable {
    public var listeners: [ListenerConfiguration]
    /// Every CSMS chargers may be linked to, in the file's order (`upstreams:`, or `upstream:` alone as the one
    /// named `default`). Never empty, names unique.
    public var upstreams: [UpstreamConfiguration]
    /// Which upstream each charger goes to.
    public var routing: RoutingConfiguration
    public var duplicateIdentity: DuplicateIdentityPolicy
    /// Directory of rule files (used by translation).
    public var rulesDirectory: String?
    /// Path of the embedded SQLite state store (used by translation).
    public var stateSQLitePath: String?
    /// `state.seqNoBlock`: 2.0.1 TransactionEvent seqNos reserved per state write (1: each written once the CSMS
    /// answered its event, no gap after a restart; more: one write per block, a gap of up to a block after a restart).
    public var stateSeqNoBlock: Int = 1
    /// `state.checkpointInterval`: between two WAL checkpoints of the SQLite store (its own connection).
    public var stateCheckpointInterval: TimeAmount = .seconds(5)
    /// nil when the admin endpoint is disabled.
    public var admin: AdminConfiguration?
    public var limits: LimitsConfiguration
    public var keepalive: KeepaliveConfiguration
    public var logging: LoggingConfiguration
    public var shutdown: ShutdownConfiguration
    /// The registered chargers, by identity.
    public var chargers: [ChargerIdentity: ChargerRegistration]
    /// By model name (BootNotification's model).
    public var models: [String: ModelProfile] = [:]
    public var lockout: LockoutConfiguration
    /// SOAP chargers (listeners with `transport: soap`).
    public var soap = SOAPConfiguration()
    /// nil when the audit log is off.
    public var audit: AuditConfiguration?
    /// nil: `upstreamOutage: off`, a charger is closed as soon as its CSMS link drops.
    public var upstreamOutage: UpstreamOutageConfiguration? = UpstreamOutageConfiguration()
    /// nil when overload protection is off (`overload: off`).
    public var overload: OverloadConfiguration? = OverloadConfiguration()
    /// How shadowed chargers' CALLs are copied and compared (`shadow:`).
    public var shadow = ShadowConfiguration()
    /// `eventLoops`: the threads that carry chargers' sessions (each session lives on one); default one per core.
    public var eventLoops = System.coreCount

    /// The largest SOAP body taken, after decompression: `soap.maxRequestBytes`, else `limits.maxFrameBytes`.
    public var soapMaxBodyBytes: Int { soap.maxRequestBytes ?? limits.maxFrameBytes }

    /// The default route's upstream (`routing.default`; with `upstream:`, that one).
    public var upstream: UpstreamConfiguration {
        upstreams.first { $0.name == routing.defaultUpstream } ?? upstreams[0]
    }

    /// The upstream named `name`, if configured.
    public func upstream(named name: String) -> UpstreamConfiguration? {
        upstreams.first { $0.name == name }
    }

    /// Each charger's route, from `routing` and `chargers[].upstream`.
    public var routes: RouteTable { RouteTable(routing, chargers: chargers) }
}

/// How a listener's chargers speak to it.
public enum ListenerTransport: String, CaseIterable, Sendable {
    /// OCPP-J: one WebSocket per charger at `{path}/{identity}`.
    case websocket
    /// OCPP-S: SOAP over HTTP POSTs to `{path}`, the identity in the `chargeBoxIdentity` header.
    case soap
}

/// `soap:`: the settings of every SOAP charger.
public struct SOAPConfiguration: Sendable {
    /// How long a SOAP charger's upstream link stays open without a request from it; nil = three times the heartbeat
    /// interval the CSMS gave at boot (``SOAPConfiguration/idleBeforeBoot`` until then).
    public var idleTimeout: TimeAmount?
    /// The idle timeout of a charger whose heartbeat interval is not known yet (no BootNotification answered).
    public static let idleBeforeBoot = TimeAmount.minutes(15)
    /// The largest request body taken from a charger, after decompression; nil = `limits.maxFrameBytes`.
    public var maxRequestBytes: Int?
    /// PEM bundle of the CAs that sign the certificates of chargers' own `https://` endpoints; nil = the system's.
    public var endpointCA: String?
}

/// One socket chargers connect to.
public struct ListenerConfiguration: Sendable {
    public var name: String
    public var host: String
    public var port: Int
    /// Mount path; chargers connect to `{path}/{identity}`.
    public var path: String
    /// Versions offered to chargers, in the listener's order.
    public var versions: [OCPPVersion]
    /// Version assumed for chargers that send no `Sec-WebSocket-Protocol` (a known vendor quirk).
    public var defaultVersion: OCPPVersion?
    /// OCPP security profile enforced toward chargers: 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS.
    public var securityProfile: Int
    public var tls: ListenerTLSConfiguration?
    public var unknownChargers: UnknownChargerPolicy
    /// A tolerance profile of the rule file (vendor quirks accepted from translated chargers); nil = strict.
    public var tolerance: String? = nil
    public var transport: ListenerTransport = .websocket
    /// SOAP: the listener's own URL, sent as `wsa:From` of the requests the proxy sends chargers; nil = built from
    /// host, port and path.
    public var publicURL: String? = nil
    /// Chargers this listener holds at most (nil: only `limits.maxConnections`).
    public var maxConnections: Int? = nil

    /// The URL a SOAP charger reaches this listener at, as the proxy names itself in its requests.
    public var ownURL: String {
        if let publicURL { return publicURL }
        let scheme = tls == nil ? "http" : "https"
        let shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(shown):\(port)\(path)"
    }
}

/// TLS of a listener (profiles 2 and 3; optional for 0 and 1).
public struct ListenerTLSConfiguration: Sendable, Equatable {
    /// PEM certificate chain, leaf first.
    public var certificate: String
    public var privateKey: String
    /// PEM bundle of the CAs that issue charger certificates (profile 3).
    public var clientCA: String?
    /// Certificate revocation list of the client CA, PEM or DER.
    public var crl: String?
    /// When set, a profile 3 client certificate's O must equal it (OCPP: the CPO name).
    public var cpoName: String?
    /// Also accept TLS 1.0/1.1 with TLS_RSA_WITH_AES_128_CBC_SHA, for 1.6 chargers that cannot do better.
    public var allowLegacyTLS: Bool
}

/// Whether a listener admits identities that are not in the charger list.
public enum UnknownChargerPolicy: String, Sendable, CaseIterable {
    case reject
    /// Only for profile 0 development setups.
    case allow
}

/// A charger the proxy knows, with its credentials toward the proxy and toward the CSMS.
public struct ChargerRegistration: Sendable {
    public var identity: ChargerIdentity
    /// The profile the charger is registered at; it is never admitted on a listener with a lower one.
    public var securityProfile: Int
    /// Its Basic auth password toward the proxy (profiles 1 and 2).
    public var credential: ChargerCredential?
    /// Basic auth password toward the CSMS it is routed to, as the CSMS issued it (`chargers[].upstream.password`).
    public var upstreamPassword: String?
    /// Overrides the listener's tolerance profile for this charger.
    public var tolerance: String? = nil
    /// A SOAP charger's own endpoint (its ChargePointService URL): overrides the `wsa:From` of its requests.
    public var soapEndpoint: String? = nil
    /// Optional OCPP features it has (`capability(name)` in the rules); nil: its model's, else none.
    public var capabilities: Set<String>? = nil
    /// Its 1.6 connectors on 2.0.1 EVSEs; nil: its model's, else one connector per EVSE.
    public var layout: EVSELayout? = nil
    /// Its own message limits (`chargers[].limits.messages`), over the proxy's, action by action.
    public var messageLimits: MessageLimits? = nil
    /// `chargers[].upstream` (or `.upstream.name`): the upstream it goes to, over `routing.rules` and
    /// `routing.default`.
    public var upstream: String? = nil
    /// `chargers[].shadow`: the upstream its CALLs are copied to, over `routing.rules[].shadow`.
    public var shadow: String? = nil
    /// Basic auth passwords toward named upstreams (`chargers[].upstreamPasswords`), over `upstreamPassword`.
    public var upstreamPasswords: [String: String] = [:]

    /// Its Basic auth password toward the upstream `name` when its configured route goes to `routed`: its own for
    /// that upstream, else `upstream.password` for the upstream it is routed to.
    public func upstreamPassword(for name: String, routedTo routed: String) -> String? {
        upstreamPasswords[name] ?? (name == routed ? upstreamPassword : nil)
    }
}

public enum ChargerCredential: Sendable {
    case hash(PasswordHash)
    /// Plaintext from the configuration: development only, warned about at start.
    case plaintext(String)
}

/// Slows down repeated failed authentication from one remote address.
public struct LockoutConfiguration: Sendable {
    /// Failures of one identity from one address that lock that pair out.
    public var maxFailures: Int = 10
    /// Failures from one address over every identity (and failed TLS handshakes) that lock the address out.
    public var maxFailuresPerAddress: Int = 100
    public var window: TimeAmount = .seconds(60)
    public var duration: TimeAmount = .seconds(300)
}

/// What happens when a charger connects with an identity that is already connected.
public enum DuplicateIdentityPolicy: String, Sendable, CaseIterable {
    /// Close the older connection (both links) and admit the new one: a charger that rebooted
    /// reconnects before the proxy noticed its old TCP connection died.
    case replace
    /// Refuse the new connection with HTTP 409 while the first is connected.
    case reject
}

/// One CSMS chargers are linked to.
public struct UpstreamConfiguration: Sendable {
    /// The name of the upstream `upstream:` configures (and of persisted credentials from before named upstreams).
    public static let defaultName = "default"

    /// `upstreams[].name`; `default` for `upstream:`.
    public var name: String = UpstreamConfiguration.defaultName
    /// Where it is configured, for messages: `upstream` or `upstreams[N]`.
    public var key: String = "upstream"
    public var scheme: String
    public var host: String
    public var port: Int
    /// Path prefix; the proxy appends `/{identity}`.
    public var path: String
    public var version: OCPPVersion
    public var connectTimeout: TimeAmount
    /// TLS toward the CSMS; set exactly when the scheme is wss.
    public var tls: UpstreamTLSConfiguration?
    /// What the proxy answers this upstream's CALLs with when it is a charger's shadow.
    public var answerLocally = ShadowAnswers()

    /// The URL text, for logs.
    public var url: String { "\(scheme)://\(host):\(port)\(path)" }
}

/// TLS toward the CSMS.
public struct UpstreamTLSConfiguration: Sendable {
    /// PEM bundle trusted for the CSMS certificate; nil: the system trust store.
    public var ca: String?
    /// Client certificate chain and key for mutual TLS toward the CSMS.
    public var certificate: String?
    public var privateKey: String?
    /// Turns server certificate verification off (logged at every connection).
    public var insecureSkipVerify: Bool
}

public struct AdminConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8181
    /// The bearer token of the admin API (`Authorization: Bearer ...`): required by every `/api/` request when set;
    /// without it, the API is read-only.
    public var token: String? = nil
}

public struct LimitsConfiguration: Sendable {
    /// Largest WebSocket message accepted from either side, after reassembling fragments.
    public var maxFrameBytes: Int = 65536
    /// How long a CALL stays in the pending table without an answer.
    public var callTimeout: TimeAmount = .seconds(60)
    /// CALLs one side of a session may have awaiting an answer (per charger and direction). OCPP-J allows one;
    /// a CALL beyond the bound is answered by the proxy with a GenericError CALLERROR and never forwarded, so a
    /// peer that does not wait for answers cannot make the proxy hold its CALLs without bound.
    public var maxPendingCalls: Int = 16
    /// How long a new connection may take for TLS and its WebSocket upgrade (or its first complete SOAP request)
    /// before it is closed.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Chargers the proxy holds at most; beyond, 503 with Retry-After.
    public var maxConnections: Int = 20000
    /// Handshakes a second for the whole proxy (503 beyond), per remote address and per identity (429 beyond);
    /// nil: no such budget (`off`).
    public var handshakes: RateLimit? = RateLimit(perSecond: 500, burst: 1000)
    public var handshakesPerAddress: RateLimit? = RateLimit(perSecond: 50, burst: 100)
    public var handshakesPerIdentity: RateLimit? = RateLimit(perSecond: 10.0 / 60, burst: 5)
    /// New upstream links a second (nil: `off`); chargers beyond wait in their handshake, spread by `jitter`.
    public var upstreamConnects: RateLimit? = RateLimit(perSecond: 50, burst: 100)
    public var upstreamConnectJitter: TimeAmount = .seconds(2)
    /// CALLs per charger and action (`limits.messages`; `off`: none).
    public var messages: MessageLimits = .defaults
}

public struct KeepaliveConfiguration: Sendable {
    /// Interval between WebSocket pings on each link; zero disables pings.
    public var pingInterval: TimeAmount = .seconds(30)
    /// How long a pong may take before the link counts as dead.
    public var pongTimeout: TimeAmount = .seconds(10)
}

public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

public struct LoggingConfiguration: Sendable {
    public var level: String = "info"
    public var format: LogFormat = .text
}

public struct ShutdownConfiguration: Sendable {
    /// How long a graceful shutdown waits for links to close before it drops them.
    public var gracePeriod: TimeAmount = .seconds(10)
}

/// What the proxy does when the audit writer falls behind (its queue is full) or cannot write (disk full, I/O error).
public enum AuditBackpressure: String, Sendable, CaseIterable {
    /// Every event loop waits for room in the queue: nothing is dropped, every charger of the node slows down.
    case block
    /// Sessions already connected keep flowing (their records queue up to twice the bound, then are dropped and
    /// counted); new chargers are refused with 503 until the writer catches up. The default.
    case refuseNew = "refuse-new"
    /// Records beyond the queue's bound are dropped and counted; a `gap` record says how many when writing resumes.
    case dropAndCount = "drop-and-count"
}

/// `audit:`: the tamper-evident audit log of every frame and security event.
public struct AuditConfiguration: Sendable {
    /// Where the proxy's pseudonym key comes from.
    public enum PseudonymKey: Sendable, Equatable {
        /// `pseudonymKey`: the text itself (usually `${OCPP_PROXY_AUDIT_KEY}`).
        case text(String)
        /// `pseudonymKeyFile`: a file holding the key, made with 32 random bytes (mode 0600) when missing.
        case file(String)
    }

    /// Directory of the segments (`audit-<first seq>.jsonl`) and their indexes.
    public var directory: String
    public var payloads: AuditPayloadMode = .redacted
    public var pseudonymKey: PseudonymKey
    /// The Ed25519 private key checkpoints are signed with (`ocpp-proxy audit keygen`); made when missing.
    public var signingKey: String
    public var checkpointInterval: TimeAmount = .seconds(60)
    public var rotateMaxBytes: Int = 256 << 20
    public var rotateMaxAge: TimeAmount = .hours(1)
    /// Closed segments older than this are deleted; nil keeps every segment.
    public var retention: TimeAmount?
    public var onBackpressure: AuditBackpressure = .refuseNew
    /// Records waiting for the writer before backpressure starts, and the memory they may hold (frames' bytes).
    public var queueRecords: Int = 65536
    public var queueBytes: Int = 64 << 20
    /// `node` of every record: this proxy's name among several (default: the host name).
    public var node: String

    public init(directory: String, pseudonymKey: PseudonymKey, signingKey: String, node: String) {
        self.directory = directory
        self.pseudonymKey = pseudonymKey
        self.signingKey = signingKey
        self.node = node
    }
}

/// What happens to a CALL over its message limit.
public enum MessageLimitAction: String, Sendable, CaseIterable {
    /// Held until a token is available (at most `maxDelay`), then forwarded: a lossless throttle, since a charger
    /// waits for each answer before its next CALL.
    case delay
    /// Answered by the proxy and not forwarded, when the last one forwarded is younger than `minInterval`:
    /// Heartbeat (with the current time) and StatusNotification repeating the last status of its connector.
    case answerLocally
    /// Answered with a CALLERROR (GenericError); never for a transaction message, which is delayed instead.
    case reject
}

/// One rule of `limits.messages` (per action, or `default`).
public struct MessageLimit: Sendable, Equatable {
    public var over: MessageLimitAction
    /// delay and reject.
    public var rate: RateLimit?
    public var maxDelay: TimeAmount = .seconds(30)
    /// answerLocally.
    public var minInterval: TimeAmount?

    public init(over: MessageLimitAction, rate: RateLimit? = nil, minInterval: TimeAmount? = nil) {
        self.over = over
        self.rate = rate
        self.minInterval = minInterval
    }
}

/// `limits.messages`: CALLs a charger sends, per action, with a `default` for the others; and `fromCSMS` for the
/// CALLs toward the charger. Empty: no message limits.
public struct MessageLimits: Sendable, Equatable {
    public var byAction: [String: MessageLimit]
    public var fromCSMS: MessageLimit?

    public init(byAction: [String: MessageLimit] = [:], fromCSMS: MessageLimit? = nil) {
        self.byAction = byAction
        self.fromCSMS = fromCSMS
    }

    /// The defaults: 10 CALLs a second (60 at once) delayed beyond; Heartbeats more often than every 60 s
    /// and repeated StatusNotifications within 10 s answered by the proxy; the CSMS likewise 10 a second.
    public static let defaults = MessageLimits(
        byAction: [
            "default": {
                var limit = MessageLimit(over: .delay, rate: RateLimit(perSecond: 10, burst: 60))
                limit.maxDelay = .seconds(30)
                return limit
            }(),
            "Heartbeat": MessageLimit(over: .answerLocally, minInterval: .seconds(60)),
            "StatusNotification": MessageLimit(over: .answerLocally, minInterval: .seconds(10)),
        ],
        fromCSMS: MessageLimit(over: .delay, rate: RateLimit(perSecond: 10, burst: 60)))

    /// The rule for a charger's CALL of `action`: its own, else `default`.
    func rule(for action: String) -> (key: String, limit: MessageLimit)? {
        if let limit = byAction[action] { return (action, limit) }
        return byAction["default"].map { ("default", $0) }
    }

    /// These rules with `overrides` (a charger's own) put over them, action by action.
    func merging(_ overrides: MessageLimits?) -> MessageLimits {
        guard let overrides else { return self }
        return MessageLimits(
            byAction: byAction.merging(overrides.byAction) { _, own in own },
            fromCSMS: overrides.fromCSMS ?? fromCSMS)
    }
}

/// `overload:`: the proxy sheds load in steps when its own resources run short (Envoy's overload manager). Each
/// monitor's thresholds name the step its reading asks for; the proxy is at the highest step any monitor asks for,
/// and leaves a step only after every reading stayed below its threshold (less a margin) for `recoverAfter`.
public struct OverloadConfiguration: Sendable, Equatable {
    /// How often the monitors are read (and each event loop's lateness measured).
    public var interval: TimeAmount = .seconds(1)
    /// How long the pressure must stay below a step's thresholds before the proxy leaves that step.
    public var recoverAfter: TimeAmount = .seconds(10)
    /// Resident set size of the process, in bytes; nil: `off`.
    public var memory: OverloadThresholds? = OverloadThresholds(
        shedAt: 2 << 30, refuseAt: 3 << 30, stopAt: (3 << 30) + (1 << 29))
    /// The lateness of a task scheduled on each event loop, the worst loop's, in nanoseconds; nil: `off`.
    public var eventLoopLag: OverloadThresholds? = OverloadThresholds(
        shedAt: 50_000_000, refuseAt: 200_000_000, stopAt: 1_000_000_000)
    /// CALLs of every charger of the node forwarded to the CSMS and awaiting its answer; nil: `off`.
    public var pendingCalls: OverloadThresholds? = OverloadThresholds(shedAt: 5000, refuseAt: 10000, stopAt: nil)

    public init() {}
}

/// The readings at which one monitor asks for each step; nil: that monitor never asks for it.
public struct OverloadThresholds: Sendable, Equatable {
    public var shedAt: Int?
    public var refuseAt: Int?
    public var stopAt: Int?

    public init(shedAt: Int? = nil, refuseAt: Int? = nil, stopAt: Int? = nil) {
        self.shedAt = shedAt
        self.refuseAt = refuseAt
        self.stopAt = stopAt
    }
}
