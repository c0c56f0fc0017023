"""SOAP chargers on TLS listeners (issue 12 item 7) and in the admin API and metrics (item 8).

TLS: an HTTPS listener with Basic auth (security profile 2) and one with client certificates (profile 3), the
certificates made by ``certs.py``; what is refused reaches nothing upstream (a valid request afterwards is the
first at the CSMS). Observability: ``/api/chargers`` lists a SOAP charger with its transport, version and
endpoint; metrics carry ``transport="soap"``.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
import requests
import zeep.exceptions

from certs import pki  # noqa: F401  (session fixture)
from harness import V16, find_samples, metric_value
from security_support import charger_entry, hash_password, tls_block
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16

from soap_peers import V15, last_answer, soap_proxy, soap_station
from translation_support import call_actions

PW = "SOAP-charger-pa55word-1"
BOOT = {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Legacy-S"}


async def tls_proxy(h, pki, profile):
    chargers = [charger_entry("CPSOAP2", 2, password_hash=hash_password(h.binary, PW)), charger_entry("CP3", 3)]
    return await soap_proxy(h, V16, chargers=chargers,
                            listener_options={"profile": profile, "tls": tls_block(pki, client_ca=profile == 3)})


def https_session(pki, *, auth=None, client=None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the test CA
    session.verify = str(pki.ca.cert)
    if auth is not None:
        session.auth = auth
    if client is not None:
        pair = pki.client(client)
        session.cert = (str(pair.cert), str(pair.key))
    return session


async def test_soap_profile_2_listener_serves_https_with_basic_auth(h, pki):
    proxy, csms = await tls_proxy(h, pki, 2)
    assert proxy.soap_url.startswith("https://")
    station = await soap_station(h, proxy, V15, "CPSOAP2", endpoint=False,
                                 session=https_session(pki, auth=("CPSOAP2", PW)))
    assert (await station.call("BootNotification", **BOOT))["status"] == "Accepted"
    session = await csms.next_session()
    assert session.identity == "CPSOAP2"
    assert call_actions(session.recorder.received_frames()) == ["BootNotification"]


async def test_soap_profile_2_listener_refuses_a_wrong_password_and_forwards_nothing(h, pki):
    proxy, csms = await tls_proxy(h, pki, 2)
    intruder = await soap_station(h, proxy, V15, "CPSOAP2", endpoint=False,
                                  session=https_session(pki, auth=("CPSOAP2", "not-the-password-123")))
    with pytest.raises((AssertionError, zeep.exceptions.Fault)):  # 401 with or without a SOAP Fault body
        await intruder.call("BootNotification", **BOOT)
    assert intruder.charger.last.status == 401
    station = await soap_station(h, proxy, V15, "CPSOAP2", endpoint=False,
                                 session=https_session(pki, auth=("CPSOAP2", PW)))
    await station.call("Heartbeat")
    session = await csms.next_session()
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"]
    assert len(csms.sessions) == 1


async def test_soap_profile_3_listener_serves_a_charger_with_its_client_certificate(h, pki):
    proxy, csms = await tls_proxy(h, pki, 3)
    station = await soap_station(h, proxy, V15, "CP3", endpoint=False, session=https_session(pki, client="CP3"))
    assert (await station.call("BootNotification", **BOOT))["status"] == "Accepted"
    session = await csms.next_session()
    assert session.identity == "CP3"


async def test_soap_profile_3_listener_refuses_a_charger_without_a_client_certificate(h, pki):
    proxy, csms = await tls_proxy(h, pki, 3)

    def post_without_certificate():
        return https_session(pki).post(proxy.soap_url, data=b"<x/>", timeout=10,
                                       headers={"Content-Type": "application/soap+xml"})

    with pytest.raises(requests.exceptions.RequestException):
        response = await asyncio.to_thread(post_without_certificate)
        pytest.fail(f"a charger without a certificate got HTTP {response.status_code}")
    station = await soap_station(h, proxy, V15, "CP3", endpoint=False, session=https_session(pki, client="CP3"))
    await station.call("Heartbeat")
    session = await csms.next_session()
    assert call_actions(session.recorder.received_frames()) == ["Heartbeat"]
    assert len(csms.sessions) == 1


def endpoint_tls(pki) -> ssl.SSLContext:
    """The charger's own HTTPS endpoint: the test server certificate (127.0.0.1), signed by the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_chain), str(pki.server.key))
    return context


async def test_csms_call_reaches_an_https_charger_endpoint_trusted_through_soap_endpoint_ca(h, pki):
    proxy, csms = await soap_proxy(h, V16, soap={"endpointCA": str(pki.ca.cert)})
    station = await soap_station(h, proxy, V16, "HTTPSCP", server_ssl=endpoint_tls(pki))
    assert station.server.url.startswith("https://")
    await station.call("BootNotification", **BOOT)
    session = await csms.next_session()
    await session.cp.call(call16.Reset(type="Soft"), suppress=False)
    station.server.assert_no_problems()
    assert station.server.payloads("Reset") == [{"type": "Soft"}]
    assert last_answer(session.recorder)[2] == {"status": "Accepted"}


async def test_an_https_charger_endpoint_with_an_untrusted_certificate_gets_nothing_and_the_csms_a_callerror(h, pki):
    proxy, csms = await soap_proxy(h, V16, soap={"endpointCA": str(pki.other_ca.cert)},
                                   overrides={"limits": {"callTimeout": "5s"}})
    station = await soap_station(h, proxy, V16, "HTTPSBAD", server_ssl=endpoint_tls(pki))
    await station.call("BootNotification", **BOOT)
    session = await csms.next_session()
    with pytest.raises(OCPPError):
        await session.cp.call(call16.Reset(type="Soft"), suppress=False)
    assert station.server.received("Reset") == []
    answer = last_answer(session.recorder)
    assert answer[0] == 4 and answer[2] == "InternalError", answer
    assert "certificate" in answer[3].lower() or "handshake" in answer[3].lower(), answer


async def test_charger_list_shows_a_soap_charger_with_its_transport_version_and_endpoint(h):
    proxy, csms = await soap_proxy(h, V16)
    station = await soap_station(h, proxy, V15, "LISTED")
    await station.call("BootNotification", **BOOT)
    await csms.next_session()
    [entry] = await proxy.chargers()
    # field names "transport" and "endpoint" are assumed (the issue names the facts, not the keys)
    assert entry["identity"] == "LISTED"
    assert entry["transport"] == "soap"
    assert entry["version"] == V15
    assert entry["upstreamVersion"] == V16
    assert entry["endpoint"] == station.server.url
    assert entry["listener"] == "soap"


async def test_metrics_of_a_soap_charger_carry_transport_soap(h):
    proxy, csms = await soap_proxy(h, V16)
    station = await soap_station(h, proxy, V15, "METERED")
    await station.call("BootNotification", **BOOT)
    await csms.next_session()
    samples = await proxy.metrics()
    frames = find_samples(samples, "ocpp_proxy_frames_total", action="BootNotification", type="call",
                          direction="charger_to_csms")
    assert frames and all(s.labels.get("transport") == "soap" for s in frames), frames
    assert metric_value(samples, "ocpp_proxy_frames_total", action="BootNotification", transport="soap") >= 1
    assert metric_value(samples, "ocpp_proxy_chargers_connected", version=V15, transport="soap") == 1
