import NIOCore
import Testing

@testable import OCPPProxy

/// Lockout takes the time as an argument, so these run on a clock of their own.
@Suite("Lockout of addresses with repeated authentication failures")
struct LockoutTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let lockout = Lockout(LockoutConfiguration(maxFailures: 3, window: .seconds(60), duration: .seconds(300)))

    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func failuresBelowTheLimitDoNotLock() {
        #expect(!lockout.recordFailure(for: "a", now: at(0)))
        #expect(!lockout.recordFailure(for: "a", now: at(1)))
        #expect(lockout.remaining(for: "a", now: at(2)) == nil)
    }

    @Test func theLimitReachedWithinTheWindowLocksForTheDuration() {
        lockout.recordFailure(for: "a", now: at(0))
        lockout.recordFailure(for: "a", now: at(10))
        #expect(lockout.recordFailure(for: "a", now: at(59)))
        #expect(lockout.remaining(for: "a", now: at(59)) == .seconds(300))
        #expect(lockout.remaining(for: "a", now: at(100)) == .seconds(259))
    }

    @Test func failuresOlderThanTheWindowAreForgotten() {
        lockout.recordFailure(for: "a", now: at(0))
        lockout.recordFailure(for: "a", now: at(30))
        // The first failure is 60s old: only two remain inside the window.
        #expect(!lockout.recordFailure(for: "a", now: at(60)))
        #expect(lockout.remaining(for: "a", now: at(60)) == nil)
        #expect(lockout.recordFailure(for: "a", now: at(61)))
    }

    @Test func theLockExpiresAfterTheDurationAndCountingStartsAfresh() {
        for second in 0..<3 { lockout.recordFailure(for: "a", now: at(Int64(second))) }
        #expect(lockout.remaining(for: "a", now: at(301)) == .nanoseconds(1_000_000_000))
        #expect(lockout.remaining(for: "a", now: at(302)) == nil)
        // The failures that led to the lock do not count toward the next one.
        #expect(!lockout.recordFailure(for: "a", now: at(303)))
        #expect(!lockout.recordFailure(for: "a", now: at(304)))
        #expect(lockout.remaining(for: "a", now: at(305)) == nil)
    }

    @Test func aSuccessResetsTheFailureCount() {
        lockout.recordFailure(for: "a", now: at(0))
        lockout.recordFailure(for: "a", now: at(1))
        lockout.recordSuccess(for: "a")
        #expect(!lockout.recordFailure(for: "a", now: at(2)))
        #expect(!lockout.recordFailure(for: "a", now: at(3)))
        #expect(lockout.remaining(for: "a", now: at(4)) == nil)
        #expect(lockout.recordFailure(for: "a", now: at(5)))
    }

    @Test func aSuccessDoesNotLiftALockInForce() {
        for second in 0..<3 { lockout.recordFailure(for: "a", now: at(Int64(second))) }
        lockout.recordSuccess(for: "a")
        #expect(lockout.remaining(for: "a", now: at(3)) == .seconds(299))
    }

    @Test func addressesAreCountedApart() {
        lockout.recordFailure(for: "a", now: at(0))
        lockout.recordFailure(for: "a", now: at(1))
        lockout.recordFailure(for: "b", now: at(1))
        #expect(lockout.recordFailure(for: "a", now: at(2)))
        #expect(lockout.remaining(for: "b", now: at(2)) == nil)
        #expect(!lockout.recordFailure(for: "b", now: at(2)))
    }
}
