import OCPP

/// The shape a JSON value must have: what a message definition file says about one field.
public indirect enum Shape: Sendable {
    case object(ObjectShape)
    case array(Shape, min: Int?, max: Int?)
    case integer(minimum: Int64?)
    /// `multipleOf`: the value must be a whole multiple of it (1.6 charging limits: 0.1), checked with a tolerance
    /// for binary floating point (`Shape.isMultiple`).
    case number(minimum: Double?, multipleOf: Double? = nil)
    case boolean
    case string(maxLength: Int?)
    case dateTime
    case any
    case enumeration([String])

    /// The shape at a path below this one, when the definition knows it; `nil` for an unknown field.
    public func shape(at steps: [PathStep]) -> Shape? {
        var current = self
        for step in steps {
            switch (step, current) {
            case (.field(let name), .object(let object)):
                guard let field = object.field(name) else { return object.open ? .any : nil }
                current = field.shape
            case (.index, .array(let element, _, _)):
                current = element
            case (_, .any):
                return .any
            default:
                return nil
            }
        }
        return current
    }

    /// The enum values of this shape, if it is an enum.
    public var enumValues: [String]? {
        if case .enumeration(let values) = self { return values }
        return nil
    }
}

public struct ObjectShape: Sendable {
    public struct Field: Sendable {
        public var name: String
        public var required: Bool
        public var shape: Shape
    }

    public var fields: [Field]
    /// Fields the definition does not name are allowed (`"*": any`).
    public var open: Bool
    public let requiredCount: Int
    private var index: [String: Int]

    public init(fields: [Field], open: Bool) {
        self.fields = fields
        self.open = open
        self.requiredCount = fields.filter(\.required).count
        self.index = Dictionary(
            fields.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    /// The field of that name. OCPP objects have a dozen fields at most: comparing names (lengths first) is
    /// cheaper there than hashing the name; larger ones use the index.
    public func field(_ name: String) -> Field? {
        if fields.count > 16 { return index[name].map { fields[$0] } }
        let length = name.utf8.count
        for field in fields where field.name.utf8.count == length && field.name == name { return field }
        return nil
    }
}

/// Who sends a message's CALL.
public enum MessageSender: String, Sendable {
    case chargingStation
    case csms
    case both

    public func includes(_ side: Side) -> Bool {
        self == .both || (self == .chargingStation) == (side == .charger)
    }
}

/// One version's messages: for each action, who sends it and the shapes of its request and response.
public struct MessageDefinitions: Sendable {
    public struct Message: Sendable {
        public var sentBy: MessageSender
        public var request: Shape
        public var response: Shape
    }

    public var version: OCPPVersion
    public var messages: [String: Message]

    public init(version: OCPPVersion, messages: [String: Message]) {
        self.version = version
        self.messages = messages
    }

    /// Actions whose CALL `side` sends.
    public func actions(sentBy side: Side) -> [String] {
        messages.filter { $0.value.sentBy.includes(side) }.keys.sorted()
    }
}

// MARK: Checking values against shapes

/// Why a payload does not match its definition, in the terms of the RPC error codes.
public struct ShapeViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case missing
        case wrongType
        case badValue
        case unknownField
    }

    public var kind: Kind
    public var path: String
    public var detail: String

    public init(kind: Kind, path: String, detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String { "\(path.isEmpty ? "payload" : path): \(detail)" }

    /// The RPC error code OCPP-J prescribes for this violation.
    public var errorCode: RPCErrorCode {
        switch kind {
        case .missing: return .occurrenceConstraintViolation
        case .wrongType: return .typeConstraintViolation
        case .badValue: return .propertyConstraintViolation
        case .unknownField: return .formatViolation
        }
    }
}

/// The vendor quirks a listener or charger has opted into (off by default).
public struct Tolerance: Sendable, Equatable, Hashable {
    public var enumCase = false
    public var numericStrings = false
    public var unknownFields = false

    public init(enumCase: Bool = false, numericStrings: Bool = false, unknownFields: Bool = false) {
        self.enumCase = enumCase
        self.numericStrings = numericStrings
        self.unknownFields = unknownFields
    }

