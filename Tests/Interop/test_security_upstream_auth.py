"""Credentials toward the CSMS: per-charger Basic auth, and password changes made by the CSMS.

The charger authenticates to the proxy with its own password; the proxy
authenticates to the CSMS as ``identity:upstream.password``.  A CSMS that sets
a new password (1.6 ``ChangeConfiguration(AuthorizationKey)``, 2.0.1
``SetVariables(SecurityCtrlr.BasicAuthPassword)``) is answered by the proxy,
and the new password is used, and persisted, for the next upstream connection.
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
    secret_forms,
    start_secure_env,
)

PW = "Charger-own-pa55word-01"  # charger -> proxy
UP = "Upstream-pa55word-0001"  # proxy -> CSMS
NEW16 = "0123456789abcdef0123456789abcdef01234567"  # 40 hex digits (A00.FR.205)
NEW201 = "New-201-pa55word:with+chars|@.=*_"  # 2.0.1 passwordString characters


async def env_for(h, pki, version=V16, *, upstream_password=UP, state=None, profile=1):
    entry = charger_entry("CPUP", profile, password_hash=hash_password(h.binary, PW),
                          upstream_password=upstream_password)
    return await start_secure_env(h, pki, profile, [entry], csms_version=version,
                                  state=state or (h.tmp_path / "state.sqlite"))


async def reconnect(env, charger, session, version=V16):
    """Close the charger, wait for the upstream link to close, connect again (same own password)."""
    await charger.close()
    await session.wait_closed()
    charger = await env.ocpp_charger("CPUP", PW, version)
    session = await env.csms.next_session()
    await boot_round_trip(charger, version)
    return charger, session


# ---------------------------------------------------------------------------
# Basic auth toward the CSMS
# ---------------------------------------------------------------------------


async def test_upstream_upgrade_carries_identity_and_the_configured_upstream_password(h, pki):
    env = await env_for(h, pki)
    charger = await env.ocpp_charger("CPUP", PW)
    await env.csms.next_session()
    await boot_round_trip(charger)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", UP)


async def test_upstream_basic_auth_works_over_tls_with_a_profile_2_charger(h, pki):
    env = await start_secure_env(
        h, pki, 2, [charger_entry("CPUP", 2, password_hash=hash_password(h.binary, PW), upstream_password=UP)],
        csms_ssl=pki.csms_context(), upstream_extra={"tls": {"ca": str(pki.csms_ca.cert)}},
    )
    charger = await env.ocpp_charger("CPUP", PW)
    await env.csms.next_session()
    await boot_round_trip(charger)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", UP)


async def test_the_chargers_own_password_is_never_sent_upstream(h, pki):
    env = await env_for(h, pki)
    charger = await env.ocpp_charger("CPUP", PW)
    await env.csms.next_session()
    await boot_round_trip(charger)
    forms = secret_forms("CPUP", PW)
    for name, values in env.csms.handshakes[-1].headers.items():
        for value in values:
            assert not any(f in value for f in forms), f"the charger's password went upstream in {name}: {value!r}"


async def test_each_charger_uses_its_own_upstream_password(h, pki):
    entries = [
        charger_entry("CPA", 1, password_hash=hash_password(h.binary, PW), upstream_password="Upstream-of-A-000001"),
        charger_entry("CPB", 1, password_hash=hash_password(h.binary, PW), upstream_password="Upstream-of-B-000002"),
    ]
    env = await start_secure_env(h, pki, 1, entries)
    seen = {}
    for identity in ("CPA", "CPB"):
        charger = await env.ocpp_charger(identity, PW)
        await env.csms.next_session()
        await boot_round_trip(charger)
        seen[identity] = env.csms.handshakes[-1].basic_credentials()
    assert seen == {"CPA": ("CPA", "Upstream-of-A-000001"), "CPB": ("CPB", "Upstream-of-B-000002")}


async def test_charger_without_upstream_password_sends_no_authorization_upstream(h, pki):
    env = await env_for(h, pki, upstream_password=None)
    charger = await env.ocpp_charger("CPUP", PW)
    await env.csms.next_session()
    await boot_round_trip(charger)
    handshake = env.csms.handshakes[-1]
    assert handshake.header("authorization") is None, (
        f"Authorization sent upstream although no upstream password is set: {handshake.header('authorization')!r}"
    )


# ---------------------------------------------------------------------------
# a new password from the CSMS, in either version
# ---------------------------------------------------------------------------


def set_item(component, variable, value):
    return {"component": {"name": component}, "variable": {"name": variable}, "attribute_value": value}


def result_triples(result) -> list[tuple[str, str, str]]:
    return [(r["component"]["name"], r["variable"]["name"], r["attribute_status"]) for r in result.set_variable_result]


SETTING_ACTION = {V16: "ChangeConfiguration", V201: "SetVariables"}
# version: (the CALL setting only the password, its answer as compared, that answer, the new password)
PASSWORD_ONLY = {
    V16: (lambda: call16.ChangeConfiguration(key="AuthorizationKey", value=NEW16), lambda r: r.status, "Accepted",
          NEW16),
    V201: (lambda: call201.SetVariables(set_variable_data=[set_item("SecurityCtrlr", "BasicAuthPassword", NEW201)]),
           result_triples, [("SecurityCtrlr", "BasicAuthPassword", "Accepted")], NEW201),
}
# version: (a CALL setting the password among other settings, the statuses of its answer, the new password)
PASSWORD_AMONG_OTHERS = {
    V16: (lambda: call16.ChangeConfiguration(key="AuthorizationKey", value=NEW16), ["Accepted"], NEW16),
    V201: (lambda: call201.SetVariables(set_variable_data=[
        set_item("OCPPCommCtrlr", "HeartbeatInterval", "60"),
        set_item("SecurityCtrlr", "BasicAuthPassword", NEW201),
    ]), ["Accepted", "Accepted"], NEW201),
}


def statuses(result) -> list[str]:
    """The status of a ChangeConfiguration answer, or each status of a SetVariables answer."""
    if hasattr(result, "set_variable_result"):
        return [r[2] for r in result_triples(result)]
    return [result.status]


@pytest.mark.parametrize("version", [V16, V201])
async def test_password_set_by_the_csms_is_answered_by_the_proxy_and_never_reaches_the_charger(h, pki, version):
    request, answer_of, expected, new = PASSWORD_ONLY[version]
    env = await env_for(h, pki, version)
    charger = await env.ocpp_charger("CPUP", PW, version)
    session = await env.csms.next_session()
    result = await session.cp.call(request(), suppress=False)
    assert answer_of(result) == expected
    await everything_sent_before_has_arrived(session, charger, version)
    action = SETTING_ACTION[version]
    assert frames_with_action(charger.recorder.received_frames(), action) == [], f"the charger received the {action}"
    assert not any(new in m for m in charger.recorder.received), "the new password reached the charger"


@pytest.mark.parametrize("version", [V16, V201])
async def test_password_set_by_the_csms_is_used_for_the_next_upstream_connection(h, pki, version):
    request, expected, new = PASSWORD_AMONG_OTHERS[version]
    env = await env_for(h, pki, version)
    charger = await env.ocpp_charger("CPUP", PW, version)
    session = await env.csms.next_session()
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", UP)
    result = await session.cp.call(request(), suppress=False)
    assert statuses(result) == expected
    await reconnect(env, charger, session, version)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", new)


# ---------------------------------------------------------------------------
# OCPP 1.6: ChangeConfiguration(AuthorizationKey)
# ---------------------------------------------------------------------------


async def test_csms_can_give_a_password_to_a_charger_that_had_no_upstream_password(h, pki):
    env = await env_for(h, pki, upstream_password=None)
    charger = await env.ocpp_charger("CPUP", PW)
    session = await env.csms.next_session()
    assert env.csms.handshakes[-1].header("authorization") is None
    result = await session.cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=NEW16), suppress=False)
    assert result.status == "Accepted"
    await reconnect(env, charger, session)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", NEW16)


async def test_new_authorization_key_applies_only_to_the_charger_it_was_sent_to(h, pki):
    entries = [
        charger_entry("CPUP", 1, password_hash=hash_password(h.binary, PW), upstream_password=UP),
        charger_entry("CPOTHER", 1, password_hash=hash_password(h.binary, PW), upstream_password=UP),
    ]
    env = await start_secure_env(h, pki, 1, entries, state=h.tmp_path / "state.sqlite")
    charger = await env.ocpp_charger("CPUP", PW)
    session = await env.csms.next_session()
    result = await session.cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=NEW16), suppress=False)
    assert result.status == "Accepted"
    other = await env.ocpp_charger("CPOTHER", PW)
    await env.csms.next_session()
    await boot_round_trip(other)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPOTHER", UP)


async def test_new_authorization_key_survives_a_proxy_restart(h, pki):
    state = h.tmp_path / "persist" / "state.sqlite"
    state.parent.mkdir()
    env = await env_for(h, pki, state=state)
    charger = await env.ocpp_charger("CPUP", PW)
    session = await env.csms.next_session()
    result = await session.cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=NEW16), suppress=False)
    assert result.status == "Accepted"
    await charger.close()
    await session.wait_closed()
    assert await env.proxy.stop() == 0, "the proxy must exit 0 on SIGTERM" + env.proxy.describe()

    env.proxy = await h.proxy(config=env.proxy.config)  # same configuration, same state file
    charger = await env.ocpp_charger("CPUP", PW)
    await env.csms.next_session()
    await boot_round_trip(charger)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", NEW16)


async def test_change_configuration_of_other_keys_still_reaches_the_charger(h, pki):
    env = await env_for(h, pki)
    charger = await env.ocpp_charger("CPUP", PW)
    session = await env.csms.next_session()
    result = await session.cp.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="120"), suppress=False)
    assert result.status == "Accepted"
    got = frames_with_action(charger.recorder.received_frames(), "ChangeConfiguration")
    assert [f[3] for f in got] == [{"key": "HeartbeatInterval", "value": "120"}]
    await reconnect(env, charger, session)
    assert env.csms.handshakes[-1].basic_credentials() == ("CPUP", UP), "the upstream password must not change"


# ---------------------------------------------------------------------------
# OCPP 2.0.1: SetVariables(SecurityCtrlr.BasicAuthPassword)
# ---------------------------------------------------------------------------


async def test_set_variables_password_item_is_answered_by_the_proxy_and_the_rest_forwarded_in_order(h, pki):
    env = await env_for(h, pki, V201)
    charger = await env.ocpp_charger("CPUP", PW, V201)
    session = await env.csms.next_session()
    request = call201.SetVariables(set_variable_data=[
        set_item("OCPPCommCtrlr", "HeartbeatInterval", "60"),
        set_item("SecurityCtrlr", "BasicAuthPassword", NEW201),
        set_item("AuthCtrlr", "Enabled", "false"),
    ])
    result = await session.cp.call(request, suppress=False)
    assert result_triples(result) == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Accepted"),  # the charger's answer
        ("SecurityCtrlr", "BasicAuthPassword", "Accepted"),  # the proxy's answer
        ("AuthCtrlr", "Enabled", "Rejected"),  # the charger's answer
    ]
    forwarded = frames_with_action(charger.recorder.received_frames(), "SetVariables")
    assert len(forwarded) == 1
    items = [(i["component"]["name"], i["variable"]["name"], i["attributeValue"])
             for i in forwarded[0][3]["setVariableData"]]
    assert items == [("OCPPCommCtrlr", "HeartbeatInterval", "60"), ("AuthCtrlr", "Enabled", "false")]
    assert not any(NEW201 in m for m in charger.recorder.received), "the new password reached the charger"


async def test_set_variables_without_the_password_passes_through_unchanged(h, pki):
    env = await env_for(h, pki, V201)
    charger = await env.ocpp_charger("CPUP", PW, V201)
    session = await env.csms.next_session()
    result = await session.cp.call(call201.SetVariables(set_variable_data=[
        set_item("OCPPCommCtrlr", "HeartbeatInterval", "60"),
        set_item("AuthCtrlr", "Enabled", "false"),
    ]), suppress=False)
    assert result_triples(result) == [("OCPPCommCtrlr", "HeartbeatInterval", "Accepted"),
                                      ("AuthCtrlr", "Enabled", "Rejected")]
    sent_by_csms = frames_with_action(session.recorder.sent_frames(), "SetVariables")
    got_by_charger = frames_with_action(charger.recorder.received_frames(), "SetVariables")
    assert [f[3] for f in got_by_charger] == [f[3] for f in sent_by_csms]
