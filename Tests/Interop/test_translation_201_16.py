"""OCPP 2.0.1 station -> proxy (translating with Rules/ocpp2.0.1-ocpp1.6.yaml) -> OCPP 1.6 CSMS.

The mirror of test_translation_16_201.py. Both peers are the ``ocpp`` package with its schema validation on
(a frame the proxy translates badly is refused by the receiving peer, not only by these assertions): the
station is an ``ocpp.v201.ChargePoint`` on a real WebSocket client (subprotocol ocpp2.0.1), the CSMS an
``ocpp.v16.ChargePoint`` on the upstream side (subprotocol ocpp1.6). Every test asserts the exact payload the
other side received; the few fields a translation may legitimately fill in or leave out are declared with
``Opt``/``AnyOf`` (translation_support.py). Message ids on the upstream link are the proxy's own.

The CSMS hands out a new 1.6 transaction id for every StartTransaction it answers, unique in the whole run
(``TRANSACTION_IDS``), so a StartTransaction the proxy sends again by mistake gets an id the test can tell apart.
"""

from __future__ import annotations

import asyncio
import decimal
import itertools
import uuid

import pytest
from ocpp.exceptions import InternalError, OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from harness import RULES_DIR, V16, V201, expect_closed
from translation_support import (
    RoutesConcurrently,
    answer_to,
    last_answer,
    result_payload,
    ANY,
    CSMS_TIME,
    IS_INT,
    AnyOf,
    Instant,
    Opt,
    Pred,
    assert_match,
    call_actions,
    calls,
    wait_for_call,
)

PAIR_FILE = RULES_DIR / "ocpp2.0.1-ocpp1.6.yaml"
RESPONSE_TIMEOUT = 10

TAG = "04A1B2C3D4E5F6"  # 14 hex digits: a 7-byte ISO 14443 UID
ID_TOKEN = {"id_token": TAG, "type": "ISO14443"}  # as the ocpp package takes it (snake case)
T0 = "2026-01-01T10:00:00.000Z"
T1 = "2026-01-01T10:15:00.000Z"
T2 = "2026-01-01T10:30:00.000Z"
T3 = "2026-01-01T10:45:00.000Z"

# every StartTransaction the test CSMS answers gets the next one: never the same id twice in a run
TRANSACTION_IDS = itertools.count(5001)


def num_text(expected) -> Pred:
    """A 1.6 sampled value: a decimal text denoting ``expected`` ("1250" or "1250.0" for 1250)."""
    want = decimal.Decimal(str(expected))
    return Pred(lambda v: isinstance(v, str) and decimal.Decimal(v) == want, f"NumText({expected})")


# ---------------------------------------------------------------------------
# the peers
# ---------------------------------------------------------------------------


