import NIOConcurrencyHelpers
import NIOCore

/// Counts failed authentications and locks out who keeps failing, on two keys:
/// - one identity from one remote address: `maxFailures` failures inside `window` lock that pair out for
///   `duration`. Keyed by the pair, not the address alone: behind a carrier NAT many cellular chargers share one
///   public address, and one charger with a wrong password must not lock out its neighbours.
/// - one remote address, over every identity: `maxFailuresPerAddress` failures (much higher) lock the whole
///   address out — someone spraying identities, or TLS handshakes that fail (no identity yet).
/// A locked pair or address is refused without its credentials being checked.
final class Lockout: Sendable {
    private struct Record: Sendable {
        var failures: [NIODeadline] = []
        var lockedUntil: NIODeadline?
    }

    private struct Key: Hashable, Sendable {
        var address: String
        /// nil: the address over every identity.
        var identity: String?
    }

    private let configuration: LockoutConfiguration
    private let table = NIOLockedValueBox<[Key: Record]>([:])

    init(_ configuration: LockoutConfiguration) {
        self.configuration = configuration
    }

    /// How long the identity stays locked out at this address (the longer of its own lock and the address's), or
    /// nil when it may try.
    func remaining(address: String, identity: String, now: NIODeadline = .now()) -> TimeAmount? {
        table.withLockedValue { records in
            [Key(address: address, identity: identity), Key(address: address, identity: nil)].compactMap { key in
                guard let until = records[key]?.lockedUntil else { return nil }
                if until > now { return until - now }
                records[key] = nil
                return nil
            }.max()
        }
    }

    /// Records a failure of `identity` from `address` (nil: before any identity, a failed TLS handshake); true
    /// when it locks the pair or the address out.
    @discardableResult
    func recordFailure(address: String, identity: String?, now: NIODeadline = .now()) -> Bool {
        table.withLockedValue { records in
            var locked = Self.count(
                Key(address: address, identity: nil), limit: configuration.maxFailuresPerAddress, in: &records,
                now: now, configuration: configuration)
            if let identity {
                locked =
                    Self.count(
                        Key(address: address, identity: identity), limit: configuration.maxFailures, in: &records,
                        now: now, configuration: configuration) || locked
            }
            // Keep the table from growing without bound under a spray of addresses and identities.
            if records.count > 100_000 {
                records = records.filter { ($0.value.lockedUntil ?? now) > now }
            }
            return locked
        }
    }

    /// A success clears the pair's failures (not the address's: other identities' failures still count there).
    func recordSuccess(address: String, identity: String) {
        table.withLockedValue { records in
            let key = Key(address: address, identity: identity)
            if records[key]?.lockedUntil == nil { records[key] = nil }
        }
    }

    private static func count(
        _ key: Key, limit: Int, in records: inout [Key: Record], now: NIODeadline,
        configuration: LockoutConfiguration
    ) -> Bool {
        var record = records[key] ?? Record()
        // At most `limit` failures are kept: a record cannot grow past its threshold.
        record.failures = record.failures.filter { now - $0 < configuration.window }.suffix(limit - 1) + [now]
        var locked = false
        if record.failures.count >= limit {
            record.lockedUntil = now + configuration.duration
            record.failures = []
            locked = true
        }
        records[key] = record
        return locked
    }
}
