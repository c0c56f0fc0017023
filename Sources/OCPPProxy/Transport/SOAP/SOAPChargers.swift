import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import OCPP
import OCPPSOAP

/// The SOAP chargers of one listener: reads each request, admits its charger (every request passes the security
/// profile's checks; the first one of a charger also opens its upstream link and session), and hands the request to
/// the charger's ``SOAPChargerLink``. Requests of one charger may come on any connection and event loop; its link
/// lives on the event loop of the request that opened it.
final class SOAPChargers: Sendable {
    private let listener: ListenerConfiguration
    private let runtime: ProxyContext
    private let messages: SOAPMessages
    private let client: SOAPClient
    private let open = NIOLockedValueBox<[ChargerIdentity: Entry]>([:])
    private let logger: Logger

    /// A charger's link, or the admission that is opening it (a second request waits for it).
    private enum Entry: Sendable {
        case opening(EventLoopFuture<Void>)
        case open(NIOLoopBound<SOAPChargerLink>)
    }

    init(listener: ListenerConfiguration, runtime: ProxyContext, messages: SOAPMessages, client: SOAPClient) {
        self.listener = listener
        self.runtime = runtime
        self.messages = messages
        self.client = client
        var logger = runtime.logger
        logger[metadataKey: "listener"] = "\(listener.name)"
        self.logger = logger
    }

    // MARK: One request

    func handle(_ head: HTTPRequestHead, body: ByteBuffer, channel: Channel) -> EventLoopFuture<SOAPReply> {
        let eventLoop = channel.eventLoop
        let request: SOAPRequest
        switch messages.read(
            body, contentType: head.headers["content-type"].first, soapAction: head.headers["soapaction"].first)
        {
        case .failure(let refusal):
            runtime.metrics.malformed(from: .charger, reason: refusal.metric, transport: .soap)
            logger.warning(
                "refused a SOAP request: \(refusal.reason)",
                metadata: ["remote": "\(Admission.describe(channel.remoteAddress))"])
            return eventLoop.makeSucceededFuture(refusal.reply)
        case .success(let read):
            request = read
        }
        let identity: ChargerIdentity
        do {
            identity = try ChargerIdentity(request.identity)
        } catch {
            return refuse(
                request, SOAPFault(.identityMismatch, "chargeBoxIdentity: \(error)"), metric: "identity", on: eventLoop)
        }
        guard listener.versions.contains(request.ocppVersion) else {
            let served = listener.versions.map(\.rawValue).joined(separator: ", ")
            return refuse(
                request, SOAPFault(.notSupported, "\(request.ocppVersion) is not served on this listener (\(served))"),
                metric: "version", on: eventLoop)
        }
        let admission = Admission(listener: listener, runtime: runtime, channel: channel)
        return admission.authenticate(identity, channel: channel, request: head).flatMap { [self] refusal in
            if let refusal {
                return eventLoop.makeSucceededFuture(self.reply(request, refusal: refusal))
            }
            return link(identity, request: request, admission: admission, channel: channel).flatMap { outcome in
                switch outcome {
                case .refused(let refusal):
                    return eventLoop.makeSucceededFuture(self.reply(request, refusal: refusal))
                case .open(let bound):
                    return bound.eventLoop.flatSubmit {
                        bound.value.request(action: request.action, payload: request.payload, from: request.from)
                    }.hop(to: eventLoop).map { answer in
                        self.reply(request, answer: answer)
                    }.flatMapErrorThrowing { error in
                        // No fabricated answer: the charger learns that this request was not processed.
                        self.messages.fault(request, SOAPFault(.internalError, "\(error)"))
                    }
                }
            }
        }
    }

    private enum LinkOutcome: Sendable {
        case open(NIOLoopBound<SOAPChargerLink>)
        case refused(AdmissionRefusal)
    }

