import OCPP

/// A charger identity pattern of `routing.rules[].match`: `*` stands for any run of characters (none included),
/// `?` for exactly one, every other character for itself (case-sensitive, as identities are). `ABB-*` matches
/// every identity that starts with `ABB-`; `SITE?-*` `SITE7-CP1` but not `SITE12-CP1`.
public struct IdentityPattern: Sendable, Equatable, CustomStringConvertible {
    private enum Token: Equatable {
        case literal(Unicode.Scalar)
        case one
        case any
    }

    /// The pattern as written.
    public let text: String
    private let tokens: [Token]

    /// Why a text is not a pattern.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case forbidden(Unicode.Scalar)

        public var description: String {
            switch self {
            case .empty:
                return "expected a pattern such as \"ABB-*\", got \"\""
            case .tooLong(let n):
                return
                    "the pattern has \(n) characters without *; an identity has at most \(ChargerIdentity.maximumLength), so it matches nothing"
            case .forbidden(let scalar):
                let shown = scalar.value < 0x20 || scalar.value == 0x7F ? "a control character" : "'\(scalar)'"
                return "the pattern contains \(shown), which no identity contains, so it matches nothing"
            }
        }
    }

    /// Checks that the pattern can match an identity at all: a pattern that never matches is a mistake in the file.
    public init(_ text: String) throws(Problem) {
        guard !text.isEmpty else { throw .empty }
        var tokens: [Token] = []
        for scalar in text.unicodeScalars {
            switch scalar {
            case "*":
                // `**` means what `*` means: one token keeps matching linear.
                if tokens.last != .any { tokens.append(.any) }
            case "?":
                tokens.append(.one)
            case ":", "/":
                throw .forbidden(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { throw .forbidden(scalar) }
                tokens.append(.literal(scalar))
            }
        }
        let fixed = tokens.count(where: { $0 != .any })
        guard fixed <= ChargerIdentity.maximumLength else { throw .tooLong(fixed) }
        self.text = text
        self.tokens = tokens
    }

    public var description: String { text }

    /// Whether `identity` matches the whole pattern. Greedy with one backtrack point (the last `*`): linear in
    /// practice and never recursive, whatever the pattern.
    public func matches(_ identity: String) -> Bool {
        let scalars = Array(identity.unicodeScalars)
        var p = 0
        var s = 0
        var star: (pattern: Int, scalar: Int)?
        while s < scalars.count {
            if p < tokens.count {
                switch tokens[p] {
                case .any:
                    star = (p, s)
                    p += 1
                    continue
                case .one:
                    p += 1
                    s += 1
                    continue
                case .literal(let c) where c == scalars[s]:
                    p += 1
                    s += 1
                    continue
                case .literal:
                    break
                }
            }
            // Mismatch: let the last `*` take one more character, or fail.
            guard let last = star else { return false }
            star = (last.pattern, last.scalar + 1)
            p = last.pattern + 1
            s = last.scalar + 1
        }
        while p < tokens.count, tokens[p] == .any { p += 1 }
        return p == tokens.count
    }
}