class Csms16(ChargePoint16):
    """A 1.6 CSMS. Tests tune it through the attributes before the station sends."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)
        self.start_errors: list[OCPPError] = []  # raised (as CALLERRORs) by the next StartTransactions, in order
        self.given_ids: list[int] = []  # transaction ids given, in order

    @on(Action16.boot_notification)
    def on_boot_notification(self, charge_point_vendor, charge_point_model, **_):
        return result16.BootNotification(current_time=CSMS_TIME, interval=300, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_):
        return result16.Heartbeat(current_time=CSMS_TIME)

    @on(Action16.authorize)
    def on_authorize(self, id_tag, **_):
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.status_notification)
    def on_status_notification(self, connector_id, error_code, status, **_):
        return result16.StatusNotification()

    @on(Action16.start_transaction)
    def on_start_transaction(self, connector_id, id_tag, meter_start, timestamp, **_):
        if self.start_errors:
            raise self.start_errors.pop(0)
        transaction_id = next(TRANSACTION_IDS)
        self.given_ids.append(transaction_id)
        return result16.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": "Accepted"})

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id, meter_value, **_):
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop_transaction(self, meter_stop, timestamp, transaction_id, **_):
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})


class Station201(RoutesConcurrently, ChargePoint201):
    """A 2.0.1 charging station answering every CSMS CALL the tests send; answers tuned by the attributes.

    Incoming frames are routed concurrently (the ``ocpp`` package's own loop handles one frame at a time), as
    TranslationCharger16 does.
    """

    VARIABLES = {
        ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
        ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
    }

    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)
        self.set_answers: dict[str, str] = {}  # variable name -> attributeStatus of SetVariables
        self.availability_answer = "Accepted"
        self.unlock_answer = "Unlocked"
        self.reset_answer = "Accepted"

    @on(Action201.request_start_transaction)
    def on_request_start_transaction(self, id_token, remote_start_id, **_):
        return result201.RequestStartTransaction(status="Accepted")

    @on(Action201.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id, **_):
        return result201.RequestStopTransaction(status="Accepted")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data, **_):
        results = []
        for item in get_variable_data:
            component, variable = item["component"]["name"], item["variable"]["name"]
            value = self.VARIABLES.get((component, variable))
            known_component = any(c == component for c, _ in self.VARIABLES)
            entry = {
                "attribute_status": "Accepted" if value is not None else (
                    "UnknownVariable" if known_component else "UnknownComponent"),
                "component": item["component"],
                "variable": item["variable"],
            }
            if value is not None:
                entry["attribute_value"] = value
            results.append(entry)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.set_variables)
    def on_set_variables(self, set_variable_data, **_):
        return result201.SetVariables(set_variable_result=[{
            "attribute_status": self.set_answers.get(item["variable"]["name"], "Accepted"),
            "component": item["component"],
            "variable": item["variable"],
        } for item in set_variable_data])

    @on(Action201.reset)
    def on_reset(self, type, **_):
        return result201.Reset(status=self.reset_answer)

    @on(Action201.change_availability)
    def on_change_availability(self, operational_status, **_):
        return result201.ChangeAvailability(status=self.availability_answer)

    @on(Action201.unlock_connector)
    def on_unlock_connector(self, evse_id, connector_id, **_):
        return result201.UnlockConnector(status=self.unlock_answer)

    @on(Action201.trigger_message)
    def on_trigger_message(self, requested_message, **_):
        return result201.TriggerMessage(status="Accepted")


async def started(h, identity: str):
    """A 1.6 CSMS, a proxy translating 2.0.1 stations for it, and a 2.0.1 station connected through it."""
    assert PAIR_FILE.exists(), f"no rule file {PAIR_FILE.name} in {RULES_DIR}"
    proxy, csms = await h.pair(V16, cp_factory=Csms16, translate=True)
    station, session = await connect_station(h, proxy, csms, identity)
    return proxy, csms, station, session


async def connect_station(h, proxy, csms, identity: str):
    """A 2.0.1 ``ocpp`` station on the proxy and the 1.6 upstream session the proxy opened for it."""
    station = await h.charger(proxy, identity, V201, cp_factory=Station201)
    session = await csms.next_session()
    assert session.identity == identity
    assert session.subprotocol == V16, f"upstream link negotiated {session.subprotocol!r}, expected {V16!r}"
    return station, session


# ---------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------


def received(peer, action: str) -> list[dict]:
    """Payloads of the CALLs of ``action`` a peer (station or CSMS session) received, in order."""
    return calls(peer.recorder.received_frames(), action)


def sample(value, measurand: str, context: str, unit: str, **extra) -> dict:
    return {"value": value, "measurand": measurand, "context": context, "unit_of_measure": {"unit": unit}, **extra}


def sample16(value, measurand: str, context: str, unit: str, **extra) -> dict:
    """What ``sample`` becomes in 1.6: the value as a decimal text, unit instead of unitOfMeasure."""
    return {"value": num_text(value), "measurand": measurand, "context": context, "unit": unit,
            "format": Opt("Raw"), **extra}


def begin_values(wh, ts: str = T0, unit: str = "Wh") -> list:
    """Transaction.Begin readings: a voltage and the register of phase L1 before the whole meter's register."""
    return [{"timestamp": ts, "sampled_value": [
        sample(230.1, "Voltage", "Transaction.Begin", "V", phase="L1-N"),
        sample(wh / 4, "Energy.Active.Import.Register", "Transaction.Begin", unit, phase="L1"),
        sample(wh, "Energy.Active.Import.Register", "Transaction.Begin", unit),
    ]}]


def periodic_values(wh, ts: str) -> list:
    return [{"timestamp": ts, "sampled_value": [
        sample(wh, "Energy.Active.Import.Register", "Sample.Periodic", "Wh"),
        sample(16.5, "Current.Import", "Sample.Periodic", "A", phase="L1"),
        sample(7.2, "Power.Active.Import", "Sample.Periodic", "kW", location="Outlet"),
    ]}]


def periodic_values16(wh, ts: str) -> list:
    return [{"timestamp": Instant(ts), "sampledValue": [
        sample16(wh, "Energy.Active.Import.Register", "Sample.Periodic", "Wh"),
        sample16(16.5, "Current.Import", "Sample.Periodic", "A", phase="L1"),
        sample16(7.2, "Power.Active.Import", "Sample.Periodic", "kW", location="Outlet"),
    ]}]


def end_values(wh, ts: str = T3, unit: str = "Wh") -> list:
    """What an Ended event carries: a last periodic reading (a smaller register), then the Transaction.End
    readings (a current first, then the register)."""
    return [
        {"timestamp": T2,
         "sampled_value": [sample(wh * 0.9, "Energy.Active.Import.Register", "Sample.Periodic", unit)]},
        {"timestamp": ts, "sampled_value": [
            sample(0, "Current.Import", "Transaction.End", "A", phase="L1"),
            sample(wh, "Energy.Active.Import.Register", "Transaction.End", unit),
        ]},
    ]


def tx_started(tx: str, wh=1000, *, trigger: str = "Authorized", remote_start_id: int | None = None,
               id_token: dict = ID_TOKEN, ts: str = T0, unit: str = "Wh"):
    info = {"transaction_id": tx, "charging_state": "EVConnected"}
    if remote_start_id is not None:
        info["remote_start_id"] = remote_start_id
    return call201.TransactionEvent(
        event_type="Started", timestamp=ts, trigger_reason=trigger, seq_no=0, transaction_info=info,
        id_token=id_token, evse={"id": 1, "connector_id": 1}, meter_value=begin_values(wh, ts, unit))


def tx_updated(tx: str, seq_no: int, wh, ts: str, charging_state: str | None = None):
    """Readings; ``charging_state`` only when it changed (as stations report it)."""
    info = {"transaction_id": tx}
    if charging_state is not None:
        info["charging_state"] = charging_state
    return call201.TransactionEvent(
        event_type="Updated", timestamp=ts, trigger_reason="MeterValuePeriodic", seq_no=seq_no,
        transaction_info=info, meter_value=periodic_values(wh, ts))


def tx_ended(tx: str, seq_no: int, wh, *, reason: str = "Local", trigger: str = "StopAuthorized",
             ts: str = T3, unit: str = "Wh", id_token: dict | None = ID_TOKEN):
    return call201.TransactionEvent(
        event_type="Ended", timestamp=ts, trigger_reason=trigger, seq_no=seq_no,
        transaction_info={"transaction_id": tx, "charging_state": "EVConnected", "stopped_reason": reason},
        id_token=id_token, evse={"id": 1, "connector_id": 1}, meter_value=end_values(wh, ts, unit))


def status16(status: str, ts: str) -> dict:
    return {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": Instant(ts)}


def expected_start(meter_start: int, ts: str = T0) -> dict:
    return {"connectorId": 1, "idTag": TAG, "meterStart": meter_start, "timestamp": Instant(ts)}


def expected_meter_values(transaction_id: int, wh, ts: str) -> dict:
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": periodic_values16(wh, ts)}


def expected_stop(transaction_id: int, meter_stop: int, reason: str, ts: str = T3) -> dict:
    return {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": Instant(ts), "reason": reason,
            "idTag": Opt(TAG), "transactionData": Opt(ANY)}


ACCEPTED_TOKEN = {"idTokenInfo": {"status": "Accepted"}}


# ---------------------------------------------------------------------------
# 1. a whole session: boot, status, remote start, meter values, remote stop
# ---------------------------------------------------------------------------


async def test_whole_session_from_remote_start_to_remote_stop(h):
    _, _, station, session = await started(h, "ST201SESSION")

    # BootNotification
    boot = await station.cp.call(call201.BootNotification(
        charging_station={"vendor_name": "ocpp-proxy-tests", "model": "Interop-201", "serial_number": "SN-201",
                          "firmware_version": "2.0.1-fw"},
        reason="PowerUp"), suppress=False)
    assert_match(received(session, "BootNotification"), [{
        "chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Interop-201",
        "chargePointSerialNumber": "SN-201", "firmwareVersion": "2.0.1-fw",
    }], "BootNotification at the CSMS")
    assert_match(result_payload(station.recorder),
                 {"status": "Accepted", "interval": 300, "currentTime": Instant(CSMS_TIME)},
                 "BootNotification result at the station")
    assert boot.status == "Accepted"

    # StatusNotification
    await station.cp.call(call201.StatusNotification(timestamp=T0, connector_status="Available", evse_id=1,
                                                     connector_id=1), suppress=False)
    assert result_payload(station.recorder) == {}
    assert_match(received(session, "StatusNotification"), [
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": Instant(T0)},
    ], "StatusNotification at the CSMS")

    # RemoteStartTransaction -> RequestStartTransaction with a remoteStartId
    remote_start = await session.cp.call(call16.RemoteStartTransaction(id_tag=TAG, connector_id=1), suppress=False)
    assert remote_start.status == "Accepted"
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "RemoteStartTransaction result")
    [request] = received(station, "RequestStartTransaction")
    assert_match(request, {
        "idToken": {"idToken": TAG, "type": AnyOf("ISO14443", "Central")},
        "remoteStartId": IS_INT,
        "evseId": 1,
    }, "RequestStartTransaction at the station")
    remote_start_id = request["remoteStartId"]
    token = {"id_token": request["idToken"]["idToken"], "type": request["idToken"]["type"]}

    # TransactionEvent(Started) -> StartTransaction; the CSMS's id is the transaction's from now on
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started(tx, 1000, trigger="RemoteStart", remote_start_id=remote_start_id,
                                     id_token=token), suppress=False)
    assert_match(result_payload(station.recorder), ACCEPTED_TOKEN, "TransactionEvent(Started) result")
    assert_match(received(session, "StartTransaction"), [expected_start(1000)], "StartTransaction at the CSMS")
    [transaction_id] = session.cp.given_ids
    # then (a `then` step, after the answer went back) the 1.6 status of the transaction's charging state
    # (EVConnected: plugged in, nothing drawn)
    statuses = await wait_for_call(session.recorder, "StatusNotification", 2)
    assert_match(statuses[1:], [status16("SuspendedEV", T0)], "StatusNotification after the StartTransaction")

    # a StatusNotification Occupied during the transaction: the 1.6 status of its charging state
    await station.cp.call(call201.StatusNotification(timestamp=T1, connector_status="Occupied", evse_id=1,
                                                     connector_id=1), suppress=False)
    assert_match(received(session, "StatusNotification")[2:], [status16("SuspendedEV", T1)],
                 "StatusNotification(Occupied) at the CSMS")

    # TransactionEvent(Updated) with meter values -> MeterValues with the CSMS's id and the true readings;
    # its new charging state -> StatusNotification Charging
    await station.cp.call(tx_updated(tx, 1, 1250, T1, "Charging"), suppress=False)
    assert result_payload(station.recorder) == {}
    assert_match(received(session, "MeterValues"), [expected_meter_values(transaction_id, 1250, T1)],
                 "MeterValues at the CSMS")
    statuses = await wait_for_call(session.recorder, "StatusNotification", 4)
    assert_match(statuses[3:], [status16("Charging", T1)], "StatusNotification after the MeterValues")

    # RemoteStopTransaction(that id) -> RequestStopTransaction(the UUID)
    remote_stop = await session.cp.call(call16.RemoteStopTransaction(transaction_id=transaction_id), suppress=False)
    assert remote_stop.status == "Accepted"
    assert_match(result_payload(session.recorder), {"status": "Accepted"}, "RemoteStopTransaction result")
    assert received(station, "RequestStopTransaction") == [{"transactionId": tx}]

    # TransactionEvent(Ended) -> StopTransaction with meterStop = the End register
    await station.cp.call(tx_ended(tx, 2, 1800, reason="Remote", trigger="RemoteStop"), suppress=False)
    assert_match(result_payload(station.recorder), {"idTokenInfo": Opt({"status": "Accepted"})},
                 "TransactionEvent(Ended) result")
    assert_match(received(session, "StopTransaction"), [expected_stop(transaction_id, 1800, "Remote")],
                 "StopTransaction at the CSMS")

    assert call_actions(session.recorder.received_frames()) == [
        "BootNotification", "StatusNotification", "StartTransaction", "StatusNotification", "StatusNotification",
        "MeterValues", "StatusNotification", "StopTransaction"]
    assert call_actions(station.recorder.received_frames()) == ["RequestStartTransaction", "RequestStopTransaction"]


