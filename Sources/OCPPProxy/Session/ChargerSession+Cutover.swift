import Logging
import NIOCore
import NIOWebSocket
import OCPP

/// What a session needs to move to another upstream: its context and path toward that CSMS (its version, its
/// translation state), and how to reopen its link after an outage.
struct CutoverTarget {
    var upstream: Upstream
    var route: Route
    var context: SessionContext
    var path: FramePath
    var reconnector: UpstreamReconnector?
}

/// A session's cutover to another upstream (`PUT /api/chargers/{identity}/route`, a route reloaded on SIGHUP) and what
/// it needs to know of the charger for one: its last BootNotification, its latest StatusNotification per connector,
/// and which transactions are open on the current upstream.
struct CutoverState {
    /// One CSMS link of the session besides its own: the new one being prepared, or the old one draining.
    struct Leg {
        var upstream: String
        var link: FrameLink
        var path: FramePath
        var context: SessionContext
    }

    /// The new upstream while its link opens and the charger's boot and statuses are replayed to it; the charger's
    /// CALLs still go to the old one meanwhile.
    struct Incoming {
        var target: CutoverTarget
        var link: FrameLink?
        /// What is still to be replayed, in order.
        var replay: [Frame] = []
        /// The message id of the replayed CALL awaiting its answer.
        var replayId: String?
        /// CALLs the new CSMS sent before the switch: delivered to the charger right after it.
        var held: [ByteBuffer] = []
        /// Failed attempts so far (the wait before the next doubles).
        var attempts = 0
    }

    var incoming: Incoming?
    /// The old upstream after the switch, kept until the transactions that started on it have ended.
    var draining: (leg: Leg, transactions: Set<String>)?
    /// Transactions open on the session's current upstream, by the id the charger uses.
    private(set) var open: Set<String> = []
    /// 1.x StartTransaction CALLs awaiting their answer (it carries the transaction id).
    private var startCalls: Set<String> = []
    private(set) var boot: Frame?
    /// The latest StatusNotification per connector, in the order connectors were first seen, as of the last
    /// ``settleStatuses(version:)``.
    private var settled: [(key: String, frame: Frame)] = []
    /// StatusNotifications since then, not yet read: a status costs no parse on its way through, only every
    /// ``unsettledLimit`` of them (and a cutover) read their connectors.
    private var unsettled: [Frame] = []
    private static let unsettledLimit = 32
    var replayed: UInt64 = 0

    func isReplayAnswer(_ frame: Outgoing) -> Bool {
        guard let id = incoming?.replayId else { return false }
        return frame.messageId == id && frame.type != .call
    }

    /// The earliest deadline of any of the session's paths.
    func earliest(_ primary: NIODeadline?) -> NIODeadline? {
        [primary, draining?.leg.path.nextDeadline, incoming?.target.path.nextDeadline].compactMap { $0 }.min()
    }

    /// A charger CALL on its way to a path: what a cutover needs to remember of it.
    mutating func track(_ frame: Frame, version: OCPPVersion) {
        guard frame.type == .call, let action = frame.action else { return }
        switch (action, version.isTwoX) {
        case ("BootNotification", _):
            boot = frame
        case ("StatusNotification", _):
            unsettled.append(frame)
            if unsettled.count >= Self.unsettledLimit { settleStatuses(version: version) }
        case ("StartTransaction", false):
            startCalls.insert(frame.messageId)
        case ("StopTransaction", false):
            if let id = Self.transactionId(of: frame, version: version) { ended(id) }
        case ("TransactionEvent", true):
            // Updated events, the common ones, are not read: only a Started or an Ended changes what is open.
            let mentions =
                frame.text.readableBytesView.containsSubsequence(Self.started)
                || frame.text.readableBytesView.containsSubsequence(Self.ended)
            guard mentions, case .object(let payload)? = frame.payload,
                case .string(let event)? = payload["eventType"],
                let id = Self.transactionId(of: frame, version: version)
            else { return }
            if event == "Started", draining?.transactions.contains(id) != true { open.insert(id) }
            if event == "Ended" { ended(id) }
        default:
            return
        }
    }

    /// The latest StatusNotification per connector, in the order connectors were first seen.
    mutating func statuses(version: OCPPVersion) -> [Frame] {
        settleStatuses(version: version)
        return settled.map(\.frame)
    }

