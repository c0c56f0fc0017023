#!/usr/bin/env python3
"""The reconnect storm of Benchmarks/run.sh (STORM=1): how fast the proxy admits every charger at once.

    summarize_storm.py --add storm-<variant>.json USER_TICKS SYSTEM_TICKS PEAK_RSS_KIB CLK_TCK
        adds the proxy's CPU and memory during the storm to the storm client's result
    summarize_storm.py RESULTS VARIANT...
        prints the markdown section (appended to summary.md by run.sh)
"""

import json
import os
import sys

LIMITS = {
    "default": "shipped limits: handshakes 500/s (burst 1000), 50/s per address (burst 100), upstream links 50/s "
               "(burst 100)",
    "fast": "the same with upstream links at 500/s (burst 1000)",
}


def add(path, user, system, peak, tck):
    data = json.load(open(path))
    data.update(proxyCpuSeconds=(int(user) + int(system)) / int(tck), proxyUserSeconds=int(user) / int(tck),
                proxySystemSeconds=int(system) / int(tck), proxyPeakRssKiB=int(peak))
    json.dump(data, open(path, "w"), indent=2, sort_keys=True)


def summary(results, variants):
    lines = ["", "### Reconnect storm (issue 15)", "",
             "Every charger connects at once from several loopback addresses and honours `Retry-After` (times 1 to 2); "
             "admitted = its upgrade answered 101, so its CSMS link is open.", "",
             "| limits | chargers admitted | time to admit all | admitted/s (overall · median full second) | "
             "attempts | refusals | time to admission p50 · p90 | proxy CPU | proxy peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        try:
            r = json.load(open(os.path.join(results, f"storm-{variant}.json")))
        except (OSError, ValueError):
            lines.append(f"| {variant} | no result | | | | | | | |")
            continue
        refusals = ", ".join(f"{k} {v:,}" for k, v in sorted(r.get("refusals", {}).items())) or "none"
        lines.append(
            f"| {variant}: {LIMITS.get(variant, '')} | {r['admitted']:,}/{r['chargers']:,} from {r['addresses']} addresses "
            f"| {r['seconds']:.1f} s | {r['admittedPerSecondOverall']:.0f} · {r['admittedPerSecondMedian']} "
            f"| {r['attempts']:,} | {refusals} | {r['timeToAdmissionP50']:.1f} s · {r['timeToAdmissionP90']:.1f} s "
            f"| {r.get('proxyCpuSeconds', 0):.1f} s ({r.get('proxyCpuSeconds', 0) / max(r['seconds'], 0.001):.0%} of a core) "
            f"| {r.get('proxyPeakRssKiB', 0) / 1024:.0f} MiB |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--add":
        add(*sys.argv[2:7])
    else:
        print(summary(sys.argv[1], sys.argv[2:]))
