"""A whole charging session of a SOAP charger through the proxy (issue 12: Tests).

A zeep charger driven by the official CentralSystemService WSDL of its version (1.5 or 1.6) POSTs to the
proxy's SOAP listener; the CSMS is the ``ocpp`` package (schema validation on) in 1.6 or 2.0.1. Each test
checks what the CSMS received, and what the charger got back (answers validated against the WSDL).

* 1.5 charger, 2.0.1 CSMS: the chain 1.5 -> 1.6 -> 2.0.1 (TransactionEvent fields, seqNo, one transactionId);
* 1.5 charger, 1.6 CSMS: heartbeatInterval <-> interval, Occupied split by transaction state, ``values`` with
  attributes -> meterValue[].sampledValue[], Amp/Volt -> A/V;
* 1.6 charger, 1.6 CSMS: a change of transport only, the CSMS receives exactly what the charger sent;
* a 1.5 transaction survives a SIGKILL of the proxy (same transactionId at the 2.0.1 CSMS).
"""

from __future__ import annotations

from harness import V16, V201
from soap_peers import CSMS_TIME, V15, SoapCsms16, soap_proxy, soap_station
from translation_support import (
    times_after_connecting,
    ANY,
    ANY_DATETIME,
    IS_UUID,
    AnyOf,
    Instant,
    Opt,
    Pred,
    assert_match,
    call_actions,
    calls,
    parse_datetime,
)

TAG = "04A1B2C3D4E5F6"  # a 7-byte ISO 14443 UID
ID_TOKEN = {"idToken": TAG, "type": "ISO14443"}
# a charger online now: its events are dated after the connection began (translation_support)
T0, T1, T2, T3 = times_after_connecting()
BOOT = {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Legacy-S",
        "chargePointSerialNumber": "SN-0001", "firmwareVersion": "1.0.0"}
NOW = parse_datetime(CSMS_TIME)
WH = AnyOf({"unit": "Wh"}, {"unit": "Wh", "multiplier": 0})
A = AnyOf({"unit": "A"}, {"unit": "A", "multiplier": 0})
V = AnyOf({"unit": "V"}, {"unit": "V", "multiplier": 0})
IS_STRING = Pred(lambda v: isinstance(v, str) and v != "", "a string")


def values_15(ts: str, wh: int) -> list:
    """1.5 MeterValues ``values``: a timestamp and ``value`` texts carrying their attributes."""
    return [{"timestamp": ts, "value": [
        {"_value_1": str(wh), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "unit": "Wh"},
        {"_value_1": "16.5", "context": "Sample.Periodic", "measurand": "Current.Import", "unit": "Amp"},
        {"_value_1": "230", "context": "Sample.Periodic", "measurand": "Voltage", "unit": "Volt"},
    ]}]


def sampled_values_16(ts: str, wh: int) -> list:
    """The same readings as 1.6 ``meterValue`` (units Amp -> A, Volt -> V)."""
    return [{"timestamp": Instant(ts), "sampledValue": [
        {"value": str(wh), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "unit": "Wh"},
        {"value": "16.5", "context": "Sample.Periodic", "measurand": "Current.Import", "unit": "A"},
        {"value": "230", "context": "Sample.Periodic", "measurand": "Voltage", "unit": "V"},
    ]}]


def sampled_values_201(ts: str, wh: int) -> list:
    return [{"timestamp": Instant(ts), "sampledValue": [
        {"value": wh, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "unitOfMeasure": Opt(WH)},
        {"value": 16.5, "context": "Sample.Periodic", "measurand": "Current.Import", "unitOfMeasure": A},
        {"value": 230, "context": "Sample.Periodic", "measurand": "Voltage", "unitOfMeasure": V},
    ]}]


def energy_201(wh: int, ts: str, context: str) -> list:
    return [{"timestamp": Instant(ts), "sampledValue": [{
        "value": wh, "context": context, "measurand": Opt("Energy.Active.Import.Register"), "unitOfMeasure": Opt(WH),
    }]}]


