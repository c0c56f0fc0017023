import OCPP
import TestSupport
import Testing

@testable import OCPPRules

/// Draws for the simulations, from the suite's seeded SplitMix64 (a failing seed replays the same run).
extension SplitMix64 {
    mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
}

/// What a simulated CSMS does with the CALL the proxy sent it.
enum CSMSOutcome: CaseIterable {
    /// Processes it and answers.
    case answer
    /// Answers with a CALLERROR; nothing happened.
    case refuse
    /// The CALL never arrived: the proxy times out.
    case lost
    /// Processed, but the answer never reached the proxy: it times out, and the answer may arrive late.
    case answerLost
    /// The proxy restarts (SIGKILL) while the CALL is out; the CSMS may or may not have processed it.
    case restart

    static func draw(_ random: inout SplitMix64) -> CSMSOutcome {
        switch random.next() % 100 {
        case 0..<62: return .answer
        case 62..<74: return .refuse
        case 74..<84: return .lost
        case 84..<94: return .answerLost
        default: return .restart
        }
    }
}

/// The proxy under test as it runs: a translation chain over the repository's rule files whose state changes are
/// "written to disk" (kept in `stored`) as they come out, and a restart that builds a new chain from what was
/// stored — what a SIGKILL and a new process do.
struct SimulatedProxy {
    let ruleSets: [RuleSet]
    var stored = ChainState()
    var chain: TranslationChain
    var clock: Int64 = 1_767_261_600  // 2026-01-01T10:00:00Z
    var restarts = 0

    init(ruleSets: [RuleSet]) {
        self.ruleSets = ruleSets
        chain = Self.start(ruleSets, ChainState(), connectedAt: DateTimeText(seconds: clock).utcText)
    }

    static func start(_ ruleSets: [RuleSet], _ state: ChainState, connectedAt: String) -> TranslationChain {
        TranslationChain(
            ruleSets: ruleSets, state: state, ids: RandomIdentifiers(), messageIdPrefix: "p",
            profile: ChargerProfile(identity: "FUZZ-1"), connectedAt: connectedAt)
    }

    var now: String { DateTimeText(seconds: clock).utcText }

    mutating func tick() { clock += 7 }

    /// Persists the output's state changes (before its frames go anywhere) and returns its frames.
    mutating func take(_ output: ChainOutput) -> [OutgoingFrame] {
        for change in output.changes { stored.apply(change) }
        return output.frames
    }

    mutating func restart() {
        restarts += 1
        tick()
        chain = Self.start(ruleSets, stored, connectedAt: now)
    }
}

/// One event a CSMS processed, for the properties checked at the end.
struct ProcessedCall {
    var action: String
    var payload: JSONValue
}

@Suite("Transaction translation under retries, refusals, timeouts, restarts and late answers")
struct TransactionFuzzTests {
    static let seeds: [UInt64] = Array(1...120)

    /// A charger of the simulations: its scripted CALLs, one at a time, each sent again until it is answered.
    protocol Charger {
        var queue: [QueueItem] { get }
        var attempts: Int { get }
        var outstanding: String? { get set }
        mutating func nextCall() -> RPCFrame?
        mutating func answered(_ frame: RPCFrame) throws
        associatedtype QueueItem
    }

    struct Run {
        var processed: [ProcessedCall] = []
        /// `uuid/seqNo` of the 2.0.1 events the proxy sent of its own (StatusNotification's `then`).
        var proxyEvents = Set<String>()
        var trouble = Trouble()
        var state = TranslationState()
    }

