import NIOCore
import OCPP
import Testing

@testable import OCPPProxy

/// The overload steps on a clock of the tests' own: max over monitors, hysteresis, reversal.
@Suite("Overload steps")
struct OverloadStepsTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func steps(
        memory: OverloadThresholds? = nil, lag: OverloadThresholds? = nil, pending: OverloadThresholds? = nil,
        recoverAfter: TimeAmount = .seconds(10)
    ) -> OverloadSteps {
        var configuration = OverloadConfiguration()
        configuration.memory = memory
        configuration.eventLoopLag = lag
        configuration.pendingCalls = pending
        configuration.recoverAfter = recoverAfter
        return OverloadSteps(configuration: configuration)
    }

    let ladder = OverloadThresholds(shedAt: 100, refuseAt: 200, stopAt: 300)

    @Test func theStepIsTheHighestAnyMonitorAsksForEnteredAtTheFirstReading() {
        var s = steps(memory: OverloadThresholds(shedAt: 100, refuseAt: 200), pending: ladder)
        let change = s.update(OverloadReadings(memory: 150, pendingCalls: 250), now: start)
        #expect(change == .init(from: .normal, to: .refuse, causes: [.pendingCalls]))
        #expect(s.step == .refuse)
        #expect(s.update(OverloadReadings(memory: 150, pendingCalls: 250), now: start + .seconds(1)) == nil)
        let higher = s.update(OverloadReadings(memory: 150, pendingCalls: 300), now: start + .seconds(2))
        #expect(higher == .init(from: .refuse, to: .stop, causes: [.pendingCalls]))
    }

    @Test func monitorsAskingForTheSameStepAreAllItsCauses() {
        var s = steps(memory: ladder, lag: ladder, pending: ladder)
        let change = s.update(OverloadReadings(memory: 120, eventLoopLag: 50, pendingCalls: 199), now: start)
        #expect(change == .init(from: .normal, to: .shed, causes: [.memory, .pendingCalls]))
    }

    @Test func aStepIsLeftOnlyAfterTheReadingsStayedBelowItsMarginForRecoverAfter() {
        var s = steps(pending: ladder)
        _ = s.update(OverloadReadings(pendingCalls: 200), now: start)
        // Below refuseAt but not below 90 % of it: still refusing, however long.
        #expect(s.update(OverloadReadings(pendingCalls: 185), now: start + .seconds(1)) == nil)
        #expect(s.update(OverloadReadings(pendingCalls: 185), now: start + .seconds(60)) == nil)
        #expect(s.step == .refuse)
        #expect(s.update(OverloadReadings(pendingCalls: 0), now: start + .seconds(61)) == nil, "the calm starts")
        #expect(s.update(OverloadReadings(pendingCalls: 0), now: start + .seconds(71) - .nanoseconds(1)) == nil)
        let change = s.update(OverloadReadings(pendingCalls: 0), now: start + .seconds(71))
        #expect(change == .init(from: .refuse, to: .normal, causes: []))
        #expect(s.step == .normal)
    }

    @Test func theStepFallsToTheHighestAskedForDuringTheCalm() {
        var s = steps(memory: ladder, pending: ladder)
        _ = s.update(OverloadReadings(memory: 0, pendingCalls: 300), now: start)
        _ = s.update(OverloadReadings(memory: 0, pendingCalls: 0), now: start + .seconds(1))
        _ = s.update(OverloadReadings(memory: 95, pendingCalls: 0), now: start + .seconds(2))
        let change = s.update(OverloadReadings(memory: 0, pendingCalls: 0), now: start + .seconds(11))
        #expect(change == .init(from: .stop, to: .shed, causes: []), "no monitor asks for shed at this reading")
        // And from shed to normal after a calm of its own.
        #expect(s.update(OverloadReadings(memory: 0, pendingCalls: 0), now: start + .seconds(12)) == nil)
        #expect(s.update(OverloadReadings(memory: 0, pendingCalls: 0), now: start + .seconds(22))?.to == .normal)
    }

    @Test func pressureReturningDuringTheCalmStartsItAgain() {
        var s = steps(lag: ladder)
        _ = s.update(OverloadReadings(eventLoopLag: 100), now: start)
        _ = s.update(OverloadReadings(eventLoopLag: 0), now: start + .seconds(1))
        #expect(s.update(OverloadReadings(eventLoopLag: 95), now: start + .seconds(9)) == nil, "not below the margin")
        _ = s.update(OverloadReadings(eventLoopLag: 0), now: start + .seconds(10))
        #expect(s.update(OverloadReadings(eventLoopLag: 0), now: start + .seconds(19)) == nil, "a new calm of 10 s")
        #expect(s.update(OverloadReadings(eventLoopLag: 0), now: start + .seconds(20))?.to == .normal)
    }

    @Test func recoverAfterZeroLeavesAtTheFirstCalmReading() {
        var s = steps(pending: OverloadThresholds(shedAt: 1), recoverAfter: .zero)
        #expect(s.update(OverloadReadings(pendingCalls: 1), now: start)?.to == .shed)
        #expect(s.update(OverloadReadings(pendingCalls: 0), now: start)?.to == .normal)
    }

    @Test func aMonitorWithoutReadingOrThresholdsAsksForNothing() {
        var s = steps(memory: ladder, lag: nil)
        #expect(
            s.update(OverloadReadings(memory: nil, eventLoopLag: 1_000_000, pendingCalls: 1_000_000), now: start) == nil
        )
        #expect(s.steps(OverloadReadings(memory: 250)) == [.memory: .refuse])
    }

    @Test func aStepWithoutThresholdIsSkipped() {
        let refuseOnly = OverloadThresholds(refuseAt: 10)
        #expect(refuseOnly.step(for: 9) == .normal)
        #expect(refuseOnly.step(for: 10) == .refuse)
        #expect(refuseOnly.step(for: 1_000) == .refuse)
        #expect(refuseOnly.step(for: 9, scale: 0.9) == .refuse)
    }

    @Test func handshakesAreRefusedForAtLeastRecoverAfterSpreadOverTwiceIt() {
        var configuration = OverloadConfiguration()
        configuration.recoverAfter = .seconds(10)
        var ranges: [ClosedRange<Int>] = []
        let refusal = configuration.handshakeRefusal { range in
            ranges.append(range)
            return range.upperBound
        }
        #expect(ranges == [10...20])
        #expect(refusal.status == .serviceUnavailable && refusal.rule == "overload" && refusal.retryAfter == 20)
        configuration.recoverAfter = .milliseconds(300)
        #expect(configuration.handshakeRefusal { $0.lowerBound }.retryAfter == 1)
    }
}

