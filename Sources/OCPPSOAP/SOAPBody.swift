import OCPP
import OCPPRules

/// A body element ⇄ the JSON payload of the same message, driven by the message's shape: field names are the
/// WSDL's (the same as OCPP-J's), an array is its element repeated, scalars take the JSON type of their shape.
/// Element order is not checked on the way in (JSON has none); on the way out it is the WSDL's.
enum SOAPBody {
    // MARK: XML → JSON

    /// The payload of `element` (a body element of `shape`), checked against the shape.
    static func decode(
        _ element: XMLElementNode, shape: Shape, path: String, namespace: String, layout: SOAPLayout
    ) -> Result<JSONValue, ShapeViolation> {
        var decoder = Decoder(namespace: namespace, simpleContent: layout.simpleContent)
        guard let value = decoder.value(element, shape, path: path, at: "") else {
            return .failure(decoder.violation ?? ShapeViolation(kind: .wrongType, path: "", detail: "unreadable"))
        }
        if let violation = shape.violation(of: value) { return .failure(violation) }
        return .success(value)
    }

    private struct Decoder {
        let namespace: String
        let simpleContent: Set<String>
        var violation: ShapeViolation?

        init(namespace: String, simpleContent: Set<String>) {
            self.namespace = namespace
            self.simpleContent = simpleContent
        }

        mutating func fail(_ kind: ShapeViolation.Kind, _ at: String, _ detail: String) -> JSONValue? {
            violation = ShapeViolation(kind: kind, path: at, detail: detail)
            return nil
        }

        /// `path` is the layout path (`MeterValues.request.values[].value[]`), `at` the payload path for messages.
        mutating func value(_ element: XMLElementNode, _ shape: Shape, path: String, at: String) -> JSONValue? {
            switch shape {
            case .object(let object):
                if simpleContent.contains(path) { return simple(element, object, at: at) }
                return self.object(element, object, path: path, at: at)
            case .array:
                return fail(.wrongType, at, "nested arrays have no XML form")
            default:
                guard element.children.isEmpty else { return fail(.wrongType, at, "expected text, found elements") }
                return scalar(element.text, shape, at: at)
            }
        }

        mutating func object(_ element: XMLElementNode, _ object: ObjectShape, path: String, at: String) -> JSONValue? {
            if !element.text.allSatisfy(\.isXMLSpace) { return fail(.wrongType, at, "expected elements, found text") }
            var members: JSONObject = [:]
            var lists: [String: [JSONValue]] = [:]
            for child in element.children {
                let childAt = at.isEmpty ? child.name : at + "." + child.name
                guard SOAPNamespaces.same(child.namespace, namespace), let field = object.field(child.name) else {
                    if object.open { continue }
                    return fail(.unknownField, childAt, "unknown element")
                }
                if case .array(let item, _, _) = field.shape {
                    let index = lists[child.name, default: []].count
                    guard
                        let value = value(
                            child, item, path: path + "." + child.name + "[]", at: childAt + "[\(index)]")
                    else { return nil }
                    lists[child.name, default: []].append(value)
                } else {
                    guard members[child.name] == nil else { return fail(.badValue, childAt, "element repeated") }
                    guard let value = value(child, field.shape, path: path + "." + child.name, at: childAt) else {
                        return nil
                    }
                    members[child.name] = value
                }
            }
            for (name, list) in lists { members[name] = .array(list) }
            return .object(members)
        }

        /// Text and attributes: the text is the field `value`, each unprefixed attribute the field of its name.
        mutating func simple(_ element: XMLElementNode, _ object: ObjectShape, at: String) -> JSONValue? {
            if !element.children.isEmpty { return fail(.wrongType, at, "expected text, found elements") }
            var members: JSONObject = [:]
            if let field = object.field("value") {
                guard let text = scalar(element.text, field.shape, at: at.isEmpty ? "value" : at + ".value") else {
                    return nil
                }
                members["value"] = text
            }
            for attribute in element.attributes where attribute.namespace == nil {
                let attributeAt = at.isEmpty ? attribute.name : at + "." + attribute.name
                guard attribute.name != "value", let field = object.field(attribute.name) else {
                    return fail(.unknownField, attributeAt, "unknown attribute")
                }
                guard let value = scalar(attribute.value, field.shape, at: attributeAt) else { return nil }
                members[attribute.name] = value
            }
            return .object(members)
        }

