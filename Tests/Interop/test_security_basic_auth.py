"""Security profiles 1 and 2: HTTP Basic authentication of chargers before the WebSocket upgrade.

Profile 1 is plain ``ws://`` with Basic auth, profile 2 is ``wss://`` (server
certificate from the test CA) with Basic auth.  Most behaviours are checked on
both.  Registered chargers carry ``passwordHash`` values made with
``ocpp-proxy hash-password``.
"""

from __future__ import annotations

import base64

import pytest

from certs import pki  # noqa: F401  (session fixture)
from security_support import (
    V16,
    V201,
    boot_round_trip,
    charger_entry,
    hash_password,
    start_secure_env,
    warnings_matching,
)

PW1 = "CP1-pa55word-0123456789"
PW2 = "CP2-pa55word-9876543210"
PW_LOW = "CPLOW-pa55word-13579"
PW_HIGH = "CPHIGH-pa55word-24680"
PW_COLON = "colon:in:the-password+|@.=*_"  # 2.0.1 passwordString allows ':'

PROFILES = [pytest.param(1, id="profile1-ws"), pytest.param(2, id="profile2-wss")]


def registered(binary, profile: int) -> list[dict]:
    return [
        charger_entry("CP1", profile, password_hash=hash_password(binary, PW1)),
        charger_entry("CP2", profile, password_hash=hash_password(binary, PW2)),
        # CP2SAME has the same password as CP1: a username/identity mismatch must fail even then
        charger_entry("CP2SAME", profile, password_hash=hash_password(binary, PW1)),
    ]


async def env_for(h, pki, profile, **kwargs):
    return await start_secure_env(h, pki, profile, registered(h.binary, profile), **kwargs)


# ---------------------------------------------------------------------------
# accepted
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile,version", [
    pytest.param(1, V16, id="profile1-ws"),
    pytest.param(2, V16, id="profile2-wss"),
    pytest.param(2, V201, id="profile2-wss-ocpp2.0.1"),
])
async def test_right_credentials_admit_the_charger_and_the_session_works_end_to_end(h, pki, profile, version):
    env = await env_for(h, pki, profile, csms_version=version)
    charger = await env.ocpp_charger("CP1", PW1, version)
    session = await env.csms.next_session()
    assert (session.identity, session.subprotocol) == ("CP1", version)
    await boot_round_trip(charger, version)
    listed = [c["identity"] for c in await env.proxy.chargers()]
    assert listed == ["CP1"]


async def test_password_containing_colons_is_split_at_the_first_colon_only(h, pki):
    entry = charger_entry("CPCOLON", 2, password_hash=hash_password(h.binary, PW_COLON))
    env = await start_secure_env(h, pki, 2, [entry])
    charger = await env.ocpp_charger("CPCOLON", PW_COLON)
    await boot_round_trip(charger)


async def test_plaintext_password_in_config_admits_the_charger_and_is_warned_about(h, pki):
    plain = "Dev-only-plaintext-pw-42"
    env = await start_secure_env(h, pki, 1, [charger_entry("CPDEV", 1, password=plain)])
    warned = warnings_matching(env.proxy.stderr(), r"plain ?text|clear ?text")
    assert warned, "no warning about a plaintext charger password in the configuration" + env.proxy.describe()
    charger = await env.ocpp_charger("CPDEV", plain)
    await boot_round_trip(charger)
    assert await env.status("CPDEV", "Dev-only-plaintext-pw-43") == 401


# ---------------------------------------------------------------------------
# refused with 401
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_missing_authorization_is_401_with_a_basic_challenge(h, pki, profile):
    env = await env_for(h, pki, profile)
    exc = await env.refusal("CP1")
    assert exc.response.status_code == 401
    challenge = exc.response.headers.get("WWW-Authenticate")
    assert challenge is not None, "401 without a WWW-Authenticate header"
    assert challenge.split()[0].lower() == "basic", f"WWW-Authenticate is {challenge!r}, expected a Basic challenge"
    assert env.csms.handshakes == [], "an unauthenticated charger must not cause an upstream connection"