    /// The charger's open link, or a new one: admission opens the upstream link and the session on this request's
    /// event loop. A link of another OCPP version (a charger updated to 1.6) is closed and replaced.
    private func link(
        _ identity: ChargerIdentity, request: SOAPRequest, admission: Admission, channel: Channel
    ) -> EventLoopFuture<LinkOutcome> {
        let eventLoop = channel.eventLoop
        // The entry, or the promise of the admission this request starts (the entry until it completes).
        let (existing, admitting): (Entry?, EventLoopPromise<Void>?) = open.withLockedValue { table in
            if let entry = table[identity] { return (entry, nil) }
            let promise = eventLoop.makePromise(of: Void.self)
            table[identity] = .opening(promise.futureResult)
            return (nil, promise)
        }
        switch existing {
        case .opening(let admitting):
            // Another request of this charger is being admitted: wait for it, then look again.
            return admitting.hop(to: eventLoop).flatMap { [self] in
                link(identity, request: request, admission: admission, channel: channel)
            }
        case .open(let bound):
            return bound.eventLoop.submit { () -> Bool in
                bound.value.state == .open && bound.value.version == request.ocppVersion
            }.hop(to: eventLoop).flatMap { [self] usable in
                if usable { return eventLoop.makeSucceededFuture(.open(bound)) }
                forget(identity, bound)
                bound.eventLoop.execute {
                    bound.value.close(code: .goingAway, reason: "replaced", text: "the charger changed its version")
                }
                return link(identity, request: request, admission: admission, channel: channel)
            }
        case nil:
            return admit(identity, request: request, admission: admission, channel: channel).always { _ in
                admitting?.succeed(())
            }
        }
    }

    private func admit(
        _ identity: ChargerIdentity, request: SOAPRequest, admission: Admission, channel: Channel
    ) -> EventLoopFuture<LinkOutcome> {
        let configured = runtime.configuration.chargers[identity]?.soapEndpoint
        let callTimeout = runtime.configuration.limits.callTimeout
        let idleTimeout = runtime.configuration.soap.idleTimeout
        let version = request.ocppVersion
        let messages = self.messages
        let client = self.client
        let ownURL = listener.ownURL
        var linkLogger = logger
        linkLogger[metadataKey: "identity"] = "\(identity)"
        linkLogger[metadataKey: "version"] = "\(version)"
        let eventLoop = channel.eventLoop
        let link = SOAPChargerLink(
            eventLoop: eventLoop, version: version, configuredEndpoint: configured, callTimeout: callTimeout,
            idleTimeout: idleTimeout, logger: linkLogger
        ) { action, payload, messageId, endpoint, timeout in
            Self.call(
                action: action, payload: payload, messageId: messageId, endpoint: endpoint, timeout: timeout,
                identity: identity, version: version, ownURL: ownURL, messages: messages, client: client,
                on: eventLoop)
        }
        let bound = NIOLoopBound(link, eventLoop: eventLoop)
        return admission.open(identity, version: version, channel: channel, charger: link).map {
            [self] outcome -> LinkOutcome in
            switch outcome {
            case .refused(let refusal):
                open.withLockedValue { _ = $0.removeValue(forKey: identity) }
                return .refused(refusal)
            case .admitted(let admitted):
                let session = admitted.session
                open.withLockedValue { $0[identity] = .open(bound) }
                session.closed.whenComplete { [self] _ in forget(identity, bound) }
                session.start()
                if !admitted.registered {
                    session.close(code: .normalClosure, reason: "replaced", text: "replaced by a new connection")
                }
                return .open(bound)
            }
        }
    }

    /// Drops the table's entry of a link that is gone, unless a newer link has taken its place.
    private func forget(_ identity: ChargerIdentity, _ bound: NIOLoopBound<SOAPChargerLink>) {
        open.withLockedValue { table in
            if case .open(let current)? = table[identity], current.eventLoop === bound.eventLoop,
                current.value === bound.value
            {
                table[identity] = nil
            }
        }
    }

    // MARK: CSMS → charger

