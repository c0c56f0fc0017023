import Foundation
import OCPPRules

/// Reads a rules directory (its `*.yaml` files and `definitions/*.yaml`) and loads it as a ``RuleLibrary``.
public enum RuleDirectory {
    public static func load(_ path: String) throws(RuleErrors) -> RuleLibrary {
        try RuleLibrary.load(read(path))
    }

    static func read(_ path: String) throws(RuleErrors) -> RuleSources {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RuleErrors(issues: [RuleIssue(file: path, line: nil, message: "not a directory")])
        }
        var files: [String: String] = [:]
        var issues: [RuleIssue] = []
        for folder in RuleSources.folders {
            let names = (try? manager.contentsOfDirectory(atPath: path + "/" + folder)) ?? []
            for name in names where name.hasSuffix(".yaml") {
                let relative = folder + name
                do {
                    files[relative] = try String(contentsOfFile: path + "/" + relative, encoding: .utf8)
                } catch {
                    issues.append(RuleIssue(file: path + "/" + relative, line: nil, message: "cannot read the file"))
                }
            }
        }
        if !issues.isEmpty { throw RuleErrors(issues: issues) }
        return RuleSources(files: files, directory: path)
    }
}
