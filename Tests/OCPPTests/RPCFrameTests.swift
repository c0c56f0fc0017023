import OCPP
import Testing

@Suite("RPC frame parsing")
struct RPCFrameTests {
    private func parse(_ text: String, _ version: OCPPVersion = .v1_6) -> Result<RPCFrame, RPCFrameError> {
        RPCFrame.parse(Array(text.utf8), version: version)
    }

    private func error(_ text: String, _ version: OCPPVersion = .v1_6) -> RPCFrameError? {
        if case .failure(let error) = parse(text, version) { return error }
        return nil
    }

    /// The relay reads only the envelope; it must see the same head, and refuse the same frames for the same reason.
    @Test(arguments: [
        (
            #" [2, "c1", "MeterValues", {"connectorId": 1, "meterValue": [{"sampledValue": [{"value": "1"}]}]}] "#,
            OCPPVersion.v1_6
        ),
        (#"[3,"r1",{"idTagInfo":{"status":"Accepted"}}]"#, .v1_6),
        (#"[4,"e1","NotImplemented","no",{"detail":[1]}]"#, .v1_6),
        (#"[5,"e2","InternalError","",{}]"#, .v2_1),
        (#"[6,"s1","NotifyPeriodicEventStream",{"id":1}]"#, .v2_1),
        (#"[6,"s1","NotifyPeriodicEventStream",{"id":1}]"#, .v2_0_1),
        (#"[2,"c1","Heartbeat",{"a":1e999}]"#, .v1_6),
        (#"[2,"c1","Heartbeat",[]]"#, .v1_6),
        (#"[2,"c1","Heartbeat"]"#, .v1_6),
        (#"[3,17,{}]"#, .v1_6),
        (#"[4,"e1",7,"no",{}]"#, .v1_6),
        (#"{"a":1}"#, .v1_6),
    ])
    func envelopeAgreesWithTheFullFrame(_ text: String, _ version: OCPPVersion) throws {
        let bytes = Array(text.utf8)
        let envelope = RPCEnvelope.parse(bytes, version: version)
        switch (envelope, RPCFrame.parse(bytes, version: version)) {
        case (.success(let head), .success(let frame)):
            #expect(head.messageType == frame.messageType)
            #expect(head.messageId == frame.messageId)
            let payload = JSONValue(parsing: bytes[head.payloadRange])
            switch frame {
            case .call(_, let action, let expected), .send(_, let action, let expected):
                #expect(head.action == action)
                #expect(payload == expected)
            case .callResult(_, let expected):
                #expect(head.action == nil)
                #expect(payload == expected)
            case .callError(_, let code, let description, let details),
                .callResultError(_, let code, let description, let details):
                #expect(head.errorCode == code)
                #expect(head.errorDescription == description)
                #expect(payload == details)
            }
        case (.failure(let headError), .failure(let frameError)):
            #expect(headError == frameError)
        default:
            Issue.record("the envelope and the frame disagree on \(text): \(envelope)")
        }
    }

    @Test func parsesACall() throws {
        let frame = try parse(#"[2,"19223201","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#)
            .get()
        #expect(
            frame
                == .call(
                    id: "19223201", action: "BootNotification",
                    payload: .object(["chargePointVendor": .string("V"), "chargePointModel": .string("M")])))
        #expect(frame.messageId == "19223201")
        #expect(frame.messageType == .call)
    }

    @Test func parsesACallResultWithNestedPayload() throws {
        let frame = try parse(#"[3,"a",{"idTagInfo":{"status":"Accepted"},"n":[1,2.5,true,null]}]"#).get()
        #expect(
            frame
                == .callResult(
                    id: "a",
                    payload: .object([
                        "idTagInfo": .object(["status": .string("Accepted")]),
                        "n": .array([.integer(1), .number(2.5), .bool(true), .null]),
                    ])))
    }

    @Test func parsesACallError() throws {
        let frame = try parse(#"[4,"a","NotImplemented","no such action",{}]"#).get()
        #expect(
            frame == .callError(id: "a", code: "NotImplemented", description: "no such action", details: .object([:])))
    }

    @Test func acceptsAMessageIdOfExactly36Characters() throws {
        let id = String(repeating: "x", count: 36)
        #expect(try parse(#"[2,"\#(id)","Heartbeat",{}]"#).get().messageId == id)
    }

    @Test func refusesTextThatIsNotJSON() {
        let e = error("garbage")
        #expect(e?.kind == .notJSON)
        #expect(e?.answerMessageId == "-1")
        #expect(e?.answersSender(version: .v1_6) == true)
    }

    @Test(arguments: [#"{"a":1}"#, "[]", "17", #""text""#])
    func refusesJSONThatIsNotANonEmptyArray(text: String) {
        #expect(error(text)?.kind == .notAnArray)
    }

    @Test func refusesAMessageTypeThatIsNotAnInteger() {
        #expect(error(#"["2","a","Heartbeat",{}]"#)?.kind == .messageTypeNotAnInteger)
    }

    @Test(arguments: ["[2]", #"[2,17,"Heartbeat",{}]"#, #"[2,null,"Heartbeat",{}]"#])
    func refusesAnUnreadableMessageId(text: String) {
        let e = error(text)
        #expect(e?.kind == .messageIdUnreadable)
        #expect(e?.answerMessageId == "-1")
        #expect(e?.messageType == 2)
    }

    @Test func refusesAMessageIdLongerThan36AndAnswersWithIt() {
        let id = String(repeating: "x", count: 37)
        let e = error(#"[2,"\#(id)","Heartbeat",{}]"#)
        #expect(e?.kind == .messageIdTooLong)
        #expect(e?.answerMessageId == id)
    }

    @Test func refusesAnUnknownMessageType() {
        let e = error(#"[7,"a",{}]"#)
        #expect(e?.kind == .unknownMessageType(7))
        #expect(e?.messageId == "a")
    }

    @Test func sendAndCallResultErrorExistOnlyIn2_1() throws {
        #expect(error(#"[6,"a","NotifyPeriodicEventStream",{}]"#, .v2_0_1)?.kind == .unknownMessageType(6))
        #expect(error(#"[5,"a","GenericError","",{}]"#, .v1_6)?.kind == .unknownMessageType(5))
        #expect(try parse(#"[6,"a","NotifyPeriodicEventStream",{}]"#, .v2_1).get().messageType == .send)
        #expect(try parse(#"[5,"a","GenericError","",{}]"#, .v2_1).get().messageType == .callResultError)
    }

    @Test(arguments: [
        #"[2,"a","Heartbeat"]"#, #"[2,"a","Heartbeat",{},{}]"#, #"[3,"a"]"#, #"[4,"a","GenericError",""]"#,
    ])
    func refusesTheWrongNumberOfElements(text: String) {
        guard case .wrongElementCount? = error(text)?.kind else {
            Issue.record("expected wrongElementCount for \(text)")
            return
        }
    }

    @Test func refusesAnActionThatIsNotAString() {
        #expect(error(#"[2,"a",5,{}]"#)?.kind == .actionNotAString)
    }

    @Test(arguments: [#"[2,"a","Heartbeat",[]]"#, #"[2,"a","Heartbeat",null]"#, #"[3,"a","ok"]"#])
    func refusesAPayloadThatIsNotAnObject(text: String) {
        #expect(error(text)?.kind == .payloadNotAnObject)
    }

    @Test func refusesAMalformedCallError() {
        #expect(error(#"[4,"a",1,"",{}]"#)?.kind == .errorCodeNotAString)
        #expect(error(#"[4,"a","GenericError",2,{}]"#)?.kind == .errorDescriptionNotAString)
        #expect(error(#"[4,"a","GenericError","",[]]"#)?.kind == .errorDetailsNotAnObject)
    }

    @Test func onlyCallsAndUnreadableFramesAreAnsweredToTheSender() {
        #expect(error(#"[2,"a","Heartbeat",[]]"#)?.answersSender(version: .v1_6) == true)
        #expect(error(#"[3,"a","ok"]"#)?.answersSender(version: .v1_6) == false)
        #expect(error(#"[4,"a",1,"",{}]"#)?.answersSender(version: .v2_0_1) == false)
        #expect(error(#"[1,"a"]"#)?.answersSender(version: .v2_0_1) == true)
        // 2.1 part 4: a message with an unknown type number is ignored.
        #expect(error(#"[9,"a"]"#, .v2_1)?.answersSender(version: .v2_1) == false)
    }
}

@Suite("RPC error codes per version")
struct RPCErrorCodeTests {
    @Test func malformedFramesGetTheCodeTheirVersionPrescribes() {
        let notJSON = RPCFrameError(.notJSON)
        #expect(notJSON.callErrorCode(version: .v1_6).name(in: .v1_6) == "FormationViolation")
        #expect(notJSON.callErrorCode(version: .v2_0_1).name(in: .v2_0_1) == "RpcFrameworkError")
        let badPayload = RPCFrameError(.payloadNotAnObject, messageType: 2, messageId: "a")
        #expect(badPayload.callErrorCode(version: .v1_6).name(in: .v1_6) == "FormationViolation")
        #expect(badPayload.callErrorCode(version: .v2_0_1).name(in: .v2_0_1) == "FormatViolation")
        let unknownType = RPCFrameError(.unknownMessageType(7), messageType: 7, messageId: "a")
        #expect(unknownType.callErrorCode(version: .v1_6).name(in: .v1_6) == "GenericError")
        #expect(unknownType.callErrorCode(version: .v2_0_1).name(in: .v2_0_1) == "MessageTypeNotSupported")
    }

    @Test func spellingsDifferBetween1_6And2_0_1() {
        #expect(RPCErrorCode.occurrenceConstraintViolation.name(in: .v1_6) == "OccurenceConstraintViolation")
        #expect(RPCErrorCode.occurrenceConstraintViolation.name(in: .v2_0_1) == "OccurrenceConstraintViolation")
        #expect(RPCErrorCode.formatViolation.name(in: .v2_1) == "FormatViolation")
        #expect(!RPCErrorCode.wireNames(in: .v1_6).contains("RpcFrameworkError"))
        #expect(RPCErrorCode.wireNames(in: .v2_0_1).contains("RpcFrameworkError"))
        #expect(!RPCErrorCode.wireNames(in: .v2_0_1).contains("FormationViolation"))
    }

    @Test func callErrorTextIsAFiveElementFrame() throws {
        let text = RPCFrame.callErrorText(id: "-1", code: .rpcFrameworkError, description: "bad", version: .v2_0_1)
        #expect(text == #"[4,"-1","RpcFrameworkError","bad",{}]"#)
        let long = RPCFrame.callErrorText(
            id: "x", code: .genericError, description: String(repeating: "d", count: 400), version: .v2_0_1)
        guard case .callError(_, _, let description, _) = try RPCFrame.parse(Array(long.utf8), version: .v2_0_1).get()
        else {
            Issue.record("not a CALLERROR: \(long)")
            return
        }
        #expect(description.count == 255)
    }
}
