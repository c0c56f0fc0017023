import Foundation
import OCPP
import TestSupport
import Testing

@testable import OCPPRules

/// Numbers a hostile peer sends where an integer belongs: integral doubles beyond every integer width, the first
/// values past Int64 and Int32, and a fraction.
let hostileIntegers = [
    "1e300", "-1e300", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "2147483648",
    "-2147483649", "4294967296", "1.5", "1e20",
]

@Suite("Hostile input: integers are 32-bit, and nothing from a peer reaches a trap")
struct HostileInputTests {
    @Test(arguments: hostileIntegers)
    func anIntegerFieldRefusesANumberOutside32BitsOrWithAFraction(text: String) throws {
        let shape = Shape.object(
            ObjectShape(fields: [.init(name: "n", required: true, shape: .integer(minimum: nil))], open: false))
        let violation = try #require(shape.violation(of: json(#"{"n":\#(text)}"#)))
        #expect(violation.kind == .wrongType)
        #expect(violation.errorCode == .typeConstraintViolation)
        #expect(violation.path == "n")
    }

    @Test(arguments: ["2147483647", "-2147483648", "0", "7.0", "-0.0"])
    func anIntegerFieldTakesEvery32BitValue(text: String) {
        let shape = Shape.integer(minimum: nil)
        #expect(shape.violation(of: json(text)) == nil)
    }

    @Test func aMinimumStillAppliesInsideTheRange() throws {
        let violation = try #require(Shape.integer(minimum: 1).violation(of: json("0")))
        #expect(violation.kind == .badValue)
    }

    @Test func aComputedNumberThatIsNotFiniteBreaksANumberField() {
        #expect(Shape.number(minimum: nil).violation(of: .number(.infinity))?.kind == .badValue)
        #expect(Shape.number(minimum: nil).violation(of: .number(.nan))?.kind == .badValue)
        #expect(Shape.number(minimum: nil).violation(of: json("1e300")) == nil)
    }

    @Test func numericStringsToleratedOutsideInt64StayStrings() {
        let shape = Shape.integer(minimum: nil)
        let repaired = shape.tolerate(.string("1e300"), Tolerance(numericStrings: true))
        #expect(repaired == .string("1e300"))
        #expect(shape.violation(of: repaired)?.kind == .wrongType)
    }

    // MARK: Evaluator functions fed hostile values

    func evaluate(_ expression: String, _ payload: String) throws -> Result<JSONValue, EvaluationError> {
        let evaluator = Evaluator(
            rules: try MiniRules.ruleSet(), state: TranslationState(), now: now, ids: CountingIdentifiers())
        let parsed = try Expression.parse(expression)
        do throws(EvaluationError) {
            return .success(try evaluator.evaluate(parsed, Scope(payload: json(payload), element: nil, variables: [:])))
        } catch {
            return .failure(error)
        }
    }

    /// integer() converts to 64 bits (the definitions bound fields to 32): a number beyond that or with a fraction
    /// is a data error, whether it came as a number or as a string.
    @Test(arguments: hostileIntegers.filter { Double($0).flatMap { Int64(exactly: $0) } == nil || $0.contains("e") })
    func integerConversionOfAHostileNumberIsADataError(text: String) throws {
        guard case .failure(let error) = try evaluate("integer($x)", #"{"x":\#(text)}"#) else {
            Issue.record("integer(\(text)) produced a value")
            return
        }
        #expect(error.kind == .data)
        guard case .failure(let fromString) = try evaluate("integer($x)", #"{"x":"\#(text)"}"#) else {
            Issue.record("integer('\(text)') produced a value")
            return
        }
        #expect(fromString.kind == .data)
    }

