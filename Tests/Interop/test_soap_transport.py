"""The SOAP listener and the upstream link of a SOAP charger (issue 12 items 1 and 2).

Envelope and header handling (SOAP 1.2 and 1.1, where the action comes from, chargeBoxIdentity, the 1.6
namespace with and without its trailing slash, the answer's WS-Addressing headers), and the upstream OCPP-J
link: one per charger, opened on its first request, closed after ``soap.idleTimeout`` (default 3 x the
heartbeat interval), and a SOAP Fault (Receiver), never a made-up answer, when no link can be opened.
"""

from __future__ import annotations

import time

import pytest
import zeep.exceptions

from harness import LOCALHOST, V16, free_port
from soap_peers import (
    SOAP11,
    SOAP12,
    V15,
    SoapCsms16,
    SoapMessage,
    assert_fault,
    central_system,
    new_message_id,
    ocpp_headers,
    post_soap,
    soap12_content_type,
    soap_envelope,
    soap_proxy,
    soap_station,
    to_text,
)
from translation_support import call_actions, calls

TAG = "TAG-0001"
BOOT = {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Legacy-S"}


def authorize_body(version=V16, namespace=None) -> str:
    if namespace is not None:
        return f'<authorizeRequest xmlns="{namespace}"><idTag>{TAG}</idTag></authorizeRequest>'
    return to_text(central_system(version).build_request("Authorize", {"idTag": TAG}))


async def test_answer_carries_the_response_action_relates_to_and_charge_box_identity(h):
    proxy, _ = await soap_proxy(h, V16)
    station = await soap_station(h, proxy, V15, "HEADERS")
    await station.call("BootNotification", **BOOT)
    request, answer = station.charger.last.request_message(), station.charger.last.response_message()
    assert station.charger.last.response_headers["content-type"].startswith("application/soap+xml")
    assert answer.envelope_ns == SOAP12
    assert answer.header_text("Action") == "/BootNotificationResponse"
    assert answer.header_text("RelatesTo") == request.header_text("MessageID")
    assert answer.header_text("chargeBoxIdentity", None) == "HEADERS"


# where the action comes from (issue 12 item 1): wsa:Action, else the content-type action parameter, else
# SOAPAction, else the body element
ACTION_SOURCES = {
    "wsa-action": dict(action="/Authorize", content_type=soap12_content_type(), headers={}),
    "content-type-action": dict(action=None, content_type=soap12_content_type("/Authorize"), headers={}),
    "soap-action-header": dict(action=None, content_type=soap12_content_type(), headers={"SOAPAction": '"/Authorize"'}),
    "body-element": dict(action=None, content_type=soap12_content_type(), headers={}),
}


@pytest.mark.parametrize("source", list(ACTION_SOURCES))
async def test_action_is_taken_from_each_source_in_turn(h, source):
    proxy, csms = await soap_proxy(h, V16)
    how = ACTION_SOURCES[source]
    message_id = new_message_id()
    headers = ocpp_headers(V16, "ACTION", action=how["action"], to=proxy.soap_url, message_id=message_id)
    response = await post_soap(proxy, soap_envelope(authorize_body(), headers), content_type=how["content_type"],
                               extra_headers=how["headers"])
    assert response.status == 200, f"HTTP {response.status}: {response.text[:600]}"
    answer = SoapMessage.parse(response.body)
    assert answer.body is not None and answer.fault is None, response.text[:600]
    assert not central_system(V16).errors(answer.body)
    assert central_system(V16).read(answer.body) == {"idTagInfo": {"status": "Accepted"}}
    assert answer.header_text("Action") == "/AuthorizeResponse"
    assert answer.header_text("RelatesTo") == message_id
    session = await csms.next_session()
    assert calls(session.recorder.received_frames()) == [{"idTag": TAG}]
    assert call_actions(session.recorder.received_frames()) == ["Authorize"]


async def test_soap_1_1_envelope_is_answered_in_soap_1_1(h):
    proxy, csms = await soap_proxy(h, V16)
    message_id = new_message_id()
    headers = ocpp_headers(V16, "SOAP11", action="/Authorize", to=proxy.soap_url, message_id=message_id,
                           soap_ns=SOAP11)
    response = await post_soap(proxy, soap_envelope(authorize_body(), headers, soap_ns=SOAP11),
                               content_type="text/xml; charset=utf-8", extra_headers={"SOAPAction": '"/Authorize"'})
    assert response.status == 200, f"HTTP {response.status}: {response.text[:600]}"
    assert response.headers.get("content-type", "").startswith("text/xml"), response.headers
    answer = SoapMessage.parse(response.body)
    assert answer.envelope_ns == SOAP11, f"answered in {answer.envelope_ns}"
    assert central_system(V16).read(answer.body) == {"idTagInfo": {"status": "Accepted"}}
    assert answer.header_text("RelatesTo") == message_id
    session = await csms.next_session()
    assert session.identity == "SOAP11"


async def test_charge_box_identity_header_name_is_matched_case_insensitively(h):
    # OCPP-S 1.6 §3.3: the header name "chargeBoxIdentity" SHALL be treated as case insensitive
    proxy, csms = await soap_proxy(h, V16)
    headers = ocpp_headers(V16, "CASEBLIND", action="/Authorize", to=proxy.soap_url, identity_name="ChargeBoxIdentity")
    response = await post_soap(proxy, soap_envelope(authorize_body(), headers))
    assert response.status == 200, f"HTTP {response.status}: {response.text[:600]}"
    session = await csms.next_session()
    assert session.identity == "CASEBLIND"
    assert calls(session.recorder.received_frames(), "Authorize") == [{"idTag": TAG}]


@pytest.mark.parametrize("namespace", ["urn://Ocpp/Cs/2015/10/", "urn://Ocpp/Cs/2015/10"])
async def test_1_6_namespace_is_accepted_with_and_without_its_trailing_slash(h, namespace):
    proxy, csms = await soap_proxy(h, V16)
    headers = ocpp_headers(V16, "NS16", action="/Authorize", to=proxy.soap_url, namespace=namespace)
    response = await post_soap(proxy, soap_envelope(authorize_body(namespace=namespace), headers))
    assert response.status == 200, f"HTTP {response.status}: {response.text[:600]}"
    session = await csms.next_session()
    assert session.subprotocol == V16
    assert calls(session.recorder.received_frames(), "Authorize") == [{"idTag": TAG}], "a 1.6 request passes as is"


async def test_requests_of_one_soap_charger_share_one_upstream_link(h):
    proxy, csms = await soap_proxy(h, V16)
    station = await soap_station(h, proxy, V15, "ONELINK")
    await station.call("BootNotification", **BOOT)
    await station.call("Heartbeat")
    await station.call("Authorize", idTag=TAG)
    session = await csms.next_session()
    assert call_actions(session.recorder.received_frames()) == ["BootNotification", "Heartbeat", "Authorize"]
    assert len(csms.sessions) == 1 and not session.closed.is_set()


async def test_upstream_link_closes_after_the_idle_timeout_and_the_next_request_opens_another(h):
    proxy, csms = await soap_proxy(h, V16, soap={"idleTimeout": "1s"})
    station = await soap_station(h, proxy, V15, "IDLE")
    await station.call("BootNotification", **BOOT)
    first = await csms.next_session()
    await first.wait_closed(timeout=10)
    await station.call("Heartbeat")
    second = await csms.next_session()
    assert second.identity == "IDLE"
    assert call_actions(second.recorder.received_frames()) == ["Heartbeat"]


class Csms16Interval1(SoapCsms16):
    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.boot_interval = 1


@pytest.mark.slow
async def test_default_idle_timeout_is_three_heartbeat_intervals_given_at_boot(h):
    proxy, csms = await soap_proxy(h, V16, cp_factory=Csms16Interval1)
    station = await soap_station(h, proxy, V15, "IDLE3X")
    await station.call("BootNotification", **BOOT)
    answered = time.monotonic()
    session = await csms.next_session()
    await session.wait_closed(timeout=15)
    idle = time.monotonic() - answered
    assert 2.5 <= idle < 10, f"the link closed {idle:.1f}s after the boot; expected 3 x the 1s interval"


async def test_request_while_the_csms_is_down_gets_a_receiver_fault_never_a_made_up_answer(h):
    proxy, _ = await soap_proxy(h, V16, upstream_url=f"ws://{LOCALHOST}:{free_port()}/ocpp")
    station = await soap_station(h, proxy, V15, "NOCSMS", endpoint=False)
    with pytest.raises(zeep.exceptions.Fault):
        await station.call("BootNotification", **BOOT)
    exchange = station.charger.last
    assert exchange.status == 500, f"HTTP {exchange.status}"
    assert_fault(exchange.response_message(), "Receiver")
