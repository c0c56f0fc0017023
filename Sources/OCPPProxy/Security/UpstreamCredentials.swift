import NIOConcurrencyHelpers
import NIOCore
import OCPP

/// Whose CSMS-set upstream password a row of the state store holds: a password belongs to the upstream that set it.
struct UpstreamCredentialKey: Hashable, Sendable {
    var upstream: String
    var identity: String
}

/// The upstream password to use for each charger toward each upstream: a CSMS-set one (persisted, for that upstream)
/// wins over the configured one (`chargers[].upstreamPasswords`, else `chargers[].upstream.password` for the
/// upstream the configuration routes the charger to).
final class UpstreamCredentials: Sendable {
    private let configured: [ChargerIdentity: ChargerRegistration]
    private let overrides: NIOLockedValueBox<[UpstreamCredentialKey: String]>
    private let store: StateStore
    /// The configuration's route of a charger: where `chargers[].upstream.password` applies.
    private let route: @Sendable (ChargerIdentity) -> String

    init(
        configured: [ChargerIdentity: ChargerRegistration], persisted: [UpstreamCredentialKey: String],
        store: StateStore,
        route: @escaping @Sendable (ChargerIdentity) -> String = { _ in UpstreamConfiguration.defaultName }
    ) {
        self.configured = configured
        self.overrides = NIOLockedValueBox(persisted)
        self.store = store
        self.route = route
    }

    func password(for identity: ChargerIdentity, upstream: String = UpstreamConfiguration.defaultName) -> String? {
        let key = UpstreamCredentialKey(upstream: upstream, identity: identity.value)
        if let set = overrides.withLockedValue({ $0[key] }) { return set }
        return configured[identity]?.upstreamPassword(for: upstream, routedTo: route(identity))
    }

    /// Persists first; the new password is used from the charger's next connection to that upstream on.
    func update(_ password: String, for identity: ChargerIdentity, upstream: String = UpstreamConfiguration.defaultName)
        -> EventLoopFuture<Void>
    {
        store.setUpstreamPassword(password, for: identity, upstream: upstream).map {
            self.overrides.withLockedValue {
                $0[UpstreamCredentialKey(upstream: upstream, identity: identity.value)] = password
            }
        }
    }
}
