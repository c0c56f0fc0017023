import OCPP
import OCPPRules
import Yams

/// Where one OCPP version's messages sit in a SOAP envelope, and what they hold: a `soap/<version>.yaml` file of
/// the rules directory (Rules/README.md, "SOAP layout files") with the messages it names.
public struct SOAPLayout: Sendable {
    /// The request and response body elements of one action (`bootNotificationRequest`, `bootNotificationResponse`).
    public struct BodyElements: Sendable, Equatable {
        public var request: String
        public var response: String
    }

    public var version: OCPPVersion
    /// The namespace of the Central System service: the CALLs a charger sends, their answers, the identity header.
    public var centralSystemNamespace: String
    /// The namespace of the Charge Point service: the CALLs a CSMS sends and their answers.
    public var chargePointNamespace: String
    /// The header elements the WSDL binds to every request (`chargeBoxIdentity`).
    public var headerElements: [String]
    public var elements: [String: BodyElements]
    /// Paths (`MeterValues.request.values[].value[]`) of objects written as one element: text in `value`, the
    /// other fields as attributes.
    public var simpleContent: Set<String>
    public var definitions: MessageDefinitions

    /// The namespace of the service that receives `side`'s CALLs.
    public func namespace(ofCallsFrom side: Side) -> String {
        side == .charger ? centralSystemNamespace : chargePointNamespace
    }

    /// The action whose request or response body element is `name`.
    func action(ofElement name: String, response: Bool) -> String? {
        elements.first { (response ? $0.value.response : $0.value.request) == name }?.key
    }
}

/// Every SOAP layout of a rules directory, by version.
public struct SOAPLayouts: Sendable {
    public var layouts: [OCPPVersion: SOAPLayout]

    public init(layouts: [OCPPVersion: SOAPLayout]) { self.layouts = layouts }

    public subscript(version: OCPPVersion) -> SOAPLayout? { layouts[version] }

    /// Reads every `soap/*.yaml` file of `sources` (and the definition file each names); throws every problem
    /// found as `file:line: message`. The library does no I/O: the caller reads the directory, as for
    /// `RuleLibrary.load`.
    public static func load(_ sources: RuleSources) throws(RuleErrors) -> SOAPLayouts {
        var issues: [RuleIssue] = []
        var layouts: [OCPPVersion: SOAPLayout] = [:]
        for name in sources.files.keys.sorted() where name.hasPrefix("soap/") && name.hasSuffix(".yaml") {
            let file = sources.directory.isEmpty ? name : "\(sources.directory)/\(name)"
            do {
                let layout = try read(sources.files[name] ?? "", file: file, sources: sources)
                if layouts[layout.version] != nil {
                    issues.append(
                        RuleIssue(file: file, line: nil, message: "a second SOAP layout for \(layout.version)"))
                } else {
                    layouts[layout.version] = layout
                }
            } catch {
                issues += error.issues
            }
        }
        if !issues.isEmpty { throw RuleErrors(issues: issues) }
        return SOAPLayouts(layouts: layouts)
    }

    static let keys: Set<String> = [
        "version", "definitions", "messages", "namespaces", "header", "elements", "simpleContent",
    ]

