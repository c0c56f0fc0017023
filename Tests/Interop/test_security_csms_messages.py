"""Security messages from the CSMS that the proxy answers itself, and those it forwards unchanged.

The proxy terminates the chargers' security (their TLS trust and network
profile are the proxy's business), so ``SetNetworkProfile`` and installing a
CSMS root certificate are rejected by the proxy and never reach the charger.
Other certificate types and the certificate-signing exchange pass unchanged.
"""

from __future__ import annotations


import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from certs import pki  # noqa: F401  (session fixture)
from security_support import (
    everything_sent_before_has_arrived,
    V16,
    V201,
    boot_round_trip,
    charger_entry,
    frames_with_action,
    hash_password,
    start_secure_env,
)

PW = "Cert-messages-pa55word-1"


async def connected(h, pki, version):
    env = await start_secure_env(
        h, pki, 1, [charger_entry("CPSEC", 1, password_hash=hash_password(h.binary, PW))], csms_version=version
    )
    charger = await env.ocpp_charger("CPSEC", PW, version)
    session = await env.csms.next_session()
    await boot_round_trip(charger, version)
    return env, charger, session


def assert_forwarded_unchanged(sender_recorder, receiver_recorder, action):
    sent = frames_with_action(sender_recorder.sent_frames(), action)
    got = frames_with_action(receiver_recorder.received_frames(), action)
    assert len(sent) == 1, f"expected one {action} sent, got {sent}"
    assert [f[3] for f in got] == [sent[0][3]], f"{action} payload changed on the way: sent {sent}, got {got}"


async def assert_never_reached_charger(session, charger, action, version):
    await everything_sent_before_has_arrived(session, charger, version)
    got = frames_with_action(charger.recorder.received_frames(), action)
    assert got == [], f"the charger received {action}: {got}"


def install_certificate(version, certificate_type, certificate):
    call = call16 if version == V16 else call201
    return call.InstallCertificate(certificate_type=certificate_type, certificate=certificate)


# ---------------------------------------------------------------------------
# answered by the proxy
# ---------------------------------------------------------------------------


async def test_set_network_profile_is_rejected_by_the_proxy_and_never_reaches_the_charger(h, pki):
    env, charger, session = await connected(h, pki, V201)
    result = await session.cp.call(call201.SetNetworkProfile(
        configuration_slot=1,
        connection_data={
            "ocpp_version": "OCPP20",
            "ocpp_transport": "JSON",
            "ocpp_csms_url": "wss://csms.example/ocpp",
            "message_timeout": 30,
            "security_profile": 3,
            "ocpp_interface": "Wired0",
        },
    ), suppress=False)
    assert result.status == "Rejected"
    await assert_never_reached_charger(session, charger, "SetNetworkProfile", V201)


# the type of the CSMS's own root certificate: the charger's trust toward the CSMS is the proxy's business
CSMS_ROOT = {V16: "CentralSystemRootCertificate", V201: "CSMSRootCertificate"}


@pytest.mark.parametrize("version", [V16, V201])
async def test_install_csms_root_certificate_is_rejected_by_the_proxy(h, pki, version):
    env, charger, session = await connected(h, pki, version)
    result = await session.cp.call(install_certificate(version, CSMS_ROOT[version], pki.csms_ca.cert_pem),
                                   suppress=False)
    assert result.status == "Rejected"
    await assert_never_reached_charger(session, charger, "InstallCertificate", version)


# ---------------------------------------------------------------------------
# forwarded unchanged
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("version,certificate_type", [
    (V16, "ManufacturerRootCertificate"),
    (V201, "V2GRootCertificate"),
    (V201, "MORootCertificate"),
    (V201, "ManufacturerRootCertificate"),
])
async def test_install_other_root_certificates_is_forwarded_unchanged(h, pki, version, certificate_type):
    env, charger, session = await connected(h, pki, version)
    result = await session.cp.call(install_certificate(version, certificate_type, pki.other_ca.cert_pem),
                                   suppress=False)
    assert result.status == "Accepted", "the charger's answer should reach the CSMS"
    assert_forwarded_unchanged(session.recorder, charger.recorder, "InstallCertificate")


@pytest.mark.parametrize("version", [V16, V201])
async def test_sign_certificate_from_the_charger_reaches_the_csms_unchanged(h, pki, version):
    env, charger, session = await connected(h, pki, version)
    csr = (pki.dir / "client-CP3.csr").read_text()
    request = call16.SignCertificate(csr=csr) if version == V16 else call201.SignCertificate(csr=csr)
    result = await charger.cp.call(request, suppress=False)
    assert result.status == "Accepted", "the CSMS's answer should reach the charger"
    assert_forwarded_unchanged(charger.recorder, session.recorder, "SignCertificate")


@pytest.mark.parametrize("version", [V16, V201])
async def test_certificate_signed_from_the_csms_reaches_the_charger_unchanged(h, pki, version):
    env, charger, session = await connected(h, pki, version)
    chain = pki.clients["CP3"].cert_pem + pki.ca.cert_pem
    if version == V16:
        request = call16.CertificateSigned(certificate_chain=chain)
    else:
        request = call201.CertificateSigned(certificate_chain=chain, certificate_type="ChargingStationCertificate")
    result = await session.cp.call(request, suppress=False)
    assert result.status == "Accepted", "the charger's answer should reach the CSMS"
    assert_forwarded_unchanged(session.recorder, charger.recorder, "CertificateSigned")
