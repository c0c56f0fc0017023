import OCPP
import Testing

@testable import OCPPRules

/// A small version pair, written for these tests, that exercises every engine feature without the size of
/// the real rule files.
enum MiniRules {
    static let definitions16 = """
        version: ocpp1.6
        messages:
          Ping:
            sentBy: chargingStation
            request: {n!: integer, status: enum(Up|Down), label: string(5), at: datetime}
            response: {ok!: boolean, txId: integer}
          ChangeConfiguration:
            sentBy: csms
            request: {key!: string(50), value!: string(500)}
            response: {status!: enum(Accepted|Rejected|RebootRequired|NotSupported)}
        """
    static let definitions201 = """
        version: ocpp2.0.1
        messages:
          Pong:
            sentBy: chargingStation
            request: {count!: integer, state: enum(UP|DOWN), txId: string(36), seqNo: integer, at: datetime}
            response: {accepted!: boolean}
          SetMany:
            sentBy: csms
            request:
              items!: [{key!: string, value!: string}, {min: 1}]
            response:
              results!: [{key!: string, status!: enum(Accepted|Rejected|Unknown)}]
        """
    static let rules = """
        from: ocpp1.6
        to: ocpp2.0.1
        charger:
          Ping:
            - when: $n == 99
              to: Pong
              request: {count: $n, state: "concat('SIDE', 'WAYS')"}
              result: {ok: true}
            - when: $n == 7
              let: {tx: tx.begin(1)}
              to: Pong
              request: {count: $n, txId: "%tx", seqNo: "tx.seqNo(%tx)"}
              result: {ok: $accepted, txId: "tx.int(%tx)"}
            - when: $n == 8
              let: {tx: tx.begin(1)}
              to: Pong
              request: {count: integer('x')}
              result: {ok: true}
            - to: Pong
              request: {count: $n, state: "enum(State, $status)", at: datetime($at)}
              result: {ok: $accepted}
        csms:
          SetMany:
            foreach: $items
            item:
              - when: "@key == 'secret'"
                answer: {key: "@key", status: Rejected}
              - to: ChangeConfiguration
                request: {key: "@key", value: "@value"}
                result: {key: "@key", status: "enum(Status, $status)"}
            result: {results: "%results"}
        enums:
          State: {Up: UP, Down: DOWN}
          Status: {Accepted: Accepted, Rejected: Rejected, _: Unknown}
        errors:
          up: {FormationViolation: FormatViolation}
          down: {FormatViolation: FormationViolation}
        tolerance:
          lenient: [enumCase, numericStrings, unknownFields]
        """

    static func sources(rules: String = rules) -> RuleSources {
        RuleSources(
            files: [
                "definitions/ocpp1.6.yaml": definitions16, "definitions/ocpp2.0.1.yaml": definitions201,
                "mini.yaml": rules,
            ], directory: "")
    }

    static func ruleSet() throws -> RuleSet {
        try #require(RuleLibrary.load(sources()).ruleSet(charger: .v1_6, csms: .v2_0_1))
    }

    static func session(tolerance: Tolerance = .strict) throws -> TranslationSession {
        TranslationSession(
            rules: try ruleSet(), state: TranslationState(), ids: CountingIdentifiers(), chargerTolerance: tolerance,
            messageIdPrefix: "p")
    }
}

func json(_ text: String) -> JSONValue { JSONValue(parsing: Array(text.utf8))! }

let now = "2026-01-01T00:00:00Z"

