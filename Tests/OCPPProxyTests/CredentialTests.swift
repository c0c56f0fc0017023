import Logging
import NIOCore
import NIOEmbedded
import OCPP
import OCPPRules
import Testing

@testable import OCPPProxy

/// JSON text as a value; the texts here are literals, so a parse failure is a broken test.
func json(_ text: String) -> JSONValue {
    guard let value = JSONValue(parsing: Array(text.utf8)) else { fatalError("not JSON: \(text)") }
    return value
}

/// The RPC frame an `Outgoing` carries, whether made by the proxy or forwarded as bytes.
func rpcFrame(_ outgoing: Outgoing) -> RPCFrame? {
    switch outgoing.content {
    case .frame(let frame): return frame
    case .forwarded(let text): return try? RPCFrame.parse(text.readableBytesView, version: .v2_0_1).get()
    }
}

/// A session context for charger CP001 on `loop`, with the same version on both sides unless told otherwise.
func sessionContext(
    charger: OCPPVersion, upstream: OCPPVersion? = nil, loop: EventLoop, metrics: ProxyMetrics = ProxyMetrics(),
    limits: LimitsConfiguration = LimitsConfiguration()
) throws -> SessionContext {
    SessionContext(
        identity: try ChargerIdentity("CP001"), chargerVersion: charger, upstreamVersion: upstream ?? charger,
        eventLoop: loop, metrics: SessionMetrics(proxy: metrics, transport: .websocket), limits: limits,
        logger: Logger(label: "test"))
}

