import Foundation
import OCPP
import OCPPRules

// Translations per second on one core, beside the cost of only parsing and re-serialising the same frames.
// Usage: ocpp-rules-bench [RULES_DIR] [SECONDS_PER_CASE [CASE_PREFIX]]   (build with -c release; see BENCHMARKS.md)
// A negative SECONDS_PER_CASE runs that many translated exchanges and no baseline (for instruction counts).

let arguments = CommandLine.arguments
let rulesDirectory = arguments.count > 1 ? arguments[1] : "Rules"
let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 3 : 3
/// Only the cases whose name starts with this (for profiling one of them).
let only = arguments.count > 3 ? arguments[3] : ""

func readLibrary(_ path: String) -> RuleLibrary {
    var files: [String: String] = [:]
    for folder in RuleSources.folders {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path + "/" + folder)) ?? []
        for name in names where name.hasSuffix(".yaml") {
            files[folder + name] = try? String(contentsOfFile: path + "/" + folder + name, encoding: .utf8)
        }
    }
    do {
        return try RuleLibrary.load(RuleSources(files: files, directory: path))
    } catch {
        fatalError("\(error)")
    }
}

/// One kind of frame a charger sends, translated for the CSMS and answered. In `call` and `answer`, `ID` is the
/// message id, `@N@` a number unique per iteration (a new transaction or seqNo each time), `@TX@` the transaction
/// the session was primed with.
struct Case {
    var name: String
    var charger: OCPPVersion
    var csms: OCPPVersion
    /// The action `call` must become: the case measures that translation, not another rule's.
    var becomes: String
    var call: String
    /// The CSMS's answer to the translated CALL.
    var answer: String
}

/// A frame's text with its placeholders found once, so that filling them in costs a few appends per iteration
/// (what the measurement should not include).
struct FrameText {
    enum Piece {
        case text(String)
        case id, n, tx
    }

    let pieces: [Piece]

    init(_ template: String) {
        var pieces: [Piece] = []
        var rest = Substring(template)
        let markers: [(String, Piece)] = [("\"ID\"", .id), ("@N@", .n), ("@TX@", .tx)]
        while !rest.isEmpty {
            let found = markers.compactMap { marker, piece in rest.range(of: marker).map { ($0, piece) } }
                .min { $0.0.lowerBound < $1.0.lowerBound }
            guard let (range, piece) = found else {
                pieces.append(.text(String(rest)))
                break
            }
            pieces.append(.text(String(rest[..<range.lowerBound])))
            pieces.append(piece)
            rest = rest[range.upperBound...]
        }
        self.pieces = pieces
    }

    func fill(id: String, n: Int, tx: String) -> String {
        var out = ""
        out.reserveCapacity(1024)
        for piece in pieces {
            switch piece {
            case .text(let text): out += text
            case .id: out += "\"" + id + "\""
            case .n: out += String(n)
            case .tx: out += tx
            }
        }
        return out
    }
}

let meterValues16 =
    #"[2,"ID","MeterValues",{"connectorId":1,"transactionId":@TX@,"meterValue":[{"timestamp":"2026-01-01T10:00:00Z","sampledValue":[{"value":"1234.5","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"},{"value":"7200","context":"Sample.Periodic","measurand":"Power.Active.Import","unit":"W"},{"value":"16.1","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unit":"A"},{"value":"230.2","context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","unit":"V"}]}]}]"#
let updated201 =
    #"[2,"ID","TransactionEvent",{"eventType":"Updated","timestamp":"2026-01-01T10:00:00Z","triggerReason":"MeterValuePeriodic","seqNo":@N@,"transactionInfo":{"transactionId":"@TX@"},"meterValue":[{"timestamp":"2026-01-01T10:00:00Z","sampledValue":[{"value":1234.5,"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"}},{"value":7200,"context":"Sample.Periodic","measurand":"Power.Active.Import","unitOfMeasure":{"unit":"W"}},{"value":16.1,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unitOfMeasure":{"unit":"A"}},{"value":230.2,"context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","unitOfMeasure":{"unit":"V"}}]}]}]"#
let started201 =
    #"[2,"ID","TransactionEvent",{"eventType":"Started","timestamp":"2026-01-01T10:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"tx-@N@"},"evse":{"id":1,"connectorId":1},"idToken":{"idToken":"04A2B3C4D5E6F7","type":"ISO14443"},"meterValue":[{"timestamp":"2026-01-01T10:00:00Z","sampledValue":[{"value":1000,"context":"Transaction.Begin","measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"}}]}]}]"#
