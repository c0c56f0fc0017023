import NIOCore
import OCPP
import OCPPRules
import Testing

@testable import OCPPProxy

/// `proxy.yaml` in /etc/ocpp-proxy with this text.
func loadConfiguration(_ yaml: String, environment: [String: String] = [:]) throws(ConfigurationError)
    -> ProxyConfiguration
{
    try ConfigurationLoader(environment: environment).load(
        yaml: yaml, file: "proxy.yaml", baseDirectory: "/etc/ocpp-proxy")
}

/// The rendered issues of an invalid file (none for a valid one).
func configurationIssues(_ yaml: String, environment: [String: String] = [:]) -> [String] {
    do {
        _ = try loadConfiguration(yaml, environment: environment)
        return []
    } catch {
        return error.issues.map(\.description)
    }
}

@Suite("Configuration validation")
struct ConfigurationLoaderTests {
    static let valid = """
        listeners:
          - name: chargers
            host: 127.0.0.1
            port: 8180
            path: /ocpp/
            versions: [ocpp1.6, ocpp2.0.1]
            defaultVersion: ocpp1.6
        upstream:
          url: ws://csms.local:9000/ocpp/
          version: ocpp1.6
          connectTimeout: 1500ms
        rules: ../Rules
        state:
          sqlite: data/state.sqlite
        limits:
          maxFrameBytes: 1024
          callTimeout: 2m
        keepalive:
          pingInterval: 0
          pongTimeout: 3
        """

