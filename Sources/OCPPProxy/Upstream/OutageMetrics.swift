import Prometheus

/// The metrics of CSMS outages (`upstreamOutage:`).
extension ProxyMetrics {
    func upstreamReachable(_ upstream: String) -> Gauge {
        registry.makeGauge(
            descriptor: Self.descriptor(
                "upstream_reachable", unit: "",
                help:
                    "1 while the upstream (CSMS) is reachable; 0 after a charger's upstreamOutage.grace ran out, until a link to it opens again"
            ),
            labels: [("upstream", upstream)])
    }

    var sessionsInOutage: Gauge {
        registry.makeGauge(
            descriptor: Self.descriptor(
                "upstream_outage_sessions", unit: "",
                help: "Chargers kept connected while the proxy reconnects their CSMS link"))
    }

    func upstreamOutage(_ event: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "upstream_outages", unit: "total",
                help:
                    "CSMS link outages of connected chargers, by what became of them: started, restored (the link reopened), expired (grace ran out; the charger was closed with 1011)"
            ),
            labels: [("event", event), ("upstream", upstream)]
        ).increment()
    }

    func upstreamReconnect(_ result: String, upstream: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "upstream_reconnects", unit: "total",
                help: "Attempts to reopen a CSMS link during an outage: opened, failed, or paced (no slot)"),
            labels: [("result", result), ("upstream", upstream)]
        ).increment()
    }

    /// What became of a frame for the CSMS during an outage: answered (locally), queued (persisted and
    /// acknowledged), waited, dropped, replayed (delivered after the outage), rejected (the CSMS answered a replayed
    /// frame with a CALLERROR).
    func outageMessage(_ action: String, decision: String) {
        registry.makeCounter(
            descriptor: Self.descriptor(
                "outage_messages", unit: "total",
                help:
                    "Frames for the CSMS during an outage, by action and decision: answered, queued, waited, dropped, replayed, rejected"
            ),
            labels: [("action", action), ("decision", decision)]
        ).increment()
    }
}