async def test_soap_1_5_charger_runs_a_whole_charging_session_on_a_2_0_1_csms(h):
    proxy, csms = await soap_proxy(h, V201)
    station = await soap_station(h, proxy, V15, "LEGACY15A")

    assert await station.call("BootNotification", **BOOT) == {
        "status": "Accepted", "currentTime": NOW, "heartbeatInterval": 300}
    session = await csms.next_session()
    assert (session.identity, session.subprotocol) == ("LEGACY15A", V201)
    assert await station.call("Authorize", idTag=TAG) == {"idTagInfo": {"status": "Accepted"}}
    assert await station.call("StatusNotification", connectorId=1, status="Occupied", errorCode="NoError",
                              timestamp=T0) == {}
    start = await station.call("StartTransaction", connectorId=1, idTag=TAG, timestamp=T0, meterStart=1000)
    assert_match(start, {"transactionId": Pred(lambda v: isinstance(v, int), "an int"),
                         "idTagInfo": {"status": "Accepted"}}, "StartTransaction answer at the charger")
    transaction_id = start["transactionId"]
    assert await station.call("MeterValues", connectorId=1, transactionId=transaction_id,
                              values=values_15(T1, 1250)) == {}
    assert await station.call("StopTransaction", transactionId=transaction_id, idTag=TAG, timestamp=T3,
                              meterStop=1800) == {"idTagInfo": {"status": "Accepted"}}
    assert await station.call("Heartbeat") == {"currentTime": NOW}

    frames = session.recorder.received_frames()
    assert call_actions(frames) == ["BootNotification", "Authorize", "StatusNotification", "TransactionEvent",
                                    "TransactionEvent", "TransactionEvent", "Heartbeat"]
    assert_match(calls(frames, "BootNotification"), [{
        "chargingStation": {"vendorName": "ocpp-proxy-tests", "model": "Legacy-S", "serialNumber": "SN-0001",
                            "firmwareVersion": "1.0.0"},
        "reason": "PowerUp",
    }], "BootNotification at the CSMS")
    assert_match(calls(frames, "Authorize"), [{"idToken": ID_TOKEN}], "Authorize at the CSMS")
    assert_match(calls(frames, "StatusNotification"), [
        {"timestamp": Instant(T0), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}],
        "StatusNotification at the CSMS")
    events = calls(frames, "TransactionEvent")
    uuid_ = events[0]["transactionInfo"]["transactionId"]
    assert_match(events, [
        {"eventType": "Started", "timestamp": Instant(T0), "triggerReason": "Authorized", "seqNo": 0,
         "transactionInfo": {"transactionId": IS_UUID, "chargingState": Opt(ANY)}, "idToken": ID_TOKEN,
         "evse": {"id": 1, "connectorId": 1}, "meterValue": energy_201(1000, T0, "Transaction.Begin"),
         "offline": Opt(False)},
        {"eventType": "Updated", "timestamp": AnyOf(Instant(T1), ANY_DATETIME), "triggerReason": "MeterValuePeriodic",
         "seqNo": 1, "transactionInfo": {"transactionId": uuid_, "chargingState": Opt(ANY)},
         "evse": Opt({"id": 1, "connectorId": 1}), "meterValue": sampled_values_201(T1, 1250), "offline": Opt(False)},
        # 1.5 StopTransaction has no reason: Local (MAPPING §4), which 2.0.1 may leave out (its default)
        {"eventType": "Ended", "timestamp": Instant(T3), "triggerReason": IS_STRING, "seqNo": 2,
         "transactionInfo": {"transactionId": uuid_, "stoppedReason": Opt("Local"), "chargingState": Opt(ANY)},
         "idToken": Opt(ID_TOKEN), "evse": Opt({"id": 1, "connectorId": 1}),
         "meterValue": energy_201(1800, T3, "Transaction.End"), "offline": Opt(False)},
    ], "TransactionEvents at the CSMS")


