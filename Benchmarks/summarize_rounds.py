#!/usr/bin/env python3
"""Medians over the rounds of one Benchmarks/run.sh run with ROUNDS > 1.

Usage: summarize_rounds.py RESULTS_DIR

Reads RESULTS_DIR/round-*/summary.json (summarize.py's output for each round) and writes RESULTS_DIR/summary.md and
RESULTS_DIR/summary.json: per setup the median and range of each figure over the rounds, and for every setup run
with and without the audit log (proxy and proxy-audit, …) the on/off comparison of each round (CPU per CALL as a
ratio, p99 at half load as a difference at the same offered rate) with its median. Standard library only.
"""
import glob
import json
import os
import statistics
import sys

FIGURES = [
    ("throughput", "throughput (CALLs/s)", 0),
    ("cpuMicrosecondsPerCall", "CPU µs per CALL", 1),
    ("closedUserMicrosecondsPerCall", "user µs", 1),
    ("closedSysMicrosecondsPerCall", "kernel µs", 1),
    ("p50", "p50 µs", 0),
    ("p99", "p99 µs", 0),
    ("halfRate", "half load CALLs/s", 0),
    ("halfP50", "p50 µs at half", 0),
    ("halfP99", "p99 µs at half", 0),
    ("halfP99_9", "p99.9 µs at half", 0),
    ("halfCpuMicrosecondsPerCall", "CPU µs per CALL at half", 1),
    ("mallocsPerCall", "allocations per CALL", 1),
    ("auditRecordsPerCall", "audit records per CALL", 2),
    ("closedAuditDropped", "records dropped (closed)", 0),
]


def cell(values, digits):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def main():
    results = sys.argv[1]
    rounds = []
    for path in sorted(glob.glob(os.path.join(results, "round-*", "summary.json")),
                       key=lambda p: int(p.split("round-")[-1].split("/")[0])):
        with open(path) as f:
            rounds.append(json.load(f))
    if not rounds:
        sys.exit(f"no round-*/summary.json in {results}")
    machine = rounds[0].get("machine", {})
    setups = [s for s in machine.get("setups", "").split() if any(s in r["rows"] for r in rounds)]
    out = {"rounds": len(rounds), "setups": {}, "audit": {}, "limits": {}}
    text = ["## ocpp-proxy benchmark, medians over rounds", ""]
    text.append(
        f"{machine.get('date', '')} · {len(rounds)} rounds (setup order reversed every other round) · "
        f"{machine.get('chargers', '?')} chargers, scenario {machine.get('scenario', '?')}, "
        f"{machine.get('duration', '?')} s per run · proxy from {machine.get('commit', '?')}. "
        "Cells: median (lowest–highest).")
    text.append("")
    text.append("| setup | " + " | ".join(name for _, name, _ in FIGURES) + " |")
    text.append("|" + "---|" * (len(FIGURES) + 1))
    for setup in setups:
        rows = [r["rows"].get(setup, {}) for r in rounds]
        out["setups"][setup] = {key: [row.get(key) for row in rows] for key, _, _ in FIGURES}
        text.append(f"| {setup} | " + " | ".join(cell([row.get(k) for row in rows], d) for k, _, d in FIGURES) + " |")
    text.append("")
    variants = {"-audit": ("Audit on", 1.15), "-limits": ("Limits on (not reached)", 1.05)}
    for setup in setups:
        suffix = next((v for v in variants if setup.endswith(v) and setup[: -len(v)] in setups), None)
        if suffix is None:
            continue
        base = setup[: -len(suffix)]
        feature, bound = variants[suffix]
        cpu, p99, p999, thr, rate_ok = [], [], [], [], []
        for r in rounds:
            off, on = r["rows"].get(base, {}), r["rows"].get(setup, {})
            if on.get("cpuMicrosecondsPerCall") and off.get("cpuMicrosecondsPerCall"):
                cpu.append(on["cpuMicrosecondsPerCall"] / off["cpuMicrosecondsPerCall"])
            if on.get("throughput") and off.get("throughput"):
                thr.append(on["throughput"] / off["throughput"])
            if on.get("halfP99") is not None and off.get("halfP99") is not None:
                if on.get("halfRate") and off.get("halfRate") and abs(on["halfRate"] - off["halfRate"]) <= 0.01 * off["halfRate"]:
                    p99.append(on["halfP99"] - off["halfP99"])
                    p999.append(on["halfP99_9"] - off["halfP99_9"])
        out[suffix.lstrip("-")][base] = {"cpuRatio": cpu, "throughputRatio": thr, "addedHalfP99": p99, "addedHalfP99_9": p999}
        lines = [f"{feature} against off, {base} (per round, then the median):"]
        if cpu:
            med = statistics.median(cpu)
            lines.append(f"- CPU per CALL: {' / '.join(f'{q - 1:+.1%}' for q in cpu)}; median {med - 1:+.1%} — "
                         f"target ≤ {bound - 1:+.0%}: {'MET' if med <= bound else 'MISSED'}")
        if thr:
            lines.append(f"- closed-loop throughput: {' / '.join(f'{q:.2f}×' for q in thr)}; median {statistics.median(thr):.2f}×")
        if p99:
            med = statistics.median(p99)
            lines.append(f"- added p99 at half load: {' / '.join(f'{d:+,.0f}' for d in p99)} µs; median {med:+,.0f} µs — "
                         f"target ≤ +1 ms: {'MET' if med <= 1000 else 'MISSED'}")
            lines.append(f"- added p99.9 at half load: {' / '.join(f'{d:+,.0f}' for d in p999)} µs; median {statistics.median(p999):+,.0f} µs")
        text += lines + [""]
    body = "\n".join(text) + "\n"
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(body)
    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
    print(body)


if __name__ == "__main__":
    main()
