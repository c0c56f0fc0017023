import OCPP

/// A frame the translation wants sent, on the charger's link or the CSMS's.
public struct OutgoingFrame: Sendable, Equatable {
    public var side: Side
    public var frame: RPCFrame
    /// A CALLERROR the other peer sent, passed on (with its code renamed), not one the proxy made.
    public var relayed = false

    public init(side: Side, frame: RPCFrame, relayed: Bool = false) {
        self.side = side
        self.frame = frame
        self.relayed = relayed
    }
}

/// A line for the proxy's log, produced where translation met a problem.
public struct TranslationLog: Sendable, Equatable {
    public enum Level: String, Sendable { case warning, error }
    public var level: Level
    public var message: String
}

/// What handling one frame produced: frames to send in this order, after the state changes are persisted.
public struct TranslationOutput: Sendable {
    public var frames: [OutgoingFrame] = []
    public var changes: [StateChange] = []
    public var logs: [TranslationLog] = []
    /// CALLs a rule answered itself (`answer:`) instead of passing them on: who sent them, and their action.
    public var answered: [(from: Side, action: String)] = []
}

/// The translating half of one charger's session, without any I/O: CALLs and answers go in, frames to send
/// and state to persist come out. It keeps the exchanges in progress and sends at most one CALL per link at a
/// time (OCPP-J 1.6 §4.1.1, 2.0.1 part 4 §4.1.1): a CALL that would be the second waits for the first's answer.
///
/// Two rules make transaction messages safe to retry:
/// - A side's CALLs are translated one at a time, in the order they came: a CALL that arrives while an exchange the
///   same side started is in progress waits for it (it is checked at once, and answered at once when invalid). So a
///   MeterValues that follows a StartTransaction is translated with what StartTransaction's answer taught.
/// - What building a CALL changes in the state (a new transaction, a seqNo, a remote start taken) takes effect when
///   the peer answers that CALL with a CALLRESULT; a CALLERROR, a timeout or a failed translation drops it. So a
///   StartTransaction the CSMS refused leaves no transaction behind, and the charger's retry is sent with the same
///   seqNo (and, through `tx.begin`'s key, the same UUID). Changes made while answering take effect at once.
public final class TranslationSession {
    public let rules: RuleSet
    public private(set) var state: TranslationState
    private let ids: IdentifierSource
    private let profile: ChargerProfile
    /// When the charger's connection began, for `connectedAt()`.
    private let connectedAt: String?
    private let chargerTolerance: Tolerance
    private let messageIdPrefix: String
    private var messageCounter = 0

    private var exchanges: [ExchangeKey: Exchange] = [:]
    private var outstanding: [Side: Outstanding] = [:]
    private var queues: [Side: [Outstanding]] = [:]
    /// The exchange each side's CALLs are in, and the CALLs of that side waiting for it to finish.
    private var running: [Side: Exchange] = [:]
    private var waiting: [Side: [(exchange: Exchange, variants: [RuleVariant])]] = [:]
    private var output = TranslationOutput()

    struct ExchangeKey: Hashable {
        var origin: Side
        var id: String
    }

    struct Outstanding {
        var id: String
        var action: String
        var payload: JSONValue
        var exchange: Exchange
    }

    public init(
        rules: RuleSet, state: TranslationState, ids: IdentifierSource, chargerTolerance: Tolerance = .strict,
        messageIdPrefix: String, profile: ChargerProfile = ChargerProfile(), connectedAt: String? = nil
    ) {
        self.rules = rules
        self.state = state
        self.ids = ids
        self.profile = profile
        self.connectedAt = connectedAt
        self.chargerTolerance = chargerTolerance
        self.messageIdPrefix = messageIdPrefix
    }