@Suite("Credential messages: which CSMS CALLs the proxy answers itself")
struct CredentialMessageTests {
    static let accepted = json(#"{"status":"Accepted"}"#)
    static let rejected = json(#"{"status":"Rejected"}"#)
    static let password = json(
        #"{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"n3w-s3cret-passw0rd","attributeType":"Actual"}"#
    )
    static let passwordResult = json(
        #"{"attributeStatus":"Accepted","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeType":"Actual"}"#
    )
    static let heartbeat = json(
        #"{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"},"attributeValue":"300"}"#)
    static let offline = json(
        #"{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"OfflineThreshold"},"attributeValue":"60"}"#)

    func classify(_ action: String, _ payload: String, _ version: OCPPVersion) -> CredentialMessage {
        CredentialMessage.classify(action: action, payload: json(payload), version: version)
    }

    @Test func onlyFourActionsMayConcernTheProxysLink() {
        for action in ["ChangeConfiguration", "InstallCertificate", "SetNetworkProfile", "SetVariables"] {
            #expect(CredentialMessage.mayConcern(action: action), "\(action)")
        }
        for action in ["GetVariables", "Reset", "GetConfiguration", "CertificateSigned", "DataTransfer"] {
            #expect(!CredentialMessage.mayConcern(action: action), "\(action)")
        }
    }

    // MARK: 1.6

    @Test func aNewAuthorizationKeyIn1_6IsAPasswordChangeAnsweredAccepted() {
        #expect(
            classify("ChangeConfiguration", #"{"key":"AuthorizationKey","value":"0123456789abcdef"}"#, .v1_6)
                == .changePassword("0123456789abcdef", answer: Self.accepted))
    }

    @Test func otherConfigurationKeysIn1_6AreForwarded() {
        #expect(classify("ChangeConfiguration", #"{"key":"HeartbeatInterval","value":"300"}"#, .v1_6) == .forward)
    }

    @Test func anAuthorizationKeyChangeWithoutAStringValueIsForwarded() {
        #expect(classify("ChangeConfiguration", #"{"key":"AuthorizationKey"}"#, .v1_6) == .forward)
        #expect(classify("ChangeConfiguration", #"{"key":"AuthorizationKey","value":42}"#, .v1_6) == .forward)
    }

    @Test func aCentralSystemRootCertificateIn1_6IsRejected() {
        #expect(
            classify(
                "InstallCertificate", #"{"certificateType":"CentralSystemRootCertificate","certificate":"x"}"#, .v1_6)
                == .answer(Self.rejected))
    }

    @Test func aManufacturerRootCertificateIsForwardedInBothVersions() {
        let payload = #"{"certificateType":"ManufacturerRootCertificate","certificate":"x"}"#
        #expect(classify("InstallCertificate", payload, .v1_6) == .forward)
        #expect(classify("InstallCertificate", payload, .v2_0_1) == .forward)
    }

    @Test func the2_0_1ActionsAreForwardedUntouchedIn1_6() {
        #expect(classify("SetNetworkProfile", #"{"configurationSlot":1,"connectionData":{}}"#, .v1_6) == .forward)
        #expect(
            CredentialMessage.classify(
                action: "SetVariables", payload: .object(["setVariableData": .array([Self.password])]), version: .v1_6)
                == .forward)
    }

    @Test func aPayloadThatIsNotAnObjectIsForwarded() {
        #expect(
            CredentialMessage.classify(action: "ChangeConfiguration", payload: .array([]), version: .v1_6) == .forward)
        #expect(CredentialMessage.classify(action: "SetVariables", payload: .null, version: .v2_0_1) == .forward)
    }

    // MARK: 2.0.1

    @Test func aCSMSRootCertificateIn2_0_1IsRejected() {
        #expect(
            classify("InstallCertificate", #"{"certificateType":"CSMSRootCertificate","certificate":"x"}"#, .v2_0_1)
                == .answer(Self.rejected))
        // The 1.6 name means nothing in 2.0.1.
        #expect(
            classify(
                "InstallCertificate", #"{"certificateType":"CentralSystemRootCertificate","certificate":"x"}"#, .v2_0_1)
                == .forward)
        #expect(
            classify("InstallCertificate", #"{"certificateType":"V2GRootCertificate","certificate":"x"}"#, .v2_0_1)
                == .forward)
    }

    @Test func setNetworkProfileIn2_0_1IsRejected() {
        #expect(
            classify("SetNetworkProfile", #"{"configurationSlot":1,"connectionData":{}}"#, .v2_0_1)
                == .answer(Self.rejected))
    }

    @Test func changeConfigurationIn2_0_1IsForwarded() {
        #expect(classify("ChangeConfiguration", #"{"key":"AuthorizationKey","value":"x"}"#, .v2_0_1) == .forward)
    }

    @Test func aSetVariablesOfOnlyBasicAuthPasswordIsAPasswordChangeAnsweredWithItsResult() {
        let payload = JSONValue.object(["setVariableData": .array([Self.password])])
        #expect(
            CredentialMessage.classify(action: "SetVariables", payload: payload, version: .v2_0_1)
                == .changePassword(
                    "n3w-s3cret-passw0rd", answer: .object(["setVariableResult": .array([Self.passwordResult])])))
    }

    @Test func aMixedSetVariablesForwardsTheOtherItemsAndKeepsThePasswordsPosition() {
        let payload = JSONValue.object([
            "setVariableData": .array([Self.heartbeat, Self.password, Self.offline]),
            "customData": json(#"{"vendorId":"v"}"#),
        ])
        #expect(
            CredentialMessage.classify(action: "SetVariables", payload: payload, version: .v2_0_1)
                == .changePasswordAndForward(
                    "n3w-s3cret-passw0rd",
                    forward: .object([
                        "setVariableData": .array([Self.heartbeat, Self.offline]),
                        "customData": json(#"{"vendorId":"v"}"#),
                    ]),
                    ownResults: [1: Self.passwordResult]))
    }

    @Test func aSetVariablesWithoutBasicAuthPasswordIsForwarded() {
        let payload = JSONValue.object(["setVariableData": .array([Self.heartbeat, Self.offline])])
        #expect(CredentialMessage.classify(action: "SetVariables", payload: payload, version: .v2_0_1) == .forward)
    }

    @Test func aBasicAuthPasswordOfAnotherComponentIsForwarded() {
        let other = json(
            #"{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"x"}"#)
        let payload = JSONValue.object(["setVariableData": .array([other])])
        #expect(CredentialMessage.classify(action: "SetVariables", payload: payload, version: .v2_0_1) == .forward)
    }

    // MARK: merge

    @Test func mergePutsTheProxysResultBackAtItsRequestPosition() {
        let theirs = json(#"{"setVariableResult":[{"n":"a"},{"n":"c"}]}"#)
        #expect(
            CredentialMessage.merge([1: Self.passwordResult], into: theirs)
                == .object([
                    "setVariableResult": .array([json(#"{"n":"a"}"#), Self.passwordResult, json(#"{"n":"c"}"#)])
                ]))
    }

    @Test func mergeFillsOwnResultsAtTheEdges() {
        let first = json(#"{"own":0}"#)
        let last = json(#"{"own":2}"#)
        let theirs = json(#"{"setVariableResult":[{"n":"b"}],"customData":{"vendorId":"v"}}"#)
        #expect(
            CredentialMessage.merge([0: first, 2: last], into: theirs)
                == .object([
                    "setVariableResult": .array([first, json(#"{"n":"b"}"#), last]),
                    "customData": json(#"{"vendorId":"v"}"#),
                ]))
    }

    @Test func mergeIsNilWithoutASetVariableResult() {
        #expect(CredentialMessage.merge([0: Self.passwordResult], into: json(#"{"status":"Accepted"}"#)) == nil)
        #expect(CredentialMessage.merge([0: Self.passwordResult], into: json(#"{"setVariableResult":{}}"#)) == nil)
        #expect(CredentialMessage.merge([0: Self.passwordResult], into: .array([])) == nil)
    }
}

/// A state store whose password writes complete only when the test says so (or fail).
final class GatedStateStore: StateStore, @unchecked Sendable {
    private let eventLoop: EventLoop
    private(set) var writes: [(password: String, promise: EventLoopPromise<Void>)] = []

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func upstreamPasswords() -> EventLoopFuture<[UpstreamCredentialKey: String]> {
        eventLoop.makeSucceededFuture([:])
    }

    func setUpstreamPassword(_ password: String, for identity: ChargerIdentity, upstream: String)
        -> EventLoopFuture<Void>
    {
        let promise = eventLoop.makePromise(of: Void.self)
        writes.append((password, promise))
        return promise.futureResult
    }

    func translationState(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<ChainState> {
        eventLoop.makeSucceededFuture(ChainState())
    }

    func save(_ changes: [EdgeStateChange], for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    func queuedMessages(for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<[QueuedMessage]> {
        eventLoop.makeSucceededFuture([])
    }

    func routeOverrides() -> EventLoopFuture<[String: String]> { eventLoop.makeSucceededFuture([:]) }

    func setRouteOverride(_ upstream: String?, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    func enqueue(_ message: QueuedMessage, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(DiskFull())
    }

    func dequeue(sequence: Int64, for identity: ChargerIdentity, upstream: String) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(DiskFull())
    }

    func close() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
}

struct DiskFull: Error {}

@Suite("Credential stage on an embedded event loop")
struct CredentialStageTests {
    let loop = EmbeddedEventLoop()

    func stage(_ version: OCPPVersion, store: StateStore) throws -> (CredentialStage, UpstreamCredentials) {
        let identity = try ChargerIdentity("CP001")
        let configured = [
            identity: ChargerRegistration(
                identity: identity, securityProfile: 0, credential: nil, upstreamPassword: "configured-password",
                tolerance: nil)
        ]
        let credentials = UpstreamCredentials(configured: configured, persisted: [:], store: store)
        return (
            CredentialStage(context: try sessionContext(charger: version, loop: loop), credentials: credentials),
            credentials
        )
    }

    func fromCSMS(_ frame: RPCFrame) -> Frame { Frame(side: .csms, replacing: frame, allocator: ByteBufferAllocator()) }
    func fromCharger(_ frame: RPCFrame) -> Frame {
        Frame(side: .charger, replacing: frame, allocator: ByteBufferAllocator())
    }

    /// The verdict once every held step has completed.
    func settled(_ verdict: StageVerdict) throws -> StageVerdict {
        guard case .hold(let later) = verdict else { return verdict }
        loop.run()
        return try settled(later.wait())
    }

    func answers(_ verdict: StageVerdict) -> [(Side, RPCFrame?)]? {
        guard case .answer(let out) = verdict else { return nil }
        return out.map { ($0.side, rpcFrame($0)) }
    }

    @Test func anAuthorizationKeyChangeIsStoredThenAnsweredAcceptedInTheChargersPlace() async throws {
        let store = MemoryStateStore(eventLoop: loop)
        let (stage, credentials) = try stage(.v1_6, store: store)
        let verdict = try settled(
            stage.inbound(
                fromCSMS(
                    .call(
                        id: "k1", action: "ChangeConfiguration",
                        payload: json(#"{"key":"AuthorizationKey","value":"0123456789abcdef"}"#)))))
        let answer = try #require(answers(verdict))
        #expect(answer.count == 1)
        #expect(answer.first?.0 == .csms)
        #expect(answer.first?.1 == .callResult(id: "k1", payload: json(#"{"status":"Accepted"}"#)))
        #expect(credentials.password(for: try ChargerIdentity("CP001")) == "0123456789abcdef")
        #expect(
            try await store.upstreamPasswords().get() == [
                UpstreamCredentialKey(upstream: "default", identity: "CP001"): "0123456789abcdef"
            ])
    }

    @Test func theAcceptedAnswerWaitsUntilThePasswordIsDurable() throws {
        let store = GatedStateStore(eventLoop: loop)
        let (stage, credentials) = try stage(.v1_6, store: store)
        let identity = try ChargerIdentity("CP001")
        let verdict = stage.inbound(
            fromCSMS(
                .call(
                    id: "k1", action: "ChangeConfiguration",
                    payload: json(#"{"key":"AuthorizationKey","value":"0123456789abcdef"}"#))))
        guard case .hold(let later) = verdict else {
            Issue.record("expected the frame to be held, got \(verdict)")
            return
        }
        var decided: StageVerdict?
        later.whenSuccess { decided = $0 }
        loop.run()
        #expect(decided == nil)
        #expect(credentials.password(for: identity) == "configured-password")
        let write = try #require(store.writes.first)
        #expect(write.password == "0123456789abcdef")
        write.promise.succeed(())
        loop.run()
        let answer = try #require(decided.flatMap(answers))
        #expect(answer.first?.1 == .callResult(id: "k1", payload: json(#"{"status":"Accepted"}"#)))
        #expect(credentials.password(for: identity) == "0123456789abcdef")
    }

    @Test func aPasswordThatCannotBeStoredIsAnsweredInternalErrorAndNotUsed() throws {
        let store = GatedStateStore(eventLoop: loop)
        let (stage, credentials) = try stage(.v1_6, store: store)
        let verdict = stage.inbound(
            fromCSMS(
                .call(
                    id: "k1", action: "ChangeConfiguration",
                    payload: json(#"{"key":"AuthorizationKey","value":"0123456789abcdef"}"#))))
        try #require(store.writes.first).promise.fail(DiskFull())
        let answer = try #require(answers(try settled(verdict)))
        guard case .callError(let id, let code, _, _)? = answer.first?.1 else {
            Issue.record("expected a CALLERROR, got \(answer)")
            return
        }
        #expect(id == "k1")
        #expect(code == "InternalError")
        #expect(credentials.password(for: try ChargerIdentity("CP001")) == "configured-password")
    }

    @Test func aCSMSRootCertificateIsAnsweredRejectedAtOnce() throws {
        let (stage, _) = try stage(.v2_0_1, store: MemoryStateStore(eventLoop: loop))
        let verdict = stage.inbound(
            fromCSMS(
                .call(
                    id: "i1", action: "InstallCertificate",
                    payload: json(#"{"certificateType":"CSMSRootCertificate","certificate":"x"}"#))))
        let answer = try #require(answers(verdict))
        #expect(answer.first?.0 == .csms)
        #expect(answer.first?.1 == .callResult(id: "i1", payload: json(#"{"status":"Rejected"}"#)))
    }

    @Test func framesThatDoNotConcernCredentialsPassUnchanged() throws {
        let (stage, _) = try stage(.v1_6, store: MemoryStateStore(eventLoop: loop))
        let change = RPCFrame.call(
            id: "c1", action: "ChangeConfiguration", payload: json(#"{"key":"HeartbeatInterval","value":"60"}"#))
        // A charger never has its frames answered by this stage, whatever their action.
        for frame in [fromCSMS(change), fromCharger(change), fromCSMS(.callResult(id: "x", payload: json("{}")))] {
            // `.pass` carries no frame: the session forwards the one it has, unchanged.
            guard case .pass = stage.inbound(frame) else {
                Issue.record("expected \(frame.side) \(frame.type) to pass")
                continue
            }
        }
    }

    @Test func aMixedSetVariablesGoesOnWithoutThePasswordAndItsAnswerIsMergedBackInOrder() async throws {
        let store = MemoryStateStore(eventLoop: loop)
        let (stage, credentials) = try stage(.v2_0_1, store: store)
        let request = JSONValue.object([
            "setVariableData": .array([
                CredentialMessageTests.heartbeat, CredentialMessageTests.password, CredentialMessageTests.offline,
            ])
        ])
        let verdict = try settled(stage.inbound(fromCSMS(.call(id: "s1", action: "SetVariables", payload: request))))
        guard case .rewrite(let forwarded) = verdict else {
            Issue.record("expected the rest to pass on, rewritten, got \(verdict)")
            return
        }
        #expect(forwarded.side == .csms)
        #expect(
            forwarded.parsed
                == .call(
                    id: "s1", action: "SetVariables",
                    payload: .object([
                        "setVariableData": .array([CredentialMessageTests.heartbeat, CredentialMessageTests.offline])
                    ])))
        #expect(credentials.password(for: try ChargerIdentity("CP001")) == "n3w-s3cret-passw0rd")
        #expect(
            try await store.upstreamPasswords().get()[UpstreamCredentialKey(upstream: "default", identity: "CP001")]
                == "n3w-s3cret-passw0rd")

        // The charger answers the two items it saw; the CSMS gets three, in its own order.
        let first = json(
            #"{"attributeStatus":"Accepted","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}"#
        )
        let third = json(
            #"{"attributeStatus":"Rejected","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"OfflineThreshold"}}"#
        )
        let answer = Frame(
            side: .charger,
            replacing: .callResult(id: "s1", payload: .object(["setVariableResult": .array([first, third])])),
            allocator: ByteBufferAllocator())
        let merged = stage.outbound(.forward(answer))
        #expect(merged.side == .csms)
        #expect(
            rpcFrame(merged)
                == .callResult(
                    id: "s1",
                    payload: .object([
                        "setVariableResult": .array([first, CredentialMessageTests.passwordResult, third])
                    ])))
        // The results are used once: a second answer with the same id is not touched.
        let again = stage.outbound(.forward(answer))
        guard case .forwarded(let text) = again.content else {
            Issue.record("expected the frame's own bytes")
            return
        }
        #expect(text == answer.text)
    }

    @Test func aChargersSetVariablesAnswerWithoutResultsBecomesAProtocolError() throws {
        let (stage, _) = try stage(.v2_0_1, store: MemoryStateStore(eventLoop: loop))
        let request = JSONValue.object([
            "setVariableData": .array([CredentialMessageTests.heartbeat, CredentialMessageTests.password])
        ])
        _ = try settled(stage.inbound(fromCSMS(.call(id: "s1", action: "SetVariables", payload: request))))
        let out = stage.outbound(
            .forward(fromCharger(.callResult(id: "s1", payload: json(#"{"status":"Accepted"}"#)))))
        #expect(out.side == .csms)
        guard case .callError(let id, let code, _, _)? = rpcFrame(out) else {
            Issue.record("expected a CALLERROR, got \(String(describing: rpcFrame(out)))")
            return
        }
        #expect(id == "s1")
        #expect(code == "ProtocolError")
    }
}