@Suite("Translation session")
struct TranslationSessionTests {
    @Test func translatesACallAndItsResultWithTheEnumMapsAndDates() throws {
        let session = try MiniRules.session()
        let out = session.receive(
            .call(
                id: "c1", action: "Ping", payload: json(#"{"n":3,"status":"Down","at":"2026-01-01T10:00:00+01:00"}"#)),
            from: .charger, now: now)
        #expect(
            out.frames == [
                .init(
                    side: .csms,
                    frame: .call(
                        id: "p1", action: "Pong",
                        payload: json(#"{"count":3,"state":"DOWN","at":"2026-01-01T09:00:00Z"}"#)))
            ])
        let back = session.receive(.callResult(id: "p1", payload: json(#"{"accepted":false}"#)), from: .csms, now: now)
        #expect(back.frames == [.init(side: .charger, frame: .callResult(id: "c1", payload: json(#"{"ok":false}"#)))])
        #expect(session.exchangesInProgress == 0)
    }

    @Test(arguments: [
        (#"{}"#, "OccurenceConstraintViolation"), (#"{"n":"3"}"#, "TypeConstraintViolation"),
        (#"{"n":3,"status":"up"}"#, "PropertyConstraintViolation"),
        (#"{"n":3,"label":"toolong"}"#, "PropertyConstraintViolation"),
        (#"{"n":3,"extra":1}"#, "FormationViolation"), (#"{"n":3,"at":"yesterday"}"#, "PropertyConstraintViolation"),
    ])
    func refusesAnInvalidCallWithTheCodeOfItsVersion(payload: String, code: String) throws {
        let session = try MiniRules.session()
        let out = session.receive(.call(id: "c1", action: "Ping", payload: json(payload)), from: .charger, now: now)
        #expect(out.frames.count == 1)
        guard case .callError(let id, let errorCode, _, _) = out.frames[0].frame else {
            Issue.record("expected a CALLERROR, got \(out.frames)")
            return
        }
        #expect(out.frames[0].side == .charger && id == "c1" && errorCode == code)
    }

    @Test func aToleranceProfileRepairsCaseNumbersAndExtraFields() throws {
        let lenient = Tolerance(enumCase: true, numericStrings: true, unknownFields: true)
        let session = try MiniRules.session(tolerance: lenient)
        let out = session.receive(
            .call(id: "c1", action: "Ping", payload: json(#"{"n":"4","status":"up","vendorThing":true}"#)),
            from: .charger,
            now: now)
        #expect(
            out.frames.map(\.frame) == [.call(id: "p1", action: "Pong", payload: json(#"{"count":4,"state":"UP"}"#))])
    }

    @Test func anUnknownActionIsNotImplemented() throws {
        let out = try MiniRules.session().receive(
            .call(id: "c1", action: "Dance", payload: .object([:])), from: .charger, now: now)
        #expect(
            out.frames.map(\.frame) == [
                .callError(
                    id: "c1", code: "NotImplemented",
                    description: "Dance is not a CALL a charging station sends in ocpp1.6", details: .object([:]))
            ])
    }

    @Test func fansOutOneCallAtATimeAndAssemblesTheAnswerInOrder() throws {
        let session = try MiniRules.session()
        let payload = json(#"{"items":[{"key":"A","value":"1"},{"key":"secret","value":"x"},{"key":"B","value":"2"}]}"#)
        var out = session.receive(.call(id: "m1", action: "SetMany", payload: payload), from: .csms, now: now)
        #expect(
            out.frames.map(\.frame) == [
                .call(id: "p1", action: "ChangeConfiguration", payload: json(#"{"key":"A","value":"1"}"#))
            ])
        #expect(session.pendingCount(on: .charger).sent == 1)
        out = session.receive(
            .callResult(id: "p1", payload: json(#"{"status":"RebootRequired"}"#)), from: .charger, now: now)
        // The second item is answered by the rule itself; the third goes out only now.
        #expect(
            out.frames.map(\.frame) == [
                .call(id: "p2", action: "ChangeConfiguration", payload: json(#"{"key":"B","value":"2"}"#))
            ])
        out = session.receive(.callResult(id: "p2", payload: json(#"{"status":"Accepted"}"#)), from: .charger, now: now)
        #expect(
            out.frames == [
                .init(
                    side: .csms,
                    frame: .callResult(
                        id: "m1",
                        payload: json(
                            #"{"results":[{"key":"A","status":"Unknown"},{"key":"secret","status":"Rejected"},{"key":"B","status":"Accepted"}]}"#
                        )))
            ])
    }

    @Test func callsInTheSameDirectionWaitForTheOutstandingOne() throws {
        let session = try MiniRules.session()
        let one = json(#"{"items":[{"key":"A","value":"1"}]}"#)
        let first = session.receive(.call(id: "m1", action: "SetMany", payload: one), from: .csms, now: now)
        let second = session.receive(.call(id: "m2", action: "SetMany", payload: one), from: .csms, now: now)
        #expect(first.frames.count == 1 && second.frames.isEmpty)
        #expect(session.pendingCount(on: .charger) == (1, 1))
        // A CALL in the other direction may cross.
        let crossing = session.receive(
            .call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        #expect(crossing.frames.map(\.side) == [.csms])
        let next = session.receive(
            .callResult(id: "p1", payload: json(#"{"status":"Accepted"}"#)), from: .charger, now: now)
        // The first exchange is answered, then the waiting CALL is translated (with what the first one changed)
        // and goes out.
        #expect(next.frames.map(\.side) == [.csms, .charger])
        #expect(next.frames.map(\.frame.messageId) == ["m1", "p3"])
    }

    @Test func aCallOfTheSameSideWaitsUntilTheExchangeBeforeItIsFinished() throws {
        let session = try MiniRules.session()
        let first = session.receive(
            .call(id: "c1", action: "Ping", payload: json(#"{"n":7}"#)), from: .charger, now: now)
        #expect(first.frames.map(\.frame.messageId) == ["p1"])
        // Valid, so nothing is said yet: its rule runs after c1's exchange.
        let second = session.receive(
            .call(id: "c2", action: "Ping", payload: json(#"{"n":7}"#)), from: .charger, now: now)
        #expect(second.frames.isEmpty)
        #expect(session.exchangesInProgress(from: .charger) == 2)
        // An invalid one is answered at once, waiting for nothing.
        let invalid = session.receive(.call(id: "c3", action: "Ping", payload: json(#"{}"#)), from: .charger, now: now)
        guard case .callError("c3", _, _, _)? = invalid.frames.first?.frame else {
            Issue.record("expected a CALLERROR for c3, got \(invalid.frames)")
            return
        }
        let back = session.receive(.callResult(id: "p1", payload: json(#"{"accepted":true}"#)), from: .csms, now: now)
        // c1 answered, then c2 translated against the state c1's answer committed: the transaction is the same
        // Ping rule's next one (nextLocalId moved on), and its seqNo starts again at 0 for a new transaction.
        #expect(back.frames.map(\.frame.messageId) == ["c1", "p2"])
        #expect(back.frames.map(\.side) == [.charger, .csms])
    }

    @Test func renamesCallErrorCodesBetweenVersions() throws {
        let session = try MiniRules.session()
        _ = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        let out = session.receive(
            .callError(id: "p1", code: "FormatViolation", description: "bad", details: .object([:])), from: .csms,
            now: now)
        #expect(
            out.frames.map(\.frame) == [
                .callError(id: "c1", code: "FormationViolation", description: "bad", details: .object([:]))
            ])
    }

    @Test(arguments: ["Foo", "", "formationviolation", "RpcFrameworkError"])
    func aCallErrorCodeTheCallersVersionLacksBecomesGenericError(code: String) throws {
        let session = try MiniRules.session()
        _ = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        let out = session.receive(
            .callError(id: "p1", code: code, description: "bad", details: .object([:])), from: .csms, now: now)
        #expect(
            out.frames.map(\.frame) == [
                .callError(id: "c1", code: "GenericError", description: "bad", details: .object([:]))
            ])
    }

    @Test func aMalformedAnswerIsAProtocolErrorForTheCallerAtOnce() throws {
        let session = try MiniRules.session()
        _ = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        let out = session.receiveBrokenAnswer(id: "p1", from: .csms, description: "not JSON", now: now)
        #expect(
            out.frames.map(\.frame) == [
                .callError(id: "c1", code: "ProtocolError", description: "not JSON", details: .object([:]))
            ])
        #expect(session.exchangesInProgress == 0 && session.pendingCount(on: .csms).sent == 0)
    }

    @Test func aRelayedCallErrorIsMarkedAsTheCallersPeers() throws {
        let session = try MiniRules.session()
        _ = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        let relayed = session.receive(
            .callError(id: "p1", code: "GenericError", description: "no", details: .object([:])), from: .csms, now: now)
        #expect(relayed.frames.map(\.relayed) == [true])
        let own = session.receive(.call(id: "c2", action: "Ping", payload: json(#"{}"#)), from: .charger, now: now)
        #expect(own.frames.map(\.relayed) == [false])
    }

    @Test func aTimeoutAnswersTheCallerWithInternalError() throws {
        let session = try MiniRules.session()
        _ = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":1}"#)), from: .charger, now: now)
        let out = session.timedOut(side: .csms, messageId: "p1", now: now)
        guard case .callError("c1", "InternalError", _, _)? = out.frames.first?.frame else {
            Issue.record("expected InternalError, got \(out.frames)")
            return
        }
        #expect(session.exchangesInProgress == 0)
        // A late answer finds nothing to answer.
        let late = session.receive(.callResult(id: "p1", payload: json(#"{"accepted":true}"#)), from: .csms, now: now)
        #expect(late.frames.isEmpty && late.logs.count == 1)
    }

    @Test func aTranslationThatBreaksTheTargetDefinitionIsNeverSent() throws {
        let session = try MiniRules.session()
        let out = session.receive(
            .call(id: "c1", action: "Ping", payload: json(#"{"n":99}"#)), from: .charger, now: now)
        #expect(out.frames.map(\.side) == [.charger])
        guard case .callError("c1", "InternalError", _, _) = out.frames[0].frame else {
            Issue.record("expected InternalError, got \(out.frames)")
            return
        }
        #expect(
            out.logs.contains {
                $0.level == .error && $0.message.contains("SIDEWAYS") && $0.message.contains("\"n\":99")
            })
    }

    @Test func statefulFunctionsChangeTheStateWhenThePeerAcknowledgesTheCall() throws {
        let session = try MiniRules.session()
        let out = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":7}"#)), from: .charger, now: now)
        let uuid = "00000000-0000-4000-8000-000000000001"
        #expect(
            out.frames.map(\.frame) == [
                .call(id: "p1", action: "Pong", payload: json(#"{"count":7,"txId":"\#(uuid)","seqNo":0}"#))
            ])
        // Nothing is kept until the CSMS acknowledges the CALL.
        #expect(out.changes.isEmpty)
        #expect(session.state.transaction(uuid: uuid) == nil)
        let back = session.receive(.callResult(id: "p1", payload: json(#"{"accepted":true}"#)), from: .csms, now: now)
        // The first 1.6 id is the seconds from 2024-01-01 to `now` (2026-01-01T00:00:00Z), never 1 again.
        let first: Int64 = 63_158_400
        #expect(back.frames.map(\.frame) == [.callResult(id: "c1", payload: json(#"{"ok":true,"txId":\#(first)}"#))])
        // Written with the answer, before it goes out.
        #expect(back.changes.contains(.nextLocalId(first + 1)))
        #expect(session.state.transaction(uuid: uuid)?.nextSeqNo == 1)
    }

    @Test func aRefusedOrUnansweredCallLeavesNoStateAndItsRetryIsTheSame() throws {
        for failure in ["error", "timeout"] {
            let session = try MiniRules.session()
            let out = session.receive(
                .call(id: "c1", action: "Ping", payload: json(#"{"n":7}"#)), from: .charger, now: now)
            guard case .call(let id, _, let sent)? = out.frames.first?.frame else {
                Issue.record("expected a CALL, got \(out.frames)")
                return
            }
            let failed =
                failure == "error"
                ? session.receive(
                    .callError(id: id, code: "InternalError", description: "", details: .object([:])), from: .csms,
                    now: now)
                : session.timedOut(side: .csms, messageId: id, now: now)
            #expect(failed.changes.isEmpty, "\(failure)")
            #expect(session.state.transactions.isEmpty, "\(failure)")
            #expect(session.state.nextLocalId == 1, "\(failure)")
            let retry = session.receive(
                .call(id: "c1", action: "Ping", payload: json(#"{"n":7}"#)), from: .charger, now: now)
            guard case .call(_, _, let resent)? = retry.frames.first?.frame else {
                Issue.record("expected the retry's CALL, got \(retry.frames)")
                return
            }
            // The same seqNo (0): it was never acknowledged.
            #expect(resent["seqNo"] == sent["seqNo"], "\(failure)")
        }
    }

    @Test func aFailedTranslationLeavesTheStateAsItWas() throws {
        let session = try MiniRules.session()
        let out = session.receive(.call(id: "c1", action: "Ping", payload: json(#"{"n":8}"#)), from: .charger, now: now)
        guard case .callError("c1", "PropertyConstraintViolation", _, _)? = out.frames.first?.frame else {
            Issue.record("expected PropertyConstraintViolation, got \(out.frames)")
            return
        }
        #expect(out.changes.isEmpty)
        #expect(session.state == TranslationState())
    }

    @Test func stateChangesSurviveTheirJSONForm() throws {
        let changes: [StateChange] = [
            .transaction(
                .init(localId: 3, uuid: "u", connectorId: 2, nextSeqNo: 5, remoteStartId: 42, ended: true, serial: 9)),
            .forgetTransaction(uuid: "u"), .nextLocalId(4),
            .remoteStarts([.init(evseId: nil, idToken: "T", remoteStartId: 1)]),
            .requestId(kind: "log", id: 77),
        ]
        for change in changes {
            #expect(StateChange(json: JSONValue(parsing: Array(change.json.jsonText.utf8))!) == change)
        }
    }
}

@Suite("Rule file checks")
struct RuleCheckTests {
    static func issues(replacing old: String, with new: String) -> [String] {
        var rules = MiniRules.rules
        #expect(rules.contains(old), "the test's rule text has no \(old)")
        rules = rules.replacingOccurrences(of: old, with: new)
        do {
            _ = try RuleLibrary.load(MiniRules.sources(rules: rules))
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func theMiniRulesAreClean() throws {
        _ = try MiniRules.ruleSet()
    }

    @Test(arguments: [
        ("tx.begin(1)", "tx.bogus(1)", "mini.yaml:10: unknown function tx.bogus()"),
        ("Down: DOWN}", "}", "mini.yaml:33: enums.State is not total: no entry for Down"),
        (
            "{count: $n, state: \"concat('SIDE', 'WAYS')\"}", "{count: $n, colour: red}",
            "mini.yaml:7: Ping → Pong.request: unknown field 'colour'"
        ),
        ("state: \"enum(State, $status)\"", "state: \"enum(State, $stat)\"", "mini.yaml:20: unknown field $stat"),
        (
            "    - to: Pong\n      request: {count: $n, state",
            "    - when: true\n      to: Pong\n      request: {count: $n, state",
            "the last alternative must have no 'when'"
        ),
        ("charger:\n  Ping:", "charger:\n  Pinq:", "ocpp1.6 Ping sent by the charger has no rule"),
        ("to: ChangeConfiguration", "to: Pong", "Pong is not a CALL the CSMS sends in ocpp1.6"),
        (
            "State: {Up: UP,", "State: {Up: UPP,",
            "mini.yaml:33: enums.State produces 'UPP', which Ping → Pong.request.state does not allow"
        ),
        ("result: {results: \"%results\"}", "result: {results: \"%results\"}\n    result: {}", "appears twice"),
        ("tolerance:\n  lenient: [enumCase", "tolerance:\n  lenient: [enumCaze", "unknown quirk 'enumCaze'"),
        ("count: $n, txId", "count: $n $n, txId", "mini.yaml:12: Ping.request.count"),
    ])
    func reportsEachProblemWithItsLine(old: String, new: String, expected: String) {
        let found = Self.issues(replacing: old, with: new)
        #expect(found.contains { $0.contains(expected) }, "got \(found)")
    }
}
