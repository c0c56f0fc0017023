import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPRules
import Yams

/// `upstream:` (one CSMS) or `upstreams:` (several, by name): each one's URL, version, timeouts and TLS.
extension ConfigurationReader {
    /// The upstreams, in the file's order: `upstream:` as the one named `default`, or `upstreams:`. Exactly one of
    /// the two keys; nil when neither is usable.
    mutating func readUpstreams(one: Node?, several: Node?) -> [UpstreamConfiguration]? {
        switch (one, several) {
        case (nil, nil):
            fail(
                "upstream", nil,
                "required key is missing; expected a mapping with url and version (or upstreams: a list of named ones)")
            return nil
        case (_?, let list?):
            fail(
                "upstreams", list,
                "give either upstream (one CSMS) or upstreams (several, by name), not both; upstream alone is the one named default"
            )
            return nil
        case (let node?, nil):
            return readUpstream(node, key: "upstream", name: UpstreamConfiguration.defaultName).map { [$0] }
        case (nil, let list?):
            guard case .sequence(let items) = list, !items.isEmpty else {
                fail("upstreams", list, "expected a list of {name, url, version}, got \(describe(list))")
                return nil
            }
            var upstreams: [UpstreamConfiguration] = []
            var valid = true
            for (index, item) in items.enumerated() {
                let key = "upstreams[\(index)]"
                guard let map = mapping(item, key) else {
                    valid = false
                    continue
                }
                guard let name = upstreamName(map["name"], "\(key).name", required: true) else {
                    valid = false
                    continue
                }
                if upstreams.contains(where: { $0.name == name }) {
                    fail("\(key).name", map["name"], "upstream \(quoted(name)) is listed twice")
                    valid = false
                    continue
                }
                guard let upstream = readUpstream(item, key: key, name: name) else {
                    valid = false
                    continue
                }
                upstreams.append(upstream)
            }
            return valid ? upstreams : nil
        }
    }

    /// An upstream's name: `[A-Za-z0-9_-]+`, since it is a metric label, a key of the state store and of the
    /// configuration.
    mutating func upstreamName(_ node: Node?, _ key: String, required: Bool = false) -> String? {
        guard let name = string(node, key, required: required) else { return nil }
        let allowed = name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed else {
            fail(key, node, "expected a name of letters, digits, _ and - (at most 64), got \(quoted(name, node: node))")
            return nil
        }
        return name
    }

