import OCPP

/// CSMS-initiated CALLs about the charger's credentials and network connection. TLS and Basic auth end at the
/// proxy, so these concern the proxy's own link to the CSMS, not the charger's link to the proxy
/// (`MAPPING.md` §1.3 (d)); the proxy answers them itself and the charger never sees them.
enum CredentialMessage: Equatable {
    /// Not a credential message: forward it.
    case forward
    /// Answer with this CALLRESULT payload.
    case answer(JSONValue)
    /// Persist the new upstream password, then answer with this payload (A01.FR.03: after Accepted the CSMS
    /// accepts only the new password, so it must be durable before the answer leaves).
    case changePassword(String, answer: JSONValue)
    /// 2.0.1 SetVariables mixing BasicAuthPassword with other variables: persist the password, forward the
    /// rest, and put `ownResults` back at their positions in the charger's answer.
    case changePasswordAndForward(String, forward: JSONValue, ownResults: [Int: JSONValue])

    /// The actions ``classify(action:payload:version:)`` may answer in the charger's place; every other CALL is
    /// forwarded without its payload being read.
    static func mayConcern(action: String) -> Bool {
        switch action {
        case "ChangeConfiguration", "InstallCertificate", "SetNetworkProfile", "SetVariables": return true
        default: return false
        }
    }

    static func classify(action: String, payload: JSONValue, version: OCPPVersion) -> CredentialMessage {
        guard case .object(let fields) = payload else { return .forward }
        switch (version, action) {
        case (.v1_6, "ChangeConfiguration"):
            // SEC16 A01.FR.02: the CSMS sets the Basic auth password with the AuthorizationKey key.
            guard fields["key"]?.stringValue == "AuthorizationKey", let value = fields["value"]?.stringValue else {
                return .forward
            }
            return .changePassword(value, answer: .object(["status": .string("Accepted")]))
        case (.v1_6, "InstallCertificate")
        where fields["certificateType"]?.stringValue == "CentralSystemRootCertificate",
            (_, "InstallCertificate")
        where version.isTwoX && fields["certificateType"]?.stringValue == "CSMSRootCertificate":
            // The charger verifies the proxy's certificate, not the CSMS's: a CSMS root is of no use to it.
            return .answer(.object(["status": .string("Rejected")]))
        case (_, "SetNetworkProfile") where version.isTwoX:
            // Would point the charger at another endpoint, around the proxy.
            return .answer(.object(["status": .string("Rejected")]))
        case (_, "SetVariables") where version.isTwoX:
            return classifySetVariables(fields)
        default:
            return .forward
        }
    }

    private static func classifySetVariables(_ fields: JSONObject) -> CredentialMessage {
        guard case .array(let items)? = fields["setVariableData"] else { return .forward }
        var password: String?
        var ownResults: [Int: JSONValue] = [:]
        var rest: [JSONValue] = []
        for (index, item) in items.enumerated() {
            guard case .object(let data) = item, case .object(let component)? = data["component"],
                case .object(let variable)? = data["variable"], component["name"]?.stringValue == "SecurityCtrlr",
                variable["name"]?.stringValue == "BasicAuthPassword", let value = data["attributeValue"]?.stringValue
            else {
                rest.append(item)
                continue
            }
            password = value
            var result: JSONObject = [
                "attributeStatus": .string("Accepted"), "component": .object(component), "variable": .object(variable),
            ]
            if let type = data["attributeType"] { result["attributeType"] = type }
            ownResults[index] = .object(result)
        }
        guard let password else { return .forward }
        if rest.isEmpty {
            let results = (0..<items.count).compactMap { ownResults[$0] }
            return .changePassword(password, answer: .object(["setVariableResult": .array(results)]))
        }
        var forwarded = fields
        forwarded["setVariableData"] = .array(rest)
        return .changePasswordAndForward(password, forward: .object(forwarded), ownResults: ownResults)
    }

    /// The charger's SetVariables answer with the proxy's own results put back in request order.
    static func merge(_ ownResults: [Int: JSONValue], into payload: JSONValue) -> JSONValue? {
        guard case .object(var fields) = payload, case .array(let theirs)? = fields["setVariableResult"] else {
            return nil
        }
        var merged: [JSONValue] = []
        var remaining = theirs[...]
        let total = theirs.count + ownResults.count
        for index in 0..<total {
            if let own = ownResults[index] {
                merged.append(own)
            } else if let next = remaining.popFirst() {
                merged.append(next)
            }
        }
        merged.append(contentsOf: remaining)
        fields["setVariableResult"] = .array(merged)
        return .object(fields)
    }
}
