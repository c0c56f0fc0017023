import NIOCore
import OCPP

/// Message limits of one charger (`limits.messages`, `chargers[].limits.messages`): a flooding charger slows down
/// itself, never its neighbours or the CSMS. Each rule is a token bucket per charger and action:
/// - `delay`: a CALL over its rate is held until its token is due (at most `maxDelay`), then goes on. A charger
///   waits for each answer before its next CALL, so delaying is a lossless throttle. Once one CALL is held, every
///   later CALL from the same side waits behind it: nothing overtakes (a MeterValues never after its
///   StopTransaction).
/// - `answerLocally`: a Heartbeat younger than `minInterval` after the last one forwarded is answered by the proxy
///   with the current time; a StatusNotification repeating the last one forwarded for its connector within
///   `minInterval` is answered `{}`.
/// - `reject`: a CALLERROR GenericError; a transaction message (Start/StopTransaction, MeterValues,
///   TransactionEvent) is never rejected nor answered locally, it is delayed instead.
/// `fromCSMS` limits the CSMS's CALLs toward the charger the same way (delay or reject).
/// At the overload step `shed` or above (`overload:`), every Heartbeat is answered by the proxy, whatever its rule.
final class MessageLimitStage: FrameStage {
    let name = "limits"
    private var context: SessionContext
    private let limits: MessageLimits
    private var buckets: [BucketKey: TokenBucket] = [:]
    /// Until when each side's CALLs wait behind one already held.
    private var heldUntil: [Side: NIODeadline] = [:]
    private var lastHeartbeat: NIODeadline?
    /// The last StatusNotification forwarded per connector: what it said, and when.
    private var lastStatus: [String: (status: String, at: NIODeadline)] = [:]

    private struct BucketKey: Hashable {
        let side: Side
        let rule: String
    }

    /// Messages that carry a transaction: never rejected, never answered by the proxy.
    static let transactionActions: Set<String> = [
        "StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent",
    ]

    func upstreamChanged(_ context: SessionContext) { self.context = context }

    init(context: SessionContext, limits: MessageLimits) {
        self.context = context
        self.limits = limits
    }

    func inbound(_ frame: Frame) -> StageVerdict {
        guard frame.type == .call, let action = frame.action else { return .pass }
        if frame.side == .charger, action == "Heartbeat", context.metrics.proxy.overload.step >= .shed {
            return answerHeartbeat(frame, decision: "shed")
        }
        let rule: (key: String, limit: MessageLimit)
        if frame.side == .charger {
            guard let found = limits.rule(for: action) else { return .pass }
            rule = found
        } else {
            guard let limit = limits.fromCSMS else { return .pass }
            rule = ("fromCSMS", limit)
        }
        let now = context.eventLoop.now
        let transaction = Self.transactionActions.contains(action)
        switch rule.limit.over {
        case .answerLocally where !transaction:
            return answerLocally(frame, action: action, minInterval: rule.limit.minInterval ?? .zero, now: now)
        case .reject where !transaction:
            guard let wait = take(frame.side, rule, now: now, reserve: false), wait > .zero else {
                return waitBehind(frame.side, now: now)
            }
            context.metrics.messageLimited(from: frame.side, action: label(frame), decision: "rejected")
            return .answer([
                context.callError(
                    to: frame.side, id: frame.messageId, code: .genericError,
                    description: "\(action) is over its message limit; retry in \(Self.seconds(wait)) s")
            ])
        case .answerLocally, .reject, .delay:
            guard let wait = take(frame.side, rule, now: now, reserve: true) else {
                return waitBehind(frame.side, now: now)
            }
            let behind = heldUntil[frame.side].map { $0 > now ? $0 - now : .zero } ?? .zero
            let delay = min(max(wait, behind), rule.limit.maxDelay)
            guard delay > .zero else { return .pass }
            heldUntil[frame.side] = now + delay
            context.metrics.messageLimited(from: frame.side, action: label(frame), decision: "delayed")
            return .hold(context.eventLoop.scheduleTask(in: delay) { StageVerdict.pass }.futureResult)
        }
    }