    private mutating func settleStatuses(version: OCPPVersion) {
        for frame in unsettled {
            let key = Self.connectorKey(frame.payload, version: version)
            if let index = settled.firstIndex(where: { $0.key == key }) {
                settled[index].frame = frame
            } else {
                settled.append((key, frame))
            }
        }
        unsettled.removeAll(keepingCapacity: true)
    }

    private mutating func ended(_ id: String) {
        open.remove(id)
        draining?.transactions.remove(id)
    }

    /// An answer on its way to the charger: a 1.x StartTransaction's gives the transaction's id, open on the upstream
    /// that answered (the old one when it answers from its draining link).
    mutating func answered(_ frame: Outgoing, version: OCPPVersion, byDraining: Bool) {
        guard !startCalls.isEmpty, startCalls.remove(frame.messageId) != nil, frame.type == .callResult,
            case .callResult(_, .object(let payload))? = frame.rpc(version: version),
            case .integer(let id)? = payload["transactionId"]
        else { return }
        if byDraining {
            draining?.transactions.insert(String(id))
        } else {
            open.insert(String(id))
        }
    }

    /// The transaction a charger's CALL belongs to, as the charger names it: a 1.x MeterValues' or StopTransaction's
    /// `transactionId`, a 2.x TransactionEvent's `transactionInfo.transactionId`.
    static func transactionId(of frame: Frame, version: OCPPVersion) -> String? {
        guard case .object(let payload)? = frame.payload else { return nil }
        if version.isTwoX {
            guard frame.action == "TransactionEvent", case .object(let info)? = payload["transactionInfo"],
                case .string(let id)? = info["transactionId"]
            else { return nil }
            return id
        }
        guard frame.action == "MeterValues" || frame.action == "StopTransaction",
            case .integer(let id)? = payload["transactionId"]
        else { return nil }
        return String(id)
    }

    private static func connectorKey(_ payload: JSONValue?, version: OCPPVersion) -> String {
        guard case .object(let fields)? = payload else { return "?" }
        func text(_ value: JSONValue?) -> String {
            if case .integer(let number)? = value { return String(number) }
            return "?"
        }
        return version.isTwoX ? "\(text(fields["evseId"]))/\(text(fields["connectorId"]))" : text(fields["connectorId"])
    }

    private static let started = Array(#""Started""#.utf8)
    private static let ended = Array(#""Ended""#.utf8)
}

extension Collection where Element == UInt8 {
    /// Whether `needle` occurs in the bytes (a plain scan: the frames are small).
    fileprivate func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard let first = needle.first, count >= needle.count else { return false }
        var index = startIndex
        while let found = self[index...].firstIndex(of: first) {
            if self[found...].starts(with: needle) { return true }
            index = self.index(after: found)
        }
        return false
    }
}

/// The events of a session's second CSMS link during a cutover: the new one before the switch, the old one after.
final class CutoverLinkEvents: LinkEvents {
    enum Role { case incoming, draining }

    weak var session: ChargerSession?
    let role: Role
    let logger: Logger

    init(session: ChargerSession, role: Role) {
        self.session = session
        self.role = role
        self.logger = session.logger
    }

    func received(text: ByteBuffer, from side: Side) { session?.cutoverLinkReceived(text, role: role) }

    func receivedBinary(from side: Side) { session?.cutoverLinkBinary(role: role) }

    func linkClosed(_ side: Side, peerCode: WebSocketErrorCode?, reason: String?) {
        session?.cutoverLinkClosed(role: role, peerCode: peerCode, reason: reason)
    }

    func writabilityChanged() {}
}

extension ChargerSession {
    /// The path (and, when it is not the session's own, the CSMS link) a frame goes to. An answer of the charger goes
    /// to the path that sent the CALL; a charger CALL of a transaction that started on the old upstream goes there.
    func leg(for frame: Frame) -> (path: FramePath, link: FrameLink?) {
        guard frame.side == .charger else { return (path, nil) }
        if frame.type != .call {
            if path.awaitsAnswer(fromCharger: frame.messageId) { return (path, nil) }
            if let incoming = cutover.incoming, let link = incoming.link,
                incoming.target.path.awaitsAnswer(fromCharger: frame.messageId)
            {
                return (incoming.target.path, link)
            }
            if let draining = cutover.draining, draining.leg.path.awaitsAnswer(fromCharger: frame.messageId) {
                return (draining.leg.path, draining.leg.link)
            }
            return (path, nil)
        }
        if let draining = cutover.draining, !draining.transactions.isEmpty,
            let id = CutoverState.transactionId(of: frame, version: context.chargerVersion),
            draining.transactions.contains(id)
        {
            return (draining.leg.path, draining.leg.link)
        }
        return (path, nil)
    }

