import Foundation
import NIOCore
import OCPP
import Yams

/// Reads a YAML configuration file and validates all of it, collecting every problem before it fails.
public struct ConfigurationLoader {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads and validates the file at `path`.
    public func load(path: String) throws(ConfigurationError) -> ProxyConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(issues: [
                ConfigurationIssue(keyPath: "", message: "cannot read configuration file \(path): \(Self.reason(error))")
            ])
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try load(yaml: text, file: path, baseDirectory: directory.isEmpty ? "." : directory)
    }

    /// Validates YAML text; relative paths in it are taken relative to `baseDirectory`.
    public func load(yaml: String, file: String, baseDirectory: String) throws(ConfigurationError) -> ProxyConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigurationError(issues: [Self.syntaxIssue(error, file: file)])
        } catch {
            throw ConfigurationError(issues: [ConfigurationIssue(keyPath: "", message: "\(error)", file: file)])
        }
        var reader = NodeReader(file: file, baseDirectory: baseDirectory, environment: environment)
        let configuration = reader.readProxy(root)
        if let configuration, reader.issues.isEmpty { return configuration }
        throw ConfigurationError(issues: reader.issues)
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
            underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }

    private static func syntaxIssue(_ error: YamlError, file: String) -> ConfigurationIssue {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            return ConfigurationIssue(keyPath: "", message: "YAML syntax error: \(what)", file: file, line: mark.line)
        case .composer(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            return ConfigurationIssue(keyPath: "", message: "YAML error: \(what)", file: file, line: mark.line)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigurationIssue(
                keyPath: "", message: "key appears twice in one mapping: \(duplicates.joined(separator: ", "))", file: file,
                line: context.mark.line)
        case .reader(let problem, _, _, _):
            return ConfigurationIssue(keyPath: "", message: "cannot read the file as YAML: \(problem)", file: file)
        default:
            return ConfigurationIssue(keyPath: "", message: "YAML error: \(error)", file: file)
        }
    }
}

/// Walks the YAML tree, recording one ``ConfigurationIssue`` per problem and carrying on.
struct NodeReader {
    let file: String
    let baseDirectory: String
    let environment: [String: String]
    var issues: [ConfigurationIssue] = []

    // MARK: The document

    mutating func readProxy(_ root: Node?) -> ProxyConfiguration? {
        guard let root else {
            fail("", root, "the configuration file is empty; expected a mapping with at least listeners and upstream")
            return nil
        }
        guard let top = mapping(root, "") else { return nil }
        checkKeys(top, "", allowed: [
            "listeners", "upstream", "duplicateIdentity", "rules", "state", "admin", "limits", "keepalive",
            "logging", "shutdown",
        ])
        let listeners = readListeners(top["listeners"])
        let upstream = readUpstream(top["upstream"])
        let duplicate = enumeration(top["duplicateIdentity"], "duplicateIdentity", DuplicateIdentityPolicy.self) ?? .replace
        let rules = top["rules"].flatMap { path($0, "rules") }
        var statePath: String?
        if let state = top["state"], let stateMap = mapping(state, "state") {
            checkKeys(stateMap, "state", allowed: ["sqlite"])
            statePath = stateMap["sqlite"].flatMap { path($0, "state.sqlite") }
        }
        let admin = readAdmin(top["admin"])
        let limits = readLimits(top["limits"])
        let keepalive = readKeepalive(top["keepalive"])
        let logging = readLogging(top["logging"])
        let shutdown = readShutdown(top["shutdown"])
        checkPortsUnique(listeners ?? [], admin: admin)

        guard let listeners, let upstream else { return nil }
        return ProxyConfiguration(
            listeners: listeners, upstream: upstream, duplicateIdentity: duplicate, rulesDirectory: rules,
            stateSQLitePath: statePath, admin: admin, limits: limits, keepalive: keepalive, logging: logging,
            shutdown: shutdown)
    }

