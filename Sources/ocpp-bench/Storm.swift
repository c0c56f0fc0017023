import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A reconnect storm: every charger connects at once (as after a CSMS or network outage), from several loopback
/// source addresses; a charger refused with 429 or 503 waits its `Retry-After` (times 1 to 2, as chargers spread
/// their retries) and tries again, until every charger is in. Reports how fast they got in and what it took.
struct Storm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect N chargers at once, honouring Retry-After, and report how fast they are admitted.")

    @Option(help: "The proxy's WebSocket base URL, e.g. ws://127.0.0.1:8180/ocpp (the identity is appended).")
    var url: String

    @Option(help: "The subprotocol offered.")
    var version = "ocpp1.6"

    @Option(help: "Number of chargers.")
    var chargers = 9000

    @Option(help: "Loopback source addresses the chargers are spread over (127.0.0.2, 127.0.0.3, ...).")
    var addresses = 64

    @Option(help: "Seconds for TCP connect plus WebSocket upgrade of one attempt.")
    var connectTimeout = 15.0

    @Option(help: "Give up after this many seconds.")
    var maxSeconds = 600.0

    @Option(help: "Identity prefix; charger n is {prefix}{n}.")
    var prefix = "STORM"

    @Option(help: "Event loop threads (default: the number of cores).")
    var threads: Int?

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "A label copied into the results.")
    var label: String?

    func run() throws {
        guard let target = URL(string: url), let host = target.host, let port = target.port else {
            throw ValidationError("--url: expected ws://HOST:PORT/PATH, got \(url)")
        }
        guard (1...250).contains(addresses) else { throw ValidationError("--addresses: 1 to 250") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        defer { try? group.syncShutdownGracefully() }
        let plan = StormPlan(
            host: host, port: port, path: target.path, version: version,
            connectTimeout: .nanoseconds(Int64(connectTimeout * 1e9)), started: .now())
        let tally = StormTally(chargers: chargers)
        var stormChargers: [StormCharger] = []
        for index in 0..<chargers {
            let source = try SocketAddress(ipAddress: "127.0.0.\(2 + index % addresses)", port: 0)
            let charger = StormCharger(
                identity: "\(prefix)\(index)", source: source, plan: plan, loop: group.next(), tally: tally)
            stormChargers.append(charger)
            charger.loop.execute { charger.attempt() }
        }
        let deadline = Date().addingTimeInterval(maxSeconds)
        var lastPrint = Date()
        while tally.admittedCount < chargers, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            if Date().timeIntervalSince(lastPrint) >= 5 {
                lastPrint = Date()
                FileHandle.standardError.write(Data("storm: \(tally.progress)\n".utf8))
            }
        }
        let report = tally.report(label: label, addresses: addresses)
        print(report.text)
        if let json {
            try report.json.write(to: URL(fileURLWithPath: json))
        }
        for charger in stormChargers { charger.loop.execute { charger.close() } }
        Thread.sleep(forTimeInterval: 1)
    }
}

struct StormPlan: Sendable {
    let host: String
    let port: Int
    let path: String
    let version: String
    let connectTimeout: TimeAmount
    let started: NIODeadline
}

/// What happened to the storm's chargers, from every event loop.
final class StormTally: Sendable {
    private struct State {
        var admitted: [Double] = []
        var attempts = 0
        var refusals: [String: Int] = [:]
        var retryAfter: [Int: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    let chargers: Int

    init(chargers: Int) {
        self.chargers = chargers
    }

    var admittedCount: Int { state.withLockedValue { $0.admitted.count } }

    var progress: String {
        state.withLockedValue { "\($0.admitted.count)/\(chargers) admitted, \($0.attempts) attempts" }
    }

    func attempted() { state.withLockedValue { $0.attempts += 1 } }

    func admitted(after seconds: Double) { state.withLockedValue { $0.admitted.append(seconds) } }

    func refused(_ reason: String, retryAfter: Int?) {
        state.withLockedValue {
            $0.refusals[reason, default: 0] += 1
            if let retryAfter { $0.retryAfter[retryAfter, default: 0] += 1 }
        }
    }

    func report(label: String?, addresses: Int) -> (text: String, json: Data) {
        let state = self.state.withLockedValue { $0 }
        let times = state.admitted.sorted()
        func quantile(_ q: Double) -> Double {
            times.isEmpty ? 0 : times[min(times.count - 1, Int(Double(times.count - 1) * q))]
        }
        // Admissions per whole second since the start: the steady rate is the median of the full seconds.
        var perSecond: [Int: Int] = [:]
        for time in times { perSecond[Int(time), default: 0] += 1 }
        let last = Int(times.last ?? 0)
        let seconds = (0..<max(1, last)).map { perSecond[$0] ?? 0 }
        let steady = seconds.dropFirst(2).sorted()
        let median = steady.isEmpty ? 0 : steady[steady.count / 2]
        let total = times.last ?? 0
        let refusals = state.refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
            separator: ", ")
        let text = """
            storm: \(times.count)/\(chargers) chargers admitted in \(String(format: "%.1f", total)) s from \(addresses) addresses \
            (\(String(format: "%.0f", Double(times.count) / max(total, 0.001)))/s overall, median \(median)/s per full second, \
            first second \(perSecond[0] ?? 0)); \(state.attempts) attempts; refusals: \(refusals.isEmpty ? "none" : refusals); \
            time to admission p50 \(String(format: "%.1f", quantile(0.5))) s, p90 \(String(format: "%.1f", quantile(0.9))) s, \
            max \(String(format: "%.1f", total)) s
            """
        var object: [String: Any] = [
            "chargers": chargers, "admitted": times.count, "addresses": addresses, "seconds": total,
            "attempts": state.attempts, "refusals": state.refusals,
            "retryAfter": Dictionary(uniqueKeysWithValues: state.retryAfter.map { ("\($0.key)", $0.value) }),
            "admittedPerSecondOverall": Double(times.count) / max(total, 0.001),
            "admittedPerSecondMedian": median, "admittedPerSecond": seconds,
            "timeToAdmissionP50": quantile(0.5), "timeToAdmissionP90": quantile(0.9),
        ]
        if let label { object["label"] = label }
        let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return (text, json)
    }
}

/// One charger of the storm: connects, and on a refusal waits its Retry-After and connects again.
final class StormCharger: @unchecked Sendable {
    let identity: String
    let source: SocketAddress
    let plan: StormPlan
    let loop: EventLoop
    let tally: StormTally
    private var channel: Channel?
    private var done = false
    private var closed = false

