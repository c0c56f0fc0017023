import NIOConcurrencyHelpers
import NIOCore

/// Counts failed authentications per remote address; an address with `maxFailures` failures inside
/// `window` is refused for `duration` without its credentials being checked.
final class Lockout: Sendable {
    private struct Record: Sendable {
        var failures: [NIODeadline] = []
        var lockedUntil: NIODeadline?
    }

    private let configuration: LockoutConfiguration
    private let table = NIOLockedValueBox<[String: Record]>([:])

    init(_ configuration: LockoutConfiguration) {
        self.configuration = configuration
    }

    /// How long the address stays locked out, or nil when it may try.
    func remaining(for address: String, now: NIODeadline = .now()) -> TimeAmount? {
        table.withLockedValue { records in
            guard let until = records[address]?.lockedUntil else { return nil }
            if until > now { return until - now }
            records[address] = nil
            return nil
        }
    }

    /// Records a failure; true when it locks the address out.
    @discardableResult
    func recordFailure(for address: String, now: NIODeadline = .now()) -> Bool {
        table.withLockedValue { records in
            var record = records[address] ?? Record()
            record.failures = record.failures.filter { now - $0 < configuration.window } + [now]
            var locked = false
            if record.failures.count >= configuration.maxFailures {
                record.lockedUntil = now + configuration.duration
                record.failures = []
                locked = true
            }
            records[address] = record
            // Keep the table from growing without bound under a spray of addresses.
            if records.count > 100_000 { records = records.filter { ($0.value.lockedUntil ?? now) > now } }
            return locked
        }
    }

    func recordSuccess(for address: String) {
        table.withLockedValue { records in
            if records[address]?.lockedUntil == nil { records[address] = nil }
        }
    }
}
