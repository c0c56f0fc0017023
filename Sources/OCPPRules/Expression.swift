import OCPP

/// One expression of a rule file: a path into a payload, a constant, an operator or a function call.
public indirect enum Expression: Sendable, Equatable {
    case constant(JSONValue)
    case path(PathRoot, [PathStep])
    case call(FunctionName, [Expression])
    case binary(BinaryOperator, Expression, Expression)
    case not(Expression)
    /// Fields of a computed value: `find(...).value`, `(a ?? b).id`.
    case access(Expression, [PathStep])
}

/// The name of a function a rule calls, resolved to the function when the rule is read; an unknown name is kept
/// for the checker to report (and fails if evaluated).
public struct FunctionName: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String
    public let known: RuleFunction?

    public init(_ name: String) {
        self.name = name
        self.known = RuleFunction(rawValue: name)
    }

    public init(stringLiteral name: String) { self.init(name) }

    public var description: String { name }

    public static func == (lhs: FunctionName, rhs: FunctionName) -> Bool { lhs.name == rhs.name }

    /// `case .call("enum", let arguments)`.
    public static func ~= (pattern: String, value: FunctionName) -> Bool { pattern == value.name }
}

/// Where a path starts: the payload being translated (`$`), the element of a list being mapped (`@`),
/// or a named value (`%name`).
public enum PathRoot: Sendable, Equatable, Hashable {
    case payload
    case element
    case variable(String)
}

public enum PathStep: Sendable, Equatable, Hashable {
    case field(String)
    case index(Int)
}

public enum BinaryOperator: String, Sendable {
    case coalesce = "??"
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case and = "&&"
    case or = "||"
}

/// Why an expression could not be read, with the character offset where reading stopped.
public struct ExpressionSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at character \(offset + 1)" }
}

extension Expression {
    /// Whether a YAML string in a template is an expression rather than a constant: it starts with `$`, `@`, `%`,
    /// `(`, `!`, a quote, or a function call `name(`.
    public static func looksLikeExpression(_ text: String) -> Bool {
        guard let first = text.first else { return false }
        if "$@%(!'".contains(first) { return true }
        var sawName = false
        for character in text {
            if character.isLetter || character.isNumber || character == "_" || character == "." {
                sawName = true
                continue
            }
            return character == "(" && sawName && text.first!.isLetter
        }
        return false
    }

    /// Reads an expression; the whole text must be consumed.
    public static func parse(_ text: String) throws(ExpressionSyntaxError) -> Expression {
        var parser = ExpressionParser(Array(text.unicodeScalars))
        let expression = try parser.parseOr()
        parser.skipSpaces()
        if !parser.atEnd { throw parser.error("unexpected '\(parser.peekText)'") }
        return expression
    }

    func visit(_ body: (Expression) -> Void) {
        body(self)
        switch self {
        case .constant, .path: break
        case .call(_, let arguments): arguments.forEach { $0.visit(body) }
        case .binary(_, let lhs, let rhs):
            lhs.visit(body)
            rhs.visit(body)
        case .not(let operand): operand.visit(body)
        case .access(let base, _): base.visit(body)
        }
    }
}

private struct ExpressionParser {
    let scalars: [Unicode.Scalar]
    var position = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var atEnd: Bool { position >= scalars.count }
    var peekText: String { atEnd ? "end" : String(String.UnicodeScalarView(scalars[position...].prefix(12))) }

    func error(_ message: String) -> ExpressionSyntaxError { ExpressionSyntaxError(message: message, offset: position) }

    mutating func skipSpaces() {
        while !atEnd, scalars[position].properties.isWhitespace { position += 1 }
    }

    mutating func take(_ token: String) -> Bool {
        skipSpaces()
        let tokenScalars = Array(token.unicodeScalars)
        guard position + tokenScalars.count <= scalars.count,
            Array(scalars[position..<position + tokenScalars.count]) == tokenScalars
        else { return false }
        position += tokenScalars.count
        return true
    }

    mutating func parseOr() throws(ExpressionSyntaxError) -> Expression {
        var lhs = try parseAnd()
        while take("||") { lhs = .binary(.or, lhs, try parseAnd()) }
        return lhs
    }

    mutating func parseAnd() throws(ExpressionSyntaxError) -> Expression {
        var lhs = try parseComparison()
        while take("&&") { lhs = .binary(.and, lhs, try parseComparison()) }
        return lhs
    }

    mutating func parseComparison() throws(ExpressionSyntaxError) -> Expression {
        let lhs = try parseCoalesce()
        for op in [BinaryOperator.equal, .notEqual, .lessOrEqual, .greaterOrEqual, .less, .greater]
        where take(op.rawValue) {
            return .binary(op, lhs, try parseCoalesce())
        }
        return lhs
    }

