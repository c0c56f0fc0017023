import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import OCPP
import SQLiteNIO
import Testing

@testable import OCPPProxy

@Suite("Identity patterns of routing.rules")
struct IdentityPatternTests {
    func matches(_ pattern: String, _ identity: String) throws -> Bool {
        try IdentityPattern(pattern).matches(identity)
    }

    @Test func aStarMatchesAnyRunOfCharactersIncludingNone() throws {
        #expect(try matches("ABB-*", "ABB-001"))
        #expect(try matches("ABB-*", "ABB-"))
        #expect(try !matches("ABB-*", "ABB"))
        #expect(try !matches("ABB-*", "XABB-001"))
        #expect(try matches("*-07", "SITE-07"))
        #expect(try matches("*", "anything"))
        #expect(try matches("A*B*C", "AxxBxxC"))
        #expect(try matches("A*B*C", "ABC"))
        #expect(try !matches("A*B*C", "AxxBxx"))
        #expect(try matches("**", "x"))
    }

    @Test func aQuestionMarkMatchesExactlyOneCharacter() throws {
        #expect(try matches("SITE?-*", "SITE7-CP1"))
        #expect(try !matches("SITE?-*", "SITE12-CP1"))
        #expect(try !matches("SITE?-*", "SITE-CP1"))
        #expect(try matches("CP??", "CPé1"))
    }

    @Test func everyOtherCharacterMatchesItselfCaseSensitively() throws {
        #expect(try matches("CP042", "CP042"))
        #expect(try !matches("CP042", "cp042"))
        #expect(try !matches("CP042", "CP0421"))
        #expect(try matches("a.b", "a.b"))
        #expect(try !matches("a.b", "axb"))
    }

    @Test func theStarBacktracksWithoutRecursion() throws {
        let long = String(repeating: "a", count: 48)
        #expect(try !matches("*a*a*a*a*a*a*a*a*b", long))
        #expect(try matches("*a*a*a*a*a*a*a*a*", long))
    }

    @Test func aPatternThatCanMatchNoIdentityIsRefused() {
        #expect(throws: IdentityPattern.Problem.empty) { try IdentityPattern("") }
        #expect(throws: IdentityPattern.Problem.forbidden(":")) { try IdentityPattern("ABB:*") }
        #expect(throws: IdentityPattern.Problem.forbidden("/")) { try IdentityPattern("site/*") }
        #expect(throws: IdentityPattern.Problem.forbidden("\u{1}")) { try IdentityPattern("A\u{1}*") }
        #expect(throws: IdentityPattern.Problem.tooLong(49)) { try IdentityPattern(String(repeating: "?", count: 49)) }
        #expect((try? IdentityPattern(String(repeating: "?", count: 48) + "*")) != nil)
    }
}

@Suite("Routes: override, first matching rule, default")
struct RouteTableTests {
    func table(overrides: [String: String] = [:]) throws -> RouteTable {
        var chargers: [ChargerIdentity: ChargerRegistration] = [:]
        for (identity, upstream) in overrides {
            let id = try ChargerIdentity(identity)
            var registration = ChargerRegistration(identity: id, securityProfile: 0)
            registration.upstream = upstream
            chargers[id] = registration
        }
        let routing = RoutingConfiguration(
            defaultUpstream: "old",
            rules: [
                RouteRule(match: try IdentityPattern("ABB-*"), upstream: "new"),
                RouteRule(match: try IdentityPattern("ABB-9*"), upstream: "third"),
                RouteRule(match: try IdentityPattern("SITE?-*"), upstream: "third"),
            ])
        return RouteTable(routing, chargers: chargers)
    }

    @Test func aChargerNoRuleMatchesGoesToTheDefault() throws {
        #expect(try table().route(for: ChargerIdentity("CP001")) == Route(upstream: "old", reason: .default))
    }

