import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// `ocpp-bench load`: N chargers against a URL, closed- or open-loop, with latency from HdrHistogram.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Open N chargers ({url}/BENCH{n}), boot them, run a scenario for a duration, report throughput and latency."
    )

    @Option(
        help:
            "websocket: OCPP-J chargers on {url}/{identity}; soap: OCPP-S chargers POSTing SOAP 1.2 requests to {url}."
    )
    var transport: String = "websocket"

    @Option(
        help:
            "websocket: ws://host:port/path, each charger connects to {url}/{identity}; soap: http://host:port/path."
    )
    var url: String = "ws://127.0.0.1:8180/ocpp"

    @Option(help: "websocket: ocpp1.6 or ocpp2.0.1 (the only subprotocol offered); soap: ocpp1.5 or ocpp1.6.")
    var version: String = "ocpp1.6"

    @Option(help: "Number of chargers.")
    var chargers: Int = 100

    @Option(help: "Connections opened per second during the ramp, e.g. 500/s.")
    var ramp: String = "500/s"

    @Option(help: "How long the scenario runs once every charger has connected and booted, e.g. 20s, 2m.")
    var duration: String = "20s"

    @Option(
        help: "closed: one outstanding CALL per charger, next one as soon as it is answered; open: --rate per charger.")
    var mode: String = "closed"

    @Option(help: "Open loop: CALLs per second per charger, e.g. 10/s.")
    var rate: String?

    @Option(help: "mixed, heartbeat or idle.")
    var scenario: String = "mixed"

    @Option(help: "Idle scenario: seconds between Heartbeats of one charger.")
    var heartbeat: Double = 30

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "A label copied into the results (e.g. the setup's name).")
    var label: String?

    @Option(help: "Written (with the number of connected chargers) once the ramp is over and the scenario starts.")
    var readyFile: String?

    @Option(help: "Identity prefix; charger n is {prefix}{n}.")
    var identityPrefix: String = "BENCH"

    @Option(help: "Event loop threads (default: the number of cores).")
    var threads: Int = System.coreCount

    @Option(help: "Seconds for TCP connect plus WebSocket upgrade (soap: TCP connect).")
    var connectTimeout: Int = 10

    @Option(help: "Seconds a CALL may stay unanswered before it counts as timed out.")
    var callTimeout: Int = 30

    @Option(help: "Seconds to wait for outstanding answers after the duration.")
    var drain: Int = 5

    @Flag(help: "Print nothing but the final report.")
    var quiet = false

    var soap: Bool { transport == "soap" }

    func validate() throws {
        guard ["websocket", "soap"].contains(transport) else { throw ValidationError("--transport: websocket or soap") }
        if soap {
            guard OCPPSVersion(rawValue: version) != nil else { throw ValidationError("--version: ocpp1.5 or ocpp1.6") }
        } else {
            guard BenchVersion(rawValue: version) != nil else {
                throw ValidationError("--version: ocpp1.6 or ocpp2.0.1")
            }
        }
        guard (1...200_000).contains(chargers) else { throw ValidationError("--chargers: 1-200000") }
        guard let r = Self.perSecond(ramp), r > 0 else { throw ValidationError("--ramp: expected R/s, e.g. 500/s") }
        guard let d = Self.seconds(duration), d > 0, d <= 24 * 3600 else {
            throw ValidationError("--duration: expected e.g. 20s, 2m (at most 24h)")
        }
        guard ["closed", "open"].contains(mode) else { throw ValidationError("--mode: closed or open") }
        if mode == "open" {
            guard let rate, let x = Self.perSecond(rate), x > 0, x <= 100_000 else {
                throw ValidationError("--rate: open loop needs a per-charger rate, e.g. 10/s")
            }
        }
        guard ScenarioName(rawValue: scenario) != nil else {
            throw ValidationError("--scenario: mixed, heartbeat or idle")
        }
        guard heartbeat > 0 else { throw ValidationError("--heartbeat: expected seconds > 0") }
        guard threads >= 1, connectTimeout >= 1, callTimeout >= 1, drain >= 0 else {
            throw ValidationError("bad timeouts or threads")
        }
        guard (try? BenchURL(url, soap: soap)) != nil else {
            throw ValidationError(
                soap ? "--url: expected http://host:port/path" : "--url: expected ws://host:port/path")
        }
    }

    static func perSecond(_ text: String) -> Double? {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("/s") { t.removeLast(2) }
        return Double(t)
    }

    static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("ms"), let v = Double(t.dropLast(2)) { return v / 1000 }
        if t.hasSuffix("s"), let v = Double(t.dropLast()) { return v }
        if t.hasSuffix("m"), let v = Double(t.dropLast()) { return v * 60 }
        if t.hasSuffix("h"), let v = Double(t.dropLast()) { return v * 3600 }
        return Double(t)
    }

    func log(_ line: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data("load: \(line)\n".utf8))
    }

    func run() throws {
        let target = try BenchURL(url, soap: soap)
        let plan = LoadPlan(
            version: BenchVersion(rawValue: version) ?? .v16, soap: soap ? OCPPSVersion(rawValue: version) : nil,
            scenario: ScenarioName(rawValue: scenario)!,
            openLoop: mode == "open", interval: mode == "open" ? 1 / Self.perSecond(rate!)! : 0,
            heartbeat: heartbeat, target: target, identityPrefix: identityPrefix,
            connectTimeout: .seconds(Int64(connectTimeout)), callTimeout: UInt64(callTimeout) * 1_000_000_000)
        let rampRate = Self.perSecond(ramp)!
        let durationSeconds = Self.seconds(duration)!

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }
        let workers = Array(group.makeIterator()).enumerated().map {
            LoopWorker(loop: $1, plan: plan, seed: UInt64($0) &+ 0x9E37_79B9)
        }
        for worker in workers { try worker.loop.submit { worker.startSweeper() }.wait() }
        func everyWorker<T>(_ body: @escaping (LoopWorker) -> T) -> [T] {
            workers.map { w in w.loop.submit { body(w) } }.compactMap { try? $0.wait() }
        }

        // Ramp: open connections at --ramp per second, spread over the event loops.
        if soap {
            log("\(chargers) SOAP chargers \(identityPrefix){n} → \(target.text) (\(version)), ramp \(rampRate)/s")
        } else {
            log("\(chargers) chargers → \(target.text)/\(identityPrefix){n} (\(version)), ramp \(rampRate)/s")
        }
        let rampStart = monotonicNanos()
        var started = 0
        let rampBound = Double(chargers) / rampRate + 5
        while started < chargers {
            let elapsed = Double(monotonicNanos() - rampStart) / 1e9
            let due = min(chargers, max(1, Int(elapsed * rampRate)))
            while started < due {
                let index = started
                let worker = workers[index % workers.count]
                worker.loop.execute { worker.connect(index) }
                started += 1
            }
            if elapsed > rampBound { break }
            usleep(2000)
        }
        // Wait until every charger has connected (and booted) or failed; bounded by the timeouts.
        let settleDeadline = monotonicNanos() + UInt64(connectTimeout + callTimeout + 5) * 1_000_000_000
        var progress = Progress()
        var lastLog = monotonicNanos()
        while true {
            progress = everyWorker { $0.progress }.reduce(into: Progress()) { $0.add($1) }
            if progress.settled(attempts: started) || monotonicNanos() > settleDeadline { break }
            if monotonicNanos() - lastLog > 2_000_000_000 {
                log(
                    "connecting: \(progress.established) established, \(progress.failed) failed, \(progress.booted) booted of \(started)"
                )
                lastLog = monotonicNanos()
            }
            usleep(20_000)
        }
        let rampSeconds = Double(monotonicNanos() - rampStart) / 1e9
        log(
            "ramp done in \(String(format: "%.1f", rampSeconds)) s: \(progress.established) established, \(progress.failed) failed, \(progress.booted) booted"
        )

        // The measured window: every charger starts its scenario now.
        let windowStart = monotonicNanos()
        _ = everyWorker { $0.begin(windowStart: windowStart) }
        if let readyFile {
            try? "\(progress.established)\n".write(toFile: readyFile, atomically: true, encoding: .utf8)
        }
        let windowEndTarget = windowStart + UInt64(durationSeconds * 1e9)
        lastLog = monotonicNanos()
        while monotonicNanos() < windowEndTarget {
            usleep(UInt32(min(100_000, max(1000, (windowEndTarget - monotonicNanos()) / 1000))))
            if monotonicNanos() - lastLog > 5_000_000_000 {
                let p = everyWorker { $0.progress }.reduce(into: Progress()) { $0.add($1) }
                log("running: \(p.answered) answered, \(p.open) connections open")
                lastLog = monotonicNanos()
            }
        }
        let windowEnd = monotonicNanos()
        _ = everyWorker { $0.stop(windowEnd: windowEnd) }
        let drainDeadline = monotonicNanos() + UInt64(drain) * 1_000_000_000
        while monotonicNanos() < drainDeadline {
            let outstanding = everyWorker { $0.outstandingCount }.reduce(0, +)
            if outstanding == 0 { break }
            usleep(10_000)
        }
        let snapshots = everyWorker { $0.snapshot() }
        _ = everyWorker { $0.closeAll() }
        let closeDeadline = monotonicNanos() + 3_000_000_000
        while monotonicNanos() < closeDeadline, everyWorker({ $0.openCount }).reduce(0, +) > 0 { usleep(10_000) }

        var total = WorkerSnapshot.empty
        for s in snapshots { total.add(s) }
        let windowSeconds = Double(windowEnd - windowStart) / 1e9
        let report = LoadReport(
            label: label, url: target.text, version: version, soap: soap, chargers: chargers, rampPerSecond: rampRate,
            rampSeconds: rampSeconds, mode: mode, ratePerCharger: mode == "open" ? Self.perSecond(rate!) : nil,
            scenario: scenario, heartbeatSeconds: scenario == "idle" ? heartbeat : nil, threads: threads,
            durationSeconds: windowSeconds, snapshot: total, startedAt: Date(timeIntervalSinceNow: -windowSeconds))
        print(report.text)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report.json).write(to: URL(fileURLWithPath: json))
        }
    }
}