    /// CALLs the proxy has sent on `side` and not had answered (0 or 1), and CALLs waiting behind it: its own
    /// queued CALLs and the other side's CALLs waiting for that side's exchange in progress.
    public func pendingCount(on side: Side) -> (sent: Int, waiting: Int) {
        (outstanding[side] == nil ? 0 : 1, (queues[side]?.count ?? 0) + (waiting[side.other]?.count ?? 0))
    }

    public var exchangesInProgress: Int { exchanges.count }

    /// Exchanges `side`'s CALLs started that are not finished: answered and follow-ups done. Each has at most
    /// one CALL of the proxy out or queued, so bounding these bounds the queues.
    public func exchangesInProgress(from side: Side) -> Int {
        exchanges.keys.reduce(0) { $0 + ($1.origin == side ? 1 : 0) }
    }

    /// The side the proxy sent CALL `messageId` to, while it awaits the answer.
    public func side(awaiting messageId: String) -> Side? {
        [Side.charger, .csms].first { outstanding[$0]?.id == messageId }
    }

    // MARK: Input

    /// Handles one frame `side` sent; `now` is its arrival time as RFC 3339 UTC text.
    public func receive(_ frame: RPCFrame, from side: Side, now: String) -> TranslationOutput {
        output = TranslationOutput()
        switch frame {
        case .call(let id, let action, let payload):
            receiveCall(id: id, action: action, payload: payload, from: side, now: now)
        case .callResult(let id, let payload):
            receiveAnswer(id: id, from: side, .result(payload), now: now)
        case .callError(let id, let code, let description, let details):
            receiveAnswer(id: id, from: side, .error(code: code, description: description, details: details), now: now)
        case .send, .callResultError:
            log(
                .warning,
                "dropped a \(frame.messageType) frame from the \(side): \(rules.version(of: side)) has no such frame")
        }
        startWaiting(now: now)
        return take()
    }

    /// A frame from `side` that answers the proxy's CALL `messageId` but is not a well-formed RPC frame.
    public func receiveBrokenAnswer(id: String, from side: Side, description: String, now: String)
        -> TranslationOutput
    {
        output = TranslationOutput()
        if let call = outstanding[side], call.id == id {
            finishOutstanding(on: side)
            continueExchange(
                call.exchange,
                with: .error(
                    code: RPCErrorCode.protocolError.name(in: rules.version(of: call.exchange.origin)),
                    description: description, details: .object([:])), now: now, alreadyMapped: true)
        }
        startWaiting(now: now)
        return take()
    }

    /// The CALL `messageId` the proxy sent on `side` got no answer in time.
    public func timedOut(side: Side, messageId: String, now: String) -> TranslationOutput {
        output = TranslationOutput()
        if let call = outstanding[side], call.id == messageId {
            log(.warning, "\(call.action) sent to the \(side) (message id \(messageId)) got no answer in time")
            finishOutstanding(on: side)
            continueExchange(call.exchange, with: .timeout, now: now)
        }
        startWaiting(now: now)
        return take()
    }

    private func take() -> TranslationOutput {
        defer { output = TranslationOutput() }
        return output
    }

    enum Answer {
        case result(JSONValue)
        case error(code: String, description: String, details: JSONValue)
        case timeout
    }

    private func receiveCall(id: String, action: String, payload: JSONValue, from side: Side, now: String) {
        let version = rules.version(of: side)
        let key = ExchangeKey(origin: side, id: id)
        if exchanges[key] != nil {
            // 2.0.1 part 4 §4.2.3: a CALL whose id is already being handled.
            sendError(
                to: side, id: id, version.isTwoX ? .rpcFrameworkError : .genericError,
                "a CALL with message id \(id) is already being handled")
            return
        }
        guard let message = rules.definitions(of: side).messages[action], message.sentBy.includes(side) else {
            sendError(
                to: side, id: id, .notImplemented,
                "\(action) is not a CALL a \(side == .charger ? "charging station" : "CSMS") sends in \(version)")
            return
        }
        let tolerance = side == .charger ? chargerTolerance : .strict
        let request = message.request.tolerate(payload, tolerance)
        if let violation = message.request.violation(of: request) {
            sendError(to: side, id: id, violation.errorCode, "\(action): \(violation)")
            return
        }
        guard let rule = rules.rules(sentBy: side)[action] else {
            sendError(to: side, id: id, .notSupported, "the proxy has no rule for \(action)")
            return
        }
        let exchange = Exchange(origin: side, originId: id, action: action, call: request)
        exchanges[key] = exchange
        waiting[side, default: []].append((exchange, rule.variants))
    }