async def test_heartbeat_and_authorize_reach_the_csms_and_the_answers_come_back(h):
    _, _, station, session = await started(h, "ST201AUTH")
    await station.cp.call(call201.Heartbeat(), suppress=False)
    assert_match(result_payload(station.recorder), {"currentTime": Instant(CSMS_TIME)}, "Heartbeat result")
    await station.cp.call(call201.Authorize(id_token=ID_TOKEN), suppress=False)
    assert received(session, "Authorize") == [{"idTag": TAG}]
    assert_match(result_payload(station.recorder), ACCEPTED_TOKEN, "Authorize result at the station")
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat", "Authorize"]


async def test_start_and_stop_read_the_energy_register_in_kwh_as_wh(h):
    # meterStart/meterStop are Wh in 1.6; a 2.0.1 register may come in kWh (unitOfMeasure.unit)
    _, _, station, session = await started(h, "ST201KWH")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started(tx, 12.5, unit="kWh"), suppress=False)
    assert_match(received(session, "StartTransaction"), [expected_start(12500)], "StartTransaction at the CSMS")
    [transaction_id] = session.cp.given_ids
    await station.cp.call(tx_ended(tx, 1, 14.25, unit="kWh"), suppress=False)
    assert_match(received(session, "StopTransaction"), [expected_stop(transaction_id, 14250, "Local")],
                 "StopTransaction at the CSMS")


