import Logging
import NIOCore
import NIOPosix
import NIOSSL
import OCPPRules
import ServiceLifecycle

/// The running proxy as a swift-service-lifecycle service: binds every listener and the admin endpoint,
/// serves until a graceful shutdown is requested, then stops accepting, closes every charger's links with
/// 1001 and waits at most `shutdown.gracePeriod` for them to go.
public final class ProxyServer: Service, Sendable {
    private let configuration: ProxyConfiguration
    private let metrics: ProxyMetrics
    private let logger: Logger
    private let readiness = Readiness()
    private let group: EventLoopGroup
    private let rules: RuleLibrary?
    /// The file the configuration came from: SIGHUP reads its routes again.
    private let configurationPath: String?

    public init(
        configuration: ProxyConfiguration, rules: RuleLibrary? = nil, metrics: ProxyMetrics = ProxyMetrics(),
        logger: Logger, configurationPath: String? = nil
    ) {
        self.configurationPath = configurationPath
        self.rules = rules
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
    }

    /// State, TLS contexts and credentials; failures end the start with one line naming the key.
    private func prepare() async throws -> (ProxyContext, StateStore) {
        let store: StateStore
        if let path = configuration.stateSQLitePath {
            do {
                store = try await SQLiteStateStore.open(
                    path: path, eventLoop: group.any(), logger: logger, defaultUpstream: configuration.upstream.name,
                    seqNoBlock: Int64(configuration.stateSeqNoBlock),
                    checkpoints: .init(interval: configuration.stateCheckpointInterval))
            } catch {
                throw StartupError("state.sqlite: cannot open \(path): \(error)")
            }
        } else {
            logger.warning("no state.sqlite configured: CSMS-set upstream passwords are kept in memory only")
            store = MemoryStateStore(eventLoop: group.any())
        }
        var listenerTLS: [String: ListenerTLS] = [:]
        for (index, listener) in configuration.listeners.enumerated() {
            guard let tls = listener.tls else { continue }
            do {
                listenerTLS[listener.name] = try ListenerTLS(tls, profile: listener.securityProfile)
            } catch {
                throw StartupError("listeners[\(index)].tls: cannot set up TLS: \(error)")
            }
            if tls.allowLegacyTLS {
                logger.warning(
                    "tls.allowLegacyTLS is on: TLS 1.0/1.1 with TLS_RSA_WITH_AES_128_CBC_SHA is accepted",
                    metadata: ["listener": "\(listener.name)"])
            }
        }
        // Each upstream its own context: its CA, its client certificate.
        var upstreamTLS: [String: NIOSSLContext] = [:]
        for upstream in configuration.upstreams {
            guard let tls = upstream.tls else { continue }
            do {
                upstreamTLS[upstream.name] = try OCPPTLS.clientContext(tls)
            } catch {
                throw StartupError("\(upstream.key).tls: cannot set up TLS: \(error)")
            }
        }
        for registration in configuration.chargers.values {
            if case .plaintext = registration.credential {
                logger.warning(
                    "charger has a plaintext password in the configuration; use passwordHash outside development",
                    metadata: ["identity": "\(registration.identity)"])
            }
        }
        // Run by `serve` and `check-config` before this point already; a caller that skipped them stops here.
        if let problem = ConfigurationChecks.problems(configuration, rules: rules).first {
            throw StartupError(problem)
        }
        let persisted = try await store.upstreamPasswords().get()
        let names = Set(configuration.upstreams.map(\.name))
        for orphan in Set(persisted.keys.map(\.upstream)).subtracting(names).sorted() {
            logger.warning(
                "state.sqlite holds CSMS-set upstream passwords of upstream \(orphan), which is not configured; they are kept and unused"
            )
        }
        let routes = configuration.routes
        let credentials = UpstreamCredentials(
            configured: configuration.chargers, persisted: persisted, store: store,
            route: { routes.route(for: $0).upstream })
        let audit = try configuration.audit.map { audit throws(StartupError) in
            try AuditLog.open(configuration: audit, metrics: metrics, logger: logger)
        }
        var overrides = try await store.routeOverrides().get()
        for (identity, upstream) in overrides.sorted(by: { $0.key < $1.key }) where !names.contains(upstream) {
            logger.warning(
                "state.sqlite routes \(identity) to upstream \(upstream), which is not configured; it follows the configuration's route until routed again"
            )
            overrides[identity] = nil
        }
        let runtime = ProxyContext(
            configuration: configuration, metrics: metrics, logger: logger, listenerTLS: listenerTLS,
            upstreamTLS: upstreamTLS, upstreamCredentials: credentials, rules: rules, stateStore: store, audit: audit,
            routeOverrides: overrides)
        return (runtime, store)
    }

    /// Where chargers reach a listener, for the log.
    static func address(of listener: ListenerConfiguration) -> String {
        let secure = listener.tls != nil
        switch listener.transport {
        case .websocket:
            return "\(secure ? "wss" : "ws")://\(listener.host):\(listener.port)\(listener.path)/{identity}"
        case .soap:
            return "\(secure ? "https" : "http")://\(listener.host):\(listener.port)\(listener.path)"
        }
    }

