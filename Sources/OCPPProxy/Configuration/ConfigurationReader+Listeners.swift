import Foundation
import NIOCore
import NIOSSL
import OCPP
import Yams

/// `listeners:`: sockets, versions, security profiles and TLS.
extension ConfigurationReader {
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
                    "unknownChargers", "tolerance", "transport", "publicURL", "maxConnections",
                ])
            let transport =
                enumeration(map["transport"], "\(key).transport", ListenerTransport.self) ?? .websocket
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
            // OCPP 1.5 exists only over SOAP; SOAP exists only up to 1.6.
            let versions = readVersions(
                map["versions"], "\(key).versions",
                served: transport == .soap ? [.v1_5, .v1_6] : OCPPVersion.jsonVersions)
            var defaultVersion: OCPPVersion?
            if let node = map["defaultVersion"], transport == .soap {
                fail(
                    "\(key).defaultVersion", node,
                    "a SOAP listener takes each charger's version from its requests; remove defaultVersion")
            } else if let node = map["defaultVersion"] {
                defaultVersion = enumeration(
                    node, "\(key).defaultVersion", OCPPVersion.self, among: OCPPVersion.jsonVersions)
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
            var publicURL: String?
            if let node = map["publicURL"] {
                if transport != .soap {
                    fail("\(key).publicURL", node, "only a SOAP listener has a publicURL (transport: soap)")
                } else {
                    publicURL = httpURL(node, "\(key).publicURL")
                }
            }
            if let name, let port, let versions, profile < 2 || tls != nil {
                listeners.append(
                    ListenerConfiguration(
                        name: name, host: host, port: port, path: path, versions: versions,
                        defaultVersion: defaultVersion, securityProfile: profile, tls: tls, unknownChargers: unknown,
                        tolerance: string(map["tolerance"], "\(key).tolerance"), transport: transport,
                        publicURL: publicURL,
                        maxConnections: integer(map["maxConnections"], "\(key).maxConnections", range: 1...10_000_000)))
            }
        }
        return listeners.count == sequence.count ? listeners : nil
    }

    /// A listener's versions, each one of `served` (a websocket listener's: the OCPP-J versions).
    mutating func readVersions(
        _ node: Node?, _ key: String, served: [OCPPVersion] = OCPPVersion.jsonVersions
    ) -> [OCPPVersion]? {
        let names = served.map(\.rawValue).joined(separator: ", ")
        guard let node else {
            fail(key, nil, "required key is missing; expected a list of versions from \(names)")
            return nil
        }
        guard case .sequence(let sequence) = node, !sequence.isEmpty else {
            fail(key, node, "expected a non-empty list of versions from \(names), got \(describe(node))")
            return nil
        }
        var versions: [OCPPVersion] = []
        for (index, item) in sequence.enumerated() {
            guard let version = enumeration(item, "\(key)[\(index)]", OCPPVersion.self, among: served) else { continue }
            if versions.contains(version) {
                fail("\(key)[\(index)]", item, "\"\(version)\" is listed twice")
            } else {
                versions.append(version)
            }
        }
        return versions.count == sequence.count ? versions : nil
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
}
