#!/usr/bin/env bash
# ocpp-proxy benchmark: the same OCPP load direct to a sink CSMS, through nginx, through ocpp-proxy passing it on,
# through ocpp-proxy translating 1.6 chargers to a 2.0.1 CSMS, and the same scenario from SOAP chargers (OCPP-S 1.5)
# through ocpp-proxy to a 1.6 CSMS; one table with throughput, latency, CPU per message and memory, each against
# nginx. See BENCHMARKS.md.
#
#   Benchmarks/run.sh                      everything with the defaults below
#   DURATION=10 IDLE_CHARGERS=2000 Benchmarks/run.sh
#   BUILD_PATH=.build-bench/release Benchmarks/run.sh   builds and runs in .build-bench, away from .build
#   SETUPS="proxy soap" Benchmarks/run.sh   SOAP 1.5 chargers against the same load over 1.6-J, in one run
#
# Settings (environment):
#   DURATION=20          seconds each closed- and open-loop run measures (per setup)
#   CHARGERS=100         chargers of the closed- and open-loop runs
#   SCENARIO=mixed       mixed | heartbeat
#   VERSION=ocpp1.6      charger and CSMS version of the pass-through runs (translation: always 1.6 → 2.0.1)
#   RAMP=500             connections per second while ramping up
#   HALF_LOAD=1          0 skips the open-loop run at half of saturation
#   IDLE=1               0 skips the idle-chargers scenario
#   IDLE_CHARGERS=10000  idle chargers (capped to what the file-descriptor limit lets one process hold)
#   IDLE_RAMP=1000       their connections per second
#   IDLE_HEARTBEAT=15    seconds between two Heartbeats of an idle charger
#   IDLE_HOLD=35         seconds they stay connected (>30 s: the proxy's keepalive ping runs once)
#   NGINX_WORKERS=1      nginx worker_processes
#   SETUPS="direct nginx proxy translation"
#                        translation: ocpp-proxy with 1.6 chargers on the sink speaking 2.0.1 (rules: Rules/)
#                        soap (not in the default): ocpp-proxy with a SOAP listener (transport: soap, path /ocpp/soap,
#                        versions [ocpp1.5, ocpp1.6]) and SOAP_VERSION chargers (`ocpp-bench load --transport soap`:
#                        SOAP 1.2 POSTs over one HTTP/1.1 keep-alive connection each, the same scenario), the sink
#                        as a 1.6 CSMS, rules: Rules/ (1.5 chargers are translated) and state in SQLite. Compare
#                        with the proxy row (the same scenario over 1.6-J through the pass-through): SETUPS="proxy soap"
#                        <setup>-audit (proxy-audit, translation-audit, soap-audit): the same proxy with the audit
#                        log on (an audit: section with payloads: redacted, dir in the results folder,
#                        checkpointInterval 60s); after each run `ocpp-proxy audit verify` must pass or the script
#                        stops. Audit on vs off side by side: SETUPS="proxy proxy-audit translation translation-audit"
#                        <setup>-limits (proxy-limits, translation-limits): the same proxy with every limit configured
#                        but far above what the load reaches (admission budgets, upstream pacing, message limits
#                        with delay/answerLocally/reject rules): what checking them costs. Side by side:
#                        SETUPS="proxy proxy-limits translation translation-limits" (LIMITS=0 for the others)
#   STORM=0              1: after the rounds, a reconnect storm against the proxy with its default limits: STORM_CHARGERS
#                        chargers connect at once from STORM_ADDRESSES loopback addresses, each honouring Retry-After
#                        (`ocpp-bench storm`), once per variant of STORM_VARIANTS: default (the shipped limits: upstream
#                        links at 50/s) and fast (upstreamConnects {rate: 500/s, burst: 1000}); storm-<variant>.json/.txt
#   STORM_CHARGERS=9000  STORM_ADDRESSES=64  STORM_VARIANTS="default fast"
#   ROUNDS=1             >1: the closed- and half-load runs ROUNDS times, each round in RESULTS/round-<n>/ with its
#                        own summary, the order of SETUPS reversed every other round (on/off interleaved), then the
#                        medians over the rounds in RESULTS/summary.md (idle chargers: first round only)
#   KEEP_AUDIT=0         1 keeps the audit directories of the -audit setups (otherwise deleted once verified)
#   SOAP_VERSION=ocpp1.5 OCPP-S version of the soap setup's chargers (ocpp1.6: a change of transport only)
#   HALF_RATE=           CALLs/s of the open-loop run for every setup (default: half the lowest closed-loop
#                        throughput of nginx and proxy; a setup slower than that, translation, at half its own)
#   BUILD_PATH=.build/release   where the release binaries are; the build uses its scratch path
#                        (swift build -c release --scratch-path .build), so BUILD_PATH=.build-bench/release
#                        builds in .build-bench and leaves .build alone
#   SKIP_BUILD=0         1 uses the release binaries already in BUILD_PATH
#   LIMITS=0             1 keeps the proxy's default admission budgets, message limits and overload protection
#                        (limits.handshakes…, upstreamConnects, messages, overload); 0 turns them off: the load ramps
#                        from one address faster than they allow, each charger sends more than 10 CALLs a second, and
#                        a saturated proxy may run late enough to shed Heartbeats
#   SEQNO_BLOCK=         state.seqNoBlock of the translation and soap setups (empty: the proxy's default, 1)
#   PERF=0               1 samples the proxy with `perf record -g` during its closed-loop runs (linux-perf)
#   MALLOCS=0            1 preloads Benchmarks/malloc_count.c (built with cc) into the proxy: allocation calls per CALL
#                        of its closed-loop runs (malloc, calloc, realloc and the aligned ones; a few % more CPU)
#   RESULTS=Benchmarks/results/<UTC time>   where the JSON results, logs and summary go (git-ignored)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-20}
CHARGERS=${CHARGERS:-100}
SCENARIO=${SCENARIO:-mixed}
VERSION=${VERSION:-ocpp1.6}
RAMP=${RAMP:-500}
HALF_LOAD=${HALF_LOAD:-1}
IDLE=${IDLE:-1}
IDLE_CHARGERS=${IDLE_CHARGERS:-10000}
IDLE_RAMP=${IDLE_RAMP:-1000}
IDLE_HEARTBEAT=${IDLE_HEARTBEAT:-15}
IDLE_HOLD=${IDLE_HOLD:-35}
NGINX_WORKERS=${NGINX_WORKERS:-1}
SETUPS=${SETUPS:-"direct nginx proxy translation"}
SOAP_VERSION=${SOAP_VERSION:-ocpp1.5}
HALF_RATE=${HALF_RATE:-}
BUILD_PATH=${BUILD_PATH:-.build/release}
LIMITS=${LIMITS:-0}
if [[ $LIMITS == 1 ]]; then
    LIMITS_SECTION=""
