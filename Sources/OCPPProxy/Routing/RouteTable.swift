import OCPP

/// `routing:`: which upstream each charger's link goes to.
public struct RoutingConfiguration: Sendable {
    /// The upstream of a charger no override and no rule names (`routing.default`).
    public var defaultUpstream: String
    /// `routing.rules`, in the file's order: the first that matches wins.
    public var rules: [RouteRule]

    public init(defaultUpstream: String, rules: [RouteRule] = []) {
        self.defaultUpstream = defaultUpstream
        self.rules = rules
    }
}

/// One `routing.rules[]` entry: chargers whose identity matches go to `upstream`.
public struct RouteRule: Sendable, Equatable {
    public var match: IdentityPattern
    public var upstream: String
    /// `routing.rules[].shadow`: the upstream these chargers' CALLs are copied to as well.
    public var shadow: String?

    public init(match: IdentityPattern, upstream: String, shadow: String? = nil) {
        self.match = match
        self.upstream = upstream
        self.shadow = shadow
    }
}

/// Where one charger's link goes, and why: what `GET /api/routes` shows.
public struct Route: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// `chargers[].upstream` names it.
        case override
        /// The first `routing.rules[]` entry whose pattern matches (its index and pattern).
        case rule(index: Int, match: String)
        /// `routing.default`.
        case `default`
        /// Set through the admin API (`PUT /api/chargers/{identity}/route`) and kept in the state store.
        case api

        /// As the admin API writes it.
        public var name: String {
            switch self {
            case .override: return "override"
            case .rule: return "rule"
            case .default: return "default"
            case .api: return "api"
            }
        }
    }

    /// The upstream's name.
    public var upstream: String
    public var reason: Reason
    /// The upstream its CALLs are copied to as well (`chargers[].shadow`, else the first matching rule's), never
    /// the upstream itself.
    public var shadow: String? = nil
}

/// Resolves a charger's route from the configuration: its own `chargers[].upstream` over the rules, the first
/// matching rule over `routing.default`. A value, read by every admission; a later layer (routes set through the
/// admin API and kept in the state store) goes over it, since such a route is an override the operator made.
public struct RouteTable: Sendable {
    public let routing: RoutingConfiguration
    private let chargers: [ChargerIdentity: ChargerRegistration]

    public init(_ routing: RoutingConfiguration, chargers: [ChargerIdentity: ChargerRegistration]) {
        self.routing = routing
        self.chargers = chargers
    }

    public func route(for identity: ChargerIdentity) -> Route {
        let rule = routing.rules.indices.first { routing.rules[$0].match.matches(identity.value) }
        var route: Route
        if let name = chargers[identity]?.upstream {
            route = Route(upstream: name, reason: .override)
        } else if let index = rule {
            route = Route(
                upstream: routing.rules[index].upstream,
                reason: .rule(index: index, match: routing.rules[index].match.text))
        } else {
            route = Route(upstream: routing.defaultUpstream, reason: .default)
        }
        let shadow = chargers[identity]?.shadow ?? rule.flatMap { routing.rules[$0].shadow }
        if shadow != route.upstream { route.shadow = shadow }
        return route
    }
}
