import OCPP

/// `ocpp-proxy shadow report`: what the shadow CSMSs answered, summed up from the audit log's `shadow_compared`,
/// `shadow_call` and `shadow_link` records, per action and per charger — the basis for deciding a cutover. Pure:
/// it is given records and says what they add up to.
public struct ShadowReport: Sendable, Equatable {
    public struct Tally: Sendable, Equatable {
        public var compared = 0
        public var divergent = 0
        /// Divergences by kind (status, missing_field, …); one answer may have several.
        public var kinds: [String: Int] = [:]
        /// Fields that differed, with how often.
        public var fields: [String: Int] = [:]

        public init() {}

        /// Percent of compared answers that diverged.
        public var divergentPercent: Double { compared == 0 ? 0 : Double(divergent) * 100 / Double(compared) }
    }

    public struct Charger: Sendable, Equatable {
        public var tally = Tally()
        public var shadows: Set<String> = []
        /// CALLs its shadow sent, answered by the proxy.
        public var shadowCalls = 0
        /// Times its shadow link failed or closed.
        public var linkProblems = 0

        public init() {}
    }

    public var total = Tally()
    public var byAction: [String: Tally] = [:]
    public var byCharger: [String: Charger] = [:]
    public var firstTime: String?
    public var lastTime: String?

    public init() {}

    /// Adds one audit record; records of other events are ignored. Returns whether it was a shadow record.
    @discardableResult
    public mutating func add(_ record: JSONValue) -> Bool {
        guard case .object(let fields) = record, case .string(let event)? = fields["event"] else { return false }
        let charger = fields["charger"]?.stringValue ?? "?"
        let shadow = fields["shadow"]?.stringValue
        switch event {
        case "shadow_compared":
            let action = fields["action"]?.stringValue ?? "?"
            var divergences: [JSONObject] = []
            if case .array(let list)? = fields["divergences"] {
                for case .object(let divergence) in list { divergences.append(divergence) }
            }
            total.add(divergences)
            byAction[action, default: Tally()].add(divergences)
            byCharger[charger, default: Charger()].tally.add(divergences)
        case "shadow_call":
            byCharger[charger, default: Charger()].shadowCalls += 1
        case "shadow_link":
            if fields["state"]?.stringValue != "opened" { byCharger[charger, default: Charger()].linkProblems += 1 }
        default:
            return false
        }
        if let shadow { byCharger[charger, default: Charger()].shadows.insert(shadow) }
        if case .string(let time)? = fields["ts"] {
            if firstTime == nil { firstTime = time }
            lastTime = time
        }
        return true
    }

    /// The report as text: totals, then one line per action and per charger, most divergent first.
    public var text: String {
        var lines: [String] = []
        guard total.compared > 0 || !byCharger.isEmpty else {
            return "no shadow records in the audit log (is a charger routed with a shadow, and the audit log on?)\n"
        }
        lines.append(
            "shadow comparisons \(firstTime ?? "?") .. \(lastTime ?? "?"): \(total.compared) answers compared, \(total.divergent) divergent (\(Self.percent(total.divergentPercent)))"
        )
        lines.append("")
        lines.append("by action:")
        for (action, tally) in byAction.sorted(by: { Self.order($0.value, $1.value, $0.key, $1.key) }) {
            lines.append("  \(Self.line(action, tally))")
        }
        lines.append("")
        lines.append("by charger:")
        for (identity, charger) in byCharger.sorted(by: {
            Self.order($0.value.tally, $1.value.tally, $0.key, $1.key)
        }) {
            var line = Self.line(identity, charger.tally)
            line += "  shadow \(charger.shadows.sorted().joined(separator: ","))"
            if charger.shadowCalls > 0 { line += "  shadow CALLs answered by the proxy: \(charger.shadowCalls)" }
            if charger.linkProblems > 0 { line += "  shadow link failures: \(charger.linkProblems)" }
            lines.append("  \(line)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var json: JSONValue {
        func tally(_ t: Tally) -> JSONValue {
            .object([
                "compared": .integer(Int64(t.compared)), "divergent": .integer(Int64(t.divergent)),
                "kinds": .object(JSONObject(t.kinds.mapValues { JSONValue.integer(Int64($0)) })),
                "fields": .object(JSONObject(t.fields.mapValues { JSONValue.integer(Int64($0)) })),
            ])
        }
        return .object([
            "from": firstTime.map(JSONValue.string) ?? .null, "until": lastTime.map(JSONValue.string) ?? .null,
            "total": tally(total),
            "actions": .object(JSONObject(byAction.mapValues(tally))),
            "chargers": .object(
                JSONObject(
                    byCharger.mapValues { charger -> JSONValue in
                        guard case .object(var fields) = tally(charger.tally) else { return .null }
                        fields["shadows"] = .array(charger.shadows.sorted().map(JSONValue.string))
                        fields["shadowCalls"] = .integer(Int64(charger.shadowCalls))
                        fields["linkProblems"] = .integer(Int64(charger.linkProblems))
                        return .object(fields)
                    })),
        ])
    }

    private static func order(_ a: Tally, _ b: Tally, _ nameA: String, _ nameB: String) -> Bool {
        a.divergent != b.divergent ? a.divergent > b.divergent : nameA < nameB
    }

    private static func line(_ name: String, _ tally: Tally) -> String {
        var line =
            "\(name): \(tally.divergent) of \(tally.compared) divergent (\(percent(tally.divergentPercent)))"
        if !tally.kinds.isEmpty {
            line +=
                "  kinds: "
                + tally.kinds.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                    separator: " ")
        }
        let fields = tally.fields.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5)
        if !fields.isEmpty { line += "  fields: " + fields.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        return line
    }

    private static func percent(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) %"
    }
}

extension ShadowReport.Tally {
    fileprivate mutating func add(_ divergences: [JSONObject]) {
        compared += 1
        guard !divergences.isEmpty else { return }
        divergent += 1
        for divergence in divergences {
            if case .string(let kind)? = divergence["kind"] { kinds[kind, default: 0] += 1 }
            if case .string(let field)? = divergence["field"] { fields[field, default: 0] += 1 }
        }
    }
}

extension JSONValue {
    fileprivate var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