    public static let strict = Tolerance()
    public var isStrict: Bool { self == .strict }

    public static let quirkNames = ["enumCase", "numericStrings", "unknownFields"]
}

extension Shape {
    /// The first way `value` breaks this shape, or nil when it conforms.
    public func violation(of value: JSONValue, at path: String = "") -> ShapeViolation? {
        var trail: [TrailStep] = []
        guard let (kind, detail) = check(value, trail: &trail) else { return nil }
        // The path is spelled only for a violation: conforming payloads, nearly all of them, build no strings.
        var full = path
        for step in trail.reversed() {
            switch step {
            case .key(let key): full = full.isEmpty ? key : full + "." + key
            case .index(let index): full += "[\(index)]"
            }
        }
        return ShapeViolation(kind: kind, path: full, detail: detail)
    }

    /// Where a violation is, innermost step first.
    private enum TrailStep {
        case key(String)
        case index(Int)
    }

    private func check(_ value: JSONValue, trail: inout [TrailStep]) -> (ShapeViolation.Kind, String)? {
        switch self {
        case .any:
            return nil
        case .object(let object):
            guard case .object(let members) = value else { return (.wrongType, "expected an object") }
            // One lookup per field present; the definition's order is used only to report a problem.
            var requiredPresent = 0
            var firstProblem: (index: Int, problem: (ShapeViolation.Kind, String), trail: [TrailStep])?
            var unknown: [String] = []
            for (key, member) in members {
                guard let field = object.field(key) else {
                    if !object.open { unknown.append(key) }
                    continue
                }
                if field.required { requiredPresent += 1 }
                var childTrail: [TrailStep] = []
                if let problem = field.shape.check(member, trail: &childTrail) {
                    let position = object.fields.firstIndex { $0.name == key } ?? 0
                    if firstProblem == nil || position < firstProblem!.index {
                        childTrail.append(.key(key))
                        firstProblem = (position, problem, childTrail)
                    }
                }
            }
            if requiredPresent == object.requiredCount && firstProblem == nil && unknown.isEmpty { return nil }
            for (position, field) in object.fields.enumerated() {
                if let firstProblem, firstProblem.index < position { break }
                if field.required && members[field.name] == nil {
                    trail.append(.key(field.name))
                    return (.missing, "required field missing")
                }
            }
            if let firstProblem {
                trail.append(contentsOf: firstProblem.trail)
                return firstProblem.problem
            }
            if let key = unknown.sorted().first {
                trail.append(.key(key))
                return (.unknownField, "unknown field")
            }
            return nil
        case .array(let element, let min, let max):
            guard case .array(let elements) = value else { return (.wrongType, "expected an array") }
            if let min, elements.count < min { return (.missing, "expected at least \(min) elements") }
            if let max, elements.count > max { return (.badValue, "expected at most \(max) elements") }
            for (index, item) in elements.enumerated() {
                if let problem = element.check(item, trail: &trail) {
                    trail.append(.index(index))
                    return problem
                }
            }
            return nil
        case .integer(let minimum):
            // OCPP integers are 32-bit (2.0.1 part 2 §2.1.3; xs:int in the 1.6 WSDLs): a value outside that range,
            // or with a fraction, is not of the field's type, however a JSON number spells it.
            guard let number = Self.int32(value) else {
                switch value {
                case .integer, .number: return (.wrongType, "expected a 32-bit integer")
                default: return (.wrongType, "expected an integer")
                }
            }
            if let minimum, number < minimum { return (.badValue, "must be at least \(minimum)") }
            return nil
        case .number(let minimum, let step):
            let number: Double
            switch value {
            case .integer(let i): number = Double(i)
            case .number(let d): number = d
            default: return (.wrongType, "expected a number")
            }
            // Parsed JSON is always finite; a computed value may not be, and JSON cannot carry it.
            guard number.isFinite else { return (.badValue, "not a finite number") }
            if let minimum, number < minimum { return (.badValue, "must be at least \(minimum)") }
            if let step, !Self.isMultiple(number, of: step) { return (.badValue, "not a multiple of \(step)") }
            return nil
        case .boolean:
            guard case .bool = value else { return (.wrongType, "expected true or false") }
            return nil
        case .string(let maxLength):
            guard case .string(let text) = value else { return (.wrongType, "expected a string") }
            // A string has at most as many characters as UTF-8 bytes: counting characters is rarely needed.
            if let maxLength, text.utf8.count > maxLength, text.count > maxLength {
                return (.badValue, "longer than \(maxLength) characters")
            }
            return nil
        case .dateTime:
            guard case .string(let text) = value else { return (.wrongType, "expected a date-time string") }
            guard DateTimeText.parse(text) != nil else { return (.badValue, "not an RFC 3339 date-time") }
            return nil
        case .enumeration(let values):
            guard case .string(let text) = value else { return (.wrongType, "expected a string") }
            // Lengths first: an enum of 30 units or 22 measurands is mostly ruled out without a string comparison.
            let length = text.utf8.count
            guard values.contains(where: { $0.utf8.count == length && $0 == text }) else {
                return (.badValue, "'\(text)' is not one of its enum values")
            }
            return nil
        }
    }

