import OCPP

/// What handling one frame produced along a chain: frames for the charger and the CSMS in this order, after the
/// state changes of every edge are persisted.
public struct ChainOutput: Sendable {
    public var frames: [OutgoingFrame] = []
    public var changes: [EdgeStateChange] = []
    public var logs: [TranslationLog] = []
    /// CALLs a rule answered itself, on any edge: who sent them (to that edge) and their action.
    public var answered: [(from: Side, action: String)] = []
}

/// A charger and a CSMS whose versions no single rule set joins, translated through a path of rule sets (1.5 → 1.6
/// → 2.0.1): one ``TranslationSession`` per edge, each with its own state, exchanges and message ids. A frame from
/// the charger goes through the edges in order, one from the CSMS in reverse; what an edge sends toward its
/// neighbour is that neighbour's input, so answers come back through the same edges. A CALL an edge answers
/// itself (in the peer's place) goes no further. A chain of one edge is that rule set's session, unchanged.
///
/// Pure like the sessions it drives: time and ids come in as arguments.
public final class TranslationChain {
    public let ruleSets: [RuleSet]
    private let sessions: [TranslationSession]
    private let edgeNames: [String]

    /// `ruleSets` must join up: each one's `to` is the next one's `from` (``RuleLibrary/chain(charger:csms:)``
    /// finds such a path). The charger's tolerance applies to the first edge only: the later ones read frames the
    /// proxy wrote.
    public init(
        ruleSets: [RuleSet], state: ChainState, ids: IdentifierSource, chargerTolerance: Tolerance = .strict,
        messageIdPrefix: String, profile: ChargerProfile = ChargerProfile(), connectedAt: String? = nil
    ) {
        precondition(!ruleSets.isEmpty, "a chain has at least one rule set")
        self.ruleSets = ruleSets
        self.edgeNames = ruleSets.indices.map { Self.edgeName(ruleSets, $0) }
        self.sessions = ruleSets.indices.map { index in
            TranslationSession(
                rules: ruleSets[index], state: state[edge: Self.edgeName(ruleSets, index)], ids: ids,
                chargerTolerance: index == 0 ? chargerTolerance : .strict,
                // Edge 0 keeps the prefix a single rule set had; inner ids are never seen by a peer but read in logs.
                messageIdPrefix: index == 0 ? messageIdPrefix : messageIdPrefix + "\(index).", profile: profile,
                connectedAt: connectedAt)
        }
    }

    /// The name an edge's state is stored under: "" for the first (the charger's own edge, so that a single rule
    /// set's state keeps the keys it always had), `<from>-<to>` for the others.
    public static func edgeName(_ ruleSets: [RuleSet], _ index: Int) -> String {
        index == 0 ? "" : "\(ruleSets[index].from.rawValue)-\(ruleSets[index].to.rawValue)"
    }

    public var from: OCPPVersion { ruleSets[0].from }
    public var to: OCPPVersion { ruleSets[ruleSets.count - 1].to }

    public func version(of side: Side) -> OCPPVersion { side == .charger ? from : to }

    /// `ocpp1.5 → ocpp1.6 → ocpp2.0.1`
    public var description: String {
        ([from] + ruleSets.map(\.to)).map(\.rawValue).joined(separator: " → ")
    }

    /// The state of every edge, by edge name.
    public var state: ChainState {
        var state = ChainState()
        for (index, session) in sessions.enumerated() { state[edge: edgeNames[index]] = session.state }
        return state
    }

    /// The session on `side`'s end of the chain: the one that talks to that peer.
    private func outer(_ side: Side) -> Int { side == .charger ? 0 : sessions.count - 1 }

    /// CALLs the proxy has sent to `side` and not had answered (0 or 1), and CALLs waiting behind it.
    public func pendingCount(on side: Side) -> (sent: Int, waiting: Int) {
        sessions[outer(side)].pendingCount(on: side)
    }

    /// Exchanges `side`'s CALLs started that are not finished. The inner edges' exchanges belong to these: each
    /// is a step of one of them.
    public func exchangesInProgress(from side: Side) -> Int {
        sessions[outer(side)].exchangesInProgress(from: side)
    }

    /// The side the proxy sent CALL `messageId` to, while it awaits the answer.
    public func side(awaiting messageId: String) -> Side? {
        for side in [Side.charger, .csms] where sessions[outer(side)].side(awaiting: messageId) == side {
            return side
        }
        return nil
    }

