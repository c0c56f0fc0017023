import Crypto
import OCPP

/// Redacts OCPP payloads before they enter the audit log (issue 14; README.md, "Audit log").
///
/// - Tokens (idTag, idToken.idToken, groupIdToken.idToken, parentIdTag, additionalIdToken, wherever they sit):
///   `hmac:` + the first 32 hex digits of HMAC-SHA256(pseudonymKey, token) in `redacted` mode, so one token stays
///   correlatable across records without being readable; kept as they are in `full` mode.
/// - Secrets (passwords, AuthorizationKey, BasicAuthPassword, VPN keys, SIM PINs, EXI responses carrying a
///   private key, and any string containing "PRIVATE KEY" anywhere): dropped in every mode.
/// - Certificates, CSRs and DataTransfer data: `sha256:` + hex of their UTF-8 text in `redacted` mode (a value that
///   is not a string: of its compact JSON), kept in `full` mode.
/// - `none`: no payload and nothing listed, the record keeps its envelope alone.
///
/// Every path redacted (pseudonymised, hashed or dropped) is listed once in `redacted`, sorted, dotted with `[]` for
/// list elements. The paths come from ``AuditRedactionTable`` for the version and action, and from
/// ``AuditRedactionTable/classify(action:path:)`` for any field the table does not list.
public struct AuditRedactor: Sendable {
    public typealias Kind = AuditRedactionTable.Kind

    public let mode: AuditPayloadMode
    /// The key's bytes (swift-crypto's SymmetricKey is not Sendable).
    private let key: [UInt8]

    public init(mode: AuditPayloadMode, pseudonymKey: [UInt8]) {
        self.mode = mode
        self.key = pseudonymKey
    }

    /// The key as configured (`audit.pseudonymKey`), used as its UTF-8 bytes.
    public init(mode: AuditPayloadMode, pseudonymKey: String) {
        self.init(mode: mode, pseudonymKey: Array(pseudonymKey.utf8))
    }

