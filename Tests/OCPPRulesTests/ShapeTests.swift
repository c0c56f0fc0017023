import OCPP
import Testing

@testable import OCPPRules

/// Where a violation is reported: the path names the innermost offending field, array positions included, and the
/// first problem in the definition's field order wins.
@Suite("Message shapes")
struct ShapeTests {
    private static func field(_ name: String, required: Bool = false, _ shape: Shape) -> ObjectShape.Field {
        ObjectShape.Field(name: name, required: required, shape: shape)
    }

    /// MeterValues-like: {connectorId, meterValue: [{timestamp, sampledValue: [{value, unit?}]}]}
    private let shape = Shape.object(
        ObjectShape(
            fields: [
                field("connectorId", required: true, .integer(minimum: 0)),
                field(
                    "meterValue", required: true,
                    .array(
                        .object(
                            ObjectShape(
                                fields: [
                                    field("timestamp", required: true, .dateTime),
                                    field(
                                        "sampledValue", required: true,
                                        .array(
                                            .object(
                                                ObjectShape(
                                                    fields: [
                                                        field("value", required: true, .string(maxLength: 5)),
                                                        field("unit", .enumeration(["Wh", "kWh"])),
                                                    ], open: false)), min: 1, max: nil)),
                                ], open: false)), min: 1, max: nil)),
            ], open: false))

    private func check(_ json: String) -> ShapeViolation? {
        shape.violation(of: JSONValue(parsing: Array(json.utf8))!)
    }

    private func sample(_ sampledValue: String) -> String {
        #"{"connectorId":1,"meterValue":[{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{"value":"1"}]},"#
            + #"{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{"value":"2"},"# + sampledValue + "]}]}"
    }

    @Test func aConformingPayloadHasNoViolation() {
        #expect(check(sample(#"{"value":"3","unit":"kWh"}"#)) == nil)
    }

    @Test func pathsNameTheInnermostFieldWithArrayPositions() {
        #expect(
            check(sample(#"{"value":"123456"}"#))
                == ShapeViolation(
                    kind: .badValue, path: "meterValue[1].sampledValue[1].value", detail: "longer than 5 characters"))
        #expect(
            check(sample(#"{"value":"1","unit":"J"}"#))
                == ShapeViolation(
                    kind: .badValue, path: "meterValue[1].sampledValue[1].unit",
                    detail: "'J' is not one of its enum values"))
        #expect(check(sample(#"{"unit":"Wh"}"#))?.path == "meterValue[1].sampledValue[1].value")
        #expect(check(sample(#"{"unit":"Wh"}"#))?.kind == .missing)
        #expect(check(sample(#"{"value":"1","extra":true}"#))?.path == "meterValue[1].sampledValue[1].extra")
        #expect(check(sample(#"{"value":"1","extra":true}"#))?.kind == .unknownField)
        #expect(check(#"{"connectorId":"1","meterValue":[]}"#)?.path == "connectorId")
        #expect(check(#"{"connectorId":"1","meterValue":[]}"#)?.kind == .wrongType)
    }

    @Test func multipleOfAllowsForBinaryFloatingPoint() {
        // 0.1, 0.3 and 16.3 have no exact binary form: 16.3 / 0.1 is 162.99999999999997
        for value in [0.0, 0.1, 0.3, 16.3, 7.7, 230.1, -0.7, 22000.0, 22000.1] {
            #expect(Shape.isMultiple(value, of: 0.1), "\(value)")
        }
        for value in [0.05, 16.35, 7.77, 0.01, 1e-3] {
            #expect(!Shape.isMultiple(value, of: 0.1), "\(value)")
        }
        #expect(Shape.isMultiple(1.5, of: 0.5) && !Shape.isMultiple(1.25, of: 0.5))
        let limit = Shape.number(minimum: nil, multipleOf: 0.1)
        #expect(limit.violation(of: .number(16.3)) == nil)
        #expect(limit.violation(of: .integer(16)) == nil)
        #expect(
            limit.violation(of: .number(16.35))
                == ShapeViolation(kind: .badValue, path: "", detail: "not a multiple of 0.1"))
        #expect(
            Shape.number(minimum: 0, multipleOf: 0.1).violation(of: .number(-0.1))?.detail == "must be at least 0.0")
    }

    @Test func theFirstProblemInDefinitionOrderWins() {
        // meterValue is empty (a problem of the second field) and connectorId is negative (the first field).
        #expect(
            check(#"{"meterValue":[],"connectorId":-1}"#)
                == ShapeViolation(kind: .badValue, path: "connectorId", detail: "must be at least 0"))
        // A required field missing before the field with a problem is reported first.
        #expect(
            check(#"{"meterValue":[]}"#)
                == ShapeViolation(kind: .missing, path: "connectorId", detail: "required field missing"))
        #expect(shape.violation(of: .object([:]), at: "payload")?.path == "payload.connectorId")
    }

    @Test func lengthsCountCharactersNotBytes() {
        #expect(check(sample(#"{"value":"äöüéè"}"#)) == nil)
        #expect(check(sample(#"{"value":"äöüéèß"}"#))?.kind == .badValue)
    }
}
