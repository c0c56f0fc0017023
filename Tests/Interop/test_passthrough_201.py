"""OCPP 2.0.1 charger <-> proxy <-> OCPP 2.0.1 CSMS: frames pass unchanged (real ocpp peers, schemas on)."""

from __future__ import annotations

import json

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.v201 import call as call201

from harness import recv_json
from ocpp_peers import now_iso

V201 = "ocpp2.0.1"
V21 = "ocpp2.1"

ID_TOKEN = {"id_token": "04A1B2C3D4", "type": "ISO14443"}


def assert_same_traffic(charger, session):
    assert session.recorder.received_frames() == charger.recorder.sent_frames(), \
        "the CSMS did not receive exactly what the charger sent"
    assert charger.recorder.received_frames() == session.recorder.sent_frames(), \
        "the charger did not receive exactly what the CSMS sent"


def energy(wh: float) -> list:
    return [{
        "timestamp": now_iso(),
        "sampled_value": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
             "unit_of_measure": {"unit": "Wh"}},
        ],
    }]


async def test_full_charging_session_passes_through_unchanged(h):
    proxy, csms = await h.pair(V201)
    charger = await h.charger(proxy, "CP201", V201)
    session = await csms.next_session()
    assert session.identity == "CP201"
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
    assert_same_traffic(charger, session)


async def test_callerror_from_charger_reaches_csms_unchanged(h):
    proxy, csms = await h.pair(V201)
    charger = await h.charger(proxy, "CP201ERR", V201)
    session = await csms.next_session()
    with pytest.raises(OcppNotImplemented):
        await session.cp.call(call201.ClearCache(), suppress=False)
    error = session.recorder.received_frames()[-1]
    assert error[0] == 4 and error[2] == "NotImplemented"
    assert_same_traffic(charger, session)


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
