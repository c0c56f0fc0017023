import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import OCPP
import OCPPSOAP
import Testing

@testable import OCPPProxy

/// A pass-through 1.6 session whose charger is a SOAP link and whose CSMS is a WebSocket link on an embedded channel;
/// the CALLs the link POSTs to the charger are recorded and answered by the test.
final class SOAPSessionFixture {
    let loop = EmbeddedEventLoop()
    let csmsChannel: EmbeddedChannel
    let csmsLink: WebSocketLink
    let link: SOAPChargerLink
    let session: ChargerSession
    /// What the link POSTed: action, payload and endpoint, with the promise that answers it.
    var posted:
        [(action: String, payload: JSONValue, endpoint: String, answer: EventLoopPromise<SOAPChargerLink.CallOutcome>)] =
            []

    init(
        configuredEndpoint: String? = nil, idleTimeout: TimeAmount? = nil, callTimeout: TimeAmount = .seconds(30)
    ) throws {
        csmsLink = WebSocketLink(side: .csms, isClient: true, keepalive: KeepaliveConfiguration(pingInterval: .zero))
        csmsChannel = EmbeddedChannel.wired(csmsLink, loop: loop)
        _ = try csmsChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        let loop = self.loop
        weak var fixture: SOAPSessionFixture?
        link = SOAPChargerLink(
            eventLoop: loop, version: .v1_6, configuredEndpoint: configuredEndpoint, callTimeout: callTimeout,
            idleTimeout: idleTimeout, logger: Logger(label: "test")
        ) { action, payload, _, endpoint, _ in
            let promise = loop.makePromise(of: SOAPChargerLink.CallOutcome.self)
            fixture?.posted.append((action, payload, endpoint, promise))
            return promise.futureResult
        }
        session = try passThroughSession(
            version: .v1_6, charger: link, csms: csmsLink, loop: loop, metrics: ProxyMetrics(),
            limits: LimitsConfiguration(callTimeout: callTimeout))
        fixture = self
        session.start()
    }

    func fromCSMS(_ text: String) throws { try csmsChannel.writeInbound(SessionFixture.textFrame(text, masked: false)) }
    func toCSMS() throws -> String? { try SessionFixture.nextText(csmsChannel) }

    /// The CALL the CSMS received for a charger's request, parsed.
    func callAtCSMS() throws -> (id: String, action: String, payload: JSONValue)? {
        guard let text = try toCSMS(),
            case .success(.call(let id, let action, let payload)) = RPCFrame.parse(
                Array(text.utf8), version: .v1_6)
        else { return nil }
        return (id, action, payload)
    }
}

@Suite("SOAP charger link: a charger's HTTP exchanges as a session's frames")
struct SOAPChargerLinkTests {
    static let bootPayload = JSONValue.object([
        "chargePointVendor": .string("V"), "chargePointModel": .string("M"),
    ])

    @Test func aRequestBecomesACallAndTheCSMSAnswerCompletesIt() throws {
        let fixture = try SOAPSessionFixture()
        let answer = fixture.link.request(action: "BootNotification", payload: Self.bootPayload, from: nil)
        let call = try #require(try fixture.callAtCSMS())
        #expect(call.action == "BootNotification")
        #expect(call.payload == Self.bootPayload)
        try fixture.fromCSMS(
            #"[3,"\#(call.id)",{"status":"Accepted","currentTime":"2026-11-30T00:00:00Z","interval":300}]"#)
        guard case .result(let payload) = try answer.wait() else {
            Issue.record("expected a result")
            return
        }
        #expect(
            payload
                == .object([
                    "status": .string("Accepted"), "currentTime": .string("2026-11-30T00:00:00Z"),
                    "interval": .integer(300),
                ]))
    }

    @Test func aCallErrorFromTheCSMSCompletesTheRequestWithItsCode() throws {
        let fixture = try SOAPSessionFixture()
        let answer = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: nil)
        let call = try #require(try fixture.callAtCSMS())
        try fixture.fromCSMS(#"[4,"\#(call.id)","NotImplemented","no",{}]"#)
        guard case .error(let code, _) = try answer.wait() else {
            Issue.record("expected an error")
            return
        }
        #expect(code == "NotImplemented")
        #expect(SOAPFault(rpcErrorCode: code, description: "").ocppSubcode == .notSupported)
    }

