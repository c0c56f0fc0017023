import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import OCPP
import Testing

@testable import OCPPProxy

/// A pass-through session of charger CP001 between two links: no stages, the audit stage alone, or the stages
/// `makeStages` makes.
func passThroughSession(
    version: OCPPVersion, charger: FrameLink, csms: FrameLink, loop: EventLoop, metrics: ProxyMetrics,
    limits: LimitsConfiguration, audit: (log: AuditLog, session: AuditSessionInfo)? = nil,
    stages makeStages: ((SessionContext) -> [FrameStage])? = nil, reconnector: UpstreamReconnector? = nil
) throws -> ChargerSession {
    var context = SessionContext(
        identity: try ChargerIdentity("CP001"), chargerVersion: version, upstreamVersion: version, eventLoop: loop,
        metrics: SessionMetrics(proxy: metrics, transport: charger.transport), limits: limits,
        logger: Logger(label: "test"))
    context.audit = audit
    let stages: [FrameStage] =
        makeStages?(context)
        ?? audit.map { [AuditStage(log: $0.log, session: $0.session, maxPendingCalls: limits.maxPendingCalls)] } ?? []
    return ChargerSession(
        context: context, listenerName: "test", remoteAddress: "127.0.0.1:1", generation: 1, charger: charger,
        upstream: csms, stages: stages, path: PassThroughPath(context: context), reconnector: reconnector)
}

/// A session between two embedded channels on one embedded event loop: frames written into one link
/// come out of the other, or come back as the proxy's answer.
final class SessionFixture {
    let loop = EmbeddedEventLoop()
    let chargerChannel: EmbeddedChannel
    let csmsChannel: EmbeddedChannel
    let chargerLink: WebSocketLink
    let csmsLink: WebSocketLink
    let session: ChargerSession
    let metrics = ProxyMetrics()

    init(
        version: OCPPVersion = .v1_6, callTimeout: TimeAmount = .seconds(60), maxPendingCalls: Int = 16,
        pingInterval: TimeAmount = .zero, audit: (log: AuditLog, session: AuditSessionInfo)? = nil,
        stages: ((SessionContext) -> [FrameStage])? = nil, reconnector: ((EventLoop) -> UpstreamReconnector)? = nil
    ) throws {
        let keepalive = KeepaliveConfiguration(pingInterval: pingInterval, pongTimeout: .seconds(1))
        chargerLink = WebSocketLink(side: .charger, isClient: false, keepalive: keepalive)
        csmsLink = WebSocketLink(side: .csms, isClient: true, keepalive: keepalive)
        chargerChannel = EmbeddedChannel.wired(chargerLink, loop: loop)
        csmsChannel = EmbeddedChannel.wired(csmsLink, loop: loop)
        _ = try chargerChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try csmsChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        session = try passThroughSession(
            version: version, charger: chargerLink, csms: csmsLink, loop: loop, metrics: metrics,
            limits: LimitsConfiguration(
                callTimeout: callTimeout, maxPendingCalls: maxPendingCalls), audit: audit, stages: stages,
            reconnector: reconnector?(loop))
        session.start()
    }

    func fromCharger(_ text: String) throws { try chargerChannel.writeInbound(Self.textFrame(text, masked: true)) }
    func fromCSMS(_ text: String) throws { try csmsChannel.writeInbound(Self.textFrame(text, masked: false)) }

    /// The next text message the proxy sent toward the charger / CSMS, nil when none.
    func toCharger() throws -> String? { try Self.nextText(chargerChannel) }
    func toCSMS() throws -> String? { try Self.nextText(csmsChannel) }

    /// The next close frame the proxy sent on a channel, as (code, reason). Outbound frames hold their
    /// payload unmasked: the encoder masks it on the wire.
    static func nextClose(_ channel: EmbeddedChannel) throws -> (UInt16, String)? {
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            if frame.opcode == .connectionClose {
                var data = frame.data
                let code = data.readInteger(as: UInt16.self) ?? 0
                return (code, data.readString(length: data.readableBytes) ?? "")
            }
        }
        return nil
    }

    /// A frame as the decoder delivers it: a client's payload arrives masked (RFC 6455 §5.3).
    static func textFrame(_ text: String, masked: Bool) -> WebSocketFrame {
        var data = ByteBuffer(string: text)
        let key: WebSocketMaskingKey? = masked ? .random() : nil
        if let key { data.webSocketMask(key) }
        return WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: data)
    }

    static func nextText(_ channel: EmbeddedChannel) throws -> String? {
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            if frame.opcode == .text { return String(buffer: frame.data) }
        }
        return nil
    }
}

