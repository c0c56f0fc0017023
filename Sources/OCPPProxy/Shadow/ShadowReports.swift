import Foundation
import NIOConcurrencyHelpers
import OCPP
import Prometheus

/// One comparison of the primary's and the shadow's answers to a charger's CALL.
struct ShadowOutcome: Sendable {
    var time: Date
    var shadow: String
    var action: String
    var messageId: String
    var divergences: [ShadowDivergence]

    /// As the audit log and `GET /api/shadow/{identity}` write it.
    var fields: JSONObject {
        [
            "shadow": .string(shadow), "action": .string(action), "messageId": .string(messageId),
            "result": .string(divergences.isEmpty ? "match" : "divergent"),
            "divergences": .array(divergences.map(\.json)),
        ]
    }
}

/// What the shadows of all chargers reported, for the admin API: counts per charger and its latest divergences.
/// Shared by every session; the lock is taken once per comparison, not per frame.
final class ShadowReports: Sendable {
    struct Charger: Sendable {
        var shadow: String
        var compared = 0
        var divergent = 0
        var dropped: [String: Int] = [:]
        var shadowCalls = 0
        var latest: [ShadowOutcome] = []
    }

    private let kept: Int
    private let chargers = NIOLockedValueBox<[String: Charger]>([:])

    init(kept: Int) {
        self.kept = kept
    }

    func record(_ outcome: ShadowOutcome, identity: String) {
        chargers.withLockedValue { all in
            var charger = all[identity] ?? Charger(shadow: outcome.shadow)
            charger.shadow = outcome.shadow
            charger.compared += 1
            if !outcome.divergences.isEmpty {
                charger.divergent += 1
                charger.latest.append(outcome)
                if charger.latest.count > kept { charger.latest.removeFirst(charger.latest.count - kept) }
            }
            all[identity] = charger
        }
    }

    func dropped(_ reason: String, identity: String, shadow: String) {
        chargers.withLockedValue { all in
            all[identity, default: Charger(shadow: shadow)].dropped[reason, default: 0] += 1
        }
    }

    func shadowCall(identity: String, shadow: String) {
        chargers.withLockedValue { all in all[identity, default: Charger(shadow: shadow)].shadowCalls += 1 }
    }

    func report(for identity: String) -> Charger? {
        chargers.withLockedValue { $0[identity] }
    }
}

/// The shadow's metrics: bounded labels (actions the charger's version knows, the divergence kinds, drop reasons
/// the proxy names, upstream names from the configuration).
extension ProxyMetrics {
    func shadowCompared(action: String, divergences: [ShadowDivergence]) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "shadow_comparisons", unit: "total",
                help: "Answers of a shadow CSMS compared with the primary's, by action and result (match, divergent)"),
            labels: [("action", action), ("result", divergences.isEmpty ? "match" : "divergent")]
        ).increment()
        for kind in Set(divergences.map(\.kind)) {
            registry.makeCounter(
                descriptor: Self.descriptor(
                    "shadow_divergences", unit: "total",
                    help:
                        "Shadow answers that differ from the primary's, by action and kind (status, missing_field, extra_field, different_value, error_vs_result, different_error, timeout)"
                ),
                labels: [("action", action), ("kind", kind.rawValue)]
            ).increment()
        }
    }

    func shadowDropped(_ reason: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "shadow_dropped", unit: "total",
                help:
                    "Charger CALLs not copied to or not compared with a shadow CSMS, by reason (queue_full, shadow_down, unmapped_transaction, refused, stale)"
            ),
            labels: [("reason", reason), ("upstream", upstream)]
        ).increment()
    }

    func shadowCallAnswered(_ answer: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "shadow_calls", unit: "total",
                help:
                    "CALLs a shadow CSMS sent, answered by the proxy and never passed to the charger, by answer (result, NotSupported)"
            ),
            labels: [("answer", answer), ("upstream", upstream)]
        ).increment()
    }

    /// Chargers moved between upstreams without reconnecting: `switched` (new CALLs go to the new upstream),
    /// `failed` (its link could not be opened yet; retried).
    func cutover(_ event: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "cutovers", unit: "total",
                help:
                    "Chargers moved to another upstream without reconnecting, by event (switched, failed) and upstream"),
            labels: [("event", event), ("upstream", upstream)]
        ).increment()
    }

    func shadowLink(_ event: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "shadow_links", unit: "total", help: "Shadow CSMS links by event (opened, failed, closed)"),
            labels: [("event", event), ("upstream", upstream)]
        ).increment()
    }
}
