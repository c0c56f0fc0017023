import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPRules
import Yams

/// `admin:`, `limits:`, `keepalive:`, `logging:`, `shutdown:`, and ports used twice.
extension ConfigurationReader {
    mutating func readAdmin(_ node: Node?) -> AdminConfiguration? {
        guard let node else { return AdminConfiguration() }
        guard let map = mapping(node, "admin") else { return nil }
        checkKeys(map, "admin", allowed: ["enabled", "host", "port", "token"])
        let enabled = boolean(map["enabled"], "admin.enabled") ?? true
        var admin = AdminConfiguration()
        if let token = map["token"], let text = string(token, "admin.token", required: true) {
            if text.utf8.count < 16 {
                fail(
                    "admin.token", token,
                    "expected at least 16 characters (it guards route changes), got \(text.utf8.count)")
            } else {
                admin.token = text
            }
        }
        admin.host = string(map["host"], "admin.host") ?? admin.host
        admin.port = integer(map["port"], "admin.port", range: 1...65535) ?? admin.port
        return enabled ? admin : nil
    }

    mutating func readLimits(_ node: Node?) -> LimitsConfiguration {
        var limits = LimitsConfiguration()
        guard let node, let map = mapping(node, "limits") else { return limits }
        checkKeys(
            map, "limits",
            allowed: [
                "maxFrameBytes", "callTimeout", "maxPendingCalls", "handshakeTimeout", "maxConnections", "handshakes",
                "handshakesPerAddress", "handshakesPerIdentity", "upstreamConnects", "messages",
            ])
        if let messages = map["messages"] {
            limits.messages = messageLimits(messages, "limits.messages") ?? limits.messages
        }
        limits.upstreamConnects = rateLimit(
            map["upstreamConnects"], "limits.upstreamConnects", default: limits.upstreamConnects, extraKeys: ["jitter"])
        if let pacing = map["upstreamConnects"]?.mapping {
            limits.upstreamConnectJitter =
                duration(pacing["jitter"], "limits.upstreamConnects.jitter", positive: false)
                ?? limits.upstreamConnectJitter
        }
        limits.maxConnections =
            integer(map["maxConnections"], "limits.maxConnections", range: 1...10_000_000) ?? limits.maxConnections
        limits.handshakes = rateLimit(map["handshakes"], "limits.handshakes", default: limits.handshakes)
        limits.handshakesPerAddress = rateLimit(
            map["handshakesPerAddress"], "limits.handshakesPerAddress", default: limits.handshakesPerAddress)
        limits.handshakesPerIdentity = rateLimit(
            map["handshakesPerIdentity"], "limits.handshakesPerIdentity", default: limits.handshakesPerIdentity)
        limits.maxFrameBytes =
            integer(map["maxFrameBytes"], "limits.maxFrameBytes", range: 128...16_777_216) ?? limits.maxFrameBytes
        limits.maxPendingCalls =
            integer(map["maxPendingCalls"], "limits.maxPendingCalls", range: 1...1024) ?? limits.maxPendingCalls
        limits.callTimeout = duration(map["callTimeout"], "limits.callTimeout", positive: true) ?? limits.callTimeout
        limits.handshakeTimeout =
            duration(map["handshakeTimeout"], "limits.handshakeTimeout", positive: true) ?? limits.handshakeTimeout
        return limits
    }

    /// `limits.messages` (or a charger's): `off`, or a mapping of actions (and `default`, `fromCSMS`) to rules
    /// `{rate, burst, over: delay|reject, maxDelay}` or `{minInterval, over: answerLocally}`.
    mutating func messageLimits(_ node: Node, _ key: String) -> MessageLimits? {
        if case .scalar(let scalar) = node, scalar.string == "off" { return MessageLimits() }
        guard let map = mapping(node, key) else { return nil }
        var limits = MessageLimits()
        for (name, _, value) in YAMLReader.pairs(map).pairs {
            let ruleKey = "\(key).\(name)"
            guard let rule = messageLimit(value, ruleKey, action: name) else { continue }
            if name == "fromCSMS" {
                if rule.over == .answerLocally {
                    fail("\(ruleKey).over", value, "the CSMS's CALLs can be delayed or rejected, not answered locally")
                }
                limits.fromCSMS = rule
            } else {
                limits.byAction[name] = rule
            }
        }
        return limits
    }

    private mutating func messageLimit(_ node: Node, _ key: String, action: String) -> MessageLimit? {
        guard let map = mapping(node, key) else { return nil }
        checkKeys(map, key, allowed: ["rate", "burst", "over", "maxDelay", "minInterval"])
        let over = enumeration(map["over"], "\(key).over", MessageLimitAction.self) ?? .delay
        var rule = MessageLimit(over: over)
        switch over {
        case .answerLocally:
            guard ["Heartbeat", "StatusNotification"].contains(action) else {
                fail(
                    "\(key).over", map["over"],
                    "answerLocally is for Heartbeat and StatusNotification (the proxy knows their answers); \(action) can be delayed or rejected"
                )
                return nil
            }
            rule.minInterval = duration(map["minInterval"], "\(key).minInterval", positive: true)
            if rule.minInterval == nil, map["minInterval"] == nil {
                fail("\(key).minInterval", node, "required key is missing for over: answerLocally")
            }
        case .delay, .reject:
            rule.rate = rateLimit(node, key, default: nil, extraKeys: ["over", "maxDelay", "minInterval"])
            rule.maxDelay = duration(map["maxDelay"], "\(key).maxDelay", positive: true) ?? rule.maxDelay
        }
        return rule
    }

