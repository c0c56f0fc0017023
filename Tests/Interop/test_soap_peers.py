"""The SOAP test peers checked against each other, without the proxy (they are the other SOAP tests' oracle).

* the zeep charger's requests, sent to a stand-in central system that checks them as the charger's endpoint
  checks the proxy's: SOAP 1.2, WS-Addressing, ``chargeBoxIdentity``, body valid against the official
  CentralSystemService WSDL; and the stand-in's answers read back by zeep;
* the charger's endpoint (``ChargePointServer``) driven by zeep with the official ChargePointService WSDL as
  the proxy should drive it: no problem recorded, the scripted answers come back;
* the endpoint refusing (and recording) what it must: a body that does not validate, missing WS-Addressing
  headers, a wrong identity;
* the raw request writer used by the bad-input tests producing requests the stand-in accepts.
"""

from __future__ import annotations

import pytest
import zeep.exceptions

from harness import http_request
from soap_peers import (
    CSMS_TIME,
    OCPP_S,
    SOAP12,
    V15,
    V16,
    WSA_ANONYMOUS,
    ChargePointServer,
    FaultAnswer,
    SoapCharger,
    SoapMessage,
    central_system,
    charge_point,
    new_message_id,
    ocpp_headers,
    soap12_content_type,
    soap_envelope,
    to_text,
)
from translation_support import parse_datetime

VERSIONS = [V15, V16]
FROM = "http://127.0.0.1:9/ChargePointService"  # the charger's endpoint as it announces it (not contacted here)


def boot_answer(version):
    interval = "heartbeatInterval" if version == V15 else "interval"
    return {"status": "Accepted", "currentTime": CSMS_TIME, interval: 300}


async def central_system_stand_in(version, identity):
    answers = {"BootNotification": boot_answer(version), "Heartbeat": {"currentTime": CSMS_TIME},
               "Authorize": {"idTagInfo": {"status": "Accepted"}}}
    return await ChargePointServer(version, identity, definition=central_system(version), answers=answers,
                                   expected_from=FROM).start()


