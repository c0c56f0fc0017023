import Foundation
import NIOCore
import NIOSSL
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
                ConfigurationIssue(
                    keyPath: "", message: "cannot read configuration file \(path): \(Self.reason(error))")
            ])
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try load(yaml: text, file: path, baseDirectory: directory.isEmpty ? "." : directory)
    }

    /// Validates YAML text; relative paths in it are taken relative to `baseDirectory`.
    public func load(yaml: String, file: String, baseDirectory: String) throws(ConfigurationError) -> ProxyConfiguration
    {
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
            underlying.domain == NSPOSIXErrorDomain, let raw = Int32(exactly: underlying.code),
            let code = POSIXErrorCode(rawValue: raw)
        {
            return String(cString: strerror(code.rawValue))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }

    static func syntaxIssue(_ error: YamlError, file: String) -> ConfigurationIssue {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            return ConfigurationIssue(keyPath: "", message: "YAML syntax error: \(what)", file: file, line: mark.line)
        case .composer(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            return ConfigurationIssue(keyPath: "", message: "YAML error: \(what)", file: file, line: mark.line)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigurationIssue(
                keyPath: "", message: "key appears twice in one mapping: \(duplicates.joined(separator: ", "))",
                file: file,
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
        checkKeys(
            top, "",
            allowed: [
                "listeners", "upstream", "duplicateIdentity", "rules", "state", "admin", "limits", "keepalive",
                "logging", "shutdown", "chargers", "lockout",
            ])
        let listeners = readListeners(top["listeners"])
        let upstream = readUpstream(top["upstream"])
        let duplicate =
            enumeration(top["duplicateIdentity"], "duplicateIdentity", DuplicateIdentityPolicy.self) ?? .replace
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
        let chargers = readChargers(top["chargers"])
        let lockout = readLockout(top["lockout"])
        checkPortsUnique(listeners ?? [], admin: admin)

        guard let listeners, let upstream, let chargers else { return nil }
        return ProxyConfiguration(
            listeners: listeners, upstream: upstream, duplicateIdentity: duplicate, rulesDirectory: rules,
            stateSQLitePath: statePath, admin: admin, limits: limits, keepalive: keepalive, logging: logging,
            shutdown: shutdown, chargers: chargers, lockout: lockout)
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
            checkKeys(
                map, key,
                allowed: [
                    "name", "host", "port", "path", "versions", "defaultVersion", "securityProfile", "tls",
                    "unknownChargers", "tolerance",
                ])
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
                    fail(
                        "\(key).defaultVersion", node,
                        "expected one of the listener's versions (\(versions.map(\.rawValue).joined(separator: ", "))), got \"\(defaultVersion)\""
                    )
                }
            }
            let profile = integer(map["securityProfile"], "\(key).securityProfile", range: 0...3) ?? 0
            let tls = map["tls"].flatMap { readListenerTLS($0, "\(key).tls", profile: profile) }
            if profile >= 2 && map["tls"] == nil {
                fail(
                    "\(key).tls", map["securityProfile"],
                    "required key is missing; security profile \(profile) needs TLS (certificate and privateKey)")
            }
            let unknown =
                enumeration(map["unknownChargers"], "\(key).unknownChargers", UnknownChargerPolicy.self)
                ?? (profile == 0 ? .allow : .reject)
            if unknown == .allow && profile > 0 {
                fail(
                    "\(key).unknownChargers", map["unknownChargers"],
                    "allow is only for security profile 0 (development); expected reject with profile \(profile)")
            }
            if let name, let port, let versions, profile < 2 || tls != nil {
                listeners.append(
                    ListenerConfiguration(
                        name: name, host: host, port: port, path: path, versions: versions,
                        defaultVersion: defaultVersion, securityProfile: profile, tls: tls, unknownChargers: unknown,
                        tolerance: string(map["tolerance"], "\(key).tolerance")))
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
        checkKeys(map, "upstream", allowed: ["url", "version", "connectTimeout", "tls"])
        let version =
            map["version"] == nil
            ? {
                fail("upstream.version", nil, "required key is missing; expected one of \(OCPPVersion.allNames)");
                return nil
            }()
            : enumeration(map["version"], "upstream.version", OCPPVersion.self)
        let timeout = duration(map["connectTimeout"], "upstream.connectTimeout", positive: true) ?? .seconds(5)
        guard let urlText = string(map["url"], "upstream.url", required: true) else { return nil }
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            fail(
                "upstream.url", map["url"],
                "expected a ws:// URL such as ws://127.0.0.1:9000/ocpp, got \(quoted(urlText))")
            return nil
        }
        guard scheme == "ws" || scheme == "wss" else {
            fail("upstream.url", map["url"], "expected a ws:// or wss:// URL, got \(quoted(urlText))")
            return nil
        }
        var tls: UpstreamTLSConfiguration?
        if let node = map["tls"] {
            if scheme == "ws" {
                fail("upstream.tls", node, "TLS settings need a wss:// upstream.url, got \(quoted(urlText))")
            } else {
                tls = readUpstreamTLS(node)
            }
        } else if scheme == "wss" {
            tls = UpstreamTLSConfiguration(ca: nil, certificate: nil, privateKey: nil, insecureSkipVerify: false)
        }
        if url.query != nil || url.fragment != nil || url.user != nil {
            fail("upstream.url", map["url"], "expected a URL without user, query or fragment, got \(quoted(urlText))")
            return nil
        }
        var path = url.path
        while path.hasSuffix("/") { path.removeLast() }
        guard let version else { return nil }
        return UpstreamConfiguration(
            scheme: scheme, host: host, port: url.port ?? (scheme == "wss" ? 443 : 80), path: path, version: version,
            connectTimeout: timeout, tls: tls)
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
        checkKeys(map, "limits", allowed: ["maxFrameBytes", "callTimeout", "maxPendingCalls"])
        limits.maxFrameBytes =
            integer(map["maxFrameBytes"], "limits.maxFrameBytes", range: 128...16_777_216) ?? limits.maxFrameBytes
        limits.maxPendingCalls =
            integer(map["maxPendingCalls"], "limits.maxPendingCalls", range: 1...1024) ?? limits.maxPendingCalls
        limits.callTimeout = duration(map["callTimeout"], "limits.callTimeout", positive: true) ?? limits.callTimeout
        return limits
    }

    mutating func readKeepalive(_ node: Node?) -> KeepaliveConfiguration {
        var keepalive = KeepaliveConfiguration(pingInterval: .seconds(30), pongTimeout: .seconds(10))
        guard let node, let map = mapping(node, "keepalive") else { return keepalive }
        checkKeys(map, "keepalive", allowed: ["pingInterval", "pongTimeout"])
        keepalive.pingInterval =
            duration(map["pingInterval"], "keepalive.pingInterval", positive: false) ?? keepalive.pingInterval
        keepalive.pongTimeout =
            duration(map["pongTimeout"], "keepalive.pongTimeout", positive: true) ?? keepalive.pongTimeout
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
        shutdown.gracePeriod =
            duration(map["gracePeriod"], "shutdown.gracePeriod", positive: true) ?? shutdown.gracePeriod
        return shutdown
    }

    mutating func readListenerTLS(_ node: Node, _ key: String, profile: Int) -> ListenerTLSConfiguration? {
        guard let map = mapping(node, key) else { return nil }
        checkKeys(map, key, allowed: ["certificate", "privateKey", "clientCA", "crl", "cpoName", "allowLegacyTLS"])
        let certificate =
            map["certificate"] == nil
            ? {
                fail("\(key).certificate", node, "required key is missing; expected a PEM certificate chain file");
                return nil
            }()
            : map["certificate"].flatMap { pemCertificates($0, "\(key).certificate") }
        let privateKey =
            map["privateKey"] == nil
            ? {
                fail("\(key).privateKey", node, "required key is missing; expected a PEM private key file"); return nil
            }()
            : map["privateKey"].flatMap { pemPrivateKey($0, "\(key).privateKey") }
        let clientCA = map["clientCA"].flatMap { pemCertificates($0, "\(key).clientCA") }
        if profile == 3 && map["clientCA"] == nil {
            fail(
                "\(key).clientCA", node,
                "required key is missing; security profile 3 verifies client certificates against it")
        } else if profile != 3, let node = map["clientCA"] {
            fail(
                "\(key).clientCA", node,
                "client certificates are only checked with securityProfile 3, got profile \(profile)")
        }
        var crl: String?
        if let node = map["crl"], let path = path(node, "\(key).crl") {
            do {
                _ = try RevocationList(contentsOfFile: path)
                crl = path
            } catch {
                fail("\(key).crl", node, "cannot read a revocation list from \(path): \(Self.fileReason(error))")
            }
            if profile != 3 {
                fail("\(key).crl", node, "a CRL is only used with securityProfile 3, got profile \(profile)")
            }
        }
        let cpoName = string(map["cpoName"], "\(key).cpoName")
        let legacy = boolean(map["allowLegacyTLS"], "\(key).allowLegacyTLS") ?? false
        guard let certificate, let privateKey else { return nil }
        return ListenerTLSConfiguration(
            certificate: certificate, privateKey: privateKey, clientCA: clientCA, crl: crl, cpoName: cpoName,
            allowLegacyTLS: legacy)
    }

    mutating func readUpstreamTLS(_ node: Node) -> UpstreamTLSConfiguration? {
        let key = "upstream.tls"
        guard let map = mapping(node, key) else { return nil }
        checkKeys(map, key, allowed: ["ca", "certificate", "privateKey", "insecureSkipVerify"])
        let ca = map["ca"].flatMap { pemCertificates($0, "\(key).ca") }
        let certificate = map["certificate"].flatMap { pemCertificates($0, "\(key).certificate") }
        let privateKey = map["privateKey"].flatMap { pemPrivateKey($0, "\(key).privateKey") }
        if (map["certificate"] == nil) != (map["privateKey"] == nil) {
            fail(
                map["certificate"] == nil ? "\(key).certificate" : "\(key).privateKey", node,
                "mutual TLS toward the CSMS needs both certificate and privateKey")
        }
        let skip = boolean(map["insecureSkipVerify"], "\(key).insecureSkipVerify") ?? false
        return UpstreamTLSConfiguration(
            ca: ca, certificate: certificate, privateKey: privateKey, insecureSkipVerify: skip)
    }

    /// `chargers:` is a list, or the path of a YAML file holding one.
    mutating func readChargers(_ node: Node?) -> [ChargerIdentity: ChargerRegistration]? {
        guard let node else { return [:] }
        if case .scalar = node {
            guard let file = path(node, "chargers") else { return nil }
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                fail("chargers", node, "cannot read the charger list \(file): \(Self.fileReason(error))")
                return nil
            }
            var reader = NodeReader(
                file: file, baseDirectory: (file as NSString).deletingLastPathComponent, environment: environment)
            let list: Node?
            do {
                list = try Yams.compose(yaml: text)
            } catch let error as YamlError {
                issues.append(ConfigurationLoader.syntaxIssue(error, file: file))
                return nil
            } catch {
                fail("chargers", node, "cannot parse the charger list \(file): \(error)")
                return nil
            }
            let chargers = reader.readChargerList(list ?? Node([Node]()))
            issues += reader.issues
            return chargers
        }
        return readChargerList(node)
    }

    mutating func readChargerList(_ node: Node) -> [ChargerIdentity: ChargerRegistration]? {
        guard case .sequence(let sequence) = node else {
            fail(
                "chargers", node, "expected a list of chargers or the path of a file holding one, got \(describe(node))"
            )
            return nil
        }
        var chargers: [ChargerIdentity: ChargerRegistration] = [:]
        var valid = true
        for (index, item) in sequence.enumerated() {
            let key = "chargers[\(index)]"
            guard let map = mapping(item, key) else {
                valid = false
                continue
            }
            checkKeys(
                map, key, allowed: ["identity", "securityProfile", "password", "passwordHash", "upstream", "tolerance"])
            var identity: ChargerIdentity?
            if let text = string(map["identity"], "\(key).identity", required: true) {
                do {
                    identity = try ChargerIdentity(text)
                } catch {
                    fail("\(key).identity", map["identity"], "\(error)")
                }
            }
            if let identity, chargers[identity] != nil {
                fail("\(key).identity", map["identity"], "charger \(identity) is listed twice")
            }
            let profile = integer(map["securityProfile"], "\(key).securityProfile", range: 0...3) ?? 0
            var credential: ChargerCredential?
            switch (map["password"], map["passwordHash"]) {
            case (let plain?, nil):
                credential = string(plain, "\(key).password", required: true).map(ChargerCredential.plaintext)
            case (nil, let hashNode?):
                if let text = string(hashNode, "\(key).passwordHash", required: true) {
                    if let hash = PasswordHash(text) {
                        credential = .hash(hash)
                    } else {
                        // Never echo the value: it may be a password pasted in the wrong key.
                        fail(
                            "\(key).passwordHash", hashNode,
                            "expected a hash from `ocpp-proxy hash-password` (\(PasswordHash.scheme)$ROUNDS$SALT$HASH)")
                    }
                }
            case (_?, _?):
                fail("\(key).password", map["password"], "give either password or passwordHash, not both")
            case (nil, nil):
                if profile == 1 || profile == 2 {
                    fail(
                        "\(key).passwordHash", item, "required for a charger registered at security profile \(profile)")
                }
            }
            var upstreamPassword: String?
            if let upstream = map["upstream"], let upstreamMap = mapping(upstream, "\(key).upstream") {
                checkKeys(upstreamMap, "\(key).upstream", allowed: ["password"])
                upstreamPassword = string(upstreamMap["password"], "\(key).upstream.password", required: true)
            }
            guard let identity else {
                valid = false
                continue
            }
            chargers[identity] = ChargerRegistration(
                identity: identity, securityProfile: profile, credential: credential,
                upstreamPassword: upstreamPassword,
                tolerance: string(map["tolerance"], "\(key).tolerance"))
        }
        return valid ? chargers : nil
    }

    mutating func readLockout(_ node: Node?) -> LockoutConfiguration {
        var lockout = LockoutConfiguration(maxFailures: 10, window: .seconds(60), duration: .seconds(300))
        guard let node, let map = mapping(node, "lockout") else { return lockout }
        checkKeys(map, "lockout", allowed: ["maxFailures", "window", "duration"])
        lockout.maxFailures =
            integer(map["maxFailures"], "lockout.maxFailures", range: 1...1_000_000) ?? lockout.maxFailures
        lockout.window = duration(map["window"], "lockout.window", positive: true) ?? lockout.window
        lockout.duration = duration(map["duration"], "lockout.duration", positive: true) ?? lockout.duration
        return lockout
    }

    /// A readable PEM certificate (chain) file.
    mutating func pemCertificates(_ node: Node, _ key: String) -> String? {
        guard let file = path(node, key) else { return nil }
        do {
            guard !(try NIOSSLCertificate.fromPEMFile(file)).isEmpty else {
                fail(key, node, "no PEM certificate in \(file)")
                return nil
            }
            return file
        } catch {
            fail(key, node, "cannot read PEM certificates from \(file): \(Self.fileReason(error))")
            return nil
        }
    }

    mutating func pemPrivateKey(_ node: Node, _ key: String) -> String? {
        guard let file = path(node, key) else { return nil }
        do {
            _ = try NIOSSLPrivateKey(file: file, format: .pem)
            return file
        } catch {
            fail(key, node, "cannot read a PEM private key from \(file): \(Self.fileReason(error))")
            return nil
        }
    }

    static func fileReason(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
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
            return nanoseconds(value * unit.nanoseconds)
        }
        if let seconds = Double(trimmed) { return nanoseconds(seconds * 1e9) }
        return nil
    }

    /// nil past what a TimeAmount holds (about 292 years): `1e300s` is a bad value, not a trap.
    private static func nanoseconds(_ value: Double) -> TimeAmount? {
        Int64(exactly: value.rounded()).map(TimeAmount.nanoseconds)
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
