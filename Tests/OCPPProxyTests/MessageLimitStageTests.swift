import NIOCore
import OCPP
import Testing

@testable import OCPPProxy

/// The message-limit stage in a pass-through session on an embedded event loop whose clock the tests advance.
@Suite("Message limits")
struct MessageLimitStageTests {
    func fixture(_ rules: [String: MessageLimit], fromCSMS: MessageLimit? = nil) throws -> SessionFixture {
        try SessionFixture(
            maxPendingCalls: 64,
            stages: { [MessageLimitStage(context: $0, limits: MessageLimits(byAction: rules, fromCSMS: fromCSMS))] })
    }

    func delay(_ perSecond: Double, burst: Int, maxDelay: TimeAmount = .seconds(30)) -> MessageLimit {
        var limit = MessageLimit(over: .delay, rate: RateLimit(perSecond: perSecond, burst: burst))
        limit.maxDelay = maxDelay
        return limit
    }

    @Test func aCallOverItsRateIsHeldUntilItsTokenThenForwarded() throws {
        let f = try fixture(["default": delay(1, burst: 1)])
        try f.fromCharger(#"[2,"1","Authorize",{"idTag":"A"}]"#)
        #expect(try f.toCSMS() != nil)
        try f.fromCharger(#"[2,"2","Authorize",{"idTag":"A"}]"#)
        #expect(try f.toCSMS() == nil, "held")
        f.loop.advanceTime(by: .milliseconds(999))
        #expect(try f.toCSMS() == nil)
        f.loop.advanceTime(by: .milliseconds(1))
        #expect(try f.toCSMS() == #"[2,"2","Authorize",{"idTag":"A"}]"#)
    }

    @Test func nothingOvertakesACallThatIsHeld() throws {
        // MeterValues over its rate, then a StopTransaction whose own rule lets it through at once.
        let f = try fixture(["MeterValues": delay(1, burst: 1), "StopTransaction": delay(100, burst: 100)])
        try f.fromCharger(#"[2,"m1","MeterValues",{"connectorId":1,"meterValue":[]}]"#)
        try f.fromCharger(#"[2,"m2","MeterValues",{"connectorId":1,"meterValue":[]}]"#)
        try f.fromCharger(
            #"[2,"s1","StopTransaction",{"meterStop":1,"timestamp":"2026-12-07T00:00:00Z","transactionId":1}]"#)
        #expect(try f.toCSMS()?.contains(#""m1""#) == true)
        #expect(try f.toCSMS() == nil)
        f.loop.advanceTime(by: .seconds(1))
        #expect(try f.toCSMS()?.contains(#""m2""#) == true)
        #expect(try f.toCSMS()?.contains(#""s1""#) == true)
    }

    @Test func aDelayIsNeverLongerThanMaxDelay() throws {
        let f = try fixture(["default": delay(0.01, burst: 1, maxDelay: .seconds(2))])
        try f.fromCharger(#"[2,"1","Authorize",{"idTag":"A"}]"#)
        try f.fromCharger(#"[2,"2","Authorize",{"idTag":"A"}]"#)
        _ = try f.toCSMS()
        f.loop.advanceTime(by: .seconds(2))
        #expect(try f.toCSMS()?.contains(#""2""#) == true)
    }

    @Test func aRejectRuleAnswersGenericErrorButNeverForATransactionMessage() throws {
        var reject = MessageLimit(over: .reject, rate: RateLimit(perSecond: 0.01, burst: 1))
        reject.maxDelay = .seconds(1)
        let f = try fixture(["DataTransfer": reject, "StartTransaction": reject])
        try f.fromCharger(#"[2,"1","DataTransfer",{"vendorId":"V"}]"#)
        try f.fromCharger(#"[2,"2","DataTransfer",{"vendorId":"V"}]"#)
        #expect(try f.toCSMS()?.contains(#""1""#) == true)
        let refusal = try #require(try f.toCharger())
        #expect(refusal.hasPrefix(#"[4,"2","GenericError","DataTransfer is over its message limit"#))
        let start =
            #"[2,"s%d","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2026-12-07T00:00:00Z"}]"#
        try f.fromCharger(start.replacingOccurrences(of: "%d", with: "1"))
        try f.fromCharger(start.replacingOccurrences(of: "%d", with: "2"))
        #expect(try f.toCSMS()?.contains(#""s1""#) == true)
        #expect(try f.toCharger() == nil, "a transaction message is not refused")
        f.loop.advanceTime(by: .seconds(1))
        #expect(try f.toCSMS()?.contains(#""s2""#) == true)
    }

    @Test func heartbeatsAndRepeatedStatusesWithinTheIntervalAreAnsweredByTheProxy() throws {
        let f = try fixture([
            "Heartbeat": MessageLimit(over: .answerLocally, minInterval: .seconds(60)),
            "StatusNotification": MessageLimit(over: .answerLocally, minInterval: .seconds(60)),
        ])
        try f.fromCharger(#"[2,"h1","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == #"[2,"h1","Heartbeat",{}]"#)
        try f.fromCharger(#"[2,"h2","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == nil)
        #expect(try f.toCharger()?.hasPrefix(#"[3,"h2",{"currentTime":""#) == true)
        let status = #"[2,"%@","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"%s"}]"#
        func send(_ id: String, _ value: String) throws {
            try f.fromCharger(
                status.replacingOccurrences(of: "%@", with: id).replacingOccurrences(of: "%s", with: value))
        }
        try send("s1", "Available")
        #expect(try f.toCSMS()?.contains(#""s1""#) == true)
        try send("s2", "Available")
        #expect(try f.toCharger() == #"[3,"s2",{}]"#)
        try send("s3", "Charging")
        #expect(try f.toCSMS()?.contains(#""s3""#) == true)
        f.loop.advanceTime(by: .seconds(61))
        try f.fromCharger(#"[2,"h3","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == #"[2,"h3","Heartbeat",{}]"#, "a minute later the Heartbeat goes on")
    }

    @Test func theCSMSsCallsAreLimitedByFromCSMS() throws {
        let f = try fixture([:], fromCSMS: delay(1, burst: 1))
        try f.fromCSMS(#"[2,"c1","Reset",{"type":"Soft"}]"#)
        try f.fromCSMS(#"[2,"c2","Reset",{"type":"Soft"}]"#)
        #expect(try f.toCharger()?.contains(#""c1""#) == true)
        #expect(try f.toCharger() == nil)
        f.loop.advanceTime(by: .seconds(1))
        #expect(try f.toCharger()?.contains(#""c2""#) == true)
    }
}
