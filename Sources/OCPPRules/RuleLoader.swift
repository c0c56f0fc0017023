import OCPP
import Yams

/// The text of the files in a rules directory, by path relative to it (`ocpp1.6-ocpp2.0.1.yaml`,
/// `definitions/ocpp1.6.yaml`). Reading them is the caller's business: this library does no I/O.
public struct RuleSources: Sendable {
    public var files: [String: String]
    public var directory: String

    /// The folders of a rules directory whose `*.yaml` files are read: the rule files, the definitions, and the
    /// SOAP layout files (read by `OCPPSOAP`; the rule library passes them by).
    public static let folders = ["", "definitions/", "soap/"]

    public init(files: [String: String], directory: String) {
        self.files = files
        self.directory = directory
    }
}

/// Every rule set and message definition of a rules directory, loaded and checked.
public struct RuleLibrary: Sendable {
    public var ruleSets: [RuleSet]
    public var definitions: [OCPPVersion: MessageDefinitions]

    /// The rules that let a `charger` version talk to a `csms` version, if any.
    public func ruleSet(charger: OCPPVersion, csms: OCPPVersion) -> RuleSet? {
        ruleSets.first { $0.from == charger && $0.to == csms }
    }

    /// The rule sets that lead from a `charger` version to a `csms` version, in order: the shortest path through
    /// the version graph whose edges are the rule files (a file of its own beats a chain). Nil when the versions
    /// are equal or nothing joins them. Among paths of one length, the one through files earlier by name wins.
    public func chain(charger: OCPPVersion, csms: OCPPVersion) -> [RuleSet]? {
        guard charger != csms else { return nil }
        // Breadth first from the charger's version; `reached` holds the rule set that first reached a version.
        var reached: [OCPPVersion: Int] = [:]
        var frontier = [charger]
        var seen: Set<OCPPVersion> = [charger]
        while !frontier.isEmpty, reached[csms] == nil {
            var next: [OCPPVersion] = []
            for version in frontier {
                for (index, set) in ruleSets.enumerated() where set.from == version && !seen.contains(set.to) {
                    seen.insert(set.to)
                    reached[set.to] = index
                    next.append(set.to)
                }
            }
            frontier = next
        }
        guard reached[csms] != nil else { return nil }
        var path: [RuleSet] = []
        var version = csms
        while version != charger, let index = reached[version] {
            path.insert(ruleSets[index], at: 0)
            version = ruleSets[index].from
        }
        return path
    }

    /// Loads every file, then checks every rule against the definitions; throws every problem found.
    public static func load(_ sources: RuleSources) throws(RuleErrors) -> RuleLibrary {
        var issues: [RuleIssue] = []
        var definitions: [OCPPVersion: MessageDefinitions] = [:]
        for name in sources.files.keys.sorted() where name.hasPrefix("definitions/") && name.hasSuffix(".yaml") {
            var reader = RuleFileReader(file: display(name, sources))
            if let loaded = reader.readDefinitions(sources.files[name]!) {
                if definitions[loaded.version] != nil {
                    reader.issue(nil, "a second definition file for \(loaded.version)")
                } else {
                    definitions[loaded.version] = loaded
                }
            }
            issues += reader.issues
        }
        var ruleSets: [RuleSet] = []
        var deviceModelFiles = Set<String>()
        let pairFiles = sources.files.keys.sorted().filter { !$0.contains("/") && $0.hasSuffix(".yaml") }
        // A device-model file is named by a pair file; read the pair files' references first.
        for name in pairFiles {
            if let text = sources.files[name], let node = try? Yams.compose(yaml: text),
                let reference = node["deviceModel"]?.string
            {
                deviceModelFiles.insert(reference)
            }
        }
        for name in pairFiles where !deviceModelFiles.contains(name) {
            var reader = RuleFileReader(file: display(name, sources))
            if let set = reader.readRuleSet(sources.files[name]!, sources: sources, definitions: definitions) {
                if ruleSets.contains(where: { $0.from == set.from && $0.to == set.to }) {
                    reader.issue(nil, "a second rule file for \(set.from) → \(set.to)")
                } else {
                    var checker = RuleChecker(ruleSet: set)
                    checker.check()
                    issues += checker.issues
                    ruleSets.append(set)
                }
            }
            issues += reader.issues
        }
        if !issues.isEmpty { throw RuleErrors(issues: issues) }
        return RuleLibrary(ruleSets: ruleSets, definitions: definitions)
    }

