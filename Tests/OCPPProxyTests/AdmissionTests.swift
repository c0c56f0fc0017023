import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import OCPP
import Testing

@testable import OCPPProxy

/// One charger connection's admission on an embedded channel: every refusal it decides comes before the upstream
/// link is opened, so no network is needed.
final class AdmissionFixture {
    /// A profile 0 listener serving 1.6 and 2.0.1 in front of a 1.6 CSMS, without rules (nothing is translated).
    static let profile0 = """
        listeners:
          - name: chargers
            port: 8180
            path: /ocpp
            versions: [ocpp1.6, ocpp2.0.1]
        upstream:
          url: ws://127.0.0.1:9/csms
          version: ocpp1.6
        duplicateIdentity: reject
        """

    /// A profile 1 listener (Basic auth) that locks an address out after two failures.
    static let profile1 = """
        listeners:
          - name: chargers
            port: 8180
            path: /ocpp
            versions: [ocpp1.6]
            securityProfile: 1
        upstream:
          url: ws://127.0.0.1:9/csms
          version: ocpp1.6
        chargers:
          - identity: CP1
            securityProfile: 1
            password: "0123456789abcdef"
        lockout:
          maxFailures: 2
          window: 60s
          duration: 300s
        """

    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let proxy: ProxyContext
    let upgrade: ChargerUpgrade
    private(set) var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")

