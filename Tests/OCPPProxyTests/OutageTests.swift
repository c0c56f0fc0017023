import NIOCore
import OCPP
import Testing

@testable import OCPPProxy

@Suite("CSMS outages: what the proxy may acknowledge, which closes are outages, the node's view of the CSMS")
struct OutageTests {
    private func decide(
        _ action: String, _ payload: JSONValue = .object([:]), upstream: OCPPVersion = .v1_6,
        translatedFrom chargerAction: String? = nil, type: MessageTypeNumber = .call
    ) -> OutageDecision {
        OutagePolicy.decide(
            type: type, action: action, payload: { payload }, upstream: upstream, translatedFrom: chargerAction,
            now: 1_796_630_400)
    }

    @Test func heartbeatsAndStatusesAreAnsweredWithTheProxysTime() {
        #expect(decide("Heartbeat") == .answerLocally(.object(["currentTime": .string("2026-12-07T08:00:00Z")])))
        #expect(decide("StatusNotification", upstream: .v2_0_1) == .answerLocally(.object([:])))
    }

    @Test func onA16CsmsStopTransactionAndTransactionMeterValuesAreQueuedStartTransactionWaits() {
        #expect(decide("StopTransaction") == .queue(ack: .object([:])))
        #expect(
            decide("MeterValues", .object(["connectorId": .integer(1), "transactionId": .integer(5)]))
                == .queue(ack: .object([:])))
        #expect(decide("MeterValues", .object(["connectorId": .integer(1)])) == .wait)
        #expect(decide("StartTransaction") == .wait)
        #expect(decide("StartTransaction", translatedFrom: "TransactionEvent") == .wait)
        for action in ["Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification"] {
            #expect(decide(action) == .wait, "\(action)")
        }
    }

    @Test func onA201CsmsATransactionEventIsQueuedUnlessItAsksForAnAuthorisation() {
        let plain: JSONValue = .object(["eventType": .string("Updated"), "seqNo": .integer(3)])
        let withToken: JSONValue = .object([
            "eventType": .string("Started"), "idToken": .object(["idToken": .string("T"), "type": .string("Central")]),
        ])
        #expect(decide("TransactionEvent", plain, upstream: .v2_0_1) == .queue(ack: .object([:])))
        #expect(decide("TransactionEvent", withToken, upstream: .v2_0_1) == .wait)
        // Translated from a 1.6 charger's transaction message: the proxy owns the transaction id, and accepts.
        #expect(
            decide("TransactionEvent", withToken, upstream: .v2_1, translatedFrom: "StartTransaction")
                == .queue(ack: .object(["idTokenInfo": .object(["status": .string("Accepted")])])))
        #expect(decide("TransactionEvent", withToken, upstream: .v2_0_1, translatedFrom: "Authorize") == .wait)
        #expect(decide("StopTransaction", upstream: .v2_0_1) == .wait)
        #expect(decide("TransactionEvent", .string("not an object"), upstream: .v2_0_1) == .wait)
    }

    @Test func answersAndSendsAreDropped() {
        for type in [MessageTypeNumber.callResult, .callError, .callResultError, .send] {
            #expect(decide("StopTransaction", type: type) == .drop)
        }
    }

    @Test func aHeldTransactionEventSaysOfflineAndNothingElseChanges() {
        let event = RPCFrame.call(
            id: "1", action: "TransactionEvent", payload: .object(["seqNo": .integer(1), "offline": .bool(false)]))
        #expect(
            OutagePolicy.held(event)
                == .call(
                    id: "1", action: "TransactionEvent",
                    payload: .object(["seqNo": .integer(1), "offline": .bool(true)])
                ))
        let stop = RPCFrame.call(id: "2", action: "StopTransaction", payload: .object(["meterStop": .integer(1)]))
        #expect(OutagePolicy.held(stop) == stop)
    }

    @Test func lostLinksAndServerFailuresAreOutagesTheCSMSsOwnClosesAreNot() {
        for code: UInt16? in [nil, 1001, 1006, 1011, 1012, 1013, 1014] {
            #expect(OutagePolicy.isOutage(peerCode: code, reason: nil), "\(String(describing: code))")
        }
        for code: UInt16 in [1000, 1003, 1005, 1007, 1008, 3000, 4000, 4999] {
            #expect(!OutagePolicy.isOutage(peerCode: code, reason: nil), "\(code)")
        }
        #expect(OutagePolicy.isOutage(peerCode: nil, reason: "keepalive_timeout"))
        #expect(OutagePolicy.isOutage(peerCode: nil, reason: OutagePolicy.deliveryTimeout))
        for reason in ["partner_closed", "replaced", "shutdown", "frame_too_large"] {
            #expect(!OutagePolicy.isOutage(peerCode: 1001, reason: reason), "\(reason)")
        }
    }

    @Test func whileTheCSMSIsDownOneHandshakePerStepProbesItAndTheRestGetASpreadRetryAfter() {
        var configuration = UpstreamOutageConfiguration()
        configuration.initialBackoff = .seconds(2)
        configuration.maxBackoff = .seconds(30)
        let health = UpstreamHealth(configuration, metrics: ProxyMetrics())
        let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
        #expect(health.admit(now: t0) == nil)
        #expect(health.unreachable(now: t0))
        #expect(!health.unreachable(now: t0), "already down")
        #expect(health.admit(now: t0 + .seconds(1), random: 0) == 2)
        #expect(health.admit(now: t0 + .seconds(1), random: 0.999) == 29)
        // The probe: one handshake per initial back-off step tries the CSMS.
        #expect(health.admit(now: t0 + .seconds(2)) == nil)
        #expect(health.admit(now: t0 + .seconds(2), random: 0) == 2)
        #expect(health.reachable())
        #expect(health.admit(now: t0 + .seconds(3)) == nil)
        #expect(!health.reachable(), "already up")
    }
}