    /// `{ rate: 200/s, burst: 400 }`, or `off` (no budget).
    mutating func rateLimit(
        _ node: Node?, _ key: String, default value: RateLimit?, extraKeys: [String] = []
    ) -> RateLimit? {
        guard let node else { return value }
        if case .scalar(let scalar) = node, scalar.string == "off" { return nil }
        let expected = "expected { rate: N/s | N/min | N/h, burst: N } or off"
        guard case .mapping(let map) = node else {
            fail(key, node, "\(expected), got \(describe(node))")
            return value
        }
        checkKeys(map, key, allowed: ["rate", "burst"] + extraKeys)
        var limit = value ?? RateLimit(perSecond: 1, burst: 1)
        if let rateNode = map["rate"] {
            if let text = string(rateNode, "\(key).rate") {
                if let perSecond = RateLimit.parseRate(text) {
                    limit.perSecond = perSecond
                } else {
                    fail("\(key).rate", rateNode, "expected a rate such as 200/s, 20/min or 100/h, got \(quoted(text))")
                }
            }
        } else {
            fail("\(key).rate", node, "required key is missing; \(expected)")
        }
        limit.burst = integer(map["burst"], "\(key).burst", range: 1...10_000_000, required: true) ?? limit.burst
        return limit
    }

    mutating func readKeepalive(_ node: Node?) -> KeepaliveConfiguration {
        var keepalive = KeepaliveConfiguration()
        guard let node, let map = mapping(node, "keepalive") else { return keepalive }
        checkKeys(map, "keepalive", allowed: ["pingInterval", "pongTimeout"])
        keepalive.pingInterval =
            duration(map["pingInterval"], "keepalive.pingInterval", positive: false) ?? keepalive.pingInterval
        keepalive.pongTimeout =
            duration(map["pongTimeout"], "keepalive.pongTimeout", positive: true) ?? keepalive.pongTimeout
        return keepalive
    }

    mutating func readLogging(_ node: Node?) -> LoggingConfiguration {
        var logging = LoggingConfiguration()
        guard let node, let map = mapping(node, "logging") else { return logging }
        checkKeys(map, "logging", allowed: ["level", "format"])
        if let level = map["level"] {
            if let text = string(level, "logging.level") {
                if LogLevelName.parse(text) != nil {
                    logging.level = text.lowercased()
                } else {
                    fail("logging.level", level, "expected one of \(LogLevelName.all), got \(quoted(text))")
                }
            }
        }
        logging.format = enumeration(map["format"], "logging.format", LogFormat.self) ?? logging.format
        return logging
    }

    mutating func readShutdown(_ node: Node?) -> ShutdownConfiguration {
        var shutdown = ShutdownConfiguration()
        guard let node, let map = mapping(node, "shutdown") else { return shutdown }
        checkKeys(map, "shutdown", allowed: ["gracePeriod"])
        shutdown.gracePeriod =
            duration(map["gracePeriod"], "shutdown.gracePeriod", positive: true) ?? shutdown.gracePeriod
        return shutdown
    }

    mutating func checkPortsUnique(_ listeners: [ListenerConfiguration], admin: AdminConfiguration?) {
        var seen: [Int: String] = [:]
        for (index, listener) in listeners.enumerated() {
            if let other = seen[listener.port] {
                fail("listeners[\(index)].port", nil, "port \(listener.port) is already used by \(other)")
            } else {
                seen[listener.port] = "listeners[\(index)]"
            }
        }
        if let admin, let other = seen[admin.port] {
            fail("admin.port", nil, "port \(admin.port) is already used by \(other)")
        }
    }

    mutating func readSOAP(_ node: Node?) -> SOAPConfiguration {
        var soap = SOAPConfiguration()
        guard let node, let map = mapping(node, "soap") else { return soap }
        checkKeys(map, "soap", allowed: ["idleTimeout", "maxRequestBytes", "endpointCA"])
        soap.idleTimeout = duration(map["idleTimeout"], "soap.idleTimeout", positive: true)
        soap.maxRequestBytes = integer(map["maxRequestBytes"], "soap.maxRequestBytes", range: 1024...(64 << 20))
        soap.endpointCA = map["endpointCA"].flatMap { path($0, "soap.endpointCA") }
        return soap
    }

    /// An http:// or https:// URL with a host.
    mutating func httpURL(_ node: Node, _ key: String) -> String? {
        guard let text = string(node, key, required: true) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            fail(
                key, node,
                "expected an http:// or https:// URL such as http://10.1.2.3:8080/ChargePointService, got \(quoted(text))"
            )
            return nil
        }
        return text
    }
}