    // MARK: Starting

    /// Moves the charger to `upstream` without closing its connection: the new link is opened, the charger's last
    /// BootNotification and latest StatusNotification per connector are replayed to it (their answers stay with the
    /// proxy), then new CALLs go there; transactions open on the old upstream stay there until they end.
    func cutOver(to upstream: Upstream, route: Route) {
        eventLoop.assertInEventLoop()
        guard !finished, !failed else { return }
        if upstream.name == context.upstreamName {
            // Back where it is (a cutover abandoned): the route's reason may have changed.
            abandonIncoming(reason: "route_changed")
            self.route = route
            return
        }
        if cutover.incoming?.target.upstream.name == upstream.name { return }
        guard let target = makeCutover?(upstream, route) else {
            logger.error(
                "cannot move this charger to upstream \(upstream.name): it speaks \(upstream.configuration.version) and no rules translate \(context.chargerVersion) to it"
            )
            return
        }
        abandonIncoming(reason: "route_changed")
        cutover.incoming = CutoverState.Incoming(target: target)
        logger.notice(
            "moving the charger to upstream \(upstream.name) without reconnecting it",
            metadata: ["from": "\(context.upstreamName)", "to": "\(upstream.name)"])
        recordCutover("started", to: upstream.name)
        openIncoming()
    }

    private func openIncoming() {
        guard let incoming = cutover.incoming else { return }
        let upstream = incoming.target.upstream
        guard let opened = upstream.pacedConnect(identity, on: eventLoop) else { return retryIncoming("paced") }
        let started = incoming.target.path.start().hop(to: eventLoop)
        opened.hop(to: eventLoop).and(started).whenComplete { [self] result in
            switch result {
            case .success(let (link, _)):
                guard !finished, cutover.incoming?.target.upstream.name == upstream.name,
                    cutover.incoming?.link == nil
                else {
                    return link.close(code: .normalClosure, reason: "cutover_abandoned", text: "route changed")
                }
                link.events = CutoverLinkEvents(session: self, role: .incoming)
                cutover.incoming?.link = link
                let replay = [cutover.boot].compactMap { $0 } + cutover.statuses(version: context.chargerVersion)
                cutover.incoming?.replay = replay
                replayNext()
            case .failure(let error):
                opened.whenSuccess { $0.close(code: .normalClosure, reason: "cutover_failed", text: "cutover failed") }
                retryIncoming("\(UpstreamFailure.classify(error))")
            }
        }
    }

    /// The new CSMS could not be linked: the charger stays where it is, and the proxy tries again (1 s doubling to
    /// 30 s) while the route still says so.
    private func retryIncoming(_ why: String) {
        guard !finished, var incoming = cutover.incoming else { return }
        incoming.attempts += 1
        incoming.link = nil
        cutover.incoming = incoming
        let name = incoming.target.upstream.name
        let delay = TimeAmount.seconds(Int64(min(30, 1 << min(incoming.attempts - 1, 5))))
        logger.warning(
            "cannot link the charger to upstream \(name) yet: \(why); it stays on \(context.upstreamName), next try in \(delay.nanoseconds / 1_000_000_000) s"
        )
        recordCutover("failed", to: name, reason: why)
        context.metrics.proxy.cutover("failed", upstream: name)
        eventLoop.scheduleTask(in: delay) { [self] in
            guard cutover.incoming?.target.upstream.name == name, cutover.incoming?.link == nil else { return }
            openIncoming()
        }
    }

    private func abandonIncoming(reason: String) {
        guard let incoming = cutover.incoming else { return }
        cutover.incoming = nil
        incoming.link?.events = nil
        incoming.link?.close(code: .normalClosure, reason: reason, text: "route changed")
    }

    // MARK: Replaying the charger's boot and statuses

