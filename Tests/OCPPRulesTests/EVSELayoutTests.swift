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
