import Foundation
import Logging
import NIOCore
import OCPP
import OCPPAudit
import OCPPAuditRedaction

#if canImport(Glibc)
    import Glibc
#endif

/// How many records the audit writer turns into lines on disk per second (BENCHMARKS.md, "Audit log on vs off"):
/// the proxy's own writer path on realistic frame records, for `ocpp-audit-bench`. Not used by the proxy.
///
/// Each exchange is what a pass-through CALL leaves in the log: the charger's CALL as received (its bytes, parsed
/// and redacted on the writer thread), the same CALL forwarded to the CSMS (no payload, a cause), the CSMS's
/// CALLRESULT as received, and that forwarded to the charger. Two ways to drive it:
///
/// - `phases`: the loop of ``AuditLog``'s group commit on this thread, timed per phase: the records
///   (``AuditRecordBuilder/writeMembers(_:into:)`` into ``SegmentWriter/appendMembers(ts:_:)``: members, payload
///   copied or parsed and redacted, SHA-256, Merkle leaf, line) and the commit (`write` and `fsync`), each as thread
///   CPU time and wall time, so the fsync wait shows apart from the CPU;
/// - `log`: through ``AuditLog`` itself, its writer thread, queue and lock: one producer thread records the entries
///   as fast as `block` backpressure lets it, and the writer thread's CPU time is read from `/proc`.
public enum AuditWriterBenchmark {
    public enum Mode: String, Sendable { case phases, log }

    public struct Options: Sendable {
        public var directory: String
        public var mode: Mode = .phases
        /// Exchanges (four records each).
        public var exchanges = 50_000
        /// Records per group commit in `phases` mode.
        public var batch = 256
        /// `meter` (MeterValues with four samples and its empty answer), `mixed` (the load generator's cycle).
        public var scenario = "mixed"
        public var payloads: AuditPayloadMode = .redacted
        /// Checks the log with ``AuditVerifier`` afterwards (not timed).
        public var verify = true

        public init(directory: String) { self.directory = directory }
    }

    /// Runs one measurement and returns its report (one line per figure).
    public static func run(_ options: Options) throws -> String {
        try? FileManager.default.removeItem(atPath: options.directory)
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let keyPath = options.directory + ".key"
        try? FileManager.default.removeItem(atPath: keyPath)
        try? FileManager.default.removeItem(atPath: keyPath + ".pub")
        let signer = try AuditKeys.generate(out: keyPath)
        let entries = makeEntries(options)
        var report: [String]
        switch options.mode {
        case .phases: report = try runPhases(options, entries: entries, signer: signer)
        case .log: report = try runLog(options, entries: entries, keyPath: keyPath)
        }
        if options.verify {
            let verification = try AuditVerifier.verify(
                dir: options.directory, publicKey: AuditKeys.loadPublic(path: keyPath + ".pub"))
            report.append("verify\t\(verification.summary)")
        }
        return report.joined(separator: "\n")
    }

    // MARK: The records

    static let node = "bench-node"
    static let pseudonymKey = Array("benchmark-pseudonym-key-0123456789".utf8)