    /// Runs `charger` through the proxy (the repository's `ruleSets`) to a CSMS that answers as `csms` says
    /// (answer, and what it records as processed) — or refuses, loses the CALL or its answer, answers late, or sees
    /// the proxy restart from its stored state — until the charger's script is done.
    static func drive<C: Charger>(
        seed: UInt64, ruleSets: [RuleSet], charger: inout C, random: inout SplitMix64,
        csms: (String, JSONValue) throws -> (answer: JSONValue, record: JSONValue)
    ) throws -> Run {
        var run = Run()
        var proxy = SimulatedProxy(ruleSets: ruleSets)
        var inFlight: (id: String, action: String, payload: JSONValue)?
        var lateAnswers: [RPCFrame] = []
        var steps = 0

        func deliver(_ output: ChainOutput) throws {
            for outgoing in proxy.take(output) {
                switch (outgoing.side, outgoing.frame) {
                case (.csms, .call(let id, let action, let payload)):
                    #expect(inFlight == nil, "seed \(seed): a second CALL to the CSMS while one is out")
                    inFlight = (id, action, payload)
                case (.charger, .call(let id, _, _)):
                    // e.g. a Reset the rules send on their own: the charger accepts it
                    try deliver(
                        proxy.chain.receive(
                            .callResult(id: id, payload: .object(["status": .string("Accepted")])), from: .charger,
                            now: proxy.now))
                case (.charger, let frame):
                    try charger.answered(frame)
                default:
                    Issue.record("seed \(seed): unexpected \(outgoing)")
                }
            }
        }

        while !charger.queue.isEmpty || inFlight != nil {
            steps += 1
            try #require(steps < 5000, "seed \(seed): no progress")
            try #require(charger.attempts < 60, "seed \(seed): \(charger.queue.first!) never got through")
            proxy.tick()
            if let call = charger.nextCall() {
                if charger.attempts > 1 { run.trouble.resent += 1 }
                try deliver(proxy.chain.receive(call, from: .charger, now: proxy.now))
            }
            if !lateAnswers.isEmpty, random.chance(0.3) {
                // an answer to a CALL the proxy gave up on: dropped, changes nothing
                run.trouble.lateAnswers += 1
                let late = proxy.chain.receive(lateAnswers.removeFirst(), from: .csms, now: proxy.now)
                #expect(late.frames.isEmpty && late.changes.isEmpty, "seed \(seed): a late answer did something")
            }
            guard let call = inFlight else { continue }
            if call.payload["triggerReason"] == .string("ChargingStateChanged"),
                let uuid = call.payload["transactionInfo.transactionId"].stringValue,
                let seqNo = call.payload["seqNo"].integerValue
            {
                // the proxy's own event: nobody sends it again after a restart or its last attempt, so it may be
                // missing at the CSMS; its seqNo is never another event's
                run.proxyEvents.insert("\(uuid)/\(seqNo)")
            }
            let outcome = CSMSOutcome.draw(&random)
            run.trouble.outcomes[outcome, default: 0] += 1
            // the CSMS's answer and record are made only when it processes the CALL (a 1.6 CSMS gives an id then)
            switch outcome {
            case .answer:
                let (answer, record) = try csms(call.action, call.payload)
                run.processed.append(.init(action: call.action, payload: record))
                inFlight = nil
                try deliver(proxy.chain.receive(.callResult(id: call.id, payload: answer), from: .csms, now: proxy.now))
            case .refuse:
                inFlight = nil
                try deliver(
                    proxy.chain.receive(
                        .callError(id: call.id, code: "InternalError", description: "busy", details: .object([:])),
                        from: .csms, now: proxy.now))
            case .lost:
                inFlight = nil
                try deliver(proxy.chain.timedOut(side: .csms, messageId: call.id, now: proxy.now))
            case .answerLost:
                let (answer, record) = try csms(call.action, call.payload)
                run.processed.append(.init(action: call.action, payload: record))
                inFlight = nil
                lateAnswers.append(.callResult(id: call.id, payload: answer))
                try deliver(proxy.chain.timedOut(side: .csms, messageId: call.id, now: proxy.now))
            case .restart:
                if random.chance(0.5) {
                    run.processed.append(
                        .init(action: call.action, payload: try csms(call.action, call.payload).record))
                }
                inFlight = nil
                lateAnswers = []
                charger.outstanding = nil  // its connection went with the process: it sends the CALL again
                proxy.restart()
            }
        }
        run.state = proxy.chain.state[edge: ""]
        return run
    }

    // MARK: 1.6 charger on a 2.0.1 CSMS

    /// A 1.6 charger's scripted transactions, sent one CALL at a time and each sent again until it is answered
    /// (1.6 transaction messages are retried, TransactionMessageAttempts).
    struct Charger16: Charger {
        struct Transaction {
            var connector: Int64
            var idTag: String
            var meterStart: Int64
            var readings: [Int64]
            var meterStop: Int64
            var start: String
            var id: Int64?
            var stopped = false
        }

        struct Message {
            var action: String
            var payload: JSONValue
            var transaction: Int
        }

        var transactions: [Transaction] = []
        var queue: [Message] = []
        var outstanding: String?
        var attempts = 0
        var counter = 0

