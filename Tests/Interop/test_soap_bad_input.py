"""Bad SOAP input gets the SOAP Fault OCPP-S prescribes, fast, and reaches nothing upstream (issue 12 item 6).

Faults: SOAP 1.2 ``Sender``/``Receiver`` with the OCPP subcodes of OCPP-S 1.6 §4; the HTTP status is the one the
SOAP 1.2 HTTP binding gives the code (Part 2 §7.5.2.2: Sender -> 400, every other fault -> 500).
"Reaches nothing upstream" is proved without sleeping: after the bad request the same charger sends a valid
Heartbeat, and it must be the first CALL the CSMS receives, on the only upstream link the proxy opened.
"""

from __future__ import annotations

import time

import pytest

from harness import V16
from soap_peers import (
    SOAP12,
    SoapMessage,
    assert_fault,
    central_system,
    compress,
    ocpp_headers,
    post_soap,
    soap12_content_type,
    soap_envelope,
    soap_proxy,
    soap_station,
    to_text,
)
from translation_support import call_actions

IDENTITY = "CPBAD"
MAX_BODY = 65536  # limits.maxFrameBytes of the proxies below
CS16 = "urn://Ocpp/Cs/2015/10/"


def envelope(body: str, *, to: str, action: str | None = "/Heartbeat", identity: str | None = IDENTITY,
             extra_headers: str = "") -> bytes:
    return soap_envelope(body, ocpp_headers(V16, identity, action=action, to=to) + extra_headers)


def heartbeat_body() -> str:
    return to_text(central_system(V16).build_request("Heartbeat"))


def data_transfer_body(data: str) -> str:
    return to_text(central_system(V16).build_request("DataTransfer", {"vendorId": "org.example", "data": data}))


def entity_bomb(to: str) -> bytes:
    levels = "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    doctype = f'<!DOCTYPE s:Envelope [<!ENTITY l0 "lol">{levels}]>'
    body = f'<authorizeRequest xmlns="{CS16}"><idTag>&l9;</idTag></authorizeRequest>'
    text = envelope(body, to=to, action="/Authorize").decode()
    return text.replace("?>", "?>" + doctype, 1).encode()


def external_entity(to: str, url: str) -> bytes:
    doctype = f'<!DOCTYPE s:Envelope [<!ENTITY ext SYSTEM "{url}">]>'
    body = f'<authorizeRequest xmlns="{CS16}"><idTag>&ext;</idTag></authorizeRequest>'
    text = envelope(body, to=to, action="/Authorize").decode()
    return text.replace("?>", "?>" + doctype, 1).encode()


# (case, request maker (to, fetched URL) -> body, HTTP status, fault code, OCPP subcode)
# Where OCPP-S names no subcode for a case, the nearest is assumed (lead to align): a missing chargeBoxIdentity
# is a ProtocolError (not IdentityMismatch: there is no identity to mismatch); a body over the limit is a
# ProtocolError with 400, and the limit is limits.maxFrameBytes (applied to the SOAP body after decompression).
CASES = [
    ("malformed-xml", lambda to, url: b'<s:Envelope xmlns:s="' + SOAP12.encode() + b'"><s:Body><x></s:Body>',
     400, "Sender", "ProtocolError"),
    ("truncated-document", lambda to, url: envelope(heartbeat_body(), to=to)[:-40], 400, "Sender", "ProtocolError"),
    ("entity-bomb", lambda to, url: entity_bomb(to), 400, "Sender", "ProtocolError"),
    ("external-entity", lambda to, url: external_entity(to, url), 400, "Sender", "ProtocolError"),
    ("missing-charge-box-identity", lambda to, url: envelope(heartbeat_body(), to=to, identity=None),
     400, "Sender", "ProtocolError"),
    ("unknown-action", lambda to, url: envelope(f'<flyToTheMoonRequest xmlns="{CS16}"/>', to=to,
                                                action="/FlyToTheMoon"), 500, "Receiver", "NotSupported"),
    ("body-over-the-limit", lambda to, url: envelope(data_transfer_body("x" * (2 * MAX_BODY)), to=to,
                                                     action="/DataTransfer"), 400, "Sender", "ProtocolError"),
    # Two inputs that crashed FoundationXML inside the proxy before the reader screened them (found by the soap
    # fuzz target): a processing instruction without data, and an element name that is not valid UTF-8.
    ("processing-instruction-without-data",
     lambda to, url: envelope(heartbeat_body(), to=to).replace(b"<s:Body>", b"<s:Body><?x?>", 1),
     400, "Sender", "ProtocolError"),
    ("invalid-utf8-element-name",
     lambda to, url: envelope(heartbeat_body(), to=to).replace(b"<s:Body>", b"<s:Body><a:\xff\xfe/>", 1),
     400, "Sender", "ProtocolError"),
    # SOAP 1.2 Part 1 §5.4.8: a header block with mustUnderstand="true" that is not understood -> env:MustUnderstand
    ("unknown-must-understand-header", lambda to, url: envelope(
        heartbeat_body(), to=to,
        extra_headers='<x:Secret xmlns:x="urn:example:unknown" s:mustUnderstand="true">1</x:Secret>'),
     500, "MustUnderstand", None),
]