    /// Starts the next waiting CALL of each side whose previous exchange is finished (and the next, when that one
    /// finishes at once).
    private func startWaiting(now: String) {
        for side in [Side.charger, .csms] {
            while running[side].map({ exchanges[ExchangeKey(origin: side, id: $0.originId)] !== $0 }) ?? true,
                var queue = waiting[side], !queue.isEmpty
            {
                let next = queue.removeFirst()
                waiting[side] = queue.isEmpty ? nil : queue
                running[side] = next.exchange
                start(next.exchange, variants: next.variants, now: now)
            }
            if let current = running[side], exchanges[ExchangeKey(origin: side, id: current.originId)] !== current {
                running[side] = nil
            }
        }
    }

    private func receiveAnswer(id: String, from side: Side, _ answer: Answer, now: String) {
        guard let call = outstanding[side], call.id == id else {
            log(.warning, "dropped an answer from the \(side) to message id \(id): no CALL of the proxy awaits it")
            return
        }
        finishOutstanding(on: side)
        var answer = answer
        if case .result(let payload) = answer, let shape = rules.definitions(of: side).messages[call.action]?.response {
            let repaired = shape.tolerate(payload, side == .charger ? chargerTolerance : .strict)
            if let violation = shape.violation(of: repaired) {
                let who = side == .charger ? "charging station" : "CSMS"
                log(.warning, "the \(who)'s answer to \(call.action) does not match its definition: \(violation)")
                answer = .error(
                    code: violation.errorCode.name(in: rules.version(of: call.exchange.origin)),
                    description: "the \(who)'s answer to \(call.action) is invalid: \(violation)", details: .object([:])
                )
                continueExchange(call.exchange, with: answer, now: now, alreadyMapped: true)
                return
            }
            answer = .result(repaired)
        }
        continueExchange(call.exchange, with: answer, now: now)
    }

    // MARK: Exchanges

    final class Exchange {
        let origin: Side
        let originId: String
        let action: String
        let call: JSONValue
        var variables: JSONObject
        var stage: Stage = .idle
        var followUps: [FollowUp] = []
        var answered = false
        /// State changes made while building the CALL in flight: kept when it is answered with a CALLRESULT.
        var staged: [StateChange] = []

        init(origin: Side, originId: String, action: String, call: JSONValue) {
            self.origin = origin
            self.originId = originId
            self.action = action
            self.call = call
            self.variables = ["call": call]
        }
    }

    enum Stage {
        case idle
        /// Waiting for the answer to a forwarded CALL; `element` is set inside a fanout.
        case forwarded(
            action: String, result: Template, sent: JSONValue,
            bindings: [(name: String, expression: Expression, line: Int)])
        case fanout(Fanout)
        /// A `then` step's CALL in flight: its payload (sent again on failure) and which attempt this is.
        case followUp(index: Int, action: String, side: Side, payload: JSONValue, attempt: Int)
    }

    struct Fanout {
        var items: [JSONValue]
        var index: Int
        var results: [JSONValue]
        var variants: [RuleVariant]
        var result: Template
        /// The item rule waiting for its answer.
        var pending: (action: String, result: Template, sent: JSONValue)?
    }