        init(_ random: inout SplitMix64) {
            var perConnector: [[Message]] = []
            var clock: Int64 = 1_767_261_600 - 3600  // an hour before the proxy starts: some events are "offline"
            for connector in Int64(1)...2 {
                var messages: [Message] = []
                for _ in 0..<random.int(1...3) {
                    clock += Int64(random.int(1...600))
                    let start = DateTimeText(seconds: clock).utcText
                    // meter readings from 0 (a new meter) up; never decreasing
                    var register = Int64(random.chance(0.2) ? 0 : random.int(0...50_000))
                    let meterStart = register
                    var readings: [Int64] = []
                    for _ in 0..<random.int(0...3) {
                        register += Int64(random.int(0...900))
                        readings.append(register)
                    }
                    register += Int64(random.int(0...900))
                    let index = transactions.count
                    transactions.append(
                        .init(
                            connector: connector, idTag: "TAG\(random.int(1...3))", meterStart: meterStart,
                            readings: readings, meterStop: register, start: start))
                    messages.append(
                        .init(
                            action: "StartTransaction",
                            payload: .object([
                                "connectorId": .integer(connector), "idTag": .string(transactions[index].idTag),
                                "meterStart": .integer(meterStart), "timestamp": .string(start),
                            ]), transaction: index))
                    if random.chance(0.5) {
                        messages.append(
                            .init(
                                action: "StatusNotification",
                                payload: .object([
                                    "connectorId": .integer(connector), "errorCode": .string("NoError"),
                                    "status": .string(random.chance(0.5) ? "Charging" : "SuspendedEV"),
                                ]), transaction: index))
                    }
                    for (n, reading) in readings.enumerated() {
                        messages.append(
                            .init(
                                action: "MeterValues",
                                payload: .object([
                                    "connectorId": .integer(connector),
                                    "meterValue": .array([
                                        .object([
                                            "timestamp": .string(
                                                DateTimeText(seconds: clock + Int64(n + 1) * 60).utcText),
                                            "sampledValue": .array([
                                                .object([
                                                    "value": .string(String(reading)),
                                                    "measurand": .string("Energy.Active.Import.Register"),
                                                    "unit": .string("Wh"), "context": .string("Sample.Periodic"),
                                                ])
                                            ]),
                                        ])
                                    ]),
                                ]), transaction: index))
                    }
                    clock += 3600
                    messages.append(
                        .init(
                            action: "StopTransaction",
                            payload: .object([
                                "meterStop": .integer(register),
                                "timestamp": .string(DateTimeText(seconds: clock).utcText),
                                "idTag": .string(transactions[index].idTag), "reason": .string("Local"),
                            ]), transaction: index))
                }
                perConnector.append(messages)
            }
            // the two connectors' messages interleaved, each connector's in order
            while perConnector.contains(where: { !$0.isEmpty }) {
                let pick = random.int(0...1)
                let connector = perConnector[pick].isEmpty ? 1 - pick : pick
                queue.append(perConnector[connector].removeFirst())
            }
        }

        /// The next CALL to send, with the transaction id its transaction got.
        mutating func nextCall() -> RPCFrame? {
            guard outstanding == nil, var message = queue.first else { return nil }
            if message.action != "StartTransaction", let id = transactions[message.transaction].id,
                case .object(var members) = message.payload, message.action != "StatusNotification"
            {
                members["transactionId"] = .integer(id)
                message.payload = .object(members)
            }
            counter += 1
            attempts += 1
            outstanding = "c\(counter)"
            return .call(id: "c\(counter)", action: message.action, payload: message.payload)
        }

        mutating func answered(_ frame: RPCFrame) throws {
            guard case .callResult(let id, let payload) = frame, id == outstanding else {
                if case .callError(let id, _, _, _) = frame, id == outstanding { outstanding = nil }
                return
            }
            outstanding = nil
            attempts = 0
            let message = queue.removeFirst()
            switch message.action {
            case "StartTransaction":
                let id = payload["transactionId"].integerValue
                try #require(id != nil, "StartTransaction answered without a transactionId: \(payload)")
                transactions[message.transaction].id = id
            case "StopTransaction":
                transactions[message.transaction].stopped = true
            default:
                break
            }
        }
    }

    /// How often a run met each kind of trouble, so that a test can tell the runs exercised them.
    struct Trouble {
        var outcomes: [CSMSOutcome: Int] = [:]
        var lateAnswers = 0
        var resent = 0
    }

