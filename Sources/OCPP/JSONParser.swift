/// A strict RFC 8259 parser from UTF-8 bytes to ``JSONValue``. Foundation's decoders cost about 150 µs for a
/// 300-byte MeterValues frame on Linux (Benchmarks/); every frame the proxy relays is parsed, so it gets its own.
/// Nesting is limited to ``maximumDepth`` so that no input can exhaust the stack.
struct JSONParser {
    static let maximumDepth = 128

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// The fields (and elements) of the objects (arrays) being read, innermost last: each container is built in one
    /// allocation of its final size once its end is reached, instead of growing one member at a time.
    private var fieldStack: [(String, JSONValue)] = []
    private var elementStack: [JSONValue] = []

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The value of a whole document, or nil when the bytes are not exactly one JSON value.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipWhitespace()
        return parser.index == bytes.count ? value : nil
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// One element of a document's top-level array: a scalar read into its value, or an object or array as its
    /// byte range, with its value when it was built.
    enum TopElement {
        case value(JSONValue)
        case object(Range<Int>, JSONValue?)
        case array(Range<Int>, JSONValue?)
    }

    /// What a document is at its top level, for readers that need only the head of an array (the RPC envelope).
    enum TopLevel {
        case array([TopElement])
        /// Valid JSON, but not an array.
        case other
    }

