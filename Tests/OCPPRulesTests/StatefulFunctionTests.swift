import OCPP
import Testing

@testable import OCPPRules

@Suite("EVSE layouts: 1.6 connector ids ⇄ 2.0.1 EVSEs and their connectors")
struct EVSELayoutTests {
    @Test func aConfiguredLayoutPlacesEachConnectorBothWays() throws {
        let layout = try #require(EVSELayout([[1, 2], [3]]))
        #expect(layout.place(1)! == (1, 1) && layout.place(2)! == (1, 2) && layout.place(3)! == (2, 1))
        #expect(layout.place(0)! == (0, nil))
        #expect(layout.place(4) == nil)
        #expect(layout.connector16(evse: 1, connector: 2) == 2)
        #expect(layout.connector16(evse: 1, connector: nil) == 1)
        #expect(layout.connector16(evse: 2, connector: 2) == nil)
        #expect(layout.connector16(evse: 3, connector: 1) == nil)
        #expect(layout.connector16(evse: 0, connector: nil) == 0)
        #expect(layout.connectors16(evse: 1) == [1, 2])
        #expect(layout.connectors16(evse: 0) == [1, 2, 3])
    }

    @Test func withoutALayoutEachConnectorIsAnEVSEAndAStationsExtraConnectorsGetNumbersOfTheirOwn() {
        let layout = EVSELayout.onePerEVSE
        #expect(layout.place(3)! == (3, 1))
        #expect(layout.connector16(evse: 3, connector: 1) == 3)
        #expect(layout.connector16(evse: 3, connector: nil) == 3)
        // a 2.0.1 station reporting EVSE 1's connector 2 and EVSE 2's connector 3
        #expect(layout.connector16(evse: 1, connector: 2) == 101)
        #expect(layout.connector16(evse: 2, connector: 3) == 202)
        #expect(layout.place(101)! == (1, 2))
        #expect(layout.place(202)! == (2, 3))
        // and numbers beyond the scheme are refused, never wrapped
        #expect(layout.connector16(evse: 100, connector: 2) == nil)
        #expect(layout.connector16(evse: 1, connector: 10_000) == nil)
        #expect(layout.connector16(evse: 1, connector: 0) == nil)
    }

    @Test(arguments: [[[1, 2], [2]], [[1], []], [[0]], [[-1]]] as [[[Int64]]])
    func aLayoutWithAConnectorTwiceOrAnEmptyEVSEIsRefused(evses: [[Int64]]) {
        #expect(EVSELayout(evses) == nil)
        #expect(EVSELayout.problem(evses) != nil)
    }
}

@Suite("Stateful functions of issue 13, one by one")
struct StatefulFunctionTests {
    let now = "2026-01-01T00:00:00Z"

    func evaluator(
        _ state: TranslationState = TranslationState(), profile: ChargerProfile = ChargerProfile(identity: "CP1")
    ) throws -> Evaluator {
        Evaluator(
            rules: try MiniRules.ruleSet(), state: state, now: now, ids: RandomIdentifiers(), profile: profile,
            connectedAt: "2026-01-01T00:00:00Z")
    }

    func value(_ e: Evaluator, _ expression: String, _ payload: String = "{}") throws -> JSONValue {
        try e.evaluate(try Expression.parse(expression), Scope(payload: json(payload), element: nil, variables: [:]))
    }

    @Test func aStartKeyGivesTheSameUUIDUntilTheNextIdMovesAndFindSeesOnlyKeptOngoingStarts() throws {
        let first = try evaluator()
        let uuid = try value(first, "tx.begin(1, 'k')")
        // another evaluation from the same (unchanged) state: a retry of a start that was never kept
        #expect(try value(try evaluator(), "tx.begin(1, 'k')") == uuid)
        #expect(try value(try evaluator(), "tx.begin(2, 'k')") != uuid)
        // once kept, tx.find finds it and tx.begin returns it
        #expect(try value(first, "tx.find(1, 'k')") == uuid)
        #expect(try value(first, "tx.begin(1, 'k')") == uuid)
        // ended, a start with the same key is a new transaction (a charger whose clock stands still)
        _ = try value(first, "tx.end(tx.find(1, 'k'))")
        #expect(try value(first, "tx.find(1, 'k')") == .null)
        let again = try value(first, "tx.begin(1, 'k')")
        #expect(again != uuid && again != .null)
    }

    @Test func knownChecksTheConnectorAndTheFirstIdIsTheSecondsSince2024() throws {
        let e = try evaluator()
        let uuid = try value(e, "tx.begin(2)")
        let id = try #require(try value(e, "tx.int($u)", #"{"u":"\#(uuid.stringValue!)"}"#).integerValue)
        #expect(id == 63_158_400)
        #expect(try value(e, "tx.known(\(id), 2)") == uuid)
        #expect(try value(e, "tx.known(\(id), null)") == uuid)
        #expect(try value(e, "tx.known(\(id), 1)") == .null)
        #expect(try value(e, "tx.connector($u)", #"{"u":"\#(uuid.stringValue!)"}"#) == .integer(2))
        #expect(try value(e, "tx.count()") == .integer(1))
    }

    @Test func openAndBindKeepAStationsTransactionAndTheCSMSsIdWhichANewerTransactionTakesOver() throws {
        let e = try evaluator()
        #expect(try value(e, "tx.open('A', 1)") == .string("A"))
        #expect(try value(e, "tx.int('A')") == .null)
        #expect(try value(e, "tx.bind('A', 42)") == .integer(42))
        #expect(try value(e, "tx.uuid(42)") == .string("A"))
        _ = try value(e, "tx.open('B', 2)")
        _ = try value(e, "tx.bind('B', 42)")  // a CSMS that gives an id twice: the newer transaction has it
        #expect(try value(e, "tx.uuid(42)") == .string("B"))
        #expect(try value(e, "tx.int('A')") == .null)
        // a note rides with the transaction
        _ = try value(e, "tx.note('B', object('idTag', 'T'))")
        #expect(try value(e, "tx.noted('B').idTag") == .string("T"))
        #expect(try value(e, "tx.noted('A')") == .null)
    }

    @Test func countersCapabilitiesAndSeconds() throws {
        var state = TranslationState()
        state.apply(.counter(name: "eventId", value: Int64(Int32.max)))
        let e = try evaluator(
            state, profile: ChargerProfile(identity: "CP1", capabilities: ["securityExtension"]))
        #expect(try value(e, "counter.next('eventId')") == .integer(1))  // back to 1 past Int32
        #expect(try value(e, "counter.next('eventId')") == .integer(2))
        #expect(try value(e, "counter.next('other')") == .integer(1))
        #expect(try value(e, "capability('securityExtension')") == .bool(true))
        #expect(try value(try evaluator(), "capability('securityExtension')") == .bool(false))
        #expect(try value(e, "seconds('2026-01-01T00:00:00Z', '2026-01-01T00:01:00.5Z')") == .number(60.5))
        #expect(try value(e, "seconds('yesterday', now())") == .null)
        #expect(try value(e, "connectedAt()") == .string("2026-01-01T00:00:00Z"))
        #expect(try value(e, "datetime('2026-01-01T10:00:00.123456+01:00')") == .string("2026-01-01T09:00:00.123Z"))
    }
}
