#!/usr/bin/env bash
# Builds ocpp-fuzz with libFuzzer and AddressSanitizer into .build-fuzz and runs each fuzz target for a while.
#
#   Tests/Fuzz/run_libfuzzer.sh [SECONDS] [TARGET...]      (targets: json envelope definitions rules soap websocket; default all)
#
# Per target: the working corpus grows in .build-fuzz/fuzz/corpus/<target> (kept between runs), seeded from the
# committed Tests/Fuzz/corpus/<target>; crashing inputs go to $ARTIFACTS/<target>/ (default
# .build-fuzz/fuzz/artifacts); the log to .build-fuzz/fuzz/logs/<target>.log. One summary line per target.
# To keep an input as a regression test, copy it to Tests/Fuzz/corpus/<target>/ (replayed by `swift test`
# and by `swift run ocpp-fuzz Tests/Fuzz/corpus/<target>`).
#
# Environment: RSS_LIMIT_MB (2048), INPUT_TIMEOUT seconds per input (10), MAX_LEN (4096), ARTIFACTS,
# KEEP_GOING=1 (libFuzzer fork mode, continuing past crashes), NO_BUILD=1, SWIFT (swift on PATH, else
# /opt/swift/usr/bin/swift), OCPP_RULES_DIR (Rules).
set -euo pipefail

cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json envelope definitions rules soap websocket)

swift=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
scratch=.build-fuzz
work=$scratch/fuzz
artifacts=${ARTIFACTS:-$work/artifacts}
rss=${RSS_LIMIT_MB:-2048}
export OCPP_RULES_DIR=${OCPP_RULES_DIR:-$PWD/Rules}
# libFuzzer's own crash handler writes the input and the stack; Swift's backtracer would race it.
export SWIFT_BACKTRACE=enable=no
# LeakSanitizer misses pointers Swift keeps in enum payloads' spare bits: the rule library loaded once looks
# leaked at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}

if [ -z "${NO_BUILD:-}" ]; then
    # SwiftPM links executables with gold, which fails on libclang_rt.fuzzer ("internal error in
    # format_file_lineno"): link with lld instead.
    "$swift" build -c release --scratch-path "$scratch" --product ocpp-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DOCPP_LIBFUZZER \
        -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
fi
binary=$scratch/release/ocpp-fuzz
mkdir -p "$work/logs"
"$binary" --dictionary --target=rules > "$work/ocpp.dict"

demangle() { "$(dirname "$swift")/swift-demangle" --simplified 2>/dev/null || cat; }

for target in "${targets[@]}"; do
    corpus=$work/corpus/$target
    mkdir -p "$corpus" "$artifacts/$target"
    log=$work/logs/$target.log
    before=$(find "$artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    flags=(-max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="${INPUT_TIMEOUT:-10}"
        -max_len="${MAX_LEN:-4096}" -dict="$work/ocpp.dict" -detect_leaks=0 -print_final_stats=1
        -artifact_prefix="$artifacts/$target/")
    [ -n "${KEEP_GOING:-}" ] && flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    start=$(date +%s)
    set +e
    "$binary" --target="$target" "${flags[@]}" "$corpus" "Tests/Fuzz/corpus/$target" > "$log" 2>&1
    status=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    # Executions: the final stats, else the last status line (a crash stops before the final stats).
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    [ -n "$execs" ] || execs=0
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    corpus_size=$(find "$corpus" -type f | wc -l)
    crashes=$(( $(find "$artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l) - before ))
    rate=$(( elapsed > 0 ? execs / elapsed : execs ))
    printf '%-12s executions=%s time=%ss execs/s=%s cov=%s corpus=%s new_crashes=%s exit=%s log=%s\n' \
        "$target" "$execs" "$elapsed" "$rate" "$cov" "$corpus_size" "$crashes" "$status" "$log"
    if [ "$crashes" -gt 0 ]; then
        grep -E 'Test unit written to|written to .*(crash|timeout|oom)-' "$log" | sed 's/^/    /' | head -5
        # The first frames of the first crash that belong to the program, not to libFuzzer or the sanitizer.
        grep -m1 -E 'invariant broken|Fatal error' "$log" | sed 's/^/    /' || true
        grep -E '^ +#[0-9]+ ' "$log" | grep -vE 'libFuzzer|compiler-rt|libc\.so|sanitizer|fuzzer::|_start' \
            | head -4 | demangle | sed 's/^/    /'
    fi
done
