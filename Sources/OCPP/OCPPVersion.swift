import Foundation

/// An OCPP protocol version, named by its WebSocket subprotocol (OCPP-J 1.6 §3.1.2, OCPP 2.0.1 part 4 §3.1.2).
/// OCPP 1.5 exists only over SOAP (OCPP-S); its name follows the same pattern.
public enum OCPPVersion: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case v1_5 = "ocpp1.5"
    case v1_6 = "ocpp1.6"
    case v2_0_1 = "ocpp2.0.1"
    case v2_1 = "ocpp2.1"

    /// The subprotocol token sent in `Sec-WebSocket-Protocol`.
    public var subprotocol: String { rawValue }

    public var description: String { rawValue }

    /// The names accepted in configuration and on the wire, for error messages.
    public static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Whether the version belongs to the 2.x family, which shares the RPC error-code vocabulary.
    public var isTwoX: Bool { self == .v2_0_1 || self == .v2_1 }

    /// Whether the version is spoken over WebSocket (OCPP-J); 1.5 is SOAP only.
    public var hasJSONTransport: Bool { self != .v1_5 }

    /// The versions spoken over WebSocket, for a listener or an upstream of that transport.
    public static var jsonVersions: [OCPPVersion] { allCases.filter(\.hasJSONTransport) }
}

/// Chooses the subprotocol for a charger's WebSocket handshake.
public enum SubprotocolNegotiation: Equatable, Sendable {
    /// Agreed on a version the listener serves.
    case agreed(OCPPVersion)
    /// The charger offered no subprotocol and the listener has a default for that quirk.
    case defaulted(OCPPVersion)
    /// The charger offered no subprotocol and the listener has no default: refuse before the upgrade.
    case missing
    /// The charger offered subprotocols, none of them served here. OCPP-J §3.2: complete the handshake
    /// without `Sec-WebSocket-Protocol` and close at once.
    case noneAcceptable(offered: [String])

    /// Negotiates from the values of every `Sec-WebSocket-Protocol` header, in the charger's order of preference.
    public static func negotiate(
        offeredHeaderValues: [String],
        served: [OCPPVersion],
        defaultVersion: OCPPVersion?
    ) -> SubprotocolNegotiation {
        let offered =
            offeredHeaderValues
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !offered.isEmpty else {
            if let defaultVersion { return .defaulted(defaultVersion) }
            return .missing
        }
        for token in offered {
            // Subprotocol tokens are compared exactly (RFC 6455 §4.1: case-sensitive).
            if let version = OCPPVersion(rawValue: token), served.contains(version) {
                return .agreed(version)
            }
        }
        return .noneAcceptable(offered: offered)
    }
}