    /// The entries of `exchanges` pass-through exchanges, built before the clock starts.
    static func makeEntries(_ options: Options) -> [AuditEntry] {
        let session = AuditSessionInfo(
            node: node, charger: "BENCH42", session: "5f3a9c1e-42", chargerVersion: .v1_6, upstreamVersion: .v1_6,
            remote: AuditRemote(
                address: "10.1.2.3:51234", tlsVersion: "TLSv1.3", certificateFingerprint: nil, securityProfile: 2,
                listener: "bench"),
            transport: "websocket", upstream: "ws://127.0.0.1:9000/ocpp")
        let exchanges = options.scenario == "meter" ? [meterValues] : mixed
        var entries: [AuditEntry] = []
        entries.reserveCapacity(options.exchanges * 4)
        var time = Int64(1_796_000_000_000_000)
        for n in 0..<options.exchanges {
            let (action, call, answer) = exchanges[n % exchanges.count]
            let id = "\(n + 1)"
            let callText = "[2,\"\(id)\",\"\(action)\",\(call)]"
            let answerText = "[3,\"\(id)\",\(answer)]"
            func frame(
                _ leg: AuditLeg, _ type: MessageTypeNumber, _ content: AuditFrame.Content?, _ decision: String,
                cause: AuditLeg?
            ) -> AuditEntry {
                time += 37
                return AuditEntry(
                    time: time,
                    body: .frame(
                        AuditFrame(
                            session: session, leg: leg, type: type, messageId: id, action: action, errorCode: nil,
                            content: content, decision: decision, cause: cause.map { (leg: $0, id: id) })))
            }
            // As the pass-through reads them: the envelope, and where the payload is.
            func received(_ text: String) -> AuditFrame.Content {
                let range = try? RPCEnvelope.parse(Array(text.utf8), version: .v1_6).get().payloadRange
                return .text(ByteBuffer(string: text), payload: range)
            }
            entries.append(frame(.chargerToProxy, .call, received(callText), "received", cause: nil))
            entries.append(frame(.proxyToCSMS, .call, nil, "forwarded", cause: .chargerToProxy))
            entries.append(frame(.csmsToProxy, .callResult, received(answerText), "received", cause: nil))
            entries.append(frame(.proxyToCharger, .callResult, nil, "forwarded", cause: .csmsToProxy))
        }
        return entries
    }

    static let now = "2026-11-30T08:00:00.000Z"
    static let meterValues = (
        "MeterValues",
        "{\"connectorId\":1,\"transactionId\":4711,\"meterValue\":[{\"timestamp\":\"\(now)\",\"sampledValue\":["
            + "{\"value\":\"12345.6\",\"measurand\":\"Energy.Active.Import.Register\",\"unit\":\"Wh\"},"
            + "{\"value\":\"7400\",\"measurand\":\"Power.Active.Import\",\"unit\":\"W\"},"
            + "{\"value\":\"32.1\",\"measurand\":\"Current.Import\",\"unit\":\"A\",\"phase\":\"L1\"},"
            + "{\"value\":\"230.4\",\"measurand\":\"Voltage\",\"unit\":\"V\",\"phase\":\"L1-N\"}]}]}",
        "{}"
    )
    /// The load generator's `mixed` cycle (Sources/ocpp-bench/Scenario.swift), 1.6.
    static let mixed: [(String, String, String)] = [
        (
            "StatusNotification",
            "{\"connectorId\":1,\"errorCode\":\"NoError\",\"status\":\"Preparing\",\"timestamp\":\"\(now)\"}", "{}"
        ),
        ("Authorize", "{\"idTag\":\"T0000000000000000042\"}", "{\"idTagInfo\":{\"status\":\"Accepted\"}}"),
        (
            "StartTransaction",
            "{\"connectorId\":1,\"idTag\":\"T0000000000000000042\",\"meterStart\":1000,\"timestamp\":\"\(now)\"}",
            "{\"transactionId\":4711,\"idTagInfo\":{\"status\":\"Accepted\"}}"
        ),
        meterValues,
        meterValues,
        (
            "MeterValues",
            "{\"connectorId\":1,\"meterValue\":[{\"timestamp\":\"\(now)\",\"sampledValue\":[{\"value\":\"12345.6\"}]}]}",
            "{}"
        ),
        (
            "StopTransaction",
            "{\"transactionId\":4711,\"idTag\":\"T0000000000000000042\",\"meterStop\":2000,\"timestamp\":\"\(now)\",\"reason\":\"Local\"}",
            "{\"idTagInfo\":{\"status\":\"Accepted\"}}"
        ),
        (
            "StatusNotification",
            "{\"connectorId\":1,\"errorCode\":\"NoError\",\"status\":\"Available\",\"timestamp\":\"\(now)\"}", "{}"
        ),
        ("Heartbeat", "{}", "{\"currentTime\":\"\(now)\"}"),
    ]

    // MARK: Phases

    /// CPU time of the calling thread and the wall clock, in nanoseconds.
    struct Clock {
        var cpu: Int64 = 0
        var wall: Int64 = 0

        static func now() -> Clock {
            var spec = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
            let cpu = Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
            clock_gettime(CLOCK_MONOTONIC, &spec)
            return Clock(cpu: cpu, wall: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
        }

        static func - (a: Clock, b: Clock) -> Clock { Clock(cpu: a.cpu - b.cpu, wall: a.wall - b.wall) }
        static func += (a: inout Clock, b: Clock) {
            a.cpu += b.cpu
            a.wall += b.wall
        }
    }