    mutating func readListeners(_ node: Node?) -> [ListenerConfiguration]? {
        guard let node else {
            fail("listeners", nil, "required key is missing; expected a list of listeners")
            return nil
        }
        guard case .sequence(let sequence) = node else {
            fail("listeners", node, "expected a list of listeners, got \(describe(node))")
            return nil
        }
        guard !sequence.isEmpty else {
            fail("listeners", node, "expected at least one listener, got an empty list")
            return nil
        }
        var listeners: [ListenerConfiguration] = []
        var names: [String: Int] = [:]
        for (index, item) in sequence.enumerated() {
            let key = "listeners[\(index)]"
            guard let map = mapping(item, key) else { continue }
            checkKeys(map, key, allowed: ["name", "host", "port", "path", "versions", "defaultVersion", "securityProfile"])
            let name = string(map["name"], "\(key).name", required: true)
            if let name, let first = names[name] {
                fail("\(key).name", map["name"], "duplicate listener name \"\(name)\" (also listeners[\(first)].name)")
            } else if let name {
                names[name] = index
            }
            let host = string(map["host"], "\(key).host") ?? "0.0.0.0"
            let port = integer(map["port"], "\(key).port", range: 1...65535, required: true)
            var path = string(map["path"], "\(key).path") ?? "/ocpp"
            if !path.hasPrefix("/") {
                fail("\(key).path", map["path"], "expected a path starting with \"/\", got \(quoted(path))")
            }
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            let versions = readVersions(map["versions"], "\(key).versions")
            var defaultVersion: OCPPVersion?
            if let node = map["defaultVersion"] {
                defaultVersion = enumeration(node, "\(key).defaultVersion", OCPPVersion.self)
                if let defaultVersion, let versions, !versions.contains(defaultVersion) {
                    fail("\(key).defaultVersion", node,
                         "expected one of the listener's versions (\(versions.map(\.rawValue).joined(separator: ", "))), got \"\(defaultVersion)\"")
                }
            }
            let profile = integer(map["securityProfile"], "\(key).securityProfile", range: 0...3) ?? 0
            if profile != 0 {
                fail("\(key).securityProfile", map["securityProfile"],
                     "security profiles 1-3 are not supported by this build; expected 0, got \(profile)")
            }
            if let name, let port, let versions {
                listeners.append(ListenerConfiguration(
                    name: name, host: host, port: port, path: path, versions: versions,
                    defaultVersion: defaultVersion, securityProfile: profile))
            }
        }
        return listeners.count == sequence.count ? listeners : nil
    }

    mutating func readVersions(_ node: Node?, _ key: String) -> [OCPPVersion]? {
        guard let node else {
            fail(key, nil, "required key is missing; expected a list of versions from \(OCPPVersion.allNames)")
            return nil
        }
        guard case .sequence(let sequence) = node, !sequence.isEmpty else {
            fail(key, node, "expected a non-empty list of versions from \(OCPPVersion.allNames), got \(describe(node))")
            return nil
        }
        var versions: [OCPPVersion] = []
        for (index, item) in sequence.enumerated() {
            guard let version = enumeration(item, "\(key)[\(index)]", OCPPVersion.self) else { continue }
            if versions.contains(version) {
                fail("\(key)[\(index)]", item, "\"\(version)\" is listed twice")
            } else {
                versions.append(version)
            }
        }
        return versions.count == sequence.count ? versions : nil
    }

