import Foundation
import Logging
import NIOCore
import NIOPosix
import OCPP
import Testing

@testable import OCPPProxy

@Suite("What a cutover needs to know of a charger")
struct CutoverStateTests {
    func call(_ id: String, _ action: String, _ payload: String) -> Frame {
        let frame = RPCFrame.call(id: id, action: action, payload: JSONValue(parsing: Array(payload.utf8)) ?? .null)
        return Frame(side: .charger, parsed: frame, text: ByteBuffer(bytes: frame.json.wireBytes), arrived: .now())
    }

    /// The same frame as pass-through reads it: its envelope only.
    func envelope(_ id: String, _ action: String, _ payload: String) -> Frame {
        let text = ByteBuffer(string: #"[2,"\#(id)","\#(action)",\#(payload)]"#)
        let envelope = try! RPCEnvelope.parse(text.readableBytesView, version: .v2_0_1).get()
        return Frame(side: .charger, envelope: envelope, text: text, arrived: .now())
    }

    func answer(_ id: String, _ payload: String) -> Outgoing {
        .frame(.callResult(id: id, payload: JSONValue(parsing: Array(payload.utf8)) ?? .null), to: .charger)
    }

    @Test func a16TransactionIsOpenFromItsStartAnswerToItsStop() {
        var state = CutoverState()
        state.track(
            call("s1", "StartTransaction", #"{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"x"}"#),
            version: .v1_6)
        #expect(state.open.isEmpty)
        state.answered(answer("other", #"{"transactionId":9}"#), version: .v1_6, byDraining: false)
        #expect(state.open.isEmpty)
        state.answered(
            answer("s1", #"{"transactionId":4242,"idTagInfo":{"status":"Accepted"}}"#), version: .v1_6,
            byDraining: false)
        #expect(state.open == ["4242"])
        let meter = call("m1", "MeterValues", #"{"connectorId":1,"transactionId":4242,"meterValue":[]}"#)
        #expect(CutoverState.transactionId(of: meter, version: .v1_6) == "4242")
        state.track(meter, version: .v1_6)
        #expect(state.open == ["4242"])
        state.track(
            call("t1", "StopTransaction", #"{"transactionId":4242,"meterStop":5,"timestamp":"x"}"#), version: .v1_6)
        #expect(state.open.isEmpty)
    }

    @Test func a201TransactionIsOpenFromStartedToEndedAndUpdatedEventsChangeNothing() {
        var state = CutoverState()
        let started =
            #"{"eventType":"Started","timestamp":"x","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"tx-1"}}"#
        state.track(envelope("e1", "TransactionEvent", started), version: .v2_0_1)
        #expect(state.open == ["tx-1"])
        let updated =
            #"{"eventType":"Updated","timestamp":"x","triggerReason":"MeterValuePeriodic","seqNo":1,"transactionInfo":{"transactionId":"tx-1"}}"#
        state.track(envelope("e2", "TransactionEvent", updated), version: .v2_0_1)
        #expect(state.open == ["tx-1"])
        let ended =
            #"{"eventType":"Ended","timestamp":"x","triggerReason":"StopAuthorized","seqNo":2,"transactionInfo":{"transactionId":"tx-1"}}"#
        #expect(CutoverState.transactionId(of: envelope("e3", "TransactionEvent", ended), version: .v2_0_1) == "tx-1")
        state.track(envelope("e3", "TransactionEvent", ended), version: .v2_0_1)
        #expect(state.open.isEmpty)
    }

    @Test func theLastBootAndTheLatestStatusPerConnectorAreKeptInOrder() {
        var state = CutoverState()
        state.track(
            call("b1", "BootNotification", #"{"chargePointVendor":"A","chargePointModel":"1"}"#), version: .v1_6)
        state.track(
            call("b2", "BootNotification", #"{"chargePointVendor":"A","chargePointModel":"2"}"#), version: .v1_6)
        for (id, connector, status) in [("s1", 1, "Available"), ("s2", 2, "Available"), ("s3", 1, "Charging")] {
            state.track(
                call(
                    id, "StatusNotification",
                    #"{"connectorId":\#(connector),"errorCode":"NoError","status":"\#(status)"}"#),
                version: .v1_6)
        }
        #expect(state.boot?.messageId == "b2")
        #expect(state.statuses(version: .v1_6).map(\.messageId) == ["s3", "s2"])
    }

    @Test func manyStatusesAreSettledOnTheWayAndStillTheLatestPerConnector() {
        // Statuses are read in batches (every 32) and at a cutover: both give the same answer.
        var state = CutoverState()
        var latest: [Int: String] = [:]
        for index in 0..<100 {
            let connector = [3, 1, 2, 1, 0][index % 5]
            latest[connector] = "s\(index)"
            state.track(
                envelope(
                    "s\(index)", "StatusNotification",
                    #"{"connectorId":\#(connector),"errorCode":"NoError","status":"Available"}"#),
                version: .v1_6)
        }
        #expect(state.statuses(version: .v1_6).map(\.messageId) == [3, 1, 2, 0].map { latest[$0]! })
        // A 2.0.1 station's connectors are told apart by EVSE and connector.
        var station = CutoverState()
        for (id, evse, connector) in [("a", 1, 1), ("b", 2, 1), ("c", 1, 1), ("d", 1, 2)] {
            station.track(
                call(
                    id, "StatusNotification",
                    #"{"timestamp":"x","connectorStatus":"Available","evseId":\#(evse),"connectorId":\#(connector)}"#),
                version: .v2_0_1)
        }
        #expect(station.statuses(version: .v2_0_1).map(\.messageId) == ["c", "b", "d"])
    }

    @Test func malformedPayloadsAreNoTransactions() {
        #expect(
            CutoverState.transactionId(of: call("m", "MeterValues", #"{"transactionId":"text"}"#), version: .v1_6)
                == nil)
        #expect(CutoverState.transactionId(of: call("m", "Heartbeat", #"{}"#), version: .v1_6) == nil)
        #expect(
            CutoverState.transactionId(
                of: call("m", "TransactionEvent", #"{"transactionInfo":{"transactionId":7}}"#), version: .v2_0_1) == nil
        )
    }
}

@Suite("Routes set through the admin API")
struct LiveRoutesTests {
    @Test func anOverrideWinsKeepsTheShadowAndCanBeRemoved() throws {
        let routing = RoutingConfiguration(
            defaultUpstream: "old",
            rules: [RouteRule(match: try IdentityPattern("S7-*"), upstream: "old", shadow: "new")])
        let routes = LiveRoutes(RouteTable(routing, chargers: [:]), overrides: ["S7-1": "twin"])
        let s71 = try ChargerIdentity("S7-1")
        #expect(routes.route(for: s71) == Route(upstream: "twin", reason: .api, shadow: "new"))
        routes.setOverride("new", for: s71)
        // moved to its shadow: no shadow any more
        #expect(routes.route(for: s71) == Route(upstream: "new", reason: .api, shadow: nil))
        routes.setOverride(nil, for: s71)
        #expect(routes.route(for: s71).reason == .rule(index: 0, match: "S7-*"))
        routes.replace(RouteTable(RoutingConfiguration(defaultUpstream: "new"), chargers: [:]))
        #expect(routes.route(for: s71) == Route(upstream: "new", reason: .default))
    }

    @Test func tokensAreComparedWhole() {
        #expect(AdminHandler.equalInConstantTime(Array("secret-token".utf8), Array("secret-token".utf8)))
        #expect(!AdminHandler.equalInConstantTime(Array("secret-token".utf8), Array("secret-toke".utf8)))
        #expect(!AdminHandler.equalInConstantTime(Array("secret-token".utf8), Array("secret-tokeN".utf8)))
        #expect(!AdminHandler.equalInConstantTime([], Array("x".utf8)))
    }

    @Test func theRoutePathNamesOneCharger() {
        #expect(AdminHandler.chargerRoutePath("/api/chargers/CP%2001/route") == "CP 01")
        #expect(AdminHandler.chargerRoutePath("/api/chargers//route") == nil)
        #expect(AdminHandler.chargerRoutePath("/api/chargers/a/b/route") == nil)
        #expect(AdminHandler.chargerRoutePath("/api/chargers/CP1") == nil)
    }

    @Test func theSQLiteStoreKeepsRoutesAcrossReopening() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let store = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        try await store.setRouteOverride("new", for: ChargerIdentity("CP1")).get()
        try await store.setRouteOverride("old", for: ChargerIdentity("CP2")).get()
        try await store.setRouteOverride("twin", for: ChargerIdentity("CP1")).get()
        try await store.setRouteOverride(nil, for: ChargerIdentity("CP2")).get()
        try await store.close().get()
        let reopened = try await SQLiteStateStore.open(path: path, eventLoop: loop, logger: Logger(label: "test"))
        #expect(try await reopened.routeOverrides().get() == ["CP1": "twin"])
        try await reopened.close().get()
    }
}
