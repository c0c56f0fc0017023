#!/usr/bin/env python3
"""Checks that ocpp-bench speaks schema-valid OCPP: a validating relay between `ocpp-bench load` and
`ocpp-bench sink`.

Every CALL from the load generator is checked against the request schema of its action, and every
CALLRESULT from the sink against the response schema, with the JSON schemas shipped in the `ocpp` package
(the one the interop suite uses). Needs the project's .venv (`make venv`) and the release ocpp-bench.

    .venv/bin/python Benchmarks/validate_payloads.py            # both versions, a few seconds each

Exits 1 and prints every violation when a payload does not validate.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys

import jsonschema
import ocpp
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, ".build", "release", "ocpp-bench")
SCHEMAS = os.path.join(os.path.dirname(ocpp.__file__))


def schema(version, action, response):
    if version == "ocpp1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
        path = os.path.join(SCHEMAS, "v16", "schemas", name)
    else:
        name = f"{action}{'Response' if response else 'Request'}.json"
        path = os.path.join(SCHEMAS, "v201", "schemas", name)
    with open(path) as f:
        return json.load(f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def relay_run(version, sink_port):
    problems, seen = [], {}
    pending = {}

    def check(action, payload, response):
        key = f"{action}{'.conf' if response else ''}"
        seen[key] = seen.get(key, 0) + 1
        try:
            jsonschema.validate(payload, schema(version, action, response))
        except jsonschema.ValidationError as e:
            problems.append(f"{version} {key}: {e.message} in {json.dumps(payload)}")

    async def handler(charger):
        path = charger.request.path
        async with connect(f"ws://127.0.0.1:{sink_port}{path}", subprotocols=[version]) as csms:
            async def up():
                async for message in charger:
                    frame = json.loads(message)
                    if frame[0] == 2:
                        pending[(path, frame[1])] = frame[2]
                        check(frame[2], frame[3], False)
                    await csms.send(message)

            async def down():
                async for message in csms:
                    frame = json.loads(message)
                    if frame[0] == 3:
                        action = pending.pop((path, frame[1]), None)
                        if action:
                            check(action, frame[2], True)
                    else:
                        problems.append(f"{version}: unexpected frame from the sink {message}")
                    await charger.send(message)

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()

    port = free_port()
    async with serve(handler, "127.0.0.1", port, subprotocols=[version]):
        load = await asyncio.create_subprocess_exec(
            BENCH, "load", "--url", f"ws://127.0.0.1:{port}/ocpp", "--version", version, "--chargers", "4",
            "--duration", "3s", "--scenario", "mixed", "--quiet", stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(load.communicate(), timeout=60)
    print(out.decode().strip())
    return problems, seen


def main():
    sink_port = free_port()
    sink = subprocess.Popen([BENCH, "sink", "--port", str(sink_port), "--lifetime", "300"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", sink_port), timeout=0.1).close()
                break
            except OSError:
                asyncio.run(asyncio.sleep(0.05))
        failures = []
        for version in ("ocpp1.6", "ocpp2.0.1"):
            problems, seen = asyncio.run(relay_run(version, sink_port))
            print(f"{version}: validated " + ", ".join(f"{k}×{v}" for k, v in sorted(seen.items())))
            failures += problems
        for p in sorted(set(failures)):
            print("INVALID", p)
        print(f"{len(failures)} schema violations")
        sys.exit(1 if failures else 0)
    finally:
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