    static func runPhases(_ options: Options, entries: [AuditEntry], signer: AuditSigner) throws -> [String] {
        let writer = try SegmentWriter(directory: options.directory, signer: signer, options: .init(node: node))
        let builder = AuditRecordBuilder(
            redactor: AuditRedactor(mode: options.payloads, pseudonymKey: pseudonymKey), node: node)
        var build = Clock()
        var commit = Clock()
        var bytes = 0
        var start = 0
        let began = Clock.now()
        while start < entries.count {
            let end = min(start + options.batch, entries.count)
            // As AuditLog.write does: each record into the pending lines, then one commit.
            let t0 = Clock.now()
            for entry in entries[start..<end] {
                let ts = Date(timeIntervalSince1970: Double(entry.time) / 1e6)
                if case .frame(let frame) = entry.body {
                    try writer.appendMembers(ts: ts) { builder.writeMembers(frame, into: &$0) }
                } else {
                    try writer.append(builder.fields(entry), ts: ts)
                }
            }
            let t1 = Clock.now()
            bytes += writer.pendingBytes
            try writer.commit()
            let t2 = Clock.now()
            build += t1 - t0
            commit += t2 - t1
            start = end
        }
        let total = Clock.now() - began
        try writer.close(ts: Date())
        let records = Double(entries.count)
        func line(_ name: String, _ clock: Clock) -> String {
            String(
                format: "%@\tcpu %.2f µs/record\twall %.2f µs/record", name, Double(clock.cpu) / 1000 / records,
                Double(clock.wall) / 1000 / records)
        }
        let cpuOnly = build.cpu + commit.cpu
        return [
            "mode\tphases\tscenario \(options.scenario)\tpayloads \(options.payloads.rawValue)\trecords \(entries.count)\tbatch \(options.batch)\tbytes/record \(bytes / entries.count)",
            line("records (members, payload, hashes, line)", build),
            line("commit (write, fsync)", commit),
            line("total", total),
            String(
                format: "records/s\twall %.0f (with fsync waits)\tcpu %.0f (one core busy)\trecords only %.0f",
                records / (Double(total.wall) / 1e9), records / (Double(cpuOnly) / 1e9),
                records / (Double(build.cpu) / 1e9)),
        ]
    }

    // MARK: Through AuditLog

    static func runLog(_ options: Options, entries: [AuditEntry], keyPath: String) throws -> [String] {
        var configuration = AuditConfiguration(
            directory: options.directory, pseudonymKey: .text(String(decoding: pseudonymKey, as: UTF8.self)),
            signingKey: keyPath, node: node)
        configuration.payloads = options.payloads
        configuration.onBackpressure = .block
        var logger = Logger(label: "ocpp-audit-bench")
        logger.logLevel = .warning
        let log = try AuditLog.open(configuration: configuration, metrics: ProxyMetrics(), logger: logger)
        log.start()
        // The writer's CPU: the process's (getrusage) less this thread's, the producer's; nothing else runs.
        func processCPU() -> Int64 {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return (Int64(usage.ru_utime.tv_sec) + Int64(usage.ru_stime.tv_sec)) * 1_000_000_000
                + (Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_usec)) * 1000
        }
        let processBefore = processCPU()
        let began = Clock.now()
        for entry in entries { log.record(entry) }
        let produced = Clock.now() - began
        log.stop()
        let total = Clock.now() - began
        let writerCPU = processCPU() - processBefore - (Clock.now() - began).cpu
        let records = Double(entries.count)
        return [
            "mode\tlog\tscenario \(options.scenario)\tpayloads \(options.payloads.rawValue)\trecords \(entries.count)",
            String(
                format: "records/s\twall %.0f (recorded and on disk)\twriter cpu %.0f (process less the producer)",
                records / (Double(total.wall) / 1e9), records / (Double(writerCPU) / 1e9)),
            String(
                format: "writer\tcpu %.2f µs/record\tproducer %.2f µs/record (record(), block backpressure)",
                Double(writerCPU) / 1000 / records, Double(produced.cpu) / 1000 / records),
        ]
    }
}
