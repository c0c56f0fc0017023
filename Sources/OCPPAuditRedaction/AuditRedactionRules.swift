import OCPP

/// What the audit log keeps of each payload (configuration `audit.payloads`).
public enum AuditPayloadMode: String, Sendable, CaseIterable {
    /// Payloads as they are, except secrets (passwords, AuthorizationKey, BasicAuthPassword, private keys).
    case full
    /// Tokens pseudonymised, certificates / CSRs / DataTransfer data hashed, secrets removed. The default.
    case redacted
    /// No payload at all: the envelope alone.
    case none
}

/// Where the fields the audit log redacts sit, per definition version, action and kind, and what happens to them.
///
/// `generated` (AuditRedactionTable.swift) is written by `tools/gen_audit_redaction.py` from
/// `Rules/definitions/*.yaml` with ``classify(action:path:)``; `AuditRedactionTableDriftTests` recomputes it.
/// ``handWritten`` adds what a field's name cannot say: secrets chosen by a sibling's value (the `value` of
/// ChangeConfiguration AuthorizationKey, the `attributeValue` of SecurityCtrlr.BasicAuthPassword) and fields of
/// OCPP 2.1 that 2.0.1's shapes lack.
public enum AuditRedactionTable {
    public enum Kind: String, Sendable, Hashable { case request, response }

    public enum Treatment: String, Sendable, Hashable {
        /// An idTag / idToken / groupIdToken / parentIdTag: `hmac:` + 32 hex in `redacted` mode, kept in `full`.
        case token
        /// Never kept in any mode: the field is dropped.
        case secret
        /// A certificate, certificate chain, CSR or EXI request: `sha256:` + hex in `redacted` mode, kept in `full`.
        case certificate
        /// DataTransfer `data`: `sha256:` + hex in `redacted` mode, kept in `full`.
        case data
    }

    public struct Entry: Sendable, Hashable, CustomStringConvertible {
        public var version: String
        public var action: String
        public var kind: Kind
        /// Dotted, `[]` for the elements of a list: `localAuthorizationList[].idTag`.
        public var path: String
        public var treatment: Treatment

        public init(_ version: String, _ action: String, _ kind: Kind, _ path: String, _ treatment: Treatment) {
            self.version = version
            self.action = action
            self.kind = kind
            self.path = path
            self.treatment = treatment
        }

        public var description: String { "\(version) \(action) \(kind.rawValue) \(path): \(treatment.rawValue)" }
    }

    /// A secret chosen by the value of a sibling: at each object at `container` (dotted, `[]` for list elements,
    /// "" for the payload itself) whose string at `namePath` names a secret, `valuePath` is dropped.
    public struct ConditionalSecret: Sendable, Hashable {
        public var version: String
        public var action: String
        public var kind: Kind
        public var container: String
        public var namePath: String
        public var valuePath: String

        public init(
            _ version: String, _ action: String, _ kind: Kind, container: String, namePath: String, valuePath: String
        ) {
            self.version = version
            self.action = action
            self.kind = kind
            self.container = container
            self.namePath = namePath
            self.valuePath = valuePath
        }

        /// The full path of the dropped value, as listed in `redacted`.
        public var path: String { container.isEmpty ? valuePath : "\(container).\(valuePath)" }
    }

    /// Entries the definition files do not carry: OCPP 2.1's `basicAuthPassword` in a network profile.
    public static let handWritten: [Entry] = [
        Entry("ocpp2.0.1", "SetNetworkProfile", .request, "connectionData.basicAuthPassword", .secret)
    ]

    /// Configuration keys and device-model variables whose value is a secret (see ``namesSecret(_:)``).
    public static let conditionalSecrets: [ConditionalSecret] = [
        // OCPP 1.6 security whitepaper: AuthorizationKey is the Basic-auth password of profiles 1 and 2.
        ConditionalSecret(
            "ocpp1.5", "ChangeConfiguration", .request, container: "", namePath: "key", valuePath: "value"),
        ConditionalSecret(
            "ocpp1.6", "ChangeConfiguration", .request, container: "", namePath: "key", valuePath: "value"),
        // Write-only in the spec, but a charger may still report it.
        ConditionalSecret(
            "ocpp1.5", "GetConfiguration", .response, container: "configurationKey[]", namePath: "key",
            valuePath: "value"),
        ConditionalSecret(
            "ocpp1.6", "GetConfiguration", .response, container: "configurationKey[]", namePath: "key",
            valuePath: "value"),
        // OCPP 2.0.1: SecurityCtrlr.BasicAuthPassword.
        ConditionalSecret(
            "ocpp2.0.1", "SetVariables", .request, container: "setVariableData[]", namePath: "variable.name",
            valuePath: "attributeValue"),
        ConditionalSecret(
            "ocpp2.0.1", "GetVariables", .response, container: "getVariableResult[]", namePath: "variable.name",
            valuePath: "attributeValue"),
        ConditionalSecret(
            "ocpp2.0.1", "NotifyReport", .request, container: "reportData[]", namePath: "variable.name",
            valuePath: "variableAttribute[].value"),
    ]