def tx_started_without_token(tx: str, wh=1000, ts: str = T0):
    """A station whose transactions start when the cable is plugged in (TxStartPoint EVConnected): no idToken."""
    return call201.TransactionEvent(
        event_type="Started", timestamp=ts, trigger_reason="CablePluggedIn", seq_no=0,
        transaction_info={"transaction_id": tx, "charging_state": "EVConnected"},
        evse={"id": 1, "connector_id": 1}, meter_value=begin_values(wh, ts))


async def test_transaction_started_before_authorization_starts_at_the_csms_when_the_token_comes(h):
    _, _, station, session = await started(h, "ST201PLUGFIRST")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started_without_token(tx, 1000), suppress=False)
    assert result_payload(station.recorder) == {}
    # the CSMS hears of it when the token comes (an Updated with triggerReason Authorized)
    await station.cp.call(call201.TransactionEvent(
        event_type="Updated", timestamp=T1, trigger_reason="Authorized", seq_no=1,
        transaction_info={"transaction_id": tx, "charging_state": "Charging"}, id_token=ID_TOKEN), suppress=False)
    assert_match(result_payload(station.recorder), ACCEPTED_TOKEN, "TransactionEvent(Updated, Authorized) result")
    assert_match(received(session, "StartTransaction"), [
        {"connectorId": 1, "idTag": TAG, "meterStart": 1000, "timestamp": AnyOf(Instant(T0), Instant(T1))},
    ], "StartTransaction at the CSMS")
    [transaction_id] = session.cp.given_ids
    await station.cp.call(tx_updated(tx, 2, 1250, T2), suppress=False)
    assert_match(received(session, "MeterValues"), [expected_meter_values(transaction_id, 1250, T2)],
                 "MeterValues at the CSMS")
    await station.cp.call(tx_ended(tx, 3, 1800, id_token=None), suppress=False)
    assert_match(received(session, "StopTransaction"), [expected_stop(transaction_id, 1800, "Local")],
                 "StopTransaction at the CSMS")
    actions = call_actions(session.recorder.received_frames())
    transaction_actions = [a for a in actions if a != "StatusNotification"]
    assert transaction_actions == ["StartTransaction", "MeterValues", "StopTransaction"], actions