    mutating func parseCoalesce() throws(ExpressionSyntaxError) -> Expression {
        var lhs = try parseUnary()
        while take("??") { lhs = .binary(.coalesce, lhs, try parseUnary()) }
        return lhs
    }

    mutating func parseUnary() throws(ExpressionSyntaxError) -> Expression {
        skipSpaces()
        if !atEnd, scalars[position] == "!", !(position + 1 < scalars.count && scalars[position + 1] == "=") {
            position += 1
            return .not(try parseUnary())
        }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws(ExpressionSyntaxError) -> Expression {
        skipSpaces()
        guard !atEnd else { throw error("expected a value") }
        let c = scalars[position]
        switch c {
        case "(":
            position += 1
            let inner = try parseOr()
            guard take(")") else { throw error("expected ')'") }
            let steps = try parseSteps(allowLeadingName: false)
            return steps.isEmpty ? inner : .access(inner, steps)
        case "$":
            position += 1
            return .path(.payload, try parseSteps(allowLeadingName: true))
        case "@":
            position += 1
            return .path(.element, try parseSteps(allowLeadingName: true))
        case "%":
            position += 1
            guard let name = readName() else { throw error("expected a name after '%'") }
            return .path(.variable(name), try parseSteps(allowLeadingName: false))
        case "'":
            return .constant(.string(try readQuoted()))
        case "-", "0"..."9":
            return .constant(try readNumber())
        default:
            guard let name = readName(allowDots: true) else { throw error("unexpected '\(peekText)'") }
            switch name {
            case "true": return .constant(.bool(true))
            case "false": return .constant(.bool(false))
            case "null": return .constant(.null)
            default: break
            }
            // A bare word is a constant: `Accepted`, `Energy.Active.Import.Register`, an enum map's name.
            guard take("(") else { return .constant(.string(name)) }
            var arguments: [Expression] = []
            if !take(")") {
                repeat { arguments.append(try parseOr()) } while take(",")
                guard take(")") else { throw error("expected ',' or ')' in the arguments of \(name)") }
            }
            let steps = try parseSteps(allowLeadingName: false)
            let function = FunctionName(name)
            return steps.isEmpty ? .call(function, arguments) : .access(.call(function, arguments), steps)
        }
    }

    /// `.field`, `[index]` after a root; `$name` and `@name` may start with a field name directly.
    mutating func parseSteps(allowLeadingName: Bool) throws(ExpressionSyntaxError) -> [PathStep] {
        var steps: [PathStep] = []
        if allowLeadingName, let name = readName() { steps.append(.field(name)) }
        while !atEnd {
            if scalars[position] == "." {
                position += 1
                guard let name = readName() else { throw error("expected a field name after '.'") }
                steps.append(.field(name))
            } else if scalars[position] == "[" {
                position += 1
                skipSpaces()
                var digits = ""
                while !atEnd, ("0"..."9").contains(scalars[position]) {
                    digits.unicodeScalars.append(scalars[position])
                    position += 1
                }
                guard let index = Int(digits), take("]") else { throw error("expected [number]") }
                steps.append(.index(index))
            } else {
                break
            }
        }
        return steps
    }

    mutating func readName(allowDots: Bool = false) -> String? {
        var name = ""
        while !atEnd {
            let c = scalars[position]
            let ok =
                c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_"
                || (allowDots && c == "." && !name.isEmpty)
            guard ok else { break }
            name.unicodeScalars.append(c)
            position += 1
        }
        return name.isEmpty ? nil : name
    }

    mutating func readQuoted() throws(ExpressionSyntaxError) -> String {
        position += 1
        var text = ""
        while !atEnd {
            let c = scalars[position]
            position += 1
            if c == "'" {
                // '' inside a quoted constant is one quote.
                if !atEnd, scalars[position] == "'" {
                    text.unicodeScalars.append("'")
                    position += 1
                    continue
                }
                return text
            }
            text.unicodeScalars.append(c)
        }
        throw error("unterminated quoted constant")
    }

    mutating func readNumber() throws(ExpressionSyntaxError) -> JSONValue {
        let start = position
        if scalars[position] == "-" { position += 1 }
        var isInteger = true
        while !atEnd {
            let c = scalars[position]
            if ("0"..."9").contains(c) {
                position += 1
            } else if c == "." || c == "e" || c == "E"
                || ((c == "+" || c == "-") && "eE".unicodeScalars.contains(scalars[position - 1]))
            {
                isInteger = false
                position += 1
            } else {
                break
            }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        if isInteger, let value = Int64(text) { return .integer(value) }
        if let value = Double(text) { return .number(value) }
        position = start
        throw error("'\(text)' is not a number")
    }
}