@pytest.mark.parametrize("profile", PROFILES)
async def test_username_other_than_the_identity_is_401(h, pki, profile):
    env = await env_for(h, pki, profile)
    # CP2's own valid credentials, but on CP1's URL
    assert await env.status("CP1", PW2, user="CP2") == 401
    # a username with the same password as the identity's
    assert await env.status("CP1", PW1, user="CP2SAME") == 401
    # the identity in another case, or padded
    assert await env.status("CP1", PW1, user="cp1") == 401
    assert await env.status("CP1", PW1, user="CP1 ") == 401
    assert env.csms.handshakes == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_wrong_password_is_401(h, pki, profile):
    env = await env_for(h, pki, profile)
    assert await env.status("CP1", PW1 + "x") == 401
    assert await env.status("CP1", PW2) == 401, "another charger's password must not admit CP1"
    assert await env.status("CP1", "") == 401
    assert env.csms.handshakes == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_unknown_identity_is_answered_exactly_like_a_wrong_password(h, pki, profile):
    env = await env_for(h, pki, profile)
    unknown = await env.refusal("CPNOBODY", PW1)
    wrong = await env.refusal("CP1", "not-the-password-123")
    assert unknown.response.status_code == 401
    assert unknown.response.status_code == wrong.response.status_code
    assert unknown.response.headers.get("WWW-Authenticate") == wrong.response.headers.get("WWW-Authenticate")
    assert unknown.response.body == wrong.response.body, "an unknown identity must not be distinguishable"
    assert env.csms.handshakes == []


MALFORMED_AUTHORIZATION = {
    "bearer-scheme": "Bearer " + base64.b64encode(f"CP1:{PW1}".encode()).decode(),
    "basic-without-token": "Basic",
    "basic-not-base64": "Basic !!!not-base64!!!",
    "basic-without-colon": "Basic " + base64.b64encode(b"CP1").decode(),
    "basic-empty-username": "Basic " + base64.b64encode(f":{PW1}".encode()).decode(),
}


@pytest.mark.parametrize("value", list(MALFORMED_AUTHORIZATION.values()), ids=list(MALFORMED_AUTHORIZATION))
async def test_malformed_authorization_header_is_401(h, pki, value):
    env = await env_for(h, pki, 1)
    assert await env.status("CP1", headers={"Authorization": value}) == 401
    assert env.csms.handshakes == []


# ---------------------------------------------------------------------------
# profile of the charger vs profile of the listener
# ---------------------------------------------------------------------------


async def test_charger_registered_at_profile_3_is_403_on_a_profile_2_listener_despite_right_password(h, pki):
    entry = charger_entry("CPHIGH", 3, password_hash=hash_password(h.binary, PW_HIGH))
    env = await start_secure_env(h, pki, 2, [entry])
    assert await env.status("CPHIGH", PW_HIGH) == 403
    assert env.csms.handshakes == []


async def test_charger_registered_at_profile_2_is_403_on_a_profile_1_listener_despite_right_password(h, pki):
    entry = charger_entry("CPHIGH", 2, password_hash=hash_password(h.binary, PW_HIGH))
    env = await start_secure_env(h, pki, 1, [entry])
    assert await env.status("CPHIGH", PW_HIGH) == 403
    assert env.csms.handshakes == []


async def test_charger_registered_at_profile_1_is_admitted_on_a_profile_2_listener(h, pki):
    env = await start_secure_env(h, pki, 2, [charger_entry("CPLOW", 1, password_hash=hash_password(h.binary, PW_LOW))])
    charger = await env.ocpp_charger("CPLOW", PW_LOW)
    await boot_round_trip(charger)


async def test_charger_registered_at_profile_1_is_not_admitted_on_a_profile_0_listener(h, pki):
    env = await start_secure_env(
        h, pki, 0, [charger_entry("CPLOW", 1, password_hash=hash_password(h.binary, PW_LOW))],
        unknown_chargers="reject",
    )
    status = await env.status("CPLOW", PW_LOW)
    assert 400 <= status < 500, f"a profile-1 charger on a profile-0 listener got {status}"
    assert env.csms.handshakes == []


# ---------------------------------------------------------------------------
# profile 0 with a charger list
# ---------------------------------------------------------------------------


async def test_profile_0_rejecting_unknown_chargers_answers_404_for_an_unregistered_identity(h, pki):
    env = await start_secure_env(h, pki, 0, [charger_entry("CPKNOWN", 0)], unknown_chargers="reject")
    assert await env.status("CPSTRANGER") == 404
    assert env.csms.handshakes == []


async def test_profile_0_rejecting_unknown_chargers_admits_a_registered_identity_without_credentials(h, pki):
    env = await start_secure_env(h, pki, 0, [charger_entry("CPKNOWN", 0)], unknown_chargers="reject")
    charger = await env.ocpp_charger("CPKNOWN")
    await boot_round_trip(charger)


async def test_profile_0_admits_unregistered_identities_by_default(h, pki):
    env = await start_secure_env(h, pki, 0, [charger_entry("CPKNOWN", 0)])
    charger = await env.ocpp_charger("CPANYONE")
    await boot_round_trip(charger)


async def test_profile_1_rejects_unregistered_identities_by_default(h, pki):
    env = await start_secure_env(h, pki, 1, [charger_entry("CP1", 1, password_hash=hash_password(h.binary, PW1))])
    assert await env.status("CPANYONE", PW1) == 401
    assert await env.status("CPANYONE") == 401
    assert env.csms.handshakes == []