@Suite("Overload readings and shedding")
struct OverloadReadingTests {
    @Test func residentMemoryIsStatmsSecondFieldInPages() {
        #expect(ResidentMemory.parse(statm: Array("10000 2500 300 10 0 900 0\n".utf8), pageSize: 4096) == 2500 * 4096)
        #expect(ResidentMemory.parse(statm: Array("10000\n".utf8), pageSize: 4096) == nil)
        #expect(ResidentMemory.parse(statm: Array("1 x 3".utf8), pageSize: 4096) == nil)
        #expect(ResidentMemory.parse(statm: Array("1 \(Int.max) 3".utf8), pageSize: 4096) == nil)
    }

    #if os(Linux)
        @Test func thisProcessHasResidentMemory() throws {
            #expect(try #require(ResidentMemory.current()) > 1 << 20)
        }
    #endif

    @Test func atTheShedStepEveryHeartbeatIsAnsweredByTheProxyAndNotForwarded() throws {
        let reject = MessageLimit(over: .reject, rate: RateLimit(perSecond: 100, burst: 100))
        let f = try SessionFixture(stages: {
            [MessageLimitStage(context: $0, limits: MessageLimits(byAction: ["DataTransfer": reject]))]
        })
        try f.fromCharger(#"[2,"h1","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == #"[2,"h1","Heartbeat",{}]"#, "normal: forwarded")
        f.metrics.overload.step = .shed
        try f.fromCharger(#"[2,"h2","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == nil)
        let answer = try #require(try f.toCharger())
        #expect(answer.hasPrefix(#"[3,"h2",{"currentTime":""#))
        try f.fromCharger(#"[2,"a1","Authorize",{"idTag":"A"}]"#)
        #expect(try f.toCSMS()?.contains(#""a1""#) == true, "other CALLs go on")
        f.metrics.overload.step = .normal
        try f.fromCharger(#"[2,"h3","Heartbeat",{}]"#)
        #expect(try f.toCSMS() == #"[2,"h3","Heartbeat",{}]"#, "back to normal: forwarded again")
    }

    @Test func theAuditRecordOfAChangeHasBothStepsItsCausesAndTheReadings() {
        let fields = OverloadMonitor.auditFields(
            .init(from: .normal, to: .refuse, causes: [.pendingCalls]),
            OverloadReadings(memory: 1 << 20, eventLoopLag: 3_000_000, pendingCalls: 7))
        #expect(fields["step"] == .string("refuse") && fields["previous"] == .string("normal"))
        #expect(fields["causes"] == .array([.string("pendingCalls")]))
        #expect(
            fields["readings"]
                == .object([
                    "memoryBytes": .integer(1 << 20), "eventLoopLagMicroseconds": .integer(3000),
                    "pendingCalls": .integer(7),
                ]))
    }
}

/// `overload:` in the configuration: defaults, `off`, and one line naming the key for each bad value.
@Suite("Overload configuration")
struct OverloadConfigurationTests {
    static let base = """
        listeners:
          - name: chargers
            port: 8180
            versions: [ocpp1.6]
        upstream:
          url: ws://csms.local:9000/ocpp
          version: ocpp1.6

        """

    private func load(_ overload: String) throws(ConfigurationError) -> ProxyConfiguration {
        try ConfigurationLoader(environment: [:]).load(
            yaml: Self.base + overload, file: "proxy.yaml", baseDirectory: "/etc/ocpp-proxy")
    }

    private func issues(_ overload: String) -> [String] {
        do {
            _ = try load(overload)
            return ["no issue"]
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func eventLoopsDefaultToTheCoresAndCanBeSet() throws {
        #expect(try load("").eventLoops == System.coreCount)
        #expect(try load("eventLoops: 3\n").eventLoops == 3)
    }

    @Test func theDefaultsWhenTheSectionIsAbsent() throws {
        let overload = try #require(try load("").overload)
        #expect(overload == OverloadConfiguration())
        #expect(overload.memory == OverloadThresholds(shedAt: 2 << 30, refuseAt: 3 << 30, stopAt: 3584 << 20))
        #expect(
            overload.eventLoopLag
                == OverloadThresholds(shedAt: 50_000_000, refuseAt: 200_000_000, stopAt: 1_000_000_000))
        #expect(overload.pendingCalls == OverloadThresholds(shedAt: 5000, refuseAt: 10000))
        #expect(overload.interval == .seconds(1) && overload.recoverAfter == .seconds(10))
    }

    @Test func offTurnsItOffAndAMonitorOrAStepOff() throws {
        #expect(try load("overload: off\n").overload == nil)
        let overload = try #require(
            try load(
                """
                overload:
                  interval: 250ms
                  recoverAfter: 0
                  memory: off
                  eventLoopLag: { shedAt: 20ms, refuseAt: off, stopAt: 2s }
                  pendingCalls: { refuseAt: 3 }
                """
            ).overload)
        #expect(overload.interval == .milliseconds(250) && overload.recoverAfter == .zero)
        #expect(overload.memory == nil)
        #expect(overload.eventLoopLag == OverloadThresholds(shedAt: 20_000_000, stopAt: 2_000_000_000))
        #expect(overload.pendingCalls == OverloadThresholds(refuseAt: 3), "a mapping replaces the defaults")
        #expect(
            try load("overload: { memory: { shedAt: 1GiB, refuseAt: 1536MiB } }\n").overload?.memory
                == OverloadThresholds(shedAt: 1 << 30, refuseAt: 3 << 29))
    }

    @Test(arguments: [
        ("overload: on", #"overload: expected a mapping, got "on" (proxy.yaml:8)"#),
        (
            "overload: { sampling: 1s }",
            "overload.sampling: unknown key; expected one of interval, recoverAfter, memory, eventLoopLag, pendingCalls (proxy.yaml:8)"
        ),
        (
            "overload: { interval: fast }",
            #"overload.interval: expected a positive duration such as 500ms, 5s, 2m or 1h, got "fast" (proxy.yaml:8)"#
        ),
        ("overload: { interval: 1ms }", "overload.interval: expected at least 10ms, got 1ms (proxy.yaml:8)"),
        (
            "overload: { recoverAfter: -1s }",
            #"overload.recoverAfter: expected a duration such as 500ms, 5s, 2m or 1h (0 disables), got "-1s" (proxy.yaml:8)"#
        ),
        ("overload: { memory: 2GiB }", #"overload.memory: expected a mapping, got "2GiB" (proxy.yaml:8)"#),
        (
            "overload: { memory: { shedAt: lots } }",
            #"overload.memory.shedAt: expected a size such as 64KiB, 256MiB or 1GiB (1048576 bytes or more), got "lots" (proxy.yaml:8)"#
        ),
        (
            "overload: { memory: { shedAt: 1KiB } }",
            #"overload.memory.shedAt: expected a size such as 64KiB, 256MiB or 1GiB (1048576 bytes or more), got "1KiB" (proxy.yaml:8)"#
        ),
        (
            "overload: { memory: { shedAt: 2GiB, refuseAt: 1GiB } }",
            "overload.memory.refuseAt: expected more than shedAt (2GiB), got 1GiB (proxy.yaml:8)"
        ),
        (
            "overload: { memory: { shed: 1GiB } }",
            "overload.memory.shed: unknown key; expected one of shedAt, refuseAt, stopAt (proxy.yaml:8)"
        ),
        (
            "overload: { eventLoopLag: { shedAt: 0 } }",
            "overload.eventLoopLag.shedAt: expected a positive duration such as 500ms, 5s, 2m or 1h, got 0 (proxy.yaml:8)"
        ),
        (
            "overload: { eventLoopLag: { refuseAt: 1s, stopAt: 1s } }",
            "overload.eventLoopLag.stopAt: expected more than refuseAt (1s), got 1s (proxy.yaml:8)"
        ),
        (
            "overload: { pendingCalls: { stopAt: 0 } }",
            "overload.pendingCalls.stopAt: expected an integer 1-100000000, got 0 (proxy.yaml:8)"
        ),
        (
            "overload: { pendingCalls: { shedAt: 10, stopAt: 5 } }",
            "overload.pendingCalls.stopAt: expected more than shedAt (10), got 5 (proxy.yaml:8)"
        ),
        ("eventLoops: 0", "eventLoops: expected an integer 1-256, got 0 (proxy.yaml:8)"),
        ("eventLoops: 257", "eventLoops: expected an integer 1-256, got 257 (proxy.yaml:8)"),
        ("eventLoops: many", #"eventLoops: expected an integer 1-256, got "many" (proxy.yaml:8)"#),
    ])
    func aBadValueIsOneLineNamingItsKey(yaml: String, expected: String) {
        #expect(issues(yaml + "\n") == [expected])
    }
}
