import NIOCore
import Testing

@testable import OCPPProxy

@Suite("Token bucket and admission limits")
struct AdmissionLimitsTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func aBucketGivesItsBurstThenOneTokenPerInterval() {
        var bucket = TokenBucket(RateLimit(perSecond: 2, burst: 3), now: t0)
        #expect((0..<3).allSatisfy { _ in bucket.take(now: t0) == nil })
        #expect(bucket.take(now: t0) == .milliseconds(500))
        #expect(bucket.take(now: t0 + .milliseconds(499)) != nil)
        #expect(bucket.take(now: t0 + .milliseconds(500)) == nil)
        // Idle time refills up to the burst, never beyond.
        let full = bucket.isFull(now: t0 + .seconds(60))
        #expect(full)
        #expect((0..<3).allSatisfy { _ in bucket.take(now: t0 + .seconds(60)) == nil })
        #expect(bucket.take(now: t0 + .seconds(60)) != nil)
    }

    @Test func aClockThatGoesBackNeitherAddsNorTraps() {
        var bucket = TokenBucket(RateLimit(perSecond: 1, burst: 1), now: t0 + .seconds(10))
        #expect(bucket.take(now: t0 + .seconds(10)) == nil)
        #expect(bucket.take(now: t0) == .seconds(1))
    }

    @Test(arguments: [("200/s", 200.0), ("6/min", 0.1), ("36/h", 0.01), ("0.5/s", 0.5)])
    func readsRates(text: String, perSecond: Double) {
        #expect(RateLimit.parseRate(text) == perSecond)
    }

    @Test func refusesRatesThatAreNot() {
        for text in ["", "200", "0/s", "-1/s", "nan/s", "inf/s", "5/day", "1e400/s", "/s"] {
            #expect(RateLimit.parseRate(text) == nil, "\(text)")
        }
    }

    @Test func refusesTheProxy503AndAnAddressOrIdentity429WithRetryAfter() {
        var limits = LimitsConfiguration()
        limits.handshakes = RateLimit(perSecond: 1, burst: 2)
        limits.handshakesPerAddress = RateLimit(perSecond: 1, burst: 1)
        limits.handshakesPerIdentity = RateLimit(perSecond: 0.1, burst: 1)
        let admission = AdmissionLimits(limits, listeners: [], now: t0)
        #expect(admission.admitHandshake(address: "a", identity: "CP1", now: t0) == nil)
        #expect(admission.admitHandshake(address: "a", identity: "CP2", now: t0)?.rule == "handshakes_per_address")
        #expect(admission.admitHandshake(address: "b", identity: "CP1", now: t0)?.rule == "handshakes_per_identity")
        let identity = admission.admitHandshake(address: "c", identity: "CP1", now: t0 + .seconds(1))
        #expect(identity?.status == .tooManyRequests)
        #expect(identity?.retryAfter == 9)
        // The refusals took no token of the proxy's budget: it holds two again a second later.
        #expect(admission.admitHandshake(address: "d", identity: "CP3", now: t0 + .seconds(1)) == nil)
        #expect(admission.admitHandshake(address: "e", identity: "CP4", now: t0 + .seconds(1)) == nil)
        let global = admission.admitHandshake(address: "f", identity: "CP5", now: t0 + .seconds(1))
        #expect(global?.status == .serviceUnavailable)
        #expect(global?.rule == "handshakes")
    }

    @Test func countsConnectionsInTotalAndPerListener() throws {
        var limits = LimitsConfiguration()
        limits.maxConnections = 3
        var small = ListenerConfiguration(
            name: "small", host: "127.0.0.1", port: 1, path: "/ocpp", versions: [.v1_6], defaultVersion: nil,
            securityProfile: 0, tls: nil, unknownChargers: .allow)
        small.maxConnections = 1
        let admission = AdmissionLimits(limits, listeners: [small], now: t0)
        #expect(admission.claimConnection(listener: "small") == nil)
        #expect(admission.claimConnection(listener: "small")?.rule == "max_connections_listener")
        #expect(admission.claimConnection(listener: "big") == nil)
        #expect(admission.claimConnection(listener: "big") == nil)
        #expect(admission.claimConnection(listener: "big")?.rule == "max_connections")
        let claim = ConnectionClaim(limits: admission, listener: "big")
        claim.release()
        claim.release()
        #expect(admission.connected == 2, "a claim is released once")
    }

    @Test func logsAStormOncePerIntervalWithItsCount() {
        let admission = AdmissionLimits(LimitsConfiguration(), listeners: [], now: t0)
        #expect(admission.shouldLog("handshakes", now: t0) == 0)
        #expect(admission.shouldLog("handshakes", now: t0 + .seconds(1)) == nil)
        #expect(admission.shouldLog("handshakes", now: t0 + .seconds(2)) == nil)
        #expect(admission.shouldLog("handshakes_per_address", now: t0 + .seconds(2)) == 0)
        #expect(admission.shouldLog("handshakes", now: t0 + .seconds(10)) == 2)
    }

    @Test func thePacerLetsTheBurstThroughThenSpacesLinksAndRefusesBeyondTheWait() {
        var limits = LimitsConfiguration()
        limits.upstreamConnects = RateLimit(perSecond: 10, burst: 2)
        limits.upstreamConnectJitter = .milliseconds(50)
        limits.handshakeTimeout = .seconds(10)
        let pacer = UpstreamPacer(limits, connectTimeout: .milliseconds(300), now: t0)
        #expect(pacer.maxWait == .milliseconds(300))
        #expect(pacer.reserve(now: t0, random: 0.5) == .after(.zero))
        #expect(pacer.reserve(now: t0, random: 0.5) == .after(.zero))
        // Slots every 100 ms from now on, each spread by up to the jitter (half of it here).
        #expect(pacer.reserve(now: t0, random: 0.5) == .after(.milliseconds(125)))
        #expect(pacer.reserve(now: t0, random: 0) == .after(.milliseconds(200)))
        #expect(pacer.reserve(now: t0, random: 1) == .after(.milliseconds(300)), "never beyond the wait allowed")
        #expect(pacer.reserve(now: t0, random: 0) == .refused(retryAfter: 1))
        // The refusal reserved nothing: a second later the bucket has room again.
        #expect(pacer.reserve(now: t0 + .seconds(1), random: 0) == .after(.zero))
    }

    @Test func thePacerOffConnectsAtOnce() {
        var limits = LimitsConfiguration()
        limits.upstreamConnects = nil
        let pacer = UpstreamPacer(limits, connectTimeout: .seconds(5), now: t0)
        #expect((0..<1000).allSatisfy { _ in pacer.reserve(now: t0) == .after(.zero) })
    }
}