    @Test(arguments: seeds)
    func a16ChargersTransactionsReachThe201CSMSWholeAndOnce(seed: UInt64) throws {
        _ = try Self.run16To201(seed: seed)
    }

    @Test func theRunsMeetEveryKindOfTrouble() throws {
        var total = Trouble()
        for seed in Self.seeds.prefix(30) {
            for run in [try Self.run16To201(seed: seed), try Self.run201To16(seed: seed)] {
                for (outcome, count) in run.outcomes { total.outcomes[outcome, default: 0] += count }
                total.lateAnswers += run.lateAnswers
                total.resent += run.resent
            }
        }
        for outcome in CSMSOutcome.allCases { #expect(total.outcomes[outcome, default: 0] > 10, "\(outcome)") }
        #expect(total.lateAnswers > 10 && total.resent > 50)
    }

    static func run16To201(seed: UInt64) throws -> Trouble {
        var random = SplitMix64(seed: seed)
        var charger = Charger16(&random)
        let run = try drive(
            seed: seed, ruleSets: try RepositoryRules.chain(.v1_6, .v2_0_1), charger: &charger, random: &random
        ) { action, payload in
            (try csmsAnswer201(action, payload), payload)
        }
        try check16To201(
            seed: seed, charger: charger, processed: run.processed, proxyEvents: run.proxyEvents,
            state: run.state)
        return run.trouble
    }

    static func csmsAnswer201(_ action: String, _ payload: JSONValue) throws -> JSONValue {
        switch action {
        case "TransactionEvent" where payload["eventType"] == .string("Started"):
            return .object(["idTokenInfo": .object(["status": .string("Accepted")])])
        default:
            return .object([:])
        }
    }

    /// Per transaction at the CSMS: exactly one Started, seqNo 0, 1, 2, … without gaps (a seqNo seen twice is the
    /// same event sent again; a missing one only an event the proxy sent of its own that never got through),
    /// at most one Ended and nothing after it, and every register reading one the meter gave. Per transaction of
    /// the charger: one UUID, all of its acknowledged messages there.
    static func check16To201(
        seed: UInt64, charger: Charger16, processed: [ProcessedCall], proxyEvents: Set<String>,
        state: TranslationState
    ) throws {
        var events: [String: [Int64: JSONValue]] = [:]
        for call in processed where call.action == "TransactionEvent" {
            let uuid = try #require(call.payload["transactionInfo.transactionId"].stringValue)
            let seqNo = try #require(call.payload["seqNo"].integerValue)
            var payload = call.payload
            if case .object(var members) = payload {
                members["offline"] = nil  // a retry after a reconnection may be flagged offline, the first not
                payload = .object(members)
            }
            if let seen = events[uuid]?[seqNo] {
                #expect(seen == payload, "seed \(seed): seqNo \(seqNo) of \(uuid) twice, differently")
            }
            events[uuid, default: [:]][seqNo] = payload
        }
        var uuids = Set<String>()
        for transaction in charger.transactions {
            let id = try #require(transaction.id, "seed \(seed): a transaction never started")
            #expect(transaction.stopped, "seed \(seed)")
            let uuid = try #require(state.transaction(localId: id)?.uuid, "seed \(seed): id \(id) not kept")
            #expect(uuids.insert(uuid).inserted, "seed \(seed): two transactions of the charger share \(uuid)")
            let mine = try #require(events[uuid], "seed \(seed): no event of \(uuid) at the CSMS")
            let seqNos = mine.keys.sorted()
            let missing = Set(0...(seqNos.last ?? 0)).subtracting(seqNos)
            #expect(
                missing.allSatisfy { proxyEvents.contains("\(uuid)/\($0)") },
                "seed \(seed): seqNos of \(uuid): \(seqNos)")
            let types = seqNos.map { mine[$0]!["eventType"].stringValue ?? "?" }
            #expect(types.first == "Started" && types.filter { $0 == "Started" }.count == 1, "seed \(seed): \(types)")
            #expect(types.last == "Ended" && types.filter { $0 == "Ended" }.count == 1, "seed \(seed): \(types)")
            #expect(types.dropFirst().dropLast().allSatisfy { $0 == "Updated" }, "seed \(seed): \(types)")
            let said = Set([transaction.meterStart, transaction.meterStop] + transaction.readings)
            for seqNo in seqNos {
                for meterValue in mine[seqNo]!["meterValue"].arrayValue ?? [] {
                    for sample in meterValue["sampledValue"].arrayValue ?? []
                    where (sample["measurand"].stringValue ?? "Energy.Active.Import.Register")
                        == "Energy.Active.Import.Register"
                    {
                        let value = try #require(sample["value"].integerValue, "seed \(seed): \(sample)")
                        #expect(said.contains(value), "seed \(seed): \(uuid) seqNo \(seqNo) reads \(value)")
                    }
                }
            }
            let begin = mine[0]!["meterValue.0.sampledValue.0.value"].integerValue
            #expect(begin == transaction.meterStart, "seed \(seed)")
            let end = mine[seqNos.last!]!["meterValue.0.sampledValue.0.value"].integerValue
            #expect(end == transaction.meterStop, "seed \(seed)")
            #expect(
                seqNos.count >= 2 + transaction.readings.count, "seed \(seed): \(transaction.readings.count) readings")
            // the last event's seqNo counts every event the proxy sent, kept or not
            #expect(seqNos.last == Int64(seqNos.count + missing.count - 1), "seed \(seed)")
        }
        #expect(Set(events.keys) == uuids, "seed \(seed): events of transactions the charger never had")
        let ids = charger.transactions.compactMap(\.id)
        #expect(Set(ids).count == ids.count, "seed \(seed): 1.6 ids repeat: \(ids)")
    }

    // MARK: 2.0.1 station on a 1.6 CSMS

    /// A 2.0.1 station's scripted transactions as TransactionEvents, one CALL at a time, each sent again until it is
    /// answered (E12: transaction messages are retried).
    struct Station201: Charger {
        struct Transaction {
            var uuid: String
            var evse: Int64
            var idTag: String
            var begin: Int64
            var readings: [Int64]
            var end: Int64
        }

        var transactions: [Transaction] = []
        var queue: [JSONValue] = []
        var outstanding: String?
        var attempts = 0
        var counter = 0
        var acknowledged: [String: Int] = [:]  // events acknowledged per transaction

        init(_ random: inout SplitMix64) {
            var perEVSE: [[JSONValue]] = []
            var clock: Int64 = 1_767_261_600 - 3600
            for evse in Int64(1)...2 {
                var events: [JSONValue] = []
                for _ in 0..<random.int(1...3) {
                    clock += Int64(random.int(1...600))
                    let uuid = "\(String(random.next(), radix: 16))-\(evse)-\(transactions.count)"
                    var register = Int64(random.chance(0.2) ? 0 : random.int(0...50_000))
                    let begin = register
                    var readings: [Int64] = []
                    for _ in 0..<random.int(0...3) {
                        register += Int64(random.int(0...900))
                        readings.append(register)
                    }
                    register += Int64(random.int(0...900))
                    let transaction = Transaction(
                        uuid: uuid, evse: evse, idTag: "TAG\(random.int(1...3))", begin: begin, readings: readings,
                        end: register)
                    transactions.append(transaction)
                    func sample(_ value: Int64, _ context: String) -> JSONValue {
                        .object([
                            "value": .integer(value), "context": .string(context),
                            "measurand": .string("Energy.Active.Import.Register"),
                        ])
                    }
                    func event(_ type: String, _ seqNo: Int, _ trigger: String, _ extra: JSONObject)
                        -> JSONValue
                    {
                        var members: JSONObject = [
                            "eventType": .string(type), "seqNo": .integer(Int64(seqNo)),
                            "timestamp": .string(DateTimeText(seconds: clock + Int64(seqNo) * 60).utcText),
                            "triggerReason": .string(trigger),
                            "transactionInfo": .object(["transactionId": .string(uuid)]),
                        ]
                        for (key, value) in extra { members[key] = value }
                        return .object(members)
                    }
                    func meter(_ seqNo: Int, _ value: Int64, _ context: String) -> JSONValue {
                        .array([
                            .object([
                                "timestamp": .string(DateTimeText(seconds: clock + Int64(seqNo) * 60).utcText),
                                "sampledValue": .array([sample(value, context)]),
                            ])
                        ])
                    }
                    events.append(
                        event(
                            "Started", 0, "Authorized",
                            [
                                "evse": .object(["id": .integer(evse), "connectorId": .integer(1)]),
                                "idToken": .object(["idToken": .string(transaction.idTag), "type": .string("ISO14443")]
                                ),
                                "meterValue": meter(0, begin, "Transaction.Begin"),
                            ]))
                    for (n, reading) in readings.enumerated() {
                        events.append(
                            event(
                                "Updated", n + 1, "MeterValuePeriodic",
                                ["meterValue": meter(n + 1, reading, "Sample.Periodic")]))
                    }
                    var ended = event(
                        "Ended", readings.count + 1, "StopAuthorized",
                        ["meterValue": meter(readings.count + 1, register, "Transaction.End")])
                    if case .object(var members) = ended {
                        members["transactionInfo"] = .object([
                            "transactionId": .string(uuid), "stoppedReason": .string("Local"),
                        ])
                        ended = .object(members)
                    }
                    events.append(ended)
                    clock += 3600
                }
                perEVSE.append(events)
            }
            while perEVSE.contains(where: { !$0.isEmpty }) {
                let pick = random.int(0...1)
                let evse = perEVSE[pick].isEmpty ? 1 - pick : pick
                queue.append(perEVSE[evse].removeFirst())
            }
        }

        mutating func nextCall() -> RPCFrame? {
            guard outstanding == nil, let event = queue.first else { return nil }
            counter += 1
            attempts += 1
            outstanding = "s\(counter)"
            return .call(id: "s\(counter)", action: "TransactionEvent", payload: event)
        }

        mutating func answered(_ frame: RPCFrame) {
            switch frame {
            case .callResult(let id, _) where id == outstanding:
                outstanding = nil
                attempts = 0
                let event = queue.removeFirst()
                acknowledged[event["transactionInfo.transactionId"].stringValue ?? "", default: 0] += 1
            case .callError(let id, _, _, _) where id == outstanding:
                outstanding = nil
            default:
                break
            }
        }
    }

    @Test(arguments: seeds)
    func a201StationsTransactionsReachThe16CSMSUnderOneIdEach(seed: UInt64) throws {
        _ = try Self.run201To16(seed: seed)
    }

    static func run201To16(seed: UInt64) throws -> Trouble {
        var random = SplitMix64(seed: seed)
        var station = Station201(&random)
        var nextId: Int64 = 1000
        let run = try drive(
            seed: seed, ruleSets: try RepositoryRules.chain(.v2_0_1, .v1_6), charger: &station, random: &random
        ) { action, payload in
            switch action {
            case "StartTransaction":
                nextId += 1  // a 1.6 CSMS gives a new id to every StartTransaction it processes
                var record = payload
                if case .object(var members) = record {
                    members["given"] = .integer(nextId)  // the id this processing gave, for the checks
                    record = .object(members)
                }
                return (
                    .object([
                        "transactionId": .integer(nextId), "idTagInfo": .object(["status": .string("Accepted")]),
                    ]), record
                )
            case "Authorize", "StopTransaction":
                return (.object(["idTagInfo": .object(["status": .string("Accepted")])]), payload)
            default:
                return (.object([:]), payload)
            }
        }
        try check201To16(seed: seed, station: station, processed: run.processed, state: run.state)
        return run.trouble
    }

    /// Per transaction of the station: one 1.6 id it is known by (a StartTransaction whose answer reached the
    /// proxy; one whose answer was lost leaves an id the CSMS never hears of again, which 1.6 cannot avoid), every
    /// MeterValues and StopTransaction with that id, meterStart and meterStop the Begin and End registers, and
    /// every reading one the meter gave.
    static func check201To16(
        seed: UInt64, station: Station201, processed: [ProcessedCall], state: TranslationState
    ) throws {
        for transaction in station.transactions {
            #expect(
                station.acknowledged[transaction.uuid] == transaction.readings.count + 2,
                "seed \(seed): not every event of \(transaction.uuid) was acknowledged")
            let id = try #require(state.transaction(uuid: transaction.uuid)?.localId, "seed \(seed): no 1.6 id")
            let starts = processed.filter {
                $0.action == "StartTransaction" && $0.payload["given"].integerValue == id
            }
            try #require(starts.count == 1, "seed \(seed): the id \(id) was given \(starts.count) times")
            #expect(starts[0].payload["meterStart"].integerValue == transaction.begin, "seed \(seed)")
            #expect(starts[0].payload["connectorId"].integerValue == transaction.evse, "seed \(seed)")
            #expect(starts[0].payload["idTag"].stringValue == transaction.idTag, "seed \(seed)")
            let stops = processed.filter {
                $0.action == "StopTransaction" && $0.payload["transactionId"].integerValue == id
            }
            #expect(!stops.isEmpty, "seed \(seed): \(transaction.uuid) never stopped")
            #expect(Set(stops.map(\.payload)).count == 1, "seed \(seed): different StopTransactions for \(id)")
            #expect(stops.first?.payload["meterStop"].integerValue == transaction.end, "seed \(seed)")
            let readings = Set(
                processed.filter { $0.action == "MeterValues" && $0.payload["transactionId"].integerValue == id }
                    .flatMap { $0.payload["meterValue"].arrayValue ?? [] }
                    .flatMap { $0["sampledValue"].arrayValue ?? [] }
                    .compactMap { $0["value"].stringValue.flatMap { Int64($0) } })
            #expect(readings == Set(transaction.readings), "seed \(seed): readings of \(id)")
        }
        // no StopTransaction or MeterValues for an id no transaction of the station has
        let ids = Set(station.transactions.compactMap { state.transaction(uuid: $0.uuid)?.localId })
        for call in processed where call.action == "StopTransaction" || call.action == "MeterValues" {
            if let id = call.payload["transactionId"].integerValue {
                #expect(ids.contains(id), "seed \(seed): \(call.action) for \(id)")
            }
        }
    }
}

