import ArgumentParser

/// Benchmark tooling for ocpp-proxy: a canned CSMS (`sink`) and a charger load generator (`load`).
/// See BENCHMARKS.md and Benchmarks/run.sh.
struct OCPPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocpp-bench",
        abstract: "Benchmark tooling for ocpp-proxy: a sink CSMS and a charger load generator.",
        subcommands: [Sink.self, Load.self, Storm.self])
}

OCPPBench.main()