/// `ws://host:port/path` (WebSocket chargers: `{path}/{identity}`) or `http://host:port/path` (SOAP chargers:
/// the central system's URL itself).
struct BenchURL {
    var host: String
    var port: Int
    var path: String
    var text: String
    var authority: String { "\(host):\(port)" }

    init(_ text: String, soap: Bool = false) throws {
        struct Bad: Error {}
        let scheme = soap ? "http://" : "ws://"
        guard text.hasPrefix(scheme) else { throw Bad() }
        let rest = text.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        if soap {
            if path.isEmpty { path = "/" }
        } else {
            while path.hasSuffix("/") { path.removeLast() }
        }
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { throw Bad() }
        self.host = String(parts[0])
        self.port = port
        self.path = path
        self.text = "\(scheme)\(authority)\(path)"
    }
}

struct LoadPlan {
    /// The OCPP-J version; SOAP chargers use the 1.6 action names, which 1.5 shares.
    var version: BenchVersion
    /// Set for SOAP chargers: their OCPP-S version.
    var soap: OCPPSVersion?
    var scenario: ScenarioName
    var openLoop: Bool
    /// Open loop: seconds between two CALLs of one charger.
    var interval: Double
    var heartbeat: Double
    var target: BenchURL
    var identityPrefix: String
    var connectTimeout: TimeAmount
    var callTimeout: UInt64
}

