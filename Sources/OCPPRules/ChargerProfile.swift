import OCPP

/// What the configuration says about one charger that translation needs: its identity (for name-based transaction
/// ids), the optional OCPP features it has (`capability(name)`), and how its 1.6 connectors sit on 2.0.1 EVSEs —
/// its own, else its model's (the model a rule recorded with `memo.set('model', …)` at BootNotification), else none
/// and one connector per EVSE.
public struct ChargerProfile: Sendable, Equatable {
    public var identity: String
    public var capabilities: Set<String>?
    public var layout: EVSELayout?
    public var models: [String: ModelProfile]

    /// The capabilities the rule files test with `capability(name)`.
    public static let knownCapabilities: Set<String> = ["securityExtension"]
    /// The memo a rule names the charger's model in.
    public static let modelMemo = "model"

    public init(
        identity: String = "", capabilities: Set<String>? = nil, layout: EVSELayout? = nil,
        models: [String: ModelProfile] = [:]
    ) {
        self.identity = identity
        self.capabilities = capabilities
        self.layout = layout
        self.models = models
    }

    /// The capabilities and layout that apply to a charger of `model`.
    public func effective(model: String?) -> (capabilities: Set<String>, layout: EVSELayout) {
        let byModel = model.flatMap { models[$0] }
        return (capabilities ?? byModel?.capabilities ?? [], layout ?? byModel?.layout ?? .onePerEVSE)
    }
}

/// What every charger of one model has, unless its own configuration says.
public struct ModelProfile: Sendable, Equatable {
    public var capabilities: Set<String>?
    public var layout: EVSELayout?

    public init(capabilities: Set<String>? = nil, layout: EVSELayout? = nil) {
        self.capabilities = capabilities
        self.layout = layout
    }
}

/// 1.6 connector ids ⇄ 2.0.1 (EVSE id, connector id). 1.6 numbers a charge point's connectors 1…n with 0 for the
/// whole charge point; 2.0.1 numbers EVSEs 1…n (0: the station) and each EVSE's connectors 1…m.
public struct EVSELayout: Sendable, Equatable {
    /// The 1.6 connector ids of each EVSE, EVSE 1 first; empty: one connector per EVSE, 1.6 connector n is EVSE n's
    /// connector 1.
    public let evses: [[Int64]]
    private let placement: [Int64: (evse: Int64, connector: Int64)]

    public static let onePerEVSE = EVSELayout(validated: [])

    private init(validated evses: [[Int64]]) {
        self.evses = evses
        var placement: [Int64: (evse: Int64, connector: Int64)] = [:]
        for (e, connectors) in evses.enumerated() {
            for (c, id) in connectors.enumerated() { placement[id] = (Int64(e + 1), Int64(c + 1)) }
        }
        self.placement = placement
    }

    /// Why a layout cannot be used, or nil: every EVSE has at least one connector, each 1.6 connector id is ≥ 1 and
    /// appears once.
    public static func problem(_ evses: [[Int64]]) -> String? {
        var seen = Set<Int64>()
        for (index, connectors) in evses.enumerated() {
            if connectors.isEmpty { return "EVSE \(index + 1) has no connector" }
            for id in connectors {
                if id < 1 { return "connector \(id) of EVSE \(index + 1): 1.6 connector ids start at 1" }
                if !seen.insert(id).inserted { return "connector \(id) is on two EVSEs" }
            }
        }
        return nil
    }

    /// A layout from the configuration; nil when ``problem(_:)`` finds one.
    public init?(_ evses: [[Int64]]) {
        guard Self.problem(evses) == nil else { return nil }
        self.init(validated: evses)
    }

    public static func == (a: EVSELayout, b: EVSELayout) -> Bool { a.evses == b.evses }

    /// Without a layout, a 2.0.1 station's EVSE e connector c ≥ 2 (which it reports, and no configuration
    /// placed) is 1.6 connector e + `extraConnectorStep` × (c − 1): numbers no EVSE's first connector has.
    public static let extraConnectorStep: Int64 = 100

    /// The (EVSE, connector) of a 1.6 connector: 0 is the station (EVSE 0, no connector). A connector the layout does
    /// not name is nil; without a layout, connector n is EVSE n's connector 1 (and 100·(c − 1) + e is EVSE e's
    /// connector c, for e 1–99).
    public func place(_ connector16: Int64) -> (evse: Int64, connector: Int64?)? {
        if connector16 == 0 { return (0, nil) }
        if evses.isEmpty {
            let step = Self.extraConnectorStep
            if connector16 > step, connector16 % step != 0 { return (connector16 % step, connector16 / step + 1) }
            // any other n: EVSE n (a number no EVSE has is the CSMS's to refuse)
            return (connector16, 1)
        }
        return placement[connector16].map { ($0.evse, $0.connector) }
    }

    /// The 1.6 connector of an EVSE's connector (nil connector: the EVSE's first). EVSE 0 is connector 0.
    public func connector16(evse: Int64, connector: Int64?) -> Int64? {
        if evse == 0 { return connector == nil || connector == 0 ? 0 : nil }
        if evses.isEmpty {
            // No layout: EVSE n is 1.6 connector n (any n: a number no connector has is the charger's to refuse);
            // another connector of EVSE 1–99, one the station reports, gets a number of its own.
            guard let connector, connector != 1 else { return evse }
            let step = Self.extraConnectorStep
            guard connector >= 2, connector <= 9_999, evse >= 1, evse < step else { return nil }
            return evse + step * (connector - 1)
        }
        guard evse > 0, evse <= Int64(evses.count) else { return nil }
        let connectors = evses[Int(evse - 1)]
        guard let connector else { return connectors[0] }
        guard connector >= 1, connector <= Int64(connectors.count) else { return nil }
        return connectors[Int(connector - 1)]
    }

    /// The 1.6 connectors of an EVSE (EVSE 0: every connector the layout names). Without a layout, EVSE n is
    /// connector n alone.
    public func connectors16(evse: Int64) -> [Int64]? {
        if evses.isEmpty { return evse > 0 ? [evse] : nil }
        if evse == 0 { return evses.flatMap { $0 } }
        guard evse > 0, evse <= Int64(evses.count) else { return nil }
        return evses[Int(evse - 1)]
    }
}