else
    # Overload protection off too: a saturated closed loop may run late enough to shed Heartbeats.
    LIMITS_SECTION=$(printf 'limits:\n  handshakes: off\n  handshakesPerAddress: off\n  handshakesPerIdentity: off\n  upstreamConnects: off\n  messages: off\noverload: off')
fi
# Every limit on, far above what the load reaches: the cost of checking them (the -limits setups).
UNREACHED_LIMITS=$(cat <<'EOF'
limits:
  handshakes: { rate: 100000/s, burst: 100000 }
  handshakesPerAddress: { rate: 100000/s, burst: 100000 }
  handshakesPerIdentity: { rate: 1000/s, burst: 1000 }
  upstreamConnects: { rate: 100000/s, burst: 100000, jitter: 0s }
  messages:
    default: { rate: 100000/s, burst: 100000, over: delay, maxDelay: 30s }
    Heartbeat: { minInterval: 1ms, over: answerLocally }
    StatusNotification: { minInterval: 1ms, over: answerLocally }
    DataTransfer: { rate: 100000/s, burst: 100000, over: reject }
    fromCSMS: { rate: 100000/s, burst: 100000, over: delay }
overload:
  memory: { shedAt: 60GiB, refuseAt: 61GiB, stopAt: 62GiB }
  eventLoopLag: { shedAt: 50s, refuseAt: 51s, stopAt: 52s }
  pendingCalls: { shedAt: 1000000, refuseAt: 1000001 }
EOF
)
STORM=${STORM:-0}
STORM_CHARGERS=${STORM_CHARGERS:-9000}
STORM_ADDRESSES=${STORM_ADDRESSES:-64}
STORM_VARIANTS=${STORM_VARIANTS:-"default fast"}
SKIP_BUILD=${SKIP_BUILD:-0}
PERF=${PERF:-0}
MALLOCS=${MALLOCS:-0}
SEQNO_BLOCK=${SEQNO_BLOCK:-}
STATE_OPTIONS=""
if [[ -n $SEQNO_BLOCK ]]; then STATE_OPTIONS=$(printf '\n  seqNoBlock: %s' "$SEQNO_BLOCK"); fi
ROUNDS=${ROUNDS:-1}
KEEP_AUDIT=${KEEP_AUDIT:-0}
RESULTS=${RESULTS:-Benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)}