    private func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigurationError)
        -> ProxyConfiguration
    {
        try loadConfiguration(yaml, environment: environment)
    }

    private func issues(_ yaml: String, environment: [String: String] = [:]) -> [String] {
        configurationIssues(yaml, environment: environment)
    }

    @Test func readsAValidFileWithDefaultsAndRelativePaths() throws {
        let configuration = try load(Self.valid)
        let listener = try #require(configuration.listeners.first)
        #expect(listener.path == "/ocpp")
        #expect(listener.versions == [.v1_6, .v2_0_1])
        #expect(listener.defaultVersion == .v1_6)
        #expect(configuration.upstream.host == "csms.local")
        #expect(configuration.upstream.port == 9000)
        #expect(configuration.upstream.path == "/ocpp")
        #expect(configuration.upstream.connectTimeout == .milliseconds(1500))
        #expect(configuration.rulesDirectory == "/etc/Rules")
        #expect(configuration.stateSQLitePath == "/etc/ocpp-proxy/data/state.sqlite")
        #expect(configuration.limits.maxFrameBytes == 1024)
        #expect(configuration.limits.callTimeout == .seconds(120))
        #expect(configuration.keepalive.pingInterval == .zero)
        #expect(configuration.keepalive.pongTimeout == .seconds(3))
        #expect(configuration.duplicateIdentity == .replace)
        #expect(configuration.admin?.port == 8181)
        #expect(configuration.logging.format == .text)
    }

    @Test func namesTheKeyPathAndLineOfABadPort() {
        let yaml = Self.valid.replacingOccurrences(of: "port: 8180", with: "port: abc")
        #expect(issues(yaml) == [#"listeners[0].port: expected an integer 1-65535, got "abc" (proxy.yaml:4)"#])
    }

    @Test(arguments: ["0", "65536", "-1", "8180.5", "\"8180\""])
    func refusesPortsOutsideTheRange(port: String) {
        let found = issues(Self.valid.replacingOccurrences(of: "port: 8180", with: "port: \(port)"))
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("listeners[0].port: expected an integer 1-65535, got ") == true)
    }

    @Test func reportsEveryProblemOfTheFileAtOnce() {
        let yaml = """
            listeners:
              - name: a
                port: 1
                versions: [ocpp1.7]
                prot: 3
              - name: a
                port: 2
                versions: [ocpp1.6]
                defaultVersion: ocpp2.0.1
            upstream:
              url: http://x/ocpp
              version: ocpp9
            duplicateIdentity: maybe
            keepalive:
              pongTimeout: 0s
            """
        let found = issues(yaml)
        #expect(found.contains { $0.hasPrefix("listeners[0].prot: unknown key") })
        #expect(
            found.contains {
                $0.hasPrefix(#"listeners[0].versions[0]: expected one of ocpp1.6, ocpp2.0.1, ocpp2.1, got "ocpp1.7""#)
            })
        #expect(found.contains { $0.hasPrefix(#"listeners[1].name: duplicate listener name "a""#) })
        #expect(
            found.contains {
                $0.hasPrefix(
                    #"listeners[1].defaultVersion: expected one of the listener's versions (ocpp1.6), got "ocpp2.0.1""#)
            })
        #expect(found.contains { $0.hasPrefix(#"upstream.url: expected a ws:// or wss:// URL, got "http://x/ocpp""#) })
        #expect(
            found.contains {
                $0.hasPrefix(#"upstream.version: expected one of ocpp1.6, ocpp2.0.1, ocpp2.1, got "ocpp9""#)
            })
        #expect(found.contains { $0.hasPrefix(#"duplicateIdentity: expected one of replace, reject, got "maybe""#) })
        #expect(found.contains { $0.hasPrefix(#"keepalive.pongTimeout: expected a positive duration"#) })
        #expect(found.count == 8)
    }

    @Test func requiresListenersAndUpstream() {
        let found = issues("admin:\n  port: 9999\n")
        #expect(found.contains { $0.hasPrefix("listeners: required key is missing") })
        #expect(found.contains { $0.hasPrefix("upstream: required key is missing") })
    }

    @Test func requiresTheUpstreamURLAndVersion() {
        let found = issues("listeners:\n  - {name: a, port: 1, versions: [ocpp1.6]}\nupstream: {}\n")
        #expect(found.contains { $0.hasPrefix("upstream.url: required key is missing") })
        #expect(found.contains { $0.hasPrefix("upstream.version: required key is missing") })
    }

    @Test func refusesAnEmptyFileAndAnEmptyListenerList() {
        #expect(issues("").first?.contains("the configuration file is empty") == true)
        #expect(
            issues("listeners: []\nupstream: {url: ws://a/ocpp, version: ocpp1.6}\n").first?.hasPrefix(
                "listeners: expected at least one listener") == true)
    }

    @Test func takesWssWithTheSystemTrustStoreByDefault() throws {
        let configuration = try load(
            Self.valid.replacingOccurrences(of: "ws://csms.local:9000/ocpp/", with: "wss://csms.local/ocpp"))
        #expect(configuration.upstream.port == 443)
        #expect(configuration.upstream.tls?.ca == nil)
        #expect(configuration.upstream.tls?.insecureSkipVerify == false)
    }

    @Test(arguments: ["5 parsecs", "fast", "-1s", "ms", "1e300s", "1e300", "9223372036854775808ms", "nan", "inf"])
    func refusesBadDurations(text: String) {
        let found = issues(
            Self.valid.replacingOccurrences(of: "connectTimeout: 1500ms", with: "connectTimeout: \(text)"))
        #expect(
            found.first?.hasPrefix("upstream.connectTimeout: expected a positive duration such as 500ms, 5s, 2m or 1h")
                == true)
    }

    @Test func readsMaxPendingCallsWithADefault() throws {
        #expect(try load(Self.valid).limits.maxPendingCalls == 16)
        let configured = try load(
            Self.valid.replacingOccurrences(
                of: "maxFrameBytes: 1024", with: "maxFrameBytes: 1024\n  maxPendingCalls: 3"))
        #expect(configured.limits.maxPendingCalls == 3)
    }

    @Test(arguments: [("0", "0"), ("1025", "1025"), ("-1", "-1"), ("1e300", "1e300"), ("many", "\"many\"")])
    func refusesMaxPendingCallsOutsideTheRange(text: String, shown: String) {
        let found = issues(
            Self.valid.replacingOccurrences(
                of: "maxFrameBytes: 1024", with: "maxFrameBytes: 1024\n  maxPendingCalls: \(text)"))
        #expect(found == ["limits.maxPendingCalls: expected an integer 1-1024, got \(shown) (proxy.yaml:17)"])
    }

    @Test func readsTheAuditSectionWithDefaultsBesideItsDirectory() throws {
        #expect(try load(Self.valid).audit == nil, "no audit: section, no audit log")
        let audit = try #require(
            try load(
                Self.valid + """

                    audit:
                      dir: ../data/audit
                      rotate: { maxBytes: 64MiB }
                      retention: 7d
                      queueBytes: 8MiB
                    """
            ).audit)
        #expect(audit.directory == "/etc/data/audit")
        #expect(audit.signingKey == "/etc/data/audit-signing.key")
        #expect(audit.pseudonymKey == .file("/etc/data/audit-pseudonym.key"))
        #expect(audit.payloads == .redacted && audit.onBackpressure == .refuseNew)
        #expect(audit.rotateMaxBytes == 64 << 20 && audit.rotateMaxAge == .hours(1))
        #expect(audit.retention == .hours(7 * 24))
        #expect(audit.queueRecords == 65536 && audit.queueBytes == 8 << 20)
        #expect(try load(Self.valid + "\naudit: { dir: /a, enabled: false }\n").audit == nil)
    }

    @Test func namesEachBadAuditKey() {
        #expect(
            issues(Self.valid + "\naudit: { payloads: full }\n").first?.hasPrefix(
                "audit.dir: required key is missing") == true)
        #expect(
            issues(Self.valid + "\naudit: { dir: /a, payloads: some }\n").first?.hasPrefix("audit.payloads:") == true)
        #expect(
            issues(Self.valid + "\naudit: { dir: /a, pseudonymKey: short }\n").first?.hasPrefix(
                "audit.pseudonymKey: expected at least 16 characters") == true)
        #expect(
            issues(Self.valid + "\naudit: { dir: /a, rotate: { maxBytes: 1KB } }\n").first?.hasPrefix(
                "audit.rotate.maxBytes: expected a size") == true)
        #expect(
            issues(Self.valid + "\naudit: { dir: /a, queueBytes: 99999999999999999999GiB }\n").first?.hasPrefix(
                "audit.queueBytes: expected a size") == true)
        #expect(
            issues(Self.valid + "\naudit: { dir: /a, onBackpressure: wait }\n").first
                == "audit.onBackpressure: expected one of block, refuse-new, drop-and-count, got \"wait\" (proxy.yaml:21)"
        )
    }

    @Test(arguments: [
        ("256MiB", 256 << 20), ("64KiB", 64 << 10), ("10MB", 10_000_000), ("4096", 4096), ("1 GiB", 1 << 30),
    ])
    func readsByteSizes(text: String, bytes: Int) {
        #expect(ByteSizeText.parse(text) == bytes)
    }

    @Test func refusesByteSizesThatAreNotOrOverflow() {
        for text in ["", "MiB", "-1KiB", "1.5MiB", "99999999999999999999", "9223372036854775807KiB"] {
            #expect(ByteSizeText.parse(text) == nil, "\(text)")
        }
    }

    @Test func refusesFrameLimitsOutsideTheRange() {
        let found = issues(Self.valid.replacingOccurrences(of: "maxFrameBytes: 1024", with: "maxFrameBytes: 12"))
        #expect(found == ["limits.maxFrameBytes: expected an integer 128-16777216, got 12 (proxy.yaml:16)"])
    }

    @Test func requiresTLSForProfiles2And3() {
        let yaml = Self.valid.replacingOccurrences(
            of: "    defaultVersion: ocpp1.6", with: "    defaultVersion: ocpp1.6\n    securityProfile: 2")
        #expect(
            issues(yaml).first?.hasPrefix("listeners[0].tls: required key is missing; security profile 2 needs TLS")
                == true)
    }

    @Test func readsChargersWithHashesAndUpstreamPasswords() throws {
        let hash = try PasswordHash(hashing: "secret").text
        let yaml =
            Self.valid + """

                chargers:
                  - identity: CP001
                    securityProfile: 1
                    passwordHash: "\(hash)"
                    upstream:
                      password: ${UPSTREAM_PW}
                  - identity: CP002
                    password: dev
                """
        let configuration = try load(yaml, environment: ["UPSTREAM_PW": "issued-by-csms"])
        let cp1 = try #require(configuration.chargers[try ChargerIdentity("CP001")])
        #expect(cp1.securityProfile == 1)
        #expect(cp1.upstreamPassword == "issued-by-csms")
        #expect(cp1.credential?.verify(Array("secret".utf8)) == true)
        #expect(cp1.credential?.verify(Array("Secret".utf8)) == false)
        let cp2 = try #require(configuration.chargers[try ChargerIdentity("CP002")])
        #expect(cp2.credential?.verify(Array("dev".utf8)) == true)
    }

    @Test func readsChargerCapabilitiesEVSELayoutsAndModels() throws {
        let yaml =
            Self.valid + """

                chargers:
                  - identity: CP001
                    capabilities: [securityExtension]
                    evses: [[1, 2], [3]]
                  - identity: CP002
                models:
                  - model: DC-150
                    evses: [[1, 2]]
                """
        let configuration = try load(yaml)
        let cp1 = try #require(configuration.chargers[try ChargerIdentity("CP001")])
        #expect(cp1.capabilities == ["securityExtension"])
        #expect(cp1.layout?.evses == [[1, 2], [3]])
        let cp2 = try #require(configuration.chargers[try ChargerIdentity("CP002")])
        #expect(cp2.capabilities == nil && cp2.layout == nil)
        // a charger's own settings, else its model's (by the model its BootNotification named)
        let profile = ChargerProfile(
            identity: "CP002", capabilities: cp2.capabilities, layout: cp2.layout, models: configuration.models)
        #expect(profile.effective(model: "DC-150").layout.evses == [[1, 2]])
        #expect(profile.effective(model: "AC-22").layout == .onePerEVSE)
        #expect(profile.effective(model: nil).capabilities.isEmpty)
    }

    @Test(arguments: [
        ("capabilities: [secureExtension]", "chargers[0].capabilities[0]: unknown capability"),
        ("capabilities: securityExtension", "chargers[0].capabilities: expected a list of capabilities"),
        ("evses: [[1, 2], [2]]", "chargers[0].evses: connector 2 is on two EVSEs"),
        ("evses: [[1], []]", "chargers[0].evses: EVSE 2 has no connector"),
        ("evses: [[0]]", "chargers[0].evses[0][0]: expected an integer 1-999"),
        ("evses: [1, 2]", "chargers[0].evses[0]: expected a list of EVSEs"),
        ("evses: []", "chargers[0].evses: expected a list of EVSEs"),
    ])
    func refusesBadCapabilitiesAndLayoutsNamingTheKey(line: String, message: String) {
        let found = issues(Self.valid + "\nchargers:\n  - identity: CP001\n    \(line)\n")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix(message) == true, "\(found)")
    }

    @Test func refusesAModelListedTwiceAndUnknownModelKeys() {
        let twice = issues(
            Self.valid + "\nmodels:\n  - model: M\n    evses: [[1]]\n  - model: M\n    evses: [[1, 2]]\n")
        #expect(twice.first?.hasPrefix("models[1].model: model M is listed twice") == true, "\(twice)")
        let unknown = issues(Self.valid + "\nmodels:\n  - model: M\n    connectors: 2\n")
        #expect(unknown.first?.hasPrefix("models[0].connectors: unknown key") == true, "\(unknown)")
    }

    @Test func neverEchoesAMalformedPasswordHash() {
        let found = issues(Self.valid + "\nchargers:\n  - identity: CP001\n    passwordHash: hunter2\n")
        #expect(found.count == 1)
        #expect(
            found.first?.hasPrefix("chargers[0].passwordHash: expected a hash from `ocpp-proxy hash-password`") == true)
        #expect(found.first?.contains("hunter2") == false)
    }

    @Test func refusesAllowingUnknownChargersAboveProfile0() {
        let yaml = Self.valid.replacingOccurrences(
            of: "    defaultVersion: ocpp1.6",
            with: "    defaultVersion: ocpp1.6\n    securityProfile: 1\n    unknownChargers: allow")
        #expect(
            issues(yaml).first?.hasPrefix("listeners[0].unknownChargers: allow is only for security profile 0") == true)
    }

    @Test func refusesTwoListenersOnOnePortAndTheAdminOnAListenerPort() {
        let yaml = """
            listeners:
              - {name: a, port: 8180, versions: [ocpp1.6]}
              - {name: b, port: 8180, versions: [ocpp1.6]}
            upstream: {url: ws://a/ocpp, version: ocpp1.6}
            admin: {port: 8180}
            """
        let found = issues(yaml)
        #expect(found.contains { $0.hasPrefix("listeners[1].port: port 8180 is already used by listeners[0]") })
        #expect(found.contains { $0.hasPrefix("admin.port: port 8180 is already used by listeners[0]") })
    }

    @Test func substitutesEnvironmentVariables() throws {
        let yaml = Self.valid.replacingOccurrences(of: "ws://csms.local:9000/ocpp/", with: "${CSMS_URL}")
            .replacingOccurrences(of: "port: 8180", with: "port: ${PORT:-8180}")
        let configuration = try load(yaml, environment: ["CSMS_URL": "ws://other:7000/x"])
        #expect(configuration.upstream.host == "other")
        #expect(configuration.upstream.port == 7000)
        #expect(configuration.listeners[0].port == 8180)
    }

    @Test func namesTheKeyOfAnUnsetEnvironmentVariable() {
        let yaml = Self.valid.replacingOccurrences(of: "ws://csms.local:9000/ocpp/", with: "${CSMS_URL}")
        #expect(issues(yaml) == ["upstream.url: environment variable CSMS_URL is not set (proxy.yaml:9)"])
    }

    @Test func reportsYAMLSyntaxErrorsWithTheLine() {
        let found = issues("listeners: [\n  - a: b\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("YAML syntax error") == true)
        #expect(found.first?.hasSuffix("(proxy.yaml:2)") == true)
    }

    @Test func reportsAFileThatCannotBeRead() {
        do {
            _ = try ConfigurationLoader(environment: [:]).load(path: "/nonexistent/proxy.yaml")
            Issue.record("loading a missing file succeeded")
        } catch {
            #expect(
                error.issues.map(\.description) == [
                    "cannot read configuration file /nonexistent/proxy.yaml: no such file"
                ])
        }
    }

    @Test func disablesTheAdminEndpointOnRequest() throws {
        #expect(try load(Self.valid + "\nadmin:\n  enabled: false\n").admin == nil)
    }
}

