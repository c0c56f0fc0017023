"""A second connection with an identity that is already connected: replace (default) or reject."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from harness import connect_raw, expect_closed, recv_json, wait_until

V16 = "ocpp1.6"


async def heartbeat(ws, session, message_id):
    await ws.send(json.dumps([2, message_id, "Heartbeat", {}]))
    assert await session.recv_json() == [2, message_id, "Heartbeat", {}]
    await session.send_json([3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}])
    assert await recv_json(ws) == [3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}]


async def test_replace_closes_old_charger_with_1000_and_links_the_new_one(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"duplicateIdentity": "replace"})
    old = await h.raw_charger(proxy, "CPDUP", [V16])
    old_session = await csms.next_session()
    await heartbeat(old, old_session, "old-1")

    new = await h.raw_charger(proxy, "CPDUP", [V16])
    assert new.subprotocol == V16
    assert await expect_closed(old) == 1000
    await old_session.wait_closed()  # the old upstream link is closed too
    new_session = await csms.next_session()
    assert new_session.identity == "CPDUP"
    assert new_session is not old_session
    await heartbeat(new, new_session, "new-1")


async def test_replace_is_the_default(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy(csms.url, V16, {"duplicateIdentity": None})  # None: the key is left out
    old = await h.raw_charger(proxy, "CPDUPDEF", [V16])
    old_session = await csms.next_session()
    await h.raw_charger(proxy, "CPDUPDEF", [V16])
    assert await expect_closed(old) == 1000
    await old_session.wait_closed()
    await csms.next_session()


async def test_replaced_charger_is_listed_once(h):
    proxy, csms = await h.pair(V16, raw=True)
    old = await h.raw_charger(proxy, "CPDUPLIST", [V16])
    await csms.next_session()
    await h.raw_charger(proxy, "CPDUPLIST", [V16])
    await expect_closed(old)
    await csms.next_session()
    listed = [c for c in await proxy.chargers() if c["identity"] == "CPDUPLIST"]
    assert len(listed) == 1


async def test_reject_answers_409_and_keeps_the_first_charger(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"duplicateIdentity": "reject"})
    first = await h.raw_charger(proxy, "CPREJ", [V16])
    session = await csms.next_session()
    with pytest.raises(InvalidStatus) as info:
        await connect_raw(proxy.url("CPREJ"), [V16])
    assert info.value.response.status_code == 409
    await heartbeat(first, session, "still-1")
    assert len(csms.handshake_paths) == 1, "a rejected duplicate must not get an upstream link"


async def test_reject_mode_admits_identity_again_after_first_disconnects(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"duplicateIdentity": "reject"})
    first = await h.raw_charger(proxy, "CPREJ2", [V16])
    session = await csms.next_session()
    await first.close()
    await session.wait_closed()

    async def free():
        return not [c for c in await proxy.chargers() if c["identity"] == "CPREJ2"]

    await wait_until(free, 5, "CPREJ2 to be released")
    second = await h.raw_charger(proxy, "CPREJ2", [V16])
    await heartbeat(second, await csms.next_session(), "again-1")

