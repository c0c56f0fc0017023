"""TLS on the charger side (security profiles 2 and 3): versions, legacy TLS, plain text, certificate chain."""

from __future__ import annotations

import ssl

import pytest

from certs import OCPP_TLS12_RSA_SUITES, pki  # noqa: F401  (session fixture)
from harness import wait_until
from security_support import (
    basic_auth,
    boot_round_trip,
    charger_entry,
    hash_password,
    plaintext_upgrade_attempt,
    start_secure_env,
    tls_block,
    tls_upgrade_attempt,
    warnings_matching,
)

PW = "TLS-charger-pa55word-1"
# a TLS 1.0/1.1 client offering nothing but TLS_RSA_WITH_AES_128_CBC_SHA (A00.FR.324)
LEGACY_SUITE = "AES128-SHA:@SECLEVEL=0"
LEGACY_WARNING = r"legacy|TLS ?v?1\.[01]\b|TLS 1\.0|TLS 1\.1"


def chargers(binary):
    return [
        charger_entry("CPTLS", 2, password_hash=hash_password(binary, PW)),
        charger_entry("CP3", 3),
    ]


async def env_for(h, pki, profile, **tls_kwargs):
    tls = tls_block(pki, client_ca=profile == 3, **tls_kwargs)
    return await start_secure_env(h, pki, profile, chargers(h.binary), tls=tls)


def credentials_for(profile):
    """(client certificate, Authorization header) a valid charger of that profile presents."""
    if profile == 3:
        return "CP3", {}
    return None, {"Authorization": basic_auth("CPTLS", PW)}


# ---------------------------------------------------------------------------
# modern TLS works
# ---------------------------------------------------------------------------


CLIENTS = [
    # a charger offering the RSA suites of OCPP A00.FR.317/318
    pytest.param(ssl.TLSVersion.TLSv1_2, OCPP_TLS12_RSA_SUITES, id="tls1.2-ocpp-rsa-suites"),
    pytest.param(ssl.TLSVersion.TLSv1_3, None, id="tls1.3"),
]


@pytest.mark.parametrize("version,ciphers", CLIENTS)
async def test_profile_2_listener_serves_tls_1_2_and_1_3_clients_end_to_end(h, pki, version, ciphers):
    env = await env_for(h, pki, 2)
    ctx = pki.charger_context(tls_version=version, ciphers=ciphers)
    charger = await env.ocpp_charger("CPTLS", PW, ssl_context=ctx)
    ssl_object = charger.connection.transport.get_extra_info("ssl_object")
    expected = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert ssl_object.version() == expected
    await boot_round_trip(charger)


async def test_tls_1_2_client_offering_no_ocpp_suite_is_refused_in_the_handshake(h, pki):
    # On TLS 1.2 the listener offers only the suites OCPP prescribes (A00.FR.317/318). Python's default
    # TLS 1.2 list has ECDHE-RSA suites but none of those four, so with an RSA certificate there is no common suite.
    env = await env_for(h, pki, 2)
    ctx = pki.charger_context(tls_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        await env.ocpp_charger("CPTLS", PW, ssl_context=ctx)


# the TLS_RSA_* suites of A00.FR.317 that a CSMS with an RSA certificate must support
OCPP_RSA_SUITES = {"TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
                   "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384"}


@pytest.mark.parametrize("suite", list(OCPP_RSA_SUITES.values()), ids=list(OCPP_RSA_SUITES))
async def test_tls_1_2_client_offering_only_an_ocpp_rsa_suite_is_served(h, pki, suite):
    env = await env_for(h, pki, 2)
    ctx = pki.charger_context(tls_version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    charger = await env.ocpp_charger("CPTLS", PW, ssl_context=ctx)
    assert charger.connection.transport.get_extra_info("ssl_object").cipher()[0] == suite
    await boot_round_trip(charger)


@pytest.mark.parametrize("version,ciphers", CLIENTS)
async def test_profile_3_listener_serves_tls_1_2_and_1_3_clients_end_to_end(h, pki, version, ciphers):
    env = await env_for(h, pki, 3)
    ctx = pki.charger_context("CP3", tls_version=version, ciphers=ciphers)
    charger = await env.ocpp_charger("CP3", ssl_context=ctx)
    await boot_round_trip(charger)


async def test_server_certificate_chain_is_sent_so_clients_trusting_only_the_root_verify_it(h, pki):
    # the leaf is signed by an intermediate CA; the charger trusts only the root
    tls = {"certificate": str(pki.server_intermediate_chain), "privateKey": str(pki.server_leaf_only.key)}
    env = await start_secure_env(h, pki, 2, chargers(h.binary), tls=tls)
    charger = await env.ocpp_charger("CPTLS", PW, ssl_context=pki.charger_context())
    await boot_round_trip(charger)


# ---------------------------------------------------------------------------
# plain text and old TLS versions are refused
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [2, 3])
async def test_plaintext_websocket_to_a_tls_listener_gets_no_http_response(h, pki, profile):
    env = await env_for(h, pki, profile)
    received = await plaintext_upgrade_attempt(env.port, "/ocpp/CPTLS")
    assert not received.startswith(b"HTTP/"), f"the TLS listener answered plain HTTP: {received[:120]!r}"
    assert env.csms.handshakes == []


@pytest.mark.parametrize("profile", [2, 3])
async def test_tls_1_1_client_fails_the_handshake_when_legacy_tls_is_not_allowed(h, pki, profile):
    env = await env_for(h, pki, profile, allow_legacy=False)
    client, headers = credentials_for(profile)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/" + ("CP3" if profile == 3 else "CPTLS"),
                                        pki.legacy_charger_context(client, ciphers=LEGACY_SUITE),
                                        headers=headers)
    assert attempt.stage == "handshake", (
        f"a TLS 1.1 client got through the handshake ({attempt.tls_version}, {attempt.cipher}); "
        f"stage={attempt.stage} status={attempt.status}"
    )
    assert env.csms.handshakes == []


