import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPRules
import Yams

/// `chargers:` (inline or a file) and `lockout:`, with the PEM files they name.
extension ConfigurationReader {
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
            var reader = ConfigurationReader(
                file: file, baseDirectory: (file as NSString).deletingLastPathComponent, environment: environment)
            reader.upstreamNames = upstreamNames
            let list: Node?
            switch YAMLReader.compose(text) {
            case .success(let node):
                list = node
            case .failure(let failure) where failure.kind == .unexpected:
                fail("chargers", node, "cannot parse the charger list \(file): \(failure.error)")
                return nil
            case .failure(let failure):
                issues.append(ConfigurationLoader.syntaxIssue(failure, file: file))
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
                map, key,
                allowed: [
                    "identity", "securityProfile", "password", "passwordHash", "upstream", "upstreamPasswords",
                    "shadow",
                    "tolerance", "soapEndpoint", "capabilities", "evses", "limits",
                ])
            var ownLimits: MessageLimits?
            if let limitsNode = map["limits"], let limitsMap = mapping(limitsNode, "\(key).limits") {
                checkKeys(limitsMap, "\(key).limits", allowed: ["messages"])
                ownLimits = limitsMap["messages"].flatMap { messageLimits($0, "\(key).limits.messages") }
            }
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
            // `upstream: NAME` routes the charger; `upstream: {name, password}` may also give its password there.
            var upstreamPassword: String?
            var route: String?
            if let upstream = map["upstream"] {
                if case .scalar = upstream {
                    route = knownUpstream(upstream, "\(key).upstream", among: upstreamNames, required: true)
                } else if let upstreamMap = mapping(upstream, "\(key).upstream") {
                    checkKeys(upstreamMap, "\(key).upstream", allowed: ["name", "password"])
                    route = knownUpstream(upstreamMap["name"], "\(key).upstream.name", among: upstreamNames)
                    if upstreamMap["password"] != nil || upstreamMap["name"] == nil {
                        upstreamPassword = string(upstreamMap["password"], "\(key).upstream.password", required: true)
                    }
                }
            }
            var upstreamPasswords: [String: String] = [:]
            if let node = map["upstreamPasswords"], let passwords = mapping(node, "\(key).upstreamPasswords") {
                for (name, nameNode, value) in YAMLReader.pairs(passwords).pairs {
                    let entry = "\(key).upstreamPasswords.\(name)"
                    guard knownUpstream(nameNode, entry, among: upstreamNames) != nil,
                        let password = string(value, entry, required: true)
                    else { continue }
                    upstreamPasswords[name] = password
                }
            }
            let shadow = map["shadow"].flatMap {
                knownUpstream($0, "\(key).shadow", among: upstreamNames, required: true)
            }
            if let shadow, shadow == route {
                fail(
                    "\(key).shadow", map["shadow"],
                    "the shadow must be another upstream than the one the charger is routed to (\(shadow))")
            }
            guard let identity else {
                valid = false
                continue
            }
            chargers[identity] = ChargerRegistration(
                identity: identity, securityProfile: profile, credential: credential,
                upstreamPassword: upstreamPassword,
                tolerance: string(map["tolerance"], "\(key).tolerance"),
                soapEndpoint: map["soapEndpoint"].flatMap { httpURL($0, "\(key).soapEndpoint") },
                capabilities: capabilities(map["capabilities"], "\(key).capabilities"),
                layout: map["evses"].flatMap { evseLayout($0, "\(key).evses") }, messageLimits: ownLimits,
                upstream: route, shadow: shadow, upstreamPasswords: upstreamPasswords)
        }
        return valid ? chargers : nil
    }

    /// `models:` — what chargers of a model have (layout, capabilities), for chargers whose entry does not say.
    mutating func readModels(_ node: Node?) -> [String: ModelProfile] {
        guard let node else { return [:] }
        guard case .sequence(let sequence) = node else {
            fail("models", node, "expected a list of {model, evses, capabilities}, got \(describe(node))")
            return [:]
        }
        var models: [String: ModelProfile] = [:]
        for (index, item) in sequence.enumerated() {
            let key = "models[\(index)]"
            guard let map = mapping(item, key) else { continue }
            checkKeys(map, key, allowed: ["model", "evses", "capabilities"])
            guard let name = string(map["model"], "\(key).model", required: true) else { continue }
            if models[name] != nil { fail("\(key).model", map["model"], "model \(name) is listed twice") }
            models[name] = ModelProfile(
                capabilities: capabilities(map["capabilities"], "\(key).capabilities"),
                layout: map["evses"].flatMap { evseLayout($0, "\(key).evses") })
        }
        return models
    }

    /// A list of capability names, each one the rule files know.
    mutating func capabilities(_ node: Node?, _ key: String) -> Set<String>? {
        guard let node else { return nil }
        guard case .sequence(let items) = node else {
            fail(
                key, node,
                "expected a list of capabilities (\(ChargerProfile.knownCapabilities.sorted().joined(separator: ", "))), got \(describe(node))"
            )
            return nil
        }
        var names = Set<String>()
        for (index, item) in items.enumerated() {
            guard let name = string(item, "\(key)[\(index)]", required: true) else { continue }
            guard ChargerProfile.knownCapabilities.contains(name) else {
                fail(
                    "\(key)[\(index)]", item,
                    "unknown capability \(quoted(name, node: item)); expected one of \(ChargerProfile.knownCapabilities.sorted().joined(separator: ", "))"
                )
                continue
            }
            names.insert(name)
        }
        return names
    }

    /// `evses: [[1, 2], [3]]`: the 1.6 connector ids on each EVSE, EVSE 1 first.
    mutating func evseLayout(_ node: Node, _ key: String) -> EVSELayout? {
        let expected = "expected a list of EVSEs, each a list of 1.6 connector ids, e.g. [[1, 2], [3]]"
        guard case .sequence(let evses) = node, !evses.isEmpty else {
            fail(key, node, "\(expected), got \(describe(node))")
            return nil
        }
        var ids: [[Int64]] = []
        for (e, evse) in evses.enumerated() {
            guard case .sequence(let connectors) = evse else {
                fail("\(key)[\(e)]", evse, "\(expected), got \(describe(evse))")
                return nil
            }
            var list: [Int64] = []
            for (c, connector) in connectors.enumerated() {
                guard let id = integer(connector, "\(key)[\(e)][\(c)]", range: 1...999) else { return nil }
                list.append(Int64(id))
            }
            ids.append(list)
        }
        if let problem = EVSELayout.problem(ids) {
            fail(key, node, problem)
            return nil
        }
        return EVSELayout(ids)
    }

    mutating func readLockout(_ node: Node?) -> LockoutConfiguration {
        var lockout = LockoutConfiguration()
        guard let node, let map = mapping(node, "lockout") else { return lockout }
        checkKeys(map, "lockout", allowed: ["maxFailures", "maxFailuresPerAddress", "window", "duration"])
        lockout.maxFailures =
            integer(map["maxFailures"], "lockout.maxFailures", range: 1...1_000_000) ?? lockout.maxFailures
        lockout.maxFailuresPerAddress =
            integer(map["maxFailuresPerAddress"], "lockout.maxFailuresPerAddress", range: 1...1_000_000)
            ?? max(lockout.maxFailuresPerAddress, lockout.maxFailures)
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
}