    static func read(_ text: String, file: String, sources: RuleSources) throws(RuleErrors) -> SOAPLayout {
        var issues: [RuleIssue] = []
        func issue(_ node: Node?, _ message: String) {
            issues.append(RuleIssue(file: file, line: node?.mark?.line, message: message))
        }
        guard case .success(let composed) = YAMLReader.compose(text), let root = composed, root.mapping != nil else {
            throw RuleErrors(issues: [RuleIssue(file: file, line: nil, message: "not a YAML mapping")])
        }
        for (key, keyNode, _) in YAMLReader.pairs(root.mapping!).pairs where !keys.contains(key) {
            issue(keyNode, "unknown key '\(key)'; expected one of \(keys.sorted().joined(separator: ", "))")
        }
        // The messages: in the file named by `definitions`, or inline.
        let definitions: MessageDefinitions
        switch (root["definitions"]?.string, root["messages"]) {
        case (let path?, nil):
            guard let referenced = sources.files[path] else {
                throw RuleErrors(
                    issues: issues + [
                        RuleIssue(
                            file: file, line: root["definitions"]?.mark?.line,
                            message: "definitions: no file '\(path)' in the rules directory")
                    ])
            }
            definitions = try RuleLibrary.readDefinitions(referenced, file: path)
        case (nil, .some):
            definitions = try RuleLibrary.readDefinitions(text, file: file, otherKeys: keys)
        default:
            throw RuleErrors(
                issues: issues + [
                    RuleIssue(file: file, line: nil, message: "needs exactly one of 'definitions' and 'messages'")
                ])
        }
        guard let versionName = root["version"]?.string, let version = OCPPVersion(rawValue: versionName) else {
            throw RuleErrors(
                issues: issues + [
                    RuleIssue(
                        file: file, line: root["version"]?.mark?.line,
                        message: "version: expected one of \(OCPPVersion.allNames)")
                ])
        }
        if definitions.version != version {
            issue(root["definitions"], "the definitions are of \(definitions.version), the layout of \(version)")
        }
        let central = root["namespaces"]?["centralSystem"]?.string
        let chargePoint = root["namespaces"]?["chargePoint"]?.string
        if central == nil || chargePoint == nil {
            issue(root["namespaces"], "namespaces: needs centralSystem and chargePoint")
        }
        var header: [String] = []
        if let mapping = root["header"]?.mapping {
            header = YAMLReader.pairs(mapping).pairs.map(\.key)
        } else {
            issue(root["header"], "header: expected a mapping of header elements")
        }
        var elements: [String: SOAPLayout.BodyElements] = [:]
        for (action, keyNode, value) in root["elements"]?.mapping.map({ YAMLReader.pairs($0).pairs }) ?? [] {
            guard let pair = value.sequence, pair.count == 2, let request = pair[0].string,
                let response = pair[1].string
            else {
                issue(keyNode, "elements.\(action): expected [requestElement, responseElement]")
                continue
            }
            elements[action] = .init(request: request, response: response)
        }
        if Set(elements.keys) != Set(definitions.messages.keys) {
            let odd = Set(elements.keys).symmetricDifference(definitions.messages.keys).sorted()
            issue(root["elements"], "elements and messages name different actions: \(odd.joined(separator: ", "))")
        }
        var simpleContent = Set<String>()
        for node in root["simpleContent"]?.sequence.map(Array.init) ?? [] {
            guard let path = node.string, simpleContentShapeIsValid(path, definitions) else {
                issue(
                    node,
                    "simpleContent: '\(node.string ?? "")' is not the path of an object with a field 'value' and scalar fields"
                )
                continue
            }
            simpleContent.insert(path)
        }
        if !issues.isEmpty { throw RuleErrors(issues: issues) }
        return SOAPLayout(
            version: version, centralSystemNamespace: central ?? "", chargePointNamespace: chargePoint ?? "",
            headerElements: header, elements: elements, simpleContent: simpleContent, definitions: definitions)
    }

    /// Whether `path` (`Action.request.a[].b`) leads to an object whose fields are scalars, one of them `value`.
    static func simpleContentShapeIsValid(_ path: String, _ definitions: MessageDefinitions) -> Bool {
        let parts = path.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, let message = definitions.messages[parts[0]] else { return false }
        var shape: Shape
        switch parts[1] {
        case "request": shape = message.request
        case "response": shape = message.response
        default: return false
        }
        for step in parts[2].split(separator: ".") {
            var name = Substring(step)
            var arrays = 0
            while name.hasSuffix("[]") {
                name = name.dropLast(2)
                arrays += 1
            }
            guard case .object(let object) = shape, let field = object.field(String(name)) else { return false }
            shape = field.shape
            for _ in 0..<arrays {
                guard case .array(let element, _, _) = shape else { return false }
                shape = element
            }
        }
        guard case .object(let object) = shape, object.field("value") != nil else { return false }
        return object.fields.allSatisfy {
            switch $0.shape {
            case .object, .array: return false
            default: return true
            }
        }
    }
}