    /// One CALL POSTed to the charger, its answer read; every failure becomes a CALLERROR outcome.
    private static func call(
        action: String, payload: JSONValue, messageId: String, endpoint: String, timeout: TimeAmount,
        identity: ChargerIdentity, version: OCPPVersion, ownURL: String, messages: SOAPMessages, client: SOAPClient,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<SOAPChargerLink.CallOutcome> {
        // WS-Addressing message ids are IRIs; the CSMS's RPC message id need not be one.
        let messageID = "urn:uuid:\(UUID().uuidString.lowercased())"
        let request: SOAPMessage
        switch messages.request(
            action: action, payload: payload, version: version, identity: identity.value, messageID: messageID,
            to: endpoint, from: ownURL)
        {
        case .success(let made): request = made
        case .failure(let problem):
            return eventLoop.makeSucceededFuture(
                .error(.internalError, description: "cannot write \(action) as OCPP-S: \(problem)"))
        }
        return client.post(
            endpoint, contentType: request.contentType, body: request.bytes, timeout: timeout, on: eventLoop
        ).map { response in
            messages.answer(to: action, version: version, messageID: messageID, response: response)
        }.recover { error in
            .error(.internalError, description: "the charging station's SOAP endpoint \(endpoint) failed: \(error)")
        }
    }

    // MARK: Replies

    private func reply(_ request: SOAPRequest, answer: SOAPChargerLink.Answer) -> SOAPReply {
        switch answer {
        case .result(let payload):
            return messages.answer(request, payload: payload)
        case .error(let code, let description):
            return messages.fault(request, SOAPFault(rpcErrorCode: code, description: description))
        }
    }

    /// A refused admission as a fault: SecurityError for credentials (with HTTP 401 and its Basic challenge, or 429
    /// and Retry-After for a lockout, so that HTTP clients understand), InternalError for an upstream link that
    /// cannot be opened, ProtocolError else; the fault's own status (SOAP 1.2 HTTP binding) otherwise.
    private func reply(_ request: SOAPRequest, refusal: AdmissionRefusal) -> SOAPReply {
        let subcode: SOAPFault.OCPPSubcode =
            refusal.metric.hasPrefix("auth")
            ? .securityError : refusal.status.code >= 500 ? .internalError : .protocolError
        var reply = messages.fault(request, SOAPFault(subcode, refusal.reason))
        if refusal.status == .unauthorized || refusal.status == .tooManyRequests {
            reply.status = refusal.status
        }
        reply.headers += refusal.headers
        return reply
    }

    private func refuse(
        _ request: SOAPRequest, _ fault: SOAPFault, metric: String, on eventLoop: EventLoop
    ) -> EventLoopFuture<SOAPReply> {
        runtime.metrics.admissionRejected(listener: listener.name, reason: metric, transport: .soap)
        logger.notice("SOAP request refused: \(fault.reason)", metadata: ["action": "\(request.action)"])
        return eventLoop.makeSucceededFuture(messages.fault(request, fault))
    }

    func tooLarge(limit: Int) -> SOAPReply {
        runtime.metrics.malformed(from: .charger, reason: "soap_too_large", transport: .soap)
        logger.warning("refused a SOAP request larger than \(limit) bytes (soap.maxRequestBytes)")
        return messages.fault(nil, SOAPFault(.protocolError, "the request is larger than \(limit) bytes"))
    }

    func undecodable(_ why: String) -> SOAPReply {
        runtime.metrics.malformed(from: .charger, reason: "soap_encoding", transport: .soap)
        logger.warning("refused a SOAP request whose body cannot be decompressed: \(why)")
        return messages.fault(nil, SOAPFault(.protocolError, "the request body cannot be decoded: \(why)"))
    }

    func internalFault(_ why: String) -> SOAPReply {
        logger.error("a SOAP request failed inside the proxy: \(why)")
        return messages.fault(nil, SOAPFault(.internalError, "internal error"))
    }
}