    @Test func closingFailsTheRequestsStillWaitingAndEndsTheSession() throws {
        let fixture = try SOAPSessionFixture()
        let answer = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: nil)
        _ = try fixture.callAtCSMS()
        fixture.link.close(code: .goingAway, reason: "soap_idle", text: "charger idle")
        #expect(throws: SOAPLinkError.self) { try answer.wait() }
        fixture.loop.run()
        // The session closes its CSMS link when the charger's goes.
        #expect(try SessionFixture.nextClose(fixture.csmsChannel)?.0 == 1001)
        #expect(fixture.link.state == .closed)
    }

    @Test func aCSMSCallIsPostedToTheFromAddressOfTheLatestRequest() throws {
        let fixture = try SOAPSessionFixture()
        _ = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: "http://10.0.0.1:8080/cp")
        _ = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: "http://10.0.0.2:8080/cp")
        try fixture.fromCSMS(#"[2,"r1","Reset",{"type":"Soft"}]"#)
        let post = try #require(fixture.posted.first)
        #expect(post.action == "Reset")
        #expect(post.endpoint == "http://10.0.0.2:8080/cp")
        post.answer.succeed(.result(.object(["status": .string("Accepted")])))
        var answer: String?
        while let text = try fixture.toCSMS() { answer = text }
        #expect(answer == #"[3,"r1",{"status":"Accepted"}]"#)
    }

    @Test func theConfiguredEndpointWinsOverFromAndTheAnonymousAddressIsNoEndpoint() throws {
        let configured = try SOAPSessionFixture(configuredEndpoint: "http://192.0.2.9/cp")
        _ = configured.link.request(action: "Heartbeat", payload: .object([:]), from: "http://10.0.0.1/cp")
        #expect(configured.link.endpoint == "http://192.0.2.9/cp")
        let anonymous = try SOAPSessionFixture()
        _ = anonymous.link.request(action: "Heartbeat", payload: .object([:]), from: SOAPChargerLink.anonymous)
        #expect(anonymous.link.endpoint == nil)
    }

    @Test func aCSMSCallToAChargerWithoutEndpointIsAnsweredAtOnceWithACallError() throws {
        let fixture = try SOAPSessionFixture()
        try fixture.fromCSMS(#"[2,"r1","Reset",{"type":"Soft"}]"#)
        #expect(fixture.posted.isEmpty)
        let text = try #require(try fixture.toCSMS())
        guard case .success(.callError(let id, let code, _, _)) = RPCFrame.parse(Array(text.utf8), version: .v1_6)
        else {
            Issue.record("expected a CALLERROR, got \(text)")
            return
        }
        #expect(id == "r1")
        #expect(code == "InternalError")
    }

    @Test func aFailedPostBecomesTheChargersCallError() throws {
        let fixture = try SOAPSessionFixture(configuredEndpoint: "http://192.0.2.9/cp")
        try fixture.fromCSMS(#"[2,"r1","Reset",{"type":"Soft"}]"#)
        try #require(fixture.posted.count == 1)
        fixture.posted[0].answer.succeed(.error(.notSupported, description: "fault"))
        let text = try #require(try fixture.toCSMS())
        #expect(text.hasPrefix(#"[4,"r1","NotSupported""#))
    }

    @Test func anIdleChargerIsClosedAfterThreeHeartbeatIntervalsOnceBooted() throws {
        let fixture = try SOAPSessionFixture()
        let boot = fixture.link.request(action: "BootNotification", payload: Self.bootPayload, from: nil)
        let call = try #require(try fixture.callAtCSMS())
        try fixture.fromCSMS(
            #"[3,"\#(call.id)",{"status":"Accepted","currentTime":"2026-11-30T00:00:00Z","interval":10}]"#)
        _ = try boot.wait()
        fixture.loop.advanceTime(by: .seconds(29))
        #expect(fixture.link.state == .open)
        fixture.loop.advanceTime(by: .seconds(2))
        #expect(fixture.link.state == .closed)
        #expect(fixture.link.closeReason == "soap_idle")
    }

    @Test func aConfiguredIdleTimeoutIsKeptWhateverTheInterval() throws {
        let fixture = try SOAPSessionFixture(idleTimeout: .seconds(5))
        _ = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: nil)
        fixture.loop.advanceTime(by: .seconds(4))
        #expect(fixture.link.state == .open)
        // A request restarts the idle time.
        _ = fixture.link.request(action: "Heartbeat", payload: .object([:]), from: nil)
        fixture.loop.advanceTime(by: .seconds(4))
        #expect(fixture.link.state == .open)
        fixture.loop.advanceTime(by: .seconds(2))
        #expect(fixture.link.state == .closed)
    }

    @Test func aRequestToAClosedLinkFailsAtOnce() throws {
        let fixture = try SOAPSessionFixture()
        fixture.link.close(code: .goingAway, reason: "soap_idle", text: "idle")
        #expect(throws: SOAPLinkError.self) {
            try fixture.link.request(action: "Heartbeat", payload: .object([:]), from: nil).wait()
        }
    }
}
