import OCPP
import OCPPRules

/// Input: two bytes choose a message definition (request or response, any version); the rest is either a JSON
/// document (when it parses) or, structure-aware, choices for a valid value of that definition and up to three
/// mutations of it. Invariants: a value the sampler builds without mutation conforms; `tolerate` is idempotent
/// and leaves a conforming value unchanged; the verdict survives writing the value out and reading it back.
struct DefinitionsTarget {
    let shapes: [FuzzHarness.DefinitionShape]

    static let tolerances: [Tolerance] = (0..<8).map {
        Tolerance(enumCase: $0 & 1 != 0, numericStrings: $0 & 2 != 0, unknownFields: $0 & 4 != 0)
    }

    func run(_ bytes: UnsafeRawBufferPointer) {
        guard !shapes.isEmpty else { return }
        var input = FuzzInput(bytes)
        let definition = shapes[(Int(input.byte()) << 8 | Int(input.byte())) % shapes.count]
        let shape = definition.shape
        let value: JSONValue
        if let document = JSONValue(parsing: UnsafeRawBufferPointer(rebasing: bytes[Swift.min(2, bytes.count)...])) {
            value = document
        } else {
            let sampled = ValueSampler.value(shape, &input)
            let mutations = Int(input.byte() % 4)
            if mutations == 0 {
                FuzzInvariant.check(
                    shape.violation(of: sampled) == nil,
                    "\(definition.name): a sampled value does not conform (\(shape.violation(of: sampled)!)): "
                        + sampled.jsonText.prefix(300))
            }
            var mutated = sampled
            for _ in 0..<mutations { mutated = ValueMutator.mutate(mutated, shape: shape, &input) }
            value = mutated
        }
        check(value, against: shape, name: definition.name)
    }

    func check(_ value: JSONValue, against shape: Shape, name: String) {
        let verdict = shape.violation(of: value)
        for tolerance in Self.tolerances {
            let repaired = shape.tolerate(value, tolerance)
            FuzzInvariant.check(
                JSONSameness.same(shape.tolerate(repaired, tolerance), repaired),
                "\(name): tolerate(\(tolerance)) is not idempotent on \(value.jsonText.prefix(300))")
            if verdict == nil {
                FuzzInvariant.check(
                    JSONSameness.same(repaired, value),
                    "\(name): tolerate(\(tolerance)) changed a conforming value \(value.jsonText.prefix(300))")
            }
            _ = shape.violation(of: repaired)
        }
        let text = value.jsonText
        guard let again = JSONValue(parsing: Array(text.utf8)) else {
            FuzzInvariant.fail("\(name): the text of a value does not parse: \(text.prefix(300))")
        }
        let verdictAgain = shape.violation(of: again)
        FuzzInvariant.check(
            verdict?.kind == verdictAgain?.kind && verdict?.path == verdictAgain?.path,
            "\(name): \(verdict.map { "\($0)" } ?? "conforms") before writing, \(verdictAgain.map { "\($0)" } ?? "conforms") "
                + "after: \(text.prefix(300))")
    }
}
