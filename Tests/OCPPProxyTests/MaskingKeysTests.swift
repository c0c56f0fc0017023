import NIOWebSocket
import Testing

@testable import OCPPProxy

@Suite("Masking keys")
struct MaskingKeysTests {
    @Test func fillCoversTheWholeBufferWithFreshBytes() {
        for size in [1, 7, 8, 13, 4096] {
            var first = [UInt8](repeating: 0, count: size)
            var second = [UInt8](repeating: 0, count: size)
            first.withUnsafeMutableBytes { MaskingKeys.fill($0) }
            second.withUnsafeMutableBytes { MaskingKeys.fill($0) }
            if size >= 8 {
                // 8 random bytes equal by chance: 1 in 2^64.
                #expect(first != second, "two fills of \(size) bytes came out the same")
            }
            if size == 4096 {
                // Every byte value turns up in 4 KiB of random bytes (all but certainly): nothing left unfilled.
                #expect(Set(first).count > 200)
                #expect(first.suffix(64).contains { $0 != 0 })
            }
        }
    }

    @Test func keysDoNotRepeatAcrossPoolRefills() {
        // 3,000 keys span three refills of the 1,024-key pool.
        var keys = Set<UInt32>()
        for _ in 0..<3000 {
            keys.insert(MaskingKeys.next())
        }
        // 32-bit keys: a few coincidences are possible (about one in 1,000 runs has one), many are not.
        #expect(keys.count >= 2995)
    }
}
