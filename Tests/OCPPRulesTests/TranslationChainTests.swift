import OCPP
import Testing

@testable import OCPPRules

/// The repository's rules directory, loaded as the proxy loads it.
enum RepositoryRules {
    static let library: Result<RuleLibrary, any Error> = Result {
        try RuleLibrary.load(DefinitionFileTests.repositorySources())
    }

    static func chain(_ charger: OCPPVersion, _ csms: OCPPVersion) throws -> [RuleSet] {
        try #require(try library.get().chain(charger: charger, csms: csms))
    }
}

/// A 1.5 charger on a 2.0.1 CSMS: the two rule files in a row.
func chain15to201(state: ChainState = ChainState()) throws -> TranslationChain {
    TranslationChain(
        ruleSets: try RepositoryRules.chain(.v1_5, .v2_0_1), state: state, ids: CountingIdentifiers(),
        messageIdPrefix: "p")
}

extension ChainOutput {
    /// The one frame sent, or a test failure.
    func only() throws -> OutgoingFrame {
        #expect(frames.count == 1, "\(frames)")
        return try #require(frames.first)
    }
}

extension JSONValue {
    subscript(_ path: String) -> JSONValue {
        var current = self
        for step in path.split(separator: ".") {
            if let index = Int(step), case .array(let items) = current {
                current = index < items.count ? items[index] : .null
            } else if case .object(let members) = current {
                current = members[String(step)] ?? .null
            } else {
                return .null
            }
        }
        return current
    }
}

@Suite("Translation chains: 1.5 → 1.6 → 2.0.1 with the repository's rules")
struct TranslationChainTests {
    @Test func theLibraryJoinsVersionsByTheShortestPathOfRuleFiles() throws {
        let library = try RepositoryRules.library.get()
        let long = try #require(library.chain(charger: .v1_5, csms: .v2_0_1))
        #expect(long.map { "\($0.from)-\($0.to)" } == ["ocpp1.5-ocpp1.6", "ocpp1.6-ocpp2.0.1"])
        #expect(library.chain(charger: .v1_5, csms: .v1_6)?.count == 1)
        #expect(library.chain(charger: .v1_6, csms: .v2_0_1)?.count == 1)
        // Rule files have a direction: nothing translates a 2.0.1 charger for a 1.5 CSMS.
        #expect(library.chain(charger: .v2_0_1, csms: .v1_5) == nil)
        #expect(library.chain(charger: .v1_6, csms: .v1_6) == nil)
    }