    /// Runs `body` against the translation state as `exchange` sees it (with the changes it has staged) and stages
    /// its changes with the exchange only when it succeeds; ``commit(_:)`` or ``discard(_:)`` decides their fate.
    private func attempt<T>(
        _ exchange: Exchange, now: String, _ body: (Evaluator) throws(EvaluationError) -> T
    ) -> T? {
        var view = state
        for change in exchange.staged { view.apply(change) }
        let evaluator = Evaluator(
            rules: rules, state: view, now: now, ids: ids, profile: profile, connectedAt: connectedAt)
        do {
            let value = try body(evaluator)
            exchange.staged += evaluator.changes
            return value
        } catch {
            let code: RPCErrorCode = error.kind == .data ? .propertyConstraintViolation : .internalError
            // With the frame it came from, so that a rule problem can be reproduced with `ocpp-proxy translate`.
            log(
                error.kind == .data ? .warning : .error,
                "\(exchange.action): \(error.message). received: \(Self.excerpt(exchange.call))")
            fail(exchange, code, "\(exchange.action) could not be translated: \(error.message)")
            return nil
        }
    }

    /// The exchange's staged changes take effect: they are applied and go to the state store.
    private func commit(_ exchange: Exchange) {
        guard !exchange.staged.isEmpty else { return }
        for change in exchange.staged { state.apply(change) }
        output.changes += exchange.staged
        exchange.staged = []
    }

    /// The CALL the staged changes were made for was refused, not answered, or not sent: they never happened.
    private func discard(_ exchange: Exchange) {
        exchange.staged = []
    }

    private func scope(_ exchange: Exchange, payload: JSONValue, element: JSONValue? = nil) -> Scope {
        Scope(payload: payload, element: element, variables: exchange.variables)
    }

    /// Picks the first variant whose `when` holds and evaluates its `let` bindings into the exchange.
    private func choose(
        _ variants: [RuleVariant], _ exchange: Exchange, payload: JSONValue, element: JSONValue?, evaluator: Evaluator
    ) throws(EvaluationError) -> RuleVariant {
        for variant in variants {
            if let condition = variant.condition {
                let holds = try evaluator.evaluate(condition, scope(exchange, payload: payload, element: element))
                if !Evaluator.truthy(holds) { continue }
            }
            for binding in variant.bindings {
                exchange.variables[binding.name] = try evaluator.evaluate(
                    binding.expression, scope(exchange, payload: payload, element: element))
            }
            if let warning = variant.warning {
                let text = try evaluator.evaluate(
                    warning.expression, scope(exchange, payload: payload, element: element))
                log(.warning, "\(exchange.action): \(Evaluator.string(text) ?? "")")
            }
            return variant
        }
        throw EvaluationError(kind: .rule, message: "no alternative of the rule applies")
    }

    private func start(_ exchange: Exchange, variants: [RuleVariant], now: String) {
        enum Step {
            case answer(JSONValue, [FollowUp])
            case forward(String, JSONValue, Template, [FollowUp], [(name: String, expression: Expression, line: Int)])
            case fanout([JSONValue], [RuleVariant], Template, [FollowUp])
        }
        let step = attempt(exchange, now: now) { evaluator throws(EvaluationError) -> Step in
            let variant = try choose(variants, exchange, payload: exchange.call, element: nil, evaluator: evaluator)
            let s = scope(exchange, payload: exchange.call)
            switch variant.kind {
            case .answer(let template):
                return .answer(try evaluator.build(template, s), variant.followUps)
            case .forward(let action, let request, let result):
                return .forward(
                    action, try evaluator.build(request, s), result, variant.followUps, variant.resultBindings)
            case .fanout(let list, let item, let result):
                let items = try evaluator.evaluate(list, s)
                guard case .array(let elements) = items else {
                    if items == .null { return .fanout([], item, result, variant.followUps) }
                    throw EvaluationError(kind: .data, message: "foreach needs a list, got \(items.jsonText)")
                }
                return .fanout(elements, item, result, variant.followUps)
            }
        }
        guard let step else { return }
        switch step {
        case .answer(let payload, let followUps):
            exchange.followUps = followUps
            output.answered.append((exchange.origin, exchange.action))
            answer(exchange, payload, now: now)
        case .forward(let action, let payload, let result, let followUps, let bindings):
            exchange.followUps = followUps
            exchange.stage = .forwarded(action: action, result: result, sent: payload, bindings: bindings)
            call(exchange, action: action, payload: payload)
        case .fanout(let items, let item, let result, let followUps):
            exchange.followUps = followUps
            exchange.stage = .fanout(Fanout(items: items, index: 0, results: [], variants: item, result: result))
            advanceFanout(exchange, now: now)
        }
    }