    /// Reads the text of a file in the definition notation (Rules/README.md, "Definition files"). `otherKeys` are
    /// the top-level keys it may have beside `version` and `messages`, for a file of another kind that carries
    /// messages, such as a SOAP layout file.
    public static func readDefinitions(
        _ text: String, file: String, otherKeys: Set<String> = []
    ) throws(RuleErrors) -> MessageDefinitions {
        var reader = RuleFileReader(file: file)
        let loaded = reader.readDefinitions(text, otherKeys: otherKeys)
        guard let loaded, reader.issues.isEmpty else { throw RuleErrors(issues: reader.issues) }
        return loaded
    }

    static func display(_ name: String, _ sources: RuleSources) -> String {
        sources.directory.isEmpty ? name : "\(sources.directory)/\(name)"
    }
}

/// Reads YAML nodes into rule and definition values, collecting problems with their lines.
/// Reads one rule or definition file's nodes (through ``YAMLReader``), recording each problem with its line.
struct RuleFileReader {
    let file: String
    var issues: [RuleIssue] = []

    init(file: String) { self.file = file }

    mutating func issue(_ node: Node?, _ message: String) {
        issues.append(RuleIssue(file: file, line: node?.mark?.line, message: message))
    }

    mutating func compose(_ text: String) -> Node? {
        switch YAMLReader.compose(text) {
        case .success(let node?):
            return node
        case .success(nil):
            issue(nil, "the file is empty")
        case .failure(let failure):
            switch failure.kind {
            case .syntax, .structure:
                issues.append(
                    RuleIssue(file: file, line: failure.line, message: "YAML syntax error: \(failure.problem)"))
            case .duplicateKeys(let duplicates):
                // A rule written twice for one action is the usual cause.
                issues.append(
                    RuleIssue(
                        file: file, line: failure.line,
                        message:
                            "\(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")) appears twice in one mapping"
                    ))
            case .unreadable, .other, .unexpected:
                issues.append(RuleIssue(file: file, line: nil, message: "YAML error: \(failure.error)"))
            }
        }
        return nil
    }

    /// The pairs of a mapping in file order; a key written twice is reported.
    mutating func pairs(_ node: Node?, _ what: String) -> [(key: String, keyNode: Node, value: Node)] {
        guard let node else { return [] }
        guard let mapping = node.mapping else {
            issue(node, "\(what) must be a mapping")
            return []
        }
        let read = YAMLReader.pairs(mapping)
        for repeated in read.repeated {
            issue(repeated.keyNode, "'\(repeated.key)' appears twice in \(what) (first at line \(repeated.firstLine))")
        }
        return read.pairs
    }

    mutating func checkKeys(_ node: Node, _ what: String, allowed: Set<String>) {
        for (key, keyNode, _) in pairs(node, what) where !allowed.contains(key) {
            issue(
                keyNode, "unknown key '\(key)' in \(what); expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    mutating func text(_ node: Node?, _ what: String) -> String? {
        guard let node else { return nil }
        guard let scalar = node.scalar else {
            issue(node, "\(what) must be a single value")
            return nil
        }
        return scalar.string
    }

    mutating func version(_ node: Node?, _ what: String) -> OCPPVersion? {
        guard let node else {
            issue(nil, "\(what) is missing")
            return nil
        }
        guard let name = text(node, what) else { return nil }
        guard let version = OCPPVersion(rawValue: name) else {
            issue(node, "\(what): unknown OCPP version '\(name)'; expected one of \(OCPPVersion.allNames)")
            return nil
        }
        return version
    }

    // MARK: Definition files

    /// A definition file's messages; `otherKeys` are top-level keys a file of another kind may hold beside
    /// `version` and `messages` (a SOAP layout file's).
    mutating func readDefinitions(_ text: String, otherKeys: Set<String> = []) -> MessageDefinitions? {
        guard let root = compose(text) else { return nil }
        checkKeys(root, "the definition file", allowed: Set(["version", "messages"]).union(otherKeys))
        guard let version = version(root["version"], "version") else { return nil }
        var messages: [String: MessageDefinitions.Message] = [:]
        for (action, keyNode, body) in pairs(root["messages"], "messages") {
            checkKeys(body, action, allowed: ["sentBy", "request", "response"])
            guard let senderText = self.text(body["sentBy"], "\(action).sentBy"),
                let sender = MessageSender(rawValue: senderText)
            else {
                issue(body["sentBy"] ?? keyNode, "\(action).sentBy must be chargingStation, csms or both")
                continue
            }
            guard let request = shape(body["request"], action + ".request"),
                let response = shape(body["response"], action + ".response")
            else { continue }
            messages[action] = .init(sentBy: sender, request: request, response: response)
        }
        return MessageDefinitions(version: version, messages: messages)
    }

    mutating func shape(_ node: Node?, _ what: String) -> Shape? {
        guard let node else {
            issue(nil, "\(what) is missing")
            return nil
        }
        switch node {
        case .mapping:
            var fields: [ObjectShape.Field] = []
            var open = false
            for (key, _, value) in pairs(node, what) {
                if key == "*" {
                    open = true
                    continue
                }
                let required = key.hasSuffix("!")
                let name = required ? String(key.dropLast()) : key
                guard let child = shape(value, "\(what).\(name)") else { continue }
                fields.append(.init(name: name, required: required, shape: child))
            }
            return .object(ObjectShape(fields: fields, open: open))
        case .sequence(let sequence):
            guard let first = sequence.first, let element = shape(first, what + "[]") else {
                issue(node, "\(what): an array shape is [element] or [element, {min: n, max: n}]")
                return nil
            }
            var min: Int?
            var max: Int?
            if sequence.count > 1 {
                min = sequence[1]["min"]?.int
                max = sequence[1]["max"]?.int
            }
            return .array(element, min: min, max: max)
        case .scalar(let scalar):
            return scalarShape(scalar.string, node, what)
        default:
            issue(node, "\(what): not a shape")
            return nil
        }
    }

    mutating func scalarShape(_ text: String, _ node: Node, _ what: String) -> Shape? {
        func argument(_ prefix: String) -> String? {
            guard text.hasPrefix(prefix + "("), text.hasSuffix(")") else { return nil }
            return String(text.dropFirst(prefix.count + 1).dropLast())
        }
        switch text {
        case "integer": return .integer(minimum: nil)
        case "number": return .number(minimum: nil)
        case "boolean": return .boolean
        case "string": return .string(maxLength: nil)
        case "datetime": return .dateTime
        case "any": return .any
        default: break
        }
        if let values = argument("enum") {
            return .enumeration(values.split(separator: "|").map(String.init))
        }
        if let length = argument("string"), let n = Int(length) { return .string(maxLength: n) }
        if let bound = argument("integer"), bound.hasPrefix(">="), let n = Int64(bound.dropFirst(2)) {
            return .integer(minimum: n)
        }
        // number(>=0), number(multipleOf 0.1), number(>=0 multipleOf 0.1)
        if let constraints = argument("number") {
            let words = constraints.split(separator: " ").map(String.init)
            var minimum: Double?
            var step: Double?
            var index = 0
            var understood = !words.isEmpty
            while understood && index < words.count {
                let word = words[index]
                if word.hasPrefix(">="), minimum == nil, let n = Double(word.dropFirst(2)), n.isFinite {
                    minimum = n
                    index += 1
                } else if word == "multipleOf", step == nil, index + 1 < words.count,
                    let n = Double(words[index + 1]), n.isFinite, n > 0
                {
                    step = n
                    index += 2
                } else {
                    understood = false
                }
            }
            if understood { return .number(minimum: minimum, multipleOf: step) }
        }
        issue(node, "\(what): unknown shape '\(text)'")
        return nil
    }

    // MARK: Rule files

    mutating func readRuleSet(
        _ text: String, sources: RuleSources, definitions: [OCPPVersion: MessageDefinitions]
    ) -> RuleSet? {
        guard let root = compose(text) else { return nil }
        checkKeys(
            root, "the rule file",
            allowed: ["from", "to", "deviceModel", "charger", "csms", "enums", "errors", "tolerance", "note"])
        guard let from = version(root["from"], "from"), let to = version(root["to"], "to") else { return nil }
        guard let fromDefinitions = definitions[from], let toDefinitions = definitions[to] else {
            issue(root["from"], "no definition file for \(definitions[from] == nil ? from : to) in definitions/")
            return nil
        }
        var deviceModel = DeviceModel.empty
        if let reference = root["deviceModel"], let name = self.text(reference, "deviceModel") {
            if let modelText = sources.files[name] {
                var modelReader = RuleFileReader(file: RuleLibrary.display(name, sources))
                deviceModel = modelReader.readDeviceModel(modelText) ?? .empty
                issues += modelReader.issues
            } else {
                issue(reference, "deviceModel: no file '\(name)' in the rules directory")
            }
        }
        var enums: [String: EnumMap] = [:]
        for (name, _, body) in pairs(root["enums"], "enums") {
            var values: [String: String] = [:]
            var fallback: String?
            for (key, _, value) in pairs(body, "enums.\(name)") {
                guard let mapped = self.text(value, "enums.\(name).\(key)") else { continue }
                if key == "_" { fallback = mapped } else { values[key] = mapped }
            }
            enums[name] = EnumMap(values: values, fallback: fallback, line: body.mark?.line ?? 0)
        }
        var errorsUp: [String: String] = [:]
        var errorsDown: [String: String] = [:]
        if let errors = root["errors"] {
            checkKeys(errors, "errors", allowed: ["up", "down"])
            for (code, _, value) in pairs(errors["up"], "errors.up") { errorsUp[code] = self.text(value, code) }
            for (code, _, value) in pairs(errors["down"], "errors.down") { errorsDown[code] = self.text(value, code) }
        }
        var tolerance: [String: Tolerance] = [:]
        for (name, _, body) in pairs(root["tolerance"], "tolerance") {
            var profile = Tolerance()
            for quirkNode in body.sequence.map(Array.init) ?? [body] {
                switch quirkNode.string {
                case "enumCase": profile.enumCase = true
                case "numericStrings": profile.numericStrings = true
                case "unknownFields": profile.unknownFields = true
                default:
                    issue(
                        quirkNode,
                        "tolerance.\(name): unknown quirk '\(quirkNode.string ?? "")'; expected \(Tolerance.quirkNames.joined(separator: ", "))"
                    )
                }
            }
            tolerance[name] = profile
        }
        var charger: [String: Rule] = [:]
        var csms: [String: Rule] = [:]
        for (action, keyNode, body) in pairs(root["charger"], "charger") {
            if let rule = self.rule(action, keyNode, body, origin: .charger) { charger[action] = rule }
        }
        for (action, keyNode, body) in pairs(root["csms"], "csms") {
            if let rule = self.rule(action, keyNode, body, origin: .csms) { csms[action] = rule }
        }
        var set = RuleSet(
            file: file, from: from, to: to, charger: charger, csms: csms, enums: enums, errorsUp: errorsUp,
            errorsDown: errorsDown, tolerance: tolerance, deviceModel: deviceModel, fromDefinitions: fromDefinitions,
            toDefinitions: toDefinitions)
        for (key, keyNode, _) in pairs(root, "the rule file") where key == "charger" || key == "csms" {
            set.sectionLines[key == "charger" ? .charger : .csms] = keyNode.mark?.line
        }
        return set
    }

    mutating func rule(_ action: String, _ keyNode: Node, _ body: Node, origin: Side) -> Rule? {
        let variants = self.variants(body, action, origin: origin)
        guard !variants.isEmpty else { return nil }
        return Rule(action: action, variants: variants, line: keyNode.mark?.line ?? 0)
    }

    mutating func variants(_ body: Node, _ what: String, origin: Side) -> [RuleVariant] {
        let nodes = body.sequence.map(Array.init) ?? [body]
        var variants: [RuleVariant] = []
        for (index, node) in nodes.enumerated() {
            guard let variant = variant(node, what, origin: origin) else { continue }
            if variant.condition != nil, index == nodes.count - 1 {
                issue(node, "\(what): the last alternative must have no 'when', so that every CALL has an answer")
            }
            if variant.condition == nil, index < nodes.count - 1 {
                issue(node, "\(what): an alternative without 'when' must be the last; the ones after it never apply")
            }
            variants.append(variant)
        }
        return variants
    }

    mutating func variant(_ node: Node, _ what: String, origin: Side) -> RuleVariant? {
        guard node.mapping != nil else {
            issue(node, "\(what): a rule is a mapping (to/request/result, answer or foreach/item/result)")
            return nil
        }
        checkKeys(
            node, what,
            allowed: [
                "when", "let", "to", "request", "onResult", "result", "answer", "foreach", "item", "then", "drop",
                "warn", "note",
            ])
        let condition = node["when"].flatMap { expression($0, "\(what).when") }
        var bindings: [(String, Expression, Int)] = []
        for (name, _, value) in pairs(node["let"], "\(what).let") {
            if let e = expression(value, "\(what).let.\(name)") { bindings.append((name, e, value.mark?.line ?? 0)) }
        }
        var resultBindings: [(String, Expression, Int)] = []
        for (name, _, value) in pairs(node["onResult"], "\(what).onResult") {
            if let e = expression(value, "\(what).onResult.\(name)") {
                resultBindings.append((name, e, value.mark?.line ?? 0))
            }
        }
        if node["onResult"] != nil, node["to"] == nil {
            issue(node, "\(what): onResult belongs to a rule with 'to' (it reads the forwarded CALL's answer)")
        }
        let kind: RuleVariant.Kind
        let forms = [node["to"] != nil, node["answer"] != nil, node["foreach"] != nil].filter { $0 }.count
        if forms != 1 {
            issue(node, "\(what): a rule has exactly one of 'to', 'answer' or 'foreach'")
            return nil
        }
        if let to = node["to"] {
            guard let action = text(to, "\(what).to") else { return nil }
            guard let request = template(node["request"], "\(what).request"),
                let result = template(node["result"], "\(what).result")
            else { return nil }
            kind = .forward(action: action, request: request, result: result)
        } else if let answer = node["answer"] {
            guard let payload = template(answer, "\(what).answer") else { return nil }
            kind = .answer(payload)
        } else {
            guard let list = expression(node["foreach"]!, "\(what).foreach"),
                let itemNode = node["item"]
                    ?? {
                        issue(node, "\(what): foreach needs 'item'"); return nil
                    }(),
                let result = template(node["result"], "\(what).result")
            else { return nil }
            let item = variants(itemNode, "\(what).item", origin: origin)
            guard !item.isEmpty else { return nil }
            kind = .fanout(list: list, item: item, result: result)
        }
        var followUps: [FollowUp] = []
        if let then = node["then"] {
            for step in then.sequence.map(Array.init) ?? [then] {
                checkKeys(step, "\(what).then", allowed: ["toCharger", "toCSMS", "request", "when", "as", "note"])
                let side: Side
                let actionNode: Node
                if let n = step["toCharger"] {
                    side = .charger
                    actionNode = n
                } else if let n = step["toCSMS"] {
                    side = .csms
                    actionNode = n
                } else {
                    issue(step, "\(what).then: a step is 'toCharger: Action' or 'toCSMS: Action'")
                    continue
                }
                guard let action = text(actionNode, "\(what).then"),
                    let request = template(step["request"], "\(what).then.\(action).request")
                else { continue }
                followUps.append(
                    FollowUp(
                        side: side, action: action, request: request,
                        condition: step["when"].flatMap { expression($0, "\(what).then.when") },
                        name: step["as"].flatMap { text($0, "\(what).then.as") }, line: step.mark?.line ?? 0))
            }
        }
        var dropped: [(String, String, Int)] = []
        for (field, keyNode, reason) in pairs(node["drop"], "\(what).drop") {
            dropped.append((field, reason.string ?? "", keyNode.mark?.line ?? 0))
        }
        return RuleVariant(
            condition: condition, conditionLine: node["when"]?.mark?.line ?? node.mark?.line ?? 0, bindings: bindings,
            resultBindings: resultBindings,
            warning: node["warn"].flatMap { n in expression(n, "\(what).warn").map { ($0, n.mark?.line ?? 0) } },
            kind: kind, followUps: followUps, dropped: dropped, line: node.mark?.line ?? 0)
    }

    mutating func expression(_ node: Node, _ what: String) -> Expression? {
        guard let scalar = node.scalar else {
            issue(node, "\(what) must be an expression")
            return nil
        }
        if node.tag.rawValue != Tag.Name.str.rawValue { return constant(node).map { .constant($0) } }
        do {
            return try Expression.parse(scalar.string)
        } catch {
            issue(node, "\(what): \(error)")
            return nil
        }
    }

    func constant(_ node: Node) -> JSONValue? {
        switch Tag.Name(rawValue: node.tag.rawValue) {
        case .int: return node.int.map { .integer(Int64($0)) }
        case .float: return node.float.map { .number($0) }
        case .bool: return node.bool.map { .bool($0) }
        case .null: return .null
        default: return node.string.map { .string($0) }
        }
    }

    mutating func template(_ node: Node?, _ what: String) -> Template? {
        guard let node else {
            issue(nil, "\(what) is missing")
            return nil
        }
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            if node.tag.rawValue == Tag.Name.str.rawValue, Expression.looksLikeExpression(scalar.string) {
                return expression(node, what).map { .value($0, line: line) }
            }
            return constant(node).map { .value(.constant($0), line: line) }
        case .sequence(let sequence):
            var elements: [Template] = []
            for (index, element) in sequence.enumerated() {
                if let t = template(element, "\(what)[\(index)]") { elements.append(t) }
            }
            return .array(elements, line: line)
        case .mapping:
            if node["$each"] != nil {
                checkKeys(node, what, allowed: ["$each", "$map", "$where", "$as"])
                guard let list = expression(node["$each"]!, "\(what).$each"),
                    let map = template(node["$map"], "\(what).$map")
                else { return nil }
                return .each(
                    list: list, map: map, filter: node["$where"].flatMap { expression($0, "\(what).$where") },
                    name: node["$as"].flatMap { text($0, "\(what).$as") }, line: line)
            }
            if node["$if"] != nil {
                checkKeys(node, what, allowed: ["$if", "$then", "$else"])
                guard let condition = expression(node["$if"]!, "\(what).$if"),
                    let then = template(node["$then"], "\(what).$then")
                else { return nil }
                let otherwise = node["$else"].flatMap { template($0, "\(what).$else") }
                return .choice(condition: condition, then: then, otherwise: otherwise, line: line)
            }
            if let parts = node["$concat"] {
                checkKeys(node, what, allowed: ["$concat"])
                guard case .sequence(let sequence) = parts else {
                    issue(parts, "\(what).$concat: expected a list of templates")
                    return nil
                }
                return .concat(
                    sequence.enumerated().compactMap { template($0.element, "\(what).$concat[\($0.offset)]") },
                    line: line)
            }
            if let value = node["$value"] {
                checkKeys(node, what, allowed: ["$value"])
                return expression(value, "\(what).$value").map { .value($0, line: line) }
            }
            var fields: [Template.Field] = []
            for (key, keyNode, value) in pairs(node, what) {
                if key.hasPrefix("$") {
                    issue(keyNode, "\(what): unknown template form '\(key)'; expected $each, $if, $concat or $value")
                    continue
                }
                if let t = template(value, "\(what).\(key)") {
                    fields.append(.init(name: key, template: t, line: keyNode.mark?.line ?? line))
                }
            }
            return .object(fields, line: line)
        default:
            issue(node, "\(what): not a template")
            return nil
        }
    }

    // MARK: Device model

    mutating func readDeviceModel(_ text: String) -> DeviceModel? {
        guard let root = compose(text) else { return nil }
        checkKeys(root, "the device-model file", allowed: ["keys", "fixed", "note"])
        var keys: [String: DeviceModel.Variable] = [:]
        var seen: [DeviceModel.Variable: String] = [:]
        for (key, _, body) in pairs(root["keys"], "keys") {
            guard let variable = dmVariable(body, "keys.\(key)", allowValue: false) else { continue }
            if let other = seen[variable] {
                issue(
                    body, "keys.\(key): \(variable.component).\(variable.variable) is already the variable of \(other)")
                continue
            }
            seen[variable] = key
            keys[key] = variable
        }
        var fixed: [DeviceModel.Fixed] = []
        for entry in root["fixed"]?.sequence.map(Array.init) ?? [] {
            guard let variable = dmVariable(entry, "fixed", allowValue: true) else { continue }
            guard let value = entry["value"]?.string else {
                issue(entry, "fixed: every entry needs a value")
                continue
            }
            fixed.append(.init(variable: variable, value: value))
        }
        return DeviceModel(keys: keys, fixed: fixed, file: file)
    }

    mutating func dmVariable(_ node: Node, _ what: String, allowValue: Bool) -> DeviceModel.Variable? {
        checkKeys(
            node, what,
            allowed: allowValue
                ? ["component", "variable", "instance", "value"] : ["component", "variable", "instance"])
        guard let component = node["component"]?.string, let variable = node["variable"]?.string else {
            issue(node, "\(what): needs component and variable")
            return nil
        }
        return .init(component: component, variable: variable, instance: node["instance"]?.string)
    }
}