        /// Text as the JSON value of a scalar shape (XSD lexical forms; whitespace collapsed where XSD does).
        mutating func scalar(_ text: String, _ shape: Shape, at: String) -> JSONValue? {
            switch shape {
            case .integer:
                guard let value = SOAPScalars.integer(text) else { return fail(.wrongType, at, "expected an integer") }
                return .integer(value)
            case .number:
                guard let value = SOAPScalars.number(text) else { return fail(.wrongType, at, "expected a number") }
                return value
            case .boolean:
                switch SOAPScalars.collapsed(text) {
                case "true", "1": return .bool(true)
                case "false", "0": return .bool(false)
                default: return fail(.wrongType, at, "expected true or false")
                }
            case .dateTime:
                return .string(SOAPScalars.collapsed(text))
            case .string, .enumeration, .any:
                return .string(text)
            case .object, .array:
                return fail(.wrongType, at, "expected elements")
            }
        }
    }

    // MARK: JSON → XML

    /// Writes `payload` (already checked against `shape`) as the body element `name` in `namespace`, fields in
    /// the shape's order.
    static func encode(
        _ payload: JSONValue, shape: Shape, name: String, namespace: String, path: String, layout: SOAPLayout,
        into writer: inout XMLWriter
    ) throws(XMLWriteError) {
        try writer.start(name, [("xmlns", namespace)])
        try fields(payload, shape, path: path, layout: layout, into: &writer)
        writer.end()
    }

    private static func fields(
        _ value: JSONValue, _ shape: Shape, path: String, layout: SOAPLayout, into writer: inout XMLWriter
    ) throws(XMLWriteError) {
        guard case .object(let object) = shape, case .object(let members) = value else { return }
        for field in object.fields {
            guard let member = members[field.name], member != .null else { continue }
            if case .array(let item, _, _) = field.shape, case .array(let elements) = member {
                for element in elements {
                    try self.element(
                        field.name, element, item, path: path + "." + field.name + "[]", layout: layout, into: &writer)
                }
            } else {
                try element(
                    field.name, member, field.shape, path: path + "." + field.name, layout: layout, into: &writer)
            }
        }
    }

    private static func element(
        _ name: String, _ value: JSONValue, _ shape: Shape, path: String, layout: SOAPLayout,
        into writer: inout XMLWriter
    ) throws(XMLWriteError) {
        guard case .object(let object) = shape else {
            try writer.element(name, text: SOAPScalars.text(value))
            return
        }
        guard layout.simpleContent.contains(path), case .object(let members) = value else {
            try writer.start(name)
            try fields(value, shape, path: path, layout: layout, into: &writer)
            writer.end()
            return
        }
        var attributes: [(String, String)] = []
        for field in object.fields where field.name != "value" {
            if let member = members[field.name], member != .null {
                attributes.append((field.name, SOAPScalars.text(member)))
            }
        }
        try writer.element(name, attributes, text: members["value"].map(SOAPScalars.text) ?? "")
    }
}

/// XSD lexical forms of the scalars OCPP uses.
enum SOAPScalars {
    /// XSD `whiteSpace="collapse"`: what int, decimal, boolean and dateTime values are compared after.
    static func collapsed(_ text: String) -> String {
        let parts = text.split(whereSeparator: \.isXMLSpace)
        return parts.joined(separator: " ")
    }