    private func advanceFanout(_ exchange: Exchange, now: String) {
        while case .fanout(var fanout) = exchange.stage {
            if fanout.index >= fanout.items.count {
                exchange.variables["results"] = .array(fanout.results)
                let template = fanout.result
                exchange.stage = .idle
                guard
                    let payload = attempt(
                        exchange, now: now,
                        { e throws(EvaluationError) in
                            try e.build(template, scope(exchange, payload: exchange.call))
                        })
                else { return }
                answer(exchange, payload, now: now)
                return
            }
            let element = fanout.items[fanout.index]
            exchange.variables["index"] = .integer(Int64(fanout.index))
            enum ItemStep {
                case local(JSONValue)
                case call(String, JSONValue, Template)
            }
            let variants = fanout.variants
            guard
                let step = attempt(
                    exchange, now: now,
                    { e throws(EvaluationError) -> ItemStep in
                        let variant = try choose(
                            variants, exchange, payload: exchange.call, element: element, evaluator: e)
                        let s = scope(exchange, payload: exchange.call, element: element)
                        switch variant.kind {
                        case .answer(let template): return .local(try e.build(template, s))
                        case .forward(let action, let request, let result):
                            return .call(action, try e.build(request, s), result)
                        case .fanout: throw EvaluationError(kind: .rule, message: "an item rule cannot fan out again")
                        }
                    })
            else { return }
            switch step {
            case .local(let result):
                fanout.results.append(result)
                fanout.index += 1
                exchange.stage = .fanout(fanout)
            case .call(let action, let payload, let result):
                fanout.pending = (action, result, payload)
                exchange.stage = .fanout(fanout)
                call(exchange, action: action, payload: payload)
                return
            }
        }
    }

