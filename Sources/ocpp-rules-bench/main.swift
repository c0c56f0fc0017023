import Foundation
import OCPP
import OCPPRules

// Translations per second on one core, beside the cost of only parsing and re-serialising the same frames.
// Usage: ocpp-rules-bench [RULES_DIR] [SECONDS_PER_CASE]   (build with -c release; see BENCHMARKS.md)

let arguments = CommandLine.arguments
let rulesDirectory = arguments.count > 1 ? arguments[1] : "Rules"
let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 3 : 3
/// Only the cases whose name starts with this (for profiling one of them).
let only = arguments.count > 3 ? arguments[3] : ""

func readRules(_ path: String) -> RuleSet {
    var files: [String: String] = [:]
    for folder in RuleSources.folders {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path + "/" + folder)) ?? []
        for name in names where name.hasSuffix(".yaml") {
            files[folder + name] = try? String(contentsOfFile: path + "/" + folder + name, encoding: .utf8)
        }
    }
    do {
        guard
            let set = try RuleLibrary.load(RuleSources(files: files, directory: path)).ruleSet(
                charger: .v1_6, csms: .v2_0_1)
        else { fatalError("no ocpp1.6 → ocpp2.0.1 rule file in \(path)") }
        return set
    } catch {
        fatalError("\(error)")
    }
}

struct Case {
    var name: String
    /// The message id in `call`, replaced per iteration.
    var id: String
    var call: String
    /// The CSMS's answer to the translated CALL.
    var answer: String
}

let meterValues =
    #"[2,"m1","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2026-01-01T10:00:00Z","sampledValue":[{"value":"1234.5","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"},{"value":"7200","context":"Sample.Periodic","measurand":"Power.Active.Import","unit":"W"},{"value":"16.1","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unit":"A"},{"value":"230.2","context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","unit":"V"}]}]}]"#
let cases = [
    Case(name: "MeterValues (tx, 4 samples)", id: "m1", call: meterValues, answer: #"[3,"ID",{}]"#),
    Case(
        name: "StatusNotification", id: "s1",
        call:
            #"[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"2026-01-01T10:00:00Z"}]"#,
        answer: #"[3,"ID",{}]"#),
    Case(
        name: "StartTransaction", id: "t1",
        call:
            #"[2,"t1","StartTransaction",{"connectorId":1,"idTag":"04A2B3C4D5E6F7","meterStart":1000,"timestamp":"2026-01-01T10:00:00Z"}]"#,
        answer: #"[3,"ID",{"idTokenInfo":{"status":"Accepted"}}]"#),
]

let rules = readRules(rulesDirectory)
let now = "2026-01-01T10:00:00Z"

func measure(_ body: () -> Void) -> Double {
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

/// Starts transaction 1 and answers it, so that MeterValues has a transaction and the CSMS link is free.
func prime(_ session: TranslationSession) {
    let start = #"{"connectorId":1,"idTag":"A","meterStart":0,"timestamp":"2026-01-01T10:00:00Z"}"#
    let out = session.receive(
        .call(id: "s", action: "StartTransaction", payload: JSONValue(parsing: Array(start.utf8))!), from: .charger,
        now: now)
    guard case .call(let id, _, _)? = out.frames.first?.frame else { fatalError("StartTransaction not translated") }
    _ = session.receive(.callResult(id: id, payload: .object([:])), from: .csms, now: now)
}
print("case\tparse+serialise CALL and answer (/s)\ttranslate CALL and answer (/s)\tratio")
for item in cases where item.name.hasPrefix(only) {
    let callBytes = Array(item.call.utf8)
    let answerBytes = Array(item.answer.utf8)
    let baseline = measure {
        guard case .success(let call) = RPCFrame.parse(callBytes, version: .v1_6),
            case .success(let answer) = RPCFrame.parse(answerBytes, version: .v2_0_1)
        else { fatalError("bad frame") }
        sink &+= call.json.wireText.utf8.count &+ answer.json.wireText.utf8.count
    }
    var session = TranslationSession(
        rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
    var count = 0
    // MeterValues needs the transaction it names.
    prime(session)
    let translated = measure {
        count += 1
        if count % 20 == 0 {
            // One session per charger in the proxy, which holds a few transactions at a time.
            session = TranslationSession(
                rules: rules, state: TranslationState(), ids: CountingIdentifiers(), messageIdPrefix: "p")
            prime(session)
        }
        // A unique message id per CALL, as a charger sends them.
        var text = item.call
        text.replaceSubrange(text.range(of: item.id)!, with: "c\(count)")
        guard case .success(let call) = RPCFrame.parse(Array(text.utf8), version: .v1_6) else {
            fatalError("bad frame")
        }
        var pending = session.receive(call, from: .charger, now: now).frames
        var results = 0
        var first = true
        // Answer every CALL the translation sends (a rule may add a follow-up) until the charger has its result.
        while !pending.isEmpty {
            let frame = pending.removeFirst()
            sink &+= frame.frame.json.wireText.utf8.count
            switch frame.frame {
            case .call(let id, _, _):
                let answerText = (first ? item.answer : #"[3,"ID",{}]"#).replacingOccurrences(of: "ID", with: id)
                first = false
                guard case .success(let answer) = RPCFrame.parse(Array(answerText.utf8), version: .v2_0_1) else {
                    fatalError("bad answer")
                }
                pending += session.receive(answer, from: .csms, now: now).frames
            case .callResult:
                results += 1
            default:
                fatalError("\(item.name): \(frame.frame)")
            }
        }
        guard results == 1 else { fatalError("\(item.name): no result") }
    }
    print("\(item.name)\t\(Int(baseline))\t\(Int(translated))\t\(String(format: "%.2f", translated / baseline))")
}
if sink == 42 { print("") }