async def test_tls_1_1_client_fails_the_handshake_by_default(h, pki):
    env = await env_for(h, pki, 2)  # no allowLegacyTLS key at all
    _, headers = credentials_for(2)
    ctx = pki.legacy_charger_context(ciphers=LEGACY_SUITE)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CPTLS", ctx, headers=headers)
    assert attempt.stage == "handshake", f"TLS 1.1 accepted by default: {attempt}"


@pytest.mark.parametrize("ciphers", [LEGACY_SUITE, "DEFAULT:@SECLEVEL=0"], ids=["aes128-sha-only", "default-seclevel0"])
@pytest.mark.parametrize("profile", [2, 3])
async def test_tls_1_1_client_is_admitted_when_legacy_tls_is_allowed(h, pki, profile, ciphers):
    env = await env_for(h, pki, profile, allow_legacy=True)
    client, headers = credentials_for(profile)
    identity = "CP3" if profile == 3 else "CPTLS"
    ctx = pki.legacy_charger_context(client, ciphers=ciphers)
    attempt = await tls_upgrade_attempt(env.port, f"/ocpp/{identity}", ctx, headers=headers)
    assert attempt.stage == "http", f"legacy TLS refused although allowLegacyTLS is true: {attempt.error!r}"
    assert attempt.tls_version in ("TLSv1.1", "TLSv1"), attempt.tls_version
    if ciphers == LEGACY_SUITE:
        assert attempt.cipher == "AES128-SHA", f"negotiated {attempt.cipher}, expected TLS_RSA_WITH_AES_128_CBC_SHA"
    assert attempt.status == 101


async def test_legacy_tls_is_warned_about_at_start_and_for_each_legacy_connection(h, pki):
    env = await env_for(h, pki, 2, allow_legacy=True)
    at_start = warnings_matching(env.proxy.stderr(), LEGACY_WARNING)
    assert at_start, "allowLegacyTLS: true was not warned about at start" + env.proxy.describe()
    _, headers = credentials_for(2)
    for _ in range(2):
        ctx = pki.legacy_charger_context(ciphers=LEGACY_SUITE)
        attempt = await tls_upgrade_attempt(env.port, "/ocpp/CPTLS", ctx, headers=headers)
        assert attempt.status == 101, attempt
    await wait_until(
        lambda: len(warnings_matching(env.proxy.stderr(), LEGACY_WARNING)) >= len(at_start) + 2,
        5, "a legacy-TLS warning for each of the two legacy connections",
    )


async def test_allowing_legacy_tls_still_serves_tls_1_3_clients(h, pki):
    env = await env_for(h, pki, 2, allow_legacy=True)
    charger = await env.ocpp_charger("CPTLS", PW,
                                     ssl_context=pki.charger_context(tls_version=ssl.TLSVersion.TLSv1_3))
    assert charger.connection.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
    await boot_round_trip(charger)


async def test_tls_1_2_connection_is_not_warned_about_as_legacy(h, pki):
    env = await env_for(h, pki, 2, allow_legacy=True)
    before = len(warnings_matching(env.proxy.stderr(), LEGACY_WARNING))
    ctx = pki.charger_context(tls_version=ssl.TLSVersion.TLSv1_2, ciphers=OCPP_TLS12_RSA_SUITES)
    charger = await env.ocpp_charger("CPTLS", PW, ssl_context=ctx)
    await boot_round_trip(charger)
    after = warnings_matching(env.proxy.stderr(), LEGACY_WARNING)
    assert len(after) == before, f"a TLS 1.2 connection was warned about as legacy: {after[before:]}"


async def test_charger_not_trusting_the_server_certificate_cannot_connect(h, pki):
    # sanity check of the setup: the listener really presents the test CA's certificate
    env = await env_for(h, pki, 2)
    wrong_trust = pki.charger_context(trust=pki.other_ca.cert)
    attempt = await tls_upgrade_attempt(env.port, "/ocpp/CPTLS", wrong_trust, headers=credentials_for(2)[1])
    assert attempt.stage == "handshake" and isinstance(attempt.error, ssl.SSLCertVerificationError), attempt
