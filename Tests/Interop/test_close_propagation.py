"""Closing one link closes its partner: codes forwarded when sendable, 1001 otherwise."""

from __future__ import annotations

import json

import pytest

from harness import expect_closed, raw_ws_connect, recv_json, wait_until

V16 = "ocpp1.6"


async def connected_pair(h, version=V16):
    proxy, csms = await h.pair(version, raw=True)
    ws = await h.raw_charger(proxy, "CPCLOSE", [version])
    session = await csms.next_session()
    # make sure the link is fully up before closing anything
    await ws.send(json.dumps([2, "up", "Heartbeat", {}]))
    assert await session.recv_json() == [2, "up", "Heartbeat", {}]
    return proxy, ws, session


@pytest.mark.parametrize("version", [V16, "ocpp2.0.1"])
async def test_charger_normal_close_is_forwarded_upstream_as_1000(h, version):
    proxy, ws, session = await connected_pair(h, version)
    await ws.close(1000, "bye")
    assert ws.close_code == 1000
    assert await session.wait_closed() == 1000


@pytest.mark.parametrize("code", [1000, 1001, 1008, 1011, 4000, 4999])
async def test_csms_close_code_is_forwarded_to_charger(h, code):
    proxy, ws, session = await connected_pair(h)
    await session.connection.close(code, "csms closing")
    assert await expect_closed(ws) == code


async def test_csms_close_without_status_code_reaches_charger_as_1001(h):
    csms = await h.raw_ws_server(V16)
    proxy = await h.proxy(csms.url, V16)
    ws = await h.raw_charger(proxy, "CPNOSTATUS", [V16])
    upstream = await csms.next_connection()
    await upstream.send_close(None)  # close frame without a payload: received as 1005, which cannot be sent
    assert await expect_closed(ws) == 1001


async def test_charger_tcp_drop_closes_upstream_with_1001(h):
    proxy, csms = await h.pair(V16, raw=True)
    status, _, raw = await raw_ws_connect(proxy.port, "/ocpp/CPDROP", [V16])
    assert status == 101
    h.track(raw)
    session = await csms.next_session()
    raw.abort()
    assert await session.wait_closed() == 1001


async def test_csms_tcp_drop_closes_charger_with_1001(h):
    csms = await h.raw_ws_server(V16)
    proxy = await h.proxy(csms.url, V16)
    ws = await h.raw_charger(proxy, "CPDROP2", [V16])
    upstream = await csms.next_connection()
    upstream.abort()
    assert await expect_closed(ws) == 1001


async def test_charger_close_removes_it_from_the_charger_list(h):
    proxy, ws, session = await connected_pair(h)
    assert [c["identity"] for c in await proxy.chargers()] == ["CPCLOSE"]
    await ws.close()
    await session.wait_closed()

    async def gone():
        return not [c for c in await proxy.chargers() if c["identity"] == "CPCLOSE"]

    await wait_until(gone, 5, "CPCLOSE to leave /api/chargers")


async def test_frames_sent_before_close_are_delivered(h):
    proxy, ws, session = await connected_pair(h)
    await ws.send(json.dumps([2, "last", "StatusNotification",
                              {"connectorId": 0, "errorCode": "NoError", "status": "Unavailable"}]))
    await ws.close(1000)
    assert (await session.recv_json())[1] == "last"
    assert await session.wait_closed() == 1000


async def test_charger_receives_csms_frames_sent_just_before_close(h):
    proxy, ws, session = await connected_pair(h)
    await session.send_json([2, "bye", "Reset", {"type": "Hard"}])
    await session.connection.close(1000)
    assert (await recv_json(ws))[1] == "bye"
    assert await expect_closed(ws) == 1000


async def assert_session_removed(proxy, identity):
    async def gone():
        return not [c for c in await proxy.chargers() if c["identity"] == identity]

    await wait_until(gone, 5, f"{identity} to leave /api/chargers")


async def test_csms_close_removes_the_session(h):
    proxy, ws, session = await connected_pair(h)
    await session.connection.close(1000)
    await expect_closed(ws)
    await assert_session_removed(proxy, "CPCLOSE")


async def test_charger_tcp_drop_removes_the_session(h):
    proxy, csms = await h.pair(V16, raw=True)
    status, _, raw = await raw_ws_connect(proxy.port, "/ocpp/CPDROP3", [V16])
    h.track(raw)
    session = await csms.next_session()
    raw.abort()
    await session.wait_closed()
    await assert_session_removed(proxy, "CPDROP3")


async def test_csms_tcp_drop_removes_the_session(h):
    csms = await h.raw_ws_server(V16)
    proxy = await h.proxy(csms.url, V16)
    ws = await h.raw_charger(proxy, "CPDROP4", [V16])
    upstream = await csms.next_connection()
    upstream.abort()
    await expect_closed(ws)
    await assert_session_removed(proxy, "CPDROP4")
