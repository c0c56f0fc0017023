import ArgumentParser
import Foundation
import Logging
import OCPPProxy
import OCPPRules
import ServiceLifecycle

@main
struct OCPPProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocpp-proxy",
        abstract: "An OCPP edge proxy between EV chargers and a CSMS.",
        subcommands: [
            Serve.self, CheckConfig.self, HashPassword.self, RulesCommand.self, Translate.self, AuditCommand.self,
            ShadowCommand.self,
        ])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The YAML configuration file.")
    var config: String = "Config/proxy.yaml"

    /// Loads the configuration or exits with status 2 after printing every problem, one per line.
    func load() throws -> ProxyConfiguration {
        do {
            return try ConfigurationLoader().load(path: config)
        } catch {
            for issue in error.issues {
                FileHandle.standardError.write(Data("error: \(issue)\n".utf8))
            }
            throw ExitCode(2)
        }
    }

    /// Loads the configured rules directory, or exits with status 2 after printing every problem as file:line.
    /// Then the checks that need both (tolerance profiles), the same for `serve` and `check-config`.
    func loadRules(_ configuration: ProxyConfiguration) throws -> RuleLibrary? {
        let rules = try configuration.rulesDirectory.map { try loadRuleDirectory($0, failingWith: 2, label: "rules: ") }
        let problems = ConfigurationChecks.problems(configuration, rules: rules)
        for problem in problems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
        if !problems.isEmpty { throw ExitCode(2) }
        return rules
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy.")

    @OptionGroup var options: ConfigOption

    @Option(
        name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (overrides logging.level).")
    var logLevel: String?

    @Option(name: .long, help: "Log format: text or json (overrides logging.format).")
    var logFormat: String?

    func validate() throws {
        if let logLevel, LogLevelName.parse(logLevel) == nil {
            throw ValidationError("--log-level: expected one of \(LogLevelName.all), got \"\(logLevel)\"")
        }
        if let logFormat, LogFormat(rawValue: logFormat) == nil {
            throw ValidationError("--log-format: expected text or json, got \"\(logFormat)\"")
        }
    }

    func run() async throws {
        let configuration = try options.load()
        let rules = try options.loadRules(configuration)
        let level =
            Logger.Level(rawValue: LogLevelName.parse(logLevel ?? configuration.logging.level) ?? "info") ?? .info
        let format = logFormat.flatMap(LogFormat.init(rawValue:)) ?? configuration.logging.format
        LoggingSystem.bootstrap { label in
            var handler: LogHandler =
                format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ocpp-proxy")
        let server = ProxyServer(
            configuration: configuration, rules: rules, logger: logger, configurationPath: options.config)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as StartupError {
            logger.critical("\(error)")
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file and exit (status 2 when invalid).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        _ = try options.loadRules(configuration)
        print("configuration OK")
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password",
        abstract: "Read a charger password from standard input and print its hash for chargers[].passwordHash.")

    @Option(name: .long, help: "PBKDF2-SHA256 rounds (at least \(PasswordHash.defaultRounds)).")
    var iterations: Int = PasswordHash.defaultRounds

    func validate() throws {
        if iterations < PasswordHash.defaultRounds {
            throw ValidationError("--iterations: expected at least \(PasswordHash.defaultRounds), got \(iterations)")
        }
    }

    func run() throws {
        // One line from stdin, so the password never appears in the process list or shell history.
        guard var password = readLine(strippingNewline: true) else {
            FileHandle.standardError.write(Data("error: expected the password on standard input\n".utf8))
            throw ExitCode(2)
        }
        if password.hasSuffix("\r") { password.removeLast() }
        guard !password.isEmpty else {
            FileHandle.standardError.write(Data("error: the password is empty\n".utf8))
            throw ExitCode(2)
        }
        print(try PasswordHash(hashing: password, rounds: iterations).text)
    }
}