async def test_soap_1_5_charger_runs_a_whole_charging_session_on_a_1_6_csms(h):
    proxy, csms = await soap_proxy(h, V16)
    station = await soap_station(h, proxy, V15, "LEGACY15B")

    assert await station.call("BootNotification", **BOOT) == {
        "status": "Accepted", "currentTime": NOW, "heartbeatInterval": 300}
    session = await csms.next_session()
    assert (session.identity, session.subprotocol) == ("LEGACY15B", V16)
    assert await station.call("Authorize", idTag=TAG) == {"idTagInfo": {"status": "Accepted"}}
    await station.call("StatusNotification", connectorId=1, status="Occupied", errorCode="NoError", timestamp=T0)
    start = await station.call("StartTransaction", connectorId=1, idTag=TAG, timestamp=T0, meterStart=1000)
    assert start == {"transactionId": session.cp.transaction_id, "idTagInfo": {"status": "Accepted"}}
    await station.call("StatusNotification", connectorId=1, status="Occupied", errorCode="NoError", timestamp=T1)
    assert await station.call("MeterValues", connectorId=1, transactionId=start["transactionId"],
                              values=values_15(T2, 1250)) == {}
    assert await station.call("StopTransaction", transactionId=start["transactionId"], idTag=TAG, timestamp=T3,
                              meterStop=1800) == {"idTagInfo": {"status": "Accepted"}}
    assert await station.call("Heartbeat") == {"currentTime": NOW}

    frames = session.recorder.received_frames()
    assert call_actions(frames) == ["BootNotification", "Authorize", "StatusNotification", "StartTransaction",
                                    "StatusNotification", "MeterValues", "StopTransaction", "Heartbeat"]
    assert calls(frames, "BootNotification") == [BOOT]
    assert calls(frames, "Authorize") == [{"idTag": TAG}]
    # 1.5 Occupied is split by the transaction state (MAPPING §4): before the start Preparing, during it Charging
    assert_match(calls(frames, "StatusNotification"), [
        {"connectorId": 1, "status": "Preparing", "errorCode": "NoError", "timestamp": Instant(T0)},
        {"connectorId": 1, "status": "Charging", "errorCode": "NoError", "timestamp": Instant(T1)},
    ], "StatusNotifications at the CSMS")
    assert_match(calls(frames, "StartTransaction"), [
        {"connectorId": 1, "idTag": TAG, "meterStart": 1000, "timestamp": Instant(T0)}], "StartTransaction")
    assert_match(calls(frames, "MeterValues"), [
        {"connectorId": 1, "transactionId": start["transactionId"], "meterValue": sampled_values_16(T2, 1250)}],
        "MeterValues at the CSMS")
    assert_match(calls(frames, "StopTransaction"), [
        {"transactionId": start["transactionId"], "idTag": TAG, "meterStop": 1800, "timestamp": Instant(T3),
         "reason": Opt("Local")}], "StopTransaction at the CSMS")
    assert calls(frames, "Heartbeat") == [{}]


class Csms16Interval123(SoapCsms16):
    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.boot_interval = 123


async def test_soap_1_5_charger_gets_the_interval_the_1_6_csms_gave_as_heartbeat_interval(h):
    proxy, csms = await soap_proxy(h, V16, cp_factory=Csms16Interval123)
    station = await soap_station(h, proxy, V15, "LEGACY15C")
    assert await station.call("BootNotification", **BOOT) == {
        "status": "Accepted", "currentTime": NOW, "heartbeatInterval": 123}