    /// A token of the rule's bucket: zero when there is one now, else how long until there is (taken ahead when
    /// `reserve`); nil when the rule has no rate.
    private func take(_ side: Side, _ rule: (key: String, limit: MessageLimit), now: NIODeadline, reserve: Bool)
        -> TimeAmount?
    {
        guard let rate = rule.limit.rate else { return nil }
        let key = BucketKey(side: side, rule: rule.key)
        var bucket = buckets[key] ?? TokenBucket(rate, now: now)
        defer { buckets[key] = bucket }
        if reserve { return bucket.reserve(now: now, maxWait: .hours(24)) ?? rule.limit.maxDelay }
        return bucket.take(now: now) ?? .zero
    }

    /// A CALL its own rule lets through still waits for one held before it.
    private func waitBehind(_ side: Side, now: NIODeadline) -> StageVerdict {
        guard let until = heldUntil[side], until > now else { return .pass }
        return .hold(context.eventLoop.scheduleTask(deadline: until) { StageVerdict.pass }.futureResult)
    }

    private func answerLocally(_ frame: Frame, action: String, minInterval: TimeAmount, now: NIODeadline)
        -> StageVerdict
    {
        switch action {
        case "Heartbeat":
            if let last = lastHeartbeat, now - last < minInterval {
                return answerHeartbeat(frame, decision: "answered")
            }
            lastHeartbeat = now
        case "StatusNotification":
            guard let (connector, status) = Self.status(frame.payload) else { return waitBehind(frame.side, now: now) }
            if let last = lastStatus[connector], last.status == status, now - last.at < minInterval {
                context.metrics.messageLimited(from: frame.side, action: label(frame), decision: "answered")
                return .answer([.frame(.callResult(id: frame.messageId, payload: .object([:])), to: frame.side)])
            }
            if lastStatus.count >= 256 { lastStatus.removeAll() }
            lastStatus[connector] = (status, now)
        default:
            break
        }
        return waitBehind(frame.side, now: now)
    }

    /// A Heartbeat answered by the proxy with the current time (the same payload in every version), counted.
    private func answerHeartbeat(_ frame: Frame, decision: String) -> StageVerdict {
        context.metrics.messageLimited(from: frame.side, action: label(frame), decision: decision)
        let time = DateTimeText(seconds: context.wallClock()).utcText
        return .answer([
            .frame(.callResult(id: frame.messageId, payload: .object(["currentTime": .string(time)])), to: frame.side)
        ])
    }

    /// A StatusNotification's connector and what it says of it, in 1.5/1.6 (`connectorId`, `status`, `errorCode`)
    /// or 2.0.1/2.1 (`evseId`, `connectorId`, `connectorStatus`) terms.
    static func status(_ payload: JSONValue?) -> (connector: String, status: String)? {
        guard case .object(let fields)? = payload else { return nil }
        if let status = fields["connectorStatus"]?.stringValue {
            return ("\(fields["evseId"]?.jsonText ?? "")/\(fields["connectorId"]?.jsonText ?? "")", status)
        }
        guard let status = fields["status"]?.stringValue else { return nil }
        return (
            fields["connectorId"]?.jsonText ?? "",
            "\(status)/\(fields["errorCode"]?.stringValue ?? "")/\(fields["vendorErrorCode"]?.stringValue ?? "")"
        )
    }

    /// The action as a metric label: a known action of the sender's version, else "other".
    private func label(_ frame: Frame) -> String {
        ProxyMetrics.actionLabel(frame.action, context.version(of: frame.side))
    }

    static func seconds(_ amount: TimeAmount) -> Int64 { max(1, (amount.nanoseconds + 999_999_999) / 1_000_000_000) }
}
