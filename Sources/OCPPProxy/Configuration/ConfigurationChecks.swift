import OCPPRules

/// Checks that need the configuration and the rule files together: `check-config` and `serve` run the same ones
/// before anything binds, and report each problem as one line naming the key.
public enum ConfigurationChecks {
    /// Every tolerance profile the configuration names must exist in a rule file that reads chargers' frames for its
    /// upstreams: the file that translates to an upstream's version, or the first file of a chain that does.
    public static func problems(_ configuration: ProxyConfiguration, rules: RuleLibrary?) -> [String] {
        let upstreams = Set(configuration.upstreams.map(\.version))
        let versions = Set(configuration.listeners.flatMap(\.versions))
        let sets = versions.flatMap { version in
            upstreams.compactMap { rules?.chain(charger: version, csms: $0)?.first }
        }
        let known = Set(sets.flatMap { $0.tolerance.keys })
        let knownText = known.isEmpty ? "none" : known.sorted().joined(separator: ", ")
        var problems: [String] = []
        for (index, listener) in configuration.listeners.enumerated() {
            if let name = listener.tolerance, !known.contains(name) {
                problems.append(
                    "listeners[\(index)].tolerance: no tolerance profile \"\(name)\" in the rule files (known: \(knownText))"
                )
            }
        }
        for registration in configuration.chargers.values.sorted(by: { $0.identity.value < $1.identity.value }) {
            if let name = registration.tolerance, !known.contains(name) {
                problems.append(
                    "chargers[\(registration.identity)].tolerance: no tolerance profile \"\(name)\" in the rule files (known: \(knownText))"
                )
            }
        }
        return problems
    }
}