    private func continueExchange(_ exchange: Exchange, with answer: Answer, now: String, alreadyMapped: Bool = false) {
        let target = exchange.origin.other
        switch exchange.stage {
        case .forwarded(let action, let result, let sent, let bindings):
            exchange.stage = .idle
            switch answer {
            case .result(let payload):
                commit(exchange)
                exchange.variables["sent"] = sent
                guard
                    let built = attempt(
                        exchange, now: now,
                        { e throws(EvaluationError) in
                            for binding in bindings {
                                exchange.variables[binding.name] = try e.evaluate(
                                    binding.expression, scope(exchange, payload: payload))
                            }
                            return try e.build(result, scope(exchange, payload: payload))
                        })
                else { return }
                self.answer(exchange, built, now: now)
            case .error(let code, let description, let details):
                let mapped = alreadyMapped ? code : rules.errorCode(code, sentBy: target)
                relayError(exchange, code: mapped, description: description, details: details)
            case .timeout:
                fail(
                    exchange, .internalError,
                    "\(action): the \(target == .charger ? "charging station" : "CSMS") did not answer in time")
            }
        case .fanout(var fanout):
            guard let pending = fanout.pending else { return }
            fanout.pending = nil
            switch answer {
            case .result(let payload):
                commit(exchange)
                exchange.variables["sent"] = pending.sent
                let element = fanout.items[fanout.index]
                guard
                    let built = attempt(
                        exchange, now: now,
                        { e throws(EvaluationError) in
                            try e.build(pending.result, scope(exchange, payload: payload, element: element))
                        })
                else { return }
                fanout.results.append(built)
                fanout.index += 1
                exchange.stage = .fanout(fanout)
                advanceFanout(exchange, now: now)
            case .error(let code, let description, let details):
                exchange.stage = .idle
                let mapped = alreadyMapped ? code : rules.errorCode(code, sentBy: target)
                relayError(exchange, code: mapped, description: "\(pending.action): \(description)", details: details)
            case .timeout:
                exchange.stage = .idle
                fail(
                    exchange, .internalError,
                    "\(pending.action): the \(target == .charger ? "charging station" : "CSMS") did not answer in time")
            }
        case .followUp(let index, let action, let side, let sent, let attempt):
            exchange.stage = .idle
            let failure: String
            switch answer {
            case .result(let payload):
                commit(exchange)
                if let name = exchange.followUps[index].name { exchange.variables[name] = payload }
                runFollowUps(exchange, from: index + 1, now: now)
                return
            case .error(let code, let description, _):
                failure = "failed: \(code) \(description)"
            case .timeout:
                failure = "got no answer"
            }
            // The proxy sends its own CALLs as a station sends transaction messages: again, with the same content
            // (a seqNo it used stays its own), a few times; the exchange's next steps and the side's next CALL
            // wait for it.
            guard attempt < Self.followUpAttempts else {
                log(
                    .warning,
                    "\(exchange.action): the follow-up \(action) to the \(side) \(failure) (attempt \(attempt) of \(Self.followUpAttempts)); not sent again, later steps skipped: \(Self.excerpt(sent))"
                )
                close(exchange)
                return
            }
            log(
                .warning,
                "\(exchange.action): the follow-up \(action) to the \(side) \(failure) (attempt \(attempt) of \(Self.followUpAttempts)); sending it again"
            )
            exchange.stage = .followUp(index: index, action: action, side: side, payload: sent, attempt: attempt + 1)
            enqueue(Outstanding(id: nextMessageId(), action: action, payload: sent, exchange: exchange), on: side)
        case .idle:
            break
        }
    }

    private func runFollowUps(_ exchange: Exchange, from index: Int, now: String) {
        var index = index
        while index < exchange.followUps.count {
            let step = exchange.followUps[index]
            let built = attempt(exchange, now: now) { e throws(EvaluationError) -> JSONValue? in
                let s = scope(exchange, payload: exchange.call)
                if let condition = step.condition, !Evaluator.truthy(try e.evaluate(condition, s)) { return nil }
                return try e.build(step.request, s)
            }
            guard let built else { return }
            guard let payload = built else {
                index += 1
                continue
            }
            guard let shape = rules.definitions(of: step.side).messages[step.action]?.request else {
                log(
                    .error,
                    "\(exchange.action): the follow-up \(step.action) is not a message of \(rules.version(of: step.side))"
                )
                close(exchange)
                return
            }
            if let violation = shape.violation(of: payload) {
                log(
                    .error,
                    "\(exchange.action): the follow-up \(step.action) would be invalid (\(violation)), not sent: \(payload.jsonText)"
                )
                close(exchange)
                return
            }
            // What building the step changed takes effect as it is sent: nobody else sends this CALL again, so a
            // seqNo it took must never go to another message (a CSMS that got it would drop that one).
            commit(exchange)
            exchange.stage = .followUp(index: index, action: step.action, side: step.side, payload: payload, attempt: 1)
            enqueue(
                Outstanding(id: nextMessageId(), action: step.action, payload: payload, exchange: exchange),
                on: step.side)
            return
        }
        close(exchange)
    }

    // MARK: Sending

