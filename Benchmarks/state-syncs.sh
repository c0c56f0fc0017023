#!/usr/bin/env bash
# Which threads of a translating proxy fsync its SQLite state, how often and for how long: the translation setup of
# Benchmarks/run.sh (1.6 chargers, a 2.0.1 sink, state in SQLite) under an open-loop load, the proxy under
# `strace -f -e trace=fsync,fdatasync -T`. A sync on the thread that commits state writes stalls every write queued
# behind it; one on the checkpoint connection's thread does not. Counts and durations, not latencies: strace slows
# the proxy, but the syncs it sees are the ones the store does. See BENCHMARKS.md (issue 17, point 3).
#
#   Benchmarks/state-syncs.sh <label> <release dir with ocpp-proxy and ocpp-bench> [state.seqNoBlock]
#   RATE=1500 DURATION=15 CHARGERS=100   the load (CALLs/s over all chargers, seconds measured)
#
# Also samples the WAL's size once a second (wal-bytes.txt).
#
# Results in Benchmarks/results/state-syncs-<label>/ (syncs.txt: one line per thread that synced).
set -euo pipefail
label=$1
bin=${2%/}
block=${3:-}
RATE=${RATE:-1500}
DURATION=${DURATION:-15}
CHARGERS=${CHARGERS:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=$ROOT/Benchmarks/results/state-syncs-$label
rm -rf "$out"
mkdir -p "$out"
dir=$(mktemp -d /tmp/state-syncs.XXXX)
read -r sink_port proxy_port admin_port < <(python3 -c '
import socket
ports = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s); 
print(*[s.getsockname()[1] for s in ports])')
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

"$bin/ocpp-bench" sink --port "$sink_port" --lifetime 600 >"$out/sink.log" 2>&1 &
pids+=($!)
options=""
if [[ -n $block ]]; then options=$(printf '\n  seqNoBlock: %s' "$block"); fi
cat >"$dir/proxy.yaml" <<YAML
listeners:
  - name: bench
    host: 127.0.0.1
    port: $proxy_port
    path: /ocpp
    versions: [ocpp1.6]
upstream:
  url: ws://127.0.0.1:$sink_port/ocpp
  version: ocpp2.0.1
admin:
  host: 127.0.0.1
  port: $admin_port
limits:
  handshakes: off
  handshakesPerAddress: off
  handshakesPerIdentity: off
  upstreamConnects: off
  messages: off
overload: off
rules: $ROOT/Rules
state:
  sqlite: $dir/state.sqlite$options
YAML
sleep 1
"$bin/ocpp-proxy" serve --config "$dir/proxy.yaml" >"$out/proxy.log" 2>&1 &
proxy=$!
pids+=("$proxy")
sleep 2
strace -f -p "$proxy" -e trace=fsync,fdatasync -T -o "$out/strace.txt" 2>"$out/strace.log" &
pids+=($!)
sleep 1
# the WAL's size once a second: it starts over only after a checkpoint that copied all of it
while sleep 1; do stat -c %s "$dir/state.sqlite-wal" 2>/dev/null || echo 0; done >"$out/wal-bytes.txt" &
pids+=($!)
per_charger=$(python3 -c "print(f'{$RATE / $CHARGERS:.4f}')")
"$bin/ocpp-bench" load --url "ws://127.0.0.1:$proxy_port/ocpp" --version ocpp1.6 --label "$label" \
    --chargers "$CHARGERS" --ramp 500/s --duration "${DURATION}s" --scenario mixed --mode open \
    --rate "$per_charger/s" >"$out/load.txt" 2>"$out/load.log"
for task in /proc/"$proxy"/task/*; do echo "$(basename "$task") $(cat "$task/comm")"; done >"$out/threads.txt"
cleanup
trap - EXIT
python3 - "$out" <<'EOF'
import collections, re, sys
out = sys.argv[1]
names = dict(line.split(" ", 1) for line in open(f"{out}/threads.txt").read().splitlines())
syncs = collections.defaultdict(list)
for line in open(f"{out}/strace.txt"):
    # a sync that another thread's call interrupted in the trace ends on its "<... fsync resumed>" line
    match = re.match(r"(\d+)\s+(?:fsync|fdatasync)\(\d+\)\s.*<([\d.]+)>|(\d+)\s+<\.\.\. (?:fsync|fdatasync) resumed>.*<([\d.]+)>", line)
    if match:
        thread, seconds = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        syncs[f"{names.get(thread, '?').strip()} ({thread})"].append(float(seconds) * 1000)
with open(f"{out}/syncs.txt", "w") as summary:
    for thread, times in sorted(syncs.items()):
        times.sort()
        print(f"{thread}: {len(times)} syncs, {sum(times):.1f} ms in all, median {times[len(times) // 2]:.2f} ms, "
              f"max {times[-1]:.2f} ms", file=summary)
print(open(f"{out}/syncs.txt").read(), end="")
EOF
grep latency "$out/load.txt"
echo "WAL bytes, once a second: $(tr '\n' ' ' <"$out/wal-bytes.txt")"
