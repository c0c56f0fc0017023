"""Listener certificates are reloaded on SIGHUP and when their files change, without dropping open sessions."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from pathlib import Path

from certs import pki  # noqa: F401  (fixture)
from security_support import boot_round_trip, charger_entry, hash_password, start_secure_env

PW = "reload-password-1234"


def der_of_first_certificate(pem_path: Path) -> bytes:
    text = pem_path.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[:end] + "\n")


async def served_certificate(port: int, pki) -> bytes:
    """The leaf certificate a fresh TLS connection to the listener is shown."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=pki.charger_context()), timeout=5
    )
    try:
        return writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()


async def wait_for_served(port: int, pki, expected: bytes, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await served_certificate(port, pki) == expected:
            return
        assert asyncio.get_running_loop().time() < deadline, "the listener still serves the old certificate"
        await asyncio.sleep(0.2)


def install(directory: Path, chain: Path, key: Path) -> None:
    """Replaces the listener's files the way a certificate tool does: write aside, then rename."""
    for source, name in ((key, "server.key"), (chain, "server.pem")):
        temporary = directory / (name + ".new")
        temporary.write_bytes(source.read_bytes())
        os.replace(temporary, directory / name)


async def reloadable_env(h, pki, tmp_path):
    directory = tmp_path / "tls"
    directory.mkdir()
    install(directory, pki.server.cert, pki.server.key)
    tls = {"certificate": str(directory / "server.pem"), "privateKey": str(directory / "server.key")}
    env = await start_secure_env(
        h, pki, 2, [charger_entry("CPR", 2, password_hash=hash_password(h.binary, PW))], tls=tls
    )
    return env, directory


async def test_sighup_reloads_the_certificate_and_keeps_open_sessions(h, pki, tmp_path):
    env, directory = await reloadable_env(h, pki, tmp_path)
    charger = await env.ocpp_charger("CPR", PW, ssl_context=pki.charger_context())
    await boot_round_trip(charger)
    assert await served_certificate(env.port, pki) == der_of_first_certificate(pki.server.cert)

    install(directory, pki.server_intermediate_chain, pki.server_leaf_only.key)
    env.proxy.send_signal(signal.SIGHUP)
    await wait_for_served(env.port, pki, der_of_first_certificate(pki.server_leaf_only.cert), timeout=5)

    # The session opened before the reload still carries OCPP traffic.
    await boot_round_trip(charger)
    # And a new charger gets in with the new certificate.
    second = await env.ocpp_charger("CPR", PW, ssl_context=pki.charger_context())
    await boot_round_trip(second)
    assert "reloaded" in env.proxy.stderr()


async def test_changed_certificate_files_are_picked_up_without_a_signal(h, pki, tmp_path):
    env, directory = await reloadable_env(h, pki, tmp_path)
    charger = await env.ocpp_charger("CPR", PW, ssl_context=pki.charger_context())
    await boot_round_trip(charger)

    install(directory, pki.server_intermediate_chain, pki.server_leaf_only.key)
    await wait_for_served(env.port, pki, der_of_first_certificate(pki.server_leaf_only.cert), timeout=10)
    await boot_round_trip(charger)


async def test_a_broken_certificate_file_keeps_the_previous_certificate(h, pki, tmp_path):
    env, directory = await reloadable_env(h, pki, tmp_path)
    (directory / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    env.proxy.send_signal(signal.SIGHUP)
    deadline = asyncio.get_running_loop().time() + 5
    while "TLS reload failed" not in env.proxy.stderr():
        assert asyncio.get_running_loop().time() < deadline, "no log line about the failed reload"
        await asyncio.sleep(0.1)
    assert await served_certificate(env.port, pki) == der_of_first_certificate(pki.server.cert)
    charger = await env.ocpp_charger("CPR", PW, ssl_context=pki.charger_context())
    await boot_round_trip(charger)
    assert env.proxy.alive()