extension JSONValue {
    var integerValue: Int64? {
        switch self {
        case .integer(let i): return i
        case .number(let d): return Int64(exactly: d)
        default: return nil
        }
    }

    var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

@Suite("Remote starts: kept only when the charger accepted, for 600 s")
struct RemoteStartTests {
    func chain() throws -> TranslationChain {
        TranslationChain(
            ruleSets: try RepositoryRules.chain(.v1_6, .v2_0_1), state: ChainState(), ids: CountingIdentifiers(),
            messageIdPrefix: "p")
    }

    /// The Started event a StartTransaction `after` seconds after the charger accepted (or rejected) a remote start
    /// becomes.
    func started(after seconds: Int64, chargerSays status: String) throws -> JSONValue {
        let chain = try chain()
        let t0: Int64 = 1_767_261_600
        func at(_ offset: Int64) -> String { DateTimeText(seconds: t0 + offset).utcText }
        let request = chain.receive(
            .call(
                id: "r1", action: "RequestStartTransaction",
                payload: json(#"{"evseId":1,"remoteStartId":77,"idToken":{"idToken":"EMAID1","type":"eMAID"}}"#)),
            from: .csms, now: at(0))
        guard case .call(let id, "RemoteStartTransaction", _) = try request.only().frame else {
            throw Failure("no RemoteStartTransaction: \(request.frames)")
        }
        _ = chain.receive(
            .callResult(id: id, payload: .object(["status": .string(status)])), from: .charger, now: at(0))
        let start = chain.receive(
            .call(
                id: "s1", action: "StartTransaction",
                payload: json(#"{"connectorId":1,"idTag":"EMAID1","meterStart":5,"timestamp":"\#(at(seconds))"}"#)),
            from: .charger, now: at(seconds))
        guard case .call(_, "TransactionEvent", let event) = try start.only().frame else {
            throw Failure("no TransactionEvent: \(start.frames)")
        }
        return event
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test func anAcceptedRemoteStartGivesItsIdAndTokenTypeToTheStartWithin600Seconds() throws {
        let event = try started(after: 599, chargerSays: "Accepted")
        #expect(event["triggerReason"] == .string("RemoteStart"))
        #expect(event["transactionInfo.remoteStartId"] == .integer(77))
        #expect(event["idToken.type"] == .string("eMAID"))
    }

    @Test func aRemoteStartOlderThan600SecondsIsForgotten() throws {
        let event = try started(after: 601, chargerSays: "Accepted")
        #expect(event["triggerReason"] == .string("Authorized"))
        #expect(event["transactionInfo.remoteStartId"] == .null)
    }

    @Test func aRemoteStartTheChargerRejectedIsNotKept() throws {
        let event = try started(after: 5, chargerSays: "Rejected")
        #expect(event["triggerReason"] == .string("Authorized"))
        #expect(event["transactionInfo.remoteStartId"] == .null)
    }
}
