import Foundation
import Logging
import NIOCore
import OCPP
import OCPPRules

/// The translating path of a ``ChargerSession``: hands every frame to the pure ``TranslationSession``,
/// persists the state changes it produces before sending the frames that depend on them, and times out the
/// CALLs the proxy sends. Confined to the session's event loop.
final class TranslationLink {
    private unowned let session: ChargerSession
    let ruleSet: RuleSet
    private let tolerance: Tolerance
    private let store: StateStore
    private var engine: TranslationSession?
    /// Frames that arrived before the charger's state was read.
    private var waiting: [(RPCFrame, LinkSide)] = []
    /// Sends wait behind state writes so that nothing overtakes the write it depends on.
    private var chain: EventLoopFuture<Void>
    private var writesInFlight = 0
    /// When each CALL the proxy sent times out, by the side it went to and its message id.
    private var deadlines: [PendingKey: NIODeadline] = [:]
    /// One timer per link, armed for the earliest deadline while there are any. A timer per CALL would cost a
    /// cancellation per answer, and NIO cancels by searching every task scheduled on the event loop (the
    /// keepalive timers of all its chargers among them).
    private var sweep: Scheduled<Void>?

    private struct PendingKey: Hashable {
        let side: LinkSide
        let id: String
    }
    /// Results the proxy answered itself for part of a CSMS's CALL (SetVariables with BasicAuthPassword).
    private var ownResults: [String: [Int: JSONValue]] = [:]
    private var failed = false

    init(session: ChargerSession, ruleSet: RuleSet, tolerance: Tolerance, store: StateStore) {
        self.session = session
        self.ruleSet = ruleSet
        self.tolerance = tolerance
        self.store = store
        self.chain = session.eventLoop.makeSucceededVoidFuture()
    }

