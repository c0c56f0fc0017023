"""CSMS -> SOAP charger: the CSMS's CALLs reach the charger's own ChargePointService endpoint (issue 12 item 3).

The charger's endpoint (``ChargePointServer``) validates every request against the official ChargePointService
WSDL and checks the WS-Addressing set (Action, MessageID, To, From, ReplyTo anonymous, chargeBoxIdentity); each
test asserts it saw no problem, the exact payload it received, and the exact answer the CSMS got. A SOAP
Fault, an unreachable endpoint, no answer, or no usable endpoint become a CALLERROR at the CSMS.
"""

from __future__ import annotations

import time

import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from harness import V16, V201, free_port
from soap_peers import NO_ANSWER, V15, WSA_ANONYMOUS, FaultAnswer, last_answer, soap_proxy, soap_station
from translation_support import ANY, IS_UUID, AnyOf, Opt, assert_match, calls

TAG = "04A1B2C3D4E5F6"
ID_TOKEN = {"idToken": TAG, "type": "ISO14443"}
BOOT = {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Legacy-S"}
T0 = "2026-01-01T10:00:00Z"
ERROR_CODES_16 = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
                  "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
                  "TypeConstraintViolation", "GenericError"}


async def booted(h, csms_version, charger_version, identity, *, overrides=None, chargers=None, endpoint=True,
                 from_address=None):
    """A proxy, its CSMS, a SOAP charger that has booted (so the proxy knows its endpoint), the upstream session."""
    proxy, csms = await soap_proxy(h, csms_version, overrides=overrides, chargers=chargers)
    station = await soap_station(h, proxy, charger_version, identity, endpoint=endpoint, from_address=from_address)
    await station.call("BootNotification", **BOOT)
    session = await csms.next_session()
    assert session.identity == identity
    return proxy, csms, station, session


def result_payload(session) -> dict:
    answer = last_answer(session.recorder)
    assert answer[0] == 3, f"expected a CALLRESULT at the CSMS, got {answer}"
    return answer[2]


# (action, the 1.6 CSMS's CALL, what the charger's endpoint receives, the charger's answer 1.6 / 1.5, at the CSMS)
COMMANDS_16 = [
    ("RemoteStartTransaction", lambda: call16.RemoteStartTransaction(id_tag=TAG, connector_id=1),
     {"connectorId": 1, "idTag": TAG}, {"status": "Accepted"}),
    ("RemoteStopTransaction", lambda: call16.RemoteStopTransaction(transaction_id=4242),
     {"transactionId": 4242}, {"status": "Accepted"}),
    ("GetConfiguration", lambda: call16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]),
     {"key": ["HeartbeatInterval", "NoSuchKey"]},
     {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
      "unknownKey": ["NoSuchKey"]}),
    ("ChangeConfiguration", lambda: call16.ChangeConfiguration(key="HeartbeatInterval", value="120"),
     {"key": "HeartbeatInterval", "value": "120"}, {"status": "Accepted"}),
    ("Reset", lambda: call16.Reset(type="Soft"), {"type": "Soft"}, {"status": "Accepted"}),
    # a 1.5 charger answers Accepted, which the 1.6 CSMS gets as Unlocked (MAPPING §4)
    ("UnlockConnector", lambda: call16.UnlockConnector(connector_id=1), {"connectorId": 1}, {"status": "Unlocked"}),
    ("ChangeAvailability", lambda: call16.ChangeAvailability(connector_id=0, type="Inoperative"),
     {"connectorId": 0, "type": "Inoperative"}, {"status": "Accepted"}),
]


@pytest.mark.parametrize("action,request_,at_charger,at_csms", COMMANDS_16, ids=[c[0] for c in COMMANDS_16])
@pytest.mark.parametrize("charger_version", [V16, V15])
async def test_1_6_csms_command_reaches_the_soap_charger_and_its_answer_reaches_the_csms(
        h, charger_version, action, request_, at_charger, at_csms):
    _, _, station, session = await booted(h, V16, charger_version, f"CMD{charger_version[-1]}{action[:10].upper()}")
    await session.cp.call(request_(), suppress=False)
    station.server.assert_no_problems()
    assert [r.action for r in station.server.requests] == [action]
    assert station.server.payloads(action) == [at_charger]
    assert result_payload(session) == at_csms