async def test_transaction_authorized_only_at_its_end_is_started_and_stopped_at_the_csms(h):
    _, _, station, session = await started(h, "ST201AUTHEND")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started_without_token(tx, 1000), suppress=False)
    await station.cp.call(tx_ended(tx, 1, 1800), suppress=False)
    assert_match(result_payload(station.recorder), {"idTokenInfo": Opt({"status": "Accepted"})},
                 "TransactionEvent(Ended) result")
    assert call_actions(session.recorder.received_frames()) == ["StartTransaction", "StopTransaction"]
    assert_match(received(session, "StartTransaction"), [expected_start(1000)], "StartTransaction at the CSMS")
    [transaction_id] = session.cp.given_ids
    assert_match(received(session, "StopTransaction"), [expected_stop(transaction_id, 1800, "Local")],
                 "StopTransaction at the CSMS")


# ---------------------------------------------------------------------------
# 2. CSMS commands
# ---------------------------------------------------------------------------


def cv(component: str, variable: str) -> dict:
    return {"component": {"name": component}, "variable": {"name": variable}}


async def test_get_configuration_becomes_get_variables_and_the_values_come_back(h):
    _, _, station, session = await started(h, "ST201GETCFG")
    result = await session.cp.call(call16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]), suppress=False)
    [request] = received(station, "GetVariables")
    asked = request["getVariableData"]
    assert_match(asked[0], {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeType": Opt("Actual")},
                 "GetVariables item for HeartbeatInterval")
    assert len(asked) <= 2, asked  # NoSuchKey may be asked (as some component) or answered by the proxy
    assert_match(result_payload(session.recorder), {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["NoSuchKey"],
    }, "GetConfiguration result at the CSMS")
    assert result.configuration_key[0]["value"] == "300"


async def test_get_configuration_of_an_interval_reads_its_device_model_variable(h):
    _, _, station, session = await started(h, "ST201GETCFG2")
    await session.cp.call(call16.GetConfiguration(key=["MeterValueSampleInterval"]), suppress=False)
    assert_match(received(station, "GetVariables"), [{"getVariableData": [
        {**cv("SampledDataCtrlr", "TxUpdatedInterval"), "attributeType": Opt("Actual")}]}],
        "GetVariables at the station")
    assert_match(result_payload(session.recorder), {
        "configurationKey": [{"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}],
        "unknownKey": Opt([]),
    }, "GetConfiguration result at the CSMS")


@pytest.mark.parametrize("station_answer,expected", [
    ("Accepted", "Accepted"),
    ("RebootRequired", "RebootRequired"),
    ("Rejected", "Rejected"),
    ("UnknownVariable", "NotSupported"),
])
async def test_change_configuration_becomes_set_variables_and_its_status_comes_back(h, station_answer, expected):
    _, _, station, session = await started(h, f"ST201SET{station_answer[:8].upper()}")
    station.cp.set_answers = {"HeartbeatInterval": station_answer}
    await session.cp.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="120"), suppress=False)
    assert_match(received(station, "SetVariables"), [{"setVariableData": [
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "120", "attributeType": Opt("Actual")}]}],
        "SetVariables at the station")
    assert result_payload(session.recorder) == {"status": expected}


