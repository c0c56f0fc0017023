import Crypto
import OCPP

/// Why an expression could not produce a value.
public struct EvaluationError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The frame holds a value the rule cannot convert (e.g. a meter value that is not a number).
        case data
        /// The rule itself is wrong (e.g. an enum map without the value and without a fallback).
        case rule
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }
}

/// The values an expression can see.
struct Scope {
    var payload: JSONValue
    var element: JSONValue?
    var variables: JSONObject
    /// `%index` inside `$each`: kept out of `variables` so that mapping a list does not copy them.
    var index: Int? = nil
}

/// Gives new transaction ids; the proxy uses random UUIDs, tests and `translate` a counter.
public protocol IdentifierSource: AnyObject {
    func newUUID() -> String
    /// The same id for the same name, every time: a transaction a charger starts again (a retried
    /// StartTransaction) gets the id it got the first time.
    func uuid(named name: String) -> String
}

public final class RandomIdentifiers: IdentifierSource {
    public init() {}
    public func newUUID() -> String { UUIDText.random() }
    public func uuid(named name: String) -> String { UUIDText.named(name) }
}

/// `00000000-0000-4000-8000-000000000001`, `…002`, …: reproducible ids for tests and the `translate` command.
public final class CountingIdentifiers: IdentifierSource {
    private var next = 1
    private var named: [String: String] = [:]
    public init() {}
    public func newUUID() -> String {
        defer { next += 1 }
        let digits = String(next)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
    /// The next counting id the first time a name is seen, that one again later.
    public func uuid(named name: String) -> String {
        if let known = named[name] { return known }
        let id = newUUID()
        named[name] = id
        return id
    }
}

enum UUIDText {
    /// A name-based UUID (RFC 9562 version 8): the first 16 bytes of the name's SHA-256.
    static func named(_ name: String) -> String {
        var bytes = Array(SHA256.hash(data: Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return text(bytes)
    }

    static func random() -> String {
        // Two draws of 8 bytes: the system generator makes one getrandom call per draw, not per byte.
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            let word: UInt64 = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return text(bytes)
    }

    static func text(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (i, b) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(i) { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Evaluates expressions and templates of one rule set against one charger's translation state. Stateful
/// functions change `state` and record each change in `changes`, which the caller persists before it sends
/// anything that depends on them.
final class Evaluator {
    let rules: RuleSet
    var state: TranslationState
    var changes: [StateChange] = []
    let now: String
    let ids: IdentifierSource
    let profile: ChargerProfile
    /// When the charger's connection began (RFC 3339), for `connectedAt()`; nil in `translate` unless given.
    let connectedAt: String?

    init(
        rules: RuleSet, state: TranslationState, now: String, ids: IdentifierSource,
        profile: ChargerProfile = ChargerProfile(),
        connectedAt: String? = nil
    ) {
        self.rules = rules
        self.state = state
        self.now = now
        self.ids = ids
        self.profile = profile
        self.connectedAt = connectedAt
    }

    /// `now` in seconds since 1970 (0 if it is not a date-time, which the proxy never passes).
    lazy var nowSeconds: Int64 = DateTimeText.parse(now)?.seconds ?? 0
    /// The charger's capabilities and EVSE layout, its model's when it has none of its own.
    lazy var effective = profile.effective(model: state.memos[ChargerProfile.modelMemo]?.stringValue)

    /// Every function a rule may call, with the number of arguments it takes (nil: any number).

    // MARK: Templates

    func build(_ template: Template, _ scope: Scope) throws(EvaluationError) -> JSONValue {
        switch template {
        case .value(let expression, _):
            return try evaluate(expression, scope)
        case .object(let fields, _):
            var members: JSONObject = [:]
            members.reserveCapacity(fields.count)
            for field in fields {
                let value = try build(field.template, scope)
                // A template's field names are distinct (the YAML reader refuses repeated keys).
                if value != .null { members.appendNew(field.name, value) }
            }
            return .object(members)
        case .array(let elements, _):
            var values: [JSONValue] = []
            for element in elements {
                let value = try build(element, scope)
                if value != .null { values.append(value) }
            }
            return .array(values)
        case .each(let list, let map, let filter, let name, _):
            let source = try evaluate(list, scope)
            guard case .array(let elements) = source else {
                if source == .null { return .null }
                throw EvaluationError(kind: .data, message: "$each needs a list, got \(source.jsonText)")
            }
            var values: [JSONValue] = []
            values.reserveCapacity(elements.count)
            var inner = scope
            for (index, element) in elements.enumerated() {
                inner.element = element
                inner.index = index
                if let name { inner.variables[name] = element }
                if let filter, !Self.truthy(try evaluate(filter, inner)) { continue }
                let value = try build(map, inner)
                if value != .null { values.append(value) }
            }
            return .array(values)
        case .concat(let parts, _):
            var values: [JSONValue] = []
            for part in parts {
                switch try build(part, scope) {
                case .null: continue
                case .array(let elements): values += elements
                case let value: values.append(value)
                }
            }
            return .array(values)
        case .choice(let condition, let then, let otherwise, _):
            if Self.truthy(try evaluate(condition, scope)) { return try build(then, scope) }
            return try otherwise.map { t throws(EvaluationError) in try build(t, scope) } ?? .null
        }
    }

    // MARK: Expressions

    static func truthy(_ value: JSONValue) -> Bool {
        switch value {
        case .bool(let b): return b
        case .null: return false
        default: return true
        }
    }

    static func lookup(_ value: JSONValue?, _ steps: [PathStep]) -> JSONValue {
        var current = value ?? .null
        for step in steps {
            switch (step, current) {
            case (.field(let name), .object(let members)): current = members[name] ?? .null
            case (.index(let i), .array(let elements)): current = i < elements.count ? elements[i] : .null
            default: return .null
            }
        }
        return current
    }

    func evaluate(_ expression: Expression, _ scope: Scope) throws(EvaluationError) -> JSONValue {
        switch expression {
        case .constant(let value):
            return value
        case .path(let root, let steps):
            switch root {
            case .payload: return Self.lookup(scope.payload, steps)
            case .element: return Self.lookup(scope.element, steps)
            case .variable(let name):
                if name == "index", let index = scope.index { return Self.lookup(.integer(Int64(index)), steps) }
                return Self.lookup(scope.variables[name], steps)
            }
        case .not(let operand):
            return .bool(!Self.truthy(try evaluate(operand, scope)))
        case .binary(let op, let lhsExpression, let rhsExpression):
            let lhs = try evaluate(lhsExpression, scope)
            switch op {
            case .coalesce: return lhs != .null ? lhs : try evaluate(rhsExpression, scope)
            case .and:
                guard Self.truthy(lhs) else { return .bool(false) }
                return .bool(Self.truthy(try evaluate(rhsExpression, scope)))
            case .or:
                if Self.truthy(lhs) { return .bool(true) }
                return .bool(Self.truthy(try evaluate(rhsExpression, scope)))
            default: break
            }
            let rhs = try evaluate(rhsExpression, scope)
            switch op {
            case .equal: return .bool(Self.equal(lhs, rhs))
            case .notEqual: return .bool(!Self.equal(lhs, rhs))
            default:
                guard let order = Self.compare(lhs, rhs) else { return .bool(false) }
                switch op {
                case .less: return .bool(order < 0)
                case .lessOrEqual: return .bool(order <= 0)
                case .greater: return .bool(order > 0)
                default: return .bool(order >= 0)
                }
            }
        case .call(let name, let arguments):
            return try call(name, arguments, scope)
        case .access(let base, let steps):
            return Self.lookup(try evaluate(base, scope), steps)
        }
    }

    static func numeric(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = numeric(a), let y = numeric(b) { return x == y }
        return a == b
    }

    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = numeric(a), let y = numeric(b) { return x < y ? -1 : x > y ? 1 : 0 }
        if case .string(let x) = a, case .string(let y) = b { return x < y ? -1 : x > y ? 1 : 0 }
        return nil
    }

    func dataError(_ message: String) -> EvaluationError { EvaluationError(kind: .data, message: message) }

    func call(_ name: FunctionName, _ arguments: [Expression], _ scope: Scope) throws(EvaluationError) -> JSONValue {
        guard let function = name.known else {
            throw EvaluationError(kind: .rule, message: "unknown function \(name)()")
        }
        // Lazily evaluated forms first.
        switch function {
        case .conditional:
            return Self.truthy(try evaluate(arguments[0], scope))
                ? try evaluate(arguments[1], scope) : try evaluate(arguments[2], scope)
        case .enumMap:
            guard case .constant(.string(let mapName)) = arguments[0], let map = rules.enums[mapName] else {
                throw EvaluationError(kind: .rule, message: "enum(): no enum map named \(arguments[0])")
            }
            let value = try evaluate(arguments[1], scope)
            guard case .string(let text) = value else {
                if value == .null { return .null }
                throw dataError("enum(\(mapName)): expected a string, got \(value.jsonText)")
            }
            guard let mapped = map.map(text) else {
                throw EvaluationError(kind: .rule, message: "enum map \(mapName) has no entry for '\(text)' and no '_'")
            }
            return .string(mapped)
        default:
            break
        }
        var values: [JSONValue] = []
        values.reserveCapacity(arguments.count)
        for argument in arguments { values.append(try evaluate(argument, scope)) }
        let first = values.first ?? .null
        switch function {
        case .exists: return .bool(first != .null)
        case .now: return .string(now)
        case .integer: return try integer(first)
        case .number: return try number(first)
        case .string: return Self.string(first).map(JSONValue.string) ?? .null
        case .datetime:
            guard case .string(let text) = first else { return first == .null ? .null : try fail() }
            guard let parsed = DateTimeText.parse(text) else {
                throw dataError("'\(text)' is not an RFC 3339 date-time")
            }
            return .string(parsed.utcText)
        case .lower: return first.stringValue.map { .string($0.lowercased()) } ?? first
        case .upper: return first.stringValue.map { .string($0.uppercased()) } ?? first
        case .truncate:
            guard case .string(let text) = first, case .integer(let n) = values[1] else { return first }
            return .string(String(text.prefix(Int(max(0, n)))))
        case .concat:
            return .string(values.compactMap(Self.string).joined())
        case .count:
            if case .array(let a) = first { return .integer(Int64(a.count)) }
            return first == .null ? .integer(0) : .integer(1)
        case .first:
            if case .array(let a) = first { return a.first ?? .null }
            return first
        case .find:
            guard case .array(let a) = first, case .string(let field) = values[1] else { return .null }
            return a.first { Self.equal(Self.lookup($0, [.field(field)]), values[2]) } ?? .null
        case .json:
            return first == .null ? .null : .string(first.jsonText)
        case .parseJSON:
            guard case .string(let text) = first else { return first }
            return JSONValue(parsing: Array(text.utf8)) ?? .null
        case .idTokenType:
            guard case .string(let token) = first else { return .null }
            return .string(Self.idTokenType(token))
        case .object:
            var members: JSONObject = [:]
            var i = 0
            while i + 1 < values.count {
                if case .string(let key) = values[i], values[i + 1] != .null { members[key] = values[i + 1] }
                i += 2
            }
            return .object(members)
        case .list:
            return .array(values.filter { $0 != .null })
        case .round:
            // round(x, digits): OCPP 1.6 limits are multiples of 0.1
            guard let x = Self.numeric(first), case .integer(let digits) = values[1] else { return first }
            // A Double has at most 17 significant digits: more places change nothing, and the scale stays finite.
            let scale = pow10(Int(max(-17, min(17, digits))))
            let rounded = (x * scale).rounded() / scale
            guard rounded.isFinite else { throw dataError("round(): \(first.jsonText) is out of range") }
            if digits <= 0, abs(rounded) < 9e15, let i = Int64(exactly: rounded) { return .integer(i) }
            return .number(rounded)
        case .seconds:
            // seconds(t1, t2): t2 − t1 in seconds, fractions included
            guard case .string(let a) = first, case .string(let b) = values[1], let t1 = DateTimeText.parse(a),
                let t2 = DateTimeText.parse(b)
            else { return .null }
            func fraction(_ t: DateTimeText) -> Double { Double("0." + t.fraction.prefix(9)) ?? 0 }
            return .number(Double(t2.seconds - t1.seconds) + fraction(t2) - fraction(t1))
        case .flatten:
            // flatten(list, 'field'): the lists in each element's field, one after another (a single value is one)
            guard case .array(let a) = first, case .string(let field) = values[1] else { return .null }
            var joined: [JSONValue] = []
            for element in a {
                switch Self.lookup(element, [.field(field)]) {
                case .null: continue
                case .array(let inner): joined += inner
                case let value: joined.append(value)
                }
            }
            return .array(joined)
        case .append:
            // append(a, b, …): one list: the lists (or single values) a, b, … in order; nulls are left out
            var joined: [JSONValue] = []
            for value in values {
                switch value {
                case .null: continue
                case .array(let inner): joined += inner
                default: joined.append(value)
                }
            }
            return .array(joined)
        case .sortBy:
            // sortBy(list, 'field'): the elements ordered by their field (numbers by value, texts by their
            // characters; an element without it last), equal ones in their order
            guard case .array(let a) = first, case .string(let field) = values[1] else { return first }
            let keyed = a.enumerated().map { (offset: $0.offset, key: Self.lookup($0.element, [.field(field)])) }
            let order = keyed.sorted { x, y in
                if x.key == .null || y.key == .null {
                    return x.key != .null && y.key == .null || (x.key == y.key && x.offset < y.offset)
                }
                let c = Self.compare(x.key, y.key) ?? 0
                return c != 0 ? c < 0 : x.offset < y.offset
            }
            return .array(order.map { a[$0.offset] })
        case .pairSigned:
            guard case .array(let samples) = first else { return first }
            return .array(Self.pairSigned(samples, endReading: values[1]))
        case .selectReport:
            guard case .array(let data) = first else { return first }
            return .array(Self.selectReport(data, items: values[1], criteria: values[2]))
        case .layoutReport:
            guard case .array(let evses) = first else { return first == .null ? .null : .array([]) }
            return .array(Self.layoutReport(evses))
        case .without:
            // without(list, 'field', v1, v2, …): the elements whose field is none of the values
            guard case .array(let a) = first, values.count >= 2, case .string(let field) = values[1] else {
                return first
            }
            let excluded = values.dropFirst(2)
            return .array(
                a.filter { element in !excluded.contains { Self.equal(Self.lookup(element, [.field(field)]), $0) } })
        default:
            return try stateful(function, values)
        }

        func fail() throws(EvaluationError) -> JSONValue {
            throw dataError("\(name)(): unexpected \(first.jsonText)")
        }
    }

    func integer(_ value: JSONValue) throws(EvaluationError) -> JSONValue {
        switch value {
        case .null, .integer: return value
        case .number(let d):
            // Int64(exactly:) is nil for a fraction, an infinity or a value past Int64's range: never a trap.
            guard abs(d) < 9e15, let i = Int64(exactly: d) else {
                throw dataError("\(value.jsonText) is not an integer")
            }
            return .integer(i)
        case .string(let s):
            if let i = Int64(s.trimmingSpaces) { return .integer(i) }
            if let d = Double(s.trimmingSpaces), abs(d) < 9e15, let i = Int64(exactly: d) { return .integer(i) }
            throw dataError("'\(s)' is not an integer")
        default: throw dataError("\(value.jsonText) is not an integer")
        }
    }

    func number(_ value: JSONValue) throws(EvaluationError) -> JSONValue {
        switch value {
        case .null, .integer, .number: return value
        case .string(let s):
            let t = s.trimmingSpaces
            if let i = Int64(t) { return .integer(i) }
            // Finite decimal text only: "nan", "inf" and "infinity" (any case) all hold an n.
            if let d = Double(t), d.isFinite, !t.isEmpty, !t.utf8.contains(where: { $0 | 0x20 == UInt8(ascii: "n") }) {
                return .number(d)
            }
            throw dataError("'\(s)' is not a number")
        default: throw dataError("\(value.jsonText) is not a number")
        }
    }

    static func string(_ value: JSONValue) -> String? {
        switch value {
        case .null: return nil
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .number(let d): return abs(d) < 1e15 ? Int64(exactly: d).map { String($0) } ?? String(d) : String(d)
        default: return value.jsonText
        }
    }

    /// The 2.0.1 IdTokenEnumType a 1.6 idTag most likely is: RFID UIDs are 4 or 7 bytes (ISO 14443) or
    /// 8 bytes (ISO 15693) written in hex.
    static func idTokenType(_ token: String) -> String {
        let isHex = !token.isEmpty && token.allSatisfy(\.isHexDigit)
        switch (isHex, token.count) {
        case (true, 8), (true, 14): return "ISO14443"
        case (true, 16): return "ISO15693"
        default: return "Central"
        }
    }

    /// pairSigned(samples): a 1.6 meter value's sampledValue list with each signed sample (format SignedData)
    /// joined to the plain reading it signs. A signed sample pairs with the first plain sample not yet paired of
    /// the same measurand, context, phase and location (1.6 defaults applied: Energy.Active.Import.Register,
    /// Sample.Periodic, Outlet); that plain sample gains `signedData` (the signed sample's value) and the signed
    /// sample is left out. A signed sample with no plain partner carries no reading the proxy can read (the signed
    /// meter values app note's JSON form has none): it is left out, except a Transaction.End
    /// Energy.Active.Import.Register sample in Wh when `endReading` (StopTransaction's meterStop) is a number: it
    /// stays with that value and `signedData` its own value. Order kept. A meter reading is never made up.
    static func pairSigned(_ samples: [JSONValue], endReading: JSONValue) -> [JSONValue] {
        func text(_ sample: JSONValue, _ field: String) -> String? { lookup(sample, [.field(field)]).stringValue }
        func key(_ sample: JSONValue) -> [String] {
            [
                text(sample, "measurand") ?? "Energy.Active.Import.Register",
                text(sample, "context") ?? "Sample.Periodic",
                text(sample, "phase") ?? "", text(sample, "location") ?? "Outlet",
            ]
        }
        func isSigned(_ sample: JSONValue) -> Bool { text(sample, "format") == "SignedData" }
        var out = samples
        var removed = Set<Int>()
        var paired = Set<Int>()
        for (index, sample) in samples.enumerated() where isSigned(sample) {
            let signedData = lookup(sample, [.field("value")])
            let partner = samples.indices.first { other in
                !isSigned(samples[other]) && !paired.contains(other) && key(samples[other]) == key(sample)
            }
            if let partner, case .object(var members) = out[partner] {
                members["signedData"] = signedData
                out[partner] = .object(members)
                paired.insert(partner)
                removed.insert(index)
            } else if case .object(var members) = sample, numeric(endReading) != nil,
                key(sample)[0] == "Energy.Active.Import.Register", key(sample)[1] == "Transaction.End",
                (text(sample, "unit") ?? "Wh") == "Wh"
            {
                members["signedData"] = signedData
                members["value"] = endReading
                out[index] = .object(members)
            } else {
                removed.insert(index)
            }
        }
        return out.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// selectReport(reportData, componentVariable, componentCriteria): the NotifyReport entries a GetReport asks
    /// for (B08). With componentVariable items: the entries that match one of them, where an item field left out
    /// matches every value (component instance, evse id, connector id, variable, variable instance: B08.FR.20-25).
    /// With componentCriteria: the entries of components that meet one criterion (B08.FR.07-10, 13): Active,
    /// Available, Enabled: the component has no such variable, or one whose Actual value is not known or `true`;
    /// Problem: it has a Problem variable that is `true`. Both given: both apply. A null list selects everything.
    static func selectReport(_ data: [JSONValue], items: JSONValue, criteria: JSONValue) -> [JSONValue] {
        func text(_ value: JSONValue, _ steps: [PathStep]) -> String? { lookup(value, steps).stringValue }
        let componentSteps: [[PathStep]] = [
            [.field("name")], [.field("instance")], [.field("evse"), .field("id")],
            [.field("evse"), .field("connectorId")],
        ]
        func sameComponent(_ a: JSONValue, _ b: JSONValue) -> Bool {
            componentSteps.allSatisfy { equal(lookup(a, $0), lookup(b, $0)) }
        }
        func matches(_ entry: JSONValue, _ item: JSONValue) -> Bool {
            let wanted = lookup(item, [.field("component")])
            let have = lookup(entry, [.field("component")])
            for steps in componentSteps {
                let want = lookup(wanted, steps)
                if want != .null && !equal(want, lookup(have, steps)) { return false }
            }
            let variable = lookup(item, [.field("variable")])
            if variable == .null { return true }
            for steps: [PathStep] in [[.field("name")], [.field("instance")]] {
                let want = lookup(variable, steps)
                if want != .null && !equal(want, lookup(entry, [.field("variable")] + steps)) { return false }
            }
            return true
        }
        func actualValue(_ entry: JSONValue) -> String? {
            guard case .array(let attributes) = lookup(entry, [.field("variableAttribute")]) else { return nil }
            let actual = attributes.first { (text($0, [.field("type")]) ?? "Actual") == "Actual" }
            return actual.flatMap { text($0, [.field("value")]) }
        }
        func meets(_ entry: JSONValue, _ criterion: String) -> Bool {
            let component = lookup(entry, [.field("component")])
            let own = data.filter {
                sameComponent(lookup($0, [.field("component")]), component)
                    && text($0, [.field("variable"), .field("name")]) == criterion
                    && lookup($0, [.field("variable"), .field("instance")]) == .null
            }
            if criterion == "Problem" { return own.contains { actualValue($0)?.lowercased() == "true" } }
            return own.isEmpty || own.contains { (actualValue($0)?.lowercased() ?? "true") == "true" }
        }
        var selected = data
        if case .array(let list) = items, !list.isEmpty {
            selected = selected.filter { entry in list.contains { matches(entry, $0) } }
        }
        if case .array(let list) = criteria, !list.isEmpty {
            let names = list.compactMap(\.stringValue)
            selected = selected.filter { entry in names.contains { meets(entry, $0) } }
        }
        return selected
    }

    /// layoutReport(evse.layout()): NotifyReport entries that tell a CSMS the EVSEs and connectors: for each EVSE
    /// the component EVSE (evse.id) and for each of its connectors the component Connector (evse.id and
    /// connectorId), each with the variable Available (read-only, boolean, no value: the proxy does not know it).
    static func layoutReport(_ evses: [JSONValue]) -> [JSONValue] {
        func entry(_ name: String, _ evse: JSONObject) -> JSONValue {
            .object([
                "component": .object(["name": .string(name), "evse": .object(evse)]),
                "variable": .object(["name": .string("Available")]),
                "variableAttribute": .array([.object(["type": .string("Actual"), "mutability": .string("ReadOnly")])]),
                "variableCharacteristics": .object(["dataType": .string("boolean"), "supportsMonitoring": .bool(false)]
                ),
            ])
        }
        var entries: [JSONValue] = []
        for evse in evses {
            let id = lookup(evse, [.field("evseId")])
            guard Shape.int32(id) != nil else { continue }
            entries.append(entry("EVSE", ["id": id]))
            guard case .array(let connectors) = lookup(evse, [.field("connectors")]) else { continue }
            for connector in connectors {
                let connectorId = lookup(connector, [.field("connectorId")])
                guard Shape.int32(connectorId) != nil else { continue }
                entries.append(entry("Connector", ["id": id, "connectorId": connectorId]))
            }
        }
        return entries
    }

    // MARK: Stateful functions

    func record(_ change: StateChange) {
        state.apply(change)
        changes.append(change)
    }

    func stateful(_ function: RuleFunction, _ values: [JSONValue]) throws(EvaluationError) -> JSONValue {
        func value(_ i: Int) -> JSONValue { i < values.count ? values[i] : .null }
        func int(_ i: Int) -> Int64? {
            switch value(i) {
            case .integer(let v): return v
            case .number(let d): return Int64(exactly: d)
            case .string(let s): return Int64(s)
            default: return nil
            }
        }
        func text(_ i: Int) -> String? { value(i).stringValue }
        switch function {
        case .txBegin:
            guard let connector = int(0) else { return .null }
            guard let key = text(1) else {
                return .string(beginTransaction(localId: nil, connectorId: connector).uuid)
            }
            if let known = findTransaction(connector, key) { return .string(known.uuid) }
            // Name-based: a StartTransaction the charger sends again (its first got a CALLERROR or no answer, so the
            // transaction was never kept and the next 1.6 id did not move) gets the UUID the first one was sent
            // with; a later start with the same key (a charger whose clock stands still) gets another.
            let uuid = ids.uuid(named: "\(profile.identity)\u{1F}\(connector)\u{1F}\(key)\u{1F}\(state.nextLocalId)")
            var transaction = beginTransaction(localId: nil, connectorId: connector, uuid: uuid)
            transaction.startKey = key
            record(.transaction(transaction))
            return .string(transaction.uuid)
        case .txFind:
            guard let connector = int(0), let key = text(1) else { return .null }
            return findTransaction(connector, key).map { .string($0.uuid) } ?? .null
        case .txNote:
            guard let uuid = text(0), var t = state.transaction(uuid: uuid) else { return .null }
            let note = value(1)
            guard note.jsonText.utf8.count <= TranslationState.memoBytes else {
                throw dataError("tx.note(): the value is larger than \(TranslationState.memoBytes) bytes")
            }
            if t.note != note {
                t.note = note
                record(.transaction(t))
            }
            return note
        case .txNoted:
            return text(0).flatMap { state.transaction(uuid: $0)?.note } ?? .null
        case .txCount:
            return .integer(Int64(state.transactions.values.reduce(0) { $0 + ($1.ended ? 0 : 1) }))
        case .connectedAt:
            return connectedAt.map(JSONValue.string) ?? .null
        case .txAdopt:
            guard let localId = int(0) else { return .null }
            if let known = state.transaction(localId: localId) { return .string(known.uuid) }
            return .string(beginTransaction(localId: localId, connectorId: int(1) ?? 0).uuid)
        case .txKnown:
            guard let localId = int(0), let known = state.transaction(localId: localId) else { return .null }
            if let connector = int(1), known.connectorId != connector { return .null }
            return .string(known.uuid)
        case .txUuid:
            return int(0).flatMap { state.transaction(localId: $0) }.map { .string($0.uuid) } ?? .null
        case .txOngoing:
            return .bool(text(0).flatMap { state.transaction(uuid: $0) }.map { !$0.ended } ?? false)
        case .txEnded:
            return .bool(text(0).flatMap { state.transaction(uuid: $0) }?.ended ?? false)
        case .txInt:
            return text(0).flatMap { state.transaction(uuid: $0) }?.localId.map(JSONValue.integer) ?? .null
        case .txConnector:
            return text(0).flatMap { state.transaction(uuid: $0) }.map { .integer($0.connectorId) } ?? .null
        case .txOpen:
            guard let uuid = text(0), !uuid.isEmpty else { return .null }
            if state.transaction(uuid: uuid) == nil {
                _ = beginTransaction(localId: nil, connectorId: int(1) ?? 0, uuid: uuid, numbered: false)
            }
            return .string(uuid)
        case .txBind:
            guard let uuid = text(0), var t = state.transaction(uuid: uuid), let id = int(1) else { return value(1) }
            if t.localId != id {
                // A CSMS that gives an id twice means the newer transaction: the older one no longer owns it.
                if let other = state.transaction(localId: id), other.uuid != uuid {
                    var older = other
                    older.localId = nil
                    record(.transaction(older))
                }
                t.localId = id
                record(.transaction(t))
            }
            return .integer(id)
        case .txSeqNo:
            guard let uuid = text(0), var t = state.transaction(uuid: uuid) else { return .null }
            let seqNo = t.nextSeqNo
            // Checked: a seqNo read from a damaged state store must not stop the node.
            guard case (let next, false) = seqNo.addingReportingOverflow(1) else {
                throw dataError("the transaction's seqNo cannot grow past \(seqNo)")
            }
            t.nextSeqNo = next
            record(.transaction(t))
            return .integer(seqNo)
        case .txEnd:
            guard let uuid = text(0), var t = state.transaction(uuid: uuid) else { return value(0) }
            if !t.ended {
                t.ended = true
                record(.transaction(t))
            }
            return .string(uuid)
        case .txActive:
            guard let connector = int(0) else { return .null }
            return state.transactions.values.filter { !$0.ended && $0.connectorId == connector }
                .max { $0.serial < $1.serial }.map { .string($0.uuid) } ?? .null
        case .remoteStartRemember:
            guard let token = text(1), let id = int(2) else { return .null }
            let evse = int(0)
            var list = state.remoteStarts.filter { !($0.idToken == token && $0.evseId == evse) && live($0) }
            list.append(
                .init(evseId: evse, idToken: token, remoteStartId: id, idTokenType: text(3), acceptedAt: nowSeconds))
            // A CSMS that starts remotely and never sees the start must not grow this without bound.
            record(.remoteStarts(Array(list.suffix(8))))
            return .integer(id)
        case .remoteStartTake:
            guard let token = text(1) else { return .null }
            let evse = int(0).flatMap { effective.layout.place($0)?.evse }
            guard
                let index = state.remoteStarts.lastIndex(where: {
                    $0.idToken == token && ($0.evseId == nil || $0.evseId == evse) && live($0)
                })
            else { return .null }
            var list = state.remoteStarts.filter(live)
            let taken = state.remoteStarts[index]
            list.removeAll { $0 == taken }
            record(.remoteStarts(list))
            var result: JSONObject = ["remoteStartId": .integer(taken.remoteStartId)]
            if let type = taken.idTokenType { result["idTokenType"] = .string(type) }
            return .object(result)
        case .memoSet:
            guard let key = text(0) else { return .null }
            let stored = value(1)
            if stored == .null {
                if state.memos[key] != nil { record(.memo(name: key, value: .null)) }
                return .null
            }
            guard stored.jsonText.utf8.count <= TranslationState.memoBytes else {
                throw dataError("memo.set('\(key)'): the value is larger than \(TranslationState.memoBytes) bytes")
            }
            // A full table makes room by forgetting the memo set longest ago: names made from frame data (a
            // connector id, a reservation id) must not lock a charger out of its rules.
            if state.memos[key] == nil, let oldest = state.memoToEvict { record(.memo(name: oldest, value: .null)) }
            if state.memos[key] != stored { record(.memo(name: key, value: stored)) }
            return stored
        case .memoGet:
            return text(0).flatMap { state.memos[$0] } ?? .null
        case .memoTake:
            guard let key = text(0), let stored = state.memos[key] else { return .null }
            record(.memo(name: key, value: .null))
            return stored
        case .counterNext:
            guard let key = text(0) else { return .null }
            let last = state.counters[key] ?? 0
            // Wraps to 1 past Int32's range: OCPP ids are 32-bit integers in most implementations.
            let next = last >= Int64(Int32.max) || last < 0 ? 1 : last + 1
            record(.counter(name: key, value: next))
            return .integer(next)
        case .capability:
            return .bool(text(0).map { effective.capabilities.contains($0) } ?? false)
        case .evseId:
            return int(0).flatMap { effective.layout.place($0) }.map { .integer($0.evse) } ?? .null
        case .evseConnector:
            return int(0).flatMap { effective.layout.place($0)?.connector }.map(JSONValue.integer) ?? .null
        case .evseToConnector:
            guard let evse = int(0) else { return .null }
            return effective.layout.connector16(evse: evse, connector: int(1)).map(JSONValue.integer) ?? .null
        case .evseConnectors:
            return effective.layout.connectors16(evse: int(0) ?? 0).map { .array($0.map(JSONValue.integer)) } ?? .null
        case .evseLayout:
            return .array(
                effective.layout.evses.enumerated().map { index, connectors in
                    .object([
                        "evseId": .integer(Int64(index + 1)),
                        "connectors": .array(
                            connectors.enumerated().map { c, id in
                                .object(["connectorId": .integer(Int64(c + 1)), "connector16": .integer(id)])
                            }),
                    ])
                })
        case .requestIdRemember:
            guard let kind = text(0), let id = int(1) else { return value(1) }
            record(.requestId(kind: kind, id: id))
            return .integer(id)
        case .requestIdRecall:
            return text(0).flatMap { state.requestIds[$0] }.map(JSONValue.integer) ?? .null
        case .dmKey:
            guard let variable = dmVariable(values[0], values[1]) else { return .null }
            if let key = rules.deviceModel.key(for: variable) { return .string(key) }
            // What dm.component/dm.variable made of an unmapped key maps back to it.
            return variable.component == Self.legacyComponent ? .string(variable.variable) : .null
        case .dmFixed:
            guard let variable = dmVariable(values[0], values[1]) else { return .null }
            return rules.deviceModel.fixedValue(for: variable).map(JSONValue.string) ?? .null
        case .dmComponent:
            guard let key = text(0) else { return .null }
            return .object(["name": .string(rules.deviceModel.keys[key]?.component ?? Self.legacyComponent)])
        case .dmVariable:
            guard let key = text(0) else { return .null }
            return Self.variableObject(rules.deviceModel.keys[key], key: key)
        case .dmReport:
            return report(values[0])
        default:
            throw EvaluationError(kind: .rule, message: "\(function.rawValue)() is not a function of the state")
        }
    }

    func pow10(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<abs(n) { result *= 10 }
        return n >= 0 ? result : 1 / result
    }

    /// A kept, not ended transaction on `connector` that `tx.begin` started with `key`.
    func findTransaction(_ connector: Int64, _ key: String) -> TranslationState.Transaction? {
        state.transactions.values.first { !$0.ended && $0.connectorId == connector && $0.startKey == key }
    }

    /// Whether a remembered remote start may still be taken (older entries, from before expiry existed, may).
    func live(_ start: TranslationState.RemoteStart) -> Bool {
        guard let at = start.acceptedAt else { return true }
        return nowSeconds - at <= TranslationState.remoteStartLifetime
    }

    static let legacyComponent = "OCPP16LegacyCtrlr"

    static func variableObject(_ variable: DeviceModel.Variable?, key: String) -> JSONValue {
        guard let variable else { return .object(["name": .string(String(key.prefix(50)))]) }
        var members: JSONObject = ["name": .string(variable.variable)]
        if let instance = variable.instance { members["instance"] = .string(instance) }
        return .object(members)
    }

    func dmVariable(_ component: JSONValue, _ variable: JSONValue) -> DeviceModel.Variable? {
        guard let componentName = Self.lookup(component, [.field("name")]).stringValue,
            let variableName = Self.lookup(variable, [.field("name")]).stringValue
        else { return nil }
        return .init(
            component: componentName, variable: variableName,
            instance: Self.lookup(variable, [.field("instance")]).stringValue)
    }

    /// NotifyReport reportData for a GetConfiguration answer: every key the charger reported, then the
    /// variables the proxy answers itself.
    func report(_ configurationKeys: JSONValue) -> JSONValue {
        var entries: [JSONValue] = []
        var reported = Set<DeviceModel.Variable>()
        func entry(_ component: String, _ variable: JSONValue, value: String?, readOnly: Bool) -> JSONValue {
            var attribute: JSONObject = [
                "type": .string("Actual"), "mutability": .string(readOnly ? "ReadOnly" : "ReadWrite"),
            ]
            if let value { attribute["value"] = .string(String(value.prefix(2500))) }
            // B07.FR.12 / B08.FR.12: a full report describes each variable too.
            let dataType: String
            switch value {
            case let v? where Int64(v) != nil: dataType = "integer"
            case let v? where Double(v) != nil: dataType = "decimal"
            case "true", "false": dataType = "boolean"
            default: dataType = "string"
            }
            return .object([
                "component": .object(["name": .string(component)]), "variable": variable,
                "variableAttribute": .array([.object(attribute)]),
                "variableCharacteristics": .object([
                    "dataType": .string(dataType), "supportsMonitoring": .bool(false),
                ]),
            ])
        }
        if case .array(let keys) = configurationKeys {
            for item in keys {
                guard let key = Self.lookup(item, [.field("key")]).stringValue else { continue }
                let mapped = rules.deviceModel.keys[key]
                if let mapped { reported.insert(mapped) }
                entries.append(
                    entry(
                        mapped?.component ?? Self.legacyComponent, Self.variableObject(mapped, key: key),
                        value: Self.lookup(item, [.field("value")]).stringValue,
                        readOnly: Self.lookup(item, [.field("readonly")]) == .bool(true)))
            }
        }
        for fixed in rules.deviceModel.fixed where !reported.contains(fixed.variable) {
            var variable: JSONObject = ["name": .string(fixed.variable.variable)]
            if let instance = fixed.variable.instance { variable["instance"] = .string(instance) }
            entries.append(entry(fixed.variable.component, .object(variable), value: fixed.value, readOnly: true))
        }
        return .array(entries)
    }

    /// The lowest 1.6 transaction id the proxy gives at time `now`: the seconds since 2024-01-01. So ids keep
    /// growing when the state is lost (a new disk, a deleted file) instead of starting again at 1 and landing a
    /// charger's late frames for an old transaction on a new one. Fits a 32-bit integer until 2092.
    static func idFloor(_ now: Int64) -> Int64 { max(1, now - 1_704_067_200) }

    /// Records a new transaction. `numbered`: the proxy gives it a 1.6 id (`localId`, or the next one); otherwise it
    /// waits for one (`tx.bind`). `uuid`: its 2.0.1 id (a station's, or a name-based one), else a new random one.
    func beginTransaction(
        localId: Int64?, connectorId: Int64, uuid: String? = nil, numbered: Bool = true
    ) -> TranslationState.Transaction {
        var nextLocal = state.nextLocalId
        var id: Int64? = localId
        if numbered, id == nil {
            let next = max(nextLocal, Self.idFloor(nowSeconds))
            id = next
        }
        // Saturating: ids come from chargers and from the stored state, and neither may stop the node.
        if let id { nextLocal = max(nextLocal, id.addingReportingOverflow(1).overflow ? id : id + 1) }
        let serial = state.lastSerial.addingReportingOverflow(1).overflow ? state.lastSerial : state.lastSerial + 1
        let transaction = TranslationState.Transaction(
            localId: id, uuid: uuid ?? ids.newUUID(), connectorId: connectorId, nextSeqNo: 0, remoteStartId: nil,
            ended: false, serial: serial)
        if nextLocal != state.nextLocalId { record(.nextLocalId(nextLocal)) }
        record(.transaction(transaction))
        if state.endedCount > TranslationState.endedKept {
            let ended = state.transactions.values.filter(\.ended).sorted { $0.serial < $1.serial }
            for old in ended.dropLast(TranslationState.endedKept) { record(.forgetTransaction(uuid: old.uuid)) }
        }
        // A charger whose StopTransactions never came must not grow its state without bound.
        if state.transactions.count > TranslationState.transactionsKept {
            let oldest = state.transactions.values.sorted { $0.serial < $1.serial }
            for old in oldest.dropLast(TranslationState.transactionsKept) { record(.forgetTransaction(uuid: old.uuid)) }
        }
        return transaction
    }
}

/// The functions a rule can call. A call is resolved to one of them when its rule is read, so evaluating it is a
/// jump on this enum, not a comparison of its name with every function's.
public enum RuleFunction: String, CaseIterable, Sendable {
    case exists
    case conditional = "if"
    case enumMap = "enum"
    case integer
    case number
    case string
    case datetime
    case lower
    case upper
    case truncate
    case concat
    case count
    case first
    case find
    case json
    case parseJSON
    case idTokenType
    case now
    case object
    case list
    case without
    case flatten
    case append
    case sortBy
    case pairSigned
    case selectReport
    case layoutReport
    case round
    case seconds
    case txOngoing = "tx.ongoing"
    case txBegin = "tx.begin"
    case txUuid = "tx.uuid"
    case txInt = "tx.int"
    case txAdopt = "tx.adopt"
    case txSeqNo = "tx.seqNo"
    case txEnd = "tx.end"
    case txActive = "tx.active"
    case txFind = "tx.find"
    case txCount = "tx.count"
    case txNote = "tx.note"
    case txNoted = "tx.noted"
    case connectedAt
    case txKnown = "tx.known"
    case txEnded = "tx.ended"
    case txConnector = "tx.connector"
    case txOpen = "tx.open"
    case txBind = "tx.bind"
    case remoteStartRemember = "remoteStart.remember"
    case remoteStartTake = "remoteStart.take"
    case memoSet = "memo.set"
    case memoGet = "memo.get"
    case memoTake = "memo.take"
    case counterNext = "counter.next"
    case capability
    case evseId = "evse.id"
    case evseConnector = "evse.connector"
    case evseToConnector = "evse.toConnector"
    case evseConnectors = "evse.connectors"
    case evseLayout = "evse.layout"
    case requestIdRemember = "requestId.remember"
    case requestIdRecall = "requestId.recall"
    case dmKey = "dm.key"
    case dmComponent = "dm.component"
    case dmVariable = "dm.variable"
    case dmFixed = "dm.fixed"
    case dmReport = "dm.report"

    /// How many arguments it takes; nil: any number.
    public var arity: Int? {
        switch self {
        case .exists, .integer, .number, .string, .datetime, .lower, .upper, .count, .first, .json, .parseJSON,
            .idTokenType, .layoutReport, .txOngoing, .txUuid, .txInt, .txSeqNo, .txEnd, .txActive, .txNoted, .txEnded,
            .txConnector, .memoGet, .memoTake, .counterNext, .capability, .evseId, .evseConnector, .evseConnectors,
            .requestIdRecall, .dmComponent, .dmVariable, .dmReport:
            return 1
        case .conditional, .find, .selectReport: return 3
        case .enumMap, .truncate, .flatten, .sortBy, .pairSigned, .round, .seconds, .txAdopt, .txFind, .txNote,
            .txKnown, .txOpen, .txBind, .remoteStartTake, .memoSet, .requestIdRemember, .dmKey, .dmFixed:
            return 2
        case .concat, .object, .list, .without, .append, .txBegin, .remoteStartRemember, .evseToConnector: return nil
        case .now, .txCount, .connectedAt, .evseLayout: return 0
        }
    }
}
