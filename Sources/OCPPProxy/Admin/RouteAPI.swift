import Foundation
import NIOCore
import NIOHTTP1
import OCPP

/// `PUT /api/chargers/{identity}/route` (and GET, DELETE): an operator moves one charger to another upstream. The
/// route is kept in the state store (it survives restarts) and a connected charger is cut over without
/// reconnecting. Every `/api/` request needs `admin.token` as a bearer token when one is configured; without one the
/// API is read-only.
extension AdminHandler {
    struct Refusal {
        var status: HTTPResponseStatus
        var body: JSONValue
    }

    /// nil: the request may go on. `mutates`: it would change a route.
    func authorize(_ request: HTTPRequestHead, mutates: Bool) -> Refusal? {
        guard let token = runtime.configuration.admin?.token else {
            guard mutates else { return nil }
            return Refusal(
                status: .forbidden,
                body: .object(["error": .string("admin.token is not configured: the admin API is read-only")]))
        }
        let presented = request.headers["authorization"].first ?? ""
        let prefix = "Bearer "
        guard presented.hasPrefix(prefix),
            Self.equalInConstantTime(Array(presented.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8))
        else {
            return Refusal(
                status: .unauthorized,
                body: .object([
                    "error": .string(
                        presented.isEmpty
                            ? "the admin API needs Authorization: Bearer <admin.token>" : "wrong admin token")
                ]))
        }
        return nil
    }

    /// The identity of `/api/chargers/{identity}/route`, percent-decoded.
    static func chargerRoutePath(_ path: String) -> String? {
        let prefix = "/api/chargers/"
        let suffix = "/route"
        guard path.hasPrefix(prefix), path.hasSuffix(suffix), path.count > prefix.count + suffix.count else {
            return nil
        }
        let raw = String(path.dropFirst(prefix.count).dropLast(suffix.count))
        guard !raw.contains("/") else { return nil }
        return raw.removingPercentEncoding ?? raw
    }

    func route(
        _ text: String, method: HTTPMethod, body: [UInt8], _ context: ChannelHandlerContext, _ request: HTTPRequestHead
    ) {
        guard let identity = try? ChargerIdentity(text) else {
            return respond(context, request, .badRequest, error("not a charger identity: \(text)"))
        }
        switch method {
        case .GET, .HEAD:
            respond(context, request, .ok, describe(identity, runtime.routes.route(for: identity)))
        case .PUT:
            guard case .object(let fields)? = JSONValue(parsing: body), case .string(let name)? = fields["upstream"]
            else {
                return respond(
                    context, request, .badRequest, error(#"expected a JSON body {"upstream": "<name>"}"#))
            }
            guard let upstream = runtime.upstreams[name] else {
                return respond(
                    context, request, .badRequest,
                    error(
                        "unknown upstream \"\(name)\"; expected one of \(runtime.configuration.upstreams.map(\.name).joined(separator: ", "))"
                    ))
            }
            move(identity, to: upstream.name, context, request)
        case .DELETE:
            move(identity, to: nil, context, request)
        default:
            respond(
                context, request, .methodNotAllowed, "text/plain", Array("GET, PUT or DELETE\n".utf8),
                extra: [("Allow", "GET, PUT, DELETE")])
        }
    }

    /// Checks that a connected charger can be served there, stores the route, then cuts the charger over.
    private func move(
        _ identity: ChargerIdentity, to name: String?, _ context: ChannelHandlerContext, _ request: HTTPRequestHead
    ) {
        let runtime = self.runtime
        let session = runtime.registry.sessions.first { $0.identity == identity }
        let version =
            session.map { session in session.eventLoop.submit { Optional(session.context.chargerVersion) } }
            ?? context.eventLoop.makeSucceededFuture(nil)
        version.hop(to: context.eventLoop).flatMap { version -> EventLoopFuture<Refusal?> in
            if let version, let name, let upstream = runtime.upstreams[name],
                !upstream.canServe(version, rules: runtime.rules)
            {
                return context.eventLoop.makeSucceededFuture(
                    Refusal(
                        status: .conflict,
                        body: self.error(
                            "\(identity) speaks \(version) and upstream \(name) speaks \(upstream.configuration.version); no rules translate between them"
                        )))
            }
            return runtime.stateStore.setRouteOverride(name, for: identity).hop(to: context.eventLoop).map { nil }
        }.whenComplete { result in
            switch result {
            case .success(let refusal?):
                self.respond(context, request, refusal.status, refusal.body)
            case .success(nil):
                runtime.routes.setOverride(name, for: identity)
                let (route, upstream) = runtime.route(for: identity)
                if let session {
                    session.eventLoop.execute { session.cutOver(to: upstream, route: route) }
                }
                runtime.logger.notice(
                    "route of \(identity) \(name.map { "set to upstream \($0)" } ?? "back to the configuration's") through the admin API",
                    metadata: ["upstream": "\(route.upstream)", "connected": "\(session != nil)"])
                var body = self.describe(identity, route)
                if case .object(var fields) = body {
                    fields["connected"] = .bool(session != nil)
                    body = .object(fields)
                }
                self.respond(context, request, .ok, body)
            case .failure(let failure):
                self.respond(context, request, .internalServerError, self.error("cannot store the route: \(failure)"))
            }
        }
    }

    private func describe(_ identity: ChargerIdentity, _ route: Route) -> JSONValue {
        var fields: JSONObject = [
            "identity": .string(identity.value), "upstream": .string(route.upstream),
            "reason": .string(route.reason.name),
        ]
        if let shadow = route.shadow { fields["shadow"] = .string(shadow) }
        return .object(fields)
    }

    private func error(_ message: String) -> JSONValue { .object(["error": .string(message)]) }

    func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: JSONValue
    ) {
        let extra: [(String, String)] =
            status == .unauthorized ? [("WWW-Authenticate", #"Bearer realm="ocpp-proxy""#)] : []
        respond(context, request, status, "application/json", body.wireBytes + [UInt8(ascii: "\n")], extra: extra)
    }

    /// Compares without returning early at the first difference: the time taken does not tell how much matched.
    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
