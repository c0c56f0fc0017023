import NIOConcurrencyHelpers
import NIOCore
import OCPP

/// The upstream password to use for each charger: a CSMS-set one (persisted) wins over the configured one.
final class UpstreamCredentials: Sendable {
    private let configured: [ChargerIdentity: ChargerRegistration]
    private let overrides: NIOLockedValueBox<[String: String]>
    private let store: StateStore

    init(configured: [ChargerIdentity: ChargerRegistration], persisted: [String: String], store: StateStore) {
        self.configured = configured
        self.overrides = NIOLockedValueBox(persisted)
        self.store = store
    }

    func password(for identity: ChargerIdentity) -> String? {
        overrides.withLockedValue { $0[identity.value] } ?? configured[identity]?.upstreamPassword
    }

    /// Persists first; the new password is used from the charger's next upstream connection on.
    func update(_ password: String, for identity: ChargerIdentity) -> EventLoopFuture<Void> {
        store.setUpstreamPassword(password, for: identity).map {
            self.overrides.withLockedValue { $0[identity.value] = password }
        }
    }
}