    init(identity: String, source: SocketAddress, plan: StormPlan, loop: EventLoop, tally: StormTally) {
        self.identity = identity
        self.source = source
        self.plan = plan
        self.loop = loop
        self.tally = tally
    }

    func attempt() {
        guard !done, !closed else { return }
        tally.attempted()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(plan.path)/\(identity)")
        head.headers.add(name: "Host", value: "\(plan.host):\(plan.port)")
        head.headers.add(name: "Sec-WebSocket-Protocol", value: plan.version)
        let version = plan.version
        let outcome = StormOutcome(charger: self)
        let requester = UpgradeRequester(head: head) { reason, retryAfter in
            outcome.failed(reason, retryAfter: retryAfter)
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(plan.connectTimeout)
            .bind(to: source)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 16, automaticErrorHandling: true) {
                    channel, response in
                    channel.eventLoop.makeCompletedFuture {
                        guard response.headers["sec-websocket-protocol"].first == version else {
                            outcome.failed("subprotocol", retryAfter: nil)
                            channel.close(promise: nil)
                            return
                        }
                        let pipeline = channel.pipeline.syncOperations
                        pipeline.removeHandler(requester, promise: nil)
                        try pipeline.addHandler(StormPongHandler())
                        outcome.admitted(channel)
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(requester)
                }
            }
        let timeout = loop.scheduleTask(in: plan.connectTimeout) { outcome.failed("timeout", retryAfter: nil) }
        bootstrap.connect(host: plan.host, port: plan.port).whenComplete { result in
            switch result {
            case .success(let channel):
                outcome.channel = channel
                if outcome.isFinished, !outcome.isAdmitted { channel.close(promise: nil) }
            case .failure:
                outcome.failed("connect_failed", retryAfter: nil)
            }
        }
        outcome.onFinish = { timeout.cancel() }
    }

    fileprivate func admitted(_ channel: Channel) {
        done = true
        self.channel = channel
        tally.admitted(after: Double((NIODeadline.now() - plan.started).nanoseconds) / 1e9)
    }

    fileprivate func refused(_ reason: String, retryAfter: Int?) {
        tally.refused(reason, retryAfter: retryAfter)
        // A charger waits what it was told, spread up to twice that; without a Retry-After, 1 to 2 s.
        let wait = Double(retryAfter ?? 1) * Double.random(in: 1..<2)
        loop.scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) { self.attempt() }
    }

    func close() {
        closed = true
        channel?.close(promise: nil)
    }
}

/// One attempt's outcome, settled once.
final class StormOutcome: @unchecked Sendable {
    let charger: StormCharger
    var channel: Channel?
    var onFinish: (() -> Void)?
    private(set) var isFinished = false
    private(set) var isAdmitted = false

    init(charger: StormCharger) {
        self.charger = charger
    }

    func admitted(_ channel: Channel) {
        guard !isFinished else { return }
        isFinished = true
        isAdmitted = true
        onFinish?()
        charger.admitted(channel)
    }

    func failed(_ reason: String, retryAfter: Int?) {
        guard !isFinished else { return }
        isFinished = true
        onFinish?()
        channel?.close(promise: nil)
        charger.refused(reason, retryAfter: retryAfter)
    }
}

/// Keeps an admitted charger's link alive: answers the proxy's pings.
final class StormPongHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.opcode == .ping {
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)),
                promise: nil)
        }
    }
}