    private func call(_ exchange: Exchange, action: String, payload: JSONValue) {
        let side = exchange.origin.other
        guard let shape = rules.definitions(of: side).messages[action]?.request else {
            fail(exchange, .internalError, "the rule sends \(action), which \(rules.version(of: side)) does not define")
            return
        }
        if let violation = shape.violation(of: payload) {
            // A translation that breaks the target's definition is a bug in the rules: never sent.
            log(
                .error,
                "translated \(exchange.action) into an invalid \(action) (\(violation)); not sent. received: \(exchange.call.jsonText) translated: \(payload.jsonText)"
            )
            exchange.stage = .idle
            fail(exchange, .internalError, "the proxy could not translate \(exchange.action) into a valid \(action)")
            return
        }
        enqueue(Outstanding(id: nextMessageId(), action: action, payload: payload, exchange: exchange), on: side)
    }

    private func enqueue(_ call: Outstanding, on side: Side) {
        if outstanding[side] == nil {
            outstanding[side] = call
            output.frames.append(
                .init(side: side, frame: .call(id: call.id, action: call.action, payload: call.payload)))
        } else {
            queues[side, default: []].append(call)
        }
    }

    /// The answer to the CALL outstanding on `side` arrived (or never will): the next waiting CALL goes out.
    private func finishOutstanding(on side: Side) {
        outstanding[side] = nil
        while var queue = queues[side], !queue.isEmpty {
            let next = queue.removeFirst()
            queues[side] = queue
            // An exchange that already failed does not send its remaining CALLs.
            guard exchanges[ExchangeKey(origin: next.exchange.origin, id: next.exchange.originId)] === next.exchange
            else { continue }
            outstanding[side] = next
            output.frames.append(
                .init(side: side, frame: .call(id: next.id, action: next.action, payload: next.payload)))
            return
        }
    }

    /// How many times the proxy sends a `then` step's CALL before it gives up on it.
    static let followUpAttempts = 3

    private func nextMessageId() -> String {
        messageCounter &+= 1
        return messageIdPrefix + String(messageCounter)
    }

    private func answer(_ exchange: Exchange, _ payload: JSONValue, now: String) {
        let shape = rules.definitions(of: exchange.origin).messages[exchange.action]?.response
        if let shape, let violation = shape.violation(of: payload) {
            log(
                .error,
                "the answer to \(exchange.action) would be invalid (\(violation)); not sent. call: \(exchange.call.jsonText) answer: \(payload.jsonText)"
            )
            fail(exchange, .internalError, "the proxy could not build a valid answer to \(exchange.action)")
            return
        }
        commit(exchange)
        exchange.answered = true
        output.frames.append(.init(side: exchange.origin, frame: .callResult(id: exchange.originId, payload: payload)))
        runFollowUps(exchange, from: 0, now: now)
    }

    private func fail(_ exchange: Exchange, _ code: RPCErrorCode, _ description: String) {
        if !exchange.answered {
            sendError(to: exchange.origin, id: exchange.originId, code, description)
        }
        close(exchange)
    }

    private func relayError(_ exchange: Exchange, code: String, description: String, details: JSONValue) {
        output.frames.append(
            .init(
                side: exchange.origin,
                frame: .callError(
                    id: exchange.originId, code: code, description: String(description.prefix(255)), details: details),
                relayed: true))
        close(exchange)
    }

    private func close(_ exchange: Exchange) {
        // Whatever is still staged belongs to a CALL that failed or was never sent.
        discard(exchange)
        exchange.answered = true
        exchanges.removeValue(forKey: ExchangeKey(origin: exchange.origin, id: exchange.originId))
    }

    private func sendError(to side: Side, id: String, _ code: RPCErrorCode, _ description: String) {
        output.frames.append(
            .init(
                side: side,
                frame: .makeCallError(id: id, code: code, description: description, version: rules.version(of: side))))
    }

    /// A payload for a log line: enough to recognise and replay it, never the whole of a large frame.
    static func excerpt(_ payload: JSONValue) -> String {
        let text = payload.jsonText
        return text.utf8.count > 1000 ? String(decoding: text.utf8.prefix(1000), as: UTF8.self) + "…" : text
    }

    private func log(_ level: TranslationLog.Level, _ message: String) {
        output.logs.append(.init(level: level, message: message))
    }
}