    /// An `xs:int`/`xs:integer` lexical value: optional sign, digits. Anything that does not fit 64 bits is not an
    /// integer here; the shape check then refuses what does not fit 32.
    static func integer(_ text: String) -> Int64? {
        let value = collapsed(text)
        guard !value.isEmpty,
            value.utf8.allSatisfy({ $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) })
        else { return nil }
        return Int64(value)
    }

    /// An `xs:decimal` lexical value (`-12.5`, `+.5`, `7.`), or a float/double one with an exponent. Infinities
    /// and NaN have no JSON form and are refused, as are hexadecimal forms Swift would read.
    static func number(_ text: String) -> JSONValue? {
        let value = collapsed(text)
        var bytes = Substring(value).utf8[...]
        if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            bytes = bytes.dropFirst()
        }
        var digits = 0
        var point = false
        var exponent = false
        var exponentDigits = 0
        var previous: UInt8 = 0
        for byte in bytes {
            switch byte {
            case 0x30...0x39:
                if exponent { exponentDigits += 1 } else { digits += 1 }
            case UInt8(ascii: "."):
                if point || exponent { return nil }
                point = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                if exponent || digits == 0 { return nil }
                exponent = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                if previous != UInt8(ascii: "e") && previous != UInt8(ascii: "E") { return nil }
            default:
                return nil
            }
            previous = byte
        }
        guard digits > 0, !exponent || exponentDigits > 0 else { return nil }
        if !point && !exponent, let integer = Int64(value.hasPrefix("+") ? String(value.dropFirst()) : value) {
            return .integer(integer)
        }
        guard let double = Double(value), double.isFinite else { return nil }
        return .number(double)
    }

    /// The XML text of a scalar JSON value: numbers in decimal notation (xs:decimal has no exponent).
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .integer(let integer): return String(integer)
        case .number(let number): return decimal(number)
        case .bool(let bool): return bool ? "true" : "false"
        case .null: return ""
        case .array, .object: return value.jsonText  // never reached for a checked payload
        }
    }

    /// `number` in plain decimal notation: the shortest digits that read back as it, without an exponent.
    static func decimal(_ number: Double) -> String {
        guard number.isFinite else { return "0" }
        if number == number.rounded(), abs(number) < 1e15, let integer = Int64(exactly: number) {
            return String(integer)
        }
        let text = "\(number)"
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }),
            let exponent = Int(text[text.index(after: e)...])
        else { return text }
        var mantissa = String(text[..<e])
        let negative = mantissa.hasPrefix("-")
        if negative { mantissa.removeFirst() }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(parts[0])
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = whole + fraction
        var pointAt = whole.count + exponent  // position of the decimal point within `digits`
        if pointAt <= 0 {
            digits = String(repeating: "0", count: 1 - pointAt) + digits
            pointAt = 1
        } else if pointAt > digits.count {
            digits += String(repeating: "0", count: pointAt - digits.count)
        }
        var result = String(digits.prefix(pointAt))
        let rest = digits.dropFirst(pointAt).replacingTrailingZeros()
        if !rest.isEmpty { result += "." + rest }
        return (negative ? "-" : "") + result
    }
}

/// OCPP namespaces are written with and without their trailing slash (OCPP-S §8 lists 1.6's without): both name
/// the same service.
enum SOAPNamespaces {
    static func same(_ a: String, _ b: String) -> Bool { trimmed(a) == trimmed(b) }

    static func trimmed(_ namespace: String) -> Substring {
        namespace.hasSuffix("/") ? Substring(namespace).dropLast() : Substring(namespace)
    }
}

extension Character {
    /// XML whitespace (§2.3 S): space, tab, carriage return, line feed.
    var isXMLSpace: Bool { self == " " || self == "\t" || self == "\n" || self == "\r" || self == "\r\n" }
}

extension Substring {
    fileprivate func replacingTrailingZeros() -> String {
        var text = self
        while text.last == "0" { text.removeLast() }
        return String(text)
    }
}
