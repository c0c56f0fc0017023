import NIOCore
import OCPP

/// The whole validated configuration of one proxy process. Built only by ``ConfigurationLoader``,
/// so that every instance has passed validation.
public struct ProxyConfiguration: Sendable {
    public var listeners: [ListenerConfiguration]
    public var upstream: UpstreamConfiguration
    public var duplicateIdentity: DuplicateIdentityPolicy
    /// Directory of rule files (used by translation).
    public var rulesDirectory: String?
    /// Path of the embedded SQLite state store (used by translation).
    public var stateSQLitePath: String?
    /// nil when the admin endpoint is disabled.
    public var admin: AdminConfiguration?
    public var limits: LimitsConfiguration
    public var keepalive: KeepaliveConfiguration
    public var logging: LoggingConfiguration
    public var shutdown: ShutdownConfiguration
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
    public var securityProfile: Int
}

/// What happens when a charger connects with an identity that is already connected.
public enum DuplicateIdentityPolicy: String, Sendable, CaseIterable {
    /// Close the older connection (both links) and admit the new one: a charger that rebooted
    /// reconnects before the proxy noticed its old TCP connection died.
    case replace
    /// Refuse the new connection with HTTP 409 while the first is connected.
    case reject
}

/// The CSMS every charger is linked to.
public struct UpstreamConfiguration: Sendable {
    public var scheme: String
    public var host: String
    public var port: Int
    /// Path prefix; the proxy appends `/{identity}`.
    public var path: String
    public var version: OCPPVersion
    public var connectTimeout: TimeAmount

    /// The URL text, for logs.
    public var url: String { "\(scheme)://\(host):\(port)\(path)" }
}

public struct AdminConfiguration: Sendable {
    public var host: String
    public var port: Int
}

public struct LimitsConfiguration: Sendable {
    /// Largest WebSocket message accepted from either side, after reassembling fragments.
    public var maxFrameBytes: Int
    /// How long a CALL stays in the pending table without an answer.
    public var callTimeout: TimeAmount
}

public struct KeepaliveConfiguration: Sendable {
    /// Interval between WebSocket pings on each link; zero disables pings.
    public var pingInterval: TimeAmount
    /// How long a pong may take before the link counts as dead.
    public var pongTimeout: TimeAmount
}

public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

public struct LoggingConfiguration: Sendable {
    public var level: String
    public var format: LogFormat
}

public struct ShutdownConfiguration: Sendable {
    /// How long a graceful shutdown waits for links to close before it drops them.
    public var gracePeriod: TimeAmount
}
