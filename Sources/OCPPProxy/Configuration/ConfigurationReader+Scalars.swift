import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPRules
import Yams

/// Typed scalars with their key path and line, `${ENV}` expansion, and the one-line problems.
extension ConfigurationReader {
    // MARK: Scalars

    mutating func mapping(_ node: Node, _ key: String) -> Node.Mapping? {
        guard case .mapping(let map) = node else {
            fail(key, node, "expected a mapping, got \(describe(node))")
            return nil
        }
        return map
    }

    mutating func checkKeys(_ map: Node.Mapping, _ key: String, allowed: [String]) {
        let read = YAMLReader.pairs(map)
        for (name, keyNode, _) in read.pairs where !allowed.contains(name) {
            fail(
                key.isEmpty ? name : "\(key).\(name)", keyNode,
                "unknown key; expected one of \(allowed.joined(separator: ", "))")
        }
        for (name, keyNode, _) in read.repeated {
            fail(key.isEmpty ? name : "\(key).\(name)", keyNode, "key appears twice")
        }
    }

    /// A scalar as text, with `${NAME}` references replaced from the environment.
    mutating func string(_ node: Node?, _ key: String, required: Bool = false) -> String? {
        guard let node else {
            if required { fail(key, nil, "required key is missing") }
            return nil
        }
        guard case .scalar(let scalar) = node else {
            fail(key, node, "expected a string, got \(describe(node))")
            return nil
        }
        guard let expanded = expandEnvironment(scalar.string, key, node) else { return nil }
        if required && expanded.isEmpty {
            fail(key, node, "expected a non-empty string, got \"\"")
            return nil
        }
        return expanded
    }

    mutating func integer(_ node: Node?, _ key: String, range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let node else {
            if required {
                fail(key, nil, "required key is missing; expected an integer \(range.lowerBound)-\(range.upperBound)")
            }
            return nil
        }
        let expected = "expected an integer \(range.lowerBound)-\(range.upperBound)"
        guard case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) else {
            if case .scalar = node { return nil }
            fail(key, node, "\(expected), got \(describe(node))")
            return nil
        }
        // A quoted "8180" is a string in YAML; accept it only when it came from the environment.
        guard scalar.style != .singleQuoted && scalar.style != .doubleQuoted || scalar.string.contains("${"),
            let value = Int(text), range.contains(value)
        else {
            fail(key, node, "\(expected), got \(quoted(text, node: node))")
            return nil
        }
        return value
    }

    mutating func boolean(_ node: Node?, _ key: String) -> Bool? {
        guard let node else { return nil }
        if case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) {
            switch text.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        fail(key, node, "expected true or false, got \(describe(node))")
        return nil
    }

    /// A duration such as `500ms`, `5s`, `2m`, `1h`, or a plain number of seconds.
    mutating func duration(_ node: Node?, _ key: String, positive: Bool) -> TimeAmount? {
        guard let node else { return nil }
        let expected =
            positive
            ? "expected a positive duration such as 500ms, 5s, 2m or 1h"
            : "expected a duration such as 500ms, 5s, 2m or 1h (0 disables)"
        guard case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) else {
            if case .scalar = node { return nil }
            fail(key, node, "\(expected), got \(describe(node))")
            return nil
        }
        guard let amount = DurationText.parse(text), amount.nanoseconds >= 0, !positive || amount.nanoseconds > 0 else {
            fail(key, node, "\(expected), got \(quoted(text, node: node))")
            return nil
        }
        return amount
    }

    /// One of `among` (every case by default), named by its raw value.
    mutating func enumeration<E: RawRepresentable & CaseIterable & Equatable>(
        _ node: Node?, _ key: String, _ type: E.Type, among: [E]? = nil
    ) -> E? where E.RawValue == String {
        guard let node else { return nil }
        let allowed = among ?? Array(E.allCases)
        let choices = allowed.map(\.rawValue).joined(separator: ", ")
        guard case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) else {
            if case .scalar = node { return nil }
            fail(key, node, "expected one of \(choices), got \(describe(node))")
            return nil
        }
        guard let value = E(rawValue: text), allowed.contains(value) else {
            fail(key, node, "expected one of \(choices), got \(quoted(text, node: node))")
            return nil
        }
        return value
    }

    /// A file-system path; relative paths are taken relative to the configuration file.
    mutating func path(_ node: Node, _ key: String) -> String? {
        guard let text = string(node, key, required: true) else { return nil }
        if text.hasPrefix("/") { return text }
        return ((baseDirectory as NSString).appendingPathComponent(text) as NSString).standardizingPath
    }

    /// Replaces `${NAME}` with the environment variable NAME (`${NAME:-fallback}` for a default); an unset
    /// variable without a fallback is an issue.
    mutating func expandEnvironment(_ text: String, _ key: String, _ node: Node) -> String? {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                fail(key, node, "unterminated ${ in \(quoted(text))")
                return nil
            }
            let reference = String(rest[start.upperBound..<end])
            // ${NAME:-fallback} takes the fallback when NAME is unset or empty, as in a shell.
            let parts = reference.components(separatedBy: ":-")
            let name = parts[0]
            if let value = environment[name], !(parts.count > 1 && value.isEmpty) {
                result += value
            } else if parts.count > 1 {
                result += parts.dropFirst().joined(separator: ":-")
            } else {
                fail(key, node, "environment variable \(name) is not set")
                return nil
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    // MARK: Reporting

    mutating func fail(_ key: String, _ node: Node?, _ message: String) {
        issues.append(ConfigurationIssue(keyPath: key, message: message, file: file, line: node?.mark?.line))
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return quoted(scalar.string, node: node)
        case .mapping: return "a mapping"
        case .sequence(let items): return items.isEmpty ? "an empty list" : "a list"
        case .alias: return "an alias"
        }
    }

    func quoted(_ text: String, node: Node? = nil) -> String {
        if case .scalar(let scalar)? = node, scalar.style == .plain, Double(text) != nil { return text }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}