@pytest.mark.parametrize("version", VERSIONS)
async def test_zeep_charger_sends_what_the_central_system_wsdl_and_ocpp_s_require(version):
    server = await central_system_stand_in(version, "CPSELF")
    charger = SoapCharger(version, "CPSELF", server.url, from_address=FROM)
    try:
        answer = await charger.call("BootNotification", chargePointVendor="ocpp-proxy-tests",
                                    chargePointModel="Interop-S")
        await charger.call("Authorize", idTag="TAG-0001")
    finally:
        await charger.aclose()
        await server.close()
    server.assert_no_problems()
    assert [r.action for r in server.requests] == ["BootNotification", "Authorize"]
    assert server.payloads("BootNotification") == [
        {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Interop-S"}]
    assert server.payloads("Authorize") == [{"idTag": "TAG-0001"}]
    boot = server.requests[0]
    assert boot.http_headers["content-type"].startswith("application/soap+xml")
    assert boot.message.envelope_ns == SOAP12
    assert boot.message.header_text("Action") == "/BootNotification"
    assert boot.message.header_text("chargeBoxIdentity", OCPP_S[version].cs) == "CPSELF"
    assert boot.message.address("ReplyTo") == WSA_ANONYMOUS
    assert answer["status"] == "Accepted"
    assert answer["currentTime"] == parse_datetime(CSMS_TIME)
    assert answer["heartbeatInterval" if version == V15 else "interval"] == 300


@pytest.mark.parametrize("version", VERSIONS)
async def test_charge_point_server_accepts_requests_sent_as_the_charge_point_wsdl_binds_them(version):
    server = await ChargePointServer(version, "CPSELF").start()
    proxy_side = SoapCharger(version, "CPSELF", server.url, from_address="http://127.0.0.1:9/ocpp/soap",
                             definition=charge_point(version))
    try:
        reset = await proxy_side.call("Reset", type="Hard")
        configuration = await proxy_side.call("GetConfiguration", key=["HeartbeatInterval", "NoSuchKey"])
        response = proxy_side.last.response_message()
    finally:
        await proxy_side.aclose()
        await server.close()
    server.assert_no_problems()
    assert server.payloads("Reset") == [{"type": "Hard"}]
    assert server.payloads("GetConfiguration") == [{"key": ["HeartbeatInterval", "NoSuchKey"]}]
    assert reset == {"status": "Accepted"}
    assert configuration == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
                             "unknownKey": ["NoSuchKey"]}
    assert response.header_text("Action") == "/GetConfigurationResponse"
    assert response.header_text("RelatesTo") == proxy_side.last.request_message().header_text("MessageID")


@pytest.mark.parametrize("version", VERSIONS)
async def test_charge_point_server_scripted_fault_reaches_the_sender_as_a_soap_fault(version):
    server = await ChargePointServer(version, "CPSELF").start()
    server.answers["Reset"] = FaultAnswer("Receiver", "InternalError", "cannot reset now")
    proxy_side = SoapCharger(version, "CPSELF", server.url, from_address="http://127.0.0.1:9/ocpp/soap",
                             definition=charge_point(version))
    try:
        with pytest.raises(zeep.exceptions.Fault):
            await proxy_side.call("Reset", type="Soft")
        fault = proxy_side.last.response_message().fault
    finally:
        await proxy_side.aclose()
        await server.close()
    assert proxy_side.last.status == 500
    assert (fault.code.namespace, fault.code.localname) == (SOAP12, "Receiver")
    assert [(q.namespace, q.localname) for q in fault.subcodes] == [(OCPP_S[version].cp, "InternalError")]


def raw_request(version, action, body_xml, *, identity="CPSELF", to, from_address=FROM, service=None):
    headers = ocpp_headers(version, identity, action=f"/{action}", to=to, from_address=from_address,
                           namespace=(service or charge_point(version)).namespace)
    return soap_envelope(body_xml, headers)


@pytest.mark.parametrize("version", VERSIONS)
async def test_charge_point_server_records_and_refuses_a_body_that_does_not_validate(version):
    server = await ChargePointServer(version, "CPSELF").start()
    try:
        body = f'<resetRequest xmlns="{OCPP_S[version].cp}"><type>Medium</type></resetRequest>'
        response = await http_request(server.port, server.PATH, "POST",
                                      body=raw_request(version, "Reset", body, to=server.url),
                                      headers={"Content-Type": soap12_content_type("/Reset")})
    finally:
        await server.close()
    assert len(server.problems) == 1 and "does not validate" in server.problems[0], server.problems
    assert "Medium" in server.problems[0]
    assert response.status == 400
    fault = SoapMessage.parse(response.body).fault
    assert fault is not None and fault.code.localname == "Sender"


@pytest.mark.parametrize("version", VERSIONS)
async def test_charge_point_server_records_missing_ws_addressing_headers_and_a_wrong_identity(version):
    server = await ChargePointServer(version, "CPSELF").start()
    try:
        body = to_text(charge_point(version).build_request("ClearCache"))
        headers = (f'<cp:chargeBoxIdentity xmlns:cp="{OCPP_S[version].cp}">SOMEONE-ELSE</cp:chargeBoxIdentity>'
                   f'<a:Action xmlns:a="http://www.w3.org/2005/08/addressing">/ClearCache</a:Action>')
        response = await http_request(server.port, server.PATH, "POST", body=soap_envelope(body, headers),
                                      headers={"Content-Type": soap12_content_type()})
    finally:
        await server.close()
    assert response.status == 400
    problems = "\n".join(server.problems)
    for missing in ("wsa:MessageID", "wsa:To", "wsa:From", "wsa:ReplyTo", "chargeBoxIdentity is 'SOMEONE-ELSE'"):
        assert missing in problems, f"{missing} not reported:\n{problems}"
    assert server.requests[0].action == "ClearCache"


@pytest.mark.parametrize("version", VERSIONS)
async def test_raw_request_writer_makes_requests_the_central_system_wsdl_accepts(version):
    server = await central_system_stand_in(version, "CPSELF")
    try:
        definition = central_system(version)
        body = to_text(definition.build_request("Heartbeat"))
        message_id = new_message_id()
        headers = ocpp_headers(version, "CPSELF", action="/Heartbeat", to=server.url, from_address=FROM,
                               message_id=message_id)
        response = await http_request(server.port, server.PATH, "POST", body=soap_envelope(body, headers),
                                      headers={"Content-Type": soap12_content_type("/Heartbeat")})
    finally:
        await server.close()
    server.assert_no_problems()
    assert response.status == 200
    answer = SoapMessage.parse(response.body)
    assert answer.header_text("RelatesTo") == message_id
    assert central_system(version).read(answer.body) == {"currentTime": parse_datetime(CSMS_TIME)}
