import OCPP
import OCPPRules

/// The fuzzer's bytes read as a stream of choices. Past the end every read is zero, so that a short input still
/// makes a whole (minimal) value and libFuzzer's mutations only ever change choices.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer, from position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var isExhausted: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A choice among `count` (> 0): one byte, two when there are more than 256 options.
    mutating func below(_ count: Int) -> Int {
        precondition(count > 0)
        if count <= 256 { return Int(byte()) % count }
        return (Int(byte()) << 8 | Int(byte())) % count
    }

    mutating func uint64() -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { value |= UInt64(byte()) << UInt64(shift) }
        return value
    }

    /// Up to `maximum` raw bytes, the count chosen first.
    mutating func data(upTo maximum: Int) -> [UInt8] {
        let count = below(maximum + 1)
        return (0..<count).map { _ in byte() }
    }
}

/// Values that satisfy a shape, chosen by the input: what a valid peer might send, the seed a mutation starts
/// from. With an exhausted input: required fields only, minimums, the first enum value.
enum ValueSampler {
    static func value(_ shape: Shape, _ input: inout FuzzInput, depth: Int = 0) -> JSONValue {
        switch shape {
        case .object(let object):
            var members: JSONObject = [:]
            for field in object.fields where field.required || (depth < 6 && input.bool()) {
                members[field.name] = value(field.shape, &input, depth: depth + 1)
            }
            return .object(members)
        case .array(let element, let minimum, let maximum):
            let low = minimum ?? 0
            let high = Swift.max(low, Swift.min(maximum ?? (low + 3), low + 3))
            let count = low + input.below(high - low + 1)
            return .array((0..<count).map { _ in value(element, &input, depth: depth + 1) })
        case .integer(let minimum):
            // Small numbers mostly: transaction ids, connector ids and the like are counted from 0 or 1.
            let base = minimum ?? 0
            let choice = input.byte()
            let offset: Int64 = choice < 200 ? Int64(choice % 4) : Int64(choice) * 997
            return .integer(Swift.min(base + offset, Int64(Int32.max)))
        case .number(let minimum, _):
            return .number((minimum ?? 0) + Double(input.byte()) / 10)
        case .boolean:
            return .bool(input.bool())
        case .string(let maxLength):
            let limit = Swift.min(maxLength ?? 20, 20)
            guard limit > 0 else { return .string("") }
            let alphabets = ["0123456789", "0123456789ABCDEF", "abcXYZ_-. 09", "1.5", "é€😀a"]
            let alphabet = Array(alphabets[input.below(alphabets.count)])
            let count = 1 + input.below(limit)
            return .string(String((0..<count).map { _ in alphabet[input.below(alphabet.count)] }))
        case .dateTime:
            return .string(dateTime(&input))
        case .any:
            let choices: [JSONValue] = [.string("text"), .integer(7), .object(["k": .string("v")]), .array([.null])]
            return choices[input.below(choices.count)]
        case .enumeration(let values):
            return .string(values.isEmpty ? "" : values[input.below(values.count)])
        }
    }

    static func dateTime(_ input: inout FuzzInput) -> String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let choice = input.byte()
        let year = 2026 + Int(choice % 4)
        var text = "\(year)-\(two(1 + input.below(12)))-\(two(1 + input.below(28)))T"
        text += "\(two(input.below(24))):\(two(input.below(60))):\(two(input.below(60)))"
        switch choice >> 6 {
        case 1: text += ".123Z"
        case 2: text += "+01:00"
        case 3: text += ".5-05:30"
        default: text += "Z"
        }
        return text
    }
}

/// Changes a value in place: descends by the input's choices to one member or element (or one the shape has but
/// the value lacks) and replaces, removes or multiplies it. Replacements are the values that have broken
/// parsers and converters before: integral doubles beyond Int64, fractions in integer fields, strings at and past
/// their length, numbers as strings, wrong types.
enum ValueMutator {
    static func mutate(_ value: JSONValue, shape: Shape?, _ input: inout FuzzInput, depth: Int = 0) -> JSONValue {
        let here = input.byte() % 4 == 0 || depth >= 8
        switch value {
        case .object(let members) where !here:
            var keys = members.keys.sorted()
            var objectShape: ObjectShape?
            if case .object(let object)? = shape {
                objectShape = object
                keys += object.fields.map(\.name).filter { members[$0] == nil }
            }
            keys.append("unknownField")
            let key = keys[input.below(keys.count)]
            let childShape = objectShape?.field(key)?.shape
            var copy = members
            if members[key] != nil, input.byte() % 8 == 0 {
                copy[key] = nil
                return .object(copy)
            }
            let child = members[key] ?? childShape.map { ValueSampler.value($0, &input, depth: depth + 1) } ?? .null
            copy[key] = mutate(child, shape: childShape, &input, depth: depth + 1)
            return .object(copy)
        case .array(var elements) where !here:
            var elementShape: Shape?
            if case .array(let element, _, _)? = shape { elementShape = element }
            let operation = input.byte() % 8
            if elements.isEmpty || operation == 0 {
                let extra = elementShape.map { ValueSampler.value($0, &input, depth: depth + 1) } ?? .integer(1)
                elements.append(extra)
                return .array(elements)
            }
            let index = input.below(elements.count)
            switch operation {
            case 1:
                elements.remove(at: index)
            case 2:
                // Many copies: lists the rules map element by element.
                let copies = 1 + input.below(200)
                elements += Array(repeating: elements[index], count: copies)
            default:
                elements[index] = mutate(elements[index], shape: elementShape, &input, depth: depth + 1)
            }
            return .array(elements)
        default:
            return replacement(for: value, shape: shape, &input)
        }
    }