    @Test func theFirstMatchingRuleWins() throws {
        #expect(
            try table().route(for: ChargerIdentity("ABB-901"))
                == Route(upstream: "new", reason: .rule(index: 0, match: "ABB-*")))
        #expect(
            try table().route(for: ChargerIdentity("SITE7-CP1"))
                == Route(upstream: "third", reason: .rule(index: 2, match: "SITE?-*")))
    }

    @Test func aChargersOwnUpstreamOverridesEveryRule() throws {
        let routes = try table(overrides: ["ABB-001": "old", "CP042": "new"])
        #expect(try routes.route(for: ChargerIdentity("ABB-001")) == Route(upstream: "old", reason: .override))
        #expect(try routes.route(for: ChargerIdentity("CP042")) == Route(upstream: "new", reason: .override))
        #expect(try routes.route(for: ChargerIdentity("ABB-002")).upstream == "new")
    }

    @Test func aChargerListedWithoutAnUpstreamFollowsTheRules() throws {
        let id = try ChargerIdentity("ABB-777")
        let routes = RouteTable(
            RoutingConfiguration(
                defaultUpstream: "old", rules: [RouteRule(match: try IdentityPattern("ABB-*"), upstream: "new")]),
            chargers: [id: ChargerRegistration(identity: id, securityProfile: 0)])
        #expect(routes.route(for: id) == Route(upstream: "new", reason: .rule(index: 0, match: "ABB-*")))
    }
}

@Suite("Configuration of named upstreams and routes")
struct RoutingConfigurationTests {
    static let listeners = """
        listeners:
          - name: chargers
            host: 127.0.0.1
            port: 8180
            path: /ocpp
            versions: [ocpp1.6, ocpp2.0.1]
        """

    static let two = """
        \(listeners)
        upstreams:
          - name: old
            url: ws://legacy.local:9000/ocpp
            version: ocpp1.6
          - name: new
            url: wss://new.local/ocpp
            version: ocpp2.0.1
            connectTimeout: 8s
        """

    func load(_ yaml: String) throws(ConfigurationError) -> ProxyConfiguration { try loadConfiguration(yaml) }

    func issues(_ yaml: String) -> [String] { configurationIssues(yaml) }

