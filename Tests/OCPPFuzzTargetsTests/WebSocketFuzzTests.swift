import OCPPFuzzTargets
import TestSupport
import Testing

/// A short seeded run of the websocket fuzz target (the relay's frame header reader): random bytes, and frame
/// headers with random lengths, opcodes and masks followed by random payloads, so that the length encodings and
/// the limits are crossed often. The long runs are libFuzzer's (`make libfuzzer`).
@Suite("WebSocket header fuzzing, seeded")
struct WebSocketFuzzTests {
    @Test(arguments: 0..<4)
    func randomInputsRunWithoutATrap(seed: UInt64) throws {
        let harness = try FuzzHarness(target: .websocket)
        var random = SplitMix64(seed: 0xF0A2 &+ seed)
        for _ in 0..<5000 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                input.append(UInt8.random(in: 0...255, using: &random))
                // The second byte: mostly the length encodings at their boundaries.
                let lengths: [UInt8] = [0, 1, 125, 126, 127, UInt8.random(in: 0...127, using: &random)]
                input.append(lengths.randomElement(using: &random)! | (Bool.random(using: &random) ? 0x80 : 0))
                for _ in 0..<Int.random(in: 0...40, using: &random) {
                    input.append(UInt8.random(in: 0...255, using: &random))
                }
            }
            harness.run(input)
        }
    }
}
