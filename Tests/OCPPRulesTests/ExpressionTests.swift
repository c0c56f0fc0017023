import OCPP
import Testing

@testable import OCPPRules

@Suite("Rule expressions")
struct ExpressionTests {
    @Test func readsPathsIntoThePayloadTheElementAndNamedValues() throws {
        #expect(try Expression.parse("$connectorId") == .path(.payload, [.field("connectorId")]))
        #expect(
            try Expression.parse("$meterValue[0].timestamp")
                == .path(.payload, [.field("meterValue"), .index(0), .field("timestamp")]))
        #expect(try Expression.parse("@") == .path(.element, []))
        #expect(try Expression.parse("%call.idTag") == .path(.variable("call"), [.field("idTag")]))
    }

    @Test func readsConstantsAndBareWords() throws {
        #expect(try Expression.parse("12") == .constant(.integer(12)))
        #expect(try Expression.parse("-1") == .constant(.integer(-1)))
        #expect(try Expression.parse("0.5") == .constant(.number(0.5)))
        #expect(try Expression.parse("'it''s'") == .constant(.string("it's")))
        #expect(try Expression.parse("null") == .constant(.null))
        #expect(
            try Expression.parse("Energy.Active.Import.Register") == .constant(.string("Energy.Active.Import.Register"))
        )
    }

    @Test func bindsLogicLooserThanComparisonAndComparisonLooserThanCoalesce() throws {
        let parsed = try Expression.parse("$a ?? 0 == 1 && !$b || $c")
        #expect(
            parsed
                == .binary(
                    .or,
                    .binary(
                        .and,
                        .binary(
                            .equal, .binary(.coalesce, .path(.payload, [.field("a")]), .constant(.integer(0))),
                            .constant(.integer(1))),
                        .not(.path(.payload, [.field("b")]))),
                    .path(.payload, [.field("c")])))
    }

    @Test func readsFunctionCallsWithFieldsOfTheirResult() throws {
        #expect(
            try Expression.parse("find($list, 'key', dm.key(@c, @v)).value")
                == .access(
                    .call(
                        "find",
                        [
                            .path(.payload, [.field("list")]), .constant(.string("key")),
                            .call("dm.key", [.path(.element, [.field("c")]), .path(.element, [.field("v")])]),
                        ]), [.field("value")]))
    }

    @Test(arguments: [
        ("$a ==", "expected a value"), ("f(1, 2", "expected ',' or ')'"), ("'open", "unterminated"),
        ("$a $b", "unexpected"), ("%", "expected a name"), ("$a[x]", "expected [number]"),
    ])
    func reportsWhereReadingStopped(text: String, message: String) {
        #expect {
            try Expression.parse(text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test(arguments: [
        ("$status", true), ("@value", true), ("%call.x", true), ("enum(X, $y)", true), ("tx.begin($c)", true),
        ("(1)", true), ("!$x", true), ("Accepted", false), ("Energy.Active.Import.Register", false),
        ("EVConnected,Authorized", false), ("Available (soon)", false), ("", false),
    ])
    func tellsExpressionsFromConstantStrings(text: String, isExpression: Bool) {
        #expect(Expression.looksLikeExpression(text) == isExpression)
    }
}

@Suite("RFC 3339 date-times")
struct DateTimeTextTests {
    @Test(arguments: [
        ("2026-01-01T10:00:00+01:00", "2026-01-01T09:00:00Z"),
        ("2026-01-01T00:30:00.123-02:30", "2026-01-01T03:00:00.123Z"),
        ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
        ("1999-12-31T23:00:00-01:00", "2000-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
    ])
    func normalisesToUTC(text: String, utc: String) throws {
        let parsed = try #require(DateTimeText.parse(text))
        #expect(parsed.utcText == utc)
    }

    @Test(arguments: [
        "2026-01-01", "2026-01-01T10:00:00", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T10:00:00.Z", "2026-01-01T10:00:00+1:00", "2026-01-01T10:00:00Zjunk", "x026-01-01T10:00:00Z",
    ])
    func refusesWhatIsNotADateTime(text: String) {
        #expect(DateTimeText.parse(text) == nil)
    }
}
