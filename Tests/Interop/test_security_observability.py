"""What the proxy tells about authentication: the failure counter, failure log lines, and no secrets anywhere."""

from __future__ import annotations

import asyncio

import pytest
from ocpp.v16 import call as call16

from certs import CPO_NAME, pki  # noqa: F401  (session fixture)
from harness import free_port, listener, metric_value, wait_until
from security_support import (
    AUTH_FAILURES,
    V16,
    assert_no_secrets,
    boot_round_trip,
    charger_entry,
    connect_ocpp_charger_secure,
    hash_password,
    key_material,
    refusal_status,
    secret_forms,
    secure_csms,
    start_secure_env,
    tls_block,
    upstream_tls,
    wss_url,
    ws_url,
)

PW = "Observed-pa55word-0001"
PW_HIGH = "Observed-high-pa55word-02"


async def basic_env(h, pki, profile=1, **kwargs):
    chargers = [
        charger_entry("CPOBS", profile, password_hash=hash_password(h.binary, PW)),
        charger_entry("CPHIGH", 3, password_hash=hash_password(h.binary, PW_HIGH)),
    ]
    return await start_secure_env(h, pki, profile, chargers, **kwargs)


async def cert_env(h, pki):
    tls = tls_block(pki, client_ca=True, crl=pki.crl_pem, cpo_name=CPO_NAME)
    chargers = [charger_entry(i, 3) for i in ("CP3", "CP4", "CP3-REVOKED", "CP3-WRONGORG")]
    return await start_secure_env(h, pki, 3, chargers, tls=tls)


# each reason: how to start the proxy, and one failing attempt of that kind
async def _no_credentials(env):
    return await env.status("CPOBS")


async def _wrong_username(env):
    return await env.status("CPOBS", PW, user="CPHIGH")


async def _wrong_password(env):
    return await env.status("CPOBS", "not-the-password-0001")


async def _unknown_charger(env):
    return await env.status("CPNOBODY", PW)


async def _profile_too_low(env):
    return await env.status("CPHIGH", PW_HIGH)


async def _certificate_subject(env):
    return await env.status("CP4", client="CP3")


async def _certificate_revoked(env):
    return await env.status("CP3-REVOKED", client="CP3-REVOKED")


REASONS = {
    "no_credentials": (basic_env, _no_credentials, 401),
    "wrong_username": (basic_env, _wrong_username, 401),
    "wrong_password": (basic_env, _wrong_password, 401),
    "unknown_charger": (basic_env, _unknown_charger, 401),
    "profile_too_low": (basic_env, _profile_too_low, 403),
    "certificate_subject": (cert_env, _certificate_subject, 403),
    "certificate_revoked": (cert_env, _certificate_revoked, 403),
}


@pytest.mark.parametrize("reason", list(REASONS))
async def test_each_authentication_failure_increments_the_counter_for_its_reason(h, pki, reason):
    make_env, attempt, expected_status = REASONS[reason]
    env = await make_env(h, pki)
    before = await env.failures(reason)
    total_before = await env.failures()
    assert await attempt(env) == expected_status
    assert await env.failures(reason) == before + 1, f"{AUTH_FAILURES}{{reason={reason!r}}} did not increase by 1"
    assert await env.failures() == total_before + 1, "exactly one failure should have been counted"
    samples = [s for s in await env.proxy.metrics() if s.name == AUTH_FAILURES and s.labels.get("reason") == reason]
    assert all(s.labels.get("listener") == env.listener_name for s in samples), samples


async def test_successful_authentication_counts_no_failure(h, pki):
    env = await basic_env(h, pki)
    charger = await env.ocpp_charger("CPOBS", PW)
    await boot_round_trip(charger)
    assert await env.failures() == 0


