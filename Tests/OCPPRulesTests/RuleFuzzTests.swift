import Foundation
import OCPP
import TestSupport
import Testing

@testable import OCPPRules

/// Random values that satisfy a shape: what a valid peer might send.
struct ShapeSampler {
    var random: SplitMix64

    mutating func value(_ shape: Shape, depth: Int = 0) -> JSONValue {
        switch shape {
        case .object(let object):
            var members: JSONObject = [:]
            for field in object.fields where field.required || Bool.random(using: &random) {
                // customData is allowed everywhere in 2.0.1; it only adds noise here.
                if field.name == "customData" { continue }
                members[field.name] = value(field.shape, depth: depth + 1)
            }
            return .object(members)
        case .array(let element, let min, let max):
            let low = min ?? 0
            let high = Swift.min(max ?? (low + 3), low + 3)
            return .array(
                (0..<Int.random(in: low...high, using: &random)).map { _ in value(element, depth: depth + 1) })
        case .integer(let minimum):
            let base = minimum ?? (Bool.random(using: &random) ? 0 : -5)
            return .integer(base + Int64.random(in: 0...(Bool.random(using: &random) ? 3 : 100_000), using: &random))
        case .number(let minimum, _):
            let base = minimum ?? 0
            return .number(base + Double(Int.random(in: 0...100_000, using: &random)) / 10)
        case .boolean:
            return .bool(Bool.random(using: &random))
        case .string(let maxLength):
            let limit = Swift.min(maxLength ?? 40, 40)
            let alphabets = ["0123456789", "0123456789ABCDEF", "abcXYZ_-. 09", "1.5"]
            let alphabet = Array(alphabets.randomElement(using: &random)!)
            let count = Int.random(in: (limit == 0 ? 0 : 1)...Swift.max(1, limit), using: &random)
            return .string(String((0..<Swift.min(count, limit)).map { _ in alphabet.randomElement(using: &random)! }))
        case .dateTime:
            let seconds = Int64.random(in: 1_500_000_000...2_000_000_000, using: &random)
            return .string(DateTimeText(seconds: seconds, fraction: Bool.random(using: &random) ? "" : "123").utcText)
        case .any:
            return depth > 3
                ? .string("x")
                : [.string("text"), .integer(7), .object(["k": .string("v")])].randomElement(using: &random)!
        case .enumeration(let values):
            return .string(values.randomElement(using: &random)!)
        }
    }
}

/// What one CALL did in a session, with every CALL the session sent in turn answered.
struct ExchangeRun {
    /// Frames the session sent that break the definitions of the side they went to.
    var problems: [String] = []
    /// CALLRESULTs the caller got.
    var results = 0
    var errors: [(code: String, description: String)] = []
    var logs: [String] = []
}

/// What the fuzz driver feeds: one rule set's session, or a chain of them.
protocol ExchangeEngine: AnyObject {
    func feed(_ frame: RPCFrame, from side: Side) -> (frames: [OutgoingFrame], logs: [String])
    /// The definitions of the version `side` speaks.
    func definitions(of side: Side) -> MessageDefinitions
}

extension TranslationSession: ExchangeEngine {
    func feed(_ frame: RPCFrame, from side: Side) -> (frames: [OutgoingFrame], logs: [String]) {
        let output = receive(frame, from: side, now: now)
        return (output.frames, output.logs.map(\.message))
    }

    func definitions(of side: Side) -> MessageDefinitions { rules.definitions(of: side) }
}

extension TranslationChain: ExchangeEngine {
    func feed(_ frame: RPCFrame, from side: Side) -> (frames: [OutgoingFrame], logs: [String]) {
        let output = receive(frame, from: side, now: now)
        return (output.frames, output.logs.map(\.message))
    }

    func definitions(of side: Side) -> MessageDefinitions {
        side == .charger ? ruleSets[0].definitions(of: .charger) : ruleSets[ruleSets.count - 1].definitions(of: .csms)
    }
}

