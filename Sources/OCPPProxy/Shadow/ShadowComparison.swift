import OCPP

/// One way a shadow CSMS's answer differs from the primary's, both in the charger's version.
struct ShadowDivergence: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        /// A field named `status` (at any depth) differs: the answer the charger acts on.
        case status
        /// The primary's answer has the field, the shadow's does not.
        case missingField = "missing_field"
        /// The shadow's answer has a field the primary's does not.
        case extraField = "extra_field"
        /// Another field differs.
        case differentValue = "different_value"
        /// One answered with a CALLRESULT, the other with a CALLERROR.
        case errorVersusResult = "error_vs_result"
        /// Both answered with a CALLERROR, with different error codes.
        case differentError = "different_error"
        /// The shadow did not answer within `shadow.timeout`.
        case timeout
    }

    var kind: Kind
    /// Where in the payload (`idTagInfo.status`); nil for the frame as a whole.
    var field: String?
    /// The two values, when they are safe to show (numbers, booleans, enumeration-like words of fields that hold
    /// no token, key or identifier); nil otherwise: the audit log keeps idTags out of plain sight everywhere.
    var primary: String?
    var shadow: String?

    var json: JSONValue {
        var fields: JSONObject = ["kind": .string(kind.rawValue)]
        if let field { fields["field"] = .string(field) }
        if let primary { fields["primary"] = .string(primary) }
        if let shadow { fields["shadow"] = .string(shadow) }
        return .object(fields)
    }
}

/// Compares the answers of the primary and the shadow CSMS to one CALL of the charger, both as the charger would
/// receive them (each translated from its CSMS's version to the charger's): what the charger would have seen had
/// the shadow been its CSMS. Pure.
enum ShadowComparison {
    /// The divergences between the two answers; empty when they agree. `ignore`: field names whose values are
    /// not compared (at any depth); the charger's transaction id is never compared (the proxy maps it).
    static func compare(primary: RPCFrame, shadow: RPCFrame?, ignore: Set<String>) -> [ShadowDivergence] {
        guard let shadow else { return [ShadowDivergence(kind: .timeout)] }
        switch (primary, shadow) {
        case (.callResult(_, let a), .callResult(_, let b)):
            var found: [ShadowDivergence] = []
            compare(a, b, path: "", ignore: ignore, into: &found)
            return found
        case (.callError(_, let a, _, _), .callError(_, let b, _, _)):
            return a == b ? [] : [ShadowDivergence(kind: .differentError, primary: a, shadow: b)]
        default:
            return [
                ShadowDivergence(
                    kind: .errorVersusResult, primary: describe(primary), shadow: describe(shadow))
            ]
        }
    }

    private static func describe(_ frame: RPCFrame) -> String {
        switch frame {
        case .callError(_, let code, _, _), .callResultError(_, let code, _, _): return "CALLERROR \(code)"
        case .callResult: return "CALLRESULT"
        case .call, .send: return "CALL"
        }
    }

    private static func compare(
        _ a: JSONValue, _ b: JSONValue, path: String, ignore: Set<String>, into found: inout [ShadowDivergence]
    ) {
        let name = path.split(separator: ".").last.map(String.init) ?? path
        if !path.isEmpty, ignore.contains(name) || name == "transactionId" { return }
        switch (a, b) {
        case (.object(let left), .object(let right)):
            for (key, value) in left.sorted(by: { $0.key < $1.key }) {
                let child = path.isEmpty ? key : "\(path).\(key)"
                guard let other = right[key] else {
                    if !(ignore.contains(key) || key == "transactionId") {
                        found.append(ShadowDivergence(kind: .missingField, field: child))
                    }
                    continue
                }
                compare(value, other, path: child, ignore: ignore, into: &found)
            }
            for key in right.keys.sorted() where left[key] == nil && !ignore.contains(key) && key != "transactionId" {
                found.append(ShadowDivergence(kind: .extraField, field: path.isEmpty ? key : "\(path).\(key)"))
            }
        case (.array(let left), .array(let right)) where left.count == right.count:
            for index in left.indices {
                compare(left[index], right[index], path: "\(path)[\(index)]", ignore: ignore, into: &found)
            }
        default:
            guard !equal(a, b) else { return }
            let kind: ShadowDivergence.Kind = name == "status" ? .status : .differentValue
            let shown = showsValues(of: name)
            found.append(
                ShadowDivergence(
                    kind: kind, field: path, primary: shown ? text(a) : nil, shadow: shown ? text(b) : nil))
        }
    }

    /// 2 and 2.0 are the same number in JSON.
    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.integer(let x), .number(let y)), (.number(let y), .integer(let x)): return Double(x) == y
        default: return a == b
        }
    }

    /// Field names whose values may be secret or identify a person (idTag, idToken, keys, certificates, data).
    private static let hiddenParts = ["tag", "token", "key", "password", "certificate", "csr", "data", "id"]

    private static func showsValues(of name: String) -> Bool {
        let lower = name.lowercased()
        return !hiddenParts.contains { lower.contains($0) } || lower.hasSuffix("status")
    }

    /// A value as the report shows it: numbers, booleans and word-like strings (enumerations) only.
    private static func text(_ value: JSONValue) -> String? {
        switch value {
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .bool(let flag): return String(flag)
        case .null: return "null"
        case .string(let string):
            let wordLike =
                string.utf8.count <= 40
                && string.utf8.allSatisfy { byte in
                    (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                        || byte == 0x5F || byte == 0x2D || byte == 0x2E
                }
            return wordLike ? string : nil
        case .array: return "array"
        case .object: return "object"
        }
    }
}
