import Crypto
import Foundation
import OCPP
import Testing

@testable import OCPPAudit

/// Lowercase hex written the plain way, independent of the module's own.
func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

func bytes(hex text: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        out.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return out
}

@Suite struct CanonicalRecordTests {
    @Test func canonicalFormIsSortedCompactWithoutHash() {
        let record = AuditRecord(fields: [
            "ts": "2026-11-30T08:00:00.123456Z", "seq": 7, "event": "frame", "prev": .string(AuditRecord.genesisHash),
            "payload": ["idTag": "hmac:ab", "connectorId": 1, "meterStart": 1.5, "list": [true, .null]],
            "hash": "to be ignored",
        ])
        let expected =
            #"{"event":"frame","payload":{"connectorId":1,"idTag":"hmac:ab","list":[true,null],"meterStart":1.5},"prev":""#
            + AuditRecord.genesisHash + #"","seq":7,"ts":"2026-11-30T08:00:00.123456Z"}"#
        #expect(String(decoding: record.canonicalBytes, as: UTF8.self) == expected)
        #expect(record.computedHash == hex(sha256(Array(expected.utf8))))
        #expect(!record.hashIsValid)
        let sealed = record.sealed()
        #expect(sealed.hashIsValid)
        // The line is the record with its hash, in the same form, newline-terminated; it reads back equal.
        let line = sealed.lineBytes
        #expect(line.last == UInt8(ascii: "\n"))
        let back = AuditRecord(line: line.dropLast())
        #expect(back == sealed)
        #expect(back?.canonicalBytes == record.canonicalBytes)
        #expect(String(decoding: line, as: UTF8.self).contains(#""hash":""# + record.computedHash + #"""#))
    }

    @Test func knownSHA256() {
        // FIPS 180-2 example "abc", and the empty string.
        #expect(
            AuditRecord.hash(ofCanonical: Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            AuditRecord.hash(ofCanonical: [])
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func anyChangeChangesTheHash() {
        let base = AuditRecord(fields: ["seq": 1, "event": "connect", "charger": "CP-1"]).sealed()
        var edited = base
        edited.fields["charger"] = "CP-2"
        #expect(!edited.hashIsValid)
        #expect(edited.computedHash != base.computedHash)
    }

    @Test func notAnObjectIsNotARecord() {
        #expect(AuditRecord(line: Array("[1,2]".utf8)) == nil)
        #expect(AuditRecord(line: Array("{\"seq\":".utf8)) == nil)
    }

    @Test func timestamps() {
        let date = Date(timeIntervalSince1970: 1_796_025_600.123456)  // 2026-11-30T08:00:00.123456Z
        #expect(AuditTimestamp.string(from: date) == "2026-11-30T08:00:00.123456Z")
        #expect(AuditTimestamp.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(AuditTimestamp.string(from: Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000000Z")
        #expect(AuditTimestamp.string(from: Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        let back = AuditTimestamp.date(from: "2026-11-30T08:00:00.123456Z")!
        #expect(abs(back.timeIntervalSince(date)) < 0.000_001)
        #expect(AuditTimestamp.date(from: "2026-11-30T08:00:00Z") == nil)
        #expect(AuditTimestamp.date(from: "2026-13-30T08:00:00.000000Z") == nil)
    }
}

@Suite struct MerkleTreeTests {
    /// RFC 6962 §2.1 written straight from the definition, recursively.
    static func referenceMTH(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return sha256([]) }
        if leaves.count == 1 { return sha256([0x00] + leaves.first!) }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        return sha256(
            [0x01] + referenceMTH(leaves.prefix(k)) + referenceMTH(leaves.dropFirst(k)))
    }

    @Test func emptyTreeIsTheHashOfNothing() {
        #expect(hex(MerkleTree().root) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MerkleTree().rootHex == hex(MerkleTree.emptyRoot))
    }

    @Test func oneEmptyLeafIsTheHashOfAZeroByte() {
        var tree = MerkleTree()
        tree.append(leaf: [UInt8]())
        // SHA-256 of the single byte 0x00.
        #expect(tree.rootHex == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    }

    /// The certificate-transparency test suite's eight leaves and the roots of their first 1…8.
    static let ctLeaves = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ]
    static let ctRoots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    @Test func certificateTransparencyVectors() {
        let leaves = Self.ctLeaves.map { bytes(hex: $0) }
        var tree = MerkleTree()
        for (index, leaf) in leaves.enumerated() {
            tree.append(leaf: leaf)
            #expect(tree.rootHex == Self.ctRoots[index], "\(index + 1) leaves")
            #expect(hex(Self.referenceMTH(leaves[0...index])) == Self.ctRoots[index], "reference, \(index + 1) leaves")
        }
    }

    @Test(arguments: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100])
    func incrementalMatchesTheDefinition(count: Int) {
        let leaves = (0..<count).map { Array("record \($0) {\"seq\":\($0)}".utf8) }
        var tree = MerkleTree()
        for (index, leaf) in leaves.enumerated() {
            tree.append(leaf: leaf)
            #expect(tree.count == index + 1)
            #expect(tree.root == Self.referenceMTH(leaves[0...index]))
        }
        #expect(MerkleTree.root(of: leaves) == Self.referenceMTH(leaves[...]))
    }

    @Test func leafAndNodeAreDomainSeparated() {
        // A leaf that looks like two concatenated hashes must not hash like the node over them.
        let a = MerkleTree.leafHash(Array("a".utf8))
        let b = MerkleTree.leafHash(Array("b".utf8))
        #expect(MerkleTree.root(of: [a + b]) != MerkleTree.nodeHash(a, b))
        #expect(MerkleTree.root(of: [Array("a".utf8), Array("b".utf8)]) == MerkleTree.nodeHash(a, b))
    }
}