extension ExchangeEngine {
    /// Feeds CALL `action` from `side`, then answers every CALL the session sends (with what `answer` makes of its
    /// definition), and checks every CALL and CALLRESULT the session sends against the definitions of the side it
    /// goes to. At most 50 frames, so a rule that loops cannot hang the test.
    func exchange(
        _ action: String, id: String, payload: JSONValue, from side: Side,
        answer: (MessageDefinitions.Message) -> JSONValue
    ) -> ExchangeRun {
        var run = ExchangeRun()
        func feed(_ frame: RPCFrame, from sender: Side) -> [OutgoingFrame] {
            let output = self.feed(frame, from: sender)
            run.logs += output.logs
            return output.frames
        }
        var queue = feed(.call(id: id, action: action, payload: payload), from: side)
        var steps = 0
        while !queue.isEmpty, steps < 50 {
            steps += 1
            let outgoing = queue.removeFirst()
            let definitions = self.definitions(of: outgoing.side)
            switch outgoing.frame {
            case .call(let callId, let callAction, let callPayload):
                guard let message = definitions.messages[callAction] else {
                    run.problems.append("\(action): sent unknown \(callAction)")
                    continue
                }
                if let violation = message.request.violation(of: callPayload) {
                    run.problems.append("\(action) → \(callAction) invalid: \(violation) \(callPayload.jsonText)")
                }
                queue += feed(.callResult(id: callId, payload: answer(message)), from: outgoing.side)
            case .callResult(_, let result):
                if let violation = definitions.messages[action]?.response.violation(of: result) {
                    run.problems.append("\(action) result invalid: \(violation) \(result.jsonText)")
                }
                run.results += 1
            case .callError(_, let code, let description, _):
                run.errors.append((code, description))
            default:
                run.problems.append("\(action): unexpected frame \(outgoing.frame)")
            }
        }
        return run
    }
}

@Suite("Rule engine fuzzing with the repository's rule files")
struct RuleFuzzTests {
    static func repositoryRules() throws -> RuleSet {
        try #require(try RepositoryRules.chain(.v1_6, .v2_0_1).first)
    }

    /// Sends random valid CALLs from `side`, answers every CALL the proxy sends with a random valid answer,
    /// and checks every frame the session produces against the definitions of the version it goes to.
    func run(
        from side: Side, iterations: Int, seed: UInt64, charger: OCPPVersion = .v1_6, csms: OCPPVersion = .v2_0_1
    ) throws {
        var sampler = ShapeSampler(random: SplitMix64(seed: seed))
        // One rule set's session, or the chain of rule sets from `charger` to `csms`.
        let session = TranslationChain(
            ruleSets: try RepositoryRules.chain(charger, csms), state: ChainState(), ids: CountingIdentifiers(),
            messageIdPrefix: "p")
        let definitions = session.definitions(of: side)
        let actions = definitions.actions(sentBy: side)
        var problems: [String] = []
        var answeredBy: [String: Int] = [:]
        for iteration in 0..<iterations {
            let action = actions[iteration % actions.count]
            let payload = sampler.value(definitions.messages[action]!.request)
            let run = session.exchange(action, id: "f\(iteration)", payload: payload, from: side) { message in
                sampler.value(message.response)
            }
            problems += run.problems
            if run.results > 0 { answeredBy[action, default: 0] += run.results }
            for (code, description) in run.errors {
                // Random strings that are not numbers legitimately fail number conversions; a rule that breaks
                // on valid input does not.
                if code == "InternalError" || code == "NotSupported" || code == "NotImplemented" {
                    problems.append("\(action): \(code) \(description) for \(payload.jsonText); log: \(run.logs)")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(5).joined(separator: "\n"))")
        // Every action must have come through at least once with a valid answer.
        let neverAnswered = actions.filter { answeredBy[$0] == nil }
        #expect(neverAnswered.isEmpty, "never answered: \(neverAnswered)")
    }

    @Test func randomValidChargerCallsAlwaysYieldValidFramesOrACallError() throws {
        try run(from: .charger, iterations: 3000, seed: 1)
    }

    @Test func randomValidCSMSCallsAlwaysYieldValidFramesOrACallError() throws {
        try run(from: .csms, iterations: 3000, seed: 2)
    }

    @Test func randomValid1_5ChargerCallsYieldValidFramesOrACallErrorOnA1_6CSMS() throws {
        try run(from: .charger, iterations: 1000, seed: 3, charger: .v1_5, csms: .v1_6)
    }

    @Test func randomValid1_6CSMSCallsYieldValidFramesOrACallErrorForA1_5Charger() throws {
        try run(from: .csms, iterations: 1000, seed: 4, charger: .v1_5, csms: .v1_6)
    }

    @Test func randomValid1_5ChargerCallsYieldValidFramesOrACallErrorThroughTheChainTo2_0_1() throws {
        try run(from: .charger, iterations: 1000, seed: 5, charger: .v1_5, csms: .v2_0_1)
    }

    @Test func randomValid2_0_1CSMSCallsYieldValidFramesOrACallErrorThroughTheChainTo1_5() throws {
        try run(from: .csms, iterations: 1000, seed: 6, charger: .v1_5, csms: .v2_0_1)
    }
}
