import Foundation
import OCPPFuzzTargets

// The fuzz targets of OCPPFuzzTargets as one program.
//
// Normal build: replays inputs without sanitizers, for regression inputs and crash triage.
//   ocpp-fuzz [--target=json|envelope|definitions|rules] [--rules=DIR] PATH...
//   A PATH is a file or a directory of files; without --target (or OCPP_FUZZ_TARGET) the target is the name of
//   the directory the input is in (Tests/Fuzz/corpus/<target>/…).
//   ocpp-fuzz --dictionary [--target=…]   prints a libFuzzer dictionary.
//
// libFuzzer build (Tests/Fuzz/run_libfuzzer.sh): `swift build -c release --scratch-path .build-fuzz
//   -Xswiftc -sanitize=fuzzer,address -Xswiftc -DOCPP_LIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld`,
//   then `ocpp-fuzz --target=T [libFuzzer flags] [corpus dirs]`. The target and rules directory are passed on
//   to libFuzzer's child processes (-fork, -merge) in OCPP_FUZZ_TARGET and OCPP_RULES_DIR.
//
// SwiftPM links an executable with `main` renamed to `ocpp_fuzz_main`, which leaves libFuzzer's own `main` out:
// so this `main` runs libFuzzer's driver itself (LLVMFuzzerRunDriver) instead of exporting only
// LLVMFuzzerTestOneInput.

#if OCPP_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Loaded on the first input: the rules are read once per process.
nonisolated(unsafe) var harness: FuzzHarness?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness!.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif

@main
struct OCPPFuzz {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        var targetName = environment["OCPP_FUZZ_TARGET"].flatMap { $0.isEmpty ? nil : $0 }
        var rulesDirectory = environment["OCPP_RULES_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        var printDictionary = false
        arguments.removeAll { argument in
            if argument.hasPrefix("--target=") {
                targetName = String(argument.dropFirst("--target=".count))
            } else if argument.hasPrefix("--rules=") {
                rulesDirectory = String(argument.dropFirst("--rules=".count))
            } else if argument == "--dictionary" {
                printDictionary = true
            } else {
                return false
            }
            return true
        }
        if let rulesDirectory { setenv("OCPP_RULES_DIR", rulesDirectory, 1) }
        if let targetName { setenv("OCPP_FUZZ_TARGET", targetName, 1) }
        var target: FuzzTarget?
        if let targetName {
            guard let named = FuzzTarget(rawValue: targetName) else {
                fail("unknown target '\(targetName)' (\(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            target = named
        }

        if printDictionary {
            let harness = load(target ?? .rules, rulesDirectory)
            for token in harness.dictionary() { print(Self.dictionaryEntry(token)) }
            return
        }

        #if OCPP_LIBFUZZER
        guard let target else { fail("name a target: --target=T or OCPP_FUZZ_TARGET=T") }
        harness = load(target, rulesDirectory)
        // libFuzzer reads the remaining arguments; argv[0] stays for its child processes.
        var cArguments = ([CommandLine.arguments[0]] + arguments).map { strdup($0) }
        cArguments.append(nil)
        var argc = CInt(cArguments.count - 1)
        let status = cArguments.withUnsafeMutableBufferPointer { buffer -> CInt in
            var argv = buffer.baseAddress!
            return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
        }
        exit(status)
        #else
        replay(arguments, target: target, rulesDirectory: rulesDirectory)
        #endif
    }

    static func replay(_ paths: [String], target explicit: FuzzTarget?, rulesDirectory: String?) {
        guard !paths.isEmpty else {
            fail("usage: ocpp-fuzz [--target=T] [--rules=DIR] PATH...   (targets: \(FuzzTarget.allCases.map(\.rawValue)))")
        }
        var harnesses: [FuzzTarget: FuzzHarness] = [:]
        var counts: [FuzzTarget: Int] = [:]
        for path in paths {
            for file in files(at: path) {
                let folder = URL(fileURLWithPath: file).deletingLastPathComponent().lastPathComponent
                guard let target = explicit ?? FuzzTarget(rawValue: folder) else {
                    fail("\(file): no --target and its folder '\(folder)' names none")
                }
                if harnesses[target] == nil { harnesses[target] = load(target, rulesDirectory) }
                guard let data = FileManager.default.contents(atPath: file) else { fail("\(file): cannot read") }
                FileHandle.standardError.write(Data("\(target.rawValue): \(file)\n".utf8))
                harnesses[target]!.run(Array(data))
                counts[target, default: 0] += 1
            }
        }
        for (target, count) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("\(target.rawValue): \(count) inputs replayed, no crash")
        }
    }

    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): not found") }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().flatMap { files(at: path + "/" + $0) }
    }

    static func load(_ target: FuzzTarget, _ rulesDirectory: String?) -> FuzzHarness {
        do {
            return try FuzzHarness(target: target, rulesDirectory: rulesDirectory)
        } catch {
            fail(error.description)
        }
    }

    /// A libFuzzer dictionary line: the token in double quotes, with `\` and `"` escaped and bytes outside
    /// printable ASCII as `\xNN`.
    static func dictionaryEntry(_ token: String) -> String {
        var line = "\""
        for byte in token.utf8 {
            switch byte {
            case UInt8(ascii: "\\"), UInt8(ascii: "\""): line += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7F: line += String(UnicodeScalar(byte))
            default: line += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return line + "\""
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("ocpp-fuzz: \(message)\n".utf8))
        exit(2)
    }
}
