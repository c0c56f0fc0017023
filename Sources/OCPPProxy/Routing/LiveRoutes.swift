import NIOConcurrencyHelpers
import OCPP

/// The routes in force: the configuration's (replaced when SIGHUP reloads them) under the routes an operator set
/// through the admin API (`PUT /api/chargers/{identity}/route`, kept in the state store). Read by every admission
/// and by the admin API, from any thread.
final class LiveRoutes: Sendable {
    private let state: NIOLockedValueBox<(table: RouteTable, overrides: [String: String])>

    init(_ table: RouteTable, overrides: [String: String] = [:]) {
        state = NIOLockedValueBox((table, overrides))
    }

    /// The configuration's routes, as last loaded.
    var table: RouteTable { state.withLockedValue { $0.table } }

    /// The routes set through the admin API, by identity.
    var overrides: [String: String] { state.withLockedValue { $0.overrides } }

    /// An override set through the API wins; the shadow stays the configuration's (never the charger's own upstream).
    func route(for identity: ChargerIdentity) -> Route {
        let (table, override) = state.withLockedValue { ($0.table, $0.overrides[identity.value]) }
        let configured = table.route(for: identity)
        guard let override else { return configured }
        var route = Route(upstream: override, reason: .api)
        if configured.shadow != override { route.shadow = configured.shadow }
        return route
    }

    func replace(_ table: RouteTable) {
        state.withLockedValue { $0.table = table }
    }

    /// nil removes the override: the charger follows the configuration again.
    func setOverride(_ upstream: String?, for identity: ChargerIdentity) {
        state.withLockedValue { $0.overrides[identity.value] = upstream }
    }
}
