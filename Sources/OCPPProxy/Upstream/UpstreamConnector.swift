import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import OCPP

/// Opens the WebSocket link to one CSMS (one upstream) for one charger: `{url}/{identity}` with that upstream's
/// version as the only subprotocol, on the charger's own event loop.
struct UpstreamConnector {
    let configuration: UpstreamConfiguration
    let limits: LimitsConfiguration
    let keepalive: KeepaliveConfiguration
    /// Set for wss:// upstreams.
    let tlsContext: NIOSSLContext?
    /// Per-charger Basic auth toward the CSMS: the password this upstream's.
    let credentials: UpstreamCredentials
    let logger: Logger

    /// Succeeds with the link once the CSMS has accepted the upgrade; on failure nothing is left open.
    func connect(_ identity: ChargerIdentity, on eventLoop: EventLoop) -> EventLoopFuture<WebSocketLink> {
        let attempt = UpstreamAttempt(promise: eventLoop.makePromise())
        let link = WebSocketLink(side: .csms, isClient: true, keepalive: keepalive, maxFrameBytes: limits.maxFrameBytes)
        let version = configuration.version
        let maxFrame = limits.maxFrameBytes
        let request = handshakeRequest(identity)
        let timeout = configuration.connectTimeout
        let tlsContext = self.tlsContext
        let serverHostname = SocketAddressText.isIPAddress(configuration.host) ? nil : configuration.host
        if configuration.tls?.insecureSkipVerify == true {
            logger.warning(
                "upstream certificate verification is OFF (\(configuration.key).tls.insecureSkipVerify)",
                metadata: ["identity": "\(identity)"])
        }

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let handshake = UpstreamHandshakeHandler(request: request, attempt: attempt)
                // NIO does the handshake only: the link reads and writes the frames, protocol errors included.
                let upgrader = NIOWebSocketClientUpgrader(
                    maxFrameSize: maxFrame, automaticErrorHandling: false
                ) { channel, response in
                    // RFC 6455 §4.1: the server must pick one of the offered subprotocols.
                    let chosen = response.headers["sec-websocket-protocol"].first
                    guard chosen == version.subprotocol else {
                        attempt.fail(
                            .rejected(
                                "the CSMS answered subprotocol \(chosen.map { "\"\($0)\"" } ?? "none") to \(version)"))
                        return channel.close()
                    }
                    // The upgrade completes on the channel's event loop.
                    do {
                        let pipeline = channel.pipeline.syncOperations
                        pipeline.removeHandler(handshake, promise: nil)
                        try WebSocketLink.install(link, in: pipeline)
                    } catch {
                        attempt.fail(.rejected("cannot set up the link: \(error)"))
                        return channel.close()
                    }
                    attempt.succeed(link)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                do {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname))
                    }
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                // A CSMS may send its first frame in the same segment as its 101: the bytes the HTTP decoder read
                // past the response go on to the WebSocket decoder (NIO drops them by default).
                return channel.pipeline.addHTTPClientHandlers(
                    leftOverBytesStrategy: .forwardBytes,
                    withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                ).flatMap { channel.pipeline.addHandler(handshake) }
            }

        let connecting = bootstrap.connect(host: configuration.host, port: configuration.port)
        connecting.whenComplete { result in
            switch result {
            case .success(let channel): attempt.channel = channel
            case .failure(let error): attempt.fail(UpstreamFailure.classify(error))
            }
        }
        // connectTimeout covers TCP; this covers the HTTP upgrade as well.
        let deadline = eventLoop.scheduleTask(in: timeout) { attempt.fail(.timeout) }
        attempt.promise.futureResult.whenComplete { result in
            deadline.cancel()
            if case .failure = result { attempt.channel?.close(promise: nil) }
        }
        // A channel that connects after the attempt already failed is closed at once.
        connecting.whenSuccess { channel in
            if attempt.isFailed { channel.close(promise: nil) }
        }
        return attempt.promise.futureResult
    }

    private func handshakeRequest(_ identity: ChargerIdentity) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        let defaultPort = configuration.scheme == "wss" ? 443 : 80
        headers.add(
            name: "Host",
            value: configuration.port == defaultPort
                ? configuration.host : "\(configuration.host):\(configuration.port)")
        headers.add(name: "Sec-WebSocket-Protocol", value: configuration.version.subprotocol)
        if let password = credentials.password(for: identity, upstream: configuration.name) {
            // The CSMS sees the identity and the password it issued (OCPP security profiles 1 and 2).
            let token = Data("\(identity.value):\(password)".utf8).base64EncodedString()
            headers.add(name: "Authorization", value: "Basic \(token)")
        }
        return HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "\(configuration.path)/\(identity.percentEncoded)", headers: headers)
    }
}

/// The outcome of one upstream connection attempt, completed once whatever finishes first.
final class UpstreamAttempt {
    let promise: EventLoopPromise<WebSocketLink>
    var channel: Channel?
    private(set) var isDone = false
    private(set) var isFailed = false

    init(promise: EventLoopPromise<WebSocketLink>) {
        self.promise = promise
    }

    func succeed(_ link: WebSocketLink) {
        guard !isDone else { return }
        isDone = true
        promise.succeed(link)
    }

    func fail(_ failure: UpstreamFailure) {
        guard !isDone else { return }
        isDone = true
        isFailed = true
        promise.fail(failure)
    }
}

/// Sends the upgrade request and reports a CSMS that answers with anything but 101 or hangs up.
final class UpstreamHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let attempt: UpstreamAttempt

    init(request: HTTPRequestHead, attempt: UpstreamAttempt) {
        self.request = request
        self.attempt = attempt
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { channelActive(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only a response that is not an upgrade reaches this handler.
        if case .head(let response) = unwrapInboundIn(data) {
            attempt.fail(.rejected("the CSMS answered HTTP \(response.status.code) \(response.status.reasonPhrase)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        attempt.fail(.rejected("the CSMS closed the connection during the handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        attempt.fail(.rejected("handshake failed: \(error)"))
        context.close(promise: nil)
    }
}

/// Tells IP literals from host names: TLS SNI and name checks apply to names only.
enum SocketAddressText {
    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }
}
