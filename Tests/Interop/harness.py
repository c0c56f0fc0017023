"""Shared helpers for the ocpp-proxy interop suite.

Everything here talks to the proxy from the outside only: it starts the
binary as a subprocess, speaks HTTP and WebSocket to its listeners, and plays
the CSMS on the upstream side.

Every proxy of the suite (and of ``Tests/Fuzz``) is configured by the one
builder ``proxy_config`` (listener entries: ``listener``; pass-through,
secured listeners and translation are options of it) and started by the one
starter ``start_proxy``; in tests both are reached through the ``h`` fixture
(``h.config``, ``h.proxy``, ``h.pair``, ``h.restart``).  The security and
translation helpers add only their own sections and peers.

Three kinds of peers are provided:

* real OCPP peers built on the ``ocpp`` package (schema validation on), with a
  ``Recorder`` around the connection that keeps every raw frame;
* raw ``websockets`` peers (charger client / CSMS server) for malformed input;
* a hand-written minimal WebSocket implementation (``RawWebSocket``) for the
  cases a real library refuses to do: not answering pings, sending a close
  frame without a status code, ignoring the closing handshake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import websockets
import yaml
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = REPO_ROOT / "Rules"
LOCALHOST = "127.0.0.1"

V16, V201, V21 = "ocpp1.6", "ocpp2.0.1", "ocpp2.1"
VERSIONS = (V16, V201, V21)
PROMETHEUS_SAMPLE = re.compile(
    r'^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$'
)
PROMETHEUS_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')

# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------


_HANDED_OUT_PORTS: set[int] = set()


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (bind to 0, read it, close).

    The kernel may give the same ephemeral port to two binds in a row once the first socket is closed, so a
    port already handed out in this test run is never handed out again (a listener and the admin endpoint of
    one proxy once got the same port).
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT_PORTS:
            _HANDED_OUT_PORTS.add(port)
            return port


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base``; a value of ``None`` deletes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def find_proxy_binary() -> Path | None:
    env = os.environ.get("OCPP_PROXY_BIN")
    if env:
        return Path(env)
    candidate = REPO_ROOT / ".build" / "debug" / "ocpp-proxy"
    return candidate if candidate.exists() else None


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05):
    """Poll a (possibly async) predicate until truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_event(event: asyncio.Event, what: str, timeout: float = 5.0) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {timeout}s") from None


