import Foundation
import Prometheus

/// The audit log's metrics, made once: records and bytes written, commit latency, records dropped, admissions
/// refused because of backpressure, whether backpressure is on (the alert), and the last checkpoint's age.
final class AuditMetrics: Sendable {
    let records: Counter
    let bytes: Counter
    let commits: DurationHistogram
    let dropped: Counter
    let refusedAdmissions: Counter
    let writeFailures: Counter
    /// 1 while the writer is behind its queue bound or cannot write; the alert.
    let backpressure: Gauge
    let queueDepth: Gauge
    let lastCheckpoint: Gauge
    let lastCheckpointAge: Gauge

    init(_ metrics: ProxyMetrics) {
        let registry = metrics.registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            ProxyMetrics.descriptor(metric, unit: unit, help: help)
        }
        records = registry.makeCounter(
            descriptor: name("audit_records", "total", "Audit records written and synced (checkpoints included)"))
        bytes = registry.makeCounter(descriptor: name("audit_bytes", "total", "Bytes of audit records written"))
        commits = registry.makeDurationHistogram(
            descriptor: name("audit_commit", "seconds", "Time to write and fsync one commit group of audit records"),
            buckets: [
                .microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
            ])
        dropped = registry.makeCounter(
            descriptor: name(
                "audit_dropped_records", "total",
                "Audit records dropped because the writer's queue was full (a gap record in the log says how many)"))
        refusedAdmissions = registry.makeCounter(
            descriptor: name(
                "audit_refused_admissions", "total",
                "Chargers refused with 503 because the audit log could not keep up (onBackpressure: refuse-new)"))
        writeFailures = registry.makeCounter(
            descriptor: name("audit_write_failures", "total", "Audit commits that failed (disk full, I/O error)"))
        backpressure = registry.makeGauge(
            descriptor: name(
                "audit_backpressure", "",
                "1 while the audit writer is behind its queue bound or cannot write to disk, else 0"))
        queueDepth = registry.makeGauge(
            descriptor: name("audit_queue_depth", "", "Audit records waiting for the writer"))
        lastCheckpoint = registry.makeGauge(
            descriptor: name(
                "audit_last_checkpoint_timestamp", "seconds", "When the last signed checkpoint was written (Unix time)")
        )
        lastCheckpointAge = registry.makeGauge(
            descriptor: name(
                "audit_last_checkpoint_age", "seconds",
                "Seconds since every record written was last covered by a signed checkpoint (near 0 on an idle proxy)"
            ))
    }
}
