import Foundation
import NIOCore
import NIOEmbedded
import OCPP
import OCPPRules
import Testing

@testable import OCPPProxy

/// A 1.6 charger's translating path toward a 2.0.1 CSMS, with the repository's Rules/, on an embedded event loop.
final class TranslatingFixture {
    static let rules: Result<RuleLibrary, RuleErrors> = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Rules")
        return Result { () throws(RuleErrors) in try RuleDirectory.load(root.path) }
    }()

    let loop = EmbeddedEventLoop()
    let metrics = ProxyMetrics()
    let path: TranslatingPath

    init(store: StateStore? = nil, maxPendingCalls: Int = 16, callTimeout: TimeAmount = .seconds(30)) throws {
        let ruleSet = try #require(try Self.rules.get().ruleSet(charger: .v1_6, csms: .v2_0_1))
        let context = try sessionContext(
            charger: .v1_6, upstream: .v2_0_1, loop: loop, metrics: metrics,
            limits: LimitsConfiguration(
                maxFrameBytes: 65536, callTimeout: callTimeout, maxPendingCalls: maxPendingCalls))
        path = TranslatingPath(
            context: context, ruleSets: [ruleSet], tolerance: .strict, profile: ChargerProfile(),
            store: store ?? MemoryStateStore(eventLoop: loop)
        )
        let started = path.start()
        loop.run()
        try started.wait()
    }

    /// What the path sends for `frame` from `side`, after the state it depends on is stored.
    func receive(_ frame: RPCFrame, from side: Side) throws -> [(Side, RPCFrame)] {
        try sent(path.receive(Frame(side: side, replacing: frame, allocator: ByteBufferAllocator())))
    }

    /// `frame` through the path's admission first, as the session does.
    func admitAndReceive(_ frame: RPCFrame, from side: Side) throws -> [(Side, RPCFrame)] {
        let incoming = Frame(side: side, replacing: frame, allocator: ByteBufferAllocator())
        if let refusal = path.admit(incoming) {
            return refusal.compactMap { out in rpcFrame(out).map { (out.side, $0) } }
        }
        return try sent(path.receive(incoming))
    }

    func sent(_ outbox: Outbox) throws -> [(Side, RPCFrame)] {
        let out: [Outgoing]
        switch outbox {
        case .one(let frame):
            out = [frame]
        case .now(let frames):
            out = frames
        case .after(let later):
            loop.run()
            out = try later.wait()
        }
        return out.compactMap { outgoing in rpcFrame(outgoing).map { (outgoing.side, $0) } }
    }

    static let boot = RPCFrame.call(
        id: "b1", action: "BootNotification",
        payload: json(#"{"chargePointVendor":"ACME","chargePointModel":"Volt","firmwareVersion":"1.2"}"#))
}

@Suite("Translating path: 1.6 charger, 2.0.1 CSMS")
struct TranslatingPathTests {
    @Test func aBootNotificationBecomesA2_0_1CallToTheCSMS() throws {
        let fixture = try TranslatingFixture()
        #expect(fixture.path.translation == "ocpp1.6 → ocpp2.0.1")
        let out = try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger)
        #expect(out.count == 1)
        let (side, frame) = try #require(out.first)
        #expect(side == .csms)
        guard case .call(let id, let action, let payload) = frame else {
            Issue.record("expected a CALL, got \(frame)")
            return
        }
        #expect(id != "b1", "the proxy numbers its own CALLs")
        #expect(action == "BootNotification")
        #expect(
            payload
                == json(
                    #"{"reason":"PowerUp","chargingStation":{"vendorName":"ACME","model":"Volt","firmwareVersion":"1.2"}}"#
                ))
        #expect(fixture.path.pendingCalls.fromCharger == 1)
        #expect(fixture.path.nextDeadline != nil)
    }

    @Test func theCSMSsAnswerBecomesTheChargers1_6CallResult() throws {
        let fixture = try TranslatingFixture()
        let call = try #require(try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger).first?.1)
        let out = try fixture.receive(
            .callResult(
                id: call.messageId,
                payload: json(
                    #"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":300,"statusInfo":{"reasonCode":"ok"}}"#
                )), from: .csms)
        #expect(out.count == 1)
        #expect(out.first?.0 == .charger)
        #expect(
            out.first?.1
                == .callResult(
                    id: "b1",
                    payload: json(#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":300}"#)))
        #expect(fixture.path.pendingCalls.fromCharger == 0)
        #expect(fixture.path.nextDeadline == nil)
    }

    @Test func aCallWithoutAnAnswerExpiresAtItsDeadlineIntoAnInternalErrorForTheCharger() throws {
        let fixture = try TranslatingFixture(callTimeout: .seconds(30))
        fixture.loop.advanceTime(by: .seconds(5))
        _ = try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger)
        let deadline = try #require(fixture.path.nextDeadline)
        #expect(deadline == fixture.loop.now + .seconds(30))
        #expect(try fixture.sent(fixture.path.expire(now: deadline - .nanoseconds(1))).isEmpty)
        let out = try fixture.sent(fixture.path.expire(now: deadline))
        #expect(out.count == 1)
        #expect(out.first?.0 == .charger)
        guard case .callError(let id, let code, _, _)? = out.first?.1 else {
            Issue.record("expected a CALLERROR, got \(out)")
            return
        }
        #expect(id == "b1")
        #expect(code == "InternalError")
        #expect(fixture.path.nextDeadline == nil)
        #expect(fixture.path.pendingCalls.fromCharger == 0)
        let exposition = String(decoding: fixture.metrics.exposition(), as: UTF8.self)
        #expect(
            exposition.contains(#"ocpp_proxy_call_timeouts_total{from="charger",transport="websocket"} 1"#),
            "\(exposition)")
    }

    @Test func aLateAnswerToAnExpiredCallIsDropped() throws {
        let fixture = try TranslatingFixture()
        let call = try #require(try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger).first?.1)
        _ = try fixture.sent(fixture.path.expire(now: try #require(fixture.path.nextDeadline)))
        let late = try fixture.receive(
            .callResult(
                id: call.messageId,
                payload: json(#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":300}"#)),
            from: .csms)
        #expect(late.isEmpty)
    }

    @Test func aSecondCallWaitsForTheFirstsAnswerAndGoesOutWhenItExpires() throws {
        let fixture = try TranslatingFixture()
        _ = try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger)
        // OCPP-J: one CALL at a time per link; the Heartbeat waits behind the BootNotification.
        #expect(
            try fixture.admitAndReceive(.call(id: "h1", action: "Heartbeat", payload: json("{}")), from: .charger)
                .isEmpty)
        #expect(fixture.path.pendingCalls.fromCharger == 2)
        let out = try fixture.sent(fixture.path.expire(now: try #require(fixture.path.nextDeadline)))
        #expect(out.count == 2)
        let toCharger = out.filter { $0.0 == .charger }.map(\.1)
        let toCSMS = out.filter { $0.0 == .csms }.map(\.1)
        guard case .callError("b1", "InternalError", _, _)? = toCharger.first, toCharger.count == 1 else {
            Issue.record("expected the BootNotification's InternalError, got \(out)")
            return
        }
        guard case .call(let id, "Heartbeat", _)? = toCSMS.first, toCSMS.count == 1 else {
            Issue.record("expected the Heartbeat to go out, got \(out)")
            return
        }
        #expect(fixture.path.nextDeadline == fixture.loop.now + .seconds(30))
        #expect(fixture.path.pendingCalls.fromCharger == 1)
        // The Heartbeat's answer reaches the charger under the charger's own id.
        let answer = try fixture.receive(
            .callResult(id: id, payload: json(#"{"currentTime":"2026-01-01T00:00:00Z"}"#)), from: .csms)
        #expect(answer.first?.1 == .callResult(id: "h1", payload: json(#"{"currentTime":"2026-01-01T00:00:00Z"}"#)))
    }

    @Test func aCallBeyondMaxPendingCallsIsRefusedWithGenericError() throws {
        let fixture = try TranslatingFixture(maxPendingCalls: 2)
        _ = try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger)
        _ = try fixture.admitAndReceive(.call(id: "h1", action: "Heartbeat", payload: json("{}")), from: .charger)
        let refused = try fixture.admitAndReceive(
            .call(id: "h2", action: "Heartbeat", payload: json("{}")), from: .charger)
        #expect(refused.count == 1)
        #expect(refused.first?.0 == .charger)
        guard case .callError(let id, let code, _, _)? = refused.first?.1 else {
            Issue.record("expected a CALLERROR, got \(refused)")
            return
        }
        #expect(id == "h2")
        #expect(code == "GenericError")
        #expect(fixture.path.pendingCalls.fromCharger == 2)
        // Answers are never refused.
        #expect(
            fixture.path.admit(
                Frame(
                    side: .charger, replacing: .callResult(id: "x", payload: json("{}")),
                    allocator: ByteBufferAllocator())) == nil)
    }

    @Test func theCSMSsCallsAreLimitedApartFromTheChargers() throws {
        let fixture = try TranslatingFixture(maxPendingCalls: 1)
        _ = try fixture.admitAndReceive(TranslatingFixture.boot, from: .charger)
        let out = try fixture.admitAndReceive(
            .call(
                id: "s1", action: "GetVariables",
                payload: json(
                    #"{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}"#
                )),
            from: .csms)
        #expect(out.first?.0 == .charger)
        guard case .call(_, "GetConfiguration", _)? = out.first?.1 else {
            Issue.record("expected a GetConfiguration to the charger, got \(out)")
            return
        }
    }
}
