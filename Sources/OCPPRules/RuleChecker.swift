import OCPP

/// Checks a rule set against the message definitions of both versions: every action mapped once, every
/// function known, every field a target knows, every path a source has, every enum map total.
struct RuleChecker {
    let ruleSet: RuleSet
    var issues: [RuleIssue] = []

    init(ruleSet: RuleSet) { self.ruleSet = ruleSet }

    /// What paths can read while one template is evaluated.
    struct Context {
        var payload: Shape?
        var element: Shape?
        var call: Shape?
        var sent: Shape?
    }

    mutating func issue(_ line: Int?, _ message: String) {
        let new = RuleIssue(file: ruleSet.file, line: line, message: message)
        if issues.contains(new) { return }
        issues.append(RuleIssue(file: ruleSet.file, line: line, message: message))
    }

    mutating func check() {
        for side in [Side.charger, .csms] {
            let definitions = ruleSet.definitions(of: side)
            let rules = ruleSet.rules(sentBy: side)
            for action in definitions.actions(sentBy: side) where rules[action] == nil {
                issue(
                    ruleSet.sectionLines[side] ?? 1,
                    "\(definitions.version) \(action) sent by the \(side == .charger ? "charger" : "CSMS") has no rule under '\(side == .charger ? "charger" : "csms")'"
                )
            }
            for (action, rule) in rules.sorted(by: { $0.key < $1.key }) {
                guard let message = definitions.messages[action], message.sentBy.includes(side) else {
                    issue(
                        rule.line,
                        "\(action) is not a CALL the \(side == .charger ? "charger" : "CSMS") sends in \(definitions.version)"
                    )
                    continue
                }
                for variant in rule.variants {
                    check(
                        variant, action: action, origin: side, request: message.request, response: message.response,
                        element: nil)
                }
            }
        }
        for (name, map) in ruleSet.enums where map.values.isEmpty && map.fallback == nil {
            issue(map.line, "enums.\(name) is empty")
        }
    }

    mutating func check(
        _ variant: RuleVariant, action: String, origin: Side, request: Shape, response: Shape?, element: Shape?
    ) {
        let target = origin.other
        let base = Context(payload: request, element: element, call: request, sent: nil)
        if let condition = variant.condition { check(condition, base, line: variant.conditionLine) }
        for binding in variant.bindings { check(binding.expression, base, line: binding.line) }
        if let warning = variant.warning { check(warning.expression, base, line: warning.line) }
        for drop in variant.dropped {
            // A dropped field's path goes through lists without naming the element: `list.field`.
            var shape: Shape? = request
            for name in drop.field.split(separator: ".") {
                if case .array(let element, _, _)? = shape { shape = element }
                shape = shape?.shape(at: [.field(String(name))])
            }
            if shape == nil {
                issue(
                    drop.line, "\(action).drop: \(ruleSet.version(of: origin)) \(action) has no field '\(drop.field)'")
            }
        }
        switch variant.kind {
        case .answer(let template):
            check(template, base, target: response, what: "\(action).answer")
        case .forward(let to, let requestTemplate, let result):
            guard let message = ruleSet.definitions(of: target).messages[to], message.sentBy.includes(origin) else {
                issue(
                    variant.line,
                    "\(action): \(to) is not a CALL the \(origin == .charger ? "charging station" : "CSMS") sends in \(ruleSet.version(of: target))"
                )
                return
            }
            check(requestTemplate, base, target: message.request, what: "\(action) → \(to).request")
            let answer = Context(payload: message.response, element: element, call: request, sent: message.request)
            for binding in variant.resultBindings { check(binding.expression, answer, line: binding.line) }
            check(result, answer, target: element == nil ? response : nil, what: "\(action) ← \(to).result")
        case .fanout(let list, let item, let result):
            check(list, base, line: variant.line)
            var itemShape: Shape?
            if case .path(.payload, let steps) = list, case .array(let e, _, _)? = request.shape(at: steps) {
                itemShape = e
            }
            for itemVariant in item {
                if case .fanout = itemVariant.kind {
                    issue(itemVariant.line, "\(action): an item rule cannot fan out again")
                }
                if !itemVariant.followUps.isEmpty {
                    issue(itemVariant.line, "\(action): 'then' belongs to the whole rule, not an item")
                }
                check(
                    itemVariant, action: action, origin: origin, request: request, response: nil,
                    element: itemShape ?? .any)
            }
            check(result, base, target: response, what: "\(action).result")
        }
        for step in variant.followUps {
            let definitions = ruleSet.definitions(of: step.side)
            guard let message = definitions.messages[step.action], message.sentBy.includes(step.side.other) else {
                issue(
                    step.line,
                    "\(action).then: \(step.action) is not a CALL the proxy can send to the \(step.side) in \(definitions.version)"
                )
                continue
            }
            if let condition = step.condition { check(condition, base, line: step.line) }
            // Earlier steps' answers are named values whose shape the checker does not follow.
            check(step.request, base, target: message.request, what: "\(action).then.\(step.action)")
        }
    }

    // MARK: Templates