let cases = [
    Case(
        name: "MeterValues (tx, 4 samples)", charger: .v1_6, csms: .v2_0_1, becomes: "TransactionEvent",
        call: meterValues16,
        answer: #"[3,"ID",{}]"#),
    Case(
        name: "StatusNotification", charger: .v1_6, csms: .v2_0_1, becomes: "StatusNotification",
        call:
            #"[2,"ID","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"2026-01-01T10:00:00Z"}]"#,
        answer: #"[3,"ID",{}]"#),
    Case(
        name: "StartTransaction", charger: .v1_6, csms: .v2_0_1, becomes: "TransactionEvent",
        call:
            #"[2,"ID","StartTransaction",{"connectorId":1,"idTag":"T-@N@","meterStart":1000,"timestamp":"2026-01-01T10:00:00Z"}]"#,
        answer: #"[3,"ID",{"idTokenInfo":{"status":"Accepted"}}]"#),
    Case(
        name: "2.0.1 Updated → MeterValues (4 samples)", charger: .v2_0_1, csms: .v1_6, becomes: "MeterValues",
        call: updated201,
        answer: #"[3,"ID",{}]"#),
    Case(
        name: "2.0.1 Started → StartTransaction", charger: .v2_0_1, csms: .v1_6, becomes: "StartTransaction",
        call: started201,
        answer: #"[3,"ID",{"transactionId":@N@,"idTagInfo":{"status":"Accepted"}}]"#),
]

let library = readLibrary(rulesDirectory)
let now = "2026-01-01T10:00:00Z"

func measure(_ body: () -> Void) -> Double {
    // A negative SECONDS_PER_CASE is a number of iterations, run without a warm-up: for instruction counts
    // (valgrind --tool=callgrind), where the difference of two counts is what those iterations cost.
    if seconds < 0 {
        for _ in 0..<Int(-seconds) { body() }
        return -seconds
    }
    // Warm up, then count whole iterations for `seconds`.
    for _ in 0..<200 { body() }
    var iterations = 0
    let start = DispatchTime.now().uptimeNanoseconds
    let end = start + UInt64(seconds * 1e9)
    while DispatchTime.now().uptimeNanoseconds < end {
        for _ in 0..<100 { body() }
        iterations += 100
    }
    return Double(iterations) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

var sink = 0

func frame(_ text: String, _ version: OCPPVersion) -> RPCFrame {
    guard case .success(let frame) = RPCFrame.parse(Array(text.utf8), version: version) else {
        fatalError("bad frame: \(text)")
    }
    return frame
}

/// Starts a transaction and answers it, so that meter values have a transaction and the CSMS link is free; returns
/// the transaction's id as the charger knows it.
func prime(_ session: TranslationSession, _ item: Case) -> String {
    if item.charger == .v1_6 {
        let start =
            #"[2,"s","StartTransaction",{"connectorId":1,"idTag":"A","meterStart":0,"timestamp":"2026-01-01T10:00:00Z"}]"#
        let out = session.receive(frame(start, .v1_6), from: .charger, now: now)
        guard case .call(let id, _, _)? = out.frames.first?.frame else { fatalError("StartTransaction not translated") }
        let back = session.receive(.callResult(id: id, payload: .object([:])), from: .csms, now: now)
        guard case .callResult(_, let result)? = back.frames.first?.frame, case .object(let members) = result,
            case .integer(let tx)? = members["transactionId"]
        else { fatalError("no transaction id") }
        return String(tx)
    }
    let started = FrameText(started201).fill(id: "s", n: 0, tx: "")
    let out = session.receive(frame(started, .v2_0_1), from: .charger, now: now)
    guard case .call(let id, _, _)? = out.frames.first?.frame else { fatalError("Started not translated") }
    _ = session.receive(
        frame(#"[3,"\#(id)",{"transactionId":7,"idTagInfo":{"status":"Accepted"}}]"#, .v1_6), from: .csms, now: now)
    return "tx-0"
}

print("case\tparse+serialise CALL and answer (/s)\ttranslate CALL and answer (/s)\tratio")
for item in cases where item.name.hasPrefix(only) {
    guard let rules = library.ruleSet(charger: item.charger, csms: item.csms) else {
        fatalError("no \(item.charger) → \(item.csms) rule file in \(rulesDirectory)")
    }
    func session() -> TranslationSession {
        TranslationSession(rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
    }
    let call = FrameText(item.call)
    let answer = FrameText(item.answer)
    let followUpAnswer = FrameText(#"[3,"ID",{}]"#)
    let callBytes = Array(call.fill(id: "c1", n: 1, tx: "1").utf8)
    let answerBytes = Array(answer.fill(id: "p1", n: 1, tx: "1").utf8)
    let baseline =
        seconds < 0
        ? 1
        : measure {
            guard case .success(let call) = RPCFrame.parse(callBytes, version: item.charger),
                case .success(let answer) = RPCFrame.parse(answerBytes, version: item.csms)
            else { fatalError("bad frame") }
            sink &+= call.json.wireText.utf8.count &+ answer.json.wireText.utf8.count
        }
    var current = session()
    var count = 0
    var transaction = prime(current, item)
    let translated = measure {
        count += 1
        if count % 20 == 0 {
            // One session per charger in the proxy, which holds a few transactions at a time.
            current = session()
            transaction = prime(current, item)
        }
        // A unique message id per CALL, as a charger sends them; a new transaction or seqNo each time.
        let text = call.fill(id: "c\(count)", n: count, tx: transaction)
        var pending = current.receive(frame(text, item.charger), from: .charger, now: now).frames
        var results = 0
        var first = true
        // Answer every CALL the translation sends (a rule may add a follow-up) until the charger has its result.
        while !pending.isEmpty {
            let outgoing = pending.removeFirst()
            sink &+= outgoing.frame.json.wireText.utf8.count
            switch outgoing.frame {
            case .call(let id, let action, _):
                if first, action != item.becomes { fatalError("\(item.name) became \(action), not \(item.becomes)") }
                let answerText = (first ? answer : followUpAnswer).fill(id: id, n: count, tx: transaction)
                first = false
                pending += current.receive(frame(answerText, item.csms), from: .csms, now: now).frames
            case .callResult:
                results += 1
            default:
                fatalError("\(item.name): \(outgoing.frame)")
            }
        }
        guard results == 1 else { fatalError("\(item.name): no result") }
    }
    print("\(item.name)\t\(Int(baseline))\t\(Int(translated))\t\(String(format: "%.2f", translated / baseline))")
}
if sink == 42 { print("") }
