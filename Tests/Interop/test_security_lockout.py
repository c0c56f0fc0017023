"""Lockout: repeated authentication failures of one identity from one remote address answer 429 for a while; so
do many failures from one address over any identities (spraying). A neighbour behind the same address is not
locked out by one charger's wrong password (carrier NAT)."""

from __future__ import annotations

import asyncio

import pytest

from certs import pki  # noqa: F401  (session fixture)
from security_support import boot_round_trip, charger_entry, hash_password, start_secure_env

PW = "Lockout-pa55word-0001"
OTHER_SOURCE = "127.0.0.2"  # loopback alias: a second remote address on this machine


async def env_for(h, pki, profile=1, *, max_failures=3, window="60s", duration="3s", per_address=None):
    lockout = {"maxFailures": max_failures, "window": window, "duration": duration}
    if per_address is not None:
        lockout["maxFailuresPerAddress"] = per_address
    password_hash = hash_password(h.binary, PW)
    return await start_secure_env(
        h, pki, profile,
        [charger_entry(identity, profile, password_hash=password_hash) for identity in ("CPLOCK", "CPNEXT")],
        lockout=lockout,
    )


async def fail_times(env, n, **kwargs):
    for i in range(n):
        status = await env.status("CPLOCK", f"wrong-password-{i:04d}-xyz", **kwargs)
        assert status == 401, f"failure {i + 1} of {n} answered {status}, expected 401"


def retry_after_seconds(exc) -> int:
    value = exc.response.headers.get("Retry-After")
    assert value is not None, "429 without a Retry-After header"
    assert value.strip().isdigit(), f"Retry-After is {value!r}, expected delta-seconds"
    return int(value)


@pytest.mark.parametrize("profile", [pytest.param(1, id="profile1-ws"), pytest.param(2, id="profile2-wss")])
async def test_after_max_failures_even_the_right_password_gets_429_with_retry_after(h, pki, profile):
    env = await env_for(h, pki, profile)
    await fail_times(env, 3)
    exc = await env.refusal("CPLOCK", PW)
    assert exc.response.status_code == 429
    assert 1 <= retry_after_seconds(exc) <= 3
    assert env.csms.handshakes == []


async def test_locked_out_identity_gets_429_whatever_it_sends(h, pki):
    env = await env_for(h, pki)
    await fail_times(env, 3)
    assert await env.status("CPLOCK", "still-wrong-password-1") == 429
    assert await env.status("CPLOCK") == 429  # no credentials at all


async def test_a_neighbour_behind_the_same_address_is_not_locked_out(h, pki):
    env = await env_for(h, pki)
    await fail_times(env, 3)
    assert await env.status("CPLOCK", PW) == 429
    charger = await env.ocpp_charger("CPNEXT", PW)
    await boot_round_trip(charger)


async def test_spraying_identities_from_one_address_locks_the_address_out(h, pki):
    env = await env_for(h, pki, per_address=4)
    for n in range(4):
        assert await env.status(f"CPSPRAY{n}", "wrong-password-xyz-0001") == 401
    assert await env.status("CPNEXT", PW) == 429, "the address is locked out for every identity"
    charger = await env.ocpp_charger("CPNEXT", PW, source=OTHER_SOURCE)
    await boot_round_trip(charger)


async def test_failures_below_max_failures_do_not_lock_out(h, pki):
    env = await env_for(h, pki)
    await fail_times(env, 2)
    charger = await env.ocpp_charger("CPLOCK", PW)
    await boot_round_trip(charger)


async def test_lockout_ends_after_its_duration(h, pki):
    env = await env_for(h, pki, duration="2s")
    await fail_times(env, 3)
    assert await env.status("CPLOCK", PW) == 429
    await asyncio.sleep(2.5)
    charger = await env.ocpp_charger("CPLOCK", PW)
    await boot_round_trip(charger)


async def test_lockout_is_per_remote_address(h, pki):
    env = await env_for(h, pki)
    await fail_times(env, 3)  # from 127.0.0.1
    assert await env.status("CPLOCK", PW) == 429
    charger = await env.ocpp_charger("CPLOCK", PW, source=OTHER_SOURCE)
    await boot_round_trip(charger)
    assert await env.status("CPLOCK", PW) == 429, "the first address must still be locked out"


async def test_failures_older_than_the_window_do_not_count(h, pki):
    env = await env_for(h, pki, max_failures=2, window="1s", duration="30s")
    await fail_times(env, 1)
    await asyncio.sleep(1.5)
    await fail_times(env, 1)
    charger = await env.ocpp_charger("CPLOCK", PW)
    await boot_round_trip(charger)


async def test_locked_out_attempts_are_counted_with_reason_locked_out(h, pki):
    env = await env_for(h, pki)
    await fail_times(env, 3)
    assert await env.failures("wrong_password") == 3
    assert await env.failures("locked_out") == 0
    assert await env.status("CPLOCK", PW) == 429
    assert await env.status("CPLOCK", PW) == 429
    assert await env.failures("locked_out") == 2
    assert await env.failures("wrong_password") == 3, "a locked-out attempt must not check the password"