    mutating func readUpstream(_ node: Node?) -> UpstreamConfiguration? {
        guard let node else {
            fail("upstream", nil, "required key is missing; expected a mapping with url and version")
            return nil
        }
        guard let map = mapping(node, "upstream") else { return nil }
        checkKeys(map, "upstream", allowed: ["url", "version", "connectTimeout"])
        let version = map["version"] == nil
            ? { fail("upstream.version", nil, "required key is missing; expected one of \(OCPPVersion.allNames)"); return nil }()
            : enumeration(map["version"], "upstream.version", OCPPVersion.self)
        let timeout = duration(map["connectTimeout"], "upstream.connectTimeout", positive: true) ?? .seconds(5)
        guard let urlText = string(map["url"], "upstream.url", required: true) else { return nil }
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            fail("upstream.url", map["url"], "expected a ws:// URL such as ws://127.0.0.1:9000/ocpp, got \(quoted(urlText))")
            return nil
        }
        guard scheme == "ws" else {
            let why = scheme == "wss"
                ? "wss:// needs upstream TLS settings, which this build does not support yet; expected a ws:// URL"
                : "expected a ws:// URL"
            fail("upstream.url", map["url"], "\(why), got \(quoted(urlText))")
            return nil
        }
        if url.query != nil || url.fragment != nil || url.user != nil {
            fail("upstream.url", map["url"], "expected a URL without user, query or fragment, got \(quoted(urlText))")
            return nil
        }
        var path = url.path
        while path.hasSuffix("/") { path.removeLast() }
        guard let version else { return nil }
        return UpstreamConfiguration(
            scheme: scheme, host: host, port: url.port ?? 80, path: path, version: version, connectTimeout: timeout)
    }

    mutating func readAdmin(_ node: Node?) -> AdminConfiguration? {
        guard let node else { return AdminConfiguration(host: "127.0.0.1", port: 8181) }
        guard let map = mapping(node, "admin") else { return nil }
        checkKeys(map, "admin", allowed: ["enabled", "host", "port"])
        let enabled = boolean(map["enabled"], "admin.enabled") ?? true
        let host = string(map["host"], "admin.host") ?? "127.0.0.1"
        let port = integer(map["port"], "admin.port", range: 1...65535) ?? 8181
        return enabled ? AdminConfiguration(host: host, port: port) : nil
    }

    mutating func readLimits(_ node: Node?) -> LimitsConfiguration {
        var limits = LimitsConfiguration(maxFrameBytes: 65536, callTimeout: .seconds(60))
        guard let node, let map = mapping(node, "limits") else { return limits }
        checkKeys(map, "limits", allowed: ["maxFrameBytes", "callTimeout"])
        limits.maxFrameBytes = integer(map["maxFrameBytes"], "limits.maxFrameBytes", range: 128...16_777_216) ?? limits.maxFrameBytes
        limits.callTimeout = duration(map["callTimeout"], "limits.callTimeout", positive: true) ?? limits.callTimeout
        return limits
    }

    mutating func readKeepalive(_ node: Node?) -> KeepaliveConfiguration {
        var keepalive = KeepaliveConfiguration(pingInterval: .seconds(30), pongTimeout: .seconds(10))
        guard let node, let map = mapping(node, "keepalive") else { return keepalive }
        checkKeys(map, "keepalive", allowed: ["pingInterval", "pongTimeout"])
        keepalive.pingInterval = duration(map["pingInterval"], "keepalive.pingInterval", positive: false) ?? keepalive.pingInterval
        keepalive.pongTimeout = duration(map["pongTimeout"], "keepalive.pongTimeout", positive: true) ?? keepalive.pongTimeout
        return keepalive
    }

    mutating func readLogging(_ node: Node?) -> LoggingConfiguration {
        var logging = LoggingConfiguration(level: "info", format: .text)
        guard let node, let map = mapping(node, "logging") else { return logging }
        checkKeys(map, "logging", allowed: ["level", "format"])
        if let level = map["level"] {
            if let text = string(level, "logging.level") {
                if LogLevelName.parse(text) != nil {
                    logging.level = text.lowercased()
                } else {
                    fail("logging.level", level, "expected one of \(LogLevelName.all), got \(quoted(text))")
                }
            }
        }
        logging.format = enumeration(map["format"], "logging.format", LogFormat.self) ?? logging.format
        return logging
    }

    mutating func readShutdown(_ node: Node?) -> ShutdownConfiguration {
        var shutdown = ShutdownConfiguration(gracePeriod: .seconds(10))
        guard let node, let map = mapping(node, "shutdown") else { return shutdown }
        checkKeys(map, "shutdown", allowed: ["gracePeriod"])
        shutdown.gracePeriod = duration(map["gracePeriod"], "shutdown.gracePeriod", positive: true) ?? shutdown.gracePeriod
        return shutdown
    }

    mutating func checkPortsUnique(_ listeners: [ListenerConfiguration], admin: AdminConfiguration?) {
        var seen: [Int: String] = [:]
        for (index, listener) in listeners.enumerated() {
            if let other = seen[listener.port] {
                fail("listeners[\(index)].port", nil, "port \(listener.port) is already used by \(other)")
            } else {
                seen[listener.port] = "listeners[\(index)]"
            }
        }
        if let admin, let other = seen[admin.port] {
            fail("admin.port", nil, "port \(admin.port) is already used by \(other)")
        }
    }

    // MARK: Scalars

    mutating func mapping(_ node: Node, _ key: String) -> Node.Mapping? {
        guard case .mapping(let map) = node else {
            fail(key, node, "expected a mapping, got \(describe(node))")
            return nil
        }
        return map
    }

    mutating func checkKeys(_ map: Node.Mapping, _ key: String, allowed: [String]) {
        var seen = Set<String>()
        for (keyNode, _) in map {
            let name = keyNode.string ?? "\(keyNode)"
            let full = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.contains(name) {
                fail(full, keyNode, "unknown key; expected one of \(allowed.joined(separator: ", "))")
            } else if !seen.insert(name).inserted {
                fail(full, keyNode, "key appears twice")
            }
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
            if required { fail(key, nil, "required key is missing; expected an integer \(range.lowerBound)-\(range.upperBound)") }
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
        let expected = positive
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

    mutating func enumeration<E: RawRepresentable & CaseIterable>(_ node: Node?, _ key: String, _ type: E.Type) -> E?
    where E.RawValue == String {
        guard let node else { return nil }
        let choices = E.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .scalar(let scalar) = node, let text = expandEnvironment(scalar.string, key, node) else {
            if case .scalar = node { return nil }
            fail(key, node, "expected one of \(choices), got \(describe(node))")
            return nil
        }
        guard let value = E(rawValue: text) else {
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
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func quoted(_ text: String, node: Node? = nil) -> String {
        if case .scalar(let scalar)? = node, scalar.style == .plain, Double(text) != nil { return text }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}

/// Duration text as written in configuration files.
public enum DurationText {
    public static func parse(_ text: String) -> TimeAmount? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, nanoseconds: Double)] = [
            ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": only accept a clean number before the suffix.
            guard let value = Double(number), value.isFinite else { continue }
            return .nanoseconds(Int64(value * unit.nanoseconds))
        }
        if let seconds = Double(trimmed), seconds.isFinite { return .nanoseconds(Int64(seconds * 1e9)) }
        return nil
    }
}

/// swift-log level names, as accepted in configuration and on the command line.
public enum LogLevelName {
    public static let all = "trace, debug, info, notice, warning, error, critical"

    public static func parse(_ text: String) -> String? {
        let lower = text.lowercased()
        return all.components(separatedBy: ", ").contains(lower) ? lower : nil
    }
}
