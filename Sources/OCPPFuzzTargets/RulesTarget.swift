import Foundation
import OCPP
import OCPPRules

/// The translating session with the repository's rules (ocpp1.6 charger → ocpp2.0.1 CSMS), fed from both sides.
///
/// Two input forms:
/// - **frames** (the input starts with `c`, `s` or `#`): one frame per line, `c` for a frame from the charger and
///   `s` for one from the CSMS, then the OCPP-J text. An answer whose message id is `@` answers the CALL the
///   session sent that side and has not had answered. A line `#lenient` before the first frame accepts the rule
///   file's first tolerance profile from the charger.
/// - **structure-aware** (anything else): the first byte sets the tolerance; then, up to eight times, a byte
///   picks a side and an action it sends, a valid payload is built from the definition and mutated up to three
///   times, and every CALL the session sends is answered — valid, mutated, a CALLERROR, a broken answer, a
///   timeout, or not at all — as further bytes choose.
///
/// Invariants on everything the session sends: every frame reads back the same from its wire text (no infinity or
/// NaN, no id too long); every CALL is a message the receiving side accepts, conforming to its definition; every
/// CALLRESULT conforms to the response definition of the CALL it answers; every answer answers a CALL that side
/// sent and that is still open.
struct RulesTarget {
    let rules: RuleSet
    static let now = "2026-01-01T10:00:00Z"

    func run(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        if first == UInt8(ascii: "c") || first == UInt8(ascii: "s") || first == UInt8(ascii: "#") {
            runFrames(bytes)
        } else {
            runStructured(bytes)
        }
    }

    // MARK: Frames

    func runFrames(_ bytes: UnsafeRawBufferPointer) {
        var driver: Driver?
        var lenient = false
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let text = UnsafeRawBufferPointer(rebasing: line)
            if text.elementsEqual("#lenient".utf8) {
                lenient = true
                continue
            }
            let side: Side
            switch text.first {
            case UInt8(ascii: "c"): side = .charger
            case UInt8(ascii: "s"): side = .csms
            default: continue
            }
            guard case .success(var frame) = RPCFrame.parse(text.dropFirst(), version: rules.version(of: side)) else {
                continue  // The proxy answers a broken frame itself; the session never sees it.
            }
            if driver == nil { driver = Driver(rules: rules, lenient: lenient) }
            switch frame {
            case .callResult("@", let payload):
                guard let id = driver!.awaiting(on: side) else { continue }
                frame = .callResult(id: id, payload: payload)
            case .callError("@", let code, let description, let details):
                guard let id = driver!.awaiting(on: side) else { continue }
                frame = .callError(id: id, code: code, description: description, details: details)
            default: break
            }
            driver!.feed(frame, from: side)
        }
    }

    // MARK: Structure-aware

    func runStructured(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        var driver = Driver(rules: rules, lenient: input.byte() & 1 == 1)
        driver.uniqueIds = true
        var step = 0
        repeat {
            let choice = input.byte()
            let side: Side = choice & 1 == 0 ? .charger : .csms
            let definitions = rules.definitions(of: side)
            let actions = definitions.actions(sentBy: side)
            guard !actions.isEmpty else { return }
            let action = actions[input.below(actions.count)]
            var payload = ValueSampler.value(definitions.messages[action]!.request, &input)
            for _ in 0..<(choice >> 1) % 4 {
                payload = ValueMutator.mutate(payload, shape: definitions.messages[action]!.request, &input)
            }
            driver.feed(.call(id: "f\(step)", action: action, payload: payload), from: side)
            // Answer what the session sent, until it waits for nothing the input still answers.
            var answered = 0
            while answered < 32, let call = driver.nextUnanswered() {
                answered += 1
                answer(call, driver: &driver, &input)
            }
            step += 1
        } while !input.isExhausted && step < 8
    }

    private func answer(_ call: Driver.SentCall, driver: inout Driver, _ input: inout FuzzInput) {
        let response =
            rules.definitions(of: call.side).messages[call.action]?.response ?? .object(.init(fields: [], open: true))
        let how = input.byte() % 16
        switch how {
        case 0...9:
            var payload = ValueSampler.value(response, &input)
            if how >= 8 {
                for _ in 0..<(1 + input.below(3)) { payload = ValueMutator.mutate(payload, shape: response, &input) }
            }
            driver.feed(.callResult(id: call.id, payload: payload), from: call.side)
        case 10, 11:
            let codes = RPCErrorCode.allCases.map { $0.name(in: rules.version(of: call.side)) } + ["", "Bogus"]
            driver.feed(
                .callError(
                    id: call.id, code: codes[input.below(codes.count)], description: "from the fuzzer",
                    details: input.bool() ? .object([:]) : .object(["x": .number(1e300)])),
                from: call.side)
        case 12:
            driver.take(
                driver.session.receiveBrokenAnswer(
                    id: call.id, from: call.side, description: "broken", now: Self.now))
            driver.answered(call)
        case 13:
            driver.take(driver.session.timedOut(side: call.side, messageId: call.id, now: Self.now))
            driver.answered(call)
        default:
            // Never answered: later CALLs to that side wait behind it.
            driver.answered(call)
        }
    }
}

/// One session, what it sent, and the checks on its output.
struct Driver {
    struct SentCall {
        var side: Side
        var id: String
        var action: String
    }

