/// The two ends of every exchange the proxy relays: the charging station and the CSMS. Frames come from one side
/// and go to the other; rules are written per sending side; metrics label directions by it.
public enum Side: String, Sendable, Hashable, CaseIterable {
    case charger
    case csms

    public var other: Side { self == .charger ? .csms : .charger }
}
