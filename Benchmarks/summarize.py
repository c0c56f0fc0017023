#!/usr/bin/env python3
"""Builds the table of Benchmarks/run.sh from the JSON files of one run directory.

Usage: summarize.py RESULTS_DIR

Reads RESULTS_DIR/{closed,half,idle}-{setup}.json (written by `ocpp-bench load --json`),
RESULTS_DIR/resources.json (CPU ticks and RSS of the proxy or nginx, written by run.sh) and
RESULTS_DIR/machine.json; writes RESULTS_DIR/summary.md and RESULTS_DIR/summary.json and prints the table.
Standard library only.
"""
import json
import os
import sys

SETUPS = [
    ("direct", "direct (load → sink)"),
    ("nginx", "nginx (WebSocket proxy)"),
    ("proxy", "ocpp-proxy pass-through 1.6 → 1.6"),
    ("translation", "ocpp-proxy translation 1.6 → 2.0.1"),
    # {soap}: the SOAP chargers' version (machine.json soapVersion, run.sh SOAP_VERSION)
    ("soap", "ocpp-proxy SOAP {soap} chargers → 1.6-J"),
    # The same setups with the audit log on (payloads: redacted), issue 14: run.sh SETUPS="proxy proxy-audit …"
    ("proxy-audit", "ocpp-proxy pass-through 1.6 → 1.6, audit on"),
    ("translation-audit", "ocpp-proxy translation 1.6 → 2.0.1, audit on"),
    ("soap-audit", "ocpp-proxy SOAP {soap} chargers → 1.6-J, audit on"),
    # Every limit configured but not reached, issue 15: run.sh SETUPS="proxy proxy-limits …"
    ("proxy-limits", "ocpp-proxy pass-through 1.6 → 1.6, limits on (not reached)"),
    ("translation-limits", "ocpp-proxy translation 1.6 → 2.0.1, limits on (not reached)"),
]

# A setup against the same setup with one feature on: the suffix, what the feature is, the issue and its CPU target.
VARIANTS = [("-audit", "audit on", 14, 1.15), ("-limits", "limits on (not reached)", 15, 1.05)]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(value, digits=0):
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(value, base, digits=2):
    if value is None or not base:
        return ""
    return f" ({value / base:.{digits}f}×)"


