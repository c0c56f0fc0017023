"""One peer pipelines thousands of large CALLs and does not read its socket for a while.

A charger sends 3,000 DataTransfer CALLs of ~60 KB each without waiting for answers, and reads nothing for
the first seconds; the CSMS answers every one with its data echoed (so the answers pile up toward the charger
that does not read). The same the other way round: the CSMS floods a charger that does not read. In
pass-through (ocpp1.6) and translation (ocpp1.6 charger, ocpp2.0.1 CSMS). Each test asserts that

* the proxy's RSS grows by at most ``RSS_GROWTH_MB`` (the proxy that buffered everything grew ~1 GB for 20,000
  such frames; 3,000 of them are ~180 MB each way);
* a neighbour charger's Heartbeat round trips keep working during the flood (each within ``HEARTBEAT_LIMIT``);
* every flood CALL gets either the other side's answer (the echo of its own data, so answers are not mixed up)
  or the proxy's CALLERROR GenericError (``limits.maxPendingCalls``), or its link is closed with 1008 -- nothing
  is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse

import pytest
import websockets
from ocpp.v16 import call as call16
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

from harness import LOCALHOST, CsmsSession, Recorder, _run_charge_point, connect_ocpp_charger
from ocpp_peers import Csms16
from translation_support import TranslationCsms201

V16, V201 = "ocpp1.6", "ocpp2.0.1"
FLOOD_CALLS = 3000
DATA_BYTES = 60_000
MAX_FRAME = 256 * 1024  # limits.maxFrameBytes: a 60 KB CALL and its echoed answer fit
RSS_GROWTH_MB = 64
HEARTBEAT_LIMIT = 5.0  # seconds for one neighbour Heartbeat round trip during the flood
NOT_READING = 4.0  # seconds the flooded side reads nothing
DEADLINE = 150.0  # seconds for the whole flood to be answered once reading resumes

FLOOD_ID, NEIGHBOUR_ID = "CPFLOOD", "CPNEIGHBOUR"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def data_of(i: int) -> str:
    return f"{i:06d}" + "x" * (DATA_BYTES - 6)


class FloodCsms:
    """A CSMS for two identities: the neighbour gets an ``ocpp`` CSMS, the flood identity a raw handler."""

    def __init__(self, version: str, flood_handler):
        self.version = version
        self.flood_handler = flood_handler
        self.server = None
        self.neighbour: CsmsSession | None = None
        self.flood_connected = asyncio.Event()

    async def start(self):
        self.server = await ws_serve(self._handler, LOCALHOST, 0, subprotocols=[self.version], ping_interval=None,
                                     max_size=None, compression=None, max_queue=4)
        return self

    @property
    def url(self) -> str:
        return f"ws://{LOCALHOST}:{self.server.sockets[0].getsockname()[1]}/ocpp"

    async def _handler(self, ws):
        identity = urllib.parse.unquote(ws.request.path.rsplit("/", 1)[-1])
        if identity == FLOOD_ID:
            self.flood_connected.set()
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.flood_handler(ws)
            return
        recorder = Recorder(ws)
        factory = Csms16 if self.version == V16 else TranslationCsms201
        self.neighbour = CsmsSession(identity, ws.request.path, ws.subprotocol, ws, recorder,
                                     factory(identity, recorder))
        await _run_charge_point(self.neighbour.cp)

    async def close(self):
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 10)


async def start(h, mode: str, flood_handler):
    upstream = V16 if mode == "passthrough" else V201
    csms = await FloodCsms(upstream, flood_handler).start()
    h.servers.append(csms)
    proxy = await h.proxy(csms.url, upstream, {"limits": {"maxFrameBytes": MAX_FRAME}, "logging": {"level": "warning"}},
                          translate=mode == "translation")
    neighbour = await connect_ocpp_charger(proxy.url(NEIGHBOUR_ID), V16, NEIGHBOUR_ID)
    h.track(neighbour)
    await neighbour.cp.call(call16.Heartbeat(), suppress=False)
    return proxy, csms, neighbour


class Watch:
    """The proxy's RSS and the neighbour's Heartbeats while the flood runs."""

    def __init__(self, proxy, neighbour):
        self.proxy, self.neighbour = proxy, neighbour
        self.rss_start = rss_kb(proxy.proc.pid)
        self.rss_max = self.rss_start
        self.heartbeats = 0
        self.slowest = 0.0
        self.problems: list[str] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def __enter__(self):
        self.tasks = [asyncio.create_task(self._rss()), asyncio.create_task(self._heartbeats())]
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for task in self.tasks:
            task.cancel()

    async def _rss(self):
        while not self.stop.is_set() and self.proxy.alive():  # an exit is reported by check()
            with contextlib.suppress(AssertionError, OSError):
                self.rss_max = max(self.rss_max, rss_kb(self.proxy.proc.pid))
            await asyncio.sleep(0.1)

    async def _heartbeats(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                await asyncio.wait_for(self.neighbour.cp.call(call16.Heartbeat(), suppress=False), HEARTBEAT_LIMIT)
                self.heartbeats += 1
                self.slowest = max(self.slowest, time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - every failed round trip is a finding
                self.problems.append(f"Heartbeat {self.heartbeats + len(self.problems) + 1}: "
                                     f"{type(exc).__name__} {str(exc)[:200]}")
            await asyncio.sleep(0.2)

    def check(self, what: str) -> None:
        assert self.proxy.alive(), f"the proxy exited during the {what}{self.proxy.describe()}"
        growth = (self.rss_max - self.rss_start) / 1024
        assert growth <= RSS_GROWTH_MB, (
            f"the proxy's RSS grew by {growth:.0f} MB during the {what} (from {self.rss_start // 1024} MB to "
            f"{self.rss_max // 1024} MB; bound {RSS_GROWTH_MB} MB)")
        assert not self.problems, f"the neighbour's Heartbeats failed during the {what}: {self.problems[:5]}"
        assert self.heartbeats >= 3, f"only {self.heartbeats} neighbour Heartbeats completed during the {what}"


def classify(answers: dict, close_code: int | None, sent: int, what: str) -> dict:
    """Every CALL: the peer's echo, the proxy's GenericError, or (after the link closed with 1008) none."""
    counts = {"answered": 0, "GenericError": 0, "closed": 0}
    wrong = []
    assert sent > 0, f"the {what} could not send a single CALL (link closed {close_code})"
    for i in range(sent):
        frame = answers.get(f"d{i}")
        if frame is None:
            counts["closed"] += 1
        elif frame[0] == 3:
            if frame[2].get("data") != data_of(i) or frame[2].get("status") != "Accepted":
                wrong.append(f"d{i}: a CALLRESULT that is not its echo: {json.dumps(frame)[:120]}")
            counts["answered"] += 1
        elif frame[0] == 4 and frame[2] == "GenericError":
            counts["GenericError"] += 1
        else:
            wrong.append(f"d{i}: {json.dumps(frame)[:200]}")
    assert not wrong, f"{len(wrong)} flood CALL(s) of the {what} got another answer: {wrong[:5]}"
    if counts["closed"]:
        assert close_code == 1008, (
            f"{counts['closed']} flood CALL(s) of the {what} got no answer and the link was not closed with 1008 "
            f"(close code {close_code}); outcomes {counts}")
    if close_code != 1008:
        assert sent == FLOOD_CALLS, f"only {sent} of {FLOOD_CALLS} CALLs could be sent (link closed {close_code})"
    return counts


async def send_flood(ws) -> int:
    """FLOOD_CALLS large DataTransfer CALLs back to back, not waiting for answers; how many went out before the link
    closed."""
    sent = 0
    with contextlib.suppress(websockets.ConnectionClosed):
        for i in range(FLOOD_CALLS):
            await ws.send(json.dumps([2, f"d{i}", "DataTransfer", {"vendorId": "ocpp-proxy-flood", "data": data_of(i)}]))
            sent += 1
    return sent


async def collect(ws, answers: dict, expected: int, answer_calls=None) -> int | None:
    """Reads until every flood CALL has an answer or the link closes; returns the close code (None: open)."""
    deadline = time.monotonic() + DEADLINE
    try:
        while len(answers) < expected:
            message = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            frame = json.loads(message)
            if frame[0] == 2 and answer_calls is not None:
                await answer_calls(frame)
            elif frame[0] in (3, 4) and isinstance(frame[1], str) and frame[1].startswith("d"):
                assert frame[1] not in answers, f"two answers to {frame[1]}: {answers[frame[1]]} and {frame}"
                answers[frame[1]] = frame
    except websockets.ConnectionClosed:
        return ws.close_code
    except asyncio.TimeoutError:
        missing = [f"d{i}" for i in range(expected) if f"d{i}" not in answers]
        raise AssertionError(f"{len(missing)} flood CALL(s) without an answer {DEADLINE:.0f} s after reading resumed, "
                             f"link open: {missing[:10]}") from None
    return None


# ---------------------------------------------------------------------------
# the charger floods
# ---------------------------------------------------------------------------


async def echo_every_call(ws):
    """The CSMS: every CALL gets a CALLRESULT with its data echoed (~60 KB toward the charger that does not read)."""
    async for message in ws:
        frame = json.loads(message)
        if frame[0] == 2:
            await ws.send(json.dumps([3, frame[1], {"status": "Accepted", "data": frame[3].get("data", "")}]))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["passthrough", "translation"])
async def test_a_charger_pipelining_large_calls_without_reading_is_bounded_and_answered(h, mode):
    proxy, csms, neighbour = await start(h, mode, echo_every_call)
    flood = await ws_connect(proxy.url(FLOOD_ID), subprotocols=[V16], ping_interval=None, max_size=None,
                             compression=None, max_queue=4, open_timeout=10)
    h.track(flood)
    await asyncio.wait_for(csms.flood_connected.wait(), 10)
    answers: dict[str, list] = {}

    with Watch(proxy, neighbour) as watch:
        sender = asyncio.create_task(send_flood(flood))
        await asyncio.sleep(NOT_READING)  # the charger reads nothing meanwhile (max_queue=4: its socket fills)
        close_code = await collect(flood, answers, FLOOD_CALLS)
        sent = await asyncio.wait_for(sender, 30)
        watch.check("charger's flood")
    counts = classify(answers, close_code, sent, "charger")
    print(f"{mode}: charger flood {counts}; RSS {watch.rss_start // 1024} -> max {watch.rss_max // 1024} MB; "
          f"{watch.heartbeats} neighbour Heartbeats, slowest {watch.slowest * 1000:.0f} ms")


# ---------------------------------------------------------------------------
# the CSMS floods
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["passthrough", "translation"])
async def test_a_csms_pipelining_large_calls_at_a_charger_that_does_not_read_is_bounded_and_answered(h, mode):
    answers: dict[str, list] = {}
    outcome: dict = {}
    reading = asyncio.Event()
    version = V16 if mode == "passthrough" else V201

    async def flood_the_charger(ws):
        # The flood starts once the charger has spoken (its Heartbeat), as a CSMS would after a boot: CALLs sent
        # the instant the upstream link opens are a different matter, tested on their own.
        first = json.loads(await ws.recv())
        await ws.send(json.dumps([3, first[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        sender = asyncio.create_task(send_flood(ws))
        await reading.wait()
        outcome["close_code"] = await collect(ws, answers, FLOOD_CALLS)
        outcome["sent"] = await asyncio.wait_for(sender, 30)

    proxy, csms, neighbour = await start(h, mode, flood_the_charger)
    charger = await ws_connect(proxy.url(FLOOD_ID), subprotocols=[V16], ping_interval=None, max_size=None,
                               compression=None, max_queue=4, open_timeout=10)
    h.track(charger)
    await charger.send(json.dumps([2, "hb", "Heartbeat", {}]))
    assert json.loads(await asyncio.wait_for(charger.recv(), 10))[:2] == [3, "hb"]

    async def answer(frame):
        await charger.send(json.dumps([3, frame[1], {"status": "Accepted", "data": frame[3].get("data", "")}]))

    async def charger_reads():
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in charger:
                frame = json.loads(message)
                if frame[0] == 2:
                    await answer(frame)

    with Watch(proxy, neighbour) as watch:
        await asyncio.sleep(NOT_READING)  # the charger reads nothing meanwhile
        reader = asyncio.create_task(charger_reads())
        reading.set()
        deadline = time.monotonic() + DEADLINE + 30
        while "sent" not in outcome and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        reader.cancel()
        watch.check("CSMS's flood")
    assert "sent" in outcome, f"the CSMS's flood did not finish within {DEADLINE + 30:.0f} s ({len(answers)} answers)"
    counts = classify(answers, outcome["close_code"], outcome["sent"], f"CSMS ({version})")
    print(f"{mode}: CSMS flood {counts}; RSS {watch.rss_start // 1024} -> max {watch.rss_max // 1024} MB; "
          f"{watch.heartbeats} neighbour Heartbeats, slowest {watch.slowest * 1000:.0f} ms")