    /// One upstream's mapping at `key` (`upstream` or `upstreams[N]`).
    mutating func readUpstream(_ node: Node, key: String, name: String) -> UpstreamConfiguration? {
        guard let map = mapping(node, key) else { return nil }
        checkKeys(
            map, key,
            allowed: key == "upstream"
                ? ["url", "version", "connectTimeout", "tls"]
                : ["name", "url", "version", "connectTimeout", "tls", "answerLocally"])
        // A CSMS is reached over WebSocket: OCPP 1.5 (SOAP only) is not among the choices.
        let version =
            map["version"] == nil
            ? {
                fail(
                    "\(key).version", nil,
                    "required key is missing; expected one of \(OCPPVersion.jsonVersions.map(\.rawValue).joined(separator: ", "))"
                )
                return nil
            }()
            : enumeration(map["version"], "\(key).version", OCPPVersion.self, among: OCPPVersion.jsonVersions)
        let timeout = duration(map["connectTimeout"], "\(key).connectTimeout", positive: true) ?? .seconds(5)
        guard let urlText = string(map["url"], "\(key).url", required: true) else { return nil }
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            fail(
                "\(key).url", map["url"],
                "expected a ws:// URL such as ws://127.0.0.1:9000/ocpp, got \(quoted(urlText))")
            return nil
        }
        guard scheme == "ws" || scheme == "wss" else {
            fail("\(key).url", map["url"], "expected a ws:// or wss:// URL, got \(quoted(urlText))")
            return nil
        }
        var tls: UpstreamTLSConfiguration?
        if let node = map["tls"] {
            if scheme == "ws" {
                fail("\(key).tls", node, "TLS settings need a wss:// \(key).url, got \(quoted(urlText))")
            } else {
                tls = readUpstreamTLS(node, key: "\(key).tls")
            }
        } else if scheme == "wss" {
            tls = UpstreamTLSConfiguration(ca: nil, certificate: nil, privateKey: nil, insecureSkipVerify: false)
        }
        if url.query != nil || url.fragment != nil || url.user != nil {
            fail("\(key).url", map["url"], "expected a URL without user, query or fragment, got \(quoted(urlText))")
            return nil
        }
        var path = url.path
        while path.hasSuffix("/") { path.removeLast() }
        let answers = readShadowAnswers(map["answerLocally"], key: "\(key).answerLocally")
        guard let version else { return nil }
        var upstream = UpstreamConfiguration(
            name: name, key: key, scheme: scheme, host: host, port: url.port ?? (scheme == "wss" ? 443 : 80),
            path: path, version: version, connectTimeout: timeout, tls: tls)
        upstream.answerLocally = answers
        return upstream
    }

    /// `routing:` over the upstreams read: `default` (required with several upstreams) and `rules`, each naming a
    /// configured upstream. Without `routing:`, the one upstream is the default.
    mutating func readRouting(_ node: Node?, upstreams: [UpstreamConfiguration]?) -> RoutingConfiguration? {
        let names = upstreams?.map(\.name)
        var defaultName = names?.count == 1 ? names?.first : nil
        var rules: [RouteRule] = []
        var valid = true
        if let node, let map = mapping(node, "routing") {
            checkKeys(map, "routing", allowed: ["default", "rules"])
            if let name = knownUpstream(map["default"], "routing.default", among: names) {
                defaultName = name
            } else if map["default"] != nil {
                valid = false
            }
            if let list = map["rules"] {
                if case .sequence(let items) = list {
                    for (index, item) in items.enumerated() {
                        let key = "routing.rules[\(index)]"
                        guard let rule = mapping(item, key) else {
                            valid = false
                            continue
                        }
                        checkKeys(rule, key, allowed: ["match", "upstream", "shadow"])
                        var pattern: IdentityPattern?
                        if rule["match"] == nil {
                            fail("\(key).match", item, "required key is missing; expected a pattern such as \"ABB-*\"")
                        } else if let text = string(rule["match"], "\(key).match", required: true) {
                            do {
                                pattern = try IdentityPattern(text)
                            } catch {
                                fail("\(key).match", rule["match"], "\(error)")
                            }
                        }
                        if rule["upstream"] == nil {
                            fail("\(key).upstream", item, "required key is missing; expected the name of an upstream")
                        }
                        let upstream = knownUpstream(rule["upstream"], "\(key).upstream", among: names)
                        let shadow = rule["shadow"].flatMap { knownUpstream($0, "\(key).shadow", among: names) }
                        if let shadow, shadow == upstream {
                            fail(
                                "\(key).shadow", rule["shadow"],
                                "the shadow must be another upstream than the one the rule routes to (\(shadow))")
                            valid = false
                        }
                        guard let pattern, let upstream, rule["shadow"] == nil || shadow != nil else {
                            valid = false
                            continue
                        }
                        rules.append(RouteRule(match: pattern, upstream: upstream, shadow: shadow))
                    }
                } else {
                    fail("routing.rules", list, "expected a list of {match, upstream}, got \(describe(list))")
                    valid = false
                }
            }
        } else if node != nil {
            valid = false
        }
        guard let names else { return nil }
        guard let defaultName else {
            if valid {
                fail(
                    "routing.default", node,
                    "required with several upstreams: the one a charger goes to when no rule and no chargers[].upstream names one; expected one of \(names.joined(separator: ", "))"
                )
            }
            return nil
        }
        return valid ? RoutingConfiguration(defaultUpstream: defaultName, rules: rules) : nil
    }

    /// The name of a configured upstream; `names` nil: the upstreams could not be read, so names are not checked
    /// against them (one problem, not one per route).
    mutating func knownUpstream(_ node: Node?, _ key: String, among names: [String]?, required: Bool = false)
        -> String?
    {
        guard let name = string(node, key, required: required) else { return nil }
        guard let names else { return name }
        guard names.contains(name) else {
            fail(key, node, "unknown upstream \(quoted(name)); expected one of \(names.joined(separator: ", "))")
            return nil
        }
        return name
    }

    mutating func readUpstreamTLS(_ node: Node, key: String) -> UpstreamTLSConfiguration? {
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
}