def parse_frame(text: str | bytes) -> Any:
    return json.loads(text)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, reason, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # trailers until blank line (or EOF)
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                return body
            body += await reader.readexactly(size)
            await reader.readline()
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def http_request(
    port: int,
    path: str,
    method: str = "GET",
    host: str = LOCALHOST,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> HttpResponse:
    """A minimal HTTP/1.1 client (one request per connection)."""

    async def run() -> HttpResponse:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            hdrs = {"Host": f"{host}:{port}", "Connection": "close", "Accept": "*/*"}
            if body or method in ("POST", "PUT", "PATCH"):
                hdrs["Content-Length"] = str(len(body))
            hdrs.update(headers or {})
            request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
            writer.write(request.encode("latin-1") + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, reason, rheaders = _parse_head(head[:-4])
            data = b"" if method == "HEAD" else await _read_body(reader, rheaders)
            return HttpResponse(status, reason, rheaders, data)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.wait_for(run(), timeout)


async def raw_http_exchange(port: int, request: bytes, host: str = LOCALHOST, timeout: float = 10.0):
    """Send raw bytes, return (status, headers, reader, writer) after the response head."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status, _reason, headers = _parse_head(head[:-4])
    return status, headers, reader, writer


# ---------------------------------------------------------------------------
# Prometheus text format
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    samples: list[Sample] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PROMETHEUS_SAMPLE.match(line)
        if not m:
            raise AssertionError(f"unparseable Prometheus line: {line!r}")
        labels = {}
        if m.group("labels"):
            for lm in PROMETHEUS_LABEL.finditer(m.group("labels")):
                labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        raw = m.group("value")
        value = float("inf") if raw == "+Inf" else float("-inf") if raw == "-Inf" else float(raw)
        samples.append(Sample(m.group("name"), labels, value))
    return samples


def find_samples(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def metric_value(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of all samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    return sum(s.value for s in find_samples(samples, name, **labels))


# ---------------------------------------------------------------------------
# the proxy's configuration (the one builder: every proxy of the suite and of Tests/Fuzz starts from it)
# ---------------------------------------------------------------------------


def listener(port: int, profile: int | None = None, *, name: str = "chargers", versions: Iterable[str] = VERSIONS,
             path: str = "/ocpp", tls: dict | None = None, unknown_chargers: str | None = None,
             transport: str | None = None, **options: Any) -> dict:
    """One ``listeners[]`` entry; ``profile`` is its ``securityProfile``, ``transport`` its ``transport``
    (``websocket`` when absent; ``soap`` for OCPP-S chargers), ``options`` further keys as written."""
    entry: dict[str, Any] = {"name": name, "host": LOCALHOST, "port": port, "path": path, "versions": list(versions)}
    if transport is not None:
        entry["transport"] = transport
    if profile is not None:
        entry["securityProfile"] = profile
    if unknown_chargers is not None:
        entry["unknownChargers"] = unknown_chargers
    if tls is not None:
        entry["tls"] = tls
    entry.update(options)
    return entry


def proxy_config(
    upstream_url: str,
    upstream_version: str = V16,
    *,
    listener_port: int | None = None,
    admin_port: int | None = None,
    versions: Iterable[str] | None = None,
    listener_options: dict | None = None,
    listeners: list[dict] | None = None,
    upstream_options: dict | None = None,
    chargers: list[dict] | str | None = None,
    lockout: dict | None = None,
    translate: bool = False,
    rules: Path | str = RULES_DIR,
    state: Path | str | None = None,
    soap: dict | None = None,
    overrides: dict | None = None,
) -> dict:
    """The configuration of every proxy the suite (and ``Tests/Fuzz``) starts.

    One listener ``chargers`` on ``/ocpp`` (free port unless given) offering ``versions`` (all three; 1.6 and
    2.0.1 when translating) with ``listener_options`` merged in -- or ``listeners`` instead of it; the upstream
    with ``upstream_options`` merged in; an admin endpoint (free port unless given); debug text logs.
    ``translate``: ``rules`` (the repository's Rules directory) and a ``state`` file (required).  ``chargers``,
    ``lockout``, ``state`` and ``soap`` (the SOAP transport's settings) become their sections.  ``overrides`` is deep-merged last (``None`` deletes a key).
    """
    if versions is None:
        versions = (V16, V201) if translate else VERSIONS
    if listeners is None:
        port = listener_port if listener_port is not None else free_port()
        listeners = [listener(port, versions=versions, **(listener_options or {}))]
    cfg: dict[str, Any] = {
        "listeners": listeners,
        "duplicateIdentity": "replace",
        "upstream": {"url": upstream_url, "version": upstream_version, "connectTimeout": "2s",
                     **(upstream_options or {})},
        "admin": {"host": LOCALHOST, "port": admin_port if admin_port is not None else free_port()},
        # Every test's chargers come from 127.0.0.1, many reconnect with one identity, some connect by the hundred:
        # the handshake budgets and the upstream pacing are off here, and on in the tests of limits (test_limits.py).
        "limits": {"maxFrameBytes": 65536, "callTimeout": "30s", "handshakes": "off", "handshakesPerAddress": "off",
                   "handshakesPerIdentity": "off", "upstreamConnects": "off", "messages": "off"},
        # A debug build on a busy test machine can be late on its event loops: overload protection is off here, and
        # on in the tests of overload (test_overload.py).
        "overload": "off",
        "keepalive": {"pingInterval": "30s", "pongTimeout": "10s"},
        # A CSMS that closes or drops a link closes its charger at once here (the tests of close propagation);
        # the tests of outages (test_outage.py) turn the grace on.
        "upstreamOutage": "off",
        "logging": {"level": "debug", "format": "text"},
        "shutdown": {"gracePeriod": "5s"},
    }
    if chargers is not None:
        cfg["chargers"] = chargers
    if lockout is not None:
        cfg["lockout"] = lockout
    if soap is not None:
        cfg["soap"] = soap
    if translate:
        assert state is not None, "a translating proxy needs a state file"
    # A SOAP listener reads its message layouts from the rules directory, translating or not.
    if translate or any(item.get("transport") == "soap" for item in listeners):
        cfg["rules"] = str(rules)
    if state is not None:
        cfg["state"] = {"sqlite": str(state)}
    return deep_merge(cfg, overrides) if overrides else cfg


def default_config(listener_port: int, admin_port: int, upstream_url: str, upstream_version: str) -> dict:
    """``proxy_config`` with both ports given, positionally (the form ``Tests/Fuzz`` calls)."""
    return proxy_config(upstream_url, upstream_version, listener_port=listener_port, admin_port=admin_port)


# ---------------------------------------------------------------------------
# the proxy process
# ---------------------------------------------------------------------------


class ProxyProcess:
    """One running ``ocpp-proxy serve`` with its config, ports and captured output."""

    def __init__(
        self, binary: Path, workdir: Path, config: dict, extra_args: list[str], env: dict | None, run: int = 0
    ):
        self.binary = binary
        self.workdir = workdir
        self.config = config
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "proxy.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        # a restarted proxy (same workdir, ``run`` > 0) keeps the output of the earlier runs
        suffix = f".run{run}" if run else ""
        self.stderr_path = workdir / f"proxy{suffix}.stderr"
        self.stdout_path = workdir / f"proxy{suffix}.stdout"
        self.run = run
        self.extra_args = extra_args
        self.env_overrides = env
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    # -- addresses ---------------------------------------------------------
    @property
    def listener(self) -> dict:
        return self.config["listeners"][0]

    @property
    def port(self) -> int:
        return self.listener["port"]

    @property
    def path(self) -> str:
        return self.listener.get("path", "/ocpp")

    @property
    def admin_port(self) -> int:
        return self.config["admin"]["port"]

    def url(self, identity: str) -> str:
        """WebSocket URL for a charger; ``websockets`` percent-encodes the identity itself."""
        return f"ws://{LOCALHOST}:{self.port}{self.path}/{identity}"

    @property
    def soap_url(self) -> str:
        """The central system URL of the first ``transport: soap`` listener (SOAP chargers POST to it)."""
        entry = next((e for e in self.config["listeners"] if e.get("transport") == "soap"), None)
        assert entry is not None, "this proxy has no listener with transport: soap"
        scheme = "https" if entry.get("tls") else "http"
        return f"{scheme}://{LOCALHOST}:{entry['port']}{entry.get('path', '/ocpp')}"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        args = [str(self.binary), "serve", "--config", str(self.config_path), *self.extra_args]
        self._stderr_file = open(self.stderr_path, "wb")
        self._stdout_file = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._stdout_file, stderr=self._stderr_file, env=self.env
        )

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, limit: int = 12000) -> str:
        text = self.stderr()
        if len(text) > limit:
            text = "...(truncated)...\n" + text[-limit:]
        return f"\n--- proxy stderr ({self.stderr_path}) ---\n{text}\n--- end of proxy stderr ---"

    async def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"ocpp-proxy exited with status {rc} before becoming ready{self.describe()}")
            try:
                resp = await http_request(self.admin_port, "/readyz", timeout=1.0)
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.05)
        raise AssertionError(f"ocpp-proxy not ready within {timeout}s (/readyz: {last}){self.describe()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self._finish(rc)
                return rc
            await asyncio.sleep(0.02)
        return None

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal, wait (bounded), kill -9 if needed; returns the exit status."""
        if self.returncode is not None:
            return self.returncode
        self.send_signal(sig)
        rc = await self.wait_exit(timeout)
        if rc is None:
            self.proc.kill()
            self.proc.wait(5)
            self._finish(self.proc.returncode)
            raise AssertionError(f"ocpp-proxy did not exit within {timeout}s after signal {sig}; killed{self.describe()}")
        return rc

    def _finish(self, rc: int) -> None:
        self.returncode = rc
        for f in (getattr(self, "_stderr_file", None), getattr(self, "_stdout_file", None)):
            if f and not f.closed:
                f.close()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        if self.proc is not None and self.returncode is None:
            self._finish(self.proc.returncode)

    # -- admin helpers -----------------------------------------------------
    async def admin(self, path: str, method: str = "GET") -> HttpResponse:
        return await http_request(self.admin_port, path, method=method)

    async def metrics(self) -> list[Sample]:
        resp = await self.admin("/metrics")
        assert resp.status == 200, f"/metrics answered {resp.status}{self.describe()}"
        return parse_prometheus(resp.text)

    async def chargers(self) -> list[dict]:
        resp = await self.admin("/api/chargers")
        assert resp.status == 200, f"/api/chargers answered {resp.status}{self.describe()}"
        return resp.json()["chargers"]


async def start_proxy(binary: Path, workdir: Path, config: dict, *, extra_args: list[str] | None = None,
                      env: dict | None = None, run: int = 0, wait_ready: bool = True,
                      started: list | None = None) -> ProxyProcess:
    """Start ``ocpp-proxy serve`` with ``config`` written to ``workdir/proxy.yaml``; await ``/readyz``.

    ``started`` (a list) gets the process before it is awaited, so that whoever owns the list stops a
    proxy that never becomes ready; ``run`` > 0 restarts in the same ``workdir`` (earlier output kept).
    """
    proc = ProxyProcess(binary, workdir, config, list(extra_args or []), env, run=run)
    proc.start()
    if started is not None:
        started.append(proc)
    if wait_ready:
        await proc.wait_ready()
    return proc


def run_cli(
    binary: Path, *args: str, env: dict | None = None, timeout: float = 20.0, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
        cwd=cwd,
    )


# ---------------------------------------------------------------------------
# recording wrapper for ocpp.ChargePoint connections
# ---------------------------------------------------------------------------


class Recorder:
    """Wraps a websockets connection; keeps every text frame sent and received."""

    def __init__(self, connection):
        self.connection = connection
        self.sent: list[str] = []
        self.received: list[str] = []
        self._received_event = asyncio.Event()

    async def recv(self):
        message = await self.connection.recv()
        self.received.append(message)
        self._received_event.set()
        return message

    async def send(self, message):
        self.sent.append(message)
        await self.connection.send(message)

    def sent_frames(self) -> list:
        return [json.loads(m) for m in self.sent]

    def received_frames(self) -> list:
        return [json.loads(m) for m in self.received]


async def _run_charge_point(cp) -> None:
    with contextlib.suppress(websockets.ConnectionClosed, asyncio.CancelledError):
        await cp.start()


# ---------------------------------------------------------------------------
# CSMS side
# ---------------------------------------------------------------------------


@dataclass
class CsmsSession:
    identity: str
    path: str
    subprotocol: str | None
    connection: Any
    recorder: Recorder | None = None
    cp: Any = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str | None = None

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    # raw access (RawCsms sessions)
    async def recv_json(self, timeout: float = 5.0) -> Any:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def send_json(self, frame: Any) -> None:
        await self.connection.send(json.dumps(frame))


class _CsmsBase:
    """A ``websockets`` server standing in for the CSMS; records sessions and handshakes."""

    def __init__(self, subprotocols: list[str] | None, process_request=None, host: str = LOCALHOST,
                 listen_port: int = 0):
        self.subprotocols = subprotocols
        self.host = host
        # A fixed port lets a test stop this CSMS and start another where the proxy expects it (an outage).
        self.listen_port = listen_port
        self._user_process_request = process_request
        self.server = None
        self.sessions: list[CsmsSession] = []
        self.handshake_paths: list[str] = []
        self._queue: asyncio.Queue[CsmsSession] = asyncio.Queue()

    async def start(self):
        kwargs: dict[str, Any] = dict(ping_interval=None, max_size=None, process_request=self._process_request)
        if self.subprotocols is not None:
            kwargs["subprotocols"] = self.subprotocols
        self.server = await ws_serve(self._handler, self.host, self.listen_port, **kwargs)
        return self

    def _process_request(self, connection, request):
        self.handshake_paths.append(request.path)
        if self._user_process_request is not None:
            return self._user_process_request(connection, request)
        return None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Base URL for ``upstream.url`` (the proxy appends ``/{identity}``)."""
        return f"ws://{LOCALHOST}:{self.port}/ocpp"

    async def next_session(self, timeout: float = 10.0) -> CsmsSession:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the CSMS saw no new upstream connection within {timeout}s") from None

    async def _handler(self, ws):
        path = ws.request.path
        identity = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        session = CsmsSession(identity=identity, path=path, subprotocol=ws.subprotocol, connection=ws)
        self.sessions.append(session)
        try:
            await self._serve(session)
        finally:
            with contextlib.suppress(Exception):
                await ws.wait_closed()
            session.close_code = ws.close_code
            session.close_reason = ws.close_reason
            session.closed.set()

    async def _serve(self, session: CsmsSession):
        raise NotImplementedError

    async def close(self):
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 10)


class RawCsms(_CsmsBase):
    """CSMS whose connections the test drives by hand (``session.connection``)."""

    def __init__(self, version: str | None = "ocpp1.6", **kwargs):
        super().__init__([version] if version else None, **kwargs)

    async def _serve(self, session: CsmsSession):
        self._queue.put_nowait(session)
        await session.connection.wait_closed()


class OcppCsms(_CsmsBase):
    """CSMS built on the ``ocpp`` package (schema validation on both directions)."""

    def __init__(self, version: str = "ocpp1.6", cp_factory=None, **kwargs):
        super().__init__([version], **kwargs)
        self.version = version
        if cp_factory is None:
            from ocpp_peers import csms_class_for

            cp_factory = csms_class_for(version)
        self.cp_factory = cp_factory

    async def _serve(self, session: CsmsSession):
        recorder = Recorder(session.connection)
        session.recorder = recorder
        session.cp = self.cp_factory(session.identity, recorder)
        self._queue.put_nowait(session)
        await _run_charge_point(session.cp)


# ---------------------------------------------------------------------------
# charger side
# ---------------------------------------------------------------------------


async def connect_raw(url: str, subprotocols: list[str] | None = None, open_timeout: float = 10.0, **kwargs):
    """A plain ``websockets`` client connection (no auto-ping, no size limit)."""
    opts: dict[str, Any] = dict(open_timeout=open_timeout, ping_interval=None, max_size=None, close_timeout=5)
    if subprotocols is not None:
        opts["subprotocols"] = subprotocols
    opts.update(kwargs)
    return await ws_connect(url, **opts)


async def recv_json(ws, timeout: float = 5.0) -> Any:
    try:
        message = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no frame received within {timeout}s") from None
    return json.loads(message)


async def expect_closed(ws, timeout: float = 10.0) -> int | None:
    """Wait until a ``websockets`` connection is closed; return the close code received."""
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"connection still open after {timeout}s") from None
    return ws.close_code


@dataclass
class OcppCharger:
    identity: str
    connection: Any
    recorder: Recorder
    cp: Any
    task: asyncio.Task

    async def close(self, code: int = 1000):
        await self.connection.close(code)
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


async def connect_ocpp_charger(url: str, version: str, identity: str, cp_factory=None) -> OcppCharger:
    if cp_factory is None:
        from ocpp_peers import charger_class_for

        cp_factory = charger_class_for(version)
    ws = await connect_raw(url, subprotocols=[version])
    assert ws.subprotocol == version, f"proxy negotiated {ws.subprotocol!r}, expected {version!r}"
    recorder = Recorder(ws)
    cp = cp_factory(identity, recorder)
    task = asyncio.create_task(_run_charge_point(cp))
    return OcppCharger(identity, ws, recorder, cp, task)


# ---------------------------------------------------------------------------
# a tiny WebSocket implementation for misbehaving peers
# ---------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class RawWebSocket:
    """Frame-level WebSocket endpoint over asyncio streams.

    ``answer_pings`` decides whether PINGs are answered; ``answer_close``
    whether a received CLOSE is echoed.  Every received control frame is
    recorded, so tests can await PINGs and the CLOSE code.
    """

    def __init__(self, reader, writer, *, is_client: bool, answer_pings: bool = True, answer_close: bool = True):
        self.reader = reader
        self.writer = writer
        self.is_client = is_client
        self.answer_pings = answer_pings
        self.answer_close = answer_close
        self.pings: list[bytes] = []
        self.ping_event = asyncio.Event()
        self.close_code: int | None = None
        self.close_payload: bytes | None = None
        self.close_received = asyncio.Event()
        self.eof = asyncio.Event()
        self.messages: asyncio.Queue = asyncio.Queue()
        self._reader_task: asyncio.Task | None = None

    def start_reading(self):
        self._reader_task = asyncio.create_task(self._read_loop())
        return self

    async def _read_loop(self):
        try:
            while True:
                opcode, payload = await self._read_frame()
                if opcode == OP_PING:
                    self.pings.append(payload)
                    self.ping_event.set()
                    if self.answer_pings:
                        await self.send_frame(OP_PONG, payload)
                elif opcode == OP_CLOSE:
                    self.close_payload = payload
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self.close_received.set()
                    if self.answer_close:
                        with contextlib.suppress(Exception):
                            await self.send_frame(OP_CLOSE, payload[:2])
                elif opcode in (OP_TEXT, OP_BINARY):
                    self.messages.put_nowait((opcode, payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.eof.set()

    async def _read_frame(self) -> tuple[int, bytes]:
        opcode_acc = None
        data = b""
        while True:
            b1, b2 = await self.reader.readexactly(2)
            fin, opcode = b1 & 0x80, b1 & 0x0F
            masked, length = b2 & 0x80, b2 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            mask = await self.reader.readexactly(4) if masked else None
            payload = await self.reader.readexactly(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode >= 8:
                return opcode, payload
            if opcode != OP_CONT:
                opcode_acc = opcode
            data += payload
            if fin:
                return opcode_acc, data

    async def send_frame(self, opcode: int, payload: bytes = b"") -> None:
        head = bytes([0x80 | opcode])
        mask_bit = 0x80 if self.is_client else 0
        n = len(payload)
        if n < 126:
            head += bytes([mask_bit | n])
        elif n < 65536:
            head += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if self.is_client:
            mask = os.urandom(4)
            head += mask
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + payload)
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self.send_frame(OP_TEXT, text.encode())

    async def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        await self.send_frame(OP_CLOSE, payload)

    async def recv_text(self, timeout: float = 5.0) -> str:
        opcode, payload = await asyncio.wait_for(self.messages.get(), timeout)
        assert opcode == OP_TEXT, f"expected a text frame, got opcode {opcode}"
        return payload.decode()

    async def recv_json(self, timeout: float = 5.0) -> Any:
        return json.loads(await self.recv_text(timeout))

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (RST)."""
        self.writer.transport.abort()

    async def aclose(self) -> None:
        if self._reader_task:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def raw_ws_connect(
    port: int,
    path: str,
    protocols: list[str] | None = None,
    *,
    host: str = LOCALHOST,
    extra_headers: dict[str, str] | None = None,
    answer_pings: bool = True,
    answer_close: bool = True,
    timeout: float = 10.0,
):
    """Hand-made client handshake. Returns (status, headers, RawWebSocket|None)."""
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        "Host": f"{host}:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    if protocols is not None:
        headers["Sec-WebSocket-Protocol"] = ", ".join(protocols)
    headers.update(extra_headers or {})
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    status, rheaders, reader, writer = await raw_http_exchange(port, request.encode("latin-1"), host, timeout)
    if status != 101:
        writer.close()
        return status, rheaders, None
    assert rheaders.get("sec-websocket-accept") == ws_accept_key(key), "bad Sec-WebSocket-Accept from proxy"
    ws = RawWebSocket(reader, writer, is_client=True, answer_pings=answer_pings, answer_close=answer_close)
    return status, rheaders, ws.start_reading()


class RawWsServer:
    """A hand-made WebSocket server (CSMS) that accepts any upgrade with the given subprotocol."""

    def __init__(self, subprotocol: str | None = "ocpp1.6", *, answer_pings: bool = True, answer_close: bool = True):
        self.subprotocol = subprotocol
        self.answer_pings = answer_pings
        self.answer_close = answer_close
        self.server: asyncio.base_events.Server | None = None
        self.connections: asyncio.Queue = asyncio.Queue()
        self.paths: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (request line, lower-cased headers)
        self._all: list[RawWebSocket] = []

    async def start(self):
        self.server = await asyncio.start_server(self._on_client, LOCALHOST, 0)
        return self

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{LOCALHOST}:{self.port}/ocpp"

    async def _on_client(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        self.paths.append(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        self.requests.append((lines[0], headers))
        response = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {ws_accept_key(headers.get('sec-websocket-key', ''))}\r\n"
        )
        if self.subprotocol:
            response += f"Sec-WebSocket-Protocol: {self.subprotocol}\r\n"
        writer.write((response + "\r\n").encode("latin-1"))
        await writer.drain()
        ws = RawWebSocket(
            reader, writer, is_client=False, answer_pings=self.answer_pings, answer_close=self.answer_close
        )
        self._all.append(ws)
        self.connections.put_nowait(ws.start_reading())

    async def next_connection(self, timeout: float = 10.0) -> RawWebSocket:
        try:
            return await asyncio.wait_for(self.connections.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the raw CSMS saw no upstream connection within {timeout}s") from None

    async def close(self):
        for ws in self._all:
            await ws.aclose()
        if self.server:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)


class SilentTcpServer:
    """Accepts TCP connections and never answers; records when each one is closed by the peer."""

    def __init__(self):
        self.server = None
        self.accepted = asyncio.Event()
        self.peer_closed = asyncio.Event()
        self._writers = []

    async def start(self):
        self.server = await asyncio.start_server(self._on_client, LOCALHOST, 0)
        return self

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def _on_client(self, reader, writer):
        self._writers.append(writer)
        self.accepted.set()
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        self.peer_closed.set()

    async def close(self):
        for w in self._writers:
            w.close()
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)
