"""Security configuration: ``hash-password``, the new configuration keys, their errors, relative paths."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from certs import pki  # noqa: F401  (session fixture)
from harness import LOCALHOST, free_port, listener, run_cli
from security_support import (
    CUSTOM_ITERATIONS,
    V16,
    V201,
    boot_round_trip,
    charger_entry,
    connect_ocpp_charger_secure,
    hash_password,
    refusal_status,
    run_hash_password,
    secure_csms,
    start_secure_env,
    tls_block,
    upstream_tls,
    ws_url,
    wss_url,
)

PW = "Config-tests-pa55word-01"


# ---------------------------------------------------------------------------
# ocpp-proxy hash-password
# ---------------------------------------------------------------------------


def test_hash_password_prints_a_pbkdf2_sha256_hash_and_exits_0(proxy_binary):
    result = run_hash_password(proxy_binary, PW + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one line on stdout, got {result.stdout!r}"
    assert lines[0].startswith("pbkdf2-sha256$"), lines[0]
    assert PW not in result.stdout + result.stderr


def test_hash_password_salts_every_hash(proxy_binary):
    first = run_hash_password(proxy_binary, PW + "\n").stdout.strip()
    second = run_hash_password(proxy_binary, PW + "\n").stdout.strip()
    assert first.startswith("pbkdf2-sha256$") and second.startswith("pbkdf2-sha256$")
    assert first != second, "two hashes of the same password are identical: no random salt"


def test_hash_password_with_iterations_option_exits_0(proxy_binary):
    result = run_hash_password(proxy_binary, PW + "\n", "--iterations", str(CUSTOM_ITERATIONS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pbkdf2-sha256$")


async def test_hash_with_custom_iterations_admits_the_charger(h, pki):
    the_hash = hash_password(h.binary, PW, iterations=CUSTOM_ITERATIONS)
    env = await start_secure_env(h, pki, 1, [charger_entry("CPDEF", 1, password_hash=the_hash)])
    charger = await env.ocpp_charger("CPDEF", PW)
    await boot_round_trip(charger)
    assert await env.status("CPDEF", PW + "!") == 401


async def test_hash_of_the_line_read_from_stdin_excludes_the_newline(h, pki):
    # hash_password feeds "password\n"; the charger authenticates with "password"
    env = await start_secure_env(h, pki, 1, [charger_entry("CPNL", 1, password_hash=hash_password(h.binary, PW))])
    charger = await env.ocpp_charger("CPNL", PW)
    await boot_round_trip(charger)


# ---------------------------------------------------------------------------
# valid configurations
# ---------------------------------------------------------------------------


async def test_chargers_can_be_read_from_a_yaml_file_relative_to_the_config_file(h, pki):
    workdir = h.tmp_path / "conf"
    (workdir / "registry").mkdir(parents=True)
    entries = [charger_entry("CPFILE", 1, password_hash=hash_password(h.binary, PW))]
    (workdir / "registry" / "chargers.yaml").write_text(yaml.safe_dump(entries, sort_keys=False))
    env = await start_secure_env(h, pki, 1, "registry/chargers.yaml", workdir=workdir)
    charger = await env.ocpp_charger("CPFILE", PW)
    await boot_round_trip(charger)
    assert await env.status("CPFILE", "wrong-pa55word-0000") == 401
    assert await env.status("CPOTHER", PW) == 401


async def test_tls_files_are_found_relative_to_the_config_file(h, pki):
    workdir = h.tmp_path / "reltls"
    (workdir / "tls").mkdir(parents=True)
    for src, name in [(pki.server.cert, "server.pem"), (pki.server.key, "server.key"), (pki.ca.cert, "ca.pem"),
                      (pki.crl_pem, "ca.crl")]:
        shutil.copy(src, workdir / "tls" / name)
    tls = {"certificate": "tls/server.pem", "privateKey": "tls/server.key", "clientCA": "tls/ca.pem",
           "crl": "tls/ca.crl", "cpoName": "Test CPO"}
    env = await start_secure_env(h, pki, 3, [charger_entry("CP3", 3), charger_entry("CP3-REVOKED", 3)], tls=tls,
                                 workdir=workdir)
    charger = await env.ocpp_charger("CP3", client="CP3")
    await boot_round_trip(charger)
    assert await env.status("CP3-REVOKED", client="CP3-REVOKED") == 403  # the relative CRL was loaded


async def test_upstream_tls_files_are_found_relative_to_the_config_file(h, pki):
    workdir = h.tmp_path / "relup"
    workdir.mkdir()
    for src, name in [(pki.csms_ca.cert, "csms-ca.pem"), (pki.proxy_client.cert, "proxy-client.pem"),
                      (pki.proxy_client.key, "proxy-client.key")]:
        shutil.copy(src, workdir / name)
    csms_ssl = pki.csms_context(require_client_cert=True)
    env = await start_secure_env(
        h, pki, 0, [charger_entry("CPREL", 0)], csms_ssl=csms_ssl, workdir=workdir,
        upstream_extra={"tls": {"ca": "csms-ca.pem", "certificate": "proxy-client.pem",
                                "privateKey": "proxy-client.key"}},
    )
    charger = await env.ocpp_charger("CPREL")
    await boot_round_trip(charger)


async def test_two_listeners_with_different_profiles_serve_side_by_side(h, pki):
    csms = await secure_csms(h, V16)
    plain_port, tls_port = free_port(), free_port()
    await h.proxy(
        csms.url, V16,
        listeners=[listener(plain_port, 1, name="basic", versions=[V16]),
                   listener(tls_port, 3, name="mtls", tls=tls_block(pki, client_ca=True), versions=[V16])],
        chargers=[charger_entry("CPB", 1, password_hash=hash_password(h.binary, PW)), charger_entry("CP3", 3)],
    )
    a = await connect_ocpp_charger_secure(h, ws_url(plain_port, "CPB"), "CPB", user="CPB", password=PW)
    b = await connect_ocpp_charger_secure(h, wss_url(tls_port, "CP3"), "CP3", ssl_context=pki.charger_context("CP3"))
    await boot_round_trip(a)
    await boot_round_trip(b)
    # the profile-3 charger may not fall back to the profile-1 listener
    assert await refusal_status(ws_url(plain_port, "CP3"), user="CP3", password=PW) in (401, 403)


def test_check_config_accepts_a_full_security_configuration(proxy_binary, tmp_path, pki):
    cfg = {
        "listeners": [
            listener(8180, 2, name="secure", unknown_chargers="reject", tls=tls_block(pki, allow_legacy=False),
                     versions=[V16, V201]),
            listener(8181, 3, name="mtls", tls=tls_block(pki, client_ca=True, crl=pki.crl_der, cpo_name="Test CPO"),
                     versions=[V16, V201]),
            listener(8182, 0, name="open", unknown_chargers="allow", versions=[V16, V201]),
        ],
        "chargers": [
            charger_entry("CP001", 2, password_hash=hash_password(proxy_binary, PW),
                          upstream_password="up-pw-1234567890"),
            charger_entry("CP002", 1, password="dev-only-password-1"),
            charger_entry("CP3", 3),
        ],
        "lockout": {"maxFailures": 5, "window": "60s", "duration": "60s"},
        "upstream": {"url": "wss://127.0.0.1:9443/ocpp", "version": V16, "tls": upstream_tls(pki, client_cert=True)},
        "admin": {"host": LOCALHOST, "port": 8190},
        "state": {"sqlite": str(tmp_path / "state.sqlite")},
    }
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# ---------------------------------------------------------------------------
# configuration errors (check-config exits 2 and names the key)
# ---------------------------------------------------------------------------


def base_config(pki, binary) -> dict:
    return {
        "listeners": [listener(8180, 2, name="secure", tls=tls_block(pki), versions=[V16, V201])],
        "chargers": [charger_entry("CP001", 2, password_hash=hash_password(binary, PW))],
        "upstream": {"url": "ws://127.0.0.1:9000/ocpp", "version": V16},
        "admin": {"host": LOCALHOST, "port": 8190},
    }


def _listener(**kv):
    def mutate(cfg, pki):
        for k, v in kv.items():
            if v is None:
                cfg["listeners"][0].pop(k, None)
            else:
                cfg["listeners"][0][k] = v
    return mutate


def _tls(**kv):
    def mutate(cfg, pki):
        for k, v in kv.items():
            if v is None:
                cfg["listeners"][0]["tls"].pop(k, None)
            else:
                cfg["listeners"][0]["tls"][k] = v
    return mutate


def _charger(**kv):
    def mutate(cfg, pki):
        entry = cfg["chargers"][0]
        for k, v in kv.items():
            if v is None:
                entry.pop(k, None)
            else:
                entry[k] = v
    return mutate


def _upstream(**kv):
    def mutate(cfg, pki):
        cfg["upstream"].update(kv)
    return mutate


BAD = [
    # id, mutation, regex an error line must match (key path first)
    ("allow-unknown-on-profile-1", _listener(securityProfile=1, tls=None, unknownChargers="allow"),
     r"^error: listeners\[0\]\.unknownChargers"),
    ("allow-unknown-on-profile-2", _listener(unknownChargers="allow"), r"^error: listeners\[0\]\.unknownChargers"),
    ("bad-unknown-chargers-value", _listener(unknownChargers="maybe"), r"^error: listeners\[0\]\.unknownChargers"),
    ("profile-2-without-tls", _listener(tls=None), r"^error: listeners\[0\]"),
    ("profile-3-without-tls", _listener(securityProfile=3, tls=None), r"^error: listeners\[0\]"),
    ("profile-3-without-client-ca", _listener(securityProfile=3), r"^error: listeners\[0\]\.tls"),
    ("tls-without-private-key", _tls(privateKey=None), r"^error: listeners\[0\]\.tls"),
    ("tls-certificate-file-missing", _tls(certificate="/nonexistent/server.pem"),
     r"^error: listeners\[0\]\.tls\.certificate"),
    ("security-profile-4", _listener(securityProfile=4), r"^error: listeners\[0\]\.securityProfile"),
    ("charger-password-and-hash", _charger(password="both-set-password-1"), r"^error: chargers\[0\]"),
    ("charger-without-password-on-profile-2", _charger(passwordHash=None), r"^error: chargers\[0\]"),
    ("charger-bad-hash", _charger(passwordHash="md5$abc"), r"^error: chargers\[0\]\.passwordHash"),
    ("charger-without-identity", _charger(identity=None), r"^error: chargers\[0\]\.identity"),
    ("charger-profile-out-of-range", _charger(securityProfile=7), r"^error: chargers\[0\]\.securityProfile"),
    ("chargers-file-missing", lambda cfg, pki: cfg.update(chargers="no-such-chargers.yaml"), r"^error: chargers"),
    ("upstream-tls-with-ws-url", _upstream(tls={"insecureSkipVerify": True}), r"^error: upstream\.tls"),
    ("upstream-ca-file-missing", _upstream(url="wss://127.0.0.1:9443/ocpp", tls={"ca": "/nonexistent/ca.pem"}),
     r"^error: upstream\.tls\.ca"),
    ("lockout-bad-window", lambda cfg, pki: cfg.update(lockout={"maxFailures": 5, "window": "soon", "duration": "60s"}),
     r"^error: lockout\.window"),
]


@pytest.mark.parametrize("mutation,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_check_config_reports_security_errors_with_their_key_path(proxy_binary, tmp_path, pki, mutation, pattern):
    cfg = base_config(pki, proxy_binary)
    mutation(cfg, pki)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    rx = re.compile(pattern)
    assert any(rx.search(line) for line in result.stderr.splitlines()), (
        f"no error line matching {pattern!r}; stderr:\n{result.stderr}"
    )


def test_duplicate_charger_identity_is_a_configuration_error(proxy_binary, tmp_path, pki):
    cfg = base_config(pki, proxy_binary)
    cfg["chargers"].append(dict(cfg["chargers"][0]))
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert re.search(r"^error: chargers\[1\]", result.stderr, re.MULTILINE), result.stderr


def test_configuration_errors_never_echo_a_password(proxy_binary, tmp_path, pki):
    secret = "Echoed-secret-pa55word-7"
    cfg = base_config(pki, proxy_binary)
    cfg["chargers"][0]["password"] = secret  # both password and passwordHash: an error
    cfg["chargers"][0]["upstream"] = {"password": secret + "-up"}
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2
    assert secret not in result.stdout + result.stderr, "a configuration error echoed the password"