/// How far the ramp and the run are, summed over the event loops.
struct Progress {
    var attempts = 0
    var established = 0
    var failed = 0
    var booted = 0
    var bootFailed = 0
    var answered = 0
    var open = 0

    mutating func add(_ o: Progress) {
        attempts += o.attempts
        established += o.established
        failed += o.failed
        booted += o.booted
        bootFailed += o.bootFailed
        answered += o.answered
        open += o.open
    }

    func settled(attempts started: Int) -> Bool {
        attempts == started && established + failed == started && booted + bootFailed >= established
    }
}

/// A cheap PRNG for masking keys and jitter (SystemRandomNumberGenerator costs a syscall each time).
struct XorShift: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// Everything of one event loop: its chargers, counters and latency histogram. Touched only on its loop.
final class LoopWorker {
    let loop: EventLoop
    let plan: LoadPlan
    let clock = ClockText()
    var random: XorShift
    private(set) var chargers: [BenchCharger] = []
    private var sweeper: RepeatedTask?
    private(set) var measuring = false
    private(set) var stopping = false
    private var windowStart: UInt64 = .max
    private var windowEnd: UInt64 = .max
    var stats = WorkerSnapshot.empty
    var progress = Progress()
    /// Resolved once per worker: connects skip the resolver.
    private lazy var address: SocketAddress? = try? SocketAddress.makeAddressResolvingHost(
        plan.target.host, port: plan.target.port)

    init(loop: EventLoop, plan: LoadPlan, seed: UInt64) {
        self.loop = loop
        self.plan = plan
        self.random = XorShift(seed: seed)
    }