    /// Sends the next replayed CALL to the new CSMS, or switches once none is left.
    func replayNext() {
        guard var incoming = cutover.incoming, let link = incoming.link else { return }
        guard !incoming.replay.isEmpty else { return switchOver() }
        let original = incoming.replay.removeFirst()
        cutover.replayed &+= 1
        let id = "cutover-\(cutover.replayed)"
        let parsed =
            original.parsed
            ?? (try? RPCFrame.parse(original.text.readableBytesView, version: context.chargerVersion).get())
        guard case .call(_, let action, let payload)? = parsed else {
            cutover.incoming = incoming
            return replayNext()
        }
        let call = RPCFrame.call(id: id, action: action, payload: payload)
        let frame = Frame(
            side: .charger, parsed: call, text: ByteBuffer(bytes: call.json.wireBytes), arrived: eventLoop.now)
        incoming.replayId = id
        cutover.incoming = incoming
        let path = incoming.target.path
        if path.admit(frame) != nil {
            cutover.incoming?.replayId = nil
            return replayNext()
        }
        deliver(path.receive(frame), cause: nil, csms: link)
        // A CSMS that never answers does not hold the cutover: the next replayed CALL goes after callTimeout.
        eventLoop.scheduleTask(in: context.limits.callTimeout) { [self] in
            guard cutover.incoming?.replayId == id else { return }
            cutover.incoming?.replayId = nil
            replayNext()
        }
    }

    /// The new CSMS answered a replayed CALL; its answer is the proxy's and goes no further.
    func replayAnswered(_ frame: Outgoing) {
        cutover.incoming?.replayId = nil
        replayNext()
    }

    // MARK: The switch

    /// New CALLs go to the new upstream from now on; the old link stays for the transactions that started on it.
    private func switchOver() {
        guard let incoming = cutover.incoming, let link = incoming.link else { return }
        let target = incoming.target
        let old = CutoverState.Leg(upstream: context.upstreamName, link: upstream, path: path, context: context)
        // A link already lost (an outage) keeps nothing: what is left of its transactions goes to the new CSMS.
        let transactions = upstream.state == .open ? cutover.open : []
        cutover.incoming = nil
        cutover.resetOpen()
        outage?.end()
        upstream = link
        path = target.path
        context = target.context
        route = target.route
        outage = target.reconnector.map { UpstreamOutage(reconnector: $0, context: target.context, host: self) }
        link.events = self
        for stage in stages { stage.upstreamChanged(target.context) }
        followShadow(of: target.route)
        logger.notice(
            "the charger is on upstream \(target.upstream.name) now",
            metadata: [
                "from": "\(old.upstream)", "transactionsLeftThere": "\(transactions.count)",
            ])
        recordCutover("switched", to: target.upstream.name, from: old.upstream, transactions: transactions.count)
        context.metrics.proxy.cutover("switched", upstream: target.upstream.name)
        old.link.events = CutoverLinkEvents(session: self, role: .draining)
        cutover.draining = (old, transactions)
        checkDrained()
        writabilityChanged()
        // What the new CSMS sent meanwhile reaches the charger now.
        for text in incoming.held { received(text: text, from: .csms) }
    }

    /// Closes the old link once nothing is left there: no transaction open, no CALL awaiting its answer.
    func checkDrained() {
        guard let draining = cutover.draining, draining.transactions.isEmpty else { return }
        let pending = draining.leg.path.pendingCalls
        guard pending.fromCharger == 0, pending.fromCSMS == 0 else { return }
        cutover.draining = nil
        draining.leg.link.events = nil
        draining.leg.link.close(code: .normalClosure, reason: "moved", text: "charger moved to another CSMS")
        recordCutover("drained", to: context.upstreamName, from: draining.leg.upstream)
        logger.info("the link to upstream \(draining.leg.upstream) is closed: nothing of the charger is left there")
    }

    /// The timers of the other legs' paths (the session's one timer serves them all).
    func expireOtherLegs(now: NIODeadline) {
        if let draining = cutover.draining, let deadline = draining.leg.path.nextDeadline, deadline <= now {
            deliver(draining.leg.path.expire(now: now), cause: nil, csms: draining.leg.link)
            checkDrained()
        }
        if let incoming = cutover.incoming, let link = incoming.link,
            let deadline = incoming.target.path.nextDeadline, deadline <= now
        {
            deliver(incoming.target.path.expire(now: now), cause: nil, csms: link)
        }
    }

    // MARK: The other links' frames