/// One configuration error path: a valid file with one line replaced, and the start of the issue it causes.
struct BrokenLine: CustomTestStringConvertible, Sendable {
    var replace: String
    var with: String
    var issue: String
    var testDescription: String { issue }
}

extension ConfigurationLoaderTests {
    static let brokenLines: [BrokenLine] = [
        .init(
            replace: "name: chargers", with: "name: \"\"",
            issue: #"listeners[0].name: expected a non-empty string, got """#),
        .init(replace: "name: chargers", with: "name: [a]", issue: "listeners[0].name: expected a string, got a list"),
        .init(
            replace: "host: 127.0.0.1", with: "host: {a: 1}",
            issue: "listeners[0].host: expected a string, got a mapping"),
        .init(
            replace: "path: /ocpp/", with: "path: ocpp",
            issue: #"listeners[0].path: expected a path starting with "/", got "ocpp""#),
        .init(
            replace: "versions: [ocpp1.6, ocpp2.0.1]", with: "versions: []",
            issue: "listeners[0].versions: expected a non-empty list of versions"),
        .init(
            replace: "versions: [ocpp1.6, ocpp2.0.1]", with: "versions: ocpp1.6",
            issue: "listeners[0].versions: expected a non-empty list of versions"),
        .init(
            replace: "versions: [ocpp1.6, ocpp2.0.1]", with: "versions: [ocpp1.6, ocpp1.6]",
            issue: #"listeners[0].versions[1]: "ocpp1.6" is listed twice"#),
        .init(
            replace: "    versions: [ocpp1.6, ocpp2.0.1]\n", with: "",
            issue: "listeners[0].versions: required key is missing"),
        .init(replace: "    port: 8180\n", with: "", issue: "listeners[0].port: required key is missing"),
        .init(
            replace: "  - name: chargers", with: "  - 17\n  - name: chargers",
            issue: #"listeners[0]: expected a mapping, got 17"#),
        .init(
            replace: "listeners:\n", with: "listeners:\n  a:\n",
            issue: "listeners: expected a list of listeners, got a mapping"),
        .init(
            replace: "url: ws://csms.local:9000/ocpp/", with: "url: ws://csms.local:9000/ocpp?x=1",
            issue: "upstream.url: expected a URL without user, query or fragment"),
        .init(
            replace: "url: ws://csms.local:9000/ocpp/", with: "url: not a url",
            issue: #"upstream.url: expected a ws:// URL such as ws://127.0.0.1:9000/ocpp, got "not a url""#),
        .init(
            replace: "url: ws://csms.local:9000/ocpp/", with: "url: ${UNCLOSED", issue: "upstream.url: unterminated ${"),
        .init(
            replace: "upstream:\n  url: ws://csms.local:9000/ocpp/\n  version: ocpp1.6\n  connectTimeout: 1500ms",
            with: "upstream: 5", issue: "upstream: expected a mapping, got 5"),
        .init(replace: "rules: ../Rules", with: "rules: [a]", issue: "rules: expected a string, got a list"),
        .init(
            replace: "  sqlite: data/state.sqlite", with: "  sqlite: data/state.sqlite\n  postgres: x",
            issue: "state.postgres: unknown key; expected one of sqlite"),
        .init(
            replace: "  callTimeout: 2m", with: "  callTimeout: 2m\n  callTimeout: 3m",
            issue: "key appears twice in one mapping: callTimeout (proxy.yaml:17)"),
        .init(
            replace: "  pingInterval: 0", with: "  pingInterval: soon",
            issue: #"keepalive.pingInterval: expected a duration such as 500ms, 5s, 2m or 1h (0 disables), got "soon""#),
        .init(
            replace: "limits:", with: "logging:\n  level: loud\nlimits:",
            issue: #"logging.level: expected one of trace, debug, info, notice, warning, error, critical, got "loud""#),
        .init(
            replace: "limits:", with: "logging:\n  format: xml\nlimits:",
            issue: #"logging.format: expected one of text, json, got "xml""#),
        .init(
            replace: "limits:", with: "admin:\n  enabled: maybe\nlimits:",
            issue: #"admin.enabled: expected true or false, got "maybe""#),
        .init(
            replace: "limits:", with: "admin:\n  port: 0\nlimits:",
            issue: "admin.port: expected an integer 1-65535, got 0"),
        .init(
            replace: "limits:", with: "shutdown:\n  gracePeriod: 0\nlimits:",
            issue: "shutdown.gracePeriod: expected a positive duration"),
        .init(
            replace: "limits:", with: "listenrs: []\nlimits:",
            issue: "listenrs: unknown key; expected one of listeners, upstream,"),
    ]

    @Test(arguments: brokenLines)
    func reportsEachErrorPathWithItsKeyPath(_ broken: BrokenLine) {
        #expect(Self.valid.contains(broken.replace), "the fixture lacks \(broken.replace)")
        let found = issues(Self.valid.replacingOccurrences(of: broken.replace, with: broken.with))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix(broken.issue) == true, "\(found)")
    }
}

@Suite("Duration text")
struct DurationTextTests {
    @Test func parsesUnitsAndPlainSeconds() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("5s") == .seconds(5))
        #expect(DurationText.parse("2m") == .seconds(120))
        #expect(DurationText.parse("1h") == .seconds(3600))
        #expect(DurationText.parse("1.5") == .milliseconds(1500))
        #expect(DurationText.parse("0") == .zero)
        #expect(DurationText.parse("5 parsecs") == nil)
        #expect(DurationText.parse("s") == nil)
    }
}

@Suite("Configuration of SOAP chargers")
struct SOAPConfigurationTests {
    static func yaml(listener: String, rules: Bool = true, extra: String = "") -> String {
        """
        listeners:
          - name: soap
            port: 8190
            path: /ocpp/soap
        \(listener)
        upstream:
          url: ws://csms.local:9000/ocpp
          version: ocpp2.0.1
        \(rules ? "rules: ../Rules" : "")
        \(extra)
        """
    }

    private func load(_ yaml: String) throws(ConfigurationError) -> ProxyConfiguration {
        try loadConfiguration(yaml)
    }

    private func issues(_ yaml: String) -> [String] { configurationIssues(yaml) }

    @Test func readsASOAPListenerWithItsVersionsAndDefaults() throws {
        let configuration = try load(
            Self.yaml(
                listener: "    transport: soap\n    versions: [ocpp1.5, ocpp1.6]",
                extra: "soap:\n  idleTimeout: 15m\n  endpointCA: ca.pem\n"
                    + "chargers:\n  - identity: LEGACY01\n    soapEndpoint: http://10.1.2.3:8080/ChargePointService"))
        let listener = try #require(configuration.listeners.first)
        #expect(listener.transport == .soap)
        #expect(listener.versions == [.v1_5, .v1_6])
        #expect(listener.ownURL == "http://127.0.0.1:8190/ocpp/soap")
        #expect(configuration.soap.idleTimeout == .minutes(15))
        #expect(configuration.soap.maxRequestBytes == nil)
        #expect(configuration.soap.endpointCA == "/etc/ocpp-proxy/ca.pem")
        let charger = try #require(configuration.chargers[try ChargerIdentity("LEGACY01")])
        #expect(charger.soapEndpoint == "http://10.1.2.3:8080/ChargePointService")
    }

    @Test func aWebSocketListenerRefusesOCPP15AndASOAPListenerOCPP2() {
        let websocket = issues(Self.yaml(listener: "    versions: [ocpp1.5]"))
        #expect(
            websocket.contains {
                $0.hasPrefix(#"listeners[0].versions[0]: expected one of ocpp1.6, ocpp2.0.1, ocpp2.1, got "ocpp1.5""#)
            }, "\(websocket)")
        let soap = issues(Self.yaml(listener: "    transport: soap\n    versions: [ocpp2.0.1]"))
        #expect(
            soap.contains {
                $0.hasPrefix(#"listeners[0].versions[0]: expected one of ocpp1.5, ocpp1.6, got "ocpp2.0.1""#)
            }, "\(soap)")
    }

    @Test func anUpstreamCannotSpeakOCPP15() {
        let found = issues(
            Self.yaml(listener: "    versions: [ocpp1.6]").replacingOccurrences(
                of: "version: ocpp2.0.1", with: "version: ocpp1.5"))
        #expect(
            found.contains {
                $0.hasPrefix(#"upstream.version: expected one of ocpp1.6, ocpp2.0.1, ocpp2.1, got "ocpp1.5""#)
            }, "\(found)")
    }

    @Test func aSOAPListenerNeedsTheRulesDirectory() {
        let found = issues(Self.yaml(listener: "    transport: soap\n    versions: [ocpp1.6]", rules: false))
        #expect(found.contains { $0.hasPrefix("listeners[0].transport: a SOAP listener needs rules:") }, "\(found)")
    }

    @Test func refusesWhatOnlyTheOtherTransportHas() {
        let defaultVersion = issues(
            Self.yaml(listener: "    transport: soap\n    versions: [ocpp1.6]\n    defaultVersion: ocpp1.6"))
        #expect(
            defaultVersion.contains {
                $0.hasPrefix("listeners[0].defaultVersion: a SOAP listener takes each charger's version")
            }, "\(defaultVersion)")
        let publicURL = issues(Self.yaml(listener: "    versions: [ocpp1.6]\n    publicURL: http://proxy.example/ocpp"))
        #expect(
            publicURL.contains { $0.hasPrefix("listeners[0].publicURL: only a SOAP listener has a publicURL") },
            "\(publicURL)")
    }

    @Test func refusesEndpointsThatAreNotHTTPURLs() {
        let found = issues(
            Self.yaml(
                listener: "    transport: soap\n    versions: [ocpp1.6]\n    publicURL: ws://proxy.example/ocpp",
                extra:
                    "chargers:\n  - identity: CP1\n    soapEndpoint: ftp://10.1.2.3/cp\nsoap:\n  maxRequestBytes: 10\n  idleTimeout: 0"
            ))
        #expect(
            found.contains { $0.hasPrefix("listeners[0].publicURL: expected an http:// or https:// URL") }, "\(found)")
        #expect(
            found.contains { $0.hasPrefix("chargers[0].soapEndpoint: expected an http:// or https:// URL") }, "\(found)"
        )
        #expect(found.contains { $0.hasPrefix("soap.maxRequestBytes: expected an integer 1024-67108864") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("soap.idleTimeout:") }, "\(found)")
    }

    @Test func aPublicURLNamesTheProxyInItsRequests() throws {
        let configuration = try load(
            Self.yaml(
                listener:
                    "    transport: soap\n    versions: [ocpp1.6]\n    publicURL: https://proxy.example:443/ocpp/soap"))
        #expect(configuration.listeners.first?.ownURL == "https://proxy.example:443/ocpp/soap")
    }
}