    @Test func aChargerCallReaches2_0_1AndTheAnswerComesBackIn1_5() throws {
        let chain = try chain15to201()
        #expect(chain.description == "ocpp1.5 → ocpp1.6 → ocpp2.0.1")
        let boot = chain.receive(
            .call(
                id: "b1", action: "BootNotification",
                payload: json(#"{"chargePointVendor":"ACME","chargePointModel":"Old-1","firmwareVersion":"1.5.3"}"#)),
            from: .charger, now: now)
        let call = try boot.only()
        #expect(call.side == .csms)
        guard case .call(let id, "BootNotification", let payload) = call.frame else {
            Issue.record("expected a 2.0.1 BootNotification, got \(call.frame)")
            return
        }
        #expect(payload["chargingStation.vendorName"] == .string("ACME"))
        #expect(payload["reason"] == .string("PowerUp"))
        // 2.0.1 Pending has no 1.5 value: the charger is told Rejected and boots again.
        let back = chain.receive(
            .callResult(id: id, payload: json(#"{"status":"Pending","currentTime":"\#(now)","interval":300}"#)),
            from: .csms, now: now)
        #expect(
            try back.only().frame
                == .callResult(
                    id: "b1", payload: json(#"{"status":"Rejected","currentTime":"\#(now)","heartbeatInterval":300}"#)))
        #expect(try back.only().side == .charger)
    }

    @Test func aCSMSCallReachesThe1_5ChargerAndItsAnswerReturns() throws {
        let chain = try chain15to201()
        let unlock = chain.receive(
            .call(id: "u1", action: "UnlockConnector", payload: json(#"{"evseId":2,"connectorId":1}"#)), from: .csms,
            now: now)
        let call = try unlock.only()
        #expect(call.side == .charger)
        guard case .call(let id, "UnlockConnector", let payload) = call.frame else {
            Issue.record("expected a 1.5 UnlockConnector, got \(call.frame)")
            return
        }
        #expect(payload == json(#"{"connectorId":2}"#))
        #expect(chain.side(awaiting: id) == .charger)
        let back = chain.receive(
            .callResult(id: id, payload: json(#"{"status":"Accepted"}"#)), from: .charger, now: now)
        #expect(try back.only().frame == .callResult(id: "u1", payload: json(#"{"status":"Unlocked"}"#)))
        #expect(chain.exchangesInProgress(from: .csms) == 0)
    }

    @Test func aCallTheMiddleEdgeAnswersInThePeersPlaceGoesNoFurther() throws {
        let chain = try chain15to201()
        // 1.5 has no smart charging: the 1.5 → 1.6 edge answers the 1.6 SetChargingProfile NotSupported, which the
        // 1.6 → 2.0.1 edge turns into a 2.0.1 Rejected; nothing reaches the charger.
        let profile = json(
            #"{"evseId":1,"chargingProfile":{"id":5,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute","chargingSchedule":[{"id":1,"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":16.0}]}]}}"#
        )
        let out = chain.receive(.call(id: "s1", action: "SetChargingProfile", payload: profile), from: .csms, now: now)
        let answer = try out.only()
        #expect(answer.side == .csms)
        #expect(answer.frame == .callResult(id: "s1", payload: json(#"{"status":"Rejected"}"#)))
        let trigger = chain.receive(
            .call(id: "t1", action: "TriggerMessage", payload: json(#"{"requestedMessage":"Heartbeat"}"#)), from: .csms,
            now: now)
        #expect(try trigger.only().frame == .callResult(id: "t1", payload: json(#"{"status":"NotImplemented"}"#)))
        #expect(chain.pendingCount(on: .charger).sent == 0)
    }

    @Test func aCSMSErrorAndATimeoutReachTheChargerAsCallErrorsOfItsVersion() throws {
        let chain = try chain15to201()
        let out = chain.receive(.call(id: "h1", action: "Heartbeat", payload: json("{}")), from: .charger, now: now)
        guard case .call(let id, "Heartbeat", _) = try out.only().frame else { return }
        let error = chain.receive(
            .callError(id: id, code: "FormatViolation", description: "bad", details: json("{}")), from: .csms, now: now)
        let relayed = try error.only()
        #expect(relayed.relayed)
        guard case .callError("h1", let code, _, _) = relayed.frame else {
            Issue.record("expected a CALLERROR, got \(relayed.frame)")
            return
        }
        #expect(code == "FormationViolation")

        let second = chain.receive(.call(id: "h2", action: "Heartbeat", payload: json("{}")), from: .charger, now: now)
        guard case .call(let id2, _, _) = try second.only().frame else { return }
        let timeout = chain.timedOut(side: .csms, messageId: id2, now: now)
        let made = try timeout.only()
        // The inner edge made this error; the outer one passes it on, and it stays the proxy's own.
        #expect(!made.relayed)
        guard case .callError("h2", "InternalError", _, _) = made.frame else {
            Issue.record("expected an InternalError, got \(made.frame)")
            return
        }
    }

    @Test func aChargingSessionKeepsEachEdgesStateAcrossASaveAndRestore() throws {
        let chain = try chain15to201()
        var stored: JSONObject = [:]
        func save(_ output: ChainOutput) {
            for change in output.changes { stored[change.key] = change.change.json }
        }
        let start = chain.receive(
            .call(
                id: "s1", action: "StartTransaction",
                payload: json(#"{"connectorId":1,"idTag":"TAG-1","timestamp":"\#(now)","meterStart":100}"#)),
            from: .charger, now: now)
        save(start)
        guard case .call(let id, "TransactionEvent", let started) = try start.only().frame else { return }
        let uuid = started["transactionInfo.transactionId"]
        #expect(started["eventType"] == .string("Started"))
        let answered = chain.receive(
            .callResult(id: id, payload: json(#"{"idTokenInfo":{"status":"Accepted"}}"#)), from: .csms, now: now)
        save(answered)
        guard case .callResult("s1", let result) = try answered.only().frame,
            case .integer(let transactionId) = result["transactionId"]
        else {
            Issue.record("expected the StartTransaction answer, got \(answered.frames)")
            return
        }
        // Both edges wrote state: the 1.5 → 1.6 edge under the keys a single file uses, the other under its name.
        #expect(stored.keys.contains { $0.hasPrefix("tx:") })
        #expect(stored.keys.contains { $0.hasPrefix("ocpp1.6-ocpp2.0.1/tx:") })

        // A restart: the state read back from what was stored.
        var state = ChainState()
        for (key, value) in stored {
            state.apply(try #require(EdgeStateChange(key: key, json: value)))
        }
        #expect(state == chain.state)
        let restarted = try chain15to201(state: state)

        // The 1.5 → 1.6 edge still knows the transaction: Occupied is Charging, which the 1.6 → 2.0.1 edge follows
        // with the transaction's chargingState.
        let status = restarted.receive(
            .call(
                id: "n1", action: "StatusNotification",
                payload: json(#"{"connectorId":1,"status":"Occupied","errorCode":"NoError"}"#)),
            from: .charger, now: now)
        guard case .call(let statusId, "StatusNotification", let notification) = try status.only().frame else {
            return
        }
        #expect(notification["connectorStatus"] == .string("Occupied"))
        let followUp = restarted.receive(.callResult(id: statusId, payload: json("{}")), from: .csms, now: now)
        #expect(followUp.frames.count == 2, "\(followUp.frames)")
        #expect(followUp.frames.first?.frame == .callResult(id: "n1", payload: json("{}")))
        guard case .call(let eventId, "TransactionEvent", let event)? = followUp.frames.last?.frame else {
            Issue.record("expected a TransactionEvent, got \(followUp.frames)")
            return
        }
        #expect(event["transactionInfo.chargingState"] == .string("Charging"))
        #expect(event["transactionInfo.transactionId"] == uuid)
        _ = restarted.receive(.callResult(id: eventId, payload: json("{}")), from: .csms, now: now)

        // ... and the 1.6 → 2.0.1 edge still knows the uuid and the seqNo of the transaction's integer id.
        let stop = restarted.receive(
            .call(
                id: "e1", action: "StopTransaction",
                payload: json(
                    #"{"transactionId":\#(transactionId),"timestamp":"\#(now)","meterStop":900,"transactionData":[{"values":[{"timestamp":"\#(now)","value":[{"value":"16","unit":"Amp","measurand":"Current.Import"}]}]}]}"#
                )), from: .charger, now: now)
        guard case .call(_, "TransactionEvent", let ended) = try stop.only().frame else { return }
        #expect(ended["eventType"] == .string("Ended"))
        #expect(ended["transactionInfo.transactionId"] == uuid)
        #expect(ended["seqNo"] == .integer(2))
        // the 1.5 reading in Amp reached 2.0.1 as A, after meterStop's Transaction.End sample
        #expect(ended["meterValue.1.sampledValue.0.unitOfMeasure.unit"] == .string("A"))
        #expect(ended["meterValue.1.sampledValue.0.value"] == .integer(16))
    }

    @Test func aSingleRuleSetIsAChainOfOneWithTheStateKeysItAlwaysHad() throws {
        let chain = TranslationChain(
            ruleSets: try RepositoryRules.chain(.v1_6, .v2_0_1), state: ChainState(), ids: CountingIdentifiers(),
            messageIdPrefix: "p")
        let out = chain.receive(
            .call(
                id: "s1", action: "StartTransaction",
                payload: json(#"{"connectorId":1,"idTag":"TAG-1","timestamp":"\#(now)","meterStart":100}"#)),
            from: .charger, now: now)
        guard case .call("p1", "TransactionEvent", _) = try out.only().frame else { return }
        #expect(out.logs.allSatisfy { !$0.message.hasPrefix("[") })
        // The transaction is kept when the CSMS acknowledges the Started event.
        let back = chain.receive(
            .callResult(id: "p1", payload: json(#"{"idTokenInfo":{"status":"Accepted"}}"#)), from: .csms, now: now)
        #expect(!back.changes.isEmpty)
        #expect(back.changes.allSatisfy { $0.edge.isEmpty && $0.key == $0.change.key })
    }

    @Test func aStoredKeyNamesItsEdgeAndOldKeysAreTheFirstEdges() throws {
        let change = StateChange.nextLocalId(7)
        #expect(EdgeStateChange(key: "nextLocalId", json: change.json) == EdgeStateChange(edge: "", change: change))
        let inner = EdgeStateChange(edge: "ocpp1.6-ocpp2.0.1", change: change)
        #expect(inner.key == "ocpp1.6-ocpp2.0.1/nextLocalId")
        #expect(EdgeStateChange(key: inner.key, json: change.json) == inner)
        #expect(EdgeStateChange(key: "nextLocalId", json: json(#"{"unknown":1}"#)) == nil)
    }
}