/// A charger's session whose CSMS link drops, on an embedded event loop: the CSMS never comes back here.
@Suite("A session during a CSMS outage")
struct OutageSessionTests {
    private func fixture(store: @escaping (EventLoop) -> StateStore) throws -> SessionFixture {
        try SessionFixture(reconnector: { loop in
            var configuration = UpstreamOutageConfiguration()
            configuration.grace = .seconds(10)
            return UpstreamReconnector(
                configuration: configuration, handlesOutages: true,
                connect: { _, loop in loop.makeFailedFuture(UpstreamFailure.refused("test")) },
                pacer: UpstreamPacer(LimitsConfiguration(), connectTimeout: .seconds(5)),
                health: UpstreamHealth(configuration, metrics: ProxyMetrics()), store: store(loop))
        })
    }

    @Test func aStopTransactionIsAcknowledgedOnlyOnceItIsStored() throws {
        let stored = try fixture { MemoryStateStore(eventLoop: $0) }
        stored.csmsChannel.pipeline.fireChannelInactive()
        try stored.fromCharger(
            #"[2,"st","StopTransaction",{"transactionId":1,"meterStop":5,"timestamp":"2026-12-07T08:00:00Z"}]"#)
        #expect(try stored.toCharger() == #"[3,"st",{}]"#)
        #expect(try stored.chargerChannel.isActive, "the charger stays during the grace")

        // A store that cannot write (a full disk): nothing is acknowledged, the CALL waits for the CSMS.
        let full = try fixture { GatedStateStore(eventLoop: $0) }
        full.csmsChannel.pipeline.fireChannelInactive()
        try full.fromCharger(
            #"[2,"st","StopTransaction",{"transactionId":1,"meterStop":5,"timestamp":"2026-12-07T08:00:00Z"}]"#)
        #expect(try full.toCharger() == nil)
        #expect(full.session.snapshot().pendingCalls.fromCharger == 1)
    }

    @Test func whileHeldMessagesAreDeliveredTheCSMSsCallsAreAnsweredAndTheChargersWait() throws {
        let stop = #"[2,"q1","StopTransaction",{"meterStop":5,"timestamp":"2026-12-07T08:00:00Z","transactionId":1}]"#
        let session = try fixture { loop in
            let store = MemoryStateStore(eventLoop: loop)
            if let identity = try? ChargerIdentity("CP001") {
                _ = store.enqueue(QueuedMessage(sequence: 1, text: stop), for: identity, upstream: "default")
            }
            return store
        }
        #expect(session.session.snapshot().upstreamState == "delivering")
        #expect(
            try session.toCSMS().flatMap { JSONValue(parsing: Array($0.utf8)) } == JSONValue(parsing: Array(stop.utf8)))
        // The CSMS's CALL meanwhile reaches the charger, and the charger's answer reaches the CSMS at once.
        try session.fromCSMS(#"[2,"c1","Reset",{"type":"Soft"}]"#)
        #expect(try session.toCharger() == #"[2,"c1","Reset",{"type":"Soft"}]"#)
        try session.fromCharger(#"[3,"c1",{"status":"Accepted"}]"#)
        #expect(try session.toCSMS() == #"[3,"c1",{"status":"Accepted"}]"#)
        // The charger's own CALL waits until the stored message is answered.
        try session.fromCharger(#"[2,"a1","Authorize",{"idTag":"T"}]"#)
        #expect(try session.toCSMS() == nil)
        try session.fromCSMS(#"[3,"q1",{}]"#)
        #expect(try session.toCSMS() == #"[2,"a1","Authorize",{"idTag":"T"}]"#)
        #expect(try session.toCharger() == nil, "the stored message's answer is the proxy's, not the charger's")
        #expect(session.session.snapshot().upstreamState == "connected")
    }

    @Test func pastTheGraceTheChargerIsClosedWith1011() throws {
        let session = try fixture { MemoryStateStore(eventLoop: $0) }
        session.csmsChannel.pipeline.fireChannelInactive()
        #expect(session.session.snapshot().upstreamState == "outage")
        session.loop.advanceTime(by: .seconds(9))
        #expect(try SessionFixture.nextClose(session.chargerChannel) == nil)
        session.loop.advanceTime(by: .seconds(1))
        #expect(try SessionFixture.nextClose(session.chargerChannel)?.0 == 1011)
    }
}