    func startSweeper() {
        sweeper = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.sweep()
        }
    }

    var outstandingCount: Int { chargers.reduce(0) { $0 + ($1.hasOutstanding ? 1 : 0) } }
    var openCount: Int { chargers.reduce(0) { $0 + ($1.isOpen ? 1 : 0) } }

    // MARK: Connecting

    func connect(_ index: Int) {
        progress.attempts += 1
        let identity = "\(plan.identityPrefix)\(index)"
        let charger: BenchCharger =
            if let soap = plan.soap {
                SOAPCharger(identity: identity, index: index, worker: self, version: soap)
            } else {
                ChargerHandler(identity: identity, index: index, worker: self)
            }
        chargers.append(charger)
        guard let address else {
            charger.failed("resolve")
            return
        }
        charger.connect(to: address)
        loop.scheduleTask(in: plan.connectTimeout) {
            if charger.state == .connecting {
                charger.failed("timeout")
                charger.abort()
            }
        }
    }

    static func classify(_ error: Error) -> String {
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first { return classify(first.error) }
            return "connect"
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "refused"
            case EMFILE, ENFILE: return "fd_limit"
            case EADDRNOTAVAIL: return "no_ports"
            case ETIMEDOUT: return "timeout"
            case ECONNRESET: return "reset"
            default: return "errno_\(e.errnoCode)"
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timeout" }
        return "other"
    }

    // MARK: Phases

    func begin(windowStart: UInt64) {
        self.windowStart = windowStart
        measuring = true
        for charger in chargers where charger.state == .booted { charger.startScenario() }
    }

    func stop(windowEnd: UInt64) {
        self.windowEnd = windowEnd
        stopping = true
        for charger in chargers {
            charger.stopScenario()
            // Sent after the end of the window but before this loop heard of it: counted as sent when the end was
            // not known yet; its answer will not count, so neither does it.
            if let sentAt = charger.outstandingSentAt, sentAt >= windowEnd, sentAt >= windowStart { stats.sent -= 1 }
        }
    }

    func closeAll() {
        sweeper?.cancel()
        for charger in chargers { charger.close() }
    }

    func snapshot() -> WorkerSnapshot {
        var s = stats
        s.unanswered = outstandingCount
        s.connectionsOpenAtEnd = openCount
        return s
    }

    // MARK: Accounting (called by chargers on this loop)

    func inWindow(_ t: UInt64) -> Bool { t >= windowStart && t < windowEnd }

    func recordSent(at t: UInt64) {
        if inWindow(t) { stats.sent += 1 }
    }

    func recordAnswer(sentAt: UInt64, now: UInt64, error: Bool) {
        stats.answeredTotal += 1
        progress.answered += 1
        guard inWindow(sentAt) else { return }
        if error { stats.errored += 1 } else { stats.answered += 1 }
        _ = stats.latency.record(max(1, now &- sentAt))
    }

    func recordTimeout(sentAt: UInt64) {
        if inWindow(sentAt) { stats.timedOut += 1 }
    }

    /// Times a CALL out when it has waited more than --call-timeout.
    private func sweep() {
        let now = monotonicNanos()
        for charger in chargers { charger.checkTimeout(now: now, limit: plan.callTimeout) }
    }
}

/// Counters and latency of one event loop (or, added up, of the run).
struct WorkerSnapshot {
    var sent = 0
    var answered = 0
    var errored = 0
    var timedOut = 0
    var unanswered = 0
    var answeredTotal = 0
    var bootsSent = 0
    var bootsAccepted = 0
    var bootsRejected = 0
    var established = 0
    var failures: [String: Int] = [:]
    var closedByPeer = 0
    var connectionsOpenAtEnd = 0
    var openLoopDelayed = 0
    var openLoopDropped = 0
    /// SOAP answers (BootNotifications and those outside the window included) counted as errored: HTTP status other
    /// than 200 without a SOAP Fault, a SOAP Fault, a 200 without the expected response element.
    var soapHTTPErrors = 0
    var soapFaults = 0
    var soapMalformed = 0
    /// Nanoseconds from the write of a CALL to its answer.
    var latency: Histogram<UInt64>

    static var empty: WorkerSnapshot {
        WorkerSnapshot(
            latency: Histogram(
                lowestDiscernibleValue: 1, highestTrackableValue: 300_000_000_000,
                numberOfSignificantValueDigits: .three))
    }

    mutating func add(_ o: WorkerSnapshot) {
        sent += o.sent
        answered += o.answered
        errored += o.errored
        timedOut += o.timedOut
        unanswered += o.unanswered
        answeredTotal += o.answeredTotal
        bootsSent += o.bootsSent
        bootsAccepted += o.bootsAccepted
        bootsRejected += o.bootsRejected
        established += o.established
        failures.merge(o.failures, uniquingKeysWith: +)
        closedByPeer += o.closedByPeer
        connectionsOpenAtEnd += o.connectionsOpenAtEnd
        openLoopDelayed += o.openLoopDelayed
        openLoopDropped += o.openLoopDropped
        soapHTTPErrors += o.soapHTTPErrors
        soapFaults += o.soapFaults
        soapMalformed += o.soapMalformed
        latency.add(o.latency)
    }
}
