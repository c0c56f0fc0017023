"""OCPP 1.6 charger <-> proxy <-> OCPP 1.6 CSMS: frames pass unchanged (real ocpp peers, schemas on)."""

from __future__ import annotations

import asyncio
import json

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.v16 import call as call16

from ocpp_peers import TRANSACTION_ID_16, now_iso

V16 = "ocpp1.6"


def assert_same_traffic(charger, session):
    sent_by_charger = charger.recorder.sent_frames()
    got_by_csms = session.recorder.received_frames()
    assert got_by_csms == sent_by_charger, "the CSMS did not receive exactly what the charger sent"
    sent_by_csms = session.recorder.sent_frames()
    got_by_charger = charger.recorder.received_frames()
    assert got_by_charger == sent_by_csms, "the charger did not receive exactly what the CSMS sent"


async def test_full_charging_session_passes_through_unchanged(h):
    proxy, csms = await h.pair(V16)
    charger = await h.charger(proxy, "CP16", V16)
    session = await csms.next_session()
    assert session.identity == "CP16"
    cp = charger.cp

    boot = await cp.call(
        call16.BootNotification(charge_point_model="Interop-1", charge_point_vendor="ocpp-proxy-tests",
                                firmware_version="1.0.0"),
        suppress=False,
    )
    assert boot.status == "Accepted" and boot.interval == 300
    await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                            timestamp=now_iso()), suppress=False)
    auth = await cp.call(call16.Authorize(id_tag="TAG-0001"), suppress=False)
    assert auth.id_tag_info["status"] == "Accepted"
    await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"),
                  suppress=False)
    start = await cp.call(
        call16.StartTransaction(connector_id=1, id_tag="TAG-0001", meter_start=1000, timestamp=now_iso()),
        suppress=False,
    )
    assert start.transaction_id == TRANSACTION_ID_16
    await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
                  suppress=False)
    for i, wh in enumerate((1250, 1500, 1750)):
        await cp.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=start.transaction_id,
                meter_value=[{
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                         "context": "Sample.Periodic"},
                        {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
                    ],
                }],
            ),
            suppress=False,
        )
    stop = await cp.call(
        call16.StopTransaction(meter_stop=1800, timestamp=now_iso(), transaction_id=start.transaction_id,
                               id_tag="TAG-0001", reason="Local"),
        suppress=False,
    )
    assert stop.id_tag_info["status"] == "Accepted"
    await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                  suppress=False)
    hb = await cp.call(call16.Heartbeat(), suppress=False)
    assert hb.current_time

    # CSMS-initiated calls, answered by the charger
    reset = await session.cp.call(call16.Reset(type="Soft"), suppress=False)
    assert reset.status == "Accepted"
    conf = await session.cp.call(call16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]), suppress=False)
    assert conf.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
    assert conf.unknown_key == ["NoSuchKey"]
    remote = await session.cp.call(call16.RemoteStartTransaction(id_tag="TAG-0002", connector_id=1), suppress=False)
    assert remote.status == "Accepted"

    actions = [f[2] for f in charger.recorder.sent_frames() if f[0] == 2]
    assert actions == ["BootNotification", "StatusNotification", "Authorize", "StatusNotification",
                       "StartTransaction", "StatusNotification", "MeterValues", "MeterValues", "MeterValues",
                       "StopTransaction", "StatusNotification", "Heartbeat"]
    assert [f[2] for f in session.recorder.sent_frames() if f[0] == 2] == [
        "Reset", "GetConfiguration", "RemoteStartTransaction"]
    assert_same_traffic(charger, session)


async def test_callerror_from_charger_reaches_csms_unchanged(h):
    proxy, csms = await h.pair(V16)
    charger = await h.charger(proxy, "CP16ERR", V16)
    session = await csms.next_session()
    # the charger has no ClearCache handler: the ocpp package answers NotImplemented
    with pytest.raises(OcppNotImplemented):
        await session.cp.call(call16.ClearCache(), suppress=False)
    error = session.recorder.received_frames()[-1]
    assert error[0] == 4 and error[2] == "NotImplemented"
    assert_same_traffic(charger, session)


async def test_concurrent_chargers_are_kept_apart(h):
    proxy, csms = await h.pair(V16)
    chargers = {}
    sessions = {}
    for identity in ("CPA", "CPB", "CPC"):
        chargers[identity] = await h.charger(proxy, identity, V16)
        session = await csms.next_session()
        sessions[session.identity] = session
    assert set(sessions) == set(chargers)

    async def boot(identity):
        await chargers[identity].cp.call(
            call16.BootNotification(charge_point_model=f"model-{identity}", charge_point_vendor="v"), suppress=False)
        await chargers[identity].cp.call(call16.Authorize(id_tag=f"TAG-{identity}"), suppress=False)

    await asyncio.gather(*(boot(i) for i in chargers))
    await asyncio.gather(*(sessions[i].cp.call(call16.Reset(type="Hard"), suppress=False) for i in chargers))
    for identity in chargers:
        received = sessions[identity].recorder.received_frames()
        assert received[0][3]["chargePointModel"] == f"model-{identity}"
        assert received[1][3]["idTag"] == f"TAG-{identity}"
        assert_same_traffic(chargers[identity], sessions[identity])


async def test_frames_are_forwarded_byte_for_byte(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPBYTES", [V16])
    session = await csms.next_session()
    odd_frames = [
        '[2, "b1" , "Heartbeat" , { } ]',
        '[2,"b2","DataTransfer",{"vendorId":"org.example","messageId":"m","data":"\\u00e9\\u2603 \u00fc \u2603"}]',
        '[2,"b3","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-01-01T00:00:00Z",'
        '"sampledValue":[{"value":"1.50E+2"}]}],"x":1.50E+2,"y":-0.0}]',
        '\n[2,"b4","Heartbeat",{}]\n',
    ]
    for frame in odd_frames:
        await ws.send(frame)
        got = await asyncio.wait_for(session.connection.recv(), 5)
        assert got == frame
    answers = ['[3,"b1",{"currentTime":"2026-01-01T00:00:00Z"}]', '[3, "b2", {"status" : "Accepted"} ]',
               '[3,"b3",{}]', '[4,"b4","GenericError","d\\u00e9tails",{"k":[1,2.5e1]}]']
    for answer in answers:
        await session.connection.send(answer)
        got = await asyncio.wait_for(ws.recv(), 5)
        assert got == answer


async def test_csms_call_and_charger_call_may_cross(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPCROSS", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "c-1", "Heartbeat", {}]))
    await session.send_json([2, "s-1", "Reset", {"type": "Soft"}])
    assert await session.recv_json() == [2, "c-1", "Heartbeat", {}]
    assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == [2, "s-1", "Reset", {"type": "Soft"}]
    await ws.send(json.dumps([3, "s-1", {"status": "Accepted"}]))
    await session.send_json([3, "c-1", {"currentTime": "2026-01-01T00:00:00Z"}])
    assert await session.recv_json() == [3, "s-1", {"status": "Accepted"}]
    assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == [3, "c-1", {"currentTime": "2026-01-01T00:00:00Z"}]