    // MARK: Input

    /// Handles one frame `side` sent; `now` is its arrival time as RFC 3339 UTC text.
    public func receive(_ frame: RPCFrame, from side: Side, now: String) -> ChainOutput {
        let edge = outer(side)
        return route(sessions[edge].receive(frame, from: side, now: now), from: edge, now: now)
    }

    /// A frame from `side` that answers the proxy's CALL `messageId` but is not a well-formed RPC frame.
    public func receiveBrokenAnswer(id: String, from side: Side, description: String, now: String) -> ChainOutput {
        let edge = outer(side)
        return route(
            sessions[edge].receiveBrokenAnswer(id: id, from: side, description: description, now: now), from: edge,
            now: now)
    }

    /// The CALL `messageId` the proxy sent to `side` got no answer in time. Inner edges' CALLs never time out on
    /// their own: they are answered when the outer CALL is (an error included).
    public func timedOut(side: Side, messageId: String, now: String) -> ChainOutput {
        let edge = outer(side)
        return route(sessions[edge].timedOut(side: side, messageId: messageId, now: now), from: edge, now: now)
    }

    // MARK: Routing

    private func route(_ output: TranslationOutput, from edge: Int, now: String) -> ChainOutput {
        var result = ChainOutput()
        deliver(output, from: edge, now: now, into: &result)
        return result
    }

    /// Collects what edge `edge` produced and hands each frame that goes toward a neighbouring edge to that edge as
    /// its input, depth first, so that frames leave the chain in the order their causes arrived.
    private func deliver(_ output: TranslationOutput, from edge: Int, now: String, into result: inout ChainOutput) {
        result.changes += output.changes.map { EdgeStateChange(edge: edgeNames[edge], change: $0) }
        result.answered += output.answered
        if sessions.count == 1 {
            result.logs += output.logs
        } else {
            let label = "[\(ruleSets[edge].from) → \(ruleSets[edge].to)] "
            result.logs += output.logs.map { TranslationLog(level: $0.level, message: label + $0.message) }
        }
        for outgoing in output.frames {
            let next = outgoing.side == .csms ? edge + 1 : edge - 1
            guard sessions.indices.contains(next) else {
                result.frames.append(outgoing)
                continue
            }
            var inner = sessions[next].receive(outgoing.frame, from: outgoing.side.other, now: now)
            // A CALLERROR an edge made itself stays the proxy's own as later edges pass it on.
            if case .callError = outgoing.frame, !outgoing.relayed {
                for index in inner.frames.indices { inner.frames[index].relayed = false }
            }
            deliver(inner, from: next, now: now, into: &result)
        }
    }
}

/// One edge's state change, under the key a state store keeps it.
public struct EdgeStateChange: Sendable, Equatable {
    /// ``TranslationChain/edgeName(_:_:)``: "" for the charger's own edge.
    public var edge: String
    public var change: StateChange

    public init(edge: String, change: StateChange) {
        self.edge = edge
        self.change = change
    }

    /// The store key: the change's own key, after `<edge>/` for any edge but the first. Keys of the first edge are
    /// those a single rule set always wrote, so state stored before chains existed reads back unchanged.
    public var key: String { edge.isEmpty ? change.key : "\(edge)/\(change.key)" }

    /// Reads back a stored row: its key (for the edge) and its value (``StateChange/json``).
    public init?(key: String, json: JSONValue) {
        guard let change = StateChange(json: json) else { return nil }
        // Edge names start with the version name; no key of a change does.
        if key.hasPrefix("ocpp"), let slash = key.firstIndex(of: "/") {
            self.init(edge: String(key[..<slash]), change: change)
        } else {
            self.init(edge: "", change: change)
        }
    }
}

/// What a chain remembers about one charger: each edge's ``TranslationState``, by edge name.
public struct ChainState: Sendable, Equatable {
    public var edges: [String: TranslationState] = [:]

    public init() {}

    /// The state of one edge alone (a single rule set's state is edge "").
    public init(_ state: TranslationState) { edges[""] = state }

    public subscript(edge edge: String) -> TranslationState {
        get { edges[edge] ?? TranslationState() }
        set { edges[edge] = newValue }
    }

    public mutating func apply(_ change: EdgeStateChange) {
        self[edge: change.edge].apply(change.change)
    }
}
