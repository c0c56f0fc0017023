"""OCPP 1.6 charger -> proxy (translating with Rules/ocpp1.6-ocpp2.0.1.yaml) -> OCPP 2.0.1 CSMS.

Both peers are the ``ocpp`` package with its schema validation on (a frame the proxy translates badly
is refused by the receiving peer, not only by these assertions). Every test asserts the exact payload
the other side received; the few fields a translation may legitimately fill in or leave out are
declared with ``Opt``/``AnyOf`` (see translation_support.py). Message ids on the upstream link are the
proxy's own: nothing here assumes they equal the charger's.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from ocpp.exceptions import (
    FormatViolationError,
    FormationViolationError,
    NotImplementedError as OcppNotImplementedError,
    OccurenceConstraintViolationError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    UnknownCallErrorCodeError,
)
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from harness import expect_closed, metric_value, recv_json
from translation_support import (
    answer_to,
    last_answer,
    result_payload,
    times_after_connecting,
    ANY,
    ANY_DATETIME,
    CSMS_TIME,
    IS_INT,
    IS_UUID,
    AnyOf,
    Instant,
    Opt,
    Recent,
    V16,
    assert_match,
    call_actions,
    calls,
    connect_charger16,
    translating_proxy,
    wait_for_call,
)

TAG = "04A1B2C3D4E5F6"  # 14 hex digits: a 7-byte ISO 14443 UID
ID_TOKEN = {"idToken": TAG, "type": "ISO14443"}
# a charger online now: its events are dated after the connection began (translation_support)
T0, T1, T2, T3 = times_after_connecting()
WH = AnyOf({"unit": "Wh"}, {"unit": "Wh", "multiplier": 0})


async def started(h, identity: str):
    proxy, csms = await translating_proxy(h)
    charger, session = await connect_charger16(h, proxy, csms, identity)
    return proxy, csms, charger, session


def energy_sample(wh: int, context: str) -> dict:
    """The 2.0.1 sampledValue a 1.6 meterStart/meterStop becomes (E01.FR.09: Energy.Active.Import.Register Wh)."""
    return {
        "value": wh,
        "context": context,
        "measurand": Opt("Energy.Active.Import.Register"),
        "unitOfMeasure": Opt(WH),
    }


async def barrier(session, charger) -> None:
    """A ClearCache round trip from the CSMS: every CSMS frame before it has reached the charger (or never will)."""
    result = await session.cp.call(call201.ClearCache(), suppress=False)
    assert result.status == "Accepted"
    assert calls(charger.recorder.received_frames())[-1] == {}


# ---------------------------------------------------------------------------
# 1. BootNotification, Heartbeat
# ---------------------------------------------------------------------------


async def test_boot_notification_becomes_charging_station_with_reason_power_up(h):
    _, _, charger, session = await started(h, "CPBOOT")
    await charger.cp.call(call16.BootNotification(
        charge_point_vendor="ocpp-proxy-tests", charge_point_model="Interop-1",
        charge_point_serial_number="SN-0001", firmware_version="1.0.0"), suppress=False)
    assert call_actions(session.recorder.received_frames()) == ["BootNotification"]
    assert_match(calls(session.recorder.received_frames(), "BootNotification")[0], {
        "chargingStation": {"vendorName": "ocpp-proxy-tests", "model": "Interop-1", "serialNumber": "SN-0001",
                            "firmwareVersion": "1.0.0"},
        "reason": "PowerUp",
    }, "BootNotification at the CSMS")
    assert_match(result_payload(charger.recorder),
                 {"status": "Accepted", "interval": 300, "currentTime": Instant(CSMS_TIME)},
                 "BootNotification result at the charger")


async def test_heartbeat_reaches_csms_and_current_time_comes_back(h):
    _, _, charger, session = await started(h, "CPHB")
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert calls(session.recorder.received_frames()) == [{}]
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"]
    assert_match(result_payload(charger.recorder), {"currentTime": Instant(CSMS_TIME)}, "Heartbeat result")


# ---------------------------------------------------------------------------
# 2. Authorize
# ---------------------------------------------------------------------------


async def test_authorize_id_tag_becomes_id_token_and_id_token_info_becomes_id_tag_info(h):
    _, _, charger, session = await started(h, "CPAUTH")
    session.cp.authorize_info = {"status": "Accepted", "cacheExpiryDateTime": "2026-06-01T00:00:00Z",
                                 "groupIdToken": {"idToken": "PARENT-01", "type": "Central"}}
    await charger.cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    assert_match(calls(session.recorder.received_frames(), "Authorize"), [{"idToken": ID_TOKEN}],
                 "Authorize at the CSMS")
    assert_match(result_payload(charger.recorder), {
        "idTagInfo": {"status": "Accepted", "expiryDate": Instant("2026-06-01T00:00:00Z"), "parentIdTag": "PARENT-01"},
    }, "Authorize result at the charger")


async def test_authorize_blocked_stays_blocked(h):
    _, _, charger, session = await started(h, "CPBLOCK")
    session.cp.authorize_info = {"status": "Blocked"}
    await charger.cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    assert_match(result_payload(charger.recorder), {"idTagInfo": {"status": "Blocked"}}, "Authorize result")


@pytest.mark.parametrize("status", ["NotAtThisTime", "NoCredit", "NotAllowedTypeEVSE", "NotAtThisLocation", "Unknown"])
async def test_authorize_status_that_only_2_0_1_has_becomes_invalid(h, status):
    _, _, charger, session = await started(h, "CPNAT")
    session.cp.authorize_info = {"status": status}
    await charger.cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    assert_match(result_payload(charger.recorder), {"idTagInfo": {"status": "Invalid"}}, "Authorize result")


async def test_authorize_id_tag_that_is_not_a_uid_is_sent_as_central_token(h):
    _, _, charger, session = await started(h, "CPCENTRAL")
    await charger.cp.call(call16.Authorize(id_tag="TAG-0001"), suppress=False)
    assert_match(calls(session.recorder.received_frames(), "Authorize"),
                 [{"idToken": {"idToken": "TAG-0001", "type": "Central"}}], "Authorize at the CSMS")


# ---------------------------------------------------------------------------
# 3. StatusNotification
# ---------------------------------------------------------------------------


async def test_status_notification_on_connector_1_becomes_connector_status_on_evse_1(h):
    _, _, charger, session = await started(h, "CPSTATUS")
    sent = [("Available", T0), ("Preparing", T1), ("Charging", T2)]
    for status, ts in sent:
        await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status=status,
                                                        timestamp=ts), suppress=False)
        assert result_payload(charger.recorder) == {}
    assert call_actions(session.recorder.received_frames()) == ["StatusNotification"] * 3
    assert_match(calls(session.recorder.received_frames(), "StatusNotification"), [
        {"timestamp": Instant(T0), "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
        {"timestamp": Instant(T1), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        {"timestamp": Instant(T2), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    ], "StatusNotifications at the CSMS")


async def test_status_notification_without_timestamp_gets_the_time_it_arrived(h):
    _, _, charger, session = await started(h, "CPNOTIME")
    await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                          suppress=False)
    assert_match(calls(session.recorder.received_frames(), "StatusNotification"), [
        {"timestamp": Recent(), "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ], "StatusNotification at the CSMS")


async def test_status_notification_on_connector_0_becomes_notify_event_availability_state(h):
    _, _, charger, session = await started(h, "CPZERO")
    await charger.cp.call(call16.StatusNotification(connector_id=0, error_code="NoError", status="Unavailable",
                                                    timestamp=T0), suppress=False)
    assert result_payload(charger.recorder) == {}
    assert call_actions(session.recorder.received_frames()) == ["NotifyEvent"], "connector 0 is the station"
    [event] = calls(session.recorder.received_frames(), "NotifyEvent")
    assert_match(event, {"generatedAt": ANY_DATETIME, "seqNo": 0, "tbc": Opt(False), "eventData": ANY},
                 "NotifyEvent at the CSMS")
    assert len(event["eventData"]) == 1, event
    assert_match(event["eventData"][0], {
        "eventId": IS_INT,
        "timestamp": Instant(T0),
        "trigger": "Delta",
        "actualValue": "Unavailable",
        "eventNotificationType": ANY,
        "component": {"name": "ChargingStation"},
        "variable": {"name": "AvailabilityState"},
        "cleared": Opt(ANY),
        "techCode": Opt(ANY),
        "techInfo": Opt(ANY),
    }, "NotifyEvent eventData")


# ---------------------------------------------------------------------------
# 4. a whole transaction
# ---------------------------------------------------------------------------


async def start_transaction(charger, connector_id: int = 1, meter_start: int = 1000) -> int:
    result = await charger.cp.call(call16.StartTransaction(connector_id=connector_id, id_tag=TAG,
                                                           meter_start=meter_start, timestamp=T0), suppress=False)
    return result.transaction_id


def periodic_meter_value(ts: str, wh: int) -> list:
    return [{
        "timestamp": ts,
        "sampledValue": [
            {"value": str(wh), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
             "unit": "Wh"},
            {"value": "16.5", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "7.2", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "location": "Outlet",
             "unit": "kW"},
        ],
    }]


def periodic_meter_value_201(ts: str, wh: int) -> list:
    return [{
        "timestamp": Instant(ts),
        "sampledValue": [
            {"value": wh, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
             "unitOfMeasure": WH},
            {"value": 16.5, "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L1",
             "unitOfMeasure": AnyOf({"unit": "A"}, {"unit": "A", "multiplier": 0})},
            {"value": 7.2, "context": "Sample.Periodic", "measurand": "Power.Active.Import", "location": "Outlet",
             "unitOfMeasure": AnyOf({"unit": "kW"}, {"unit": "kW", "multiplier": 0})},
        ],
    }]


def transaction_events(session) -> list[dict]:
    return calls(session.recorder.received_frames(), "TransactionEvent")


async def test_start_transaction_becomes_transaction_event_started_with_seq_no_0(h):
    _, _, charger, session = await started(h, "CPSTART")
    transaction_id = await start_transaction(charger, meter_start=1000)
    assert_match(result_payload(charger.recorder), {"transactionId": IS_INT, "idTagInfo": {"status": "Accepted"}},
                 "StartTransaction result at the charger")
    assert call_actions(session.recorder.received_frames()) == ["TransactionEvent"]
    assert_match(transaction_events(session), [{
        "eventType": "Started",
        "timestamp": Instant(T0),
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": IS_UUID, "chargingState": Opt(ANY)},
        "idToken": ID_TOKEN,
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": Instant(T0), "sampledValue": [energy_sample(1000, "Transaction.Begin")]}],
        "offline": Opt(False),
    }], "TransactionEvent(Started) at the CSMS")
    assert isinstance(transaction_id, int)


async def test_meter_values_of_a_transaction_become_transaction_event_updated_with_next_seq_no(h):
    _, _, charger, session = await started(h, "CPUPDATE")
    transaction_id = await start_transaction(charger)
    for ts, wh in ((T1, 1250), (T2, 1500)):
        await charger.cp.call(call16.MeterValues(connector_id=1, transaction_id=transaction_id,
                                                 meter_value=periodic_meter_value(ts, wh)), suppress=False)
        assert result_payload(charger.recorder) == {}
    events = transaction_events(session)
    assert len(events) == 3, events
    uuid_ = events[0]["transactionInfo"]["transactionId"]
    assert_match(events[1:], [{
        "eventType": "Updated",
        "timestamp": AnyOf(Instant(ts), Recent()),
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": uuid_, "chargingState": Opt(ANY)},
        "evse": Opt({"id": 1, "connectorId": 1}),
        "meterValue": periodic_meter_value_201(ts, wh),
        "offline": Opt(False),
    } for seq_no, ts, wh in ((1, T1, 1250), (2, T2, 1500))], "TransactionEvent(Updated) at the CSMS")
    assert call_actions(session.recorder.received_frames()) == ["TransactionEvent"] * 3


async def test_stop_transaction_becomes_transaction_event_ended_with_next_seq_no(h):
    _, _, charger, session = await started(h, "CPSTOP")
    transaction_id = await start_transaction(charger)
    await charger.cp.call(call16.MeterValues(connector_id=1, transaction_id=transaction_id,
                                             meter_value=periodic_meter_value(T1, 1250)), suppress=False)
    await charger.cp.call(call16.StopTransaction(meter_stop=1800, timestamp=T3, transaction_id=transaction_id,
                                                 reason="Local", id_tag=TAG), suppress=False)
    assert_match(result_payload(charger.recorder), {"idTagInfo": {"status": "Accepted"}},
                 "StopTransaction result at the charger")
    events = transaction_events(session)
    assert len(events) == 3, events
    assert_match(events[2], {
        "eventType": "Ended",
        "timestamp": Instant(T3),
        "triggerReason": "StopAuthorized",
        "seqNo": 2,
        "transactionInfo": {"transactionId": events[0]["transactionInfo"]["transactionId"], "stoppedReason": "Local",
                            "chargingState": Opt(ANY)},
        "idToken": ID_TOKEN,
        "evse": Opt({"id": 1, "connectorId": 1}),
        "meterValue": [{"timestamp": Instant(T3), "sampledValue": [energy_sample(1800, "Transaction.End")]}],
        "offline": Opt(False),
    }, "TransactionEvent(Ended) at the CSMS")


async def test_meter_values_without_transaction_id_become_meter_values_on_the_evse(h):
    _, _, charger, session = await started(h, "CPMETER")
    await charger.cp.call(call16.MeterValues(connector_id=1, meter_value=periodic_meter_value(T1, 42)),
                          suppress=False)
    assert result_payload(charger.recorder) == {}
    assert call_actions(session.recorder.received_frames()) == ["MeterValues"]
    assert_match(calls(session.recorder.received_frames(), "MeterValues"),
                 [{"evseId": 1, "meterValue": periodic_meter_value_201(T1, 42)}], "MeterValues at the CSMS")


# ---------------------------------------------------------------------------
# 5. remote start / stop
# ---------------------------------------------------------------------------


async def remote_start(session, remote_start_id: int = 42):
    return await session.cp.call(call201.RequestStartTransaction(
        id_token=ID_TOKEN, remote_start_id=remote_start_id, evse_id=1), suppress=False)


async def test_request_start_transaction_becomes_remote_start_transaction_on_connector_1(h):
    _, _, charger, session = await started(h, "CPRSTART")
    await remote_start(session)
    assert_match(calls(charger.recorder.received_frames(), "RemoteStartTransaction"),
                 [{"connectorId": 1, "idTag": TAG}], "RemoteStartTransaction at the charger")
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "RequestStartTransaction result")


async def test_start_after_remote_start_has_trigger_reason_remote_start_and_the_remote_start_id(h):
    _, _, charger, session = await started(h, "CPRSTART2")
    await remote_start(session, 42)
    await start_transaction(charger, meter_start=500)
    [event] = transaction_events(session)
    assert_match(event, {
        "eventType": "Started",
        "timestamp": Instant(T0),
        "triggerReason": "RemoteStart",
        "seqNo": 0,
        "transactionInfo": {"transactionId": IS_UUID, "remoteStartId": 42, "chargingState": Opt(ANY)},
        "idToken": ID_TOKEN,
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": Instant(T0), "sampledValue": [energy_sample(500, "Transaction.Begin")]}],
        "offline": Opt(False),
    }, "TransactionEvent(Started) after a remote start")


async def test_request_stop_transaction_becomes_remote_stop_with_the_integer_transaction_id(h):
    _, _, charger, session = await started(h, "CPRSTOP")
    await remote_start(session, 43)
    transaction_id = await start_transaction(charger)
    uuid_ = transaction_events(session)[0]["transactionInfo"]["transactionId"]
    result = await session.cp.call(call201.RequestStopTransaction(transaction_id=uuid_), suppress=False)
    assert result.status == "Accepted"
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "RequestStopTransaction result")
    assert_match(calls(charger.recorder.received_frames(), "RemoteStopTransaction"),
                 [{"transactionId": transaction_id}], "RemoteStopTransaction at the charger")


async def test_request_stop_for_unknown_transaction_is_rejected_without_reaching_the_charger(h):
    _, _, charger, session = await started(h, "CPRSTOPX")
    await start_transaction(charger)
    await session.cp.call(call201.RequestStopTransaction(transaction_id=str(uuid.uuid4())), suppress=False)
    assert_match(result_payload(session.recorder), {"status": "Rejected", "statusInfo": Opt(ANY)},
                 "RequestStopTransaction result")
    await barrier(session, charger)
    assert call_actions(charger.recorder.received_frames()) == ["ClearCache"]


# ---------------------------------------------------------------------------
# 6. device model: GetVariables, SetVariables, GetBaseReport
# ---------------------------------------------------------------------------


def cv(component: str, variable: str) -> dict:
    return {"component": {"name": component}, "variable": {"name": variable}}


async def test_get_variables_reads_the_mapped_configuration_key_and_reports_unknown_variables(h):
    _, _, charger, session = await started(h, "CPGETVAR")
    await session.cp.call(call201.GetVariables(get_variable_data=[
        cv("OCPPCommCtrlr", "HeartbeatInterval"), cv("NoSuchCtrlr", "Nothing")]), suppress=False)
    configuration_calls = calls(charger.recorder.received_frames(), "GetConfiguration")
    assert len(configuration_calls) == 1, configuration_calls
    assert "HeartbeatInterval" in configuration_calls[0].get("key", []), configuration_calls
    assert_match(result_payload(session.recorder), {"getVariableResult": [
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeStatus": "Accepted", "attributeValue": "300",
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
        {**cv("NoSuchCtrlr", "Nothing"), "attributeStatus": AnyOf("UnknownComponent", "UnknownVariable"),
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
    ]}, "GetVariables result")


async def test_set_variables_becomes_sequential_change_configuration_calls_answered_in_request_order(h):
    _, _, charger, session = await started(h, "CPSETVAR")
    charger.cp.change_answers = {"MeterValueSampleInterval": "RebootRequired", "LocalPreAuthorize": "Rejected"}
    await session.cp.call(call201.SetVariables(set_variable_data=[
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "120"},
        {**cv("NoSuchCtrlr", "Nothing"), "attributeValue": "1"},
        {**cv("SampledDataCtrlr", "TxUpdatedInterval"), "attributeValue": "30"},
        {**cv("AuthCtrlr", "LocalPreAuthorize"), "attributeValue": "true"},
    ]), suppress=False)
    assert calls(charger.recorder.received_frames(), "ChangeConfiguration") == [
        {"key": "HeartbeatInterval", "value": "120"},
        {"key": "MeterValueSampleInterval", "value": "30"},
        {"key": "LocalPreAuthorize", "value": "true"},
    ]
    assert charger.cp.max_open_calls == 1, "the proxy had more than one ChangeConfiguration outstanding at once"
    assert_match(result_payload(session.recorder), {"setVariableResult": [
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeStatus": "Accepted",
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
        {**cv("NoSuchCtrlr", "Nothing"), "attributeStatus": AnyOf("UnknownComponent", "UnknownVariable"),
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
        {**cv("SampledDataCtrlr", "TxUpdatedInterval"), "attributeStatus": "RebootRequired",
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
        {**cv("AuthCtrlr", "LocalPreAuthorize"), "attributeStatus": "Rejected",
         "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)},
    ]}, "SetVariables result")


async def test_get_base_report_is_accepted_then_notify_report_carries_the_charger_configuration(h):
    _, _, charger, session = await started(h, "CPREPORT")
    await session.cp.call(call201.GetBaseReport(request_id=7, report_base="FullInventory"), suppress=False)
    assert_match(result_payload(session.recorder), {"status": "Accepted", "statusInfo": Opt(ANY)},
                 "GetBaseReport result")
    [report] = await wait_for_call(session.recorder, "NotifyReport")
    assert calls(charger.recorder.received_frames(), "GetConfiguration") == [{}], (
        "expected one GetConfiguration for all keys")
    frames = session.recorder.received_frames()
    answered_at = frames.index(last_answer(session.recorder))
    reported_at = next(i for i, f in enumerate(frames) if f[0] == 2 and f[2] == "NotifyReport")
    assert answered_at < reported_at, "NotifyReport arrived before the GetBaseReport answer"
    assert_match(report, {"requestId": 7, "generatedAt": ANY_DATETIME, "seqNo": 0, "tbc": Opt(False),
                          "reportData": ANY}, "NotifyReport")
    entries = {(e["component"]["name"], e["variable"]["name"]): e for e in report["reportData"]}
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in entries, sorted(entries)
    attribute = {"type": Opt("Actual"), "persistent": Opt(ANY), "constant": Opt(ANY)}
    assert_match(entries[("OCPPCommCtrlr", "HeartbeatInterval")], {
        **cv("OCPPCommCtrlr", "HeartbeatInterval"),
        "variableAttribute": [{"value": "300", "mutability": "ReadWrite", **attribute}],
        "variableCharacteristics": Opt(ANY),
    }, "NotifyReport entry of HeartbeatInterval")
    assert ("OCPP16LegacyCtrlr", "VendorSpecificKey") in entries, sorted(entries)
    assert_match(entries[("OCPP16LegacyCtrlr", "VendorSpecificKey")], {
        **cv("OCPP16LegacyCtrlr", "VendorSpecificKey"),
        "variableAttribute": [{"value": "vendor-value", "mutability": "ReadOnly", **attribute}],
        "variableCharacteristics": Opt(ANY),
    }, "NotifyReport entry of a read-only key without a device-model variable")


# ---------------------------------------------------------------------------
# 7. CSMS commands with a 1.6 counterpart
# ---------------------------------------------------------------------------


async def test_reset_immediate_becomes_hard_reset(h):
    _, _, charger, session = await started(h, "CPRESET")
    await session.cp.call(call201.Reset(type="Immediate"), suppress=False)
    assert calls(charger.recorder.received_frames(), "Reset") == [{"type": "Hard"}]
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "Reset result")


async def test_change_availability_of_evse_1_becomes_connector_1(h):
    _, _, charger, session = await started(h, "CPAVAIL1")
    await session.cp.call(call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}),
                          suppress=False)
    assert calls(charger.recorder.received_frames(), "ChangeAvailability") == [
        {"connectorId": 1, "type": "Inoperative"}]
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "ChangeAvailability result")


async def test_change_availability_without_evse_becomes_connector_0(h):
    _, _, charger, session = await started(h, "CPAVAIL0")
    await session.cp.call(call201.ChangeAvailability(operational_status="Operative"), suppress=False)
    assert calls(charger.recorder.received_frames(), "ChangeAvailability") == [{"connectorId": 0, "type": "Operative"}]
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "ChangeAvailability result")


async def test_trigger_message_status_notification_for_evse_1_becomes_connector_1(h):
    _, _, charger, session = await started(h, "CPTRIGGER")
    await session.cp.call(call201.TriggerMessage(requested_message="StatusNotification", evse={"id": 1}),
                          suppress=False)
    assert calls(charger.recorder.received_frames(), "TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "connectorId": 1}]
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "TriggerMessage result")


async def test_unlock_connector_becomes_unlock_of_connector_1_and_unlocked_comes_back(h):
    _, _, charger, session = await started(h, "CPUNLOCK")
    await session.cp.call(call201.UnlockConnector(evse_id=1, connector_id=1), suppress=False)
    assert calls(charger.recorder.received_frames(), "UnlockConnector") == [{"connectorId": 1}]
    assert_match(result_payload(session.recorder), {"status": "Unlocked"}, "UnlockConnector result")


async def test_set_charging_profile_schedule_array_becomes_cs_charging_profiles_schedule_object(h):
    _, _, charger, session = await started(h, "CPPROFILE")
    periods = [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}, {"startPeriod": 1800, "limit": 10.0}]
    await session.cp.call(call201.SetChargingProfile(evse_id=1, charging_profile={
        "id": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "startSchedule": T0, "duration": 3600, "chargingRateUnit": "A",
                              "chargingSchedulePeriod": periods, "minChargingRate": 6.0}],
    }), suppress=False)
    assert_match(calls(charger.recorder.received_frames(), "SetChargingProfile"), [{
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"startSchedule": Instant(T0), "duration": 3600, "chargingRateUnit": "A",
                                 "chargingSchedulePeriod": periods, "minChargingRate": 6.0},
        },
    }], "SetChargingProfile at the charger")
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "SetChargingProfile result")


async def test_clear_cache_reaches_the_charger_and_its_status_comes_back(h):
    _, _, charger, session = await started(h, "CPCLEAR")
    await session.cp.call(call201.ClearCache(), suppress=False)
    assert call_actions(charger.recorder.received_frames()) == ["ClearCache"]
    assert calls(charger.recorder.received_frames(), "ClearCache") == [{}]
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "ClearCache result")


async def test_data_transfer_from_the_csms_reaches_the_charger_unchanged(h):
    _, _, charger, session = await started(h, "CPDTDOWN")
    await session.cp.call(call201.DataTransfer(vendor_id="org.example.vendor", message_id="ping", data="hello"),
                          suppress=False)
    assert calls(charger.recorder.received_frames(), "DataTransfer") == [
        {"vendorId": "org.example.vendor", "messageId": "ping", "data": "hello"}]
    assert_match(result_payload(session.recorder), {"status": "Accepted", "data": "from-charger"},
                 "DataTransfer result at the CSMS")


async def test_data_transfer_from_the_charger_reaches_the_csms_unchanged(h):
    _, _, charger, session = await started(h, "CPDTUP")
    await charger.cp.call(call16.DataTransfer(vendor_id="org.example.vendor", message_id="ping", data="hello"),
                          suppress=False)
    assert calls(session.recorder.received_frames(), "DataTransfer") == [
        {"vendorId": "org.example.vendor", "messageId": "ping", "data": "hello"}]
    assert_match(result_payload(charger.recorder), {"status": "Accepted", "data": "from-csms"},
                 "DataTransfer result at the charger")


# ---------------------------------------------------------------------------
# 8. 2.0.1-only CSMS messages are answered by the proxy
# ---------------------------------------------------------------------------

PROXY_ANSWERED = {
    "GetTransactionStatus": (lambda: call201.GetTransactionStatus(),
                             {"messagesInQueue": False, "ongoingIndicator": Opt(ANY)}),
    "SetNetworkProfile": (lambda: call201.SetNetworkProfile(configuration_slot=1, connection_data={
        "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": "wss://csms.example/ocpp",
        "messageTimeout": 30, "securityProfile": 3, "ocppInterface": "Wired0"}),
        {"status": "Rejected", "statusInfo": Opt(ANY)}),
    "CustomerInformation": (lambda: call201.CustomerInformation(request_id=1, report=True, clear=False),
                            {"status": "Rejected", "statusInfo": Opt(ANY)}),
}


@pytest.mark.parametrize("action", sorted(PROXY_ANSWERED))
async def test_2_0_1_only_csms_call_is_answered_by_the_proxy_and_never_reaches_the_charger(h, action):
    _, _, charger, session = await started(h, f"CPONLY{action[:6].upper()}")
    request, expected = PROXY_ANSWERED[action]
    await session.cp.call(request(), suppress=False)
    assert_match(result_payload(session.recorder), expected, f"{action} result")
    await barrier(session, charger)
    assert call_actions(charger.recorder.received_frames()) == ["ClearCache"]


# ---------------------------------------------------------------------------
# one outstanding CALL per direction on the 2.0.1 link
# ---------------------------------------------------------------------------


async def test_second_charger_call_is_held_until_the_csms_answered_the_first(h):
    # OCPP-J 2.0.1 §4.1.1: no second CALL toward the CSMS while one awaits its answer, even when a
    # 1.6 charger does not wait for its own answers
    proxy, csms = await translating_proxy(h, raw_csms=True)
    ws = await h.raw_charger(proxy, "CPHOLD", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "c-1", "Heartbeat", {}]))
    await ws.send(json.dumps([2, "c-2", "Authorize", {"idTag": TAG}]))
    first = await session.recv_json()
    assert first[0] == 2 and first[2:] == ["Heartbeat", {}], first
    with pytest.raises(asyncio.TimeoutError):
        early = await asyncio.wait_for(session.connection.recv(), 0.5)
        pytest.fail(f"a second CALL reached the CSMS before the first was answered: {early}")
    await session.send_json([3, first[1], {"currentTime": CSMS_TIME}])
    assert_match(await recv_json(ws), [3, "c-1", {"currentTime": Instant(CSMS_TIME)}], "Heartbeat answer")
    second = await session.recv_json()
    assert second[0] == 2 and second[2:] == ["Authorize", {"idToken": ID_TOKEN}], second
    assert second[1] != first[1], "two CALLs on the upstream link share a message id"
    await session.send_json([3, second[1], {"idTokenInfo": {"status": "Accepted"}}])
    assert await recv_json(ws) == [3, "c-2", {"idTagInfo": {"status": "Accepted"}}]


# ---------------------------------------------------------------------------
# 10. state survives SIGKILL
# ---------------------------------------------------------------------------


async def test_transaction_survives_sigkill_with_the_same_transaction_id_and_the_next_seq_no(h):
    proxy, csms = await translating_proxy(h)
    charger, session = await connect_charger16(h, proxy, csms, "CPKILL")
    transaction_id = await start_transaction(charger)
    for ts, wh in ((T1, 1250), (T2, 1500)):
        await charger.cp.call(call16.MeterValues(connector_id=1, transaction_id=transaction_id,
                                                 meter_value=periodic_meter_value(ts, wh)), suppress=False)
    before = transaction_events(session)
    assert [e["seqNo"] for e in before] == [0, 1, 2], before
    uuid_ = before[0]["transactionInfo"]["transactionId"]

    proxy.kill()  # SIGKILL: nothing is flushed on the way out
    await expect_closed(charger.connection)
    await session.wait_closed()
    assert (h.tmp_path / "state.sqlite").exists(), "no state file at state.sqlite"

    restarted = await h.restart(proxy)
    charger2, session2 = await connect_charger16(h, restarted, csms, "CPKILL")
    await charger2.cp.call(call16.MeterValues(connector_id=1, transaction_id=transaction_id,
                                              meter_value=periodic_meter_value(T2, 1700)), suppress=False)
    await charger2.cp.call(call16.StopTransaction(meter_stop=1800, timestamp=T3, transaction_id=transaction_id,
                                                  reason="Local", id_tag=TAG), suppress=False)
    after = transaction_events(session2)
    assert len(after) == 2, after
    assert_match([{k: e[k] for k in ("eventType", "seqNo", "transactionInfo")} for e in after], [
        {"eventType": "Updated", "seqNo": 3, "transactionInfo": {"transactionId": uuid_, "chargingState": Opt(ANY)}},
        {"eventType": "Ended", "seqNo": 4,
         "transactionInfo": {"transactionId": uuid_, "stoppedReason": "Local", "chargingState": Opt(ANY)}},
    ], "TransactionEvents after the restart")
    assert_match(after[1]["meterValue"], [{"timestamp": Instant(T3),
                                           "sampledValue": [energy_sample(1800, "Transaction.End")]}])


# ---------------------------------------------------------------------------
# 11. CALLERROR codes are renamed between the versions
# ---------------------------------------------------------------------------


class RpcFrameworkError(OCPPError):
    code = "RpcFrameworkError"
    default_description = "not a valid RPC request"


CSMS_ERRORS = [  # (error the 2.0.1 CSMS raises, code the 1.6 charger must get)
    (FormatViolationError, "FormationViolation"),
    (OccurrenceConstraintViolationError, "OccurenceConstraintViolation"),
    (RpcFrameworkError, "ProtocolError"),
    (OcppNotImplementedError, "NotImplemented"),
    (PropertyConstraintViolationError, "PropertyConstraintViolation"),
]


@pytest.mark.parametrize("error,expected", CSMS_ERRORS, ids=[e.code for e, _ in CSMS_ERRORS])
async def test_csms_callerror_reaches_the_charger_with_the_1_6_error_code(h, error, expected):
    _, _, charger, session = await started(h, f"CPERR{error.code[:8].upper()}")
    session.cp.data_transfer_error = error(description="refused by the test CSMS")
    with pytest.raises((OCPPError, UnknownCallErrorCodeError)):
        await charger.cp.call(call16.DataTransfer(vendor_id="org.example.vendor", message_id="m", data="x"),
                              suppress=False)
    answer = last_answer(charger.recorder)
    assert answer[0] == 4 and len(answer) == 5, answer
    assert answer[2] == expected, f"expected {expected}, got {answer}"
    assert isinstance(answer[3], str) and isinstance(answer[4], dict), answer


CHARGER_ERRORS = [  # (error the 1.6 charger raises, code the 2.0.1 CSMS must get)
    (FormationViolationError, "FormatViolation"),
    (OccurenceConstraintViolationError, "OccurrenceConstraintViolation"),
    (OcppNotImplementedError, "NotImplemented"),
]


@pytest.mark.parametrize("error,expected", CHARGER_ERRORS, ids=[e.code for e, _ in CHARGER_ERRORS])
async def test_charger_callerror_reaches_the_csms_with_the_2_0_1_error_code(h, error, expected):
    _, _, charger, session = await started(h, f"CPCERR{error.code[:8].upper()}")
    charger.cp.clear_cache_error = error(description="refused by the test charger")
    with pytest.raises((OCPPError, UnknownCallErrorCodeError)):
        await session.cp.call(call201.ClearCache(), suppress=False)
    answer = last_answer(session.recorder)
    assert answer[0] == 4 and len(answer) == 5, answer
    assert answer[2] == expected, f"expected {expected}, got {answer}"
    assert isinstance(answer[3], str) and isinstance(answer[4], dict), answer


# ---------------------------------------------------------------------------
# EVSE layouts from the configuration
# ---------------------------------------------------------------------------


async def test_a_chargers_evse_layout_from_the_configuration_places_its_connectors(h):
    """chargers[].evses: [[1, 2], [3]]: 1.6 connectors 1 and 2 are EVSE 1's connectors 1 and 2, connector 3 is
    EVSE 2's connector 1 (a DC charger with two guns on one power module)."""
    proxy, csms = await translating_proxy(h, top={"chargers": [{"identity": "CPLAYOUT", "evses": [[1, 2], [3]]}]})
    charger, session = await connect_charger16(h, proxy, csms, "CPLAYOUT")
    for connector in (1, 2, 3):
        await charger.cp.call(call16.StatusNotification(connector_id=connector, error_code="NoError",
                                                        status="Available", timestamp=T0), suppress=False)
    assert_match(calls(session.recorder.received_frames(), "StatusNotification"), [
        {"timestamp": Instant(T0), "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
        {"timestamp": Instant(T0), "connectorStatus": "Available", "evseId": 1, "connectorId": 2},
        {"timestamp": Instant(T0), "connectorStatus": "Available", "evseId": 2, "connectorId": 1},
    ], "StatusNotifications at the CSMS")


async def test_a_models_evse_layout_applies_once_the_charger_booted_as_that_model(h):
    """models: [{model: DC-150, evses: [[1, 2]]}]: a charger with no layout of its own that boots as a DC-150 has
    its connector 2 on EVSE 1; before the boot, and for another model, connector 2 is EVSE 2."""
    proxy, csms = await translating_proxy(h, top={"models": [{"model": "DC-150", "evses": [[1, 2]]}]})
    charger, session = await connect_charger16(h, proxy, csms, "CPMODEL")

    async def status_of_connector_2() -> dict:
        await charger.cp.call(call16.StatusNotification(connector_id=2, error_code="NoError", status="Available",
                                                        timestamp=T0), suppress=False)
        return calls(session.recorder.received_frames(), "StatusNotification")[-1]

    assert_match(await status_of_connector_2(), {"evseId": 2, "connectorId": 1, "connectorStatus": "Available",
                                                 "timestamp": Instant(T0)})
    boot = await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"),
                                 suppress=False)
    assert boot.status == "Accepted", boot
    assert_match(await status_of_connector_2(), {"evseId": 1, "connectorId": 2, "connectorStatus": "Available",
                                                 "timestamp": Instant(T0)})


async def test_calls_the_rules_answer_themselves_are_counted_by_sender_and_action(h):
    """A CALL a rule answers itself (here MeterValues with only a Temperature sample, which 2.0.1 has no measurand
    for) never reaches the CSMS and is counted in ocpp_proxy_translation_answered_total."""
    proxy, _, charger, session = await started(h, "CPANSWERED")

    def answered() -> float:
        return metric_value(samples, "ocpp_proxy_translation_answered_total", **{"from": "charger",
                                                                                 "action": "MeterValues"})

    samples = await proxy.metrics()
    before = answered()
    await charger.cp.call(call16.MeterValues(connector_id=1, meter_value=[{"timestamp": T0, "sampledValue": [
        {"value": "21", "measurand": "Temperature", "unit": "Celsius"}]}]), suppress=False)
    assert calls(session.recorder.received_frames(), "MeterValues") == []
    samples = await proxy.metrics()
    assert answered() == before + 1
