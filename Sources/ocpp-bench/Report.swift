import Foundation
import Histogram

/// The results of one `load` run, as text and as JSON.
struct LoadReport {
    var label: String?
    var url: String
    var version: String
    /// SOAP chargers (the JSON is the same; the text adds how the SOAP answers counted as errored were wrong).
    var soap: Bool
    var chargers: Int
    var rampPerSecond: Double
    var rampSeconds: Double
    var mode: String
    var ratePerCharger: Double?
    var scenario: String
    var heartbeatSeconds: Double?
    var threads: Int
    var durationSeconds: Double
    var snapshot: WorkerSnapshot
    var startedAt: Date

    struct Latency: Codable {
        var count: UInt64
        var mean: Double
        var p50: Double
        var p90: Double
        var p99: Double
        var p99_9: Double
        var max: Double

        enum CodingKeys: String, CodingKey {
            case count, mean, p50, p90, p99, max
            case p99_9 = "p99.9"
        }
    }

    struct JSON: Codable {
        struct Connections: Codable {
            var attempted: Int
            var established: Int
            var failed: Int
            var failureReasons: [String: Int]
            var closedByPeer: Int
            var openAtEnd: Int
        }

        struct Calls: Codable {
            var sent: Int
            var answered: Int
            var errored: Int
            var timedOut: Int
            var unanswered: Int
            var answeredIncludingOutsideWindow: Int
            var bootNotificationsSent: Int
            var bootNotificationsAccepted: Int
            var bootNotificationsRejected: Int
            var openLoopDelayed: Int
            var openLoopDropped: Int
        }

        var label: String?
        var startedAt: String
        var url: String
        var version: String
        var chargers: Int
        var rampPerSecond: Double
        var rampSeconds: Double
        var mode: String
        var ratePerCharger: Double?
        var offeredCallsPerSecond: Double?
        var scenario: String
        var heartbeatSeconds: Double?
        var threads: Int
        var durationSeconds: Double
        var connections: Connections
        var calls: Calls
        var throughputPerSecond: Double
        var latencyMicroseconds: Latency
    }

    var failed: Int { snapshot.failures.values.reduce(0, +) }

    var throughput: Double { durationSeconds > 0 ? Double(snapshot.answered) / durationSeconds : 0 }

    var latency: Latency {
        let h = snapshot.latency
        func us(_ ns: UInt64) -> Double { (Double(ns) / 1000 * 10).rounded() / 10 }
        guard h.totalCount > 0 else { return Latency(count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0) }
        return Latency(
            count: h.totalCount, mean: us(UInt64(h.mean)), p50: us(h.valueAtPercentile(50)),
            p90: us(h.valueAtPercentile(90)),
            p99: us(h.valueAtPercentile(99)), p99_9: us(h.valueAtPercentile(99.9)), max: us(h.max))
    }

    var json: JSON {
        let s = snapshot
        let formatter = ISO8601DateFormatter()
        return JSON(
            label: label, startedAt: formatter.string(from: startedAt), url: url, version: version, chargers: chargers,
            rampPerSecond: rampPerSecond, rampSeconds: (rampSeconds * 100).rounded() / 100, mode: mode,
            ratePerCharger: ratePerCharger, offeredCallsPerSecond: ratePerCharger.map { $0 * Double(s.established) },
            scenario: scenario, heartbeatSeconds: heartbeatSeconds, threads: threads,
            durationSeconds: (durationSeconds * 1000).rounded() / 1000,
            connections: .init(
                attempted: chargers, established: s.established, failed: failed, failureReasons: s.failures,
                closedByPeer: s.closedByPeer, openAtEnd: s.connectionsOpenAtEnd),
            calls: .init(
                sent: s.sent, answered: s.answered, errored: s.errored, timedOut: s.timedOut, unanswered: s.unanswered,
                answeredIncludingOutsideWindow: s.answeredTotal, bootNotificationsSent: s.bootsSent,
                bootNotificationsAccepted: s.bootsAccepted, bootNotificationsRejected: s.bootsRejected,
                openLoopDelayed: s.openLoopDelayed, openLoopDropped: s.openLoopDropped),
            throughputPerSecond: (throughput * 10).rounded() / 10, latencyMicroseconds: latency)
    }

    var text: String {
        let s = snapshot
        let l = latency
        func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
        var loop = mode == "closed" ? "closed loop" : "open loop at \(f(ratePerCharger ?? 0, 2))/s per charger"
        if scenario == "idle" { loop = "idle, a Heartbeat every \(f(heartbeatSeconds ?? 0)) s" }
        var lines = [
            "ocpp-bench load\(label.map { " [\($0)]" } ?? ""): \(url) \(version)\(soap ? " over SOAP" : ""), \(chargers) chargers (ramp \(f(rampPerSecond, 0))/s, \(f(rampSeconds)) s), \(loop), scenario \(scenario), \(f(durationSeconds)) s measured",
            "  connections: \(s.established) established, \(failed) failed\(s.failures.isEmpty ? "" : " \(s.failures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"), \(s.closedByPeer) closed by the peer",
            "  BootNotification: \(s.bootsSent) sent, \(s.bootsAccepted) answered, \(s.bootsRejected) CALLERROR",
            "  CALLs: \(s.sent) sent, \(s.answered) answered, \(s.errored) errored, \(s.timedOut) timed out, \(s.unanswered) unanswered at the end",
            "  throughput: \(f(throughput)) answered CALLs/s",
            "  latency (µs, write → answer): p50 \(f(l.p50))  p90 \(f(l.p90))  p99 \(f(l.p99))  p99.9 \(f(l.p99_9))  max \(f(l.max))  (n=\(l.count))",
        ]
        if soap {
            lines.append(
                "  SOAP answers errored (whole run): \(s.soapHTTPErrors) HTTP status not 200, \(s.soapFaults) SOAP Fault, \(s.soapMalformed) without their response element"
            )
        }
        if mode == "open" {
            lines.append(
                "  open loop: \(s.openLoopDelayed) CALLs waited for the previous answer, \(s.openLoopDropped) dropped")
        }
        return lines.joined(separator: "\n")
    }
}