    @Test func oneUpstreamIsTheDefaultNamedDefault() throws {
        let configuration = try load(
            """
            \(Self.listeners)
            upstream:
              url: ws://csms.local:9000/ocpp
              version: ocpp1.6
            """)
        #expect(configuration.upstreams.map(\.name) == ["default"])
        #expect(configuration.routing.defaultUpstream == "default")
        #expect(configuration.upstream.key == "upstream")
        #expect(
            try configuration.routes.route(for: ChargerIdentity("X")) == Route(upstream: "default", reason: .default))
    }

    @Test func namedUpstreamsWithRulesAndOverridesAreRead() throws {
        let configuration = try load(
            """
            \(Self.two)
            routing:
              default: old
              rules:
                - { match: "ABB-*", upstream: new }
            chargers:
              - identity: CP042
                upstream: new
              - identity: CP043
                upstream: { name: new, password: pw-new }
              - identity: CP044
                upstream: { password: pw-routed }
                upstreamPasswords: { new: pw-44-new }
            """)
        #expect(configuration.upstreams.map(\.name) == ["old", "new"])
        #expect(configuration.upstreams[1].key == "upstreams[1]")
        #expect(configuration.upstreams[1].tls != nil)
        #expect(configuration.upstream.name == "old")
        #expect(configuration.routing.rules.map(\.match.text) == ["ABB-*"])
        let cp43 = try #require(configuration.chargers[ChargerIdentity("CP043")])
        #expect(cp43.upstream == "new")
        #expect(cp43.upstreamPassword(for: "new", routedTo: "new") == "pw-new")
        let cp44 = try #require(configuration.chargers[ChargerIdentity("CP044")])
        #expect(cp44.upstream == nil)
        #expect(cp44.upstreamPassword(for: "old", routedTo: "old") == "pw-routed")
        #expect(cp44.upstreamPassword(for: "new", routedTo: "old") == "pw-44-new")
        // The slowest upstream sets the default handshake timeout.
        #expect(configuration.limits.handshakeTimeout == .seconds(13))
    }

    @Test(arguments: [
        ("upstream:\n  url: ws://a/ocpp\n  version: ocpp1.6", "upstreams: give either upstream"),
        ("routing: { default: nowhere }", "routing.default: unknown upstream \"nowhere\"; expected one of old, new"),
        (
            "routing: { default: old, rules: [{ match: \"ABB-*\", upstream: gone }] }",
            "routing.rules[0].upstream: unknown upstream \"gone\""
        ),
        (
            "routing: { default: old, rules: [{ match: \"ABB:*\", upstream: new }] }",
            "routing.rules[0].match: the pattern contains ':'"
        ),
        ("routing: { default: old, rules: [{ match: \"\", upstream: new }] }", "routing.rules[0].match:"),
        ("routing: { default: old, rules: [{ upstream: new }] }", "routing.rules[0].match: required key is missing"),
        (
            "routing: { default: old }\nchargers:\n  - { identity: CP1, upstream: gone }",
            "chargers[0].upstream: unknown upstream \"gone\""
        ),
        (
            "routing: { default: old }\nchargers:\n  - { identity: CP1, upstream: { name: gone } }",
            "chargers[0].upstream.name: unknown upstream \"gone\""
        ),
        (
            "routing: { default: old }\nchargers:\n  - { identity: CP1, upstreamPasswords: { gone: x } }",
            "chargers[0].upstreamPasswords.gone: unknown upstream \"gone\""
        ),
        ("routing: { rules: [] }", "routing.default: required with several upstreams"),
        ("", "routing.default: required with several upstreams"),
    ])
    func aBadRouteIsOneLineNamingTheKey(extra: String, expected: String) {
        let found = issues("\(Self.two)\n\(extra)")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.contains(expected) == true, "\(found)")
        #expect(found.first?.contains("(proxy.yaml:") == true || expected.contains("required with"), "\(found)")
    }

    @Test func anUnknownUpstreamInAChargersFileNamesThatFileAndLine() throws {
        let directory = NSTemporaryDirectory() + "ocpp-proxy-routes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "- identity: CP1\n  upstream: new\n- identity: CP2\n  upstream: gone\n".write(
            toFile: directory + "/chargers.yaml", atomically: true, encoding: .utf8)
        let yaml = "\(Self.two)\nrouting: { default: old }\nchargers: chargers.yaml\n"
        do {
            _ = try ConfigurationLoader(environment: [:]).load(
                yaml: yaml, file: directory + "/proxy.yaml", baseDirectory: directory)
            Issue.record("an unknown upstream in the chargers file was accepted")
        } catch {
            #expect(
                error.issues.map(\.description) == [
                    "chargers[1].upstream: unknown upstream \"gone\"; expected one of old, new (\(directory)/chargers.yaml:4)"
                ])
        }
    }

    @Test func upstreamNamesAreUniqueAndPlain() {
        let duplicate = issues(
            """
            \(Self.listeners)
            upstreams:
              - { name: a, url: ws://a/ocpp, version: ocpp1.6 }
              - { name: a, url: ws://b/ocpp, version: ocpp1.6 }
            """)
        #expect(duplicate == ["upstreams[1].name: upstream \"a\" is listed twice (proxy.yaml:9)"])
        let bad = issues(
            """
            \(Self.listeners)
            upstreams:
              - { name: "new csms", url: ws://a/ocpp, version: ocpp1.6 }
            """)
        #expect(bad.count == 1)
        #expect(bad.first?.hasPrefix("upstreams[0].name: expected a name of letters, digits, _ and -") == true)
        #expect(issues("\(Self.listeners)\nupstreams: []").first?.hasPrefix("upstreams: expected a list") == true)
    }

    @Test func anUpstreamsErrorNamesItsEntry() {
        let found = issues(
            """
            \(Self.listeners)
            upstreams:
              - { name: a, url: http://a/ocpp, version: ocpp1.6 }
            """)
        #expect(found == ["upstreams[0].url: expected a ws:// or wss:// URL, got \"http://a/ocpp\" (proxy.yaml:8)"])
    }
}

