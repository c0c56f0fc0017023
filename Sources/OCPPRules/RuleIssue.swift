/// One problem in a rule or definition file, reported as `file:line: message`.
public struct RuleIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// Every problem found in a rule directory.
public struct RuleErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [RuleIssue]
    public init(issues: [RuleIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
