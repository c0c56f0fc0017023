#!/usr/bin/env python3
"""Minimal reproducers of what ``fuzz_proxy.py`` found, one subcommand each (exit 1: reproduced, 0: not).

    .venv/bin/python Tests/Fuzz/repros.py unowned-session      # translation: SIGABRT, unowned TranslationLink.session
    .venv/bin/python Tests/Fuzz/repros.py early-csms-frames    # a CSMS's CALLs right after the upstream 101 are lost
    .venv/bin/python Tests/Fuzz/repros.py early-fragmented     # ... and a fragmented one can close the link with 1002
    .venv/bin/python Tests/Fuzz/repros.py callerror-codes      # translation relays CALLERROR codes its target lacks
    .venv/bin/python Tests/Fuzz/repros.py multiple-of-tenth    # translation sends a 1.6 limit that is no multiple of 0.1

Each starts ``.build/debug/ocpp-proxy`` (or ``--binary`` / OCPP_PROXY_BIN) on loopback ports in a temporary
directory, like the interop suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "Interop"))
sys.path.insert(0, str(HERE))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from fuzz_proxy import ERROR_CODES, REPO_ROOT, schema_problems, strict_json, symbolize  # noqa: E402
from harness import LOCALHOST, RULES_DIR, ProxyProcess, default_config, free_port  # noqa: E402

V16, V201 = "ocpp1.6", "ocpp2.0.1"


async def proxy_for(binary: Path, workdir: Path, upstream_url: str, upstream: str, translate: bool) -> ProxyProcess:
    cfg = default_config(free_port(), free_port(), upstream_url, upstream)
    cfg["logging"]["level"] = "error"
    if translate:
        cfg["listeners"][0]["versions"] = [V16, V201]
        cfg["rules"] = str(RULES_DIR)
        cfg["state"] = {"sqlite": str(workdir / "state.sqlite")}
    proxy = ProxyProcess(binary, workdir, cfg, [], {"SWIFT_BACKTRACE": "enable=no"})
    proxy.start()
    await proxy.wait_ready()
    return proxy


async def unowned_session(binary: Path, workdir: Path) -> bool:
    """A translated 1.6 charger sends StartTransaction (a state write) and at once a binary frame (close 1003):
    the write completes after the session is gone and ``TranslationLink.send`` reads its unowned ``session``."""
    async def csms(ws):
        async for _ in ws:
            pass
    server = await serve(csms, LOCALHOST, 0, subprotocols=[V201])
    proxy = await proxy_for(binary, workdir, f"ws://{LOCALHOST}:{server.sockets[0].getsockname()[1]}/ocpp", V201, True)
    try:
        for i in range(100):
            try:
                ws = await connect(proxy.url("CPX"), subprotocols=[V16])
            except Exception:  # noqa: BLE001 - the proxy is gone
                break
            await ws.send(json.dumps([2, f"s{i}", "StartTransaction", {
                "connectorId": 1, "idTag": "TAG", "meterStart": i, "timestamp": "2026-01-01T00:00:00Z"}]))
            await ws.send(b"\x00")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), 5)
            if proxy.proc.poll() is not None:
                break
        await asyncio.sleep(0.5)
        if proxy.proc.poll() is None:
            print("the proxy survived 100 rounds")
            return False
        stderr = proxy.stderr()
        print(f"the proxy exited with status {proxy.proc.returncode} in round {i}:\n{stderr.splitlines()[0]}")
        print("\n".join("  at " + line for line in symbolize(stderr, binary, limit=10)))
        return True
    finally:
        proxy.kill()
        server.close()


async def early_csms_frames(binary: Path, workdir: Path, fragmented: bool = False) -> bool:
    """The CSMS sends one CALL (``fragmented``: in three fragments) the moment it accepts the upstream upgrade;
    the charger should receive it every time."""
    closes: list[str] = []

    async def csms(ws):
        data = json.dumps([2, "e0", "ClearCache", {}]).encode()
        await (ws.send([data[:5], data[5:12], data[12:]], text=True) if fragmented else ws.send(data, text=True))
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: BLE001
            pass
        closes.append(str(ws.protocol.close_rcvd))
    server = await serve(csms, LOCALHOST, 0, subprotocols=[V16])
    proxy = await proxy_for(binary, workdir, f"ws://{LOCALHOST}:{server.sockets[0].getsockname()[1]}/ocpp", V16, False)
    got = lost = 0
    try:
        for attempt in range(20):
            charger = await connect(proxy.url(f"CPE{attempt}"), subprotocols=[V16])
            try:
                await asyncio.wait_for(charger.recv(), 1.5)
                got += 1
            except Exception:  # noqa: BLE001 - timeout or closed: the CALL did not arrive
                lost += 1
            await charger.close()
        await asyncio.sleep(0.3)
    finally:
        proxy.kill()
        server.close()
    protocol_errors = sum("1002" in c for c in closes)
    print(f"the charger got the CSMS's first CALL on {got} of 20 connections; lost on {lost}; "
          f"CSMS links closed by the proxy with 1002: {protocol_errors}")
    return lost > 0 or protocol_errors > 0


async def callerror_codes(binary: Path, workdir: Path) -> bool:
    """The 2.0.1 CSMS answers a translated CALL with CALLERROR code "Foo" (and ""): what does the 1.6 charger get?"""
    reproduced = False
    for code in ("Foo", ""):
        async def csms(ws, code=code):
            async for message in ws:
                await ws.send(json.dumps([4, json.loads(message)[1], code, "x", {}]))
        server = await serve(csms, LOCALHOST, 0, subprotocols=[V201])
        proxy = await proxy_for(binary, workdir / f"code{len(code)}",
                                f"ws://{LOCALHOST}:{server.sockets[0].getsockname()[1]}/ocpp", V201, True)
        try:
            charger = await connect(proxy.url("CPC"), subprotocols=[V16])
            await charger.send('[2,"h1","Heartbeat",{}]')
            answer = json.loads(await asyncio.wait_for(charger.recv(), 10))
            print(f"CSMS code {code!r} -> the 1.6 charger got {answer}")
            reproduced |= answer[0] == 4 and answer[2] not in ERROR_CODES[V16]
        finally:
            proxy.kill()
            server.close()
    return reproduced


async def multiple_of_tenth(binary: Path, workdir: Path) -> bool:
    """A 2.0.1 SetChargingProfile with limit 3.25 (valid in 2.0.1) becomes a 1.6 SetChargingProfile whose limit
    breaks the 1.6 schema (multipleOf 0.1)."""
    upstream: asyncio.Queue = asyncio.Queue()

    async def csms(ws):
        await upstream.put(ws)
        await ws.wait_closed()
    server = await serve(csms, LOCALHOST, 0, subprotocols=[V201])
    proxy = await proxy_for(binary, workdir, f"ws://{LOCALHOST}:{server.sockets[0].getsockname()[1]}/ocpp", V201, True)
    try:
        charger = await connect(proxy.url("CPM"), subprotocols=[V16])
        ws = await asyncio.wait_for(upstream.get(), 10)
        await charger.send('[2,"b1","Heartbeat",{}]')  # let the link settle (see early-csms-frames)
        heartbeat = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps([3, heartbeat[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        await asyncio.wait_for(charger.recv(), 10)
        await ws.send(json.dumps([2, "p1", "SetChargingProfile", {"evseId": 1, "chargingProfile": {
            "id": 37, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3.25}]}]}}]))
        frame, _ = strict_json(await asyncio.wait_for(charger.recv(), 10))
        problems = schema_problems(V16, frame[2], "request", frame[3]) if frame[0] == 2 else []
        print(f"the 1.6 charger got {json.dumps(frame, default=str)}\nschema problems: {problems}")
        return bool(problems)
    finally:
        proxy.kill()
        server.close()


CASES = {
    "unowned-session": unowned_session,
    "early-csms-frames": early_csms_frames,
    "early-fragmented": lambda b, w: early_csms_frames(b, w, fragmented=True),
    "callerror-codes": callerror_codes,
    "multiple-of-tenth": multiple_of_tenth,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--binary", default=os.environ.get("OCPP_PROXY_BIN", str(REPO_ROOT / ".build/debug/ocpp-proxy")))
    args = parser.parse_args()
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="ocpp-repro-") as tmp:
        reproduced = asyncio.run(CASES[args.case](Path(args.binary), Path(tmp)))
    print("REPRODUCED" if reproduced else "not reproduced")
    return 1 if reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