NGINX=${NGINX:-/usr/sbin/nginx}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# BUILD_PATH is <scratch path>/release (SwiftPM's link to <scratch path>/<triple>/release), relative to the
# repository or absolute. The scratch path is what `swift build --scratch-path` takes.
BUILD_PATH=${BUILD_PATH%/}
[[ $BUILD_PATH == /* ]] || BUILD_PATH=$ROOT/$BUILD_PATH
[[ $(basename "$BUILD_PATH") == release ]] || die "BUILD_PATH=$BUILD_PATH: expected <scratch path>/release"
SCRATCH_PATH=$(dirname "$BUILD_PATH")
if [[ $(basename "$SCRATCH_PATH") == *-unknown-* || $(basename "$SCRATCH_PATH") == *-apple-* ]]; then
    SCRATCH_PATH=$(dirname "$SCRATCH_PATH")  # <scratch path>/<triple>/release
fi
BENCH=$BUILD_PATH/ocpp-bench
PROXY=$BUILD_PATH/ocpp-proxy
RULES_DIR=$ROOT/Rules

for setup in $SETUPS; do
    case $setup in
    direct | nginx | proxy | proxy-audit | proxy-limits) ;;
    translation-audit | soap-audit | translation-limits)
        [[ $VERSION == ocpp1.6 ]] || die "$setup needs VERSION=ocpp1.6"
        ;;
    translation)
        [[ $VERSION == ocpp1.6 ]] || die "the translation setup runs 1.6 chargers only: use VERSION=ocpp1.6 or leave translation out of SETUPS"
        ;;
    soap)
        [[ $VERSION == ocpp1.6 ]] || die "the soap setup is compared with 1.6-J chargers (its CSMS speaks 1.6): use VERSION=ocpp1.6 or leave soap out of SETUPS"
        [[ $SOAP_VERSION == ocpp1.5 || $SOAP_VERSION == ocpp1.6 ]] || die "SOAP_VERSION=$SOAP_VERSION: ocpp1.5 or ocpp1.6"
        ;;
    *) die "unknown setup $setup (direct, nginx, proxy, translation, soap, proxy/translation/soap-audit, proxy/translation-limits)" ;;
    esac
done

# ---------------------------------------------------------------- processes we start, and their cleanup
PIDS=()
RUN=$(mktemp -d /tmp/ocpp-bench.XXXXXX)
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() {  # forget <pid>: stop one process we started and drop it from PIDS
    local pid=$1 keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

wait_port() {  # wait_port <port> <pid>: until something listens, at most 15 s
    local port=$1 pid=$2
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

free_ports() {  # free_ports <n>: n distinct free TCP ports on 127.0.0.1, below the ephemeral range
    # (an ephemeral port can be held by an outgoing connection or its TIME_WAIT, and then a restart cannot bind it).
    python3 - "$1" <<'EOF'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
candidates = list(range(max(1024, low - 12000), low))
random.shuffle(candidates)
ports = []
for port in candidates:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        ports.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(ports) == int(sys.argv[1]):
        break
print(" ".join(map(str, ports)))
EOF
}

# CPU time (utime + stime, clock ticks) and memory (kB) of a set of processes, from /proc.
cpu_split() {  # cpu_split pids...: "utime stime" in clock ticks, summed
    local user=0 sys=0 pid line f
    for pid in "$@"; do
        line=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a f <<<"$line"
        user=$((user + f[11]))
        sys=$((sys + f[12]))
    done
    echo "$user $sys"
}
cpu_ticks() {  # cpu_ticks pids...: utime + stime in clock ticks, summed
    local user sys
    read -r user sys < <(cpu_split "$@")
    echo $((user + sys))
}
status_kb() {  # status_kb <VmRSS|VmHWM> pids...
    local key=$1 total=0 pid v
    shift
    for pid in "$@"; do
        v=$(awk -v k="$key:" '$1 == k { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# ---------------------------------------------------------------- build, nginx, limits
if [[ $SKIP_BUILD != 1 ]]; then
    say "building ocpp-bench and ocpp-proxy (release, scratch path $SCRATCH_PATH)"
    swift build -c release --scratch-path "$SCRATCH_PATH" --product ocpp-bench
    swift build -c release --scratch-path "$SCRATCH_PATH" --product ocpp-proxy
fi
[[ -x $BENCH && -x $PROXY ]] || die "release binaries missing in $BUILD_PATH: run without SKIP_BUILD=1"
if [[ $MALLOCS == 1 ]]; then
    cc -O2 -shared -fPIC -o "$RUN/malloc_count.so" "$ROOT/Benchmarks/malloc_count.c" -lpthread \
        || die "MALLOCS=1: cannot build Benchmarks/malloc_count.c with cc"
fi

if [[ ! -x $NGINX ]]; then
    say "installing nginx (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    [[ -x $NGINX ]] || NGINX=$(command -v nginx) || die "nginx did not install"
fi

# Each charger costs the proxy (and nginx) two descriptors: raise the soft limit as far as the hard one allows.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
say "file descriptors: $FD_LIMIT per process"
MAX_IDLE=$(((FD_LIMIT - 64) / 2))
if [[ $IDLE == 1 ]] && ((IDLE_CHARGERS > MAX_IDLE)); then
    say "IDLE_CHARGERS=$IDLE_CHARGERS does not fit the descriptor limit $FD_LIMIT (2 per charger in one process, which cannot be raised here); running $MAX_IDLE"
    IDLE_CHARGERS=$MAX_IDLE
fi

mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
say "results in $RESULTS"
CLK_TCK=$(getconf CLK_TCK)
python3 - "$RESULTS/machine.json" <<EOF
import json, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
json.dump({"date": "$(date -u +'%Y-%m-%d %H:%M UTC')", "nproc": $(nproc), "cpu": cpu,
           "memory": f"{int(mem) / 1048576:.0f} GiB", "kernel": "$(uname -r)",
           "nginx": "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')", "nginxWorkers": $NGINX_WORKERS,
           "chargers": $CHARGERS, "scenario": "$SCENARIO", "duration": $DURATION, "version": "$VERSION", "soapVersion": "$SOAP_VERSION",
           "idleChargers": $IDLE_CHARGERS, "idleHeartbeat": $IDLE_HEARTBEAT, "idleHold": $IDLE_HOLD,
           "fdLimit": $FD_LIMIT, "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- Sources 2>/dev/null || echo +uncommitted)",
           "proxyBinary": "$(date -u -r "$PROXY" +'%Y-%m-%d %H:%M UTC')", "buildPath": "$BUILD_PATH",
           "setups": "$SETUPS", "halfRateGiven": "$HALF_RATE", "rounds": $ROUNDS}, open(sys.argv[1], "w"), indent=2)
EOF

read -r SINK_PORT NGINX_PORT PROXY_PORT ADMIN_PORT < <(free_ports 4)

# ---------------------------------------------------------------- the sink (one for the whole run)
"$BENCH" sink --port "$SINK_PORT" --lifetime 7200 >"$RESULTS/sink.log" 2>&1 &
SINK_PID=$!
PIDS+=("$SINK_PID")
wait_port "$SINK_PORT" "$SINK_PID" || die "the sink did not start (see $RESULTS/sink.log)"
say "sink on 127.0.0.1:$SINK_PORT (pid $SINK_PID)"

# ---------------------------------------------------------------- setups
SERVER_PID=""     # the process started for a setup (nginx master or the proxy)
MEASURED=()       # the processes whose CPU and memory are measured
LOAD_ARGS=()      # the load's transport and version for the setup

start_setup() {  # start_setup <setup> <tag>: starts nginx or the proxy fresh; sets URL, LOAD_ARGS, SERVER_PID, MEASURED
    local setup=$1 tag=$2
    SERVER_PID=""
    MEASURED=()
    LOAD_ARGS=(--version "$VERSION")
    case $setup in
    direct)
        URL="ws://127.0.0.1:$SINK_PORT/ocpp"
        ;;
    nginx)
        local dir=$RUN/nginx-$tag
        mkdir -p "$dir"
        sed -e "s#@RUNDIR@#$dir#g" -e "s#@ERROR_LOG@#$RESULTS/nginx-$tag-error.log#g" -e "s#@LISTEN_PORT@#$NGINX_PORT#g" -e "s#@SINK_PORT@#$SINK_PORT#g" \
            -e "s#@WORKERS@#$NGINX_WORKERS#g" -e "s#@WORKER_CONNECTIONS@#$((FD_LIMIT * 2))#g" \
            -e "s#@RLIMIT@#$FD_LIMIT#g" "$ROOT/Benchmarks/nginx.conf" >"$dir/nginx.conf"
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$RESULTS/nginx-$tag-error.log" >"$RESULTS/nginx-$tag.log" 2>&1 &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        wait_port "$NGINX_PORT" "$SERVER_PID" || die "nginx did not start (see $RESULTS/nginx-$tag-error.log)"
        for _ in $(seq 50); do
            mapfile -t MEASURED < <(pgrep -P "$SERVER_PID")
            ((${#MEASURED[@]} >= NGINX_WORKERS)) && break
            sleep 0.1
        done
        MEASURED=("$SERVER_PID" "${MEASURED[@]}")  # master and workers
        URL="ws://127.0.0.1:$NGINX_PORT/ocpp"
        ;;
    proxy | translation | soap | proxy-audit | translation-audit | soap-audit | proxy-limits | translation-limits | storm-*)
        local dir=$RUN/$setup-$tag audit="" limits=$LIMITS_SECTION
        mkdir -p "$dir"
        if [[ $setup == *-limits ]]; then
            limits=$UNREACHED_LIMITS
            setup=${setup%-limits}
        elif [[ $setup == storm-* ]]; then
            # The shipped limits, and for the fast variant a CSMS taking new links ten times as fast.
            limits=""
            [[ $setup == storm-fast ]] && limits=$(printf 'limits:\n  upstreamConnects: { rate: 500/s, burst: 1000 }')
            setup=proxy
        fi
        if [[ $setup == *-audit ]]; then
            # The same setup with the audit log on (issue 14): payloads redacted, the directory in the results, one
            # signing key for the whole run (made by the proxy when missing), checked by `audit verify` at the stop.
            AUDIT_DIR=$RESULTS/audit-$setup-$tag
            rm -rf "$AUDIT_DIR"
            audit=$(printf 'audit:\n  dir: %s\n  payloads: redacted\n  pseudonymKey: "benchmark-pseudonym-key-0123456789"\n  signingKey: %s\n  checkpointInterval: 60s' \
                "$AUDIT_DIR" "$RUN/audit-signing.key")
            setup=${setup%-audit}
        fi
        # Pass-through: $VERSION on both sides. Translation: the 1.6 load through the proxy translating to the sink,
        # which then speaks 2.0.1 (the subprotocol the proxy asks for), with its state in SQLite as in production:
        # a fresh file for each start. SOAP: $SOAP_VERSION SOAP chargers on a SOAP listener, the sink as a 1.6 CSMS,
        # rules and state as for translation; 1.5 chargers are translated, 1.6 ones only change transport.
        local charger_version=$VERSION upstream_version=$VERSION extra="" listener=""
        URL="ws://127.0.0.1:$PROXY_PORT/ocpp"
        if [[ $setup == translation ]]; then
            charger_version=ocpp1.6
            upstream_version=ocpp2.0.1
            extra=$(printf 'rules: %s\nstate:\n  sqlite: %s%s' "$RULES_DIR" "$dir/state.sqlite" "$STATE_OPTIONS")
        elif [[ $setup == soap ]]; then
            charger_version=$SOAP_VERSION
            upstream_version=ocpp1.6
            listener=$(printf '  - name: soap\n    transport: soap\n    host: 127.0.0.1\n    port: %s\n    path: /ocpp/soap\n    versions: [ocpp1.5, ocpp1.6]' "$PROXY_PORT")
            # a SOAP listener needs rules: (its layouts are in Rules/soap/), whether or not it translates
            extra=$(printf 'rules: %s\nstate:\n  sqlite: %s%s' "$RULES_DIR" "$dir/state.sqlite" "$STATE_OPTIONS")
            URL="http://127.0.0.1:$PROXY_PORT/ocpp/soap"
            LOAD_ARGS=(--transport soap --version "$SOAP_VERSION")
        fi
        if [[ -z $listener ]]; then
            listener=$(printf '  - name: bench\n    host: 127.0.0.1\n    port: %s\n    path: /ocpp\n    versions: [%s]' "$PROXY_PORT" "$charger_version")
        fi
        cat >"$dir/proxy.yaml" <<EOF
# generated by Benchmarks/run.sh: $setup $charger_version → $upstream_version to the sink; everything else default
# but the admission budgets and message limits (LIMITS=1 keeps them): the load is faster than they allow
listeners:
$listener
upstream:
  url: ws://127.0.0.1:$SINK_PORT/ocpp
  version: $upstream_version
admin:
  host: 127.0.0.1
  port: $ADMIN_PORT
$limits
$extra
$audit
EOF
        setup=$1
        cp "$dir/proxy.yaml" "$RESULTS/$setup-$tag.yaml"
        if [[ $MALLOCS == 1 ]]; then
            MALLOC_COUNT_FILE=$RUN/mallocs-$setup-$tag LD_PRELOAD=$RUN/malloc_count.so \
                "$PROXY" serve --config "$dir/proxy.yaml" >"$RESULTS/$setup-$tag.log" 2>&1 &
        else
            "$PROXY" serve --config "$dir/proxy.yaml" >"$RESULTS/$setup-$tag.log" 2>&1 &
        fi
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        wait_port "$PROXY_PORT" "$SERVER_PID" || die "ocpp-proxy ($setup) did not start (see $RESULTS/$setup-$tag.log)"
        MEASURED=("$SERVER_PID")
        ;;
    *) die "unknown setup $setup" ;;
    esac
}

AUDIT_DIR=""       # the audit directory of a -audit setup's current run
stop_setup() {  # stop_setup <setup> <tag>
    if [[ -n $SERVER_PID ]]; then forget "$SERVER_PID"; fi
    SERVER_PID=""
    MEASURED=()
    if [[ -n $AUDIT_DIR ]]; then
        # A benchmark that breaks the log is not a result: every hash, link, Merkle root and signature must hold.
        local out=$RESULTS/audit-$1-$2.verify.txt
        if ! "$PROXY" audit verify --dir "$AUDIT_DIR" --public-key "$RUN/audit-signing.key.pub" >"$out" 2>&1; then
            cat "$out" >&2
            die "audit verify failed for $1 ($2): $AUDIT_DIR kept"
        fi
        record "$1" "${2}AuditBytes" "$(du -sb "$AUDIT_DIR" | cut -f1)"
        record "$1" "${2}AuditRecords" "$(cat "$AUDIT_DIR"/audit-*.jsonl | wc -l)"
        # Records the writer could not keep up with (onBackpressure): the gap records say how many were dropped.
        record "$1" "${2}AuditDropped" "$(cat "$AUDIT_DIR"/audit-*.jsonl | grep '"event":"gap"' | grep -o '"dropped":[0-9]*' | awk -F: '{ n += $2 } END { print n + 0 }')"
        say "audit log of $1 ($2) verified: $(tail -1 "$out")"
        [[ $KEEP_AUDIT == 1 ]] || rm -rf "$AUDIT_DIR"
        AUDIT_DIR=""
    fi
}

mallocs() {  # mallocs <setup> <tag>: the preloaded counter's total so far (MALLOCS=1 and a proxy setup), else nothing
    local file=$RUN/mallocs-$1-$2
    [[ $MALLOCS == 1 && $1 != direct && $1 != nginx ]] || return 0
    for _ in $(seq 50); do [[ -s $file ]] && break; sleep 0.1; done
    cat "$file"
}
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESOURCES"; }  # record <setup> <key> <value>

load_run() {  # load_run <tag> <setup> [load options...]; bounded by the load's own duration plus timeouts
    local tag=$1 setup=$2 pid status=0
    shift 2
    timeout --kill-after=10 $((DURATION + 120)) "$BENCH" load --url "$URL" "${LOAD_ARGS[@]}" --label "$setup" \
        --json "$RESULTS/$tag-$setup.json" "$@" >"$RESULTS/$tag-$setup.txt" 2>"$RESULTS/$tag-$setup.log" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    if ((status != 0)); then say "the load of $tag/$setup exited with $status (see $RESULTS/$tag-$setup.log)"; fi
    cat "$RESULTS/$tag-$setup.txt" >&2
}

run_round() {  # the closed-loop, half-load and idle runs of every setup in ORDER, results in RESULTS
    RESOURCES=$RESULTS/resources.tsv
    : >"$RESOURCES"
    # 1. Closed loop: as fast as one outstanding CALL per charger allows.
    for setup in $ORDER; do
        say "closed loop, $setup: $CHARGERS chargers, $SCENARIO, ${DURATION}s"
        start_setup "$setup" closed
        before=$(cpu_ticks "${MEASURED[@]}")
        read -r user_before sys_before < <(cpu_split "${MEASURED[@]}")
        read -r sink_user_before sink_sys_before < <(cpu_split "$SINK_PID")
        PERF_PID=""
        if [[ $PERF == 1 && $setup != direct && $setup != nginx ]]; then
            # Sampled call graphs of the proxy during the closed-loop run (cpu-clock: this VM has no hardware counters).
            perf record -e cpu-clock -F 999 -g -p "$SERVER_PID" -o "$RESULTS/perf-$setup.data" >"$RESULTS/perf-$setup.log" 2>&1 &
            PERF_PID=$!
            PIDS+=("$PERF_PID")
        fi
        mallocs_before=$(mallocs "$setup" closed)
        load_run closed "$setup" --chargers "$CHARGERS" --ramp "$RAMP/s" --duration "${DURATION}s" --scenario "$SCENARIO" --mode closed
        if [[ -n $mallocs_before ]]; then
            sleep 0.3  # the counter's file is rewritten every 0.1 s
            record "$setup" closedMallocs $(($(mallocs "$setup" closed) - mallocs_before))
        fi
        if [[ -n $PERF_PID ]]; then
            kill -INT "$PERF_PID" 2>/dev/null || true
            wait "$PERF_PID" 2>/dev/null || true
            perf report -i "$RESULTS/perf-$setup.data" --no-children --percent-limit 0.5 --stdio -g none \
                >"$RESULTS/perf-$setup-self.txt" 2>/dev/null || true
            perf report -i "$RESULTS/perf-$setup.data" --children --percent-limit 2 --stdio -g none \
                >"$RESULTS/perf-$setup-children.txt" 2>/dev/null || true
            say "profile of $setup: $RESULTS/perf-$setup-self.txt (self time), perf-$setup-children.txt (inclusive)"
        fi
        # The sink's own CPU (user and kernel) for the same CALLs: in the direct run, what one NIO WebSocket endpoint
        # costs per CALL (one frame in, one out) on this machine.
        read -r sink_user sink_sys < <(cpu_split "$SINK_PID")
        record "$setup" sinkClosedUserTicks $((sink_user - sink_user_before))
        record "$setup" sinkClosedSysTicks $((sink_sys - sink_sys_before))
        if ((${#MEASURED[@]} > 0)); then
            read -r user_after sys_after < <(cpu_split "${MEASURED[@]}")
            record "$setup" closedUserTicks $((user_after - user_before))
            record "$setup" closedSysTicks $((sys_after - sys_before))
            record "$setup" closedCpuTicks $(($(cpu_ticks "${MEASURED[@]}") - before))
            record "$setup" closedPeakRssKiB "$(status_kb VmHWM "${MEASURED[@]}")"
        fi
        stop_setup "$setup" closed
    done

    # 2. Open loop at half of saturation: the same offered rate for every setup, half the lowest closed-loop throughput
    #    of nginx and the pass-through proxy, to compare latency when nothing is saturated. A setup that saturates
    #    below twice that rate (translation) runs at half of its own closed-loop throughput instead, so that it is
    #    not saturated either; the summary shows its rate. HALF_RATE= sets one rate for every setup instead.
    if [[ $HALF_LOAD == 1 ]]; then
        half_rates() {  # half_rates <setups...>: "<setup> <CALLs/s>" per setup, or nothing without a base rate
            python3 - "$RESULTS" "$HALF_RATE" "$@" <<'EOF'
import json, sys
results, given, setups = sys.argv[1], sys.argv[2], sys.argv[3:]
def closed(setup):
    try:
        return json.load(open(f"{results}/closed-{setup}.json"))["throughputPerSecond"] or None
    except (OSError, ValueError, KeyError):
        return None
if given:
    rates = {s: float(given) for s in setups}
else:
    base = [closed(s) for s in setups if s in ("nginx", "proxy") and closed(s)]
    if not base:  # neither ran: the lowest of the others
        base = [closed(s) for s in setups if s != "direct" and closed(s)]
    if not base:
        sys.exit(0)
    shared = min(base) / 2
    rates = {s: min(shared, closed(s) / 2) if s != "direct" and closed(s) else shared for s in setups}
    for s in setups:  # audit on at the rate of the same setup with it off: the two are compared at one rate
        if s.endswith("-audit") and s[: -len("-audit")] in rates:
            rates[s] = rates[s[: -len("-audit")]]
for s in setups:
    print(s, f"{rates[s]:.1f}")
EOF
        }
        mapfile -t RATES < <(half_rates $ORDER)
        if ((${#RATES[@]} > 0)); then
            for line in "${RATES[@]}"; do
                read -r setup rate <<<"$line"
                PER_CHARGER=$(python3 -c "print(f'{$rate / $CHARGERS:.4f}')")
                say "open loop, $setup: $rate CALLs/s ($PER_CHARGER/s per charger), ${DURATION}s"
                start_setup "$setup" half
                before=$(cpu_ticks "${MEASURED[@]}")
                load_run half "$setup" --chargers "$CHARGERS" --ramp "$RAMP/s" --duration "${DURATION}s" --scenario "$SCENARIO" \
                    --mode open --rate "$PER_CHARGER/s"
                if ((${#MEASURED[@]} > 0)); then record "$setup" halfCpuTicks $(($(cpu_ticks "${MEASURED[@]}") - before)); fi
                stop_setup "$setup" half
            done
        else
            say "no closed-loop throughput of nginx, the proxy or translation: skipping the half-load run"
        fi
    fi

    # 3. Idle chargers with heartbeats: memory per connected charger (RSS after the ramp minus RSS before).
    if [[ $IDLE == 1 && $ROUND == 1 ]]; then
        for setup in $ORDER; do
            [[ $setup == direct ]] && continue
            say "idle, $setup: $IDLE_CHARGERS chargers at $IDLE_RAMP/s, a Heartbeat every ${IDLE_HEARTBEAT}s, held ${IDLE_HOLD}s"
            start_setup "$setup" idle
            sleep 1
            record "$setup" idleRssBeforeKiB "$(status_kb VmRSS "${MEASURED[@]}")"
            ready=$RUN/idle-$setup.ready
            rm -f "$ready"
            timeout --kill-after=10 $((IDLE_CHARGERS / IDLE_RAMP + IDLE_HOLD + 120)) "$BENCH" load --url "$URL" \
                "${LOAD_ARGS[@]}" --label "$setup" --chargers "$IDLE_CHARGERS" --ramp "$IDLE_RAMP/s" \
                --scenario idle --heartbeat "$IDLE_HEARTBEAT" --duration "${IDLE_HOLD}s" --ready-file "$ready" \
                --json "$RESULTS/idle-$setup.json" >"$RESULTS/idle-$setup.txt" 2>"$RESULTS/idle-$setup.log" &
            LOAD_PID=$!
            PIDS+=("$LOAD_PID")
            for _ in $(seq $((10 * (IDLE_CHARGERS / IDLE_RAMP + 60)))); do
                [[ -e $ready ]] && break
                kill -0 "$LOAD_PID" 2>/dev/null || break
                sleep 0.1
            done
            # Let the last upgrades and Boot answers settle, then read the resident set.
            sleep 5
            record "$setup" idleRssAfterKiB "$(status_kb VmRSS "${MEASURED[@]}")"
            status=0
            wait "$LOAD_PID" || status=$?
            if ((status != 0)); then say "the idle load of $setup exited with $status"; fi
            forget "$LOAD_PID"
            record "$setup" idlePeakRssKiB "$(status_kb VmHWM "${MEASURED[@]}")"
            cat "$RESULTS/idle-$setup.txt" >&2
            stop_setup "$setup" idle
        done
    fi

    # ---------------------------------------------------------------- the table
    python3 - "$RESOURCES" "$RESULTS/resources.json" "$CLK_TCK" "$FD_LIMIT" <<'EOF'
import json, sys
out = {"clockTicksPerSecond": int(sys.argv[3]), "fdHardLimit": int(sys.argv[4])}
for line in open(sys.argv[1]):
    setup, key, value = line.rstrip("\n").split("\t")
    out.setdefault(setup, {})[key] = int(value)
json.dump(out, open(sys.argv[2], "w"), indent=2, sort_keys=True)
EOF
    python3 "$ROOT/Benchmarks/summarize.py" "$RESULTS"
}

TOP=$RESULTS
[[ -n ${SETUPS// /} ]] || ROUNDS=0  # SETUPS="" STORM=1: the storm alone
for ROUND in $(seq "$ROUNDS"); do
    ORDER=$SETUPS
    if ((ROUNDS > 1)); then
        # Each round in its own folder; every other round runs the setups in reverse order, so that on and off
        # (proxy, proxy-audit) alternate in time and a machine that drifts does not favour one of them.
        RESULTS=$TOP/round-$ROUND
        mkdir -p "$RESULTS"
        cp "$TOP/machine.json" "$RESULTS/"
        if ((ROUND % 2 == 0)); then ORDER=$(printf '%s\n' $SETUPS | tac | xargs); fi
        say "round $ROUND of $ROUNDS: $ORDER (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    fi
    run_round
done
RESULTS=$TOP
if ((ROUNDS > 1)); then python3 "$ROOT/Benchmarks/summarize_rounds.py" "$RESULTS"; fi

# ---------------------------------------------------------------- a reconnect storm (issue 15)
if [[ $STORM == 1 ]]; then
    STORM_MAX=$((STORM_CHARGERS / 40 + 300))  # seconds: at 50/s and then some
    for variant in $STORM_VARIANTS; do
        case $variant in default | fast) ;; *) die "STORM_VARIANTS: default or fast, got $variant" ;; esac
        say "storm, $variant limits: $STORM_CHARGERS chargers at once from $STORM_ADDRESSES addresses, honouring Retry-After"
        start_setup "storm-$variant" storm
        read -r user_before sys_before < <(cpu_split "${MEASURED[@]}")
        status=0
        timeout --kill-after=10 $((STORM_MAX + 60)) "$BENCH" storm --url "$URL" --version "$VERSION" \
            --chargers "$STORM_CHARGERS" --addresses "$STORM_ADDRESSES" --max-seconds "$STORM_MAX" --label "$variant" \
            --json "$RESULTS/storm-$variant.json" >"$RESULTS/storm-$variant.txt" 2>"$RESULTS/storm-$variant.log" || status=$?
        ((status == 0)) || say "the storm ($variant) exited with $status (see $RESULTS/storm-$variant.log)"
        read -r user_after sys_after < <(cpu_split "${MEASURED[@]}")
        peak=$(status_kb VmHWM "${MEASURED[@]}")
        curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^ocpp_proxy_(admissions_rejected_total|upstream_connect_seconds_count)' \
            >"$RESULTS/storm-$variant.metrics" || true
        python3 "$ROOT/Benchmarks/summarize_storm.py" --add "$RESULTS/storm-$variant.json" "$((user_after - user_before))" \
            "$((sys_after - sys_before))" "$peak" "$CLK_TCK"
        cat "$RESULTS/storm-$variant.txt" >&2
        stop_setup "storm-$variant" storm
    done
    python3 "$ROOT/Benchmarks/summarize_storm.py" "$RESULTS" $STORM_VARIANTS | tee -a "$RESULTS/summary.md"
fi
say "results: $RESULTS (summary.md, summary.json, one JSON per run)"