@pytest.mark.parametrize("reset_type,expected", [("Soft", "OnIdle"), ("Hard", "Immediate")])
async def test_reset_becomes_reset_of_the_2_0_1_type(h, reset_type, expected):
    _, _, station, session = await started(h, f"ST201RESET{reset_type.upper()}")
    await session.cp.call(call16.Reset(type=reset_type), suppress=False)
    assert received(station, "Reset") == [{"type": expected}]
    assert result_payload(session.recorder) == {"status": "Accepted"}


async def test_reset_rejected_by_the_station_is_rejected_at_the_csms(h):
    _, _, station, session = await started(h, "ST201RESETREJ")
    station.cp.reset_answer = "Rejected"
    await session.cp.call(call16.Reset(type="Hard"), suppress=False)
    assert result_payload(session.recorder) == {"status": "Rejected"}


async def test_change_availability_of_connector_1_becomes_evse_1(h):
    _, _, station, session = await started(h, "ST201AVAIL1")
    await session.cp.call(call16.ChangeAvailability(connector_id=1, type="Inoperative"), suppress=False)
    assert_match(received(station, "ChangeAvailability"),
                 [{"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": Opt(1)}}],
                 "ChangeAvailability at the station")
    assert result_payload(session.recorder) == {"status": "Accepted"}


