import Yams

/// How YAML text becomes nodes, for the rule loader and the configuration loader alike: composing with every
/// failure classified and located, and mappings read in file order with repeated keys found. Each loader words its
/// own problems (`RuleIssue`, `ConfigurationIssue`); what is read, and how, is decided here once.
public enum YAMLReader {
    /// Why YAML text could not be composed.
    public struct Failure: Error, Sendable {
        public enum Kind: Sendable, Equatable {
            /// The scanner or the parser refused the text.
            case syntax
            /// The text parses but its structure does not compose (an unknown alias, say).
            case structure
            /// A mapping has these keys more than once.
            case duplicateKeys([String])
            /// The bytes are not text YAML reads.
            case unreadable
            /// Anything else the YAML library reported.
            case other
            /// An error that did not come from the YAML library.
            case unexpected
        }

        public var kind: Kind
        /// The line the problem is on, when the library says.
        public var line: Int?
        /// What the library was reading when it failed, when it says.
        public var context: String?
        /// The library's description of the problem.
        public var problem: String
        /// The whole error as the library describes it.
        public var error: String
    }

    /// The document's root node (nil for an empty document), or why there is none.
    public static func compose(_ text: String) -> Result<Node?, Failure> {
        do {
            return .success(try Yams.compose(yaml: text))
        } catch let error as YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
                return .failure(
                    Failure(kind: .syntax, line: mark.line, context: context?.text, problem: problem, error: "\(error)")
                )
            case .composer(let context, let problem, let mark, _):
                return .failure(
                    Failure(
                        kind: .structure, line: mark.line, context: context?.text, problem: problem, error: "\(error)")
                )
            case .duplicatedKeysInMapping(let duplicates, let context):
                return .failure(
                    Failure(
                        kind: .duplicateKeys(duplicates), line: context.mark.line, context: nil,
                        problem: "\(duplicates)", error: "\(error)"))
            case .reader(let problem, _, _, _):
                return .failure(
                    Failure(kind: .unreadable, line: nil, context: nil, problem: problem, error: "\(error)"))
            default:
                return .failure(Failure(kind: .other, line: nil, context: nil, problem: "\(error)", error: "\(error)"))
            }
        } catch {
            return .failure(Failure(kind: .unexpected, line: nil, context: nil, problem: "\(error)", error: "\(error)"))
        }
    }

    /// A mapping's pairs in file order, each key as text, and the keys met again with the line of their first use.
    public static func pairs(_ mapping: Node.Mapping) -> (
        pairs: [(key: String, keyNode: Node, value: Node)], repeated: [(key: String, keyNode: Node, firstLine: Int)]
    ) {
        var seen: [String: Int] = [:]
        var pairs: [(key: String, keyNode: Node, value: Node)] = []
        var repeated: [(key: String, keyNode: Node, firstLine: Int)] = []
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? "\(keyNode)"
            if let first = seen[key] {
                repeated.append((key, keyNode, first))
                continue
            }
            seen[key] = keyNode.mark?.line ?? 0
            pairs.append((key, keyNode, value))
        }
        return (pairs, repeated)
    }
}