@Suite("Charger session pass-through")
struct ChargerSessionTests {
    @Test func forwardsACallAndItsResultUnchanged() throws {
        let fixture = try SessionFixture()
        let call = #"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        try fixture.fromCharger(call)
        #expect(try fixture.toCSMS() == call)
        let result = #"[3,"1",{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":300}]"#
        try fixture.fromCSMS(result)
        #expect(try fixture.toCharger() == result)
        #expect(fixture.session.snapshot().pendingCalls.fromCharger == 0)
    }

    @Test func masksFramesTowardTheCSMSOnly() throws {
        let fixture = try SessionFixture()
        try fixture.fromCharger(#"[2,"1","Heartbeat",{}]"#)
        let toCSMS = try #require(try fixture.csmsChannel.readOutbound(as: WebSocketFrame.self))
        #expect(toCSMS.maskKey != nil)
        try fixture.fromCSMS(#"[2,"9","Reset",{"type":"Soft"}]"#)
        let toCharger = try #require(try fixture.chargerChannel.readOutbound(as: WebSocketFrame.self))
        #expect(toCharger.maskKey == nil)
    }

    @Test func tracksPendingCallsInBothDirections() throws {
        let fixture = try SessionFixture()
        try fixture.fromCharger(#"[2,"c1","Heartbeat",{}]"#)
        try fixture.fromCSMS(#"[2,"s1","GetConfiguration",{}]"#)
        var snapshot = fixture.session.snapshot()
        #expect(snapshot.pendingCalls.fromCharger == 1)
        #expect(snapshot.pendingCalls.fromCSMS == 1)
        try fixture.fromCharger(#"[3,"s1",{"configurationKey":[]}]"#)
        snapshot = fixture.session.snapshot()
        #expect(snapshot.pendingCalls.fromCSMS == 0)
        #expect(snapshot.pendingCalls.fromCharger == 1)
    }

    @Test func answersTextThatIsNotJSONWithFormationViolationIn1_6() throws {
        let fixture = try SessionFixture(version: .v1_6)
        try fixture.fromCharger("garbage")
        let answer = try #require(try fixture.toCharger())
        #expect(answer.hasPrefix(#"[4,"-1","FormationViolation","#))
        #expect(try fixture.toCSMS() == nil)
    }

    @Test func answersTextThatIsNotJSONWithRpcFrameworkErrorIn2_0_1() throws {
        let fixture = try SessionFixture(version: .v2_0_1)
        try fixture.fromCSMS("{not json")
        #expect(try fixture.toCSMS()?.hasPrefix(#"[4,"-1","RpcFrameworkError","#) == true)
        #expect(try fixture.toCharger() == nil)
    }

    @Test func answersAnUnknownMessageTypeWithMessageTypeNotSupportedIn2_0_1() throws {
        let fixture = try SessionFixture(version: .v2_0_1)
        try fixture.fromCharger(#"[7,"x",{}]"#)
        #expect(try fixture.toCharger()?.hasPrefix(#"[4,"x","MessageTypeNotSupported","#) == true)
    }

    @Test func refusesACallWhoseIdIsStillPending() throws {
        let fixture = try SessionFixture(version: .v2_0_1)
        try fixture.fromCharger(#"[2,"dup","Heartbeat",{}]"#)
        #expect(try fixture.toCSMS() != nil)
        try fixture.fromCharger(#"[2,"dup","Heartbeat",{}]"#)
        #expect(try fixture.toCharger()?.hasPrefix(#"[4,"dup","RpcFrameworkError","#) == true)
        #expect(try fixture.toCSMS() == nil)
    }

    @Test func dropsAnAnswerToNoPendingCall() throws {
        let fixture = try SessionFixture()
        try fixture.fromCSMS(#"[3,"nobody-asked",{}]"#)
        #expect(try fixture.toCharger() == nil)
        #expect(try fixture.toCSMS() == nil)
    }

    @Test func turnsAMalformedAnswerIntoAProtocolErrorForTheCaller() throws {
        let fixture = try SessionFixture()
        try fixture.fromCSMS(#"[2,"s1","Reset",{"type":"Hard"}]"#)
        #expect(try fixture.toCharger() != nil)
        try fixture.fromCharger(#"[3,"s1","not an object"]"#)
        #expect(try fixture.toCSMS()?.hasPrefix(#"[4,"s1","ProtocolError","#) == true)
        #expect(try fixture.toCharger() == nil)
        #expect(fixture.session.snapshot().pendingCalls.fromCSMS == 0)
    }

    @Test func closesALinkThatSendsBinaryWith1003AndThePartnerWith1001() throws {
        let fixture = try SessionFixture()
        try fixture.chargerChannel.writeInbound(
            WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: [1, 2, 3])))
        #expect(try SessionFixture.nextClose(fixture.chargerChannel)?.0 == 1003)
        try fixture.chargerChannel.close().wait()
        #expect(try SessionFixture.nextClose(fixture.csmsChannel)?.0 == 1001)
    }

    @Test func endsTheSessionWhenAProtocolErrorArrivesAfterTheLinkWentInactive() throws {
        let fixture = try SessionFixture()
        var ended = false
        fixture.session.closed.whenSuccess { ended = true }
        // An error may reach the link after its channel went inactive (a protocol error answered and closed).
        try fixture.chargerChannel.close().wait()
        fixture.chargerChannel.pipeline.fireErrorCaught(NIOWebSocketError.invalidFrameLength)
        #expect(try SessionFixture.nextClose(fixture.csmsChannel)?.0 == 1001)
        try fixture.csmsChannel.close().wait()
        fixture.loop.run()
        #expect(ended)
    }

    @Test func forwardsTheCloseCodeOfOneSideToTheOther() throws {
        let fixture = try SessionFixture()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        try fixture.csmsChannel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        fixture.loop.run()
        #expect(try SessionFixture.nextClose(fixture.chargerChannel)?.0 == 1000)
    }

    @Test func mapsACloseCodeThatDescribesTheLinkItselfToGoingAway() {
        #expect(ChargerSession.forwardable(.protocolError) == nil)
        #expect(ChargerSession.forwardable(.messageTooLarge) == nil)
        #expect(
            ChargerSession.forwardable(WebSocketErrorCode(codeNumber: 4001)) == WebSocketErrorCode(codeNumber: 4001))
        #expect(ChargerSession.forwardable(.goingAway) == .goingAway)
    }

    @Test func deliversFramesTheCSMSSentBeforeTheSessionStarted() throws {
        let loop = EmbeddedEventLoop()
        let keepalive = KeepaliveConfiguration(pingInterval: .zero, pongTimeout: .seconds(1))
        let charger = WebSocketLink(side: .charger, isClient: false, keepalive: keepalive)
        let csms = WebSocketLink(side: .csms, isClient: true, keepalive: keepalive)
        let chargerChannel = EmbeddedChannel.wired(charger, loop: loop)
        let csmsChannel = EmbeddedChannel.wired(csms, loop: loop)
        try csmsChannel.writeInbound(
            SessionFixture.textFrame(#"[2,"early","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#, masked: false))
        let session = try passThroughSession(
            version: .v1_6, charger: charger, csms: csms, loop: loop, metrics: ProxyMetrics(),
            limits: LimitsConfiguration())
        session.start()
        #expect(
            try SessionFixture.nextText(chargerChannel)
                == #"[2,"early","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#)
    }

    @Test func expiresPendingCallsAfterTheCallTimeout() throws {
        let fixture = try SessionFixture(callTimeout: .milliseconds(1))
        try fixture.fromCharger(#"[2,"old","Heartbeat",{}]"#)
        _ = try fixture.toCSMS()
        fixture.loop.advanceTime(by: .milliseconds(5))
        #expect(fixture.session.snapshot().pendingCalls.fromCharger == 0)
        // The late answer no longer matches anything and is dropped.
        try fixture.fromCharger(#"[2,"new","Heartbeat",{}]"#)
        try fixture.fromCSMS(#"[3,"old",{"currentTime":"2026-01-01T00:00:00Z"}]"#)
        #expect(try fixture.toCharger() == nil)
    }
}

@Suite("Pending call table")
struct PendingCallTableTests {
    @Test func staysBoundedAgainstPeersThatNeverWaitForAnswers() {
        var table = PendingCallTable()
        let start = NIODeadline.now()
        for i in 0..<(PendingCallTable.capacity + 10) {
            table.insert("id\(i)", action: "Heartbeat", now: start + .milliseconds(Int64(i)))
        }
        #expect(table.count == PendingCallTable.capacity)
        #expect(!table.contains("id0"))
        #expect(table.contains("id\(PendingCallTable.capacity + 9)"))
    }
}