    /// Reads the charger's translation state; frames received meanwhile are handled once it is there.
    func start() {
        store.translationState(for: session.identity).hop(to: session.eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let state):
                let prefix = String(UUID().uuidString.prefix(8).lowercased()) + "-"
                engine = TranslationSession(
                    rules: ruleSet, state: state, ids: RandomIdentifiers(), chargerTolerance: tolerance,
                    messageIdPrefix: prefix)
                let frames = waiting
                waiting = []
                for (frame, side) in frames { handle(frame, from: side) }
            case .failure(let error):
                fail("cannot read the charger's translation state: \(error)")
            }
        }
    }

    var pending: (fromCharger: Int, fromCSMS: Int) {
        guard let engine else { return (0, 0) }
        let charger = engine.pendingCount(on: .charger)
        let csms = engine.pendingCount(on: .csms)
        return (csms.sent + csms.waiting, charger.sent + charger.waiting)
    }

    func handle(_ frame: RPCFrame, from side: LinkSide) {
        guard !failed else { return }
        guard let engine else {
            // Before the state is read no CALL of the proxy is out, so only CALLs can be waiting for the engine.
            if case .call(let id, let action, _) = frame {
                if waiting.count(where: { $0.1 == side }) >= session.limits.maxPendingCalls {
                    session.refuseBeyondPendingLimit(id: id, action: action, from: side)
                    return
                }
                waiting.append((frame, side))
            } else {
                session.metrics.unmatchedResponse(from: side)
            }
            return
        }
        let version = side == .charger ? ruleSet.from : ruleSet.to
        switch frame {
        case .call(let id, let action, let payload):
            // Exchanges started by this side that the proxy has not finished: their CALLs wait in the engine.
            if engine.exchangesInProgress(from: RuleSide(side)) >= session.limits.maxPendingCalls {
                session.refuseBeyondPendingLimit(id: id, action: action, from: side)
                return
            }
            session.countFrame(from: side, type: .call, action: action, version: version)
            if side == .csms, session.credentials != nil {
                switch CredentialMessage.classify(action: action, payload: payload, version: version) {
                case .forward:
                    break
                case .changePasswordAndForward(let password, let forwarded, let own):
                    session.storePassword(password, id: id, action: action) { [self] in
                        ownResults[id] = own
                        apply(engine.receive(.call(id: id, action: action, payload: forwarded), from: .csms, now: now))
                    }
                    return
                case let message:
                    session.terminate(id: id, action: action, message, now: .now())
                    return
                }
            }
        case .callResult(let id, _), .callError(let id, _, _, _):
            session.countFrame(from: side, type: frame.messageType, action: nil, version: version)
            deadlines.removeValue(forKey: PendingKey(side: side, id: id))
            if case .callError(_, let code, _, _) = frame {
                session.metrics.callError(sender: side.rawValue, code: code, version: version)
            }
        default:
            break
        }
        apply(engine.receive(frame, from: RuleSide(side), now: now))
    }

    /// A malformed frame that answers one of the proxy's CALLs: its caller gets a ProtocolError now rather than
    /// an InternalError when the CALL times out.
    func brokenAnswer(id: String, from side: LinkSide, description: String) {
        guard let engine, !failed else { return }
        deadlines.removeValue(forKey: PendingKey(side: side, id: id))
        apply(engine.receiveBrokenAnswer(id: id, from: RuleSide(side), description: description, now: now))
    }

    /// The arrival time rules see as now(), to the second; formatted once per second, not per frame.
    private var now: String {
        let seconds = Int64(Date().timeIntervalSince1970)
        if seconds != nowCache.seconds { nowCache = (seconds, DateTimeText(seconds: seconds).utcText) }
        return nowCache.text
    }
    private var nowCache: (seconds: Int64, text: String) = (0, "")

    private func apply(_ output: TranslationOutput) {
        for entry in output.logs {
            session.metrics.translationProblem(level: entry.level.rawValue)
            switch entry.level {
            case .warning: session.logger.warning("\(entry.message)")
            case .error: session.logger.error("\(entry.message)")
            }
        }
        let frames = output.frames
        if output.changes.isEmpty && writesInFlight == 0 {
            send(frames)
            return
        }
        writesInFlight += 1
        let changes = output.changes
        let store = self.store
        let identity = session.identity
        let eventLoop = session.eventLoop
        chain = chain.flatMap {
            changes.isEmpty
                ? eventLoop.makeSucceededVoidFuture() : store.save(changes, for: identity).hop(to: eventLoop)
        }.map { [self] in
            writesInFlight -= 1
            send(frames)
        }
        chain.whenFailure { [self] error in
            fail("cannot persist translation state: \(error)")
        }
    }

    private func send(_ frames: [OutgoingFrame]) {
        guard !failed else { return }
        for outgoing in frames {
            let side = LinkSide(outgoing.side)
            var frame = outgoing.frame
            if side == .csms, case .callResult(let id, let payload) = frame,
                let own = ownResults.removeValue(forKey: id)
            {
                frame = .callResult(id: id, payload: CredentialMessage.merge(own, into: payload) ?? payload)
            }
            switch frame {
            case .call(let id, let action, _):
                session.countFrame(from: side.other, type: .call, action: action, version: version(of: side))
                let deadline = NIODeadline.now() + session.limits.callTimeout
                deadlines[PendingKey(side: side, id: id)] = deadline
                if sweep == nil { armSweep(at: deadline) }
            case .callError(_, let code, _, _):
                // A CALLERROR relayed from the peer was counted when it arrived; count only the proxy's own.
                if !outgoing.relayed {
                    session.metrics.callError(sender: "proxy", code: code, version: version(of: side))
                }
            default:
                break
            }
            session.link(side).send(utf8: frame.json.wireBytes)
        }
    }

    private func version(of side: LinkSide) -> OCPPVersion { side == .charger ? ruleSet.from : ruleSet.to }

    /// State that cannot be read or written makes translation unsafe: the session ends rather than guess.
    private func fail(_ message: String) {
        guard !failed else { return }
        failed = true
        session.logger.error("\(message); closing the session")
        session.close(code: .unexpectedServerError, reason: "state_store", text: "proxy state store unavailable")
    }

    private func armSweep(at deadline: NIODeadline) {
        sweep = session.eventLoop.scheduleTask(deadline: deadline) { [self] in
            sweep = nil
            timeOutExpiredCalls()
        }
    }

    /// Answers the callers of every CALL past its deadline (earliest first), then waits for the next deadline.
    private func timeOutExpiredCalls() {
        let now = NIODeadline.now()
        let expired = deadlines.filter { $0.value <= now }.sorted { $0.value < $1.value }
        for (key, _) in expired {
            deadlines.removeValue(forKey: key)
            guard let engine, !failed else { continue }
            session.metrics.callTimedOut(from: key.side.other)
            apply(engine.timedOut(side: RuleSide(key.side), messageId: key.id, now: self.now))
        }
        if sweep == nil, let next = deadlines.values.min() { armSweep(at: next) }
    }

    func stop() {
        sweep?.cancel()
        sweep = nil
        deadlines = [:]
    }
}

extension RuleSide {
    init(_ side: LinkSide) { self = side == .charger ? .charger : .csms }
}

extension LinkSide {
    init(_ side: RuleSide) { self = side == .charger ? .charger : .csms }
}
