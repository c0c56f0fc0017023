import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads listener certificates on SIGHUP and when their files change, without touching open connections. A
/// service of the proxy's group: it runs until graceful shutdown.
struct TLSReloader: Service {
    let listenerTLS: [String: ListenerTLS]
    let logger: Logger
    var audit: AuditLog?
    /// What else SIGHUP reloads (the routes of the configuration file).
    var onHangup: (@Sendable () -> Void)?
    /// How often certificate files are checked for changes.
    static let pollInterval = Duration.seconds(2)

    func run() async throws {
        guard !listenerTLS.isEmpty || onHangup != nil else {
            try? await gracefulShutdown()
            return
        }
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in hangups {
                        if !listenerTLS.isEmpty {
                            logger.notice("SIGHUP: reloading TLS certificates")
                            reload(onlyIfChanged: false)
                        }
                        onHangup?()
                    }
                }
                guard !listenerTLS.isEmpty else { return }
                group.addTask {
                    while (try? await Task.sleep(for: Self.pollInterval)) != nil {
                        reload(onlyIfChanged: true)
                    }
                }
            }
        }
    }

    private func reload(onlyIfChanged: Bool) {
        for (name, tls) in listenerTLS {
            tls.reload(onlyIfChanged: onlyIfChanged, logger: logger, listener: name, audit: audit)
        }
    }
}
