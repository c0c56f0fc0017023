"""TLS toward the CSMS: ``wss://`` upstream, server certificate verification, mutual TLS."""

from __future__ import annotations

import pytest

from certs import pki  # noqa: F401  (session fixture)
from harness import wait_until
from security_support import (
    V16,
    V201,
    boot_round_trip,
    charger_entry,
    start_secure_env,
    upstream_tls,
    warnings_matching,
)

INSECURE_WARNING = r"insecure|skip.?verif|verification (is )?(off|disabled)|not verif"


async def env_for(h, pki, version=V16, *, csms_which="good", require_client_cert=False, tls_block=None):
    """A profile-0 listener (the charger side is not under test here) in front of a TLS CSMS."""
    csms_ssl = pki.csms_context(csms_which, require_client_cert=require_client_cert)
    extra = {"tls": tls_block} if tls_block is not None else None
    return await start_secure_env(h, pki, 0, [charger_entry("CPUP", 0)], csms_version=version, csms_ssl=csms_ssl,
                                  upstream_extra=extra)


@pytest.mark.parametrize("version", [V16, V201])
async def test_wss_upstream_trusting_the_csms_ca_carries_the_session(h, pki, version):
    env = await env_for(h, pki, version, tls_block=upstream_tls(pki))
    assert env.csms.url.startswith("wss://")
    charger = await env.ocpp_charger("CPUP", version=version)
    session = await env.csms.next_session()
    assert (session.identity, session.subprotocol) == ("CPUP", version)
    await boot_round_trip(charger, version)


async def test_csms_certificate_from_an_untrusted_ca_is_502_and_no_session_exists(h, pki):
    env = await env_for(h, pki, csms_which="bad", tls_block=upstream_tls(pki))
    assert await env.status("CPUP") == 502
    assert env.csms.sessions == [], "no WebSocket session may exist with an unverified CSMS"
    assert await env.proxy.chargers() == []


async def test_csms_certificate_for_another_host_name_is_502(h, pki):
    # signed by the trusted CSMS CA, but issued for csms.example, not 127.0.0.1
    env = await env_for(h, pki, csms_which="wronghost", tls_block=upstream_tls(pki))
    assert await env.status("CPUP") == 502
    assert env.csms.sessions == []


async def test_without_a_configured_ca_the_system_trust_store_is_used_and_a_private_ca_is_not_trusted(h, pki):
    env = await env_for(h, pki, tls_block=None)  # wss:// without upstream.tls at all
    assert await env.status("CPUP") == 502
    assert env.csms.sessions == []


async def test_insecure_skip_verify_accepts_an_untrusted_certificate_and_warns_at_every_connection(h, pki):
    env = await env_for(h, pki, csms_which="bad", tls_block=upstream_tls(pki, ca=False, insecure=True))
    before = len(warnings_matching(env.proxy.stderr(), INSECURE_WARNING))
    charger = await env.ocpp_charger("CPUP")
    await env.csms.next_session()
    await boot_round_trip(charger)
    await wait_until(
        lambda: len(warnings_matching(env.proxy.stderr(), INSECURE_WARNING)) > before, 5,
        "a warning that upstream certificate verification is off, for this connection",
    )
    mid = len(warnings_matching(env.proxy.stderr(), INSECURE_WARNING))
    second = await env.ocpp_charger("CPUP2")
    await env.csms.next_session()
    await boot_round_trip(second)
    await wait_until(
        lambda: len(warnings_matching(env.proxy.stderr(), INSECURE_WARNING)) > mid, 5,
        "a second insecureSkipVerify warning for the second upstream connection",
    )


async def test_mutual_tls_presents_the_proxy_client_certificate_to_the_csms(h, pki):
    env = await env_for(h, pki, require_client_cert=True, tls_block=upstream_tls(pki, client_cert=True))
    charger = await env.ocpp_charger("CPUP")
    await env.csms.next_session()
    await boot_round_trip(charger)
    subject = env.csms.peer_subject()
    assert subject.get("commonName") == "ocpp-proxy", f"the CSMS saw client certificate subject {subject}"


async def test_csms_requiring_a_client_certificate_is_502_when_none_is_configured(h, pki):
    env = await env_for(h, pki, require_client_cert=True, tls_block=upstream_tls(pki))
    assert await env.status("CPUP") == 502
    assert env.csms.sessions == []
    assert await env.proxy.chargers() == []
