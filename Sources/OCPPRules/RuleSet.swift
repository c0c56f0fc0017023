import OCPP

/// A payload as a rule file writes it: constants and expressions in the shape of the JSON to produce.
public indirect enum Template: Sendable {
    public struct Field: Sendable {
        public var name: String
        public var template: Template
        public var line: Int
    }

    case object([Field], line: Int)
    case array([Template], line: Int)
    case value(Expression, line: Int)
    /// `{$each: list, $map: template, $where: condition, $as: name}`
    case each(list: Expression, map: Template, filter: Expression?, name: String?, line: Int)
    /// `{$if: condition, $then: template, $else: template}`
    case choice(condition: Expression, then: Template, otherwise: Template?, line: Int)
    /// `{$concat: [template, …]}`: the lists the templates make, one after another
    case concat([Template], line: Int)
}

/// A CALL the proxy sends on its own after it answered (`then:` in a rule).
public struct FollowUp: Sendable {
    public var side: Side
    public var action: String
    public var request: Template
    public var condition: Expression?
    public var name: String?
    public var line: Int
}

/// One alternative of a rule: when it applies and what it does.
public struct RuleVariant: Sendable {
    public enum Kind: Sendable {
        case forward(action: String, request: Template, result: Template)
        case answer(Template)
        case fanout(list: Expression, item: [RuleVariant], result: Template)
    }

    public var condition: Expression?
    public var conditionLine: Int
    public var bindings: [(name: String, expression: Expression, line: Int)]
    /// `onResult`: evaluated when the forwarded CALL's CALLRESULT arrives, before `result` (which reads them as
    /// `%name`); their state changes take effect with the answer.
    public var resultBindings: [(name: String, expression: Expression, line: Int)] = []
    /// `warn`: an expression whose text goes to the proxy's log as a warning when this variant is used (a frame
    /// the rules acknowledge without passing it on, say).
    public var warning: (expression: Expression, line: Int)? = nil
    public var kind: Kind
    public var followUps: [FollowUp]
    /// Source fields this rule deliberately loses, with the reason.
    public var dropped: [(field: String, reason: String, line: Int)]
    public var line: Int
}

/// What the proxy does with one action: its variants, tried in order.
public struct Rule: Sendable {
    public var action: String
    public var variants: [RuleVariant]
    public var line: Int
}

/// `enum(Name, value)`: a value map with an optional fallback for every value not listed.
public struct EnumMap: Sendable {
    public var values: [String: String]
    public var fallback: String?
    public var line: Int

    public func map(_ value: String) -> String? { values[value] ?? fallback }
}

/// The rules for one pair of versions: how a `from` charger talks to a `to` CSMS.
public struct RuleSet: Sendable {
    public var file: String
    public var from: OCPPVersion
    public var to: OCPPVersion
    /// CALLs the charger sends, by `from` action name.
    public var charger: [String: Rule]
    /// CALLs the CSMS sends, by `to` action name.
    public var csms: [String: Rule]
    public var enums: [String: EnumMap]
    /// CALLERROR codes of the charger's version to the CSMS's, and back.
    public var errorsUp: [String: String]
    public var errorsDown: [String: String]
    public var tolerance: [String: Tolerance]
    public var deviceModel: DeviceModel
    public var fromDefinitions: MessageDefinitions
    public var toDefinitions: MessageDefinitions
    /// Lines of the `charger:` and `csms:` sections, where a missing rule is reported.
    public var sectionLines: [Side: Int] = [:]

    public func version(of side: Side) -> OCPPVersion { side == .charger ? from : to }

    public func definitions(of side: Side) -> MessageDefinitions {
        side == .charger ? fromDefinitions : toDefinitions
    }

    public func rules(sentBy side: Side) -> [String: Rule] { side == .charger ? charger : csms }

    /// The CALLERROR code `code` sent by `side` as the other side's version names it.
    /// A CALLERROR code `side` sent, in the version of the other side: renamed per the rule file, and GenericError
    /// for a code the receiving version does not define (a peer's invention must not reach the other side).
    public func errorCode(_ code: String, sentBy side: Side) -> String {
        let renamed = (side == .csms ? errorsDown : errorsUp)[code] ?? code
        let receiver = version(of: side.other)
        return RPCErrorCode.wireNames(in: receiver).contains(renamed)
            ? renamed : RPCErrorCode.genericError.name(in: receiver)
    }
}

/// 1.6 configuration keys and the 2.0.1 device model: which component/variable a key is, and the
/// variables no key holds that the proxy answers itself.
public struct DeviceModel: Sendable {
    public struct Variable: Sendable, Hashable {
        public var component: String
        public var variable: String
        public var instance: String?
    }

    public struct Fixed: Sendable {
        public var variable: Variable
        public var value: String
    }

    public var keys: [String: Variable]
    public var fixed: [Fixed]
    public var file: String
    private var byVariable: [Variable: String]

    public init(keys: [String: Variable], fixed: [Fixed], file: String) {
        self.keys = keys
        self.fixed = fixed
        self.file = file
        self.byVariable = Dictionary(keys.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
    }

    public static let empty = DeviceModel(keys: [:], fixed: [], file: "")

    public func key(for variable: Variable) -> String? { byVariable[variable] }

    public func fixedValue(for variable: Variable) -> String? {
        fixed.first { $0.variable == variable }?.value
    }
}
