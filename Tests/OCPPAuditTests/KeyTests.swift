import Crypto
import Foundation
import Testing

@testable import OCPPAudit

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ocpp-audit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func mode(of path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite struct KeyTests {
    @Test func keygenWritesBothFilesAndTheyLoad() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.path + "/audit.key"
        let signer = try AuditKeys.generate(out: path)
        #expect(try mode(of: path) == 0o600)
        let privateText = try String(contentsOfFile: path, encoding: .utf8)
        let publicText = try String(contentsOfFile: path + ".pub", encoding: .utf8)
        #expect(privateText.hasPrefix("ocpp-proxy-audit-ed25519-private ") && privateText.hasSuffix("\n"))
        #expect(publicText.hasPrefix("ocpp-proxy-audit-ed25519-public ") && publicText.hasSuffix("\n"))
        #expect(Data(base64Encoded: String(publicText.dropFirst(32).dropLast()))?.count == 32)

        let loaded = try AuditKeys.loadPrivate(path: path)
        let publicKey = try AuditKeys.loadPublic(path: path + ".pub")
        #expect(loaded.keyID == signer.keyID)
        #expect(publicKey.keyID == signer.keyID)
        // key id: first 16 hex of SHA-256 of the raw public key.
        #expect(publicKey.keyID == String(hex(sha256(Array(publicKey.key.rawRepresentation))).prefix(16)))
        #expect(publicKey.keyID.count == 16)

        let message = Array("checkpoint".utf8)
        let signature = try loaded.sign(message)
        #expect(publicKey.verify(signature: signature, of: message))
        #expect(!publicKey.verify(signature: signature, of: Array("checkpoinT".utf8)))
        #expect(!publicKey.verify(signature: "not base64!", of: message))
        let other = AuditSigner(Curve25519.Signing.PrivateKey())
        #expect(!publicKey.verify(signature: try other.sign(message), of: message))
    }

    @Test func keygenRefusesToOverwrite() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.path + "/audit.key"
        FileManager.default.createFile(atPath: path + ".pub", contents: Data("keep me".utf8))
        #expect(throws: AuditKeyError.exists(path: path + ".pub")) { try AuditKeys.generate(out: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
        try FileManager.default.removeItem(atPath: path + ".pub")
        try AuditKeys.generate(out: path)
        #expect(throws: AuditKeyError.exists(path: path)) { try AuditKeys.generate(out: path) }
    }

    @Test func badFilesAreRefusedNamingTheFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
            let path = temp.path + "/" + name
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            return path
        }
        let raw = Curve25519.Signing.PrivateKey().rawRepresentation

        let header = try write("header.key", "ssh-ed25519 \(raw.base64EncodedString())\n")
        #expect(throws: AuditKeyError.badHeader(path: header, expected: AuditKeys.privateHeader)) {
            try AuditKeys.loadPrivate(path: header)
        }
        // A public key file given where the private key is expected.
        let swapped = try write("swapped.key", "ocpp-proxy-audit-ed25519-public \(raw.base64EncodedString())\n")
        #expect(throws: AuditKeyError.badHeader(path: swapped, expected: AuditKeys.privateHeader)) {
            try AuditKeys.loadPrivate(path: swapped)
        }
        let base64 = try write("base64.key", "ocpp-proxy-audit-ed25519-private not*base64\n")
        #expect(throws: AuditKeyError.badBase64(path: base64)) { try AuditKeys.loadPrivate(path: base64) }
        let short = try write(
            "short.key", "ocpp-proxy-audit-ed25519-private \(raw.prefix(31).base64EncodedString())\n")
        #expect(throws: AuditKeyError.wrongLength(path: short, bytes: 31)) { try AuditKeys.loadPrivate(path: short) }
        let shortPublic = try write(
            "short.pub", "ocpp-proxy-audit-ed25519-public \(Data(count: 33).base64EncodedString())\n", mode: 0o644)
        #expect(throws: AuditKeyError.wrongLength(path: shortPublic, bytes: 33)) {
            try AuditKeys.loadPublic(path: shortPublic)
        }

        let open = try write("open.key", "ocpp-proxy-audit-ed25519-private \(raw.base64EncodedString())\n", mode: 0o640)
        do {
            _ = try AuditKeys.loadPrivate(path: open)
            Issue.record("a group-readable private key was accepted")
        } catch let error as AuditKeyError {
            #expect(error == .tooOpen(path: open, mode: 0o640))
            #expect(error.description.contains(open) && error.description.contains("0640"))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o604], ofItemAtPath: open)
        #expect(throws: AuditKeyError.tooOpen(path: open, mode: 0o604)) { try AuditKeys.loadPrivate(path: open) }
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: open)
        _ = try AuditKeys.loadPrivate(path: open)

        let missing = temp.path + "/missing.key"
        do {
            _ = try AuditKeys.loadPublic(path: missing)
            Issue.record("a missing key file was accepted")
        } catch {
            #expect("\(error)".contains(missing))
        }
    }
}
