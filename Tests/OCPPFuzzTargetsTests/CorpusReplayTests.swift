import Foundation
import OCPPFuzzTargets
import Testing

/// Every committed fuzz input (Tests/Fuzz/corpus/<target>/) through its target: the seeds, and every input that
/// once crashed a target, kept as a regression test. An input that crashes again crashes this test process.
@Suite("Fuzz corpus replay")
struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")
    static let rules = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Rules").path

    @Test(arguments: FuzzTarget.allCases)
    func committedInputsRunWithoutATrap(_ target: FuzzTarget) throws {
        let folder = Self.corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }
            .sorted()
        #expect(!names.isEmpty, "no inputs in \(folder.path)")
        let harness = try FuzzHarness(target: target, rulesDirectory: Self.rules)
        for name in names {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            harness.run(Array(data))
        }
    }

    /// Short inputs of every byte value: the structure-aware targets must make something of any of them.
    @Test(arguments: FuzzTarget.allCases)
    func everyShortInputRunsWithoutATrap(_ target: FuzzTarget) throws {
        let harness = try FuzzHarness(target: target, rulesDirectory: Self.rules)
        harness.run([])
        for first in 0...255 {
            harness.run([UInt8(first)])
            harness.run([UInt8(first), 7])
        }
    }
}
