// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ocpp-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ocpp-proxy", targets: ["ocpp-proxy"]),
        .library(name: "OCPP", targets: ["OCPP"]),
        .library(name: "OCPPProxy", targets: ["OCPPProxy"]),
        .library(name: "OCPPAudit", targets: ["OCPPAudit"]),
        // Benchmark tooling (Benchmarks/, BENCHMARKS.md): a sink CSMS and a load generator.
        .executable(name: "ocpp-bench", targets: ["ocpp-bench"]),
        // Translations per second on one core (BENCHMARKS.md).
        .executable(name: "ocpp-rules-bench", targets: ["ocpp-rules-bench"]),
        // Audit records per second the writer sustains on one core (BENCHMARKS.md).
        .executable(name: "ocpp-audit-bench", targets: ["ocpp-audit-bench"]),
        // libFuzzer targets and their corpus replayer (Tests/Fuzz/run_libfuzzer.sh).
        .executable(name: "ocpp-fuzz", targets: ["ocpp-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Protocol vocabulary: versions, RPC frames, error codes, identities. Pure: no NIO.
        .target(name: "OCPP"),
        // Rule model, loader, checker and engine for translating between versions. Pure: no NIO, no files.
        .target(
            name: "OCPPRules",
            dependencies: [
                "OCPP", .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // OCPP-S: SOAP envelopes ⇄ OCPP payloads, a hardened XML reader and an escaping writer. Pure: no NIO, no files.
        // libxml2 (Debian: libxml2-dev), the parser under FoundationXML, driven directly by OCPPSOAP's XMLReader.
        .systemLibrary(
            name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .target(
            name: "OCPPSOAP",
            dependencies: ["OCPP", "OCPPRules", "CLibXML2", .product(name: "Yams", package: "Yams")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Audit log (issue 14): hash-chained JSON Lines records, RFC 6962 Merkle checkpoints signed with Ed25519,
        // segment files, verification, redaction. Plain POSIX file I/O: no NIO.
        .target(
            name: "OCPPAudit",
            dependencies: ["OCPP", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // RFC 6455 framing of the proxy's WebSocket relay: frame headers read and written, masking. Pure: no NIO.
        .target(name: "OCPPWebSocket", swiftSettings: [.swiftLanguageMode(.v6)]),
        // The running proxy: listeners, admission, sessions, upstream links, admin, configuration.
        .target(
            name: "OCPPProxy",
            dependencies: [
                "OCPPSOAP",
                "OCPPWebSocket",
                "OCPP",
                "OCPPRules",
                "OCPPAudit",
                "OCPPAuditRedaction",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Audit log payload redaction (issue 14) and reading the log: query, export, segment index. Pure: no NIO.
        .target(
            name: "OCPPAuditRedaction",
            dependencies: ["OCPP", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "ocpp-proxy",
            dependencies: [
                "OCPPProxy",
                "OCPPAudit",
                "OCPPAuditRedaction",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Benchmarks: `ocpp-bench sink` (a canned CSMS) and `ocpp-bench load` (chargers). Independent of the
        // proxy's modules on purpose, so the load side never shares code paths with what it measures; the one
        // exception is OCPPSOAP's hardened XML reader, which the SOAP chargers read their answers with.
        .executableTarget(
            name: "ocpp-bench",
            dependencies: [
                "OCPPSOAP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(name: "ocpp-rules-bench", dependencies: ["OCPP", "OCPPRules"]),
        // Records per second the audit log's writer turns into lines on disk, on one core (BENCHMARKS.md).
        .executableTarget(
            name: "ocpp-audit-bench", dependencies: ["OCPPProxy"], swiftSettings: [.swiftLanguageMode(.v6)]),
        // Fuzz targets: one input in, a trap only when the code under test traps or two readers disagree.
        .target(name: "OCPPFuzzTargets", dependencies: ["OCPP", "OCPPRules", "OCPPSOAP", "OCPPWebSocket"]),
        .executableTarget(name: "ocpp-fuzz", dependencies: ["OCPPFuzzTargets"]),
        // What several test targets share: the seeded generator of their randomised tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "OCPPTests", dependencies: ["OCPP", "TestSupport"]),
        .testTarget(name: "OCPPRulesTests", dependencies: ["OCPPRules", "TestSupport"]),
        .testTarget(name: "OCPPSOAPTests", dependencies: ["OCPPSOAP"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "OCPPAuditTests", dependencies: ["OCPPAudit", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(name: "OCPPFuzzTargetsTests", dependencies: ["OCPPFuzzTargets", "TestSupport"]),
        // The load generator's SOAP requests and its reading of answers (correctness; speed is for Benchmarks/).
        .testTarget(name: "OCPPBenchTests", dependencies: ["ocpp-bench"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "OCPPAuditRedactionTests", dependencies: ["OCPPAuditRedaction", "OCPPRules", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "OCPPProxyTests",
            dependencies: [
                "OCPPSOAP",
                "OCPPProxy",
                "OCPPWebSocket",
                "TestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // A state store as an older proxy wrote it, for the migration tests.
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