async def bad_input_setup(h):
    proxy, csms = await soap_proxy(h, V16, overrides={"limits": {"maxFrameBytes": MAX_BODY}})
    station = await soap_station(h, proxy, V16, IDENTITY, endpoint=False)
    return proxy, csms, station


async def assert_nothing_reached_the_csms(csms, station):
    """The valid Heartbeat sent after the bad request is the first CALL at the CSMS, on the only upstream link."""
    await station.call("Heartbeat")
    session = await csms.next_session()
    assert session.identity == IDENTITY
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"], (
        "the bad request reached the CSMS before the valid Heartbeat sent after it")
    assert [s.identity for s in csms.sessions] == [IDENTITY], "the bad request opened an upstream link"


@pytest.mark.parametrize("make,status,code,subcode", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_soap_request_gets_the_ocpp_s_fault_and_reaches_nothing_upstream(h, make, status, code, subcode):
    proxy, csms, station = await bad_input_setup(h)
    fetched = await h.silent_server()  # an external entity pointing here must never be fetched
    request = make(proxy.soap_url, f"http://127.0.0.1:{fetched.port}/secret")
    started = time.monotonic()
    response = await post_soap(proxy, request)
    elapsed = time.monotonic() - started
    assert response.status == status, f"HTTP {response.status}, expected {status}: {response.text[:600]}"
    assert response.headers.get("content-type", "").startswith("application/soap+xml"), response.headers
    assert_fault(SoapMessage.parse(response.body), code, subcode)
    assert elapsed < 1.0, f"the fault took {elapsed:.2f}s"
    assert not fetched.accepted.is_set(), "the proxy fetched an external entity"
    await assert_nothing_reached_the_csms(csms, station)


async def test_gzip_body_over_the_limit_after_decompression_is_refused_and_reaches_nothing_upstream(h):
    proxy, csms, station = await bad_input_setup(h)
    request = envelope(data_transfer_body("0" * (16 * MAX_BODY)), to=proxy.soap_url, action="/DataTransfer")
    compressed = compress(request, "gzip")
    assert len(compressed) < MAX_BODY / 8, "the test's gzip body should be small before decompression"
    response = await post_soap(proxy, compressed, extra_headers={"Content-Encoding": "gzip"})
    assert response.status == 400, f"HTTP {response.status}: {response.text[:600]}"
    assert_fault(SoapMessage.parse(response.body), "Sender", "ProtocolError")
    await assert_nothing_reached_the_csms(csms, station)


async def test_body_that_is_not_the_gzip_it_claims_is_refused_and_reaches_nothing_upstream(h):
    proxy, csms, station = await bad_input_setup(h)
    response = await post_soap(proxy, b"\x1f\x8b\x08\x00 this is not gzip" * 4,
                               extra_headers={"Content-Encoding": "gzip"})
    assert response.status == 400, f"HTTP {response.status}: {response.text[:600]}"
    assert_fault(SoapMessage.parse(response.body), "Sender", "ProtocolError")
    await assert_nothing_reached_the_csms(csms, station)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_request_body_is_accepted(h, encoding):
    # OCPP-S 1.6 §6.1: both gzip and deflate MUST be supported
    proxy, csms, _ = await bad_input_setup(h)
    request = envelope(heartbeat_body(), to=proxy.soap_url)
    response = await post_soap(proxy, compress(request, encoding), extra_headers={"Content-Encoding": encoding},
                               content_type=soap12_content_type("/Heartbeat"))
    assert response.status == 200, f"HTTP {response.status}: {response.text[:600]}"
    answer = SoapMessage.parse(response.body)
    assert answer.fault is None and answer.body is not None
    assert not central_system(V16).errors(answer.body)
    assert "currentTime" in central_system(V16).read(answer.body)
    session = await csms.next_session()
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"]
