import Foundation
import Logging
import NIOCore
import OCPP

/// What the stages and the path of one session share: who the charger is, the versions on both sides, and where
/// metrics and logs go. A value: it holds no reference to the session.
struct SessionContext {
    let identity: ChargerIdentity
    let chargerVersion: OCPPVersion
    let upstreamVersion: OCPPVersion
    let eventLoop: EventLoop
    /// Labelled with the charger's transport.
    let metrics: SessionMetrics
    let limits: LimitsConfiguration
    /// With the charger's identity and version as metadata.
    let logger: Logger
    /// The audit log and what its records of this session carry; nil when the audit log is off.
    var audit: (log: AuditLog, session: AuditSessionInfo)?
    /// Seconds since 1970 for what rules see as now(). Monotonic time (deadlines, timeouts) is the event loop's
    /// `now`, which an EmbeddedEventLoop lets tests advance.
    var wallClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    /// The upstream (by name) its CSMS link goes to: metrics, credentials and outages are that upstream's.
    var upstreamName: String = UpstreamConfiguration.defaultName

    func version(of side: Side) -> OCPPVersion { side == .charger ? chargerVersion : upstreamVersion }

    /// A CALLERROR the proxy sends to `side` in its own name, counted as the proxy's.
    func callError(to side: Side, id: String, code: RPCErrorCode, description: String) -> Outgoing {
        let version = version(of: side)
        metrics.callError(sender: "proxy", code: code.name(in: version), version: version)
        return .frame(.makeCallError(id: id, code: code, description: description, version: version), to: side)
    }
}
