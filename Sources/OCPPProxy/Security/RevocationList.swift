import Foundation
import SwiftASN1

/// The serial numbers a certificate revocation list (RFC 5280 §5) revokes. The file is trusted as configured,
/// like the CA bundle beside it: its signature is not checked here.
public struct RevocationList: Sendable {
    /// Serial numbers as their DER integer content bytes.
    public let revokedSerials: Set<[UInt8]>

    /// Reads a PEM (`X509 CRL`) or DER file.
    public init(contentsOfFile path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try self.init(bytes: Array(data))
    }

    public init(bytes: [UInt8]) throws {
        var der = bytes
        if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN") {
            der = try PEMDocument(pemString: text).derBytes
        }
        revokedSerials = try Self.serials(in: DER.parse(der))
    }

    public func isRevoked(serial: [UInt8]) -> Bool {
        revokedSerials.contains(Self.normalized(serial[...]))
    }

    /// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
    /// TBSCertList ::= SEQUENCE { version OPTIONAL, signature, issuer, thisUpdate, nextUpdate OPTIONAL,
    ///     revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate, ... } OPTIONAL,
    ///     crlExtensions [0] OPTIONAL }
    private static func serials(in root: ASN1Node) throws -> Set<[UInt8]> {
        guard case .constructed(let list) = root.content, let tbs = list.first(where: { _ in true }),
            case .constructed(let fields) = tbs.content
        else { throw RevocationListError.notACRL }
        var serials = Set<[UInt8]>()
        var seenTime = false
        for field in fields {
            let tag = field.identifier
            if tag == .utcTime || tag == .generalizedTime {
                seenTime = true
                continue
            }
            // The only SEQUENCE after the update times is the revoked-certificates list.
            guard seenTime, tag == .sequence, case .constructed(let entries) = field.content else { continue }
            for entry in entries {
                guard case .constructed(let parts) = entry.content, let serial = parts.first(where: { _ in true }),
                    serial.identifier == .integer, case .primitive(let bytes) = serial.content
                else { throw RevocationListError.notACRL }
                serials.insert(normalized(bytes))
            }
        }
        guard seenTime else { throw RevocationListError.notACRL }
        return serials
    }

    /// Drops the leading zero bytes DER adds to keep an integer positive.
    static func normalized(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        Array(bytes.drop(while: { $0 == 0 }))
    }
}

enum RevocationListError: Error, CustomStringConvertible {
    case notACRL

    var description: String { "not a certificate revocation list (expected PEM \"X509 CRL\" or DER)" }
}
