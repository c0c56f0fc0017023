/// The RPC framework error codes (OCPP-J 1.6 §4.2.3, 2.0.1 part 4 §4.3), named once and spelled per version.
public enum RPCErrorCode: String, CaseIterable, Sendable {
    case notImplemented
    case notSupported
    case internalError
    case protocolError
    case securityError
    case formatViolation
    case propertyConstraintViolation
    case occurrenceConstraintViolation
    case typeConstraintViolation
    case genericError
    case messageTypeNotSupported
    case rpcFrameworkError

    /// The code as it is written on the wire in `version`.
    public func name(in version: OCPPVersion) -> String {
        switch (self, version.isTwoX) {
        case (.notImplemented, _): return "NotImplemented"
        case (.notSupported, _): return "NotSupported"
        case (.internalError, _): return "InternalError"
        case (.protocolError, _): return "ProtocolError"
        case (.securityError, _): return "SecurityError"
        case (.propertyConstraintViolation, _): return "PropertyConstraintViolation"
        case (.typeConstraintViolation, _): return "TypeConstraintViolation"
        case (.genericError, _): return "GenericError"
        // 1.6 keeps the names of its first edition (OCPP-J 1.6 errata §5.1, §5.2).
        case (.formatViolation, false): return "FormationViolation"
        case (.formatViolation, true): return "FormatViolation"
        case (.occurrenceConstraintViolation, false): return "OccurenceConstraintViolation"
        case (.occurrenceConstraintViolation, true): return "OccurrenceConstraintViolation"
        // 1.6 has no code for a frame outside the RPC framework; its FormationViolation covers
        // "not conform the PDU structure".
        case (.rpcFrameworkError, false): return "FormationViolation"
        case (.rpcFrameworkError, true): return "RpcFrameworkError"
        case (.messageTypeNotSupported, false): return "GenericError"
        case (.messageTypeNotSupported, true): return "MessageTypeNotSupported"
        }
    }

    /// Every code that is valid on the wire in `version`: the bounded label set for metrics.
    public static func wireNames(in version: OCPPVersion) -> Set<String> {
        Set(allCases.map { $0.name(in: version) })
    }
}
