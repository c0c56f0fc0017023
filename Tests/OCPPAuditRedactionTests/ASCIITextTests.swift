import Foundation
import Testing

@testable import OCPPAuditRedaction

/// The byte-wise name checks must decide exactly as the Foundation string search they stand in for.
@Suite struct ASCIITextTests {
    /// classify as it was written before the ASCII fast path (Foundation's search), the reference.
    static func referenceClassify(action: String, path: String) -> AuditRedactionTable.Treatment? {
        let last = path.split(separator: ".").last.map(String.init) ?? path
        let leaf = last.replacingOccurrences(of: "[]", with: "")
        if leaf.lowercased().contains("password") || AuditRedactionTable.secretNames.contains(leaf)
            || path == "vpn.key" || path.hasSuffix(".vpn.key")
        {
            return .secret
        }
        if AuditRedactionTable.tokenNames.contains(leaf) { return .token }
        if AuditRedactionTable.certificateNames.contains(leaf) { return .certificate }
        if action == "DataTransfer" && path == "data" { return .data }
        return nil
    }

    struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static let pieces = [
        ".", ".", "[]", "[", "]", "[[]]", "idTag", "idToken", "parentIdTag", "additionalIdToken", "certificate", "csr",
        "caCertificate", "simPin", "exiResponse", "exiRequest", "password", "PassWord", "WifiPASSWORD", "passwor", "d",
        "vpn", "key", "vpn.key", "data", "x", "", "PRIVATE KEY", "private key", "-----BEGIN", " ", "A", "Z", "@", "`",
    ]

    @Test func classifyAgreesWithFoundation() {
        var random = Random(state: 14)
        let actions = ["DataTransfer", "Authorize", "SetNetworkProfile", ""]
        for _ in 0..<20_000 {
            let path = (0..<random.next(6)).map { _ in Self.pieces[random.next(Self.pieces.count)] }.joined()
            let action = actions[random.next(actions.count)]
            #expect(
                AuditRedactionTable.classify(action: action, path: path)
                    == Self.referenceClassify(action: action, path: path), "\(action) \(path)")
        }
        for path in [
            "", ".", "...", "data", "a.data", "vpn.key", "x.vpn.key", "list[].idTag", "a..idToken..", "é.idTag",
        ] {
            for action in actions {
                #expect(
                    AuditRedactionTable.classify(action: action, path: path)
                        == Self.referenceClassify(action: action, path: path), "\(action) \(path)")
            }
        }
    }

    @Test func containsAgreesWithFoundation() {
        var random = Random(state: 2026)
        for _ in 0..<20_000 {
            let text = (0..<random.next(5)).map { _ in Self.pieces[random.next(Self.pieces.count)] }.joined()
            #expect(ASCIIText.contains(text, "PRIVATE KEY") == text.contains("PRIVATE KEY"), "\(text)")
        }
        #expect(ASCIIText.contains("é PRIVATE KEY", "PRIVATE KEY") == nil)
        #expect(ASCIIText.contains("", "PRIVATE KEY") == false)
    }
}
