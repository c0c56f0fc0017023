import Crypto
import Foundation
import _CryptoExtras

/// A salted PBKDF2-SHA256 password hash, written `pbkdf2-sha256$ROUNDS$SALT$HASH` (salt and hash in base64).
/// The proxy stores only these for chargers (OCPP 2.0.1 A01.FR.08 asks the same of a CSMS).
public struct PasswordHash: Sendable, Equatable {
    public static let scheme = "pbkdf2-sha256"
    /// The lowest round count swift-crypto accepts for PBKDF2 without "unsafe".
    public static let defaultRounds = 210_000

    public let rounds: Int
    public let salt: [UInt8]
    public let hash: [UInt8]

    /// Parses the text form; nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.scheme, let rounds = Int(parts[1]), rounds >= Self.defaultRounds,
            let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8,
            let hash = Data(base64Encoded: String(parts[3])), hash.count == 32
        else { return nil }
        self.rounds = rounds
        self.salt = Array(salt)
        self.hash = Array(hash)
    }

    /// Hashes `password` with a fresh random salt.
    public init(hashing password: String, rounds: Int = PasswordHash.defaultRounds) throws {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.rounds = rounds
        self.salt = salt
        self.hash = try Self.derive(Array(password.utf8), salt: salt, rounds: rounds)
    }

    public var text: String {
        "\(Self.scheme)$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// Whether `password` matches, compared in constant time.
    public func verify(_ password: [UInt8]) -> Bool {
        guard let candidate = try? Self.derive(password, salt: salt, rounds: rounds) else { return false }
        return ConstantTime.equal(candidate, hash)
    }

    private static func derive(_ password: [UInt8], salt: [UInt8], rounds: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// Comparison whose duration does not depend on where two byte strings differ.
enum ConstantTime {
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