    /// `hmac:` + the first 32 hex digits of HMAC-SHA256(key, token's UTF-8 bytes).
    public func pseudonym(_ token: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: SymmetricKey(data: key))
        return "hmac:" + String(hex(Array(mac)).prefix(32))
    }

    /// `sha256:` + the hex SHA-256 of the text's UTF-8 bytes.
    public static func digest(_ text: String) -> String {
        "sha256:" + hex(Array(SHA256.hash(data: Array(text.utf8))))
    }

    /// Whether the redactor could act on a payload, by its bytes: true when they hold a backslash (an escape can
    /// spell any name) or, compared without regard to case, a name the redaction rules act on or look at —
    /// `idTag`/`idToken` (and the names that contain them), `password`, `certificate`, `csr`, `exiRequest`,
    /// `exiResponse`, `simPin`, `key` (`vpn.key`, `AuthorizationKey`, `PRIVATE KEY`), `data` (DataTransfer). False
    /// means ``redact(payload:version:action:kind:)`` would keep the payload whole, whatever the action.
    public static func mayRedact(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        func at(_ offset: Int, _ word: StaticString) -> Bool {
            let length = word.utf8CodeUnitCount
            guard offset + length <= count else { return false }
            let letters = word.utf8Start
            for step in 1..<length where bytes[offset + step] | 0x20 != letters[step] { return false }
            return true
        }
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") { return true }
            switch byte | 0x20 {
            case UInt8(ascii: "i"): if at(index, "idtag") || at(index, "idtoken") { return true }
            case UInt8(ascii: "p"): if at(index, "password") { return true }
            case UInt8(ascii: "c"): if at(index, "certificate") || at(index, "csr") { return true }
            case UInt8(ascii: "e"): if at(index, "exirequest") || at(index, "exiresponse") { return true }
            case UInt8(ascii: "s"): if at(index, "simpin") { return true }
            case UInt8(ascii: "k"): if at(index, "key") { return true }
            case UInt8(ascii: "d"): if at(index, "data") { return true }
            default: break
            }
            index += 1
        }
        return false
    }

    /// Appends `,"payload":` and the payload as it came, without the whitespace between its tokens, when
    /// ``mayRedact(_:)`` says there is nothing to redact in it; else appends nothing and returns false. `bytes` must
    /// be one JSON value, checked already (control characters cannot be in its strings, so no line break survives).
    public static func copyPayload(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        guard !mayRedact(bytes) else { return false }
        out.append(contentsOf: payloadMember)
        var inString = false
        var escaped = false
        var run = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case 0x20, 0x09, 0x0A, 0x0D:
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<index]))
                run = index + 1
            default:
                break
            }
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<bytes.count]))
        return true
    }

    private static let payloadMember = Array(#","payload":"#.utf8)

    /// The payload as the audit log keeps it, and the paths redacted.
    public func redact(
        payload: JSONValue, version: OCPPVersion, action: String, kind: Kind
    ) -> (payload: JSONValue?, redacted: [String]) {
        if mode == .none { return (nil, []) }
        let rules = AuditRedactionTable.byAction[
            .init(version: AuditRedactionTable.definitionVersion(version), action: action, kind: kind)]
        var walk = Walk(redactor: self, action: action, rules: rules)
        let kept = walk.value(payload, path: "")
        return (kept ?? .object([:]), walk.redacted.sorted())
    }

    /// One pass over a payload: collects the paths redacted.
    private struct Walk {
        let redactor: AuditRedactor
        let action: String
        let rules: AuditRedactionTable.ActionRules?
        var redacted: Set<String> = []

        /// The value as kept, or nil when it is dropped.
        mutating func value(_ value: JSONValue, path: String) -> JSONValue? {
            if Self.containsPrivateKey(value, deep: false) {
                redacted.insert(path)
                return nil
            }
            if !path.isEmpty, let treatment = treatment(of: value, at: path) {
                switch treatment {
                case .secret:
                    redacted.insert(path)
                    return nil
                case .token, .certificate, .data:
                    if Self.containsPrivateKey(value, deep: true) {
                        redacted.insert(path)
                        return nil
                    }
                    guard redactor.mode == .redacted else { break }
                    redacted.insert(path)
                    let text = value.stringValue ?? value.jsonText
                    return .string(treatment == .token ? redactor.pseudonym(text) : AuditRedactor.digest(text))
                }
            }
            switch value {
            case .object(var members):
                for secret in rules?.conditional ?? [] where secret.container == path {
                    guard case .string(let name)? = Self.member(members, at: secret.namePath),
                        AuditRedactionTable.namesSecret(name)
                    else { continue }
                    if Self.remove(secret.valuePath.split(separator: ".").map(String.init), from: &members) {
                        redacted.insert(secret.path)
                    }
                }
                var kept = JSONObject()
                kept.reserveCapacity(members.count)
                for (name, member) in members {
                    let memberPath = path.isEmpty ? name : "\(path).\(name)"
                    if ASCIIText.contains(name, "PRIVATE KEY") ?? name.contains("PRIVATE KEY") {
                        redacted.insert(memberPath)
                        continue
                    }
                    if let keptMember = self.value(member, path: memberPath) { kept.appendNew(name, keptMember) }
                }
                return .object(kept)
            case .array(let elements):
                return .array(elements.compactMap { self.value($0, path: path + "[]") })
            default:
                return value
            }
        }

        /// The table's treatment of the path; else, by the field's name, for a scalar (an object named `idToken`
        /// holds the token, it is not one) or for a secret of any kind.
        func treatment(of value: JSONValue, at path: String) -> AuditRedactionTable.Treatment? {
            if let listed = rules?.paths[path] { return listed }
            guard let named = AuditRedactionTable.classify(action: action, path: path) else { return nil }
            switch value {
            case .object, .array: return named == .secret ? named : nil
            default: return named
            }
        }

        static func containsPrivateKey(_ value: JSONValue, deep: Bool) -> Bool {
            switch value {
            case .string(let text): return ASCIIText.contains(text, "PRIVATE KEY") ?? text.contains("PRIVATE KEY")
            case .array(let elements) where deep: return elements.contains { containsPrivateKey($0, deep: true) }
            case .object(let members) where deep:
                return members.contains {
                    (ASCIIText.contains($0.key, "PRIVATE KEY") ?? $0.key.contains("PRIVATE KEY"))
                        || containsPrivateKey($0.value, deep: true)
                }
            default: return false
            }
        }

        /// The member at a dotted path without lists (`variable.name`).
        static func member(_ members: JSONObject, at path: String) -> JSONValue? {
            var current = JSONValue.object(members)
            for step in path.split(separator: ".") {
                guard case .object(let inner) = current, let next = inner[String(step)] else { return nil }
                current = next
            }
            return current
        }

        /// Removes the member at a dotted path whose steps may end in `[]` (every element of that list); whether
        /// anything was removed.
        static func remove(_ steps: [String], from members: inout JSONObject) -> Bool {
            guard let first = steps.first else { return false }
            let isList = first.hasSuffix("[]")
            let name = isList ? String(first.dropLast(2)) : first
            guard let child = members[name] else { return false }
            if steps.count == 1 && !isList {
                members[name] = nil
                return true
            }
            let rest = Array(steps.dropFirst())
            switch child {
            case .array(var elements) where isList:
                if rest.isEmpty {
                    members[name] = nil
                    return true
                }
                var removed = false
                for index in elements.indices {
                    guard case .object(var inner) = elements[index] else { continue }
                    if remove(rest, from: &inner) { removed = true }
                    elements[index] = .object(inner)
                }
                members[name] = .array(elements)
                return removed
            case .object(var inner) where !isList:
                let removed = remove(rest, from: &inner)
                members[name] = .object(inner)
                return removed
            default:
                return false
            }
        }
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hex(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