    mutating func check(_ template: Template, _ context: Context, target: Shape?, what: String) {
        switch template {
        case .value(let expression, let line):
            check(expression, context, line: line)
            checkEnumOutput(expression, target: target, line: line, what: what)
        case .object(let fields, let line):
            var objectShape: ObjectShape?
            switch target {
            case .object(let o)?: objectShape = o
            case nil, .any?: objectShape = nil
            default:
                issue(line, "\(what): the target is not an object here")
            }
            for field in fields {
                var child: Shape?
                if let objectShape {
                    if let known = objectShape.field(field.name) {
                        child = known.shape
                    } else if !objectShape.open {
                        issue(field.line, "\(what): unknown field '\(field.name)' (not in the target's definition)")
                    }
                }
                check(field.template, context, target: child, what: "\(what).\(field.name)")
            }
        case .array(let elements, let line):
            var elementShape: Shape?
            switch target {
            case .array(let e, _, _)?: elementShape = e
            case nil, .any?: elementShape = nil
            default: issue(line, "\(what): the target is not an array here")
            }
            for element in elements { check(element, context, target: elementShape, what: what + "[]") }
        case .each(let list, let map, let filter, _, let line):
            check(list, context, line: line)
            var inner = context
            inner.element = nil
            if let listShape = shape(of: list, context), case .array(let e, _, _) = listShape { inner.element = e }
            if let filter { check(filter, inner, line: line) }
            var elementTarget: Shape?
            switch target {
            case .array(let e, _, _)?: elementTarget = e
            case nil, .any?: elementTarget = nil
            default: issue(line, "\(what): $each makes a list, but the target is not an array here")
            }
            check(map, inner, target: elementTarget, what: what + "[]")
        case .concat(let parts, let line):
            switch target {
            case .array?, nil, .any?: break
            default: issue(line, "\(what): $concat makes a list, but the target is not an array here")
            }
            for part in parts {
                // A part is a list of the target's elements or one element.
                if case .array = part {
                    check(part, context, target: target, what: what)
                } else if case .each = part {
                    check(part, context, target: target, what: what)
                } else if case .array(let e, _, _)? = target {
                    check(part, context, target: e, what: what + "[]")
                } else {
                    check(part, context, target: nil, what: what)
                }
            }
        case .choice(let condition, let then, let otherwise, let line):
            check(condition, context, line: line)
            check(then, context, target: target, what: what)
            if let otherwise { check(otherwise, context, target: target, what: what) }
        }
    }

    /// The definition's shape of a path expression, when the checker can tell.
    func shape(of expression: Expression, _ context: Context) -> Shape? {
        // flatten(list, 'field'): the list in the field of list's elements
        if case .call("flatten", let arguments) = expression, arguments.count == 2,
            case .constant(.string(let field)) = arguments[1],
            case .array(let element, _, _)? = shape(of: arguments[0], context)
        {
            return element.shape(at: [.field(field)])
        }
        guard case .path(let root, let steps) = expression else { return nil }
        switch root {
        case .payload: return context.payload?.shape(at: steps)
        case .element: return context.element?.shape(at: steps)
        case .variable("call"): return context.call?.shape(at: steps)
        case .variable("sent"): return context.sent?.shape(at: steps)
        case .variable: return nil
        }
    }

    // MARK: Expressions

    mutating func check(_ expression: Expression, _ context: Context, line: Int) {
        expression.visit { node in
            switch node {
            case .path(let root, let steps):
                let base: Shape?
                let name: String
                switch root {
                case .payload: (base, name) = (context.payload, "$")
                case .element: (base, name) = (context.element, "@")
                case .variable("call"): (base, name) = (context.call, "%call")
                case .variable("sent"): (base, name) = (context.sent, "%sent")
                case .variable: return
                }
                if let base, base.shape(at: steps) == nil {
                    var path = steps.map { step -> String in
                        switch step {
                        case .field(let f): return ".\(f)"
                        case .index(let i): return "[\(i)]"
                        }
                    }.joined()
                    // `$status`, `@value`, but `%call.idTag`
                    if root == .payload || root == .element, path.hasPrefix(".") { path.removeFirst() }
                    issue(line, "unknown field \(name)\(path) (not in the source's definition)")
                }
            case .call(let name, let arguments):
                guard let function = name.known else {
                    issue(line, "unknown function \(name)()")
                    return
                }
                if let arity = function.arity, arity != arguments.count {
                    issue(line, "\(name)() takes \(arity) argument\(arity == 1 ? "" : "s"), not \(arguments.count)")
                }
                if name == "enum", arguments.count == 2 {
                    checkEnumInput(arguments, context, line: line)
                }
            default:
                break
            }
        }
    }

    /// An enum map must cover every value its input can take, unless it has a `_` fallback.
    mutating func checkEnumInput(_ arguments: [Expression], _ context: Context, line: Int) {
        guard case .constant(.string(let mapName)) = arguments[0] else {
            issue(line, "enum(): the first argument names an enum map")
            return
        }
        guard let map = ruleSet.enums[mapName] else {
            issue(line, "enum(): no enum map named \(mapName) under 'enums'")
            return
        }
        guard map.fallback == nil, let values = shape(of: arguments[1], context)?.enumValues else { return }
        let missing = values.filter { map.values[$0] == nil }
        if !missing.isEmpty {
            issue(
                map.line,
                "enums.\(mapName) is not total: no entry for \(missing.joined(separator: ", ")) (add them or a '_' fallback)"
            )
        }
    }

    /// A constant or enum map written into an enum field must produce values of that field's enum.
    mutating func checkEnumOutput(_ expression: Expression, target: Shape?, line: Int, what: String) {
        guard let allowed = target?.enumValues else { return }
        switch expression {
        case .constant(.string(let value)) where !allowed.contains(value):
            issue(line, "\(what): '\(value)' is not one of the target's values (\(allowed.joined(separator: ", ")))")
        case .call("enum", let arguments):
            guard arguments.count == 2, case .constant(.string(let mapName)) = arguments[0],
                let map = ruleSet.enums[mapName]
            else { return }
            let produced = Set(map.values.values).union(map.fallback.map { [$0] } ?? [])
            for value in produced.sorted() where !allowed.contains(value) {
                issue(map.line, "enums.\(mapName) produces '\(value)', which \(what) does not allow")
            }
        default:
            break
        }
    }
}
