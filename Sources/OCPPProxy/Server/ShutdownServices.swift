import Logging
import NIOCore
import ServiceLifecycle

/// The charger listeners: they accept until graceful shutdown, then readiness goes false and the sockets close.
struct ListenerService: Service {
    let channels: [Channel]
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: no new connections; closing every charger with 1001")
        readiness.isReady = false
        for channel in channels { try? await channel.close() }
    }
}

/// At graceful shutdown, closes every session with 1001, again and again for connections that were mid-upgrade,
/// until none is left or `shutdown.gracePeriod` ends.
struct SessionCloser: Service {
    let registry: SessionRegistry
    let gracePeriod: TimeAmount
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let deadline = NIODeadline.now() + gracePeriod
        while !registry.isEmpty && NIODeadline.now() < deadline {
            for session in registry.sessions {
                session.eventLoop.execute {
                    session.close(code: .goingAway, reason: "shutdown", text: "proxy shutting down")
                }
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        if !registry.isEmpty {
            logger.warning("grace period over; dropping the connections that are still open")
        }
    }
}

/// A bound channel (the admin endpoint) kept open until graceful shutdown reaches it.
struct ChannelService: Service {
    let channel: Channel

    func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
