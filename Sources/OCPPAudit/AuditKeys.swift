import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A key file that cannot be used, with the file's path in every message.
public enum AuditKeyError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case badHeader(path: String, expected: String)
    case badBase64(path: String)
    case wrongLength(path: String, bytes: Int)
    /// The private key file can be read by group or others (mode shown in octal).
    case tooOpen(path: String, mode: UInt32)
    case exists(path: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read the key file: \(reason)"
        case .badHeader(let path, let expected):
            return "\(path): not an audit key file: expected one line \"\(expected) <base64>\""
        case .badBase64(let path): return "\(path): the key is not valid base64"
        case .wrongLength(let path, let bytes): return "\(path): the key is \(bytes) bytes, expected 32"
        case .tooOpen(let path, let mode):
            return
                "\(path): mode \(String(format: "%04o", mode)) lets group or others read the private key; refused (chmod 600 \(path))"
        case .exists(let path): return "\(path): already exists; refusing to overwrite a key"
        case .unwritable(let path, let reason): return "\(path): cannot write the key file: \(reason)"
        }
    }
}

/// The key files of the contract: one line each, `ocpp-proxy-audit-ed25519-private <base64 of the raw 32 bytes>` in
/// FILE (mode 0600) and `ocpp-proxy-audit-ed25519-public <base64 of the raw 32 bytes>` in FILE.pub.
public enum AuditKeys {
    public static let privateHeader = "ocpp-proxy-audit-ed25519-private"
    public static let publicHeader = "ocpp-proxy-audit-ed25519-public"

    /// What checkpoints carry as `key`: the first 16 hex digits of SHA-256 of the raw 32-byte public key.
    public static func keyID(_ publicKey: Curve25519.Signing.PublicKey) -> String {
        String(Hex.string(SHA256.hash(data: publicKey.rawRepresentation)).prefix(16))
    }

    /// Writes a new key pair to `path` (0600) and `path + ".pub"`; refuses when either exists. Returns the signer.
    @discardableResult
    public static func generate(out path: String) throws -> AuditSigner {
        let publicPath = path + ".pub"
        for existing in [path, publicPath] where FileManager.default.fileExists(atPath: existing) {
            throw AuditKeyError.exists(path: existing)
        }
        let key = Curve25519.Signing.PrivateKey()
        try writeNew(path, "\(privateHeader) \(key.rawRepresentation.base64EncodedString())\n", mode: 0o600)
        try writeNew(
            publicPath, "\(publicHeader) \(key.publicKey.rawRepresentation.base64EncodedString())\n", mode: 0o644)
        return AuditSigner(key)
    }

    /// Reads the private key file; refused when group or others can read it.
    public static func loadPrivate(path: String) throws -> AuditSigner {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw AuditKeyError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let mode = UInt32(info.st_mode) & 0o7777
        if mode & 0o077 != 0 { throw AuditKeyError.tooOpen(path: path, mode: mode) }
        let raw = try readKey(path: path, header: privateHeader)
        do {
            return AuditSigner(try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
        } catch {
            throw AuditKeyError.wrongLength(path: path, bytes: raw.count)
        }
    }

    /// Reads a public key file (FILE.pub).
    public static func loadPublic(path: String) throws -> AuditPublicKey {
        let raw = try readKey(path: path, header: publicHeader)
        do {
            return AuditPublicKey(try Curve25519.Signing.PublicKey(rawRepresentation: raw))
        } catch {
            throw AuditKeyError.wrongLength(path: path, bytes: raw.count)
        }
    }

    /// The base64 after `header` on the file's one line (a trailing newline is allowed), decoded, 32 bytes.
    static func readKey(path: String, header: String) throws -> Data {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? "\(error)"
            throw AuditKeyError.unreadable(path: path, reason: reason)
        }
        guard var text = String(data: contents, encoding: .utf8) else {
            throw AuditKeyError.badHeader(path: path, expected: header)
        }
        if text.hasSuffix("\n") { text.removeLast() }
        if text.hasSuffix("\r") { text.removeLast() }
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == header else {
            throw AuditKeyError.badHeader(path: path, expected: header)
        }
        guard let raw = Data(base64Encoded: String(parts[1])) else { throw AuditKeyError.badBase64(path: path) }
        guard raw.count == 32 else { throw AuditKeyError.wrongLength(path: path, bytes: raw.count) }
        return raw
    }

    /// Creates `path` (it must not exist) with `mode`, writes `text` and syncs it.
    private static func writeNew(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw AuditKeyError.exists(path: path) }
            throw AuditKeyError.unwritable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        // The umask may only have removed bits; set exactly what was asked.
        _ = fchmod(fd, mode)
        do {
            try POSIXFile.writeAll(fd, Array(text.utf8))
            try POSIXFile.sync(fd)
        } catch {
            throw AuditKeyError.unwritable(path: path, reason: "\(error)")
        }
    }
}

/// Signs checkpoints with an Ed25519 private key. Holds the raw key bytes (swift-crypto's key types are not
/// `Sendable` on every platform) and rebuilds the key per signature: checkpoints are rare.
public struct AuditSigner: Sendable {
    private let raw: Data
    /// What checkpoints carry as `key`.
    public let keyID: String

    public init(_ privateKey: Curve25519.Signing.PrivateKey) {
        raw = privateKey.rawRepresentation
        keyID = AuditKeys.keyID(privateKey.publicKey)
    }

    public var privateKey: Curve25519.Signing.PrivateKey {
        // The bytes came from a valid key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }

    public var publicKey: AuditPublicKey { AuditPublicKey(privateKey.publicKey) }

    /// Base64 Ed25519 signature over `bytes`.
    public func sign(_ bytes: [UInt8]) throws -> String {
        try privateKey.signature(for: bytes).base64EncodedString()
    }
}

/// Checks checkpoint signatures with an Ed25519 public key.
public struct AuditPublicKey: Sendable {
    private let raw: Data
    public let keyID: String

    public init(_ key: Curve25519.Signing.PublicKey) {
        raw = key.rawRepresentation
        keyID = AuditKeys.keyID(key)
    }

    public var key: Curve25519.Signing.PublicKey {
        // The bytes came from a valid key.
        try! Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    /// Whether `signature` (base64) is a valid signature of `bytes` under this key.
    public func verify(signature: String, of bytes: [UInt8]) -> Bool {
        guard let signatureBytes = Data(base64Encoded: signature) else { return false }
        return key.isValidSignature(signatureBytes, for: bytes)
    }
}