    /// Checks the whole document as strictly as ``parse(_:)`` and reads the elements of a top-level array: nested
    /// objects and arrays are built only when `build` is set, and otherwise only checked. Nil when the bytes are
    /// not one JSON value.
    static func parseTopLevel(_ bytes: UnsafeBufferPointer<UInt8>, build: Bool = false) -> TopLevel? {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        guard parser.current == UInt8(ascii: "[") else {
            guard parser.skipValue(depth: 0) else { return nil }
            parser.skipWhitespace()
            return parser.index == bytes.count ? .other : nil
        }
        parser.index += 1
        var elements: [TopElement] = []
        elements.reserveCapacity(5)
        parser.skipWhitespace()
        if parser.current == UInt8(ascii: "]") {
            parser.index += 1
        } else {
            elementLoop: while true {
                parser.skipWhitespace()
                let start = parser.index
                switch parser.current {
                case UInt8(ascii: "{")?, UInt8(ascii: "[")?:
                    let isObject = parser.current == UInt8(ascii: "{")
                    var built: JSONValue?
                    if build {
                        guard let value = parser.value(depth: 1) else { return nil }
                        built = value
                    } else {
                        guard parser.skipValue(depth: 1) else { return nil }
                    }
                    let range = start..<parser.index
                    elements.append(isObject ? .object(range, built) : .array(range, built))
                default:
                    guard let element = parser.value(depth: 1) else { return nil }
                    elements.append(.value(element))
                }
                parser.skipWhitespace()
                switch parser.current {
                case UInt8(ascii: ",")?: parser.index += 1
                case UInt8(ascii: "]")?:
                    parser.index += 1
                    break elementLoop
                default: return nil
                }
            }
        }
        parser.skipWhitespace()
        return parser.index == bytes.count ? .array(elements) : nil
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) -> JSONValue? {
        guard depth < Self.maximumDepth, let byte = current else { return nil }
        switch byte {
        case UInt8(ascii: "{"): return object(depth: depth)
        case UInt8(ascii: "["): return array(depth: depth)
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return nil }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return nil }
        index += count
        return value
    }

    private mutating func object(depth: Int) -> JSONValue? {
        index += 1
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        let base = fieldStack.count
        defer { fieldStack.removeSubrange(base...) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { return nil }
            index += 1
            skipWhitespace()
            guard let element = value(depth: depth + 1) else { return nil }
            fieldStack.append((key, element))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ",")?: index += 1
            case UInt8(ascii: "}")?:
                index += 1
                // A repeated key keeps its last value.
                return .object(JSONObject(parsed: fieldStack[base...]))
            default: return nil
            }
        }
    }

    private mutating func array(depth: Int) -> JSONValue? {
        index += 1
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array([])
        }
        let base = elementStack.count
        defer { elementStack.removeSubrange(base...) }
        while true {
            skipWhitespace()
            guard let element = value(depth: depth + 1) else { return nil }
            elementStack.append(element)
            skipWhitespace()
            switch current {
            case UInt8(ascii: ",")?: index += 1
            case UInt8(ascii: "]")?:
                index += 1
                return .array(Array(elementStack[base...]))
            default: return nil
            }
        }
    }

    // MARK: Checking without building

    /// Moves past one value, accepting exactly what ``value(depth:)`` accepts, without building it.
    private mutating func skipValue(depth: Int) -> Bool {
        guard depth < Self.maximumDepth, let byte = current else { return false }
        switch byte {
        case UInt8(ascii: "{"): return skipContainer(depth: depth, close: UInt8(ascii: "}"), keyed: true)
        case UInt8(ascii: "["): return skipContainer(depth: depth, close: UInt8(ascii: "]"), keyed: false)
        case UInt8(ascii: "\""): return skipString()
        case UInt8(ascii: "t"): return literal("true", .null) != nil
        case UInt8(ascii: "f"): return literal("false", .null) != nil
        case UInt8(ascii: "n"): return literal("null", .null) != nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return skipNumber()
        default: return false
        }
    }

    private mutating func skipContainer(depth: Int, close: UInt8, keyed: Bool) -> Bool {
        index += 1
        skipWhitespace()
        if current == close {
            index += 1
            return true
        }
        while true {
            skipWhitespace()
            if keyed {
                guard current == UInt8(ascii: "\""), skipString() else { return false }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { return false }
                index += 1
                skipWhitespace()
            }
            guard skipValue(depth: depth + 1) else { return false }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ",")?: index += 1
            case close?:
                index += 1
                return true
            default: return false
            }
        }
    }

    /// A string without escapes is checked in place; one with escapes goes through ``string()``.
    private mutating func skipString() -> Bool {
        let quote = index
        index += 1
        switch plainRun() {
        case .closed(let run, let ascii):
            return ascii || String(validating: run, as: UTF8.self) != nil
        case .escape:
            index = quote
            return string() != nil
        case .invalid:
            return false
        }
    }

    /// How a run of string bytes without escapes ended.
    private enum PlainRun {
        /// At the closing quote, now passed; the run's bytes and whether they are all ASCII.
        case closed(UnsafeBufferPointer<UInt8>, ascii: Bool)
        /// At a backslash, where `index` now is.
        case escape
        /// A control character or the end of the input.
        case invalid
    }

    /// From just after an opening quote, up to the closing quote or the first escape.
    private mutating func plainRun() -> PlainRun {
        let start = index
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return .closed(run, ascii: ascii)
            }
            if byte == UInt8(ascii: "\\") { return .escape }
            if byte < 0x20 { return .invalid }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        return .invalid
    }

    /// Short integers are checked in place; anything that might not fit a Double goes through ``number()``.
    private mutating func skipNumber() -> Bool {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, isDigit(first) else { return false }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = current, isDigit(byte) { index += 1 }
        }
        if index - start <= 18, current != UInt8(ascii: "."), current != UInt8(ascii: "e"), current != UInt8(ascii: "E")
        {
            return true
        }
        index = start
        return number() != nil
    }

    /// A string starting at the opening quote; escapes decoded, UTF-8 validated.
    private mutating func string() -> String? {
        index += 1
        let start = index
        // Fast path: no escapes.
        switch plainRun() {
        case .closed(let run, let ascii):
            // ASCII cannot be invalid UTF-8: skip the (generic, slower) validating initialiser.
            return ascii ? String(decoding: run, as: UTF8.self) : String(validating: run, as: UTF8.self)
        case .invalid:
            return nil
        case .escape:
            break
        }
        var decoded = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(validating: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard let escape = current else { return nil }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: return nil
                }
            default:
                if byte < 0x20 { return nil }
                decoded.append(byte)
                index += 1
            }
        }
        return nil
    }

    /// After `\u`: four hex digits, and a low surrogate escape after a high one. Lone surrogates are refused.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let first = hex4() else { return nil }
        if (0xD800...0xDBFF).contains(first) {
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { return nil }
            index += 2
            guard let second = hex4(), (0xDC00...0xDFFF).contains(second) else { return nil }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        }
        return Unicode.Scalar(first)
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; integers that fit stay exact.
    private mutating func number() -> JSONValue? {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, isDigit(first) else { return nil }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = current, isDigit(byte) { index += 1 }
        }
        var integral = true
        if current == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard let byte = current, isDigit(byte) else { return nil }
            while let byte = current, isDigit(byte) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            integral = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let byte = current, isDigit(byte) else { return nil }
            while let byte = current, isDigit(byte) { index += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int64(text) { return .integer(value) }
        // A number too large for a Double is refused rather than read as infinity (JSON has none).
        guard let value = Double(text), value.isFinite else { return nil }
        return .number(value)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