async def test_failure_counter_is_labelled_with_the_listener_name(h, pki):
    csms = await secure_csms(h, V16)
    p1, p2 = free_port(), free_port()
    proxy = await h.proxy(
        csms.url, V16,
        listeners=[listener(p1, 1, name="basic-a", versions=[V16]),
                   listener(p2, 1, name="basic-b", versions=[V16])],
        chargers=[charger_entry("CPOBS", 1, password_hash=hash_password(h.binary, PW))],
    )
    assert await refusal_status(ws_url(p2, "CPOBS"), user="CPOBS", password="wrong-password-000") == 401
    samples = await proxy.metrics()
    assert metric_value(samples, AUTH_FAILURES, listener="basic-b", reason="wrong_password") == 1
    assert metric_value(samples, AUTH_FAILURES, listener="basic-a") == 0


async def test_failed_authentication_log_line_names_the_remote_address(h, pki):
    env = await basic_env(h, pki)
    source = "127.0.0.2"
    assert await env.status("CPOBS", "wrong-password-from-2", source=source) == 401
    await wait_until(lambda: source in env.proxy.stderr(), 5, f"a log line naming the remote address {source}")


async def test_no_password_hash_or_key_appears_in_logs_metrics_or_charger_list(h, pki):
    """Debug logging, every kind of secret in play, success and failure; then search every output."""
    plain = "Plaintext-dev-pa55word-77"
    hashed = "Hashed-pa55word-88-secret"
    upstream = "Upstream-pa55word-99-secret"
    wrong = "Attempted-wrong-pa55word-66"
    new_key = "00112233445566778899aabbccddeeff00112233"
    the_hash = hash_password(h.binary, hashed)

    csms = await secure_csms(h, V16, ssl_context=pki.csms_context(require_client_cert=True))
    port = free_port()
    proxy = await h.proxy(
        csms.url, V16, {"logging": {"level": "trace", "format": "text"}},
        listeners=[listener(port, 2, name="secure", tls=tls_block(pki), versions=[V16])],
        chargers=[
            charger_entry("CPPLAIN", 2, password=plain, upstream_password=upstream),
            charger_entry("CPHASH", 2, password_hash=the_hash),
        ],
        upstream_options={"tls": upstream_tls(pki, client_cert=True)},
        state=h.tmp_path / "state.sqlite",
    )

    ctx = pki.charger_context()
    a = await connect_ocpp_charger_secure(h, wss_url(port, "CPPLAIN"), "CPPLAIN", user="CPPLAIN", password=plain,
                                          ssl_context=ctx)
    session_a = await csms.next_session()
    await boot_round_trip(a)
    b = await connect_ocpp_charger_secure(h, wss_url(port, "CPHASH"), "CPHASH", user="CPHASH", password=hashed,
                                          ssl_context=ctx)
    await csms.next_session()
    await boot_round_trip(b)
    assert await refusal_status(wss_url(port, "CPHASH"), user="CPHASH", password=wrong, ssl_context=ctx) == 401
    # the CSMS sets a new upstream password for CPPLAIN
    result = await session_a.cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=new_key))
    assert result.status == "Accepted"
    await a.close()
    await session_a.wait_closed()
    a2 = await connect_ocpp_charger_secure(h, wss_url(port, "CPPLAIN"), "CPPLAIN", user="CPPLAIN",
                                           password=plain, ssl_context=ctx)
    await csms.next_session()
    await boot_round_trip(a2)

    metrics_text = (await proxy.admin("/metrics")).text
    chargers_text = (await proxy.admin("/api/chargers")).text
    await asyncio.sleep(0.2)
    assert await proxy.stop() == 0
    logs = proxy.stderr() + proxy.stdout_path.read_text(errors="replace")
    assert "CPHASH" in logs, "expected debug logs about the sessions (is logging on?)"

    secrets: list[str] = []
    secrets += secret_forms("CPPLAIN", plain)
    secrets += secret_forms("CPHASH", hashed)
    secrets += secret_forms("CPPLAIN", upstream)
    secrets += secret_forms("CPHASH", wrong)
    secrets += secret_forms("CPPLAIN", new_key)
    secrets += [the_hash, the_hash.rsplit("$", 1)[-1]]
    for key in (pki.server.key, pki.proxy_client.key):
        secrets += key_material(key)
    assert_no_secrets(logs, secrets, "the proxy's log output")
    assert_no_secrets(metrics_text, secrets, "/metrics")
    assert_no_secrets(chargers_text, secrets, "/api/chargers")
