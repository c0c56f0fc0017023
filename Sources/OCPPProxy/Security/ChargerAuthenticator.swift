import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OCPP
import SwiftASN1
import X509

/// Why a charger was not let in, with the HTTP status it gets and the metric label. Never carries a password.
struct AuthenticationFailure: Error {
    var status: HTTPResponseStatus
    var reason: String
    var message: String
    var headers: [(String, String)] = []
}

/// Checks a charger against its listener's security profile and its registration (OCPP security profiles
/// 1-3; 1.6 security whitepaper and 2.0.1 part 2 A00).
final class ChargerAuthenticator: Sendable {
    private let chargers: [ChargerIdentity: ChargerRegistration]
    private let threadPool: NIOThreadPool
    /// Salted digests of passwords that verified, so a reconnect storm does not cost a PBKDF2 per charger.
    private let verified = NIOLockedValueBox<[ChargerIdentity: [UInt8]]>([:])
    /// Random per process; kept as bytes (SymmetricKey is not Sendable) and made a key where it is used.
    private let cacheKeyBytes: [UInt8] = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }

    init(chargers: [ChargerIdentity: ChargerRegistration], threadPool: NIOThreadPool = .singleton) {
        self.chargers = chargers
        self.threadPool = threadPool
    }

    func registration(_ identity: ChargerIdentity) -> ChargerRegistration? { chargers[identity] }

    /// Succeeds when `identity` may connect on `listener` with this request and TLS peer certificate.
    func authenticate(
        _ identity: ChargerIdentity, request: HTTPRequestHead, peerCertificate: NIOSSLCertificate?,
        listener: ListenerConfiguration, revocations: RevocationList?, on eventLoop: EventLoop
    ) -> EventLoopFuture<ChargerRegistration?> {
        let registration = chargers[identity]
        let profile = listener.securityProfile
        func refuse(_ status: HTTPResponseStatus, _ reason: String, _ message: String) -> EventLoopFuture<
            ChargerRegistration?
        > {
            eventLoop.makeFailedFuture(AuthenticationFailure(status: status, reason: reason, message: message))
        }
        if let registration, registration.securityProfile > profile {
            return refuse(
                .forbidden, "profile_too_low",
                "charger \(identity) is registered at security profile \(registration.securityProfile); this listener has \(profile)"
            )
        }
        switch profile {
        case 0:
            if registration == nil && listener.unknownChargers == .reject {
                return refuse(.notFound, "unknown_charger", "charger \(identity) is not registered")
            }
            return eventLoop.makeSucceededFuture(registration)
        case 3:
            guard let peerCertificate, let certificate = try? Certificate(derEncoded: peerCertificate.toDERBytes())
            else {
                return refuse(.forbidden, "certificate_subject", "no client certificate")
            }
            let commonName = Self.attribute(.RDNAttributeType.commonName, of: certificate)
            guard commonName == identity.value else {
                return refuse(
                    .forbidden, "certificate_subject",
                    "client certificate CN \(commonName.map { "\"\($0)\"" } ?? "(none)") does not match the identity")
            }
            if let cpoName = listener.tls?.cpoName,
                Self.attribute(.RDNAttributeType.organizationName, of: certificate) != cpoName
            {
                return refuse(.forbidden, "certificate_subject", "client certificate O does not match tls.cpoName")
            }
            if let revocations, revocations.isRevoked(serial: Array(certificate.serialNumber.bytes)) {
                return refuse(.forbidden, "certificate_revoked", "client certificate is revoked by the configured CRL")
            }
            // unknownChargers: allow exists for profile 0 only (configuration validation).
            guard registration != nil else {
                return refuse(.forbidden, "unknown_charger", "charger \(identity) is not registered")
            }
            return eventLoop.makeSucceededFuture(registration)
        default:
            guard let header = request.headers["authorization"].first else {
                return refuse(.unauthorized, "no_credentials", "no Authorization header")
            }
            guard let (username, password) = Self.basicCredentials(header) else {
                return refuse(.unauthorized, "no_credentials", "the Authorization header is not HTTP Basic")
            }
            guard username == identity.value else {
                return refuse(.unauthorized, "wrong_username", "the Basic auth username is not the identity in the URL")
            }
            guard let registration, let credential = registration.credential else {
                // Same answer as a wrong password: the status must not reveal which identities exist.
                return refuse(.unauthorized, "unknown_charger", "charger \(identity) is not registered")
            }
            let digest = Array(HMAC<SHA256>.authenticationCode(for: password, using: SymmetricKey(data: cacheKeyBytes)))
            if let known = verified.withLockedValue({ $0[identity] }), ConstantTime.equal(known, digest) {
                return eventLoop.makeSucceededFuture(registration)
            }
            // PBKDF2 is deliberately slow: keep it off the event loop.
            return threadPool.runIfActive(eventLoop: eventLoop) { credential.verify(password) }.flatMap { ok in
                guard ok else { return refuse(.unauthorized, "wrong_password", "wrong password") }
                self.verified.withLockedValue { $0[identity] = digest }
                return eventLoop.makeSucceededFuture(registration)
            }
        }
    }

    /// `Basic base64(user:password)` (RFC 7617); the password keeps its raw bytes.
    static func basicCredentials(_ header: String) -> (String, [UInt8])? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { return nil }
        let username = String(decoding: decoded[decoded.startIndex..<colon], as: UTF8.self)
        return (username, Array(decoded[decoded.index(after: colon)...]))
    }

    static func attribute(_ type: ASN1ObjectIdentifier, of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == type {
                return String(attribute.value)
            }
        }
        return nil
    }
}

extension ChargerCredential {
    /// Whether `password` is the charger's, in constant time for a plaintext one.
    func verify(_ password: [UInt8]) -> Bool {
        switch self {
        case .hash(let hash): return hash.verify(password)
        case .plaintext(let text): return ConstantTime.equal(Array(text.utf8), password)
        }
    }
}
