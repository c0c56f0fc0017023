"""Security profile 3: chargers authenticate with a TLS client certificate from the test CA.

In the TLS handshake the certificate is verified against ``tls.clientCA``
(missing, foreign-CA and expired certificates never complete it); after it,
the subject is checked (CN = identity, O = ``cpoName``), the serial against
the CRL, and the identity against ``chargers``.  No Basic auth is needed.
"""

from __future__ import annotations

import ssl

import pytest

from certs import CPO_NAME, OCPP_TLS12_RSA_SUITES, pki  # noqa: F401  (session fixture)
from security_support import (
    basic_auth,
    boot_round_trip,
    charger_entry,
    start_secure_env,
    tls_block,
    tls_upgrade_attempt,
)

TLS_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]
ALL_CP3 = ["CP3", "CP4", "CP3-EXPIRED", "CP3-REVOKED", "CP3-WRONGORG"]


def registered(identities=ALL_CP3):
    return [charger_entry(identity, 3) for identity in identities]


async def env_for(h, pki, *, identities=ALL_CP3, crl="pem", cpo_name=CPO_NAME):
    crl_path = {"pem": pki.crl_pem, "der": pki.crl_der, None: None}[crl]
    tls = tls_block(pki, client_ca=True, crl=crl_path, cpo_name=cpo_name)
    return await start_secure_env(h, pki, 3, registered(identities), tls=tls)


def client_ctx(pki, client, version):
    """TLS 1.2 with the OCPP RSA suites (so that a refusal can only be about the certificate), or TLS 1.3."""
    ciphers = OCPP_TLS12_RSA_SUITES if version == ssl.TLSVersion.TLSv1_2 else None
    return pki.charger_context(client, tls_version=version, ciphers=ciphers)


def assert_refused_in_tls(attempt, version, what):
    """TLS 1.2: the handshake itself fails.  TLS 1.3: the client's side completes, then no HTTP answer."""
    if version == ssl.TLSVersion.TLSv1_2:
        assert attempt.stage == "handshake", f"{what}: TLS 1.2 handshake completed ({attempt})"
    else:
        assert attempt.refused_by_tls, f"{what}: got an HTTP answer {attempt.status} instead of a TLS refusal"


# ---------------------------------------------------------------------------
# admitted
# ---------------------------------------------------------------------------


async def test_valid_client_certificate_admits_the_charger_without_basic_auth(h, pki):
    env = await env_for(h, pki)
    charger = await env.ocpp_charger("CP3", client="CP3")
    session = await env.csms.next_session()
    assert session.identity == "CP3"
    await boot_round_trip(charger)
    assert [c["identity"] for c in await env.proxy.chargers()] == ["CP3"]


async def test_each_charger_is_admitted_with_its_own_certificate(h, pki):
    env = await env_for(h, pki)
    first = await env.ocpp_charger("CP3", client="CP3")
    second = await env.ocpp_charger("CP4", client="CP4")
    await boot_round_trip(first)
    await boot_round_trip(second)
    assert sorted(c["identity"] for c in await env.proxy.chargers()) == ["CP3", "CP4"]


async def test_crl_in_der_form_is_accepted_and_valid_certificates_still_admitted(h, pki):
    env = await env_for(h, pki, crl="der")
    charger = await env.ocpp_charger("CP3", client="CP3")
    await boot_round_trip(charger)


async def test_without_cpo_name_a_certificate_of_another_organisation_is_admitted(h, pki):
    env = await env_for(h, pki, cpo_name=None)
    charger = await env.ocpp_charger("CP3-WRONGORG", client="CP3-WRONGORG")
    await boot_round_trip(charger)


async def test_without_crl_a_revoked_certificate_is_not_known_to_be_revoked(h, pki):
    # control for the CRL tests below: CP3-REVOKED is otherwise a perfectly valid certificate
    env = await env_for(h, pki, crl=None)
    charger = await env.ocpp_charger("CP3-REVOKED", client="CP3-REVOKED")
    await boot_round_trip(charger)


# ---------------------------------------------------------------------------
# refused in the TLS handshake
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", TLS_VERSIONS)
async def test_valid_client_certificate_completes_the_handshake_and_gets_101(h, pki, version):
    # control for the refusals below: same client set-up, valid certificate
    env = await env_for(h, pki)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CP3", client_ctx(pki, "CP3", version))
    assert (attempt.stage, attempt.status) == ("http", 101), attempt


@pytest.mark.parametrize("version", TLS_VERSIONS)
async def test_missing_client_certificate_fails_the_tls_handshake(h, pki, version):
    env = await env_for(h, pki)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CP3", client_ctx(pki, None, version))
    assert_refused_in_tls(attempt, version, "no client certificate")
    assert env.csms.handshakes == []


@pytest.mark.parametrize("version", TLS_VERSIONS)
async def test_client_certificate_from_another_ca_fails_the_tls_handshake(h, pki, version):
    env = await env_for(h, pki)
    ctx = client_ctx(pki, "CP3-OTHERCA", version)  # CN=CP3, O=Test CPO, foreign issuer
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CP3", ctx)
    assert_refused_in_tls(attempt, version, "client certificate from an unrelated CA")
    assert env.csms.handshakes == []


@pytest.mark.parametrize("version", TLS_VERSIONS)
async def test_expired_client_certificate_fails_the_tls_handshake(h, pki, version):
    env = await env_for(h, pki)
    ctx = client_ctx(pki, "CP3-EXPIRED", version)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CP3-EXPIRED", ctx)
    assert_refused_in_tls(attempt, version, "expired client certificate")
    assert env.csms.handshakes == []


# ---------------------------------------------------------------------------
# refused with 403 after the handshake
# ---------------------------------------------------------------------------


async def test_certificate_common_name_other_than_the_identity_is_403(h, pki):
    env = await env_for(h, pki)
    assert await env.status("CP4", client="CP3") == 403  # both registered; CP3's cert on CP4's URL
    assert env.csms.handshakes == []
    assert await env.failures("certificate_subject") == 1


async def test_certificate_organisation_other_than_cpo_name_is_403(h, pki):
    env = await env_for(h, pki)
    assert await env.status("CP3-WRONGORG", client="CP3-WRONGORG") == 403
    assert env.csms.handshakes == []
    assert await env.failures("certificate_subject") == 1


@pytest.mark.parametrize("crl", ["pem", "der"])
async def test_certificate_listed_in_the_crl_is_403(h, pki, crl):
    env = await env_for(h, pki, crl=crl)
    assert await env.status("CP3-REVOKED", client="CP3-REVOKED") == 403
    assert env.csms.handshakes == []
    assert await env.failures("certificate_revoked") == 1


async def test_identity_not_registered_is_403_even_with_a_valid_certificate(h, pki):
    env = await env_for(h, pki, identities=["CP3"])
    assert await env.status("CP4", client="CP4") == 403
    assert env.csms.handshakes == []
    assert await env.failures("unknown_charger") == 1


async def test_basic_auth_does_not_replace_a_client_certificate(h, pki):
    # a profile-3 listener: valid-looking Basic credentials without a certificate get nowhere
    env = await env_for(h, pki)
    attempt = await tls_upgrade_attempt(
        env.port, "/ocpp/CP3", client_ctx(pki, None, ssl.TLSVersion.TLSv1_2),
        headers={"Authorization": basic_auth("CP3", "whatever-password-123")},
    )
    assert attempt.stage == "handshake", attempt
    assert env.csms.handshakes == []
