import OCPP
import OCPPAuditRedaction
import Testing

@testable import OCPPProxy

@Suite("Comparing a shadow CSMS's answers with the primary's")
struct ShadowComparisonTests {
    func result(_ json: String) -> RPCFrame {
        .callResult(id: "1", payload: JSONValue(parsing: Array(json.utf8)) ?? .null)
    }

    func compare(_ primary: RPCFrame, _ shadow: RPCFrame?, ignore: Set<String> = ["currentTime"])
        -> [ShadowDivergence]
    {
        ShadowComparison.compare(primary: primary, shadow: shadow, ignore: ignore)
    }

    @Test func equalAnswersAndIgnoredFieldsAreNoDivergence() {
        #expect(
            compare(result(#"{"status":"Accepted","interval":300}"#), result(#"{"interval":300,"status":"Accepted"}"#))
                .isEmpty)
        #expect(
            compare(
                result(#"{"currentTime":"2026-12-07T00:00:00Z"}"#), result(#"{"currentTime":"2027-01-01T00:00:00Z"}"#)
            ).isEmpty)
        // the charger's transaction id is the proxy's to map, never a divergence
        #expect(compare(result(#"{"transactionId":4242}"#), result(#"{"transactionId":777}"#)).isEmpty)
        // 2 and 2.0 are one JSON number
        #expect(compare(result(#"{"interval":2}"#), result(#"{"interval":2.0}"#)).isEmpty)
    }

    @Test func aStatusAnywhereIsAStatusDivergenceWithBothValues() {
        #expect(
            compare(result(#"{"idTagInfo":{"status":"Accepted"}}"#), result(#"{"idTagInfo":{"status":"Blocked"}}"#))
                == [ShadowDivergence(kind: .status, field: "idTagInfo.status", primary: "Accepted", shadow: "Blocked")])
    }

    @Test func missingExtraAndDifferentFieldsAreNamed() {
        let found = compare(
            result(#"{"interval":300,"idTagInfo":{"status":"Accepted"},"list":[1,2]}"#),
            result(#"{"interval":60,"extra":true,"list":[1,3]}"#))
        #expect(
            found == [
                ShadowDivergence(kind: .missingField, field: "idTagInfo"),
                ShadowDivergence(kind: .differentValue, field: "interval", primary: "300", shadow: "60"),
                ShadowDivergence(kind: .differentValue, field: "list[1]", primary: "2", shadow: "3"),
                ShadowDivergence(kind: .extraField, field: "extra"),
            ])
    }

    @Test func tokensKeysAndFreeTextAreNeverShown() {
        let found = compare(
            result(#"{"idTagInfo":{"parentIdTag":"SECRET-1"},"info":"free text, with spaces"}"#),
            result(#"{"idTagInfo":{"parentIdTag":"SECRET-2"},"info":"other text"}"#))
        #expect(found.count == 2)
        #expect(found.allSatisfy { $0.primary == nil && $0.shadow == nil })
        #expect(found.map(\.field) == ["idTagInfo.parentIdTag", "info"])
    }

    @Test func errorsResultsAndTimeouts() {
        let error = RPCFrame.callError(id: "1", code: "NotSupported", description: "", details: .object([:]))
        let other = RPCFrame.callError(id: "1", code: "InternalError", description: "", details: .object([:]))
        #expect(compare(result("{}"), error).map(\.kind) == [.errorVersusResult])
        #expect(compare(error, result("{}")).map(\.kind) == [.errorVersusResult])
        #expect(compare(error, error).isEmpty)
        #expect(
            compare(error, other) == [
                ShadowDivergence(kind: .differentError, primary: "NotSupported", shadow: "InternalError")
            ])
        #expect(compare(result("{}"), nil) == [ShadowDivergence(kind: .timeout)])
    }
}

@Suite("The shadow report read from audit records")
struct ShadowReportTests {
    func record(_ json: String) -> JSONValue { JSONValue(parsing: Array(json.utf8)) ?? .null }

    @Test func itCountsComparisonsPerActionAndChargerAndIgnoresOtherRecords() {
        var report = ShadowReport()
        let lines = [
            #"{"event":"shadow_compared","ts":"2026-12-07T10:00:00Z","charger":"CP1","shadow":"new","action":"Authorize","result":"divergent","divergences":[{"kind":"status","field":"idTagInfo.status"}]}"#,
            #"{"event":"shadow_compared","ts":"2026-12-07T10:00:01Z","charger":"CP1","shadow":"new","action":"Heartbeat","result":"match","divergences":[]}"#,
            #"{"event":"shadow_compared","ts":"2026-12-07T10:00:02Z","charger":"CP2","shadow":"new","action":"Authorize","result":"match","divergences":[]}"#,
            #"{"event":"shadow_call","ts":"2026-12-07T10:00:03Z","charger":"CP2","shadow":"new","action":"Reset","answer":"NotSupported"}"#,
            #"{"event":"shadow_link","ts":"2026-12-07T10:00:04Z","charger":"CP2","shadow":"new","state":"failed","reason":"refused"}"#,
            #"{"event":"shadow_link","ts":"2026-12-07T10:00:05Z","charger":"CP2","shadow":"new","state":"opened"}"#,
            #"{"event":"frame","ts":"2026-12-07T10:00:06Z","charger":"CP1"}"#,
        ]
        let taken = lines.map { report.add(record($0)) }
        #expect(taken == [true, true, true, true, true, true, false])
        #expect(report.total.compared == 3 && report.total.divergent == 1)
        #expect(report.byAction["Authorize"]?.compared == 2 && report.byAction["Authorize"]?.divergent == 1)
        #expect(report.byAction["Authorize"]?.kinds == ["status": 1])
        #expect(report.byAction["Authorize"]?.fields == ["idTagInfo.status": 1])
        #expect(report.byCharger["CP2"]?.shadowCalls == 1 && report.byCharger["CP2"]?.linkProblems == 1)
        #expect(report.firstTime == "2026-12-07T10:00:00Z" && report.lastTime == "2026-12-07T10:00:05Z")
        #expect(
            report.text.contains("Authorize: 1 of 2 divergent (50.0 %)  kinds: status=1  fields: idTagInfo.status=1"))
        #expect(
            report.text.contains(
                "CP1: 1 of 2 divergent (50.0 %)  kinds: status=1  fields: idTagInfo.status=1  shadow new"))
        #expect(
            report.text.contains(
                "CP2: 0 of 1 divergent (0.0 %)  shadow new  shadow CALLs answered by the proxy: 1  shadow link failures: 1"
            ))
    }

    @Test func anEmptyLogSaysSo() {
        #expect(ShadowReport().text.hasPrefix("no shadow records"))
    }
}

@Suite("Routes with a shadow")
struct ShadowRouteTests {
    @Test func theChargersOwnShadowBeatsTheRulesAndAShadowIsNeverItsOwnUpstream() throws {
        let routing = RoutingConfiguration(
            defaultUpstream: "old",
            rules: [RouteRule(match: try IdentityPattern("SITE7-*"), upstream: "old", shadow: "new")])
        var own = ChargerRegistration(identity: try ChargerIdentity("SITE7-9"), securityProfile: 0)
        own.shadow = "twin"
        var moved = ChargerRegistration(identity: try ChargerIdentity("SITE7-8"), securityProfile: 0)
        moved.upstream = "new"
        let table = RouteTable(routing, chargers: [own.identity: own, moved.identity: moved])
        #expect(table.route(for: try ChargerIdentity("SITE7-1")).shadow == "new")
        #expect(table.route(for: try ChargerIdentity("SITE7-9")).shadow == "twin")
        // routed to the rule's shadow itself: no shadow
        #expect(table.route(for: try ChargerIdentity("SITE7-8")).shadow == nil)
        #expect(table.route(for: try ChargerIdentity("CP1")).shadow == nil)
    }
}
