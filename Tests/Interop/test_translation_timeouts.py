"""Translated CALLs that are never answered: after ``limits.callTimeout`` the caller gets an InternalError in its
own version, a late answer is dropped, and the link goes on.

Raw WebSocket peers on both sides, so that a CALL can be left unanswered on purpose.
"""

from __future__ import annotations

import asyncio
import json
import time

from harness import recv_json
from translation_support import CSMS_TIME, V16, Instant, assert_match, translating_proxy

TIMEOUT = {"limits": {"callTimeout": "1s"}}


def assert_internal_error(frame, message_id: str) -> None:
    assert isinstance(frame, list) and len(frame) == 5 and frame[0] == 4, f"expected a CALLERROR, got {frame}"
    assert frame[1] == message_id and frame[2] == "InternalError", frame


async def assert_silent(ws, seconds: float) -> None:
    """Nothing arrives on ``ws`` within ``seconds`` (a bounded observation window)."""
    try:
        frame = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"expected nothing, got {frame}")


async def test_an_unanswered_charger_call_ends_in_internal_error_and_the_late_answer_is_dropped(h):
    proxy, csms = await translating_proxy(h, raw_csms=True, top=TIMEOUT)
    ws = await h.raw_charger(proxy, "CPTIMEOUT1", [V16])
    session = await csms.next_session()
    sent = time.monotonic()
    await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    assert forwarded[0] == 2 and forwarded[2] == "Heartbeat", forwarded
    assert_internal_error(await recv_json(ws, timeout=5), "hb-1")
    assert time.monotonic() - sent >= 0.9, "answered before limits.callTimeout"
    # The CSMS answers after all: nobody is waiting for it any more.
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": CSMS_TIME}]))
    await assert_silent(ws, 1.0)
    # The next CALL goes through and is answered.
    await ws.send(json.dumps([2, "hb-2", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": CSMS_TIME}]))
    assert_match(await recv_json(ws), [3, "hb-2", {"currentTime": Instant(CSMS_TIME)}], "Heartbeat answer")


async def test_calls_pending_both_ways_each_time_out_at_their_own_deadline(h):
    proxy, csms = await translating_proxy(h, raw_csms=True, top=TIMEOUT)
    ws = await h.raw_charger(proxy, "CPTIMEOUT2", [V16])
    session = await csms.next_session()
    # The CSMS asks first; the charger receives the 1.6 Reset and never answers it.
    await session.connection.send(json.dumps([2, "reset-1", "Reset", {"type": "Immediate"}]))
    reset = await recv_json(ws)
    assert reset[0] == 2 and reset[2] == "Reset" and reset[3] == {"type": "Hard"}, reset
    await asyncio.sleep(0.5)
    # Half a timeout later, the charger's own CALL goes up and is not answered either.
    await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    assert forwarded[2] == "Heartbeat", forwarded
    # The CSMS gets its 2.0.1 InternalError first, then the charger its 1.6 one.
    assert_internal_error(await recv_json(session.connection, timeout=5), "reset-1")
    assert_internal_error(await recv_json(ws, timeout=5), "hb-1")
    # Answered late, both are dropped; the charger's next CALL still works.
    await ws.send(json.dumps([3, reset[1], {"status": "Accepted"}]))
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": CSMS_TIME}]))
    await assert_silent(ws, 0.5)
    await assert_silent(session.connection, 0.5)
    await ws.send(json.dumps([2, "hb-2", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": CSMS_TIME}]))
    assert_match(await recv_json(ws), [3, "hb-2", {"currentTime": Instant(CSMS_TIME)}], "Heartbeat answer")