    init(_ yaml: String = AdmissionFixture.profile0) throws {
        let configuration = try ConfigurationLoader(environment: [:]).load(
            yaml: yaml, file: "proxy.yaml", baseDirectory: "/etc/ocpp-proxy")
        let store = MemoryStateStore(eventLoop: loop)
        proxy = ProxyContext(
            configuration: configuration, metrics: ProxyMetrics(), logger: Logger(label: "test"), listenerTLS: [:],
            upstreamCredentials: UpstreamCredentials(configured: configuration.chargers, persisted: [:], store: store),
            stateStore: store)
        channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 50000)).wait()
        upgrade = ChargerUpgrade(listener: configuration.listeners[0], runtime: proxy, channel: channel)
    }

    /// The WebSocket upgrade request for `uri`: nil when refused, else the headers for the 101.
    func decide(_ uri: String, subprotocol: String? = nil, extra: [(String, String)] = []) throws -> HTTPHeaders? {
        var headers = HTTPHeaders([
            ("Host", "proxy.local"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ])
        if let subprotocol { headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        headers.add(contentsOf: extra)
        request = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)
        let decided = upgrade.shouldUpgrade(channel: channel, request: request)
        loop.run()
        return try decided.wait()
    }

    /// What the charger is answered when its upgrade was refused.
    var refusal: (status: HTTPResponseStatus, reason: String, headers: [(String, String)]) {
        let (status, reason, headers) = upgrade.refusal(for: request)
        return (status, reason, headers)
    }

    func rejections(_ reason: String) -> Bool {
        String(decoding: proxy.metrics.exposition(), as: UTF8.self).contains(
            #"ocpp_proxy_admissions_rejected_total{listener="chargers",reason="\#(reason)",transport="websocket"} 1"#)
    }
}

@Suite("Admission: refusals before the upstream link")
struct AdmissionTests {
    @Test func aPathOutsideTheMountPathIsRefused404() throws {
        let fixture = try AdmissionFixture()
        #expect(try fixture.decide("/other/CP1", subprotocol: "ocpp1.6") == nil)
        #expect(fixture.refusal.status == .notFound)
        #expect(fixture.refusal.reason.contains("expected /ocpp/{identity}"))
        #expect(fixture.rejections("path"))
    }

    @Test func aPathWithMoreThanOneSegmentIsRefused404() throws {
        let fixture = try AdmissionFixture()
        #expect(try fixture.decide("/ocpp/site/CP1", subprotocol: "ocpp1.6") == nil)
        #expect(fixture.refusal.status == .notFound)
    }

    @Test(arguments: [
        ("/ocpp/..", "dot-segment"), ("/ocpp/%2E%2E", "dot-segment"), ("/ocpp/.", "dot-segment"),
        ("/ocpp/CP%ZZ", "percent-encoded"), ("/ocpp/CP%0A1", "control character"), ("/ocpp/CP%3A1", "contains ':'"),
        ("/ocpp/", "empty"),
    ])
    func aBadIdentityIsRefused400(uri: String, why: String) throws {
        let fixture = try AdmissionFixture()
        #expect(try fixture.decide(uri, subprotocol: "ocpp1.6") == nil)
        #expect(fixture.refusal.status == .badRequest)
        #expect(fixture.refusal.reason.contains(why), "\(fixture.refusal.reason)")
        #expect(fixture.rejections("identity"))
    }

    @Test func noSubprotocolAndNoDefaultVersionIsRefused400() throws {
        let fixture = try AdmissionFixture()
        #expect(try fixture.decide("/ocpp/CP1") == nil)
        #expect(fixture.refusal.status == .badRequest)
        #expect(fixture.refusal.reason.contains("no Sec-WebSocket-Protocol"))
        #expect(fixture.rejections("subprotocol"))
    }

    @Test func aVersionTheUpstreamCannotServeIsRefused400() throws {
        let fixture = try AdmissionFixture()
        #expect(try fixture.decide("/ocpp/CP1", subprotocol: "ocpp2.0.1") == nil)
        #expect(fixture.refusal.status == .badRequest)
        #expect(fixture.refusal.reason.contains("ocpp2.0.1 chargers cannot be served"), "\(fixture.refusal.reason)")
        #expect(fixture.rejections("version"))
    }

    @Test func aChargerWithoutSubprotocolGetsTheDefaultVersionAndItsChecks() throws {
        let yaml = AdmissionFixture.profile0.replacingOccurrences(
            of: "versions: [ocpp1.6, ocpp2.0.1]", with: "versions: [ocpp1.6, ocpp2.0.1]\n    defaultVersion: ocpp2.0.1")
        let fixture = try AdmissionFixture(yaml)
        #expect(fixture.proxy.configuration.listeners[0].defaultVersion == .v2_0_1)
        // Defaulted to 2.0.1, which this 1.6 upstream cannot serve: refused for the version, not the subprotocol.
        #expect(try fixture.decide("/ocpp/CP1") == nil)
        #expect(fixture.refusal.status == .badRequest)
        #expect(fixture.rejections("version"))
    }

    @Test func aDuplicateIdentityIsRefused409UnderPolicyReject() throws {
        let fixture = try AdmissionFixture()
        #expect(fixture.proxy.configuration.duplicateIdentity == .reject)
        // CP1 is connected (or connecting) through another connection.
        guard case .granted = fixture.proxy.registry.claim(try ChargerIdentity("CP1"), policy: .reject) else {
            Issue.record("the first claim must be granted")
            return
        }
        #expect(try fixture.decide("/ocpp/CP1", subprotocol: "ocpp1.6") == nil)
        #expect(fixture.refusal.status == .conflict)
        #expect(fixture.refusal.reason.contains("CP1 is already connected"))
        #expect(fixture.rejections("duplicate"))
    }

    @Test func offeringOnlyUnservedSubprotocolsUpgradesWithoutOneAndClosesWith1002() throws {
        let fixture = try AdmissionFixture()
        let headers = try #require(try fixture.decide("/ocpp/CP1", subprotocol: "ocpp9.9, ocpp1.5"))
        #expect(headers["Sec-WebSocket-Protocol"].isEmpty)
        guard case .upgradeWithoutSubprotocol(let offered)? = fixture.upgrade.decision else {
            Issue.record("expected upgradeWithoutSubprotocol, got \(String(describing: fixture.upgrade.decision))")
            return
        }
        #expect(offered == ["ocpp9.9", "ocpp1.5"])
        try fixture.upgrade.upgraded(channel: fixture.channel).wait()
        #expect(try SessionFixture.nextClose(fixture.channel)?.0 == 1002)
        #expect(!fixture.channel.isActive)
    }

    @Test func aRequestTheUpgraderNeverAskedAboutIsAnswered426WithoutAnUpgradeHeader() throws {
        let fixture = try AdmissionFixture()
        let plain = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ocpp/CP1")
        let (status, _, headers) = fixture.upgrade.refusal(for: plain)
        #expect(status == .upgradeRequired)
        #expect(headers.contains { $0 == ("Upgrade", "websocket") })
        #expect(fixture.rejections("not_websocket"))
    }

    @Test func anIncompleteUpgradeRequestIsAnswered400() throws {
        let fixture = try AdmissionFixture()
        let incomplete = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/ocpp/CP1", headers: HTTPHeaders([("Upgrade", "websocket")]))
        #expect(fixture.upgrade.refusal(for: incomplete).0 == .badRequest)
    }

    @Test func missingBasicAuthOnProfile1IsRefused401WithAChallenge() throws {
        let fixture = try AdmissionFixture(AdmissionFixture.profile1)
        #expect(try fixture.decide("/ocpp/CP1", subprotocol: "ocpp1.6") == nil)
        #expect(fixture.refusal.status == .unauthorized)
        #expect(fixture.refusal.reason == "authentication failed")
        #expect(fixture.refusal.headers.contains { $0.0 == "WWW-Authenticate" && $0.1.hasPrefix("Basic ") })
        #expect(fixture.rejections("auth_no_credentials"))
    }

    @Test func anUnknownIdentityIsAnsweredExactlyLikeAMissingCredential() throws {
        let unknown = try AdmissionFixture(AdmissionFixture.profile1)
        // "CP9:0123456789abcdef"
        _ = try unknown.decide(
            "/ocpp/CP9", subprotocol: "ocpp1.6", extra: [("Authorization", "Basic Q1A5OjAxMjM0NTY3ODlhYmNkZWY=")])
        let missing = try AdmissionFixture(AdmissionFixture.profile1)
        _ = try missing.decide("/ocpp/CP9", subprotocol: "ocpp1.6")
        #expect(unknown.refusal.status == .unauthorized)
        #expect(unknown.refusal.status == missing.refusal.status)
        #expect(unknown.refusal.reason == missing.refusal.reason)
        #expect(unknown.rejections("auth_unknown_charger"))
    }

    @Test func repeatedFailuresLockTheIdentityAtItsAddressOutWith429AndRetryAfter() throws {
        let fixture = try AdmissionFixture(AdmissionFixture.profile1)
        _ = try fixture.decide("/ocpp/CP1", subprotocol: "ocpp1.6")
        #expect(fixture.proxy.lockout.remaining(address: "192.0.2.7", identity: "CP1") == nil)
        _ = try fixture.decide("/ocpp/CP1", subprotocol: "ocpp1.6")
        #expect(fixture.proxy.lockout.remaining(address: "192.0.2.7", identity: "CP1") != nil)
        // Even a correct password is not checked while the identity is locked out at this address.
        // "CP1:0123456789abcdef"
        #expect(
            try fixture.decide(
                "/ocpp/CP1", subprotocol: "ocpp1.6", extra: [("Authorization", "Basic Q1AxOjAxMjM0NTY3ODlhYmNkZWY=")])
                == nil)
        #expect(fixture.refusal.status == .tooManyRequests)
        #expect(fixture.refusal.headers.contains { $0 == ("Retry-After", "300") }, "\(fixture.refusal.headers)")
        #expect(fixture.refusal.reason.contains("locked out"))
        #expect(fixture.rejections("auth_locked_out"))
    }
}