async def test_change_availability_of_connector_0_is_the_whole_station_and_scheduled_comes_back(h):
    _, _, station, session = await started(h, "ST201AVAIL0")
    station.cp.availability_answer = "Scheduled"
    await session.cp.call(call16.ChangeAvailability(connector_id=0, type="Operative"), suppress=False)
    assert received(station, "ChangeAvailability") == [{"operationalStatus": "Operative"}]
    assert result_payload(session.recorder) == {"status": "Scheduled"}


@pytest.mark.parametrize("station_answer", ["Unlocked", "UnlockFailed"])
async def test_unlock_connector_becomes_unlock_of_evse_1_connector_1(h, station_answer):
    _, _, station, session = await started(h, f"ST201UNLOCK{station_answer[:6].upper()}")
    station.cp.unlock_answer = station_answer
    await session.cp.call(call16.UnlockConnector(connector_id=1), suppress=False)
    assert received(station, "UnlockConnector") == [{"evseId": 1, "connectorId": 1}]
    assert result_payload(session.recorder) == {"status": station_answer}


@pytest.mark.parametrize("message,connector_id,expected", [
    ("StatusNotification", 1, {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": Opt(1)}}),
    ("MeterValues", 1, {"requestedMessage": "MeterValues", "evse": {"id": 1, "connectorId": Opt(1)}}),
    ("BootNotification", None, {"requestedMessage": "BootNotification"}),
    ("Heartbeat", None, {"requestedMessage": "Heartbeat"}),
])
async def test_trigger_message_reaches_the_station_with_the_evse_of_the_connector(h, message, connector_id,
                                                                                  expected):
    _, _, station, session = await started(h, f"ST201TRIG{message[:6].upper()}")
    await session.cp.call(call16.TriggerMessage(requested_message=message, connector_id=connector_id),
                          suppress=False)
    assert_match(received(station, "TriggerMessage"), [expected], "TriggerMessage at the station")
    assert result_payload(session.recorder) == {"status": "Accepted"}


async def test_remote_stop_of_an_unknown_transaction_is_rejected_without_reaching_the_station(h):
    _, _, station, session = await started(h, "ST201RSTOPX")
    await session.cp.call(call16.RemoteStopTransaction(transaction_id=987654), suppress=False)
    assert result_payload(session.recorder) == {"status": "Rejected"}
    # a round trip after it: every CSMS frame before it has reached the station (or never will)
    await session.cp.call(call16.Reset(type="Soft"), suppress=False)
    assert call_actions(station.recorder.received_frames()) == ["Reset"]


# ---------------------------------------------------------------------------
# 3. state survives SIGKILL
# ---------------------------------------------------------------------------


async def test_transaction_survives_sigkill_and_ends_with_the_id_the_csms_gave_before(h):
    proxy, csms, station, session = await started(h, "ST201KILL")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started(tx, 1000), suppress=False)
    assert_match(result_payload(station.recorder), ACCEPTED_TOKEN, "TransactionEvent(Started) result")
    [transaction_id] = session.cp.given_ids
    await station.cp.call(tx_updated(tx, 1, 1250, T1), suppress=False)
    assert_match(received(session, "MeterValues"), [expected_meter_values(transaction_id, 1250, T1)],
                 "MeterValues before the kill")

    proxy.kill()  # SIGKILL: nothing is flushed on the way out
    await expect_closed(station.connection)
    await session.wait_closed()
    assert (h.tmp_path / "state.sqlite").exists(), "no state file at state.sqlite"

    restarted = await h.restart(proxy)
    station2, session2 = await connect_station(h, restarted, csms, "ST201KILL")
    await station2.cp.call(tx_updated(tx, 2, 1500, T2), suppress=False)
    assert result_payload(station2.recorder) == {}
    await station2.cp.call(tx_ended(tx, 3, 1800), suppress=False)
    assert_match(received(session2, "MeterValues"), [expected_meter_values(transaction_id, 1500, T2)],
                 "MeterValues after the restart")
    assert_match(received(session2, "StopTransaction"), [expected_stop(transaction_id, 1800, "Local")],
                 "StopTransaction after the restart")
    assert call_actions(session2.recorder.received_frames()) == ["MeterValues", "StopTransaction"], (
        "after the restart the CSMS must see no new StartTransaction")
    assert session2.cp.given_ids == []


# ---------------------------------------------------------------------------
# 4. retries: a refused StartTransaction, a Started sent again
# ---------------------------------------------------------------------------


async def test_started_retried_after_a_callerror_starts_the_transaction_the_csms_answered(h):
    _, _, station, session = await started(h, "ST201RETRY")
    session.cp.start_errors = [InternalError(description="CSMS database busy")]
    tx = str(uuid.uuid4())
    with pytest.raises(InternalError):
        await station.cp.call(tx_started(tx, 1000), suppress=False)
    answer = last_answer(station.recorder)
    assert answer[0] == 4 and answer[2] == "InternalError", f"expected an InternalError CALLERROR, got {answer}"
    assert_match(received(session, "StartTransaction"), [expected_start(1000)], "first StartTransaction")
    assert session.cp.given_ids == []

    # the station retries the same event (same UUID, seqNo 0)
    await station.cp.call(tx_started(tx, 1000), suppress=False)
    assert_match(result_payload(station.recorder), ACCEPTED_TOKEN, "retried TransactionEvent(Started) result")
    assert_match(received(session, "StartTransaction"), [expected_start(1000)] * 2, "StartTransactions at the CSMS")
    [transaction_id] = session.cp.given_ids

    await station.cp.call(tx_updated(tx, 1, 1250, T1), suppress=False)
    assert_match(received(session, "MeterValues"), [expected_meter_values(transaction_id, 1250, T1)],
                 "MeterValues after the retry")
    await station.cp.call(tx_ended(tx, 2, 1800), suppress=False)
    assert_match(received(session, "StopTransaction"), [expected_stop(transaction_id, 1800, "Local")],
                 "StopTransaction after the retry")


async def test_started_sent_again_after_its_answer_is_answered_by_the_proxy_without_a_second_start(h):
    # the station did not get (or lost) the answer to Started and sends the same event again
    _, _, station, session = await started(h, "ST201RESEND")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started(tx, 1000), suppress=False)
    [transaction_id] = session.cp.given_ids
    await station.cp.call(tx_started(tx, 1000), suppress=False)
    assert_match(result_payload(station.recorder), {"idTokenInfo": Opt({"status": "Accepted"})},
                 "answer to the Started sent again")
    # the next event is translated after the resent one: had it gone upstream, it would be here by now
    await station.cp.call(tx_updated(tx, 1, 1250, T1), suppress=False)
    assert_match(received(session, "MeterValues"), [expected_meter_values(transaction_id, 1250, T1)],
                 "MeterValues after the resent Started")
    assert_match(received(session, "StartTransaction"), [expected_start(1000)], "StartTransactions at the CSMS")
    assert session.cp.given_ids == [transaction_id]


async def test_started_sent_again_on_a_new_connection_is_answered_by_the_proxy(h):
    # the station lost its connection before the answer to Started reached it, reconnects and sends it again
    proxy, csms, station, session = await started(h, "ST201LOST")
    tx = str(uuid.uuid4())
    await station.cp.call(tx_started(tx, 1000), suppress=False)
    [transaction_id] = session.cp.given_ids
    await station.close()
    await session.wait_closed()
    station2, session2 = await connect_station(h, proxy, csms, "ST201LOST")
    await station2.cp.call(tx_started(tx, 1000), suppress=False)
    assert_match(result_payload(station2.recorder), {"idTokenInfo": Opt({"status": "Accepted"})},
                 "answer to the Started sent again")
    await station2.cp.call(tx_ended(tx, 1, 1800), suppress=False)
    assert call_actions(session2.recorder.received_frames()) == ["StopTransaction"]
    assert_match(received(session2, "StopTransaction"), [expected_stop(transaction_id, 1800, "Local")],
                 "StopTransaction on the new connection")
