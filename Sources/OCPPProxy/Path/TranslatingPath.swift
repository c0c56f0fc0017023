import Foundation
import NIOCore
import OCPP
import OCPPRules

/// The path of a charger whose version differs from the CSMS's: every frame goes to the pure ``TranslationChain``
/// (one rule set, or several in a row: 1.5 → 1.6 → 2.0.1), whose state changes are stored before the frames that
/// depend on them go out, and whose CALLs time out after `limits.callTimeout`. Confined to the session's event loop.
final class TranslatingPath: FramePath {
    private let context: SessionContext
    /// The rule sets from the charger's version to the CSMS's, in order.
    let ruleSets: [RuleSet]
    private let tolerance: Tolerance
    private let profile: ChargerProfile
    private let store: StateStore
    private var engine: TranslationChain?
    /// Frames wait behind state writes, so that nothing overtakes the write it depends on.
    private var chain: EventLoopFuture<[Outgoing]>?
    private var writesInFlight = 0
    /// When each CALL the proxy sent times out, by the side it went to and its message id.
    private var deadlines: [PendingKey: NIODeadline] = [:]
    private var limit: PendingCallLimit

    private struct PendingKey: Hashable {
        let side: Side
        let id: String
    }

    init(
        context: SessionContext, ruleSets: [RuleSet], tolerance: Tolerance, profile: ChargerProfile,
        store: StateStore
    ) {
        precondition(!ruleSets.isEmpty, "a translating path needs a rule set")
        self.context = context
        self.ruleSets = ruleSets
        self.tolerance = tolerance
        self.profile = profile
        self.store = store
        self.limit = PendingCallLimit(maximum: context.limits.maxPendingCalls)
    }

    var readsPayloads: Bool { true }
    var translation: String? { ([version(of: .charger)] + ruleSets.map(\.to)).map(\.rawValue).joined(separator: " → ") }

    /// Reads the charger's translation state.
    func start() -> EventLoopFuture<Void> {
        store.translationState(for: context.identity, upstream: context.upstreamName).hop(to: context.eventLoop).map {
            [self] state in
            let prefix = String(UUID().uuidString.prefix(8).lowercased()) + "-"
            engine = TranslationChain(
                ruleSets: ruleSets, state: state, ids: RandomIdentifiers(), chargerTolerance: tolerance,
                messageIdPrefix: prefix, profile: profile, connectedAt: now)
        }
    }

    func awaitsAnswer(fromCharger id: String) -> Bool { deadlines[PendingKey(side: .charger, id: id)] != nil }

    var pendingCalls: (fromCharger: Int, fromCSMS: Int) {
        guard let engine else { return (0, 0) }
        let charger = engine.pendingCount(on: .charger)
        let csms = engine.pendingCount(on: .csms)
        return (csms.sent + csms.waiting, charger.sent + charger.waiting)
    }

    func admit(_ frame: Frame) -> [Outgoing]? {
        guard frame.type == .call, let engine else { return nil }
        // Exchanges started by this side that the proxy has not finished: their CALLs wait in the engine.
        let count = engine.exchangesInProgress(from: frame.side)
        if let refusal = limit.check(frame, count: count, context: context) {
            return refusal
        }
        context.metrics.frame(from: frame.side, type: .call, action: frame.action, version: version(of: frame.side))
        return nil
    }

    func receive(_ frame: Frame) -> Outbox {
        guard let engine, let parsed = frame.parsed else { return .empty }
        let side = frame.side
        let version = self.version(of: side)
        switch parsed {
        case .callResult(let id, _), .callError(let id, _, _, _):
            context.metrics.frame(from: side, type: frame.type, action: nil, version: version)
            deadlines.removeValue(forKey: PendingKey(side: side, id: id))
            if case .callError(_, let code, _, _) = parsed {
                context.metrics.callError(sender: side.rawValue, code: code, version: version)
            }
        default:
            break
        }
        return apply(engine.receive(parsed, from: side, now: now))
    }