    static let interesting: [JSONValue] = [
        .number(1e300), .number(-1e300), .number(9_223_372_036_854_775_808.0), .number(-9_223_372_036_854_777_856.0),
        .number(18_446_744_073_709_551_616.0), .number(1.5), .number(-1.5), .number(0.5), .number(-0.0),
        .number(2_147_483_648.0), .number(-2_147_483_649.0), .number(9e15), .number(9_007_199_254_740_993.0),
        .number(1e15), .number(.leastNonzeroMagnitude), .number(1.7976931348623157e308), .number(1e-7),
        .integer(.max), .integer(.min), .integer(Int64(Int32.max)), .integer(Int64(Int32.min)),
        .integer(Int64(Int32.max) + 1), .integer(Int64(Int32.min) - 1), .integer(-1), .integer(0), .integer(1),
        .integer(2), .integer(9_000_000_000_000_000),
        .string(""), .string(" "), .string("1e300"), .string("9223372036854775808"), .string("-1"), .string("1.5"),
        .string(" 7 "), .string("NaN"), .string("inf"), .string("0x10"), .string("2147483648"),
        .string(String(repeating: "9", count: 400)), .string(String(repeating: "é", count: 300)),
        .string("2026-13-45T99:99:99Z"), .string("2026-01-01T00:00:00Z"), .string("2026-02-29T00:00:00Z"),
        .string("2026-01-01T00:00:00.1234567890123456789+14:00"), .string("9999-12-31T23:59:60Z"),
        .string("0000-01-01T00:00:00-23:59"), .string("\u{0}"), .string("😀"), .string("e\u{301}"),
        .string("{\"a\":1}"), .string("[2,\"1\",\"Heartbeat\",{}]"),
        .null, .bool(true), .bool(false), .array([]), .object([:]), .array([.integer(1)]), .object(["a": .null]),
        .array([.null]),
    ]

    static func replacement(for value: JSONValue, shape: Shape?, _ input: inout FuzzInput) -> JSONValue {
        switch input.byte() % 4 {
        case 0, 1:
            return interesting[input.below(interesting.count)]
        case 2:
            // A number from the input's bits: a Double when finite, else the integer.
            let bits = input.uint64()
            let d = Double(bitPattern: bits)
            return input.bool() && d.isFinite ? .number(d) : .integer(Int64(bitPattern: bits))
        default:
            return shapeAware(value, shape: shape, &input)
        }
    }

    /// Values at the edge of what the shape allows.
    static func shapeAware(_ value: JSONValue, shape: Shape?, _ input: inout FuzzInput) -> JSONValue {
        switch shape {
        case .integer(let minimum)?:
            let m = minimum ?? 0
            let options: [JSONValue] = [
                .integer(m &- 1), .integer(m), .number(Double(m) + 0.5), .string(" \(m &+ 1) "),
                .string("\(m)e0"), .string("\(Double(m) + 1e300)"), .number(Double(m) - 1),
            ]
            return options[input.below(options.count)]
        case .number(let minimum, _)?:
            let m = minimum ?? 0
            let options: [JSONValue] = [
                .number(m - 1e-9), .number(m), .number(m.nextDown), .string("\(m)"), .string(" 1e308 "),
                .string("1e400"), .integer(Int64.max),
            ]
            return options[input.below(options.count)]
        case .string(let maxLength)?:
            let n = Swift.min(maxLength ?? 50, 20_000)
            let options: [JSONValue] = [
                .string(String(repeating: "a", count: n)), .string(String(repeating: "a", count: n + 1)),
                .string(String(repeating: "é", count: n)), .string(String(repeating: "e\u{301}", count: n)),
                .string(String(decoding: input.data(upTo: 64), as: UTF8.self)),
            ]
            return options[input.below(options.count)]
        case .enumeration(let values)? where !values.isEmpty:
            let v = values[input.below(values.count)]
            let options: [JSONValue] = [
                .string(v.lowercased()), .string(v.uppercased()), .string(v + " "), .string(""),
            ]
            return options[input.below(options.count)]
        case .dateTime?:
            return .string(String(decoding: input.data(upTo: 40), as: UTF8.self))
        default:
            return .string(String(decoding: input.data(upTo: 40), as: UTF8.self))
        }
    }
}
