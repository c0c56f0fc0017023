import Foundation
import NIOCore
import OCPP
import OCPPRules
import Yams

/// `shadow:`: how the CALLs of shadowed chargers are copied to their shadow CSMS and its answers compared.
public struct ShadowConfiguration: Sendable {
    /// How long the shadow has to answer a CALL once it was sent; no answer by then is a `timeout` divergence.
    public var timeout: TimeAmount = .seconds(30)
    /// CALLs one charger's shadow may have waiting for it (it takes one at a time, as OCPP-J requires); beyond,
    /// the charger's CALLs are not copied, and counted as dropped. The charger never waits for its shadow.
    public var maxQueued: Int = 32
    /// Fields whose values are not compared, by name at any depth: `currentTime` differs between any two CSMSs.
    /// A charger's transaction id is always mapped, never compared.
    public var ignoreFields: Set<String> = ["currentTime"]
    /// Divergences kept per charger for `GET /api/shadow/{identity}`.
    public var keptPerCharger: Int = 50
    /// How long the proxy waits before it reopens a shadow link that failed or dropped (doubling up to 5 min).
    public var retry: TimeAmount = .seconds(5)
}

/// What the proxy answers a shadow CSMS's CALL with, in the shadow's version: the charger never sees it.
public struct ShadowAnswers: Sendable {
    /// By action: a CALLRESULT with this payload (`upstreams[].answerLocally`); other actions get NotSupported.
    public var results: JSONObject = [:]
}

extension ConfigurationReader {
    mutating func readShadow(_ node: Node?) -> ShadowConfiguration {
        var shadow = ShadowConfiguration()
        guard let node, let map = mapping(node, "shadow") else { return shadow }
        checkKeys(map, "shadow", allowed: ["timeout", "maxQueued", "ignoreFields", "keptPerCharger", "retry"])
        shadow.timeout = duration(map["timeout"], "shadow.timeout", positive: true) ?? shadow.timeout
        shadow.maxQueued = integer(map["maxQueued"], "shadow.maxQueued", range: 1...10_000) ?? shadow.maxQueued
        shadow.keptPerCharger =
            integer(map["keptPerCharger"], "shadow.keptPerCharger", range: 1...10_000) ?? shadow.keptPerCharger
        shadow.retry = duration(map["retry"], "shadow.retry", positive: true) ?? shadow.retry
        if let list = map["ignoreFields"] {
            guard case .sequence(let items) = list else {
                fail("shadow.ignoreFields", list, "expected a list of field names, got \(describe(list))")
                return shadow
            }
            var fields: Set<String> = []
            for (index, item) in items.enumerated() {
                if let name = string(item, "shadow.ignoreFields[\(index)]", required: true) { fields.insert(name) }
            }
            shadow.ignoreFields = fields
        }
        return shadow
    }

    /// `upstreams[].answerLocally`: `{Action: {payload}}`, what the proxy answers that upstream's CALLs with when it
    /// is a shadow.
    mutating func readShadowAnswers(_ node: Node?, key: String) -> ShadowAnswers {
        var answers = ShadowAnswers()
        guard let node, let map = mapping(node, key) else { return answers }
        for (action, actionNode, payload) in YAMLReader.pairs(map).pairs {
            guard !action.isEmpty, action.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7F }) else {
                fail("\(key).\(action)", actionNode, "expected an OCPP action name such as TriggerMessage")
                continue
            }
            guard case .mapping = payload else {
                fail(
                    "\(key).\(action)", payload,
                    "expected the CALLRESULT's payload as a mapping, got \(describe(payload))")
                continue
            }
            answers.results[action] = Self.json(payload)
        }
        return answers
    }

    /// A YAML node as JSON, scalars typed by YAML's core schema (a quoted scalar stays a string).
    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .mapping(let map):
            var pairs: [(String, JSONValue)] = []
            for (key, value) in map { pairs.append((key.string ?? "", json(value))) }
            return .object(JSONObject(pairs))
        case .sequence(let items):
            return .array(items.map(json))
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let integer = node.int { return .integer(Int64(integer)) }
                if let bool = node.bool { return .bool(bool) }
                if let double = node.float, double.isFinite { return .number(double) }
                if node.null != nil { return .null }
            }
            return .string(scalar.string)
        case .alias:
            return .null
        }
    }
}
