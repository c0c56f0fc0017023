"""Malformed input from either side is answered by the proxy and never forwarded.

Every case runs for the charger side (raw ``websockets`` client) and the CSMS
side (raw ``websockets`` server), for each protocol version.  "Not forwarded"
is checked without sleeping: after the bad frame the same side sends a valid
CALL, and the partner's *next* frame must be that valid CALL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from harness import expect_closed, wait_until

V16, V201, V21 = "ocpp1.6", "ocpp2.0.1", "ocpp2.1"
VERSIONS = [V16, V201, V21]
SIDES = ["charger", "csms"]
MAX_FRAME = 2048

# what the proxy answers, per version
FORMATION = {V16: "FormationViolation", V201: "RpcFrameworkError", V21: "RpcFrameworkError"}
PAYLOAD_FORMAT = {V16: "FormationViolation", V201: "FormatViolation", V21: "FormatViolation"}
UNKNOWN_TYPE = {V16: "GenericError", V201: "MessageTypeNotSupported", V21: None}  # None: dropped silently
REUSED_ID = {V16: "GenericError", V201: "RpcFrameworkError", V21: "RpcFrameworkError"}
BAD_ANSWER = {V16: "ProtocolError", V201: "ProtocolError", V21: "ProtocolError"}

LONG_ID = "L" * 37

# (case id, frame text, id expected in the CALLERROR, table of expected codes)
CASES = [
    ("not-json", "this is not json", "-1", FORMATION),
    ("truncated-json", '[2,"t1","Heartbeat",{', "-1", FORMATION),
    ("json-object", '{"messageTypeId":2}', "-1", FORMATION),
    ("json-string", '"[2,\\"s1\\",\\"Heartbeat\\",{}]"', "-1", FORMATION),
    ("json-number", "42", "-1", FORMATION),
    ("empty-array", "[]", "-1", FORMATION),
    ("type-is-string", '["2","ts","Heartbeat",{}]', "-1", FORMATION),
    ("type-is-fraction", '[2.5,"tf","Heartbeat",{}]', "-1", FORMATION),
    ("message-id-missing", "[2]", "-1", FORMATION),
    ("message-id-number", '[2,17,"Heartbeat",{}]', "-1", FORMATION),
    ("message-id-null", '[2,null,"Heartbeat",{}]', "-1", FORMATION),
    ("message-id-too-long", json.dumps([2, LONG_ID, "Heartbeat", {}]), LONG_ID, FORMATION),
    ("unknown-message-type", '[7,"u1","Heartbeat",{}]', "u1", UNKNOWN_TYPE),
    ("call-too-short", '[2,"a1","Heartbeat"]', "a1", FORMATION),
    ("call-too-long", '[2,"a2","Heartbeat",{},{}]', "a2", FORMATION),
    ("action-not-string", '[2,"a3",42,{}]', "a3", FORMATION),
    ("payload-array", '[2,"p1","Heartbeat",[]]', "p1", PAYLOAD_FORMAT),
    ("payload-string", '[2,"p2","Heartbeat","{}"]', "p2", PAYLOAD_FORMAT),
    ("payload-null", '[2,"p3","Heartbeat",null]', "p3", PAYLOAD_FORMAT),
]

FOLLOW_UP = {"charger": [2, "after-1", "Heartbeat", {}], "csms": [2, "after-1", "ClearCache", {}]}


@dataclass
class End:
    """One side of the proxied link, as seen from the test."""

    name: str
    conn: object

    async def send(self, data) -> None:
        await self.conn.send(data)

    async def send_json(self, frame) -> None:
        await self.conn.send(json.dumps(frame))

    async def recv_json(self, timeout: float = 5.0):
        try:
            return json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        except asyncio.TimeoutError:
            raise AssertionError(f"the {self.name} received nothing within {timeout}s") from None

    async def closed(self, timeout: float = 10.0):
        return await expect_closed(self.conn, timeout)


async def linked_with_proxy(h, version, side, overrides=None):
    """Start CSMS + proxy, connect a raw charger; return (sender, partner, proxy) for ``side``."""
    proxy, csms = await h.pair(version, raw=True, overrides=overrides or {"limits": {"maxFrameBytes": MAX_FRAME}})
    ws = await h.raw_charger(proxy, f"CPBAD-{side}", [version])
    assert ws.subprotocol == version
    session = await csms.next_session()
    charger, upstream = End("charger", ws), End("CSMS", session.connection)
    return (charger, upstream, proxy) if side == "charger" else (upstream, charger, proxy)


async def linked(h, version, side, overrides=None):
    sender, partner, _ = await linked_with_proxy(h, version, side, overrides)
    return sender, partner


def assert_callerror(frame, message_id, code):
    assert isinstance(frame, list) and len(frame) == 5, f"not a CALLERROR frame: {frame!r}"
    assert frame[0] == 4, f"expected a CALLERROR, got {frame!r}"
    assert frame[1] == message_id, f"CALLERROR id {frame[1]!r}, expected {message_id!r}"
    assert frame[2] == code, f"CALLERROR code {frame[2]!r}, expected {code!r}"
    assert isinstance(frame[3], str) and frame[3].strip(), f"CALLERROR description must be a sentence: {frame!r}"
    assert len(frame[3]) <= 255
    assert frame[4] == {}, f"CALLERROR details should be {{}}: {frame!r}"


async def assert_valid_call_still_passes(sender: End, partner: End, side: str):
    await sender.send_json(FOLLOW_UP[side])
    assert await partner.recv_json() == FOLLOW_UP[side], \
        "the partner's next frame should be the valid CALL sent after the malformed one"


# ---------------------------------------------------------------------------
# the RPC-framing table
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("frame,message_id,codes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", VERSIONS)
async def test_malformed_frame_is_answered_and_not_forwarded(h, version, side, frame, message_id, codes):
    sender, partner = await linked(h, version, side)
    await sender.send(frame)
    code = codes[version]
    if code is None:
        # ocpp2.1: an unknown message type is ignored -- no answer at all
        await assert_valid_call_still_passes(sender, partner, side)
        answer = [3, "after-1", {"currentTime": "2026-01-01T00:00:00Z"} if side == "charger" else {"status": "Accepted"}]
        await partner.send_json(answer)
        assert await sender.recv_json() == answer, "the proxy answered a frame it should have ignored"
        return
    assert_callerror(await sender.recv_json(), message_id, code)
    await assert_valid_call_still_passes(sender, partner, side)


# ---------------------------------------------------------------------------
# message ids of pending CALLs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", VERSIONS)
async def test_call_reusing_a_pending_id_is_rejected(h, version, side):
    sender, partner = await linked(h, version, side)
    first = [2, "dup-1", "Heartbeat", {}] if side == "charger" else [2, "dup-1", "ClearCache", {}]
    again = [2, "dup-1", "Heartbeat", {}] if side == "charger" else [2, "dup-1", "GetLocalListVersion", {}]
    await sender.send_json(first)
    assert await partner.recv_json() == first
    await sender.send_json(again)
    assert_callerror(await sender.recv_json(), "dup-1", REUSED_ID[version])
    # the original CALL is still pending and its answer still gets through
    answer = [3, "dup-1", {"currentTime": "2026-01-01T00:00:00Z"} if side == "charger" else {"status": "Accepted"}]
    await partner.send_json(answer)
    assert await sender.recv_json() == answer
    await assert_valid_call_still_passes(sender, partner, side)


@pytest.mark.parametrize("version", [V16, V201])
async def test_same_id_may_be_pending_on_both_sides_at_once(h, version):
    # message ids are per sender: a charger CALL "same" and a CSMS CALL "same" may both be pending
    charger, csms = await linked(h, version, "charger")
    await charger.send_json([2, "same", "Heartbeat", {}])
    assert await csms.recv_json() == [2, "same", "Heartbeat", {}]
    await csms.send_json([2, "same", "ClearCache", {}])
    assert await charger.recv_json() == [2, "same", "ClearCache", {}]
    await csms.send_json([3, "same", {"currentTime": "2026-01-01T00:00:00Z"}])
    assert await charger.recv_json() == [3, "same", {"currentTime": "2026-01-01T00:00:00Z"}]
    await charger.send_json([3, "same", {"status": "Accepted"}])
    assert await csms.recv_json() == [3, "same", {"status": "Accepted"}]


# ---------------------------------------------------------------------------
# answers: malformed or unmatched
# ---------------------------------------------------------------------------

BAD_ANSWERS = [
    ("result-without-payload", '[3,"c-1"]'),
    ("result-payload-array", '[3,"c-1",[]]'),
    ("result-payload-string", '[3,"c-1","ok"]'),
    ("result-too-long", '[3,"c-1",{},{}]'),
    ("error-too-short", '[4,"c-1","GenericError"]'),
    ("error-code-not-string", '[4,"c-1",5,"broken",{}]'),
    ("error-details-not-object", '[4,"c-1","GenericError","broken","nope"]'),
]


@pytest.mark.parametrize("bad_answer", [c[1] for c in BAD_ANSWERS], ids=[c[0] for c in BAD_ANSWERS])
@pytest.mark.parametrize("caller", SIDES)
@pytest.mark.parametrize("version", VERSIONS)
async def test_malformed_answer_to_pending_call_becomes_protocol_error_for_the_caller(h, version, caller, bad_answer):
    caller_end, answerer = await linked(h, version, caller)
    call = [2, "c-1", "Heartbeat", {}] if caller == "charger" else [2, "c-1", "ClearCache", {}]
    await caller_end.send_json(call)
    assert await answerer.recv_json() == call
    await answerer.send(bad_answer)
    assert_callerror(await caller_end.recv_json(), "c-1", BAD_ANSWER[version])
    # the malformed answer was not forwarded, and the answering side's link still works
    answerer_side = "csms" if caller == "charger" else "charger"
    await assert_valid_call_still_passes(answerer, caller_end, answerer_side)


@pytest.mark.parametrize(
    "unmatched", ['[3,"ghost",{}]', '[4,"ghost","GenericError","no such call",{}]'], ids=["callresult", "callerror"]
)
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", VERSIONS)
async def test_answer_matching_no_pending_call_is_dropped(h, version, side, unmatched):
    sender, partner = await linked(h, version, side)
    await sender.send(unmatched)
    await assert_valid_call_still_passes(sender, partner, side)
    # and the sender got no CALLERROR for it: its next frame is the answer to the follow-up
    answer = [3, "after-1", {"currentTime": "2026-01-01T00:00:00Z"} if side == "charger" else {"status": "Accepted"}]
    await partner.send_json(answer)
    assert await sender.recv_json() == answer


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", [V16, V201])
async def test_second_answer_to_the_same_call_is_dropped(h, version, side):
    # ``side`` answers a CALL twice; only the first answer reaches the caller
    answerer, caller = await linked(h, version, side)
    call = [2, "once", "ClearCache", {}] if side == "charger" else [2, "once", "Heartbeat", {}]
    await caller.send_json(call)
    assert await answerer.recv_json() == call
    first = [3, "once", {"status": "Accepted"}] if side == "charger" else [3, "once", {"currentTime": "2026-01-01T00:00:00Z"}]
    await answerer.send_json(first)
    assert await caller.recv_json() == first
    await answerer.send_json(first)
    await assert_valid_call_still_passes(answerer, caller, side)


# ---------------------------------------------------------------------------
# frames that end the link
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", VERSIONS)
async def test_binary_frame_closes_link_with_1003_and_partner_link_too(h, version, side):
    sender, partner = await linked(h, version, side)
    await sender.send(b'[2,"bin","Heartbeat",{}]')
    assert await sender.closed() == 1003
    await partner.closed()


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("version", [V16, V201])
async def test_frame_larger_than_max_frame_bytes_closes_link_with_1009_and_partner_link_too(h, version, side):
    sender, partner = await linked(h, version, side)
    big = json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "a" * (MAX_FRAME * 2)}])
    await sender.send(big)
    assert await sender.closed() == 1009
    await partner.closed()


@pytest.mark.parametrize("side", SIDES)
async def test_frame_of_exactly_max_frame_bytes_passes(h, side):
    sender, partner = await linked(h, V16, side)
    head = '[2,"edge","DataTransfer",{"vendorId":"x","data":"'
    tail = '"}]'
    frame = head + "a" * (MAX_FRAME - len(head) - len(tail)) + tail
    assert len(frame.encode()) == MAX_FRAME
    await sender.send(frame)
    got = await asyncio.wait_for(partner.conn.recv(), 5)
    assert got == frame


@pytest.mark.parametrize("side", SIDES)
async def test_link_keeps_working_after_many_malformed_frames(h, side):
    sender, partner = await linked(h, V16, side)
    for i in range(20):
        await sender.send(f"garbage {i}")
        assert_callerror(await sender.recv_json(), "-1", "FormationViolation")
    await assert_valid_call_still_passes(sender, partner, side)


@pytest.mark.parametrize("violation", ["binary", "oversize"])
@pytest.mark.parametrize("side", SIDES)
async def test_link_closed_for_a_violation_leaves_no_session_behind(h, side, violation):
    sender, partner, proxy = await linked_with_proxy(h, V16, side)
    if violation == "binary":
        await sender.send(b"\x00\x01")
    else:
        await sender.send("x" * (MAX_FRAME + 1))
    await sender.closed()
    await partner.closed()

    async def no_sessions():
        return await proxy.chargers() == []

    await wait_until(no_sessions, 5, "/api/chargers to be empty after both links closed")


# ---------------------------------------------------------------------------
# limits.callTimeout: how long a pending CALL is tracked
# ---------------------------------------------------------------------------


async def pending_from_charger(proxy) -> int:
    chargers = await proxy.chargers()
    return chargers[0]["pendingCalls"]["fromCharger"] if chargers else -1


async def test_pending_call_is_forgotten_after_call_timeout(h):
    import time

    sender, partner, proxy = await linked_with_proxy(
        h, V16, "charger", {"limits": {"maxFrameBytes": MAX_FRAME, "callTimeout": "1s"}})
    await sender.send_json([2, "slow-1", "Heartbeat", {}])
    assert await partner.recv_json() == [2, "slow-1", "Heartbeat", {}]
    started = time.monotonic()
    assert await pending_from_charger(proxy) == 1

    async def expired():
        return await pending_from_charger(proxy) == 0

    await wait_until(expired, 6, "the pending CALL to expire after callTimeout=1s")
    assert time.monotonic() - started >= 0.5, "the pending CALL was dropped long before callTimeout"
    # the id is free again: re-using it is not a "pending id" violation
    await sender.send_json([2, "slow-1", "Heartbeat", {}])
    assert await partner.recv_json() == [2, "slow-1", "Heartbeat", {}]


async def test_answer_arriving_after_call_timeout_is_not_forwarded(h):
    sender, partner, proxy = await linked_with_proxy(
        h, V16, "charger", {"limits": {"maxFrameBytes": MAX_FRAME, "callTimeout": "1s"}})
    await sender.send_json([2, "late-1", "Heartbeat", {}])
    assert await partner.recv_json() == [2, "late-1", "Heartbeat", {}]

    async def expired():
        return await pending_from_charger(proxy) == 0

    await wait_until(expired, 6, "the pending CALL to expire after callTimeout=1s")
    await partner.send_json([3, "late-1", {"currentTime": "2026-01-01T00:00:00Z"}])
    await partner.send_json([2, "after-late", "ClearCache", {}])
    # whatever the proxy tells the charger about the expired CALL, the late CALLRESULT is not among it
    for _ in range(3):
        frame = await sender.recv_json()
        if frame[:2] == [2, "after-late"]:
            break
        assert frame[0] != 3, f"a CALLRESULT for an expired CALL was forwarded: {frame}"
    else:
        raise AssertionError("the CALL sent after the late answer never arrived")
