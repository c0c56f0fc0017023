import Foundation
import TestSupport
import Testing

@testable import OCPP

@Suite("JSON parser")
struct JSONParserTests {
    private func parse(_ text: String) -> JSONValue? { JSONValue(parsing: Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() {
        #expect(
            parse(#" {"a": [1, -2, 3.5, -0.25e2, 1E3, true, false, null, "x"], "b": {}, "c": []} "#)
                == .object([
                    "a": .array([
                        .integer(1), .integer(-2), .number(3.5), .number(-25), .number(1000), .bool(true), .bool(false),
                        .null, .string("x"),
                    ]),
                    "b": .object([:]), "c": .array([]),
                ]))
        #expect(parse("0") == .integer(0))
        #expect(parse("-0") == .integer(0))
        #expect(parse("9223372036854775807") == .integer(Int64.max))
        #expect(parse("9223372036854775808") == .number(9_223_372_036_854_775_808))
    }

    @Test func decodesStringEscapes() {
        #expect(parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(parse(#""\u00e4\u20AC""#) == .string("ä€"))
        #expect(parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(parse(#""Stätion 😀""#) == .string("Stätion 😀"))
    }

    @Test(arguments: [
        "", " ", "{", "[", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "True", "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "[1]]", "{}{}",
        "'a'", "NaN", "Infinity", "[1,2", "\u{FEFF}[]",
    ])
    func refusesText(_ text: String) {
        #expect(parse(text) == nil, "accepted \(text.debugDescription)")
    }

    @Test func refusesInvalidUTF8InStrings() {
        #expect(JSONValue(parsing: [0x22, 0xC3, 0x22]) == nil)
        #expect(JSONValue(parsing: [0x22, 0xFF, 0xFE, 0x22]) == nil)
    }

    @Test func refusesNestingDeeperThanTheLimitWithoutCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(parse(deep) == nil)
        let limit = JSONParser.maximumDepth
        #expect(parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit)) != nil)
        #expect(parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)) == nil)
    }

    @Test func writesIntegersExactlyAtBothEnds() {
        let values: [Int64] = [0, 7, -1, 10, -10, 1_234_567_890, Int64.max, Int64.min]
        let text = JSONValue.array(values.map(JSONValue.integer)).wireText
        #expect(text == "[" + values.map(String.init).joined(separator: ",") + "]")
        #expect(parse(text) == .array(values.map(JSONValue.integer)))
    }

    /// Random documents, written by Foundation's encoder, read back to the same value.
    @Test func readsBackWhatJSONEncoderWrites() throws {
        var generator = SplitMix64(seed: 0x0CC9)
        for _ in 0..<2000 {
            let value = randomValue(depth: 0, using: &generator)
            let text = value.jsonText
            #expect(parse(text) == value, "\(text)")
        }
    }

    /// Random documents agree with Foundation's JSONSerialization on whether they are JSON at all.
    @Test func agreesWithFoundationOnMutatedDocuments() throws {
        var generator = SplitMix64(seed: 0xF00D)
        let alphabet = Array("{}[],:\"\\0123456789.-eE truefalsnl\u{00e4}".utf8)
        for _ in 0..<3000 {
            var bytes = Array(randomValue(depth: 0, using: &generator).jsonText.utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            let foundation = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            #expect((JSONValue(parsing: bytes) != nil) == foundation, "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    /// The relay's reader checks without building: it must accept exactly the documents the full parser accepts,
    /// and the ranges it gives must hold the very elements the full parser builds.
    @Test func topLevelReaderAcceptsExactlyWhatTheParserAccepts() throws {
        var generator = SplitMix64(seed: 0xBEEF)
        let alphabet = Array("{}[],:\"\\0123456789.-eE truefalsnlu\u{00e4}".utf8)
        var documents: [[UInt8]] = [
            "", "[", "[1,]", "[{\"a\":1,}]", "[1e999]", "[{\"a\":1e999}]", "[-1e999]",
            "[123456789012345678901234567890]",
            "[\"\\ud83d\"]", "[{\"\\ud83d\\ude00\":1}]", "{\"a\":[1,2]}", "17", "[]", "[[],{}]",
            String(repeating: "[", count: 129) + String(repeating: "]", count: 129),
            String(repeating: "[", count: 128) + String(repeating: "]", count: 128),
            "[" + String(repeating: "{\"a\":", count: 127) + "1" + String(repeating: "}", count: 127) + "]",
            "[" + String(repeating: "{\"a\":", count: 128) + "1" + String(repeating: "}", count: 128) + "]",
        ].map { Array($0.utf8) }
        documents += [[0x5B, 0x22, 0xC3, 0x22, 0x5D], [0x5B, 0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D, 0x5D]]
        for _ in 0..<3000 {
            let frame = JSONValue.array(
                (0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(depth: 1, using: &generator) })
            var bytes = Array(frame.jsonText.utf8)
            for _ in 0..<Int.random(in: 0...2, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            documents.append(bytes)
        }
        var accepted = 0
        for bytes in documents {
            let text = String(decoding: bytes, as: UTF8.self)
            let full = JSONValue(parsing: bytes)
            let top = bytes.withUnsafeBufferPointer { JSONParser.parseTopLevel($0) }
            #expect((top != nil) == (full != nil), "\(text)")
            guard let top, let full else { continue }
            accepted += 1
            guard case .array(let elements) = full else {
                guard case .other = top else {
                    Issue.record("\(text): read as an array")
                    continue
                }
                continue
            }
            // Built in the same pass, the elements are the parser's own.
            if case .array(let builtElements)? = bytes.withUnsafeBufferPointer({
                JSONParser.parseTopLevel($0, build: true)
            }) {
                for (element, expected) in zip(builtElements, elements) {
                    switch element {
                    case .value(let value), .object(_, let value?), .array(_, let value?):
                        #expect(value == expected, "\(text)")
                    case .object(_, nil), .array(_, nil):
                        Issue.record("\(text): a container was not built")
                    }
                }
            } else {
                Issue.record("\(text): not read as an array when building")
            }
            guard case .array(let read) = top, read.count == elements.count else {
                Issue.record("\(text): not read as an array of \(elements.count)")
                continue
            }
            for (element, expected) in zip(read, elements) {
                switch element {
                case .value(let value): #expect(value == expected, "\(text)")
                case .object(let range, let built), .array(let range, let built):
                    #expect(built == nil)
                    #expect(JSONValue(parsing: bytes[range]) == expected, "\(text)")
                }
            }
        }
        // Both outcomes must be exercised, or the comparison says nothing.
        #expect(accepted > 500 && accepted < documents.count - 500)
    }

    private func randomValue(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        let leaf = depth >= 4 || Int.random(in: 0..<3, using: &generator) == 0
        if leaf {
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .integer(Int64.random(in: -1_000_000...1_000_000, using: &generator))
            case 3: return .number(Double(Int.random(in: -1000...1000, using: &generator)) + 0.5)
            case 4:
                let pool: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "ä", "€", "😀", "\u{01}"]
                return .string(
                    String(
                        (0..<Int.random(in: 0...8, using: &generator)).map { _ in pool.randomElement(using: &generator)!
                        }))
            default: return .string("")
            }
        }
        if Bool.random(using: &generator) {
            return .array(
                (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                    randomValue(depth: depth + 1, using: &generator)
                })
        }
        var fields: JSONObject = [:]
        for i in 0..<Int.random(in: 0...4, using: &generator) {
            fields["k\(i)"] = randomValue(depth: depth + 1, using: &generator)
        }
        return .object(fields)
    }
}
