"""Numbers a hostile peer puts where an OCPP integer belongs, through a running translating proxy.

A JSON number such as ``1e300`` or ``9223372036854775808`` is integral, and once crashed the whole process when
a rule turned it into a transaction id. OCPP integers are 32-bit (2.0.1 part 2 §2.1.3; xs:int in the 1.6 WSDLs):
a value beyond that, or with a fraction, is a TypeConstraintViolation for its sender and never reaches the other
side, and the proxy keeps serving every charger, the sender included. "Never reaches" is shown without sleeping:
after the bad frame a valid one follows, and it must be the first the partner sees.
"""

from __future__ import annotations

import json

import pytest

from harness import recv_json
from test_translation_validation import assert_callerror, heartbeat_round_trip
from translation_support import V16, call_actions, connect_charger16, translating_proxy

T0 = "2026-01-01T10:00:00Z"
HOSTILE = ["1e300", "9223372036854775808", "-9223372036854775809", "1.5", "2147483648", "-1e300"]


def frame(message_id: str, action: str, payload_text: str) -> str:
    """A CALL as text: the hostile number goes in verbatim, as a peer would write it."""
    return f'[2,"{message_id}","{action}",{payload_text}]'


CHARGER_CALLS = {
    "StartTransaction.meterStart":
        ("StartTransaction", '{"connectorId":1,"idTag":"T","meterStart":%s,"timestamp":"' + T0 + '"}'),
    "StartTransaction.connectorId":
        ("StartTransaction", '{"connectorId":%s,"idTag":"T","meterStart":0,"timestamp":"' + T0 + '"}'),
    "MeterValues.transactionId":
        ("MeterValues", '{"connectorId":1,"transactionId":%s,"meterValue":[{"timestamp":"' + T0
         + '","sampledValue":[{"value":"1"}]}]}'),
    "StopTransaction.transactionId":
        ("StopTransaction", '{"transactionId":%s,"meterStop":1,"timestamp":"' + T0 + '"}'),
    "StopTransaction.meterStop":
        ("StopTransaction", '{"transactionId":1,"meterStop":%s,"timestamp":"' + T0 + '"}'),
}

CSMS_CALLS = {
    "RequestStartTransaction.remoteStartId":
        ("RequestStartTransaction", '{"remoteStartId":%s,"idToken":{"idToken":"T","type":"Central"}}'),
    "UnlockConnector.evseId": ("UnlockConnector", '{"evseId":%s,"connectorId":1}'),
    "ChangeAvailability.evse.id": ("ChangeAvailability", '{"operationalStatus":"Operative","evse":{"id":%s}}'),
}


@pytest.mark.parametrize("number", HOSTILE)
async def test_a_charger_integer_beyond_32_bits_is_refused_and_the_proxy_keeps_serving(h, number):
    proxy, csms = await translating_proxy(h)
    ws = await h.raw_charger(proxy, "CPHOSTILE", [V16])
    session = await csms.next_session()
    for i, (field, (action, template)) in enumerate(CHARGER_CALLS.items()):
        await ws.send(frame(f"bad-{i}", action, template % number))
        assert_callerror(await recv_json(ws), f"bad-{i}", "TypeConstraintViolation")
    await heartbeat_round_trip(ws)
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"], "a hostile CALL reached the CSMS"
    # A second charger connects and is served: the process is up.
    other = await h.raw_charger(proxy, "CPNEIGHBOUR", [V16])
    await csms.next_session()
    await heartbeat_round_trip(other, "n-1")
    assert proxy.alive(), "the proxy process exited"


@pytest.mark.parametrize("number", HOSTILE)
async def test_a_csms_integer_beyond_32_bits_is_refused_and_the_proxy_keeps_serving(h, number):
    proxy, csms = await translating_proxy(h, raw_csms=True)
    charger, session = await connect_charger16(h, proxy, csms, "CPCSMSHOSTILE")
    for i, (field, (action, template)) in enumerate(CSMS_CALLS.items()):
        await session.connection.send(frame(f"bad-{i}", action, template % number))
        assert_callerror(await session.recv_json(), f"bad-{i}", "TypeConstraintViolation")
    await session.send_json([2, "ok-1", "ClearCache", {}])
    assert await session.recv_json() == [3, "ok-1", {"status": "Accepted"}]
    assert call_actions(charger.recorder.received_frames()) == ["ClearCache"], "a hostile CALL reached the charger"
    assert proxy.alive(), "the proxy process exited"


@pytest.mark.parametrize("number", HOSTILE)
async def test_a_csms_answer_with_an_integer_beyond_32_bits_fails_only_its_exchange(h, number):
    proxy, csms = await translating_proxy(h, raw_csms=True)
    ws = await h.raw_charger(proxy, "CPANSWER", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
    forwarded = await recv_json(session.connection)
    assert forwarded[2] == "BootNotification", forwarded
    await session.connection.send(
        f'[3,"{forwarded[1]}",{{"currentTime":"{T0}","interval":{number},"status":"Accepted"}}]')
    assert_callerror(await recv_json(ws, timeout=5), "boot-1", "TypeConstraintViolation")
    await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
    forwarded = await recv_json(session.connection)
    await session.connection.send(json.dumps([3, forwarded[1], {"currentTime": T0}]))
    assert (await recv_json(ws))[:2] == [3, "hb-1"]
    assert proxy.alive(), "the proxy process exited"
