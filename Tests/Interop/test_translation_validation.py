"""A translating proxy checks frames against the message definitions of their version.

An invalid 1.6 CALL from the charger gets a 1.6 CALLERROR, an invalid 2.0.1 CALL from the CSMS a 2.0.1
CALLERROR, and neither reaches the other side. "Never forwarded" is checked without sleeping: after the
bad frame the same side sends a valid CALL, and the partner's only CALL must be that one.

A listener or a charger entry may opt into ``tolerance: lenient`` (Rules/README.md, "Tolerance for
vendor quirks"): wrong enum case, numbers sent as strings and unknown fields are then fixed instead of
refused. It is off by default.
"""

from __future__ import annotations

import json

import pytest

from harness import recv_json
from translation_support import (
    CSMS_TIME,
    V16,
    Instant,
    assert_match,
    call_actions,
    calls,
    connect_charger16,
    translating_proxy,
)

T0 = "2026-01-01T10:00:00Z"


def status_notification(**changes) -> dict:
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": T0}
    payload.update(changes)
    return payload


def assert_callerror(frame, message_id: str, code: str) -> None:
    assert isinstance(frame, list) and len(frame) == 5 and frame[0] == 4, f"expected a CALLERROR, got {frame}"
    assert frame[1] == message_id, f"CALLERROR for {frame[1]!r}, expected {message_id!r}: {frame}"
    assert frame[2] == code, f"expected error code {code}, got {frame}"
    assert isinstance(frame[3], str) and isinstance(frame[4], dict), frame


async def heartbeat_round_trip(ws, message_id: str = "ok-1") -> None:
    await ws.send(json.dumps([2, message_id, "Heartbeat", {}]))
    answer = await recv_json(ws)
    assert_match(answer, [3, message_id, {"currentTime": Instant(CSMS_TIME)}], "Heartbeat answer")


# ---------------------------------------------------------------------------
# invalid 1.6 CALLs from the charger
# ---------------------------------------------------------------------------

LONG_TAG = "X" * 21  # idTag is CiString20

CHARGER_BAD_CALLS = [
    ("wrong-type", "BootNotification", {"chargePointVendor": 17, "chargePointModel": "m"}, "TypeConstraintViolation"),
    ("missing-required-field", "BootNotification", {"chargePointVendor": "v"}, "OccurenceConstraintViolation"),
    ("value-not-in-enum", "StatusNotification", status_notification(status="Bogus"), "PropertyConstraintViolation"),
    ("enum-in-wrong-case", "StatusNotification", status_notification(status="charging"), "PropertyConstraintViolation"),
    ("string-too-long", "Authorize", {"idTag": LONG_TAG}, "PropertyConstraintViolation"),
    ("number-as-string", "StatusNotification", status_notification(connectorId="1"), "TypeConstraintViolation"),
    ("unknown-field", "Heartbeat", {"unexpected": True}, "FormationViolation"),
    ("unknown-nested-field", "MeterValues",
     {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [{"value": "1", "extra": 1}]}]},
     "FormationViolation"),
    ("integer-with-fraction", "StartTransaction",
     {"connectorId": 1, "idTag": "TAG", "meterStart": 12.5, "timestamp": T0}, "TypeConstraintViolation"),
]


@pytest.mark.parametrize("case,action,payload,code", CHARGER_BAD_CALLS, ids=[c[0] for c in CHARGER_BAD_CALLS])
async def test_invalid_1_6_call_gets_a_1_6_callerror_and_never_reaches_the_csms(h, case, action, payload, code):
    proxy, csms = await translating_proxy(h)
    ws = await h.raw_charger(proxy, "CPBAD", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "bad-1", action, payload]))
    assert_callerror(await recv_json(ws), "bad-1", code)
    await heartbeat_round_trip(ws)
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"], "the invalid CALL reached the CSMS"


# ---------------------------------------------------------------------------
# invalid 2.0.1 CALLs from the CSMS
# ---------------------------------------------------------------------------

CSMS_BAD_CALLS = [
    ("value-not-in-enum", "Reset", {"type": "Sometimes"}, "PropertyConstraintViolation"),
    ("missing-required-field", "Reset", {}, "OccurrenceConstraintViolation"),
    ("wrong-type", "ChangeAvailability", {"operationalStatus": 1}, "TypeConstraintViolation"),
    ("unknown-field", "ClearCache", {"unexpected": 1}, "FormatViolation"),
    ("unknown-nested-field", "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 1, "x": 1}},
     "FormatViolation"),
    ("string-too-long", "DataTransfer", {"vendorId": "v" * 256}, "PropertyConstraintViolation"),
    ("number-as-string", "RequestStartTransaction",
     {"idToken": {"idToken": "TAG", "type": "Central"}, "remoteStartId": "42"}, "TypeConstraintViolation"),
]


