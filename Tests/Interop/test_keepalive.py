"""WebSocket keepalive: the proxy pings both links; a silent peer is closed with 1011, its partner with 1001."""

from __future__ import annotations

import json
import time

from harness import expect_closed, raw_ws_connect, wait_event, wait_until

V16 = "ocpp1.6"
FAST = {"keepalive": {"pingInterval": "1s", "pongTimeout": "1s"}}


async def test_proxy_pings_charger_and_an_answering_charger_stays_connected(h):
    proxy, csms = await h.pair(V16, raw=True, overrides=FAST)
    status, _, charger = await raw_ws_connect(proxy.port, "/ocpp/CPPING", [V16], answer_pings=True)
    assert status == 101
    h.track(charger)
    session = await csms.next_session()
    started = time.monotonic()
    await wait_until(lambda: len(charger.pings) >= 3, 8, "three pings from the proxy")
    assert time.monotonic() - started >= 1.5, "pings should come about once per pingInterval, not in a burst"
    assert not charger.close_received.is_set()
    assert not session.closed.is_set()
    await charger.send_text(json.dumps([2, "alive", "Heartbeat", {}]))
    assert await session.recv_json() == [2, "alive", "Heartbeat", {}]


async def test_charger_not_answering_pings_is_closed_1011_and_csms_link_1001(h):
    proxy, csms = await h.pair(V16, raw=True, overrides=FAST)
    status, _, charger = await raw_ws_connect(proxy.port, "/ocpp/CPMUTE", [V16], answer_pings=False)
    assert status == 101
    h.track(charger)
    session = await csms.next_session()
    await wait_event(charger.ping_event, "ping from the proxy", timeout=5)
    await wait_event(charger.close_received, "close frame after the pong timeout", timeout=6)
    assert charger.close_code == 1011
    assert await session.wait_closed(timeout=5) == 1001


async def test_proxy_pings_csms_and_an_answering_csms_stays_connected(h):
    csms = await h.raw_ws_server(V16, answer_pings=True)
    proxy = await h.proxy(csms.url, V16, FAST)
    ws = await h.raw_charger(proxy, "CPPINGUP", [V16])
    upstream = await csms.next_connection()
    await wait_until(lambda: len(upstream.pings) >= 3, 8, "three pings on the upstream link")
    assert not upstream.close_received.is_set()
    await ws.send(json.dumps([2, "alive", "Heartbeat", {}]))
    assert await upstream.recv_json() == [2, "alive", "Heartbeat", {}]


async def test_csms_not_answering_pings_is_closed_1011_and_charger_link_1001(h):
    csms = await h.raw_ws_server(V16, answer_pings=False)
    proxy = await h.proxy(csms.url, V16, FAST)
    ws = await h.raw_charger(proxy, "CPMUTEUP", [V16])
    upstream = await csms.next_connection()
    await wait_event(upstream.ping_event, "ping on the upstream link", timeout=5)
    await wait_event(upstream.close_received, "close frame on the upstream link", timeout=6)
    assert upstream.close_code == 1011
    assert await expect_closed(ws, timeout=5) == 1001


async def test_charger_answering_pings_via_websockets_library_is_kept(h):
    proxy, csms = await h.pair(V16, raw=True, overrides=FAST)
    ws = await h.raw_charger(proxy, "CPLIB", [V16])
    session = await csms.next_session()
    # three ping rounds with pongs from the library, then the link must still carry frames
    status, _, probe = await raw_ws_connect(proxy.port, "/ocpp/CPPROBE", [V16])
    h.track(probe)
    await wait_until(lambda: len(probe.pings) >= 3, 8, "three ping rounds")
    await ws.send(json.dumps([2, "lib", "Heartbeat", {}]))
    assert await session.recv_json() == [2, "lib", "Heartbeat", {}]
    assert ws.close_code is None


async def test_pong_timeout_removes_the_session(h):
    proxy, csms = await h.pair(V16, raw=True, overrides=FAST)
    status, _, charger = await raw_ws_connect(proxy.port, "/ocpp/CPMUTE2", [V16], answer_pings=False)
    h.track(charger)
    session = await csms.next_session()
    await wait_event(charger.close_received, "close frame after the pong timeout", timeout=8)
    await session.wait_closed(timeout=5)

    async def gone():
        return await proxy.chargers() == []

    await wait_until(gone, 5, "/api/chargers to be empty after the pong timeout")


async def test_ping_interval_zero_disables_pings(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"keepalive": {"pingInterval": 0, "pongTimeout": "1s"}})
    status, _, charger = await raw_ws_connect(proxy.port, "/ocpp/CPNOPING", [V16], answer_pings=False)
    h.track(charger)
    session = await csms.next_session()
    # a bounded observation window, three times the pong timeout: no ping, no close
    try:
        await wait_event(charger.ping_event, "ping", timeout=3)
    except AssertionError:
        pass
    else:
        raise AssertionError("the proxy pinged although keepalive.pingInterval is 0")
    assert not charger.close_received.is_set()
    await charger.send_text(json.dumps([2, "quiet", "Heartbeat", {}]))
    assert await session.recv_json() == [2, "quiet", "Heartbeat", {}]