def main():
    results = sys.argv[1]
    resources = load(os.path.join(results, "resources.json")) or {}
    machine = load(os.path.join(results, "machine.json")) or {}
    rows = {}
    soap_version = machine.get("soapVersion", "ocpp1.5").replace("ocpp", "")
    names = {key: name.format(soap=soap_version) for key, name in SETUPS}
    for key in names:
        closed = load(os.path.join(results, f"closed-{key}.json"))
        half = load(os.path.join(results, f"half-{key}.json"))
        idle = load(os.path.join(results, f"idle-{key}.json"))
        res = resources.get(key, {})
        row = {"setup": key}
        if closed:
            c = closed["calls"]
            row["throughput"] = closed["throughputPerSecond"]
            row["p50"] = closed["latencyMicroseconds"]["p50"]
            row["p99"] = closed["latencyMicroseconds"]["p99"]
            row["p99_9"] = closed["latencyMicroseconds"]["p99.9"]
            row["connections"] = closed["connections"]["established"]
            row["connectionFailures"] = closed["connections"]["failed"]
            row["errored"] = c["errored"] + c["timedOut"]
            row["callErrors"] = c["errored"]
            row["timedOut"] = c["timedOut"]
            row["unanswered"] = c["unanswered"]
            row["bootRejected"] = c["bootNotificationsRejected"]
            messages = c["answeredIncludingOutsideWindow"] + c["bootNotificationsAccepted"] + c["bootNotificationsRejected"]
            ticks = res.get("closedCpuTicks")
            hz = resources.get("clockTicksPerSecond", 100)
            if ticks is not None and messages:
                row["cpuMicrosecondsPerCall"] = ticks / hz * 1e6 / messages
                row["cpuSeconds"] = ticks / hz
            for name in ("closedUserTicks", "closedSysTicks", "sinkClosedUserTicks", "sinkClosedSysTicks"):
                if res.get(name) is not None and messages:
                    row[name.replace("Ticks", "MicrosecondsPerCall")] = res[name] / hz * 1e6 / messages
            if res.get("closedMallocs") is not None and messages:
                row["mallocsPerCall"] = res["closedMallocs"] / messages
            if res.get("closedPeakRssKiB") is not None:
                row["peakRssMiB"] = res["closedPeakRssKiB"] / 1024
        if half:
            row["halfRate"] = half.get("offeredCallsPerSecond")
            row["halfThroughput"] = half["throughputPerSecond"]
            row["halfP50"] = half["latencyMicroseconds"]["p50"]
            row["halfP99"] = half["latencyMicroseconds"]["p99"]
            row["halfP99_9"] = half["latencyMicroseconds"]["p99.9"]
            hc = half["calls"]
            half_messages = hc["answeredIncludingOutsideWindow"] + hc["bootNotificationsAccepted"] + hc["bootNotificationsRejected"]
            if res.get("halfCpuTicks") is not None and half_messages:
                row["halfCpuMicrosecondsPerCall"] = res["halfCpuTicks"] / resources.get("clockTicksPerSecond", 100) * 1e6 / half_messages
        for tag in ("closed", "half", "idle"):
            if res.get(f"{tag}AuditRecords") is not None:
                row[f"{tag}AuditRecords"] = res[f"{tag}AuditRecords"]
                row[f"{tag}AuditBytes"] = res[f"{tag}AuditBytes"]
                row[f"{tag}AuditDropped"] = res.get(f"{tag}AuditDropped", 0)
        if closed and row.get("closedAuditRecords") and closed["calls"].get("sent"):
            row["auditRecordsPerCall"] = row["closedAuditRecords"] / messages
            row["auditBytesPerRecord"] = row["closedAuditBytes"] / row["closedAuditRecords"]
        if idle:
            row["idleEstablished"] = idle["connections"]["established"]
            row["idleFailed"] = idle["connections"]["failed"]
            row["idleFailureReasons"] = idle["connections"]["failureReasons"]
            before, after = res.get("idleRssBeforeKiB"), res.get("idleRssAfterKiB")
            if before is not None and after is not None and row["idleEstablished"]:
                row["idleKiBPerCharger"] = (after - before) / row["idleEstablished"]
                row["idleRssBeforeKiB"] = before
                row["idleRssAfterKiB"] = after
        rows[key] = row

    nginx = rows.get("nginx", {})
    direct = rows.get("direct", {})
    header = (
        "| setup | throughput (CALLs/s) | p50 µs | p99 µs | CPU µs per CALL | peak RSS MiB "
        "| p99 µs at half load | added p99 vs direct | idle KiB per charger |"
    )
    lines = [header, "|" + "---|" * 9]
    # The shared half-load rate (nginx's, else the first setup's); a setup that saturates below twice it
    # (translation) ran at half of its own throughput: its cell says at which rate.
    shared_rate = nginx.get("halfRate") or next((r.get("halfRate") for r in rows.values() if r.get("halfRate")), None)

    def same_rate(a, b):
        return a is not None and b is not None and abs(a - b) <= 0.01 * max(a, b)

    for key, name in names.items():
        r = rows[key]
        if len(r) == 1:
            continue  # not run
        added = None
        if (r.get("halfP99") is not None and direct.get("halfP99") is not None and key != "direct"
                and same_rate(r.get("halfRate"), direct.get("halfRate"))):
            added = r["halfP99"] - direct["halfP99"]
        half_at = ""
        if r.get("halfP99") is not None and not same_rate(r.get("halfRate"), shared_rate):
            half_at = f" at {r.get('halfRate') or 0:,.0f}/s"
        lines.append(
            "| {} | {}{} | {}{} | {}{} | {}{} | {}{} | {}{} | {} | {}{} |".format(
                name,
                fmt(r.get("throughput")), ratio(r.get("throughput"), nginx.get("throughput")),
                fmt(r.get("p50"), 1), ratio(r.get("p50"), nginx.get("p50")),
                fmt(r.get("p99"), 1), ratio(r.get("p99"), nginx.get("p99")),
                fmt(r.get("cpuMicrosecondsPerCall"), 1), ratio(r.get("cpuMicrosecondsPerCall"), nginx.get("cpuMicrosecondsPerCall")),
                fmt(r.get("peakRssMiB"), 1), ratio(r.get("peakRssMiB"), nginx.get("peakRssMiB")),
                fmt(r.get("halfP99"), 1) + half_at,
                ratio(r.get("halfP99"), nginx.get("halfP99")) if same_rate(r.get("halfRate"), nginx.get("halfRate")) else "",
                "—" if added is None else f"{added:+,.1f} µs",
                fmt(r.get("idleKiBPerCharger"), 1), ratio(r.get("idleKiBPerCharger"), nginx.get("idleKiBPerCharger")),
            )
        )

    notes = []
    if shared_rate:
        how = ("set by HALF_RATE" if machine.get("halfRateGiven")
               else "half the lowest closed-loop throughput of nginx and the pass-through proxy")
        others = [f"{k} at {r['halfRate']:,.0f} CALLs/s (half its own closed-loop throughput; no added p99 vs direct, "
                  "which ran at the shared rate)"
                  for k, r in rows.items() if r.get("halfRate") and not same_rate(r["halfRate"], shared_rate)]
        notes.append(f"half load: open loop at {shared_rate:,.0f} CALLs/s ({how})" + ("; " + "; ".join(others) if others else ""))
    split = []
    for key, _ in SETUPS:
        r = rows[key]
        if r.get("closedUserMicrosecondsPerCall") is not None:
            split.append(f"{key} {r['closedUserMicrosecondsPerCall']:.1f} user + {r['closedSysMicrosecondsPerCall']:.1f} kernel")
    if direct.get("sinkClosedUserMicrosecondsPerCall") is not None:
        split.append(
            f"the sink in the direct run (a NIO WebSocket endpoint reading the head of one frame and writing one) "
            f"{direct['sinkClosedUserMicrosecondsPerCall']:.1f} user + {direct['sinkClosedSysMicrosecondsPerCall']:.1f} kernel")
    if split:
        notes.append("CPU µs per CALL in the closed loop, user + kernel: " + "; ".join(split))
    mallocs = [f"{key} {rows[key]['mallocsPerCall']:.1f}" for key, _ in SETUPS if rows[key].get("mallocsPerCall") is not None]
    if mallocs:
        notes.append("allocation calls per CALL in the closed loop (MALLOCS=1; malloc, calloc, realloc, aligned): "
                     + "; ".join(mallocs))
    for key, _ in SETUPS:
        r = rows[key]
        if "idleEstablished" in r:
            failures = ", ".join(f"{k}={v}" for k, v in sorted(r["idleFailureReasons"].items())) or "none"
            notes.append(
                f"idle {key}: {r['idleEstablished']:,} chargers connected ({r['idleFailed']:,} failed: {failures}); "
                f"RSS {r.get('idleRssBeforeKiB', 0) / 1024:,.1f} → {r.get('idleRssAfterKiB', 0) / 1024:,.1f} MiB")
        if r.get("errored") or r.get("bootRejected"):
            notes.append(
                f"{key}: {r.get('callErrors', 0)} CALLs answered with a CALLERROR, {r.get('timedOut', 0)} timed out, "
                f"{r.get('bootRejected', 0)} BootNotifications answered with a CALLERROR in the closed-loop run")
        if r.get("connectionFailures"):
            notes.append(f"{key}: {r['connectionFailures']} connections failed in the closed-loop run")

    targets = []
    proxy = rows.get("proxy", {})
    if proxy.get("throughput") and nginx.get("throughput"):
        q = proxy["throughput"] / nginx["throughput"]
        targets.append(f"pass-through throughput ≥ nginx's: {'MET' if q >= 1 else 'MISSED'} ({q:.2f}× nginx)")
    if proxy.get("cpuMicrosecondsPerCall") and nginx.get("cpuMicrosecondsPerCall"):
        q = proxy["cpuMicrosecondsPerCall"] / nginx["cpuMicrosecondsPerCall"]
        targets.append(f"proxy CPU per message ≤ 1.5× nginx's: {'MET' if q <= 1.5 else 'MISSED'} ({q:.2f}×)")
    if proxy.get("halfP99") is not None and direct.get("halfP99") is not None:
        added = proxy["halfP99"] - direct["halfP99"]
        targets.append(f"added p99 at half of saturation ≤ 1 ms over direct: {'MET' if added <= 1000 else 'MISSED'} ({added:+,.0f} µs)")
    if proxy.get("idleKiBPerCharger") is not None:
        kib = proxy["idleKiBPerCharger"]
        targets.append(f"idle memory ≤ 16 KiB per charger (both links): {'MET' if kib <= 16 else 'MISSED'} ({kib:.1f} KiB)")
        base = (proxy.get("idleRssBeforeKiB") or 0) / 1024 / 1024
        need = base + 50_000 * kib / 1024 / 1024
        limit = resources.get("fdHardLimit")
        targets.append(
            f"50,000 chargers on one 24 GiB node: extrapolated {need:.2f} GiB of RSS for 50,000 (memory allows it); "
            f"not run here: the file-descriptor hard limit {limit} allows one process about {((limit or 0) - 64) // 2:,} chargers (2 descriptors each)")
    translation = rows.get("translation", {})
    if translation.get("throughput") and nginx.get("throughput"):
        q = translation["throughput"] / nginx["throughput"]
        errors = translation.get("errored", 0) + translation.get("bootRejected", 0)
        targets.append(
            f"translation 1.6 → 2.0.1 throughput ≥ 0.6× nginx pass-through: {'MET' if q >= 0.6 else 'MISSED'} ({q:.2f}× nginx"
            + (f"; {errors} CALLs errored, so not a valid run)" if errors else ")"))
        if proxy.get("throughput"):
            extra = ""
            if proxy.get("cpuMicrosecondsPerCall") and translation.get("cpuMicrosecondsPerCall"):
                extra = (f", CPU per CALL {translation['cpuMicrosecondsPerCall']:.1f} µs against "
                         f"{proxy['cpuMicrosecondsPerCall']:.1f} µs ({translation['cpuMicrosecondsPerCall'] / proxy['cpuMicrosecondsPerCall']:.2f}×)")
            notes.append(f"translation against the proxy's pass-through: throughput {translation['throughput'] / proxy['throughput']:.2f}×{extra}")
    elif "translation" in machine.get("setups", "translation"):
        targets.append("translation 1.6 → 2.0.1 throughput ≥ 0.6× nginx pass-through: not measured in this run")
    soap = rows.get("soap", {})
    if soap.get("throughput") and proxy.get("throughput"):
        extra = ""
        if proxy.get("cpuMicrosecondsPerCall") and soap.get("cpuMicrosecondsPerCall"):
            extra = (f", CPU per CALL {soap['cpuMicrosecondsPerCall']:.1f} µs against "
                     f"{proxy['cpuMicrosecondsPerCall']:.1f} µs ({soap['cpuMicrosecondsPerCall'] / proxy['cpuMicrosecondsPerCall']:.2f}×)")
        errors = soap.get("errored", 0) + soap.get("bootRejected", 0)
        notes.append(f"SOAP {soap_version} chargers against the same load over 1.6-J through the pass-through: throughput "
                     f"{soap['throughput'] / proxy['throughput']:.2f}×{extra}"
                     + (f"; {errors} CALLs errored, so not a valid run" if errors else ""))

    audit_targets = []
    for (suffix, feature, issue, bound), base in ((v, b) for v in VARIANTS for b in ("proxy", "translation", "soap")):
        off, on = rows.get(base, {}), rows.get(base + suffix, {})
        if len(on) <= 1 or len(off) <= 1:
            continue
        parts = []
        if on.get("cpuMicrosecondsPerCall") and off.get("cpuMicrosecondsPerCall"):
            q = on["cpuMicrosecondsPerCall"] / off["cpuMicrosecondsPerCall"]
            parts.append(f"CPU per CALL {on['cpuMicrosecondsPerCall']:.1f} against {off['cpuMicrosecondsPerCall']:.1f} µs ({q - 1:+.1%})")
            audit_targets.append(f"issue {issue}, {base}: ≤ {bound - 1:.0%} more CPU per CALL with {feature}: "
                                 f"{'MET' if q <= bound else 'MISSED'} ({q - 1:+.1%})")
        if on.get("throughput") and off.get("throughput"):
            parts.append(f"throughput {on['throughput'] / off['throughput']:.2f}×")
        if on.get("halfP99") is not None and off.get("halfP99") is not None and same_rate(on.get("halfRate"), off.get("halfRate")):
            added = on["halfP99"] - off["halfP99"]
            parts.append(f"p99 at half load {on['halfP99']:,.0f} against {off['halfP99']:,.0f} µs ({added:+,.0f} µs)")
            if suffix == "-audit":
                audit_targets.append(f"issue 14, {base}: no added p99 beyond 1 ms at half load with audit on: {'MET' if added <= 1000 else 'MISSED'} ({added:+,.0f} µs)")
        if on.get("closedAuditRecords"):
            parts.append(f"{on['closedAuditRecords']:,} records in the closed loop ({on.get('auditRecordsPerCall', 0):.2f} per CALL, "
                         f"{on.get('auditBytesPerRecord', 0):.0f} bytes each), audit verify passed")
            if on.get("closedAuditDropped"):
                parts.append(f"{on['closedAuditDropped']:,} records DROPPED in the closed loop (the writer fell behind: "
                             "gap records; the CPU figure then leaves their cost out)")
        if on.get("halfAuditDropped"):
            parts.append(f"{on['halfAuditDropped']:,} records dropped at half load")
        notes.append(f"{feature} against off, {base}: " + "; ".join(parts))

    text = ["## ocpp-proxy benchmark", ""]
    if machine:
        text.append(
            f"{machine.get('date', '')} · {machine.get('nproc', '?')} cores ({machine.get('cpu', '?')}) · "
            f"{machine.get('memory', '?')} · kernel {machine.get('kernel', '?')} · {machine.get('chargers', '?')} chargers, "
            f"scenario {machine.get('scenario', '?')}, {machine.get('duration', '?')} s per run · nginx {machine.get('nginx', '?')} "
            f"with {machine.get('nginxWorkers', '?')} worker(s) · proxy built {machine.get('proxyBinary', '?')} "
            f"from {machine.get('commit', '?')}")
        text.append("")
    text += lines + [""] + [f"- {n}" for n in notes] + [""] + ["Targets (issue 5):"] + [f"- {t}" for t in targets]
    if audit_targets:
        text += ["", "Targets (a feature on vs off in this run):"] + [f"- {t}" for t in audit_targets]
    out = "\n".join(text) + "\n"
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(out)
    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump({"machine": machine, "rows": rows, "targets": targets + audit_targets, "notes": notes}, f, indent=2, sort_keys=True)
    print(out)


if __name__ == "__main__":
    main()
