import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The running proxy as a swift-service-lifecycle service: binds every listener and the admin endpoint,
/// serves until a graceful shutdown is requested, then stops accepting, closes every charger's links with
/// 1001 and waits at most `shutdown.gracePeriod` for them to go.
public final class ProxyServer: Service, @unchecked Sendable {
    private let runtime: ProxyRuntime
    private let readiness = Readiness()
    private let group: EventLoopGroup

    public init(configuration: ProxyConfiguration, metrics: ProxyMetrics = ProxyMetrics(), logger: Logger) {
        self.runtime = ProxyRuntime(configuration: configuration, metrics: metrics, logger: logger)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    }

    public func run() async throws {
        let configuration = runtime.configuration
        let logger = runtime.logger

        var channels: [Channel] = []
        for (index, listenerConfiguration) in configuration.listeners.enumerated() {
            let listener = ChargerListener(configuration: listenerConfiguration, runtime: runtime)
            do {
                channels.append(try await listener.bind(on: group).get())
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw StartupError(
                    "listeners[\(index)] (\(listenerConfiguration.name)): cannot listen on \(listenerConfiguration.host):\(listenerConfiguration.port): \(error)")
            }
            logger.info(
                "listening for chargers",
                metadata: [
                    "listener": "\(listenerConfiguration.name)",
                    "address": "ws://\(listenerConfiguration.host):\(listenerConfiguration.port)\(listenerConfiguration.path)/{identity}",
                    "versions": "\(listenerConfiguration.versions.map(\.rawValue).joined(separator: ","))",
                ])
            for version in listenerConfiguration.versions where !runtime.canServe(version) {
                logger.warning(
                    "\(version) chargers on this listener will be refused: the upstream speaks \(configuration.upstream.version) and this build does not translate",
                    metadata: ["listener": "\(listenerConfiguration.name)"])
            }
        }
        var adminChannel: Channel?
        if let admin = configuration.admin {
            do {
                adminChannel = try await AdminServer(configuration: admin, runtime: runtime, readiness: readiness).bind(on: group).get()
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw StartupError("admin: cannot listen on \(admin.host):\(admin.port): \(error)")
            }
            logger.info("admin endpoint", metadata: ["address": "http://\(admin.host):\(admin.port)"])
        }
        logger.info("upstream", metadata: ["url": "\(configuration.upstream.url)/{identity}", "version": "\(configuration.upstream.version)"])
        readiness.isReady = true

        // Serve until SIGTERM / SIGINT (or cancellation).
        try? await gracefulShutdown()

        logger.info("shutting down: no new connections; closing every charger with 1001")
        readiness.isReady = false
        for channel in channels { try? await channel.close() }
        await closeSessions(within: configuration.shutdown.gracePeriod)
        try? await adminChannel?.close()
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }

    /// Closes every session, again and again for connections that were mid-upgrade, until none is left
    /// or the grace period ends.
    private func closeSessions(within gracePeriod: TimeAmount) async {
        let deadline = NIODeadline.now() + gracePeriod
        while !runtime.registry.isEmpty && NIODeadline.now() < deadline {
            for session in runtime.registry.sessions {
                session.eventLoop.execute {
                    session.close(code: .goingAway, reason: "shutdown", text: "proxy shutting down")
                }
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        if !runtime.registry.isEmpty {
            runtime.logger.warning("grace period over; dropping the connections that are still open")
        }
    }
}

/// The proxy could not start: one line naming what and where.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