    /// Whether a configuration key or variable name names a secret: AuthorizationKey, BasicAuthPassword, or any
    /// name containing "password" (vendor keys such as WifiPassword), compared without regard to case.
    public static func namesSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "authorizationkey" || lower.contains("password")
    }

    static let tokenNames: Set<String> = ["idTag", "parentIdTag", "idToken", "additionalIdToken"]
    static let certificateNames: Set<String> = [
        "certificate", "certificateChain", "signingCertificate", "caCertificate", "csr", "exiRequest",
    ]
    /// `simPin` (a SIM PIN) and `exiResponse` (ISO 15118 CertificateInstallationRes: carries the contract
    /// certificate's private key, encrypted for the EV) are secrets although their names say nothing.
    static let secretNames: Set<String> = ["simPin", "exiResponse"]

    /// The treatment a field gets by its path alone: what `tools/gen_audit_redaction.py` applies to every field of
    /// the definition files, and what the redactor applies to fields the table does not list (actions of OCPP 2.1
    /// or vendors, `customData`).
    public static func classify(action: String, path: String) -> Treatment? {
        if let treatment = ASCIIText.classify(action: action, path: path) { return treatment }
        let last = path.split(separator: ".").last.map(String.init) ?? path
        let leaf = last.replacingOccurrences(of: "[]", with: "")
        if leaf.lowercased().contains("password") || secretNames.contains(leaf) || path == "vpn.key"
            || path.hasSuffix(".vpn.key")
        {
            return .secret
        }
        if tokenNames.contains(leaf) { return .token }
        if certificateNames.contains(leaf) { return .certificate }
        if action == "DataTransfer" && path == "data" { return .data }
        return nil
    }

    /// The definition version whose shapes a version's payloads have: 2.1 uses 2.0.1's.
    public static func definitionVersion(_ version: OCPPVersion) -> String {
        version == .v2_1 ? OCPPVersion.v2_0_1.rawValue : version.rawValue
    }

    struct Key: Hashable {
        var version: String
        var action: String
        var kind: Kind
    }

    struct ActionRules {
        var paths: [String: Treatment] = [:]
        var conditional: [ConditionalSecret] = []
    }

    static let byAction: [Key: ActionRules] = {
        var rules: [Key: ActionRules] = [:]
        for entry in generated + handWritten {
            rules[Key(version: entry.version, action: entry.action, kind: entry.kind), default: ActionRules()]
                .paths[entry.path] = entry.treatment
        }
        for secret in conditionalSecrets {
            rules[Key(version: secret.version, action: secret.action, kind: secret.kind), default: ActionRules()]
                .conditional.append(secret)
        }
        return rules
    }()
}

/// The redactor's name checks by bytes for ASCII text (every field name and nearly every value of an OCPP payload),
/// where they are the same as Foundation's string search that they replace: no canonical equivalence or case
/// mapping beyond A–Z can change the outcome of an ASCII comparison. Anything else goes the Foundation way.
enum ASCIIText {
    /// `text.contains(word)` when `text` is ASCII (`word` always is); nil otherwise.
    static func contains(_ text: String, _ word: StaticString) -> Bool? {
        var text = text
        return text.withUTF8 { bytes -> Bool? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            return find(word, in: bytes, lowercasing: false)
        }
    }

    /// What ``AuditRedactionTable/classify(action:path:)`` returns, for an ASCII path: `.some(nil)` when the path
    /// gets no treatment; nil when the path is not ASCII.
    static func classify(action: String, path: String) -> AuditRedactionTable.Treatment?? {
        var path = path
        return path.withUTF8 { bytes -> AuditRedactionTable.Treatment?? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            // The last non-empty component between dots (split(separator: ".") omits empty ones), or the whole path
            // when it has none.
            var end = bytes.count
            while end > 0 && bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
            var start = end
            while start > 0 && bytes[start - 1] != UInt8(ascii: ".") { start -= 1 }
            let last = end > 0 ? UnsafeBufferPointer(rebasing: bytes[start..<end]) : bytes
            // Every "[]" taken out, left to right, in one pass (replacingOccurrences(of: "[]", with: "")).
            var leaf: [UInt8] = []
            leaf.reserveCapacity(last.count)
            var index = 0
            while index < last.count {
                if last[index] == UInt8(ascii: "[") && index + 1 < last.count && last[index + 1] == UInt8(ascii: "]") {
                    index += 2
                } else {
                    leaf.append(last[index])
                    index += 1
                }
            }
            let name = String(decoding: leaf, as: UTF8.self)
            let isPassword = leaf.withUnsafeBufferPointer { find("password", in: $0, lowercasing: true) }
            let pathText = String(decoding: bytes, as: UTF8.self)
            if isPassword || AuditRedactionTable.secretNames.contains(name) || pathText == "vpn.key"
                || pathText.hasSuffix(".vpn.key")
            {
                return .some(.secret)
            }
            if AuditRedactionTable.tokenNames.contains(name) { return .some(.token) }
            if AuditRedactionTable.certificateNames.contains(name) { return .some(.certificate) }
            if action == "DataTransfer" && pathText == "data" { return .some(.data) }
            return .some(nil)
        }
    }

    /// Whether `word` (ASCII, lowercase when `lowercasing`) occurs in `bytes`, A–Z taken as a–z when `lowercasing`.
    private static func find(_ word: StaticString, in bytes: UnsafeBufferPointer<UInt8>, lowercasing: Bool) -> Bool {
        let count = word.utf8CodeUnitCount
        guard count > 0 else { return true }
        guard bytes.count >= count else { return false }
        return word.withUTF8Buffer { needle in
            for start in 0...(bytes.count - count) {
                var matched = true
                for offset in 0..<count {
                    var byte = bytes[start + offset]
                    if lowercasing && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 0x20 }
                    if byte != needle[offset] {
                        matched = false
                        break
                    }
                }
                if matched { return true }
            }
            return false
        }
    }
}
