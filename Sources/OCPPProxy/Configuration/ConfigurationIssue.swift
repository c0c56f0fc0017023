/// One problem found in a configuration file, reported as `key.path: what was expected, got what (file:line)`.
public struct ConfigurationIssue: Error, Equatable, Sendable, CustomStringConvertible {
    public var keyPath: String
    public var message: String
    public var file: String?
    public var line: Int?

    public init(keyPath: String, message: String, file: String? = nil, line: Int? = nil) {
        self.keyPath = keyPath
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = keyPath.isEmpty ? message : "\(keyPath): \(message)"
        if let file, let line {
            text += " (\(file):\(line))"
        } else if let file {
            text += " (\(file))"
        }
        return text
    }
}

/// Every problem of one configuration file; thrown once, after the whole file was read.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigurationIssue]

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