    /// Whether `value` is a whole multiple of `step`. 0.1 has no exact binary form, so `16.3 / 0.1` is
    /// 162.99999999999997: a value counts as a multiple when |value/step − round(value/step)| < 1e-9, which no
    /// limit a charger could act on (1.6: at most 0.1 apart) comes near. A step that is not positive and finite
    /// constrains nothing.
    public static func isMultiple(_ value: Double, of step: Double) -> Bool {
        guard step > 0, step.isFinite else { return true }
        let quotient = value / step
        guard quotient.isFinite else { return false }
        return abs(quotient - quotient.rounded()) < 1e-9
    }

    /// The value as an integer when it is one that fits 32 bits: `7` and `7.0` do; `7.5`, `1e300` and
    /// `2147483648` do not.
    static func int32(_ value: JSONValue) -> Int64? {
        switch value {
        case .integer(let i): return Int32(exactly: i).map(Int64.init)
        case .number(let d): return Int32(exactly: d).map(Int64.init)
        default: return nil
        }
    }

    /// Repairs the quirks `tolerance` accepts: enum values in the wrong case, numbers sent as strings,
    /// fields the definition does not have.
    public func tolerate(_ value: JSONValue, _ tolerance: Tolerance) -> JSONValue {
        if tolerance.isStrict { return value }
        switch (self, value) {
        case (.object(let object), .object(let members)):
            var repaired: JSONObject = [:]
            for (key, member) in members {
                if let field = object.field(key) {
                    repaired[key] = field.shape.tolerate(member, tolerance)
                } else if object.open || !tolerance.unknownFields {
                    repaired[key] = member
                }
            }
            return .object(repaired)
        case (.array(let element, _, _), .array(let elements)):
            return .array(elements.map { element.tolerate($0, tolerance) })
        case (.integer, .string(let text)) where tolerance.numericStrings:
            let trimmed = text.trimmingSpaces
            if let i = Int64(trimmed) { return .integer(i) }
            if let d = Double(trimmed), let i = Int64(exactly: d) { return .integer(i) }
            return value
        case (.number, .string(let text)) where tolerance.numericStrings:
            let trimmed = text.trimmingSpaces
            if let i = Int64(trimmed) { return .integer(i) }
            if let d = Double(trimmed), d.isFinite { return .number(d) }
            return value
        case (.enumeration(let values), .string(let text)) where tolerance.enumCase:
            if values.contains(text) { return value }
            let lowered = text.lowercased()
            return values.first { $0.lowercased() == lowered }.map(JSONValue.string) ?? value
        default:
            return value
        }
    }
}

extension String {
    var trimmingSpaces: String {
        if utf8.first != UInt8(ascii: " ") && utf8.last != UInt8(ascii: " ") { return self }
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}
