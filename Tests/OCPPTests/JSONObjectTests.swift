import Foundation
import TestSupport
import Testing

@testable import OCPP

@Suite("JSON objects and UTC timestamps")
struct JSONObjectTests {
    private func parse(_ text: String) -> JSONValue? { JSONValue(parsing: Array(text.utf8)) }

    @Test func membersKeepTheOrderTheyWereWrittenIn() throws {
        let value = try #require(parse(#"{"z":1,"a":2,"m":{"y":true,"b":null}}"#))
        #expect(value.wireText == #"{"z":1,"a":2,"m":{"y":true,"b":null}}"#)
        #expect(value.jsonText == #"{"a":2,"m":{"b":null,"y":true},"z":1}"#)
    }

    @Test(arguments: [3, 40])
    func aRepeatedKeyKeepsItsFirstPlaceAndItsLastValue(members: Int) throws {
        // Small objects are resolved by scanning, large ones through a hash table: both the same way.
        var text = "{"
        for index in 0..<members { text += #""k\#(index)":\#(index),"# }
        text += #""k1":"last","k0":"again"}"#
        guard case .object(let object)? = parse(text) else {
            Issue.record("not an object")
            return
        }
        #expect(object.count == members)
        #expect(object.keys == (0..<members).map { "k\($0)" })
        #expect(object["k0"] == .string("again"))
        #expect(object["k1"] == .string("last"))
        #expect(object["k2"] == .integer(2))
    }

    @Test func equalityAndHashingIgnoreTheOrder() {
        let a: JSONObject = ["a": .integer(1), "b": .string("x"), "c": .null]
        let b: JSONObject = ["c": .null, "a": .integer(1), "b": .string("x")]
        let c: JSONObject = ["c": .null, "a": .integer(2), "b": .string("x")]
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(a != ["a": .integer(1), "b": .string("x")])
        #expect(Set([JSONValue.object(a), .object(b), .object(c)]).count == 2)
    }

    @Test func settingNilRemovesAndANewKeyIsAppended() {
        var object: JSONObject = ["a": .integer(1), "b": .integer(2)]
        object["a"] = nil
        object["c"] = .integer(3)
        object["b"] = .integer(4)
        #expect(object.keys == ["b", "c"])
        #expect(object["b"] == .integer(4))
        #expect(object.removeValue(forKey: "c") == .integer(3))
        #expect(object.removeValue(forKey: "c") == nil)
        #expect(JSONValue.object(object).wireText == #"{"b":4}"#)
    }

    @Test func aHostileObjectWithManyKeysParsesWithEveryKeyOnce() throws {
        // 20,000 members, every one repeated: the hash-table path keeps this linear.
        var text = "{"
        for round in 0..<2 {
            for index in 0..<10_000 { text += #""member\#(index)":\#(round),"# }
        }
        text.removeLast()
        text += "}"
        guard case .object(let object)? = parse(text) else {
            Issue.record("not an object")
            return
        }
        #expect(object.count == 10_000)
        #expect(object["member9999"] == .integer(1))
        #expect(object.values.allSatisfy { $0 == .integer(1) })
    }

    @Test func utcTextAgreesWithFoundationOverTenThousandYears() throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.calendar = Calendar(identifier: .gregorian)
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        var random = SplitMix64(seed: 20_261_207)
        // 1900-01-01 .. 9999-12-31, where Foundation's Gregorian calendar is the proleptic one too.
        let range: ClosedRange<Int64> = -2_208_988_800...253_402_300_799
        for _ in 0..<5_000 {
            let seconds = Int64.random(in: range, using: &random)
            let fraction = ["", "1", "12", "123", "123456"][Int.random(in: 0..<5, using: &random)]
            let text = DateTimeText(seconds: seconds, fraction: fraction)
            let whole = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            let three = fraction.prefix(3)
            #expect(text.utcText == whole + (three.isEmpty ? "" : ".\(three)") + "Z")
            #expect(text.utcText(fractionDigits: 0) == whole + "Z")
            let six = (fraction + "000000").prefix(6)
            #expect(text.utcText(fractionDigits: 6) == whole + ".\(six)Z")
        }
    }

    @Test func utcTextOfATimestampParsedWithAnOffset() throws {
        let parsed = try #require(DateTimeText.parse("2026-12-31T23:30:00.5-01:00"))
        #expect(parsed.utcText == "2027-01-01T00:30:00.5Z")
        #expect(parsed.utcText(fractionDigits: 3) == "2027-01-01T00:30:00.500Z")
        #expect(parsed.utcText(fractionDigits: -1) == "2027-01-01T00:30:00Z")
    }
}
