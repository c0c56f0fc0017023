#!/usr/bin/env python3
"""Checks that ocpp-bench speaks schema-valid OCPP: a validating relay between `ocpp-bench load` and
`ocpp-bench sink`.

Every CALL from the load generator is checked against the request schema of its action, and every
CALLRESULT from the sink against the response schema, with the JSON schemas shipped in the `ocpp` package
(the one the interop suite uses). Needs the project's .venv (`make venv`) and the release ocpp-bench.

A third pass runs the 1.6 load through ocpp-proxy translating to 2.0.1 (the benchmark's translation setup,
rules from Rules/) with the relay between the proxy and the sink: every translated CALL is checked against the
2.0.1 request schemas and every answer of the sink against the response schemas; the load must see no
CALLERROR. It needs the release ocpp-proxy beside ocpp-bench and is skipped without it.

    .venv/bin/python Benchmarks/validate_payloads.py            # three passes, a few seconds each
    BUILD_PATH=.build-bench/release .venv/bin/python Benchmarks/validate_payloads.py   # binaries from there

Exits 1 and prints every violation when a payload does not validate.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile

import jsonschema
import ocpp
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_PATH = os.path.join(ROOT, os.environ.get("BUILD_PATH", os.path.join(".build", "release")))
BENCH = os.path.join(BUILD_PATH, "ocpp-bench")
PROXY = os.path.join(BUILD_PATH, "ocpp-proxy")
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


async def wait_port(port, process, timeout=15):
    for _ in range(int(timeout / 0.05)):
        if process.returncode is not None:
            return False
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return True
        except OSError:
            await asyncio.sleep(0.05)
    return False


async def relay_run(version, sink_port, translate=False):
    """load → relay → sink; with translate, load (1.6) → ocpp-proxy translating → relay (2.0.1) → sink."""
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
    results = tempfile.NamedTemporaryFile(prefix="validate-load-", suffix=".json", delete=False)
    results.close()
    async with serve(handler, "127.0.0.1", port, subprotocols=[version]):
        url, load_version, proxy, workdir, out = f"ws://127.0.0.1:{port}/ocpp", version, None, None, b""
        try:
            if translate:
                workdir = tempfile.TemporaryDirectory(prefix="validate-translation-")
                proxy_port, admin_port = free_port(), free_port()
                config = os.path.join(workdir.name, "proxy.yaml")
                with open(config, "w") as f:
                    f.write(f"""listeners:
  - name: validate
    host: 127.0.0.1
    port: {proxy_port}
    path: /ocpp
    versions: [ocpp1.6]
upstream:
  url: ws://127.0.0.1:{port}/ocpp
  version: {version}
rules: {os.path.join(ROOT, "Rules")}
state:
  sqlite: {os.path.join(workdir.name, "state.sqlite")}
admin:
  host: 127.0.0.1
  port: {admin_port}
""")
                log = open(os.path.join(workdir.name, "proxy.log"), "w")
                proxy = await asyncio.create_subprocess_exec(PROXY, "serve", "--config", config, stdout=log, stderr=log)
                if not await wait_port(proxy_port, proxy):
                    url = None
                    problems.append("ocpp-proxy (translation) did not start")
                load_version = "ocpp1.6"
                if url:
                    url = f"ws://127.0.0.1:{proxy_port}/ocpp"
            if url:
                load = await asyncio.create_subprocess_exec(
                    BENCH, "load", "--url", url, "--version", load_version, "--chargers", "4",
                    "--duration", "3s", "--scenario", "mixed", "--quiet", "--json", results.name, stdout=subprocess.PIPE)
                out, _ = await asyncio.wait_for(load.communicate(), timeout=60)
        finally:
            if proxy and proxy.returncode is None:
                proxy.terminate()
                await asyncio.wait_for(proxy.wait(), timeout=10)
    if out:
        print(out.decode().strip())
    try:
        with open(results.name) as f:
            calls = json.load(f)["calls"]
        if calls["errored"] or calls["timedOut"] or calls["bootNotificationsRejected"]:
            problems.append(
                f"{'translation ' if translate else ''}{version}: the load saw {calls['errored']} CALLERRORs, "
                f"{calls['timedOut']} timeouts, {calls['bootNotificationsRejected']} rejected boots"
                + (" (the proxy's log follows)" if workdir else ""))
    except (OSError, ValueError, KeyError) as e:
        problems.append(f"{'translation ' if translate else ''}{version}: no results from the load ({e})")
    finally:
        os.unlink(results.name)
    if workdir and problems:
        print("ocpp-proxy log (last 4,000 characters):")
        print(open(os.path.join(workdir.name, "proxy.log")).read()[-4000:])
    if workdir:
        workdir.cleanup()
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
        passes = [("ocpp1.6", False), ("ocpp2.0.1", False)]
        if os.access(PROXY, os.X_OK):
            passes.append(("ocpp2.0.1", True))
        else:
            print(f"no {PROXY}: skipping the translation pass")
        for version, translate in passes:
            problems, seen = asyncio.run(relay_run(version, sink_port, translate))
            name = "ocpp1.6 → ocpp2.0.1 (translated by ocpp-proxy)" if translate else version
            print(f"{name}: validated " + ", ".join(f"{k}×{v}" for k, v in sorted(seen.items())))
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
