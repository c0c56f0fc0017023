import NIOCore
import Testing

@testable import OCPPProxy

/// Lockout takes the time as an argument, so these run on a clock of their own.
@Suite("Lockout of identities and addresses with repeated authentication failures")
struct LockoutTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let lockout = Lockout(
        LockoutConfiguration(maxFailures: 3, maxFailuresPerAddress: 5, window: .seconds(60), duration: .seconds(300)))

    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func failuresBelowTheLimitDoNotLock() {
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(0)))
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(1)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(2)) == nil)
    }

    @Test func theLimitReachedWithinTheWindowLocksForTheDuration() {
        lockout.recordFailure(address: "a", identity: "CP1", now: at(0))
        lockout.recordFailure(address: "a", identity: "CP1", now: at(10))
        #expect(lockout.recordFailure(address: "a", identity: "CP1", now: at(59)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(59)) == .seconds(300))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(100)) == .seconds(259))
    }

    @Test func failuresOlderThanTheWindowAreForgotten() {
        lockout.recordFailure(address: "a", identity: "CP1", now: at(0))
        lockout.recordFailure(address: "a", identity: "CP1", now: at(30))
        // The first failure is 60s old: only two remain inside the window.
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(60)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(60)) == nil)
        #expect(lockout.recordFailure(address: "a", identity: "CP1", now: at(61)))
    }

    @Test func theLockExpiresAfterTheDurationAndCountingStartsAfresh() {
        for second in 0..<3 { lockout.recordFailure(address: "a", identity: "CP1", now: at(Int64(second))) }
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(301)) == .nanoseconds(1_000_000_000))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(302)) == nil)
        // The failures that led to the lock do not count toward the next one.
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(303)))
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(304)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(305)) == nil)
    }

    @Test func aSuccessResetsTheFailureCount() {
        lockout.recordFailure(address: "a", identity: "CP1", now: at(0))
        lockout.recordFailure(address: "a", identity: "CP1", now: at(1))
        lockout.recordSuccess(address: "a", identity: "CP1")
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(2)))
        #expect(!lockout.recordFailure(address: "a", identity: "CP1", now: at(3)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(4)) == nil)
        #expect(lockout.recordFailure(address: "a", identity: "CP1", now: at(5)))
    }

    @Test func aSuccessDoesNotLiftALockInForce() {
        for second in 0..<3 { lockout.recordFailure(address: "a", identity: "CP1", now: at(Int64(second))) }
        lockout.recordSuccess(address: "a", identity: "CP1")
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(3)) == .seconds(299))
    }

    @Test func addressesAreCountedApart() {
        lockout.recordFailure(address: "a", identity: "CP1", now: at(0))
        lockout.recordFailure(address: "a", identity: "CP1", now: at(1))
        lockout.recordFailure(address: "b", identity: "CP1", now: at(1))
        #expect(lockout.recordFailure(address: "a", identity: "CP1", now: at(2)))
        #expect(lockout.remaining(address: "b", identity: "CP1", now: at(2)) == nil)
        #expect(!lockout.recordFailure(address: "b", identity: "CP1", now: at(2)))
    }

    @Test func oneIdentityLockedOutLeavesItsNeighboursBehindTheSameAddressAlone() {
        for second in 0..<3 { lockout.recordFailure(address: "nat", identity: "CP1", now: at(Int64(second))) }
        #expect(lockout.remaining(address: "nat", identity: "CP1", now: at(3)) == .seconds(299))
        #expect(lockout.remaining(address: "nat", identity: "CP2", now: at(3)) == nil)
        #expect(lockout.remaining(address: "other", identity: "CP1", now: at(3)) == nil)
    }

    @Test func sprayingIdentitiesFromOneAddressLocksTheAddressOut() {
        for n in 0..<4 { #expect(!lockout.recordFailure(address: "a", identity: "X\(n)", now: at(Int64(n)))) }
        #expect(lockout.recordFailure(address: "a", identity: "X4", now: at(4)))
        #expect(lockout.remaining(address: "a", identity: "ANYONE", now: at(5)) == .seconds(299))
        #expect(lockout.remaining(address: "b", identity: "ANYONE", now: at(5)) == nil)
    }

    @Test func failedTLSHandshakesCountForTheAddressOnly() {
        for n in 0..<4 { #expect(!lockout.recordFailure(address: "a", identity: nil, now: at(Int64(n)))) }
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(4)) == nil)
        #expect(lockout.recordFailure(address: "a", identity: nil, now: at(4)))
        #expect(lockout.remaining(address: "a", identity: "CP1", now: at(5)) == .seconds(299))
    }
}