async def test_soap_1_6_charger_on_a_1_6_csms_is_a_change_of_transport_only(h):
    proxy, csms = await soap_proxy(h, V16, versions=(V16,))
    station = await soap_station(h, proxy, V16, "SOAP16A")
    requests = [
        ("BootNotification", BOOT),
        ("Authorize", {"idTag": TAG}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": T0}),
        ("StartTransaction", {"connectorId": 1, "idTag": TAG, "meterStart": 1000, "timestamp": T0}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": T1}),
        ("MeterValues", {"connectorId": 1, "transactionId": 4242, "meterValue": [{"timestamp": T2, "sampledValue": [
            {"value": "1250", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
             "location": "Outlet", "unit": "Wh"},
            {"value": "16.5", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L1",
             "unit": "A"}]}]}),
        ("StopTransaction", {"transactionId": 4242, "idTag": TAG, "meterStop": 1800, "timestamp": T3,
                             "reason": "Local"}),
        ("DataTransfer", {"vendorId": "org.example.vendor", "messageId": "ping", "data": "hello"}),
        ("Heartbeat", {}),
    ]
    answers = [await station.call(action, **payload) for action, payload in requests]
    session = await csms.next_session()
    assert (session.identity, session.subprotocol) == ("SOAP16A", V16)
    frames = session.recorder.received_frames()
    assert [[f[2], f[3]] for f in frames if f[0] == 2] == [[a, p] for a, p in requests], (
        "the 1.6 CSMS must receive exactly the payloads the 1.6 SOAP charger sent")
    assert answers == [
        {"status": "Accepted", "currentTime": NOW, "interval": 300},
        {"idTagInfo": {"status": "Accepted"}},
        {},
        {"transactionId": 4242, "idTagInfo": {"status": "Accepted"}},
        {},
        {},
        {"idTagInfo": {"status": "Accepted"}},
        {"status": "Accepted", "data": "from-csms"},
        {"currentTime": NOW},
    ], "the charger must get exactly the CSMS's answers"


async def test_soap_1_5_transaction_survives_a_sigkill_of_the_proxy_with_the_same_2_0_1_transaction_id(h):
    proxy, csms = await soap_proxy(h, V201)
    station = await soap_station(h, proxy, V15, "LEGACYKILL")
    await station.call("BootNotification", **BOOT)
    session = await csms.next_session()
    start = await station.call("StartTransaction", connectorId=1, idTag=TAG, timestamp=T0, meterStart=1000)
    await station.call("MeterValues", connectorId=1, transactionId=start["transactionId"], values=values_15(T1, 1250))
    before = calls(session.recorder.received_frames(), "TransactionEvent")
    assert [e["seqNo"] for e in before] == [0, 1], before
    uuid_ = before[0]["transactionInfo"]["transactionId"]

    proxy.kill()  # SIGKILL: nothing is flushed on the way out
    await session.wait_closed()
    await h.restart(proxy)
    station.charger.session.close()  # a new TCP connection, as a charger would open after the proxy went away

    await station.call("MeterValues", connectorId=1, transactionId=start["transactionId"], values=values_15(T2, 1500))
    assert await station.call("StopTransaction", transactionId=start["transactionId"], idTag=TAG, timestamp=T3,
                              meterStop=1800) == {"idTagInfo": {"status": "Accepted"}}
    after_restart = await csms.next_session()
    assert after_restart.identity == "LEGACYKILL"
    after = calls(after_restart.recorder.received_frames(), "TransactionEvent")
    assert_match([{k: e[k] for k in ("eventType", "seqNo", "transactionInfo")} for e in after], [
        {"eventType": "Updated", "seqNo": 2, "transactionInfo": {"transactionId": uuid_, "chargingState": Opt(ANY)}},
        {"eventType": "Ended", "seqNo": 3,
         "transactionInfo": {"transactionId": uuid_, "stoppedReason": Opt("Local"), "chargingState": Opt(ANY)}},
    ], "TransactionEvents after the restart")
    assert_match(after[1]["meterValue"], energy_201(1800, T3, "Transaction.End"), "Ended meterValue")
