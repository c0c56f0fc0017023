"""SIGTERM / SIGINT: close every link with 1001 and exit 0 within shutdown.gracePeriod."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import pytest

from harness import LOCALHOST, expect_closed, http_request, raw_ws_connect, wait_event

V16 = "ocpp1.6"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_all_links_with_1001_and_exits_0(h, sig):
    proxy, csms = await h.pair(V16, raw=True, overrides={"shutdown": {"gracePeriod": "5s"}})
    chargers, sessions = [], []
    for identity in ("CPSD1", "CPSD2"):
        chargers.append(await h.raw_charger(proxy, identity, [V16]))
        sessions.append(await csms.next_session())
    started = time.monotonic()
    proxy.send_signal(sig)
    for ws in chargers:
        assert await expect_closed(ws, timeout=6) == 1001
    for session in sessions:
        assert await session.wait_closed(timeout=6) == 1001
    rc = await proxy.wait_exit(timeout=8)
    elapsed = time.monotonic() - started
    assert rc == 0, f"exit status {rc}{proxy.describe()}"
    assert elapsed < 5.0, f"took {elapsed:.1f}s, gracePeriod is 5s"


async def test_idle_proxy_exits_0_promptly_on_sigterm(h):
    proxy, _ = await h.pair(V16, raw=True)
    started = time.monotonic()
    rc = await proxy.stop(signal.SIGTERM, timeout=10)
    assert rc == 0, proxy.describe()
    assert time.monotonic() - started < 5


async def test_shutdown_finishes_within_grace_period_even_if_charger_ignores_close(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"shutdown": {"gracePeriod": "2s"}})
    status, _, stubborn = await raw_ws_connect(proxy.port, "/ocpp/CPSTUBBORN", [V16], answer_close=False)
    assert status == 101
    h.track(stubborn)
    await csms.next_session()
    started = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    await wait_event(stubborn.close_received, "close frame from the shutting-down proxy", timeout=3)
    assert stubborn.close_code == 1001
    rc = await proxy.wait_exit(timeout=6)
    elapsed = time.monotonic() - started
    assert rc == 0, f"exit status {rc}{proxy.describe()}"
    assert elapsed < 3.5, f"took {elapsed:.1f}s with gracePeriod 2s"


async def test_readyz_is_503_while_shutting_down(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"shutdown": {"gracePeriod": "5s"}})
    # a charger that never completes the closing handshake keeps the proxy in its shutdown phase
    status, _, stubborn = await raw_ws_connect(proxy.port, "/ocpp/CPSLOWBYE", [V16], answer_close=False)
    assert status == 101
    h.track(stubborn)
    await csms.next_session()
    proxy.send_signal(signal.SIGTERM)
    await wait_event(stubborn.close_received, "close frame from the shutting-down proxy", timeout=3)
    assert proxy.alive(), "proxy exited before the charger acknowledged the close"
    resp = await http_request(proxy.admin_port, "/readyz")
    assert resp.status == 503
    assert await proxy.wait_exit(timeout=8) == 0, proxy.describe()


async def test_no_new_chargers_are_accepted_after_sigterm(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"shutdown": {"gracePeriod": "5s"}})
    status, _, stubborn = await raw_ws_connect(proxy.port, "/ocpp/CPHOLD", [V16], answer_close=False)
    assert status == 101
    h.track(stubborn)
    await csms.next_session()
    proxy.send_signal(signal.SIGTERM)
    await wait_event(stubborn.close_received, "close frame from the shutting-down proxy", timeout=3)
    try:
        status, _, late = await raw_ws_connect(proxy.port, "/ocpp/CPLATE", [V16], timeout=3)
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        status = None  # listener already closed: that's a refusal too
    assert status != 101, "a charger was admitted after SIGTERM"
    assert len(csms.handshake_paths) == 1
    assert await proxy.wait_exit(timeout=8) == 0, proxy.describe()


async def test_ports_are_released_after_exit(h):
    proxy, _ = await h.pair(V16, raw=True)
    assert await proxy.stop() == 0
    for port in (proxy.port, proxy.admin_port):
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((LOCALHOST, port)) != 0, f"port {port} still accepts connections"