    let rules: RuleSet
    let session: TranslationSession
    /// With ids the driver chose and never repeats, every CALL gets at most one answer.
    var uniqueIds = false
    /// CALLs the session sent, oldest first, not yet handled by the driver.
    private var unanswered: [SentCall] = []
    /// CALLs the session sent and that have had no answer, by side and id (what `@` and answers refer to).
    private var open: [Side: [String: String]] = [:]
    /// CALLs fed to the session: side → id → action; nil when the id came with different actions (its answer
    /// cannot be told apart, and is not checked against a definition).
    private var fed: [Side: [String: String?]] = [:]
    private var answersSent: [Side: Set<String>] = [:]

    init(rules: RuleSet, lenient: Bool) {
        self.rules = rules
        let tolerance =
            lenient ? rules.tolerance.keys.sorted().first.flatMap { rules.tolerance[$0] } ?? .strict : .strict
        session = TranslationSession(
            rules: rules, state: TranslationState(), ids: CountingIdentifiers(), chargerTolerance: tolerance,
            messageIdPrefix: "p")
    }

    /// The CALL the session sent `side` and still awaits the answer to.
    func awaiting(on side: Side) -> String? {
        open[side]?.keys.sorted().first { session.side(awaiting: $0) == side }
    }

    mutating func nextUnanswered() -> SentCall? {
        unanswered.isEmpty ? nil : unanswered.removeFirst()
    }

    mutating func answered(_ call: SentCall) {
        open[call.side]?[call.id] = nil
    }

    mutating func feed(_ frame: RPCFrame, from side: Side) {
        switch frame {
        case .call(let id, let action, _):
            switch fed[side]?[id] {
            case nil: fed[side, default: [:]][id] = .some(action)
            case let known?: if known != action { fed[side]![id] = .some(nil) }
            }
        case .callResult(let id, _), .callError(let id, _, _, _):
            open[side]?[id] = nil
        default: break
        }
        if Self.trace { Self.print("\(side) → proxy: \(frame.json.jsonText)") }
        take(session.receive(frame, from: side, now: RulesTarget.now))
    }

    mutating func take(_ output: TranslationOutput) {
        if Self.trace {
            for log in output.logs { Self.print("  log \(log.level): \(log.message)") }
            for outgoing in output.frames { Self.print("  proxy → \(outgoing.side): \(outgoing.frame.json.jsonText)") }
        }
        for outgoing in output.frames { check(outgoing) }
    }

    /// `OCPP_FUZZ_TRACE=1`: every frame in and out, and the session's logs, on stderr (for replaying an input).
    static let trace = ProcessInfo.processInfo.environment["OCPP_FUZZ_TRACE"] == "1"

    static func print(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private mutating func check(_ outgoing: OutgoingFrame) {
        let side = outgoing.side
        let version = rules.version(of: side)
        let frame = outgoing.frame
        FuzzInvariant.check(
            !JSONSameness.hasNonFiniteNumber(frame.json),
            "a frame to the \(side) holds an infinity or NaN: \(frame.json.jsonText.prefix(400))")
        switch RPCFrame.parse(frame.json.wireBytes, version: version) {
        case .success(let again):
            FuzzInvariant.check(
                JSONSameness.same(again.json, frame.json),
                "a frame to the \(side) reads back differently: \(frame.json.jsonText.prefix(400))")
        case .failure(let error):
            FuzzInvariant.fail(
                "a frame to the \(side) is not a valid \(version) frame (\(error)): \(frame.json.jsonText.prefix(400))")
        }
        switch frame {
        case .call(let id, let action, let payload):
            guard let message = rules.definitions(of: side).messages[action] else {
                FuzzInvariant.fail("the session sent \(action), which \(version) does not define")
            }
            FuzzInvariant.check(
                message.sentBy.includes(side.other), "the session sent \(action) to the \(side), who sends it")
            if let violation = message.request.violation(of: payload) {
                FuzzInvariant.fail(
                    "the session sent an invalid \(action) to the \(side) (\(violation)): \(payload.jsonText.prefix(400))"
                )
            }
            FuzzInvariant.check(open[side]?[id] == nil, "the session reused message id \(id) on the \(side)")
            open[side, default: [:]][id] = action
            unanswered.append(.init(side: side, id: id, action: action))
        case .callResult(let id, let payload):
            guard let action = fed[side]?[id] else {
                FuzzInvariant.fail("a CALLRESULT to the \(side) answers \(id), which the \(side) did not send")
            }
            if let action, let response = rules.definitions(of: side).messages[action]?.response,
                let violation = response.violation(of: payload)
            {
                FuzzInvariant.fail("the answer to \(action) is invalid (\(violation)): \(payload.jsonText.prefix(400))")
            }
            answer(id, to: side)
        case .callError(let id, _, _, _):
            FuzzInvariant.check(
                fed[side]?[id] != nil, "a CALLERROR to the \(side) answers \(id), which the \(side) did not send")
            answer(id, to: side)
        case .send, .callResultError:
            FuzzInvariant.fail("the session sent a \(frame.messageType) frame")
        }
    }

    private mutating func answer(_ id: String, to side: Side) {
        if uniqueIds {
            FuzzInvariant.check(
                answersSent[side, default: []].insert(id).inserted, "the \(side)'s CALL \(id) was answered twice")
        }
    }
}
