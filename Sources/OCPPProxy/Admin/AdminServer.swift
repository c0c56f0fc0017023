import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OCPP

/// The operator's endpoint on its own port: liveness, readiness, Prometheus metrics and the charger list.
final class AdminServer {
    private let configuration: AdminConfiguration
    private let runtime: ProxyContext
    private let readiness: Readiness
    private(set) var channel: Channel?

    init(configuration: AdminConfiguration, runtime: ProxyContext, readiness: Readiness) {
        self.configuration = configuration
        self.runtime = runtime
        self.readiness = readiness
    }

    func bind(on group: EventLoopGroup) -> EventLoopFuture<Channel> {
        let runtime = self.runtime
        let readiness = self.readiness
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHandler(runtime: runtime, readiness: readiness))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .map { channel in
                self.channel = channel
                return channel
            }
    }
}

/// Whether the proxy takes chargers: set once every listener is bound, cleared at shutdown.
final class Readiness: Sendable {
    private let ready = NIOLockedValueBox(false)

    var isReady: Bool {
        get { ready.withLockedValue { $0 } }
        set { ready.withLockedValue { $0 = newValue } }
    }
}

final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let runtime: ProxyContext
    private let readiness: Readiness
    private var assembler = RequestAssembler(maxBody: 4096)

    init(runtime: ProxyContext, readiness: Readiness) {
        self.runtime = runtime
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let (request, body, tooLarge) = assembler.receiveWithBody(unwrapInboundIn(data)) else { return }
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        if path.hasPrefix("/api/") {
            let routeAPI = Self.chargerRoutePath(path)
            let mutates = routeAPI != nil && request.method != .GET && request.method != .HEAD
            if let refusal = authorize(request, mutates: mutates) {
                return respond(context, request, refusal.status, refusal.body)
            }
            if tooLarge {
                return respond(context, request, .payloadTooLarge, .object(["error": .string("body over 4096 bytes")]))
            }
            if let identity = routeAPI { return route(identity, method: request.method, body: body, context, request) }
        }
        route(request, context: context)
    }

    private func route(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let known = ["/healthz", "/readyz", "/metrics", "/api/chargers", "/api/routes"]
        let shadowPrefix = "/api/shadow/"
        guard known.contains(path) || path.hasPrefix(shadowPrefix) else {
            return respond(context, request, .notFound, "text/plain", Array("not found\n".utf8))
        }
        guard request.method == .GET || request.method == .HEAD else {
            return respond(
                context, request, .methodNotAllowed, "text/plain", Array("only GET is allowed\n".utf8),
                extra: [("Allow", "GET, HEAD")])
        }
        if path.hasPrefix(shadowPrefix) {
            let raw = String(path.dropFirst(shadowPrefix.count))
            return shadow(raw.removingPercentEncoding ?? raw, context: context, request: request)
        }
        switch path {
        case "/healthz":
            respond(context, request, .ok, "text/plain", Array("ok\n".utf8))
        case "/readyz":
            // At overload step refuse and above the node admits no new chargers: a load balancer that reads this
            // sends them to another node, while the chargers connected here stay.
            let step = runtime.metrics.overload.step
            let text =
                !readiness.isReady
                ? "not ready\n" : step >= .refuse ? "overloaded (step \(step.rawValue), \(step.name))\n" : "ready\n"
            respond(
                context, request, text == "ready\n" ? .ok : .serviceUnavailable, "text/plain", Array(text.utf8))
        case "/metrics":
            respond(context, request, .ok, "text/plain; version=0.0.4; charset=utf-8", runtime.metrics.exposition())
        case "/api/routes":
            respond(context, request, json: routes(on: context.eventLoop), failure: "cannot list routes")
        default:
            respond(context, request, json: chargers(on: context.eventLoop), failure: "cannot list chargers")
        }
    }

    /// A JSON body read from the sessions: 200 with it, or 500 with `failure`.
    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, json body: EventLoopFuture<[UInt8]>,
        failure: String
    ) {
        body.whenComplete { result in
            switch result {
            case .success(let body): self.respond(context, request, .ok, "application/json", body)
            case .failure:
                self.respond(context, request, .internalServerError, "text/plain", Array("\(failure)\n".utf8))
            }
        }
    }

    /// Each session is read on its own event loop.
    private func chargers(on eventLoop: EventLoop) -> EventLoopFuture<[UInt8]> {
        let snapshots = runtime.registry.sessions.map { session in
            session.eventLoop.submit { session.snapshot() }
        }
        return EventLoopFuture.whenAllSucceed(snapshots, on: eventLoop).flatMapThrowing { list in
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Body: Encodable { var chargers: [ChargerSnapshot] }
            return Array(try encoder.encode(Body(chargers: list.sorted { $0.identity < $1.identity })))
        }
    }

    /// Every configured charger and every connected one, with its effective upstream and why; and the upstreams.
    /// A connected charger's route is the one its session was admitted with.
    private func routes(on eventLoop: EventLoop) -> EventLoopFuture<[UInt8]> {
        let connected = runtime.registry.sessions.map { session in
            session.eventLoop.submit { (session.identity, session.route) }
        }
        let runtime = self.runtime
        return EventLoopFuture.whenAllSucceed(connected, on: eventLoop).flatMapThrowing { sessions in
            var entries: [String: RouteEntry] = [:]
            for identity in runtime.configuration.chargers.keys {
                entries[identity.value] = RouteEntry(
                    identity: identity.value, route: runtime.routes.route(for: identity), configured: true,
                    connected: false)
            }
            for (identity, upstream) in runtime.routes.overrides where entries[identity] == nil {
                entries[identity] = RouteEntry(
                    identity: identity,
                    route: (try? ChargerIdentity(identity)).map(runtime.routes.route(for:))
                        ?? Route(upstream: upstream, reason: .api),
                    configured: false, connected: false)
            }
            for (identity, route) in sessions {
                entries[identity.value] = RouteEntry(
                    identity: identity.value, route: route,
                    configured: runtime.configuration.chargers[identity] != nil, connected: true)
            }
            let upstreams = runtime.configuration.upstreams.map { upstream in
                UpstreamEntry(
                    name: upstream.name, url: upstream.url, version: upstream.version.rawValue,
                    isDefault: upstream.name == runtime.configuration.routing.defaultUpstream,
                    reachable: runtime.upstreams[upstream.name]?.health.isDown == false)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Body: Encodable {
                var routes: [RouteEntry]
                var upstreams: [UpstreamEntry]
            }
            return Array(
                try encoder.encode(
                    Body(routes: entries.values.sorted { $0.identity < $1.identity }, upstreams: upstreams)))
        }
    }

    /// `GET /api/shadow/{identity}`: what the charger's shadow answered differently (the latest divergences) and
    /// how many answers were compared, diverged or were not compared (by reason). 404 for a charger without a shadow.
    private func shadow(_ identity: String, context: ChannelHandlerContext, request: HTTPRequestHead) {
        let report = runtime.shadowReports.report(for: identity)
        let routed = (try? ChargerIdentity(identity)).flatMap { runtime.routes.route(for: $0).shadow }
        guard let shadow = report?.shadow ?? routed else {
            return respond(
                context, request, .notFound, "text/plain", Array("charger \(identity) has no shadow CSMS\n".utf8))
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var latest: [JSONValue] = []
        for outcome in report?.latest.reversed() ?? [] {
            var fields = outcome.fields
            fields["time"] = .string(formatter.string(from: outcome.time))
            latest.append(.object(fields))
        }
        let body: JSONValue = .object([
            "identity": .string(identity), "shadow": .string(shadow),
            "compared": .integer(Int64(report?.compared ?? 0)), "divergent": .integer(Int64(report?.divergent ?? 0)),
            "dropped": .object(JSONObject((report?.dropped ?? [:]).mapValues { JSONValue.integer(Int64($0)) })),
            "shadowCalls": .integer(Int64(report?.shadowCalls ?? 0)),
            "latest": .array(latest),
        ])
        respond(context, request, .ok, "application/json", body.wireBytes)
    }

    func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String,
        _ body: [UInt8], extra: [(String, String)] = []
    ) {
        HTTPResponseWriter.write(
            context, request: request, status: status, contentType: type, body: body, headers: extra,
            keepAlive: request.isKeepAlive)
    }
}

/// One charger of `GET /api/routes`: where its link goes and why (`override`, `rule` with its `match`, `default`).
struct RouteEntry: Encodable {
    var identity: String
    var upstream: String
    var reason: String
    /// The pattern of the rule that chose it (reason `rule`).
    var match: String?
    /// The upstream its CALLs are copied to as well.
    var shadow: String?
    /// Listed in `chargers:`.
    var configured: Bool
    var connected: Bool

    init(identity: String, route: Route, configured: Bool, connected: Bool) {
        self.identity = identity
        self.upstream = route.upstream
        self.shadow = route.shadow
        self.reason = route.reason.name
        if case .rule(_, let match) = route.reason { self.match = match }
        self.configured = configured
        self.connected = connected
    }
}

/// One upstream of `GET /api/routes`.
struct UpstreamEntry: Encodable {
    var name: String
    var url: String
    var version: String
    var isDefault: Bool
    var reachable: Bool

    enum CodingKeys: String, CodingKey {
        case name, url, version, reachable
        case isDefault = "default"
    }
}