@pytest.mark.parametrize("case,action,payload,code", CSMS_BAD_CALLS, ids=[c[0] for c in CSMS_BAD_CALLS])
async def test_invalid_2_0_1_call_gets_a_2_0_1_callerror_and_never_reaches_the_charger(h, case, action, payload, code):
    proxy, csms = await translating_proxy(h, raw_csms=True)
    charger, session = await connect_charger16(h, proxy, csms, "CPCSMSBAD")
    await session.send_json([2, "bad-1", action, payload])
    assert_callerror(await session.recv_json(), "bad-1", code)
    await session.send_json([2, "ok-1", "ClearCache", {}])
    assert await session.recv_json() == [3, "ok-1", {"status": "Accepted"}]
    assert call_actions(charger.recorder.received_frames()) == ["ClearCache"], "the invalid CALL reached the charger"


# ---------------------------------------------------------------------------
# tolerance: lenient
# ---------------------------------------------------------------------------

QUIRKS = {
    "enumCase": status_notification(status="charging"),
    "numericStrings": status_notification(connectorId="1"),
    "unknownFields": status_notification(vendorExtension="x"),
}
FIXED = {"timestamp": Instant(T0), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}


async def quirky_status_is_fixed(h, proxy, csms, identity: str, payload: dict) -> None:
    ws = await h.raw_charger(proxy, identity, [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "q-1", "StatusNotification", payload]))
    assert await recv_json(ws) == [3, "q-1", {}], "the quirky StatusNotification was not accepted"
    assert_match(calls(session.recorder.received_frames(), "StatusNotification"), [FIXED],
                 "StatusNotification at the CSMS")


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
async def test_lenient_listener_accepts_and_fixes_a_vendor_quirk(h, quirk):
    proxy, csms = await translating_proxy(h, listener={"tolerance": "lenient"})
    await quirky_status_is_fixed(h, proxy, csms, "CPLENIENT", QUIRKS[quirk])


async def test_lenient_listener_fixes_all_quirks_in_one_frame(h):
    proxy, csms = await translating_proxy(h, listener={"tolerance": "lenient"})
    payload = status_notification(status="charging", connectorId="1", vendorExtension="x")
    await quirky_status_is_fixed(h, proxy, csms, "CPLENIENTALL", payload)


async def test_lenient_charger_entry_applies_to_that_charger_only(h):
    proxy, csms = await translating_proxy(h, top={"chargers": [{"identity": "CPQUIRKY", "tolerance": "lenient"}]})
    await quirky_status_is_fixed(h, proxy, csms, "CPQUIRKY", QUIRKS["enumCase"])
    strict = await h.raw_charger(proxy, "CPSTRICT", [V16])
    strict_session = await csms.next_session()
    await strict.send(json.dumps([2, "q-2", "StatusNotification", QUIRKS["enumCase"]]))
    assert_callerror(await recv_json(strict), "q-2", "PropertyConstraintViolation")
    await heartbeat_round_trip(strict)
    assert call_actions(strict_session.recorder.received_frames()) == ["Heartbeat"]


async def test_lenient_tolerance_still_refuses_a_value_that_is_not_a_quirk(h):
    proxy, csms = await translating_proxy(h, listener={"tolerance": "lenient"})
    ws = await h.raw_charger(proxy, "CPLENIENTBAD", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "b-1", "StatusNotification", status_notification(status="Bogus")]))
    assert_callerror(await recv_json(ws), "b-1", "PropertyConstraintViolation")
    await heartbeat_round_trip(ws)
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"]


# ---------------------------------------------------------------------------
# broken answers from the CSMS to a translated CALL
# ---------------------------------------------------------------------------

BROKEN_ANSWERS = [
    # (case, what the CSMS answers with, given the upstream message id, the 1.6 code the charger gets)
    # readable id, but not a CALLRESULT: the charger's CALL fails now, not at callTimeout
    ("callresult-without-payload", lambda mid: json.dumps([3, mid]), "ProtocolError"),
    ("answer-breaks-its-definition", lambda mid: json.dumps([3, mid, {"currentTime": 5}]), "TypeConstraintViolation"),
]


@pytest.mark.parametrize("case,answer,code", BROKEN_ANSWERS, ids=[c[0] for c in BROKEN_ANSWERS])
async def test_a_broken_csms_answer_reaches_the_charger_as_a_1_6_callerror_at_once(h, case, answer, code):
    proxy, csms = await translating_proxy(h, raw_csms=True)
    ws = await h.raw_charger(proxy, "CPBROKEN", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    assert forwarded[0] == 2 and forwarded[2] == "Heartbeat", forwarded
    await session.connection.send(answer(forwarded[1]))
    # Well before limits.callTimeout (30 s in these tests): the charger is not left waiting.
    assert_callerror(await recv_json(ws, timeout=5), "hb-1", code)
    # The link stays usable: the next CALL goes through and gets its answer.
    await ws.send(json.dumps([2, "hb-2", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": CSMS_TIME}]))
    assert_match(await recv_json(ws), [3, "hb-2", {"currentTime": Instant(CSMS_TIME)}], "Heartbeat answer")