    /// The SOAP messages of 1.5 and 1.6, from the layouts in the rules directory (generated from the WSDLs).
    private func soapMessages() throws -> SOAPMessages {
        guard let directory = configuration.rulesDirectory else {
            throw StartupError("a SOAP listener needs rules: the rules directory holds the SOAP message layouts")
        }
        do {
            return try SOAPMessages(
                rulesDirectory: directory,
                maxBytes: configuration.soapMaxBodyBytes)
        } catch {
            throw StartupError("rules: cannot read the SOAP layouts: \(error)")
        }
    }

    private func soapClient() throws -> SOAPClient {
        let maxBytes = configuration.soapMaxBodyBytes
        guard let ca = configuration.soap.endpointCA else { return SOAPClient(tls: nil, maxResponseBytes: maxBytes) }
        do {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            return SOAPClient(tls: try NIOSSLContext(configuration: tls), maxResponseBytes: maxBytes)
        } catch {
            throw StartupError("soap.endpointCA: cannot read \(ca): \(error)")
        }
    }

    public func run() async throws {
        let configuration = self.configuration
        let logger = self.logger
        let (runtime, store) = try await prepare()

        var channels: [Channel] = []
        var soap: (SOAPMessages, SOAPClient)?
        for (index, listenerConfiguration) in configuration.listeners.enumerated() {
            do {
                switch listenerConfiguration.transport {
                case .websocket:
                    let listener = ChargerListener(configuration: listenerConfiguration, runtime: runtime)
                    channels.append(try await listener.bind(on: group).get())
                case .soap:
                    // Read and made once, for every SOAP listener.
                    if soap == nil { soap = (try soapMessages(), try soapClient()) }
                    guard let (messages, client) = soap else { break }
                    let chargers = SOAPChargers(
                        listener: listenerConfiguration, runtime: runtime, messages: messages, client: client)
                    let listener = SOAPListener(
                        configuration: listenerConfiguration, runtime: runtime, chargers: chargers)
                    channels.append(try await listener.bind(on: group).get())
                }
            } catch let error as StartupError {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw error
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw StartupError(
                    "listeners[\(index)] (\(listenerConfiguration.name)): cannot listen on \(listenerConfiguration.host):\(listenerConfiguration.port): \(error)"
                )
            }
            logger.info(
                "listening for chargers",
                metadata: [
                    "listener": "\(listenerConfiguration.name)",
                    "address": "\(Self.address(of: listenerConfiguration))",
                    "transport": "\(listenerConfiguration.transport)",
                    "securityProfile": "\(listenerConfiguration.securityProfile)",
                    "versions": "\(listenerConfiguration.versions.map(\.rawValue).joined(separator: ","))",
                    "eventLoops": "\(configuration.eventLoops)",
                ])
            for version in listenerConfiguration.versions {
                for upstream in configuration.upstreams {
                    guard runtime.upstreams[upstream.name]?.canServe(version, rules: rules) == false else { continue }
                    logger.warning(
                        "\(version) chargers on this listener routed to upstream \(upstream.name) will be refused: it speaks \(upstream.version) and no rules translate between them",
                        metadata: ["listener": "\(listenerConfiguration.name)"])
                }
            }
        }
        var adminChannel: Channel?
        if let admin = configuration.admin {
            do {
                adminChannel = try await AdminServer(configuration: admin, runtime: runtime, readiness: readiness).bind(
                    on: group
                ).get()
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw StartupError("admin: cannot listen on \(admin.host):\(admin.port): \(error)")
            }
            logger.info("admin endpoint", metadata: ["address": "http://\(admin.host):\(admin.port)"])
        }
        for upstream in configuration.upstreams {
            logger.info(
                "upstream",
                metadata: [
                    "name": "\(upstream.name)", "url": "\(upstream.url)/{identity}", "version": "\(upstream.version)",
                    "default": "\(upstream.name == configuration.routing.defaultUpstream)",
                ])
        }
        // Watches memory, event-loop lag and pending CALLs from now on; at `stop` these listeners stop accepting.
        let overload = configuration.overload.map {
            OverloadMonitor(
                configuration: $0, runtime: runtime, loops: Array(group.makeIterator()), listeners: channels)
        }
        overload?.start()
        defer { overload?.stop() }
        readiness.isReady = true

        // Serve until SIGTERM / SIGINT (or cancellation). Services shut down in reverse order: certificate reloads
        // stop, the listeners stop accepting (readyz 503), every session closes, then the admin endpoint.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // First to start, last to stop: the audit log records every session's end before it closes.
        if let audit = runtime.audit {
            audit.start()
            services.append(.init(service: AuditService(log: audit)))
        }
        if let adminChannel { services.append(.init(service: ChannelService(channel: adminChannel))) }
        services.append(
            .init(
                service: SessionCloser(
                    registry: runtime.registry, gracePeriod: configuration.shutdown.gracePeriod, logger: logger)))
        services.append(.init(service: ListenerService(channels: channels, readiness: readiness, logger: logger)))
        var onHangup: (@Sendable () -> Void)?
        if let path = configurationPath { onHangup = { runtime.reloadRoutes(from: path) } }
        let reloader = TLSReloader(
            listenerTLS: runtime.listenerTLS, logger: logger, audit: runtime.audit, onHangup: onHangup)
        services.append(.init(service: reloader))
        try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
        try? await store.close().get()
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }
}

/// The proxy could not start: one line naming what and where.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