    func cutoverLinkReceived(_ text: ByteBuffer, role: CutoverLinkEvents.Role) {
        guard !finished, !failed else { return }
        let leg: (path: FramePath, link: FrameLink, context: SessionContext)
        switch role {
        case .incoming:
            guard let incoming = cutover.incoming, let link = incoming.link else { return }
            leg = (incoming.target.path, link, incoming.target.context)
        case .draining:
            guard let draining = cutover.draining else { return }
            leg = (draining.leg.path, draining.leg.link, draining.leg.context)
        }
        let version = leg.context.upstreamVersion
        guard case .success(let parsed) = RPCFrame.parse(text.readableBytesView, version: version) else {
            leg.context.metrics.malformed(from: .csms, reason: "cutover_link")
            logger.warning("dropped a malformed frame from upstream \(leg.context.upstreamName) during a cutover")
            return
        }
        let frame = Frame(side: .csms, parsed: parsed, text: text, arrived: eventLoop.now)
        for stage in stages where stage.watchesArrivals { stage.arrived(frame) }
        switch (role, frame.type) {
        case (.incoming, .call), (.incoming, .send):
            // Bounded: a CSMS that does not wait for answers gets them refused, as limits.maxPendingCalls would.
            guard (cutover.incoming?.held.count ?? 0) < context.limits.maxPendingCalls else {
                let answer = leg.context.callError(
                    to: .csms, id: frame.messageId, code: .genericError,
                    description: "more than \(context.limits.maxPendingCalls) CALLs await an answer")
                return write(answer, through: stages[...], csms: leg.link)
            }
            cutover.incoming?.held.append(text)
        case (.draining, .call):
            // The charger has moved: the old CSMS's CALLs reach it no more.
            let answer = leg.context.callError(
                to: .csms, id: frame.messageId, code: .genericError,
                description: "the charging station has moved to another CSMS")
            write(answer, through: stages[...], csms: leg.link)
        case (.draining, .send):
            return
        default:
            deliver(leg.path.receive(frame), cause: FrameCause(side: .csms, id: frame.messageId), csms: leg.link)
            if role == .draining { checkDrained() }
        }
    }

    func cutoverLinkBinary(role: CutoverLinkEvents.Role) {
        let link = role == .incoming ? cutover.incoming?.link : cutover.draining?.leg.link
        link?.close(code: .unacceptableData, reason: "binary_frame", text: "OCPP-J accepts text frames only")
    }

    func cutoverLinkClosed(role: CutoverLinkEvents.Role, peerCode: WebSocketErrorCode?, reason: String?) {
        guard !finished else { return }
        switch role {
        case .incoming:
            guard cutover.incoming?.link != nil else { return }
            retryIncoming(reason ?? "the new CSMS closed the link")
        case .draining:
            guard let draining = cutover.draining else { return }
            cutover.draining = nil
            if !draining.transactions.isEmpty {
                logger.warning(
                    "the link to upstream \(draining.leg.upstream) closed before \(draining.transactions.count) transaction(s) that started there ended; their remaining messages go to \(context.upstreamName)"
                )
            }
            recordCutover(
                "old_link_lost", to: context.upstreamName, from: draining.leg.upstream,
                transactions: draining.transactions.count)
        }
    }

    /// Closes the links of a cutover in progress and of a draining old upstream (the session ends).
    func endCutover(code: WebSocketErrorCode, reason: String, text: String) {
        for link in [cutover.incoming?.link, cutover.draining?.leg.link].compactMap({ $0 }) {
            link.events = nil
            link.close(code: code, reason: reason, text: text)
        }
        cutover.incoming = nil
        cutover.draining = nil
    }

    private func recordCutover(
        _ state: String, to: String, from: String? = nil, reason: String? = nil,
        transactions: Int? = nil
    ) {
        var fields: JSONObject = [
            "state": .string(state), "to": .string(to), "from": .string(from ?? context.upstreamName),
        ]
        if let reason { fields["reason"] = .string(reason) }
        if let transactions { fields["transactionsLeft"] = .integer(Int64(transactions)) }
        for stage in stages where stage.watchesArrivals { stage.sessionEvent("cutover", fields) }
    }
}

extension CutoverState {
    /// The new upstream starts with no transaction open.
    fileprivate mutating func resetOpen() {
        open = []
    }
}