    @Test(arguments: hostileIntegers)
    func statefulFunctionsTakeNoHostileNumberAsAnId(text: String) throws {
        for expression in ["tx.adopt($x, 1)", "tx.begin($x)", "evse.id($x)", "tx.uuid($x)", "tx.active($x)"] {
            let result = try evaluate(expression, #"{"x":\#(text)}"#)
            switch result {
            case .success(let value):
                // A value that fits Int64 exactly may be used; anything else is no id at all.
                if Double(text).flatMap({ Int64(exactly: $0) }) == nil {
                    #expect(value == .null, "\(expression) with \(text) gave \(value)")
                }
            case .failure(let error):
                #expect(error.kind == .data)
            }
        }
    }

    @Test func roundTakesAnyNumberOfPlacesAndAnyMagnitude() throws {
        #expect(try evaluate("round($x, 1)", #"{"x":12.34}"#).get() == .number(12.3))
        for places in ["9223372036854775807", "-9223372036854775808", "400", "-400"] {
            let result = try evaluate("round($x, \(places))", #"{"x":1.25}"#)
            if case .success(let value) = result { #expect(Evaluator.numeric(value) != nil) }
        }
        guard case .failure(let error) = try evaluate("round($x, 300)", #"{"x":1e300}"#) else {
            // 1e300 × 10^17 is infinite: no finite answer exists.
            Issue.record("round(1e300, 300) produced a value")
            return
        }
        #expect(error.kind == .data)
        #expect(try evaluate("round($x, -2)", #"{"x":1e300}"#).get() == .number(1e300))
    }

    @Test func aSeqNoOrIdAtTheEndOfItsRangeDoesNotOverflow() throws {
        var state = TranslationState()
        state.apply(.nextLocalId(.max))
        state.apply(
            .transaction(
                .init(
                    localId: .max, uuid: "u", connectorId: 1, nextSeqNo: .max, remoteStartId: nil, ended: false,
                    serial: .max)))
        let evaluator = Evaluator(rules: try MiniRules.ruleSet(), state: state, now: now, ids: CountingIdentifiers())
        let scope = Scope(payload: json(#"{"id":"u"}"#), element: nil, variables: [:])
        #expect(throws: EvaluationError.self) { try evaluator.evaluate(try Expression.parse("tx.seqNo($id)"), scope) }
        #expect(try evaluator.evaluate(try Expression.parse("tx.begin(1)"), scope) != .null)
    }

    @Test func memosNamedFromFrameDataNeverFillTheTable() throws {
        let evaluator = Evaluator(
            rules: try MiniRules.ruleSet(), state: TranslationState(), now: now, ids: CountingIdentifiers())
        let set = try Expression.parse("memo.set(concat('status.', $n), $n)")
        for n in 1...(TranslationState.memosKept + 10) {
            let scope = Scope(payload: json(#"{"n":\#(n)}"#), element: nil, variables: [:])
            #expect(try evaluator.evaluate(set, scope) == .integer(Int64(n)))
        }
        // the table stays bounded; the memos set longest ago made room, the newest are there
        #expect(evaluator.state.memos.count == TranslationState.memosKept)
        #expect(evaluator.state.memos["status.1"] == nil)
        #expect(evaluator.state.memos["status.\(TranslationState.memosKept + 10)"] != nil)
        // and the store is told what was forgotten
        #expect(evaluator.changes.contains(.memo(name: "status.1", value: .null)))
        // a value too large for a memo is the frame's problem, not a trap
        let large = Scope(
            payload: .object(["n": .string(String(repeating: "x", count: TranslationState.memoBytes))]), element: nil,
            variables: [:])
        #expect(throws: EvaluationError.self) { try evaluator.evaluate(set, large) }
    }

    // MARK: The repository's rules fed hostile frames

    /// A frame from `side` carrying `text` at `field` of an otherwise valid `action` payload: answered with
    /// TypeConstraintViolation, nothing sent to the other side, and the session still translates.
    func expectRefused(
        _ action: String, _ payload: String, from side: Side, code: String = "TypeConstraintViolation"
    ) throws {
        let rules = try RuleFuzzTests.repositoryRules()
        let session = TranslationSession(
            rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
        let out = session.receive(.call(id: "h1", action: action, payload: json(payload)), from: side, now: now)
        #expect(out.frames.count == 1, "\(action) \(payload): \(out.frames)")
        guard case .callError(let id, let errorCode, _, _)? = out.frames.first?.frame else {
            Issue.record("\(action) \(payload): expected a CALLERROR, got \(out.frames)")
            return
        }
        #expect(out.frames.first?.side == side && id == "h1" && errorCode == code, "\(action) \(payload)")
        #expect(session.exchangesInProgress == 0)
    }

    @Test(arguments: hostileIntegers)
    func aChargerTransactionMessageWithAHostileIntegerIsRefused(text: String) throws {
        let stamp = "2026-01-01T00:00:00Z"
        try expectRefused(
            "StartTransaction",
            #"{"connectorId":1,"idTag":"T","meterStart":\#(text),"timestamp":"\#(stamp)"}"#, from: .charger)
        try expectRefused(
            "StartTransaction", #"{"connectorId":\#(text),"idTag":"T","meterStart":0,"timestamp":"\#(stamp)"}"#,
            from: .charger)
        try expectRefused(
            "MeterValues",
            #"{"connectorId":1,"transactionId":\#(text),"meterValue":[{"timestamp":"\#(stamp)","sampledValue":[{"value":"1"}]}]}"#,
            from: .charger)
        try expectRefused(
            "StopTransaction", #"{"transactionId":\#(text),"meterStop":10,"timestamp":"\#(stamp)"}"#, from: .charger)
        try expectRefused(
            "StopTransaction", #"{"transactionId":1,"meterStop":\#(text),"timestamp":"\#(stamp)"}"#, from: .charger)
    }

    @Test(arguments: hostileIntegers)
    func aCSMSCallWithAHostileIntegerIsRefused(text: String) throws {
        try expectRefused(
            "RequestStartTransaction", #"{"remoteStartId":\#(text),"idToken":{"idToken":"T","type":"Central"}}"#,
            from: .csms)
        try expectRefused("UnlockConnector", #"{"evseId":\#(text),"connectorId":1}"#, from: .csms)
        try expectRefused(
            "ChangeAvailability", #"{"operationalStatus":"Operative","evse":{"id":\#(text)}}"#, from: .csms)
        try expectRefused("Reset", #"{"type":"Immediate","evseId":\#(text)}"#, from: .csms)
    }

    @Test(arguments: hostileIntegers)
    func aCSMSAnswerWithAHostileIntegerFailsOnlyItsExchange(text: String) throws {
        let rules = try RuleFuzzTests.repositoryRules()
        let session = TranslationSession(
            rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
        let boot = json(#"{"chargePointVendor":"V","chargePointModel":"M"}"#)
        let sent = session.receive(.call(id: "b1", action: "BootNotification", payload: boot), from: .charger, now: now)
        guard case .call(let id, "BootNotification", _)? = sent.frames.first?.frame else {
            Issue.record("BootNotification was not translated: \(sent.frames)")
            return
        }
        let answer = json(#"{"currentTime":"2026-01-01T00:00:00Z","interval":\#(text),"status":"Accepted"}"#)
        let out = session.receive(.callResult(id: id, payload: answer), from: .csms, now: now)
        guard case .callError("b1", "TypeConstraintViolation", _, _)? = out.frames.first?.frame else {
            Issue.record("expected the charger's CALLERROR, got \(out.frames)")
            return
        }
        // The link is still usable: the next CALL goes out.
        let next = session.receive(.call(id: "h2", action: "Heartbeat", payload: json("{}")), from: .charger, now: now)
        #expect(next.frames.count == 1 && next.frames.first?.side == .csms)
    }

    // MARK: Mutation fuzzing

    /// Valid payloads with one value replaced by something hostile: the class of input the valid-only fuzz test
    /// could not reach. Each frame must come out as a valid frame of its target version or a CALLERROR; a trap
    /// ends the test process, which fails the run.
    func mutate(from side: Side, iterations: Int, seed: UInt64) throws {
        let rules = try RuleFuzzTests.repositoryRules()
        var sampler = ShapeSampler(random: SplitMix64(seed: seed))
        let session = TranslationSession(
            rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
        let actions = rules.definitions(of: side).actions(sentBy: side)
        let hostile: [JSONValue] =
            hostileIntegers.map(json) + [
                .string(String(repeating: "x", count: 5000)), .string("\u{0}\u{FFFF}"), .bool(true), .null, .array([]),
                .object([:]), .integer(.max), .integer(.min), .number(-0.0), json("[[[[[[[[[[1]]]]]]]]]]"),
            ]
        var problems: [String] = []
        var refused = 0
        for iteration in 0..<iterations {
            let action = actions[iteration % actions.count]
            let valid = sampler.value(rules.definitions(of: side).messages[action]!.request)
            let payload = Self.replaceOneLeaf(
                valid, with: hostile.randomElement(using: &sampler.random)!,
                random: &sampler.random)
            let run = session.exchange(action, id: "m\(iteration)", payload: payload, from: side) { message in
                // The answer is hostile too, every other time.
                let answer = sampler.value(message.response)
                guard Bool.random(using: &sampler.random) else { return answer }
                return Self.replaceOneLeaf(
                    answer, with: hostile.randomElement(using: &sampler.random)!, random: &sampler.random)
            }
            problems += run.problems
            refused += run.errors.count
        }
        #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(5).joined(separator: "\n"))")
        // The mutations must actually reach the checks: most frames are refused.
        #expect(refused > iterations / 4, "only \(refused) CALLERRORs for \(iterations) mutated frames")
    }

    static func replaceOneLeaf(_ value: JSONValue, with replacement: JSONValue, random: inout SplitMix64)
        -> JSONValue
    {
        switch value {
        case .object(var members) where !members.isEmpty:
            let key = members.keys.sorted().randomElement(using: &random)!
            members[key] = replaceOneLeaf(members[key]!, with: replacement, random: &random)
            return .object(members)
        case .array(var elements) where !elements.isEmpty:
            let index = Int.random(in: 0..<elements.count, using: &random)
            elements[index] = replaceOneLeaf(elements[index], with: replacement, random: &random)
            return .array(elements)
        default:
            return replacement
        }
    }

    @Test func mutatedChargerCallsAndAnswersYieldValidFramesOrCallErrors() throws {
        try mutate(from: .charger, iterations: 3000, seed: 11)
    }

    @Test func mutatedCSMSCallsAndAnswersYieldValidFramesOrCallErrors() throws {
        try mutate(from: .csms, iterations: 3000, seed: 12)
    }
}