    /// A malformed frame that answers one of the proxy's CALLs: its caller gets a ProtocolError now rather than an
    /// InternalError when the CALL times out.
    func receiveBrokenAnswer(id: String, from side: Side, description: String) -> Outbox {
        guard let engine else { return .empty }
        deadlines.removeValue(forKey: PendingKey(side: side, id: id))
        return apply(engine.receiveBrokenAnswer(id: id, from: side, description: description, now: now))
    }

    var nextDeadline: NIODeadline? { deadlines.values.min() }

    /// Answers the callers of every CALL past its deadline, earliest first.
    func expire(now deadline: NIODeadline) -> Outbox {
        guard let engine else { return .empty }
        let expired = deadlines.filter { $0.value <= deadline }.sorted { $0.value < $1.value }
        var frames: [Outgoing] = []
        var later: [EventLoopFuture<[Outgoing]>] = []
        for (key, _) in expired {
            deadlines.removeValue(forKey: key)
            context.metrics.callTimedOut(from: key.side.other)
            switch apply(engine.timedOut(side: key.side, messageId: key.id, now: now)) {
            case .one(let out): frames.append(out)
            case .now(let out): frames += out
            case .after(let future): later.append(future)
            }
        }
        guard let last = later.last else { return .now(frames) }
        // Every write is chained after the previous one: the last future completes after all of them.
        return .after(last.map { frames + $0 })
    }

    /// The arrival time rules see as now(), to the second; formatted once per second, not per frame.
    private var now: String {
        let seconds = context.wallClock()
        if seconds != nowCache.seconds { nowCache = (seconds, DateTimeText(seconds: seconds).utcText) }
        return nowCache.text
    }
    private var nowCache: (seconds: Int64, text: String) = (0, "")

    private func apply(_ output: ChainOutput) -> Outbox {
        for (side, action) in output.answered { context.metrics.translationAnswered(from: side, action: action) }
        for entry in output.logs {
            context.metrics.translationProblem(level: entry.level.rawValue)
            switch entry.level {
            case .warning: context.logger.warning("\(entry.message)")
            case .error: context.logger.error("\(entry.message)")
            }
        }
        let frames = output.frames
        if output.changes.isEmpty && writesInFlight == 0 {
            return .now(outgoing(frames))
        }
        writesInFlight += 1
        let changes = output.changes
        let store = self.store
        let identity = context.identity
        let upstream = context.upstreamName
        let eventLoop = context.eventLoop
        let previous = chain ?? eventLoop.makeSucceededFuture([])
        let next = previous.flatMap { _ in
            changes.isEmpty
                ? eventLoop.makeSucceededVoidFuture()
                : store.save(changes, for: identity, upstream: upstream).hop(to: eventLoop)
        }.map { [self] () -> [Outgoing] in
            writesInFlight -= 1
            return outgoing(frames)
        }
        chain = next
        return .after(next)
    }

    /// The engine's frames as the session sends them; CALLs get their deadline when they are handed over.
    private func outgoing(_ frames: [OutgoingFrame]) -> [Outgoing] {
        frames.map { outgoing in
            let side = outgoing.side
            switch outgoing.frame {
            case .call(let id, let action, _):
                context.metrics.frame(from: side.other, type: .call, action: action, version: version(of: side))
                deadlines[PendingKey(side: side, id: id)] = context.eventLoop.now + context.limits.callTimeout
            case .callError(_, let code, _, _):
                // A CALLERROR relayed from the peer was counted when it arrived; count only the proxy's own.
                if !outgoing.relayed {
                    context.metrics.callError(sender: "proxy", code: code, version: version(of: side))
                }
            default:
                break
            }
            return .frame(outgoing.frame, to: side, relayed: outgoing.relayed)
        }
    }

    private func version(of side: Side) -> OCPPVersion {
        side == .charger ? ruleSets[0].from : ruleSets[ruleSets.count - 1].to
    }
}
