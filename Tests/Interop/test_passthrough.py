"""Pass-through: a charger and a CSMS of the same version, frames pass unchanged (real ocpp peers, schemas on).

The same tests for OCPP 1.6 and 2.0.1 are parametrised over the version; 1.6-only and 2.1-only cases follow.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from harness import V16, V201, V21, recv_json, wait_until
from ocpp_peers import TRANSACTION_ID_16, now_iso

ID_TOKEN = {"id_token": "04A1B2C3D4", "type": "ISO14443"}


def assert_same_traffic(charger, session):
    sent_by_charger = charger.recorder.sent_frames()
    got_by_csms = session.recorder.received_frames()
    assert got_by_csms == sent_by_charger, "the CSMS did not receive exactly what the charger sent"
    sent_by_csms = session.recorder.sent_frames()
    got_by_charger = charger.recorder.received_frames()
    assert got_by_charger == sent_by_csms, "the charger did not receive exactly what the CSMS sent"


def energy(wh: float) -> list:
    """A 2.0.1 meterValue with one energy register sample."""
    return [{
        "timestamp": now_iso(),
        "sampled_value": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
             "unit_of_measure": {"unit": "Wh"}},
        ],
    }]


# ---------------------------------------------------------------------------
# OCPP 1.6 and 2.0.1
# ---------------------------------------------------------------------------


async def charging_session_16(charger, session):
    """Boot, a transaction with meter values, a heartbeat; then three CSMS CALLs. Asserts each answer and the
    CALLs in order."""
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


async def charging_session_201(charger, session):
    """The same in 2.0.1: TransactionEvent Started/Updated/Updated/Ended; Reset, GetVariables,
    RequestStartTransaction from the CSMS."""
    cp = charger.cp

    boot = await cp.call(
        call201.BootNotification(charging_station={"vendor_name": "ocpp-proxy-tests", "model": "Interop-2",
                                                   "firmware_version": "2.0.1"},
                                 reason="PowerUp"),
        suppress=False,
    )
    assert boot.status == "Accepted"
    await cp.call(call201.StatusNotification(timestamp=now_iso(), connector_status="Available", evse_id=1,
                                             connector_id=1), suppress=False)
    auth = await cp.call(call201.Authorize(id_token=ID_TOKEN), suppress=False)
    assert auth.id_token_info["status"] == "Accepted"
    await cp.call(call201.StatusNotification(timestamp=now_iso(), connector_status="Occupied", evse_id=1,
                                             connector_id=1), suppress=False)
    started = await cp.call(
        call201.TransactionEvent(event_type="Started", timestamp=now_iso(), trigger_reason="Authorized", seq_no=0,
                                 transaction_info={"transaction_id": "tx-0001", "charging_state": "EVConnected"},
                                 id_token=ID_TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(0)),
        suppress=False,
    )
    assert started.id_token_info["status"] == "Accepted"
    await cp.call(
        call201.TransactionEvent(event_type="Updated", timestamp=now_iso(), trigger_reason="ChargingStateChanged",
                                 seq_no=1, transaction_info={"transaction_id": "tx-0001", "charging_state": "Charging"}),
        suppress=False,
    )
    await cp.call(call201.MeterValues(evse_id=1, meter_value=energy(1234.5)), suppress=False)
    await cp.call(
        call201.TransactionEvent(event_type="Updated", timestamp=now_iso(), trigger_reason="MeterValuePeriodic",
                                 seq_no=2, transaction_info={"transaction_id": "tx-0001"}, meter_value=energy(2500)),
        suppress=False,
    )
    await cp.call(
        call201.TransactionEvent(event_type="Ended", timestamp=now_iso(), trigger_reason="StopAuthorized", seq_no=3,
                                 transaction_info={"transaction_id": "tx-0001", "stopped_reason": "Local"},
                                 id_token=ID_TOKEN, meter_value=energy(3000)),
        suppress=False,
    )
    hb = await cp.call(call201.Heartbeat(), suppress=False)
    assert hb.current_time

    reset = await session.cp.call(call201.Reset(type="OnIdle"), suppress=False)
    assert reset.status == "Accepted"
    variables = await session.cp.call(
        call201.GetVariables(get_variable_data=[
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"component": {"name": "Nope"}, "variable": {"name": "Nothing"}},
        ]),
        suppress=False,
    )
    assert variables.get_variable_result[0]["attribute_value"] == "300"
    assert variables.get_variable_result[1]["attribute_status"] == "UnknownVariable"
    remote = await session.cp.call(
        call201.RequestStartTransaction(id_token=ID_TOKEN, remote_start_id=77, evse_id=1), suppress=False)
    assert remote.status == "Accepted"

    assert [f[2] for f in charger.recorder.sent_frames() if f[0] == 2] == [
        "BootNotification", "StatusNotification", "Authorize", "StatusNotification", "TransactionEvent",
        "TransactionEvent", "MeterValues", "TransactionEvent", "TransactionEvent", "Heartbeat"]
    events = [f[3]["eventType"] for f in session.recorder.received_frames() if f[0] == 2 and f[2] == "TransactionEvent"]
    assert events == ["Started", "Updated", "Updated", "Ended"]
    assert [f[2] for f in session.recorder.sent_frames() if f[0] == 2] == [
        "Reset", "GetVariables", "RequestStartTransaction"]


CHARGING_SESSIONS = {V16: ("CP16", charging_session_16), V201: ("CP201", charging_session_201)}


@pytest.mark.parametrize("version", [V16, V201])
async def test_full_charging_session_passes_through_unchanged(h, version):
    identity, charging_session = CHARGING_SESSIONS[version]
    proxy, csms = await h.pair(version)
    charger = await h.charger(proxy, identity, version)
    session = await csms.next_session()
    assert session.identity == identity
    await charging_session(charger, session)
    assert_same_traffic(charger, session)


CLEAR_CACHE = {V16: ("CP16ERR", call16.ClearCache), V201: ("CP201ERR", call201.ClearCache)}


@pytest.mark.parametrize("version", [V16, V201])
async def test_callerror_from_charger_reaches_csms_unchanged(h, version):
    identity, clear_cache = CLEAR_CACHE[version]
    proxy, csms = await h.pair(version)
    charger = await h.charger(proxy, identity, version)
    session = await csms.next_session()
    # the charger has no ClearCache handler: the ocpp package answers NotImplemented
    with pytest.raises(OcppNotImplemented):
        await session.cp.call(clear_cache(), suppress=False)
    error = session.recorder.received_frames()[-1]
    assert error[0] == 4 and error[2] == "NotImplemented"
    assert_same_traffic(charger, session)


# ---------------------------------------------------------------------------
# OCPP 1.6 only
# ---------------------------------------------------------------------------


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


@pytest.mark.parametrize("loops", [1, 3])
async def test_the_configured_event_loops_carry_every_session(h, loops):
    # eventLoops: one loop carries every session, or sessions spread over three; each still its own
    proxy, csms = await h.pair(V16, overrides={"eventLoops": loops})
    await wait_until(lambda: f"eventLoops={loops}" in proxy.stderr(), 10, "the listener's log line")
    chargers, sessions = {}, {}
    for index in range(6):
        identity = f"CPL{index}"
        chargers[identity] = await h.charger(proxy, identity, V16)
        session = await csms.next_session()
        sessions[session.identity] = session
    await asyncio.gather(*(chargers[i].cp.call(call16.Authorize(id_tag=f"TAG-{i}"), suppress=False) for i in chargers))
    for identity in chargers:
        assert sessions[identity].recorder.received_frames()[0][3]["idTag"] == f"TAG-{identity}"
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


# ---------------------------------------------------------------------------
# OCPP 2.1 (raw peers)
# ---------------------------------------------------------------------------


async def test_ocpp21_frames_pass_through_between_21_peers(h):
    # no ocpp-package 2.1 peer here: raw frames that are valid 2.1 RPC
    proxy, csms = await h.pair(V21, raw=True)
    ws = await h.raw_charger(proxy, "CP21", [V21])
    assert ws.subprotocol == V21
    session = await csms.next_session()
    assert session.subprotocol == V21
    boot = [2, "21-1", "BootNotification", {"reason": "PowerUp",
                                             "chargingStation": {"model": "m", "vendorName": "v"}}]
    await ws.send(json.dumps(boot))
    assert await session.recv_json() == boot
    answer = [3, "21-1", {"currentTime": "2026-01-01T00:00:00Z", "interval": 300, "status": "Accepted"}]
    await session.send_json(answer)
    assert await recv_json(ws) == answer
