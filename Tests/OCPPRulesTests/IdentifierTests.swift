import Foundation
import Testing

@testable import OCPPRules

@Suite("Transaction ids")
struct IdentifierTests {
    @Test func randomIdsAreVersion4UUIDsAndDoNotRepeat() {
        var seen = Set<String>()
        var nibbles = Set<Character>()
        for _ in 0..<2000 {
            let text = RandomIdentifiers().newUUID()
            let parsed = UUID(uuidString: text)
            #expect(parsed != nil, "\(text)")
            #expect(text == text.lowercased())
            let characters = Array(text)
            #expect(characters.count == 36 && characters[14] == "4", "\(text): not version 4")
            #expect("89ab".contains(characters[19]), "\(text): not the RFC 4122 variant")
            seen.insert(text)
            nibbles.formUnion(characters.filter { $0 != "-" })
        }
        #expect(seen.count == 2000)
        // Every hex digit turns up somewhere: all bytes of the draw reach the text.
        #expect(nibbles == Set("0123456789abcdef"))
    }
}
