import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import OCPPProxy

@Suite("Upstream failures: one HTTP status and one metric label each")
struct UpstreamFailureTests {
    func expectClassified(
        _ error: Error, as status: HTTPResponseStatus, _ label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let failure = UpstreamFailure.classify(error)
        #expect(failure.status == status, "\(error) → \(failure)", sourceLocation: sourceLocation)
        #expect(failure.metricReason == label, "\(error) → \(failure)", sourceLocation: sourceLocation)
    }

    @Test func aRefusedConnectionIsABadGateway() {
        expectClassified(IOError(errnoCode: ECONNREFUSED, reason: "connect"), as: .badGateway, "refused")
    }

    @Test func anUnreachableHostIsServiceUnavailable() {
        expectClassified(IOError(errnoCode: EHOSTUNREACH, reason: "connect"), as: .serviceUnavailable, "unreachable")
        expectClassified(IOError(errnoCode: ENETUNREACH, reason: "connect"), as: .serviceUnavailable, "unreachable")
    }

    @Test func anAddressThatCannotBeBuiltIsServiceUnavailable() {
        expectClassified(
            SocketAddressError.unknown(host: "csms.invalid", port: 443), as: .serviceUnavailable, "unreachable")
    }

    @Test func aConnectTimeoutIsAGatewayTimeout() {
        expectClassified(ChannelError.connectTimeout(.seconds(5)), as: .gatewayTimeout, "timeout")
        expectClassified(IOError(errnoCode: ETIMEDOUT, reason: "connect"), as: .gatewayTimeout, "timeout")
    }

    @Test func anythingElseIsARejectionByTheCSMS() {
        expectClassified(ChannelError.eof, as: .badGateway, "rejected")
        expectClassified(CancellationError(), as: .badGateway, "rejected")
    }

    @Test func anUpstreamFailureIsKeptAsItIs() {
        expectClassified(UpstreamFailure.rejected("HTTP 401"), as: .badGateway, "rejected")
        expectClassified(UpstreamFailure.refused("x"), as: .badGateway, "refused")
        expectClassified(UpstreamFailure.unreachable("x"), as: .serviceUnavailable, "unreachable")
        expectClassified(UpstreamFailure.timeout, as: .gatewayTimeout, "timeout")
        #expect(
            "\(UpstreamFailure.classify(UpstreamFailure.rejected("HTTP 401")))"
                == "upstream rejected the link: HTTP 401")
    }

    /// NIOConnectionError cannot be made outside NIO: a real connection to a closed loopback port makes one.
    @Test func aRefusedLoopbackConnectionThroughHappyEyeballsIsRefused() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        try await server.close()
        do {
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            try await channel.close()
            Issue.record("something listens on 127.0.0.1:\(port) again; cannot test a refusal")
        } catch {
            #expect(error is NIOConnectionError, "\(type(of: error))")
            expectClassified(error, as: .badGateway, "refused")
        }
    }
}
