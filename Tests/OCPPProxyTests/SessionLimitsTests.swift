import NIOCore
import NIOEmbedded
import OCPP
import Testing

@testable import OCPPProxy

@Suite("Session limits: pending CALLs and backpressure")
struct SessionLimitsTests {
    @Test func aChargerCallBeyondMaxPendingCallsIsAnsweredGenericErrorAndNotForwarded() throws {
        let fixture = try SessionFixture(version: .v1_6, maxPendingCalls: 2)
        try fixture.fromCharger(#"[2,"c1","Heartbeat",{}]"#)
        try fixture.fromCharger(#"[2,"c2","Heartbeat",{}]"#)
        try fixture.fromCharger(#"[2,"c3","Heartbeat",{}]"#)
        #expect(try fixture.toCSMS() == #"[2,"c1","Heartbeat",{}]"#)
        #expect(try fixture.toCSMS() == #"[2,"c2","Heartbeat",{}]"#)
        #expect(try fixture.toCSMS() == nil)
        let refusal = try #require(try fixture.toCharger())
        #expect(refusal.hasPrefix(#"[4,"c3","GenericError","#), "\(refusal)")
        #expect(fixture.session.snapshot().pendingCalls.fromCharger == 2)
        // Once the CSMS answers one, the charger may send the next.
        try fixture.fromCSMS(#"[3,"c1",{"currentTime":"2026-01-01T00:00:00Z"}]"#)
        #expect(try fixture.toCharger() == #"[3,"c1",{"currentTime":"2026-01-01T00:00:00Z"}]"#)
        try fixture.fromCharger(#"[2,"c4","Heartbeat",{}]"#)
        #expect(try fixture.toCSMS() == #"[2,"c4","Heartbeat",{}]"#)
    }

    @Test func aCSMSCallBeyondMaxPendingCallsIsAnsweredGenericErrorIn2_0_1() throws {
        let fixture = try SessionFixture(version: .v2_0_1, maxPendingCalls: 1)
        try fixture.fromCSMS(#"[2,"s1","ClearCache",{}]"#)
        try fixture.fromCSMS(#"[2,"s2","ClearCache",{}]"#)
        #expect(try fixture.toCharger() == #"[2,"s1","ClearCache",{}]"#)
        #expect(try fixture.toCharger() == nil)
        let refusal = try #require(try fixture.toCSMS())
        #expect(refusal.hasPrefix(#"[4,"s2","GenericError","#), "\(refusal)")
    }

    @Test func refusalsAreCountedPerSender() throws {
        let fixture = try SessionFixture(version: .v1_6, maxPendingCalls: 1)
        for i in 0..<5 { try fixture.fromCharger(#"[2,"c\#(i)","Heartbeat",{}]"#) }
        let exposition = String(decoding: fixture.metrics.exposition(), as: UTF8.self)
        #expect(
            exposition.contains(
                #"ocpp_proxy_calls_refused_total{from="charger",reason="max_pending_calls",transport="websocket"} 4"#))
    }

    static func autoRead(_ channel: EmbeddedChannel) -> Bool? {
        channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }?.value as? Bool
    }

    @Test func bothLinksStopReadingWhileEitherCannotWriteAndResumeAfter() throws {
        let fixture = try SessionFixture()
        #expect(Self.autoRead(fixture.chargerChannel) == nil)
        fixture.csmsChannel.isWritable = false
        fixture.csmsChannel.pipeline.fireChannelWritabilityChanged()
        #expect(Self.autoRead(fixture.chargerChannel) == false)
        #expect(Self.autoRead(fixture.csmsChannel) == false)
        fixture.csmsChannel.isWritable = true
        fixture.csmsChannel.pipeline.fireChannelWritabilityChanged()
        #expect(Self.autoRead(fixture.chargerChannel) == true)
        #expect(Self.autoRead(fixture.csmsChannel) == true)
        // A charger that does not read its own answers stops being read too.
        fixture.chargerChannel.isWritable = false
        fixture.chargerChannel.pipeline.fireChannelWritabilityChanged()
        #expect(Self.autoRead(fixture.chargerChannel) == false)
        #expect(Self.autoRead(fixture.csmsChannel) == false)
    }

    /// A link that is not read because its partner cannot write is not closed for a pong it was not allowed to
    /// read: the partner that stopped draining is the one its keepalive closes (1011), and this one follows (1001).
    @Test func aPausedLinkIsNotBlamedForThePartnersSilence() throws {
        let fixture = try SessionFixture(pingInterval: .seconds(1))
        fixture.csmsChannel.isWritable = false
        fixture.csmsChannel.pipeline.fireChannelWritabilityChanged()
        fixture.loop.advanceTime(by: .seconds(5))
        #expect(try SessionFixture.nextClose(fixture.csmsChannel)?.0 == 1011)
        #expect(try SessionFixture.nextClose(fixture.chargerChannel)?.0 == 1001)
    }
}

@Suite("Handshake timeout")
struct HandshakeTimeoutTests {
    @Test func closesAConnectionWhoseHandshakeIsNotDoneInTime() throws {
        let loop = EmbeddedEventLoop()
        var expired = 0
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(HandshakeTimeout(timeout: .seconds(10)) { expired += 1 })
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(expired == 1)
    }

    @Test func leavesAConnectionAloneOnceItsHandshakeIsDone() throws {
        let loop = EmbeddedEventLoop()
        var expired = 0
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(HandshakeTimeout(timeout: .seconds(10)) { expired += 1 })
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(5))
        HandshakeTimeout.done(on: channel)
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        #expect(expired == 0)
        #expect((try? channel.pipeline.syncOperations.handler(type: HandshakeTimeout.self)) == nil)
    }
}
