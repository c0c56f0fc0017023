import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS settings OCPP prescribes (OCPP 1.6 security whitepaper and 2.0.1 part 2 A00.FR.317/318/421).
enum OCPPTLS {
    /// The four cipher suites a CSMS supports for TLS 1.2, in OpenSSL/BoringSSL names. TLS 1.3 suites are
    /// fixed by BoringSSL and all strong.
    static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
    ]
    /// The one suite the 1.6 whitepaper allows a legacy charger on TLS 1.0/1.1 (TLS_RSA_WITH_AES_128_CBC_SHA).
    static let legacyCipherSuite = "AES128-SHA"

    static func serverContext(_ tls: ListenerTLSConfiguration, profile: Int) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKey, format: .pem)))
        configuration.minimumTLSVersion = tls.allowLegacyTLS ? .tlsv1 : .tlsv12
        configuration.cipherSuites = (cipherSuites + (tls.allowLegacyTLS ? [legacyCipherSuite] : [])).joined(
            separator: ":")
        if profile == 3, let clientCA = tls.clientCA {
            // Requires a client certificate and verifies it against the client CA, validity period included.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func clientContext(_ tls: UpstreamTLSConfiguration) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = cipherSuites.joined(separator: ":")
        if let ca = tls.ca {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        }
        if let certificate = tls.certificate, let key = tls.privateKey {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        if tls.insecureSkipVerify { configuration.certificateVerification = .none }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// The current TLS context and revocation list of one listener. New connections take whatever is current;
/// established ones keep the context they started with, so a reload never drops a charger.
final class ListenerTLS: Sendable {
    let configuration: ListenerTLSConfiguration
    let profile: Int
    private struct Current: Sendable {
        var context: NIOSSLContext
        var revocations: RevocationList?
        var fingerprint: [String: Date]
    }
    private let current: NIOLockedValueBox<Current>

    init(_ configuration: ListenerTLSConfiguration, profile: Int) throws {
        self.configuration = configuration
        self.profile = profile
        current = NIOLockedValueBox(
            Current(
                context: try OCPPTLS.serverContext(configuration, profile: profile),
                revocations: try configuration.crl.map(RevocationList.init(contentsOfFile:)),
                fingerprint: Self.modificationDates(configuration)))
    }

    var context: NIOSSLContext { current.withLockedValue { $0.context } }
    var revocations: RevocationList? { current.withLockedValue { $0.revocations } }

    /// Rebuilds the context from the files; a broken file keeps the old context and is reported.
    /// `onlyIfChanged` skips the work when no file's modification time moved.
    @discardableResult
    func reload(onlyIfChanged: Bool, logger: Logger, listener: String, audit: AuditLog? = nil) -> Bool {
        let dates = Self.modificationDates(configuration)
        if onlyIfChanged && current.withLockedValue({ dates == $0.fingerprint }) { return false }
        do {
            let context = try OCPPTLS.serverContext(configuration, profile: profile)
            let revocations = try configuration.crl.map(RevocationList.init(contentsOfFile:))
            current.withLockedValue { $0 = Current(context: context, revocations: revocations, fingerprint: dates) }
            logger.notice("TLS certificate, key, client CA and CRL reloaded", metadata: ["listener": "\(listener)"])
            audit?.record(
                .event(
                    "reload", ["what": .string("tls"), "listener": .string(listener), "result": .string("reloaded")]))
            return true
        } catch {
            current.withLockedValue { $0.fingerprint = dates }
            logger.error(
                "TLS reload failed; keeping the previous certificate: \(error)", metadata: ["listener": "\(listener)"])
            audit?.record(
                .event(
                    "reload",
                    [
                        "what": .string("tls"), "listener": .string(listener), "result": .string("failed"),
                        "error": .string("\(error)"),
                    ]))
            return false
        }
    }

    private static func modificationDates(_ tls: ListenerTLSConfiguration) -> [String: Date] {
        var dates: [String: Date] = [:]
        for path in [tls.certificate, tls.privateKey, tls.clientCA, tls.crl].compactMap({ $0 }) {
            dates[path] = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
        }
        return dates
    }
}
