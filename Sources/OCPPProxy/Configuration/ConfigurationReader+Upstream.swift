import Foundation
import NIOCore
import NIOSSL
import OCPP
import Yams

/// `upstream:`: the CSMS URL, version, timeouts and TLS.
extension ConfigurationReader {
    mutating func readUpstream(_ node: Node?) -> UpstreamConfiguration? {
        guard let node else {
            fail("upstream", nil, "required key is missing; expected a mapping with url and version")
            return nil
        }
        guard let map = mapping(node, "upstream") else { return nil }
        checkKeys(map, "upstream", allowed: ["url", "version", "connectTimeout", "tls"])
        // A CSMS is reached over WebSocket: OCPP 1.5 (SOAP only) is not among the choices.
        let version =
            map["version"] == nil
            ? {
                fail(
                    "upstream.version", nil,
                    "required key is missing; expected one of \(OCPPVersion.jsonVersions.map(\.rawValue).joined(separator: ", "))"
                )
                return nil
            }()
            : enumeration(map["version"], "upstream.version", OCPPVersion.self, among: OCPPVersion.jsonVersions)
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
}