@Suite("Upstream credentials per upstream")
struct UpstreamCredentialsPerUpstreamTests {
    @Test func aCSMSSetPasswordBelongsToTheUpstreamThatSetIt() async throws {
        let loop = EmbeddedEventLoop()
        let identity = try ChargerIdentity("CP001")
        var registration = ChargerRegistration(
            identity: identity, securityProfile: 0, credential: nil, upstreamPassword: "configured")
        registration.upstreamPasswords = ["new": "configured-new"]
        let credentials = UpstreamCredentials(
            configured: [identity: registration], persisted: [:], store: MemoryStateStore(eventLoop: loop),
            route: { _ in "old" })
        #expect(credentials.password(for: identity, upstream: "old") == "configured")
        #expect(credentials.password(for: identity, upstream: "new") == "configured-new")
        #expect(credentials.password(for: identity, upstream: "third") == nil)
        let stored = credentials.update("set-by-new", for: identity, upstream: "new")
        loop.run()
        try stored.wait()
        #expect(credentials.password(for: identity, upstream: "new") == "set-by-new")
        #expect(credentials.password(for: identity, upstream: "old") == "configured")
    }

    @Test func aStoreFromBeforeNamedUpstreamsKeepsItsPasswordsAndQueueAsTheDefaultUpstreams() async throws {
        let path = NSTemporaryDirectory() + "ocpp-proxy-state-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // The table as the proxy wrote it before upstreams had names.
        let old = try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: .singleton, logger: Logger(label: "test"), on: loop)
        _ = try await old.query(
            """
            CREATE TABLE upstream_credentials (
                identity TEXT PRIMARY KEY NOT NULL, password TEXT NOT NULL, updated_at TEXT NOT NULL)
            """, [])
        _ = try await old.query(
            "INSERT INTO upstream_credentials VALUES ('CP001', 'kept', '2026-01-01T00:00:00Z')", [])
        _ = try await old.query(
            """
            CREATE TABLE outage_queue (
                identity TEXT NOT NULL, sequence INTEGER NOT NULL, frame TEXT NOT NULL,
                PRIMARY KEY (identity, sequence))
            """, [])
        _ = try await old.query("INSERT INTO outage_queue VALUES ('CP001', 1, '[2,\"q1\",\"StopTransaction\",{}]')", [])
        try await old.close()

        let store = try await SQLiteStateStore.open(
            path: path, eventLoop: loop, logger: Logger(label: "test"), defaultUpstream: "old")
        #expect(
            try await store.upstreamPasswords().get() == [
                UpstreamCredentialKey(upstream: "old", identity: "CP001"): "kept"
            ])
        // What the one CSMS was owed is the default upstream's, and no other upstream's.
        let cp001 = try ChargerIdentity("CP001")
        #expect(
            try await store.queuedMessages(for: cp001, upstream: "old").get() == [
                QueuedMessage(sequence: 1, text: #"[2,"q1","StopTransaction",{}]"#)
            ])
        #expect(try await store.queuedMessages(for: cp001, upstream: "new").get() == [])
        try await store.setUpstreamPassword("other", for: ChargerIdentity("CP001"), upstream: "new").get()
        try await store.close().get()

        // Opened again (migrated already): nothing moves, both upstreams' passwords are there.
        let reopened = try await SQLiteStateStore.open(
            path: path, eventLoop: loop, logger: Logger(label: "test"), defaultUpstream: "new")
        #expect(
            try await reopened.upstreamPasswords().get() == [
                UpstreamCredentialKey(upstream: "old", identity: "CP001"): "kept",
                UpstreamCredentialKey(upstream: "new", identity: "CP001"): "other",
            ])
        try await reopened.close().get()
    }
}