@pytest.mark.parametrize("status_15,status_16", [("Accepted", "Unlocked"), ("Rejected", "UnlockFailed")])
async def test_1_5_unlock_status_becomes_the_1_6_unlock_status(h, status_15, status_16):
    _, _, station, session = await booted(h, V16, V15, f"UNLOCK{status_15.upper()}")
    station.server.answers["UnlockConnector"] = {"status": status_15}
    await session.cp.call(call16.UnlockConnector(connector_id=2), suppress=False)
    station.server.assert_no_problems()
    assert station.server.payloads("UnlockConnector") == [{"connectorId": 2}]
    assert result_payload(session) == {"status": status_16}


def cv(component, variable):
    return {"component": {"name": component}, "variable": {"name": variable}}


# (name, the 2.0.1 CSMS's CALL, action at the 1.5 charger, its payload there, what the CSMS gets)
COMMANDS_201 = [
    ("RequestStartTransaction",
     lambda: call201.RequestStartTransaction(id_token=ID_TOKEN, remote_start_id=42, evse_id=1),
     "RemoteStartTransaction", {"idTag": TAG, "connectorId": 1},
     {"status": "Accepted", "transactionId": Opt(ANY), "statusInfo": Opt(ANY)}),
    ("GetVariables", lambda: call201.GetVariables(get_variable_data=[cv("OCPPCommCtrlr", "HeartbeatInterval")]),
     "GetConfiguration", {"key": ["HeartbeatInterval"]},
     {"getVariableResult": [{**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeStatus": "Accepted",
                             "attributeValue": "300", "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)}]}),
    ("SetVariables", lambda: call201.SetVariables(set_variable_data=[
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "120"}]),
     "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"},
     {"setVariableResult": [{**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeStatus": "Accepted",
                             "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)}]}),
    ("Reset", lambda: call201.Reset(type="Immediate"), "Reset", {"type": "Hard"},
     {"status": "Accepted", "statusInfo": Opt(ANY)}),
    ("UnlockConnector", lambda: call201.UnlockConnector(evse_id=1, connector_id=1), "UnlockConnector",
     {"connectorId": 1}, {"status": "Unlocked", "statusInfo": Opt(ANY)}),
    ("ChangeAvailability", lambda: call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}),
     "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted", "statusInfo": Opt(ANY)}),
]


@pytest.mark.parametrize("name,request_,action,at_charger,at_csms", COMMANDS_201, ids=[c[0] for c in COMMANDS_201])
async def test_2_0_1_csms_command_reaches_the_1_5_soap_charger_through_both_rule_sets(
        h, name, request_, action, at_charger, at_csms):
    _, _, station, session = await booted(h, V201, V15, f"CMD201{name[:10].upper()}")
    await session.cp.call(request_(), suppress=False)
    station.server.assert_no_problems()
    assert [r.action for r in station.server.requests] == [action]
    assert_match(station.server.payloads(action), [at_charger], f"{action} at the 1.5 charger")
    assert_match(result_payload(session), at_csms, f"{name} result at the CSMS")


async def test_2_0_1_request_stop_transaction_reaches_the_1_5_charger_with_its_integer_transaction_id(h):
    _, _, station, session = await booted(h, V201, V15, "CMD201STOP")
    start = await station.call("StartTransaction", connectorId=1, idTag=TAG, timestamp=T0, meterStart=1000)
    [event] = calls(session.recorder.received_frames(), "TransactionEvent")
    assert_match(event["transactionInfo"], {"transactionId": IS_UUID, "chargingState": Opt(ANY)})
    await session.cp.call(call201.RequestStopTransaction(transaction_id=event["transactionInfo"]["transactionId"]),
                          suppress=False)
    station.server.assert_no_problems()
    assert station.server.payloads("RemoteStopTransaction") == [{"transactionId": start["transactionId"]}]
    assert_match(result_payload(session), {"status": "Accepted", "statusInfo": Opt(ANY)})


async def test_csms_call_reaches_the_charger_with_the_full_ws_addressing_set_from_the_proxy(h):
    proxy, _, station, session = await booted(h, V16, V16, "WSAFULL")
    # From = the proxy's own SOAP URL: assumed to be the listener's http://host:port/path as configured
    station.server.expected_from = proxy.soap_url
    await session.cp.call(call16.ClearCache(), suppress=False)
    station.server.assert_no_problems()
    [request] = station.server.received("ClearCache")
    message = request.message
    assert message.header_text("Action") == "/ClearCache"
    assert message.header_text("To") == station.server.url
    assert message.address("ReplyTo") == WSA_ANONYMOUS
    assert message.header_text("MessageID")
    assert request.http_headers["content-type"].startswith("application/soap+xml")
    assert result_payload(session) == {"status": "Accepted"}


async def test_soap_fault_from_the_charger_becomes_a_callerror_at_the_csms(h):
    _, _, station, session = await booted(h, V16, V16, "FAULTY")
    station.server.answers["Reset"] = FaultAnswer("Receiver", "InternalError", "cannot reset now")
    with pytest.raises(OCPPError):
        await session.cp.call(call16.Reset(type="Hard"), suppress=False)
    station.server.assert_no_problems()
    answer = last_answer(session.recorder)
    assert answer[0] == 4 and answer[2] in ERROR_CODES_16, answer


async def test_unreachable_charger_endpoint_becomes_a_callerror_at_the_csms(h):
    nobody = f"http://127.0.0.1:{free_port()}/ChargePointService"
    _, _, _, session = await booted(h, V16, V16, "UNREACHABLE", endpoint=False, from_address=nobody,
                                    overrides={"limits": {"callTimeout": "5s"}})
    with pytest.raises(OCPPError):
        await session.cp.call(call16.Reset(type="Hard"), suppress=False)
    answer = last_answer(session.recorder)
    assert answer[0] == 4 and answer[2] in ERROR_CODES_16, answer


async def test_charger_that_never_answers_gets_a_callerror_at_the_csms_after_the_call_timeout(h):
    _, _, station, session = await booted(h, V16, V16, "SILENT", overrides={"limits": {"callTimeout": "2s"}})
    station.server.answers["Reset"] = NO_ANSWER
    started = time.monotonic()
    with pytest.raises(OCPPError):
        await session.cp.call(call16.Reset(type="Hard"), suppress=False)
    elapsed = time.monotonic() - started
    await station.server.wait_for("Reset")
    station.server.assert_no_problems()
    answer = last_answer(session.recorder)
    assert answer[0] == 4 and answer[2] in ERROR_CODES_16, answer
    assert 1.5 <= elapsed < 9, f"the CALLERROR came after {elapsed:.1f}s; limits.callTimeout is 2s"


async def test_charger_without_a_usable_endpoint_gets_every_csms_call_answered_at_once_with_a_callerror(h):
    proxy, _, _, session = await booted(h, V16, V16, "ANONYMOUS", endpoint=False, from_address=WSA_ANONYMOUS)
    for request in (call16.Reset(type="Hard"), call16.ClearCache()):
        started = time.monotonic()
        with pytest.raises(OCPPError):
            await session.cp.call(request, suppress=False)
        assert time.monotonic() - started < 2, "a CALL for a charger without an endpoint must be answered at once"
        answer = last_answer(session.recorder)
        assert answer[0] == 4 and answer[2] in ERROR_CODES_16, answer
    logged = [line for line in proxy.stderr().splitlines() if "ANONYMOUS" in line and "endpoint" in line.lower()]
    assert logged, "no log line says why the charger's CALLs cannot be delivered" + proxy.describe()


async def test_configured_soap_endpoint_overrides_wsa_from(h):
    from soap_peers import ChargePointServer

    server = await ChargePointServer(V16, "BEHINDNAT").start()
    h.servers.append(server)
    nobody = f"http://127.0.0.1:{free_port()}/ChargePointService"  # what the charger announces: unreachable
    _, _, _, session = await booted(h, V16, V16, "BEHINDNAT", endpoint=False, from_address=nobody,
                                    chargers=[{"identity": "BEHINDNAT", "soapEndpoint": server.url}])
    await session.cp.call(call16.Reset(type="Soft"), suppress=False)
    server.assert_no_problems()
    assert server.payloads("Reset") == [{"type": "Soft"}]
    assert result_payload(session) == {"status": "Accepted"}


async def test_csms_calls_follow_the_endpoint_of_the_chargers_latest_request(h):
    proxy, _, station, session = await booted(h, V16, V16, "MOVED")
    from soap_peers import ChargePointServer

    moved = await ChargePointServer(V16, "MOVED").start()
    h.servers.append(moved)
    station.charger.client.plugins[0].from_address = moved.url  # the charger came back on another address
    await station.call("Heartbeat")
    await session.cp.call(call16.ClearCache(), suppress=False)
    moved.assert_no_problems()
    assert [r.action for r in moved.requests] == ["ClearCache"]
    assert station.server.requests == []
    assert AnyOf({"status": "Accepted"}).matches(result_payload(session))
