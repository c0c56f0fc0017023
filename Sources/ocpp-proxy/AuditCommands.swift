import ArgumentParser
import Foundation
import OCPPAudit

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Work with the tamper-evident audit log.",
        subcommands: [AuditKeygen.self, AuditVerify.self, AuditQuery.self, AuditExport.self])
}

struct AuditKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new Ed25519 checkpoint signing key to FILE (mode 0600) and its public key to FILE.pub.")

    @Option(name: .long, help: "The private key file to create (FILE.pub gets the public key); never overwritten.")
    var out: String

    func run() throws {
        do {
            let signer = try AuditKeys.generate(out: out)
            print("wrote \(out) (private, mode 0600) and \(out).pub (public); key \(signer.keyID)")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract:
            "Check every hash, chain link, seq, checkpoint Merkle root and signature of an audit directory; status 1 with the first broken file:line."
    )

    @Option(name: .long, help: "The audit directory (audit.dir).")
    var dir: String

    @Option(name: .long, help: "The public key (FILE.pub from `audit keygen`); without it signatures are not checked.")
    var publicKey: String?

    func run() throws {
        var key: AuditPublicKey?
        if let publicKey {
            do {
                key = try AuditKeys.loadPublic(path: publicKey)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        do {
            let result = try AuditVerifier.verify(dir: dir, publicKey: key)
            for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
            print(result.summary)
        } catch {
            FileHandle.standardError.write(Data("error: audit log broken: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
