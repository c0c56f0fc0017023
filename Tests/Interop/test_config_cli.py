"""`ocpp-proxy check-config` / `serve` on valid and invalid configuration files."""

from __future__ import annotations

import copy
import os
import re
import socket
import subprocess
import time

import pytest
import yaml

from harness import LOCALHOST, free_port, run_cli

UNSET_VAR = "OCPP_PROXY_INTEROP_SURELY_UNSET_VARIABLE"

BASE = {
    "listeners": [
        {
            "name": "chargers",
            "host": "127.0.0.1",
            "port": 8180,
            "path": "/ocpp",
            "versions": ["ocpp1.6", "ocpp2.0.1"],
        }
    ],
    "duplicateIdentity": "replace",
    "upstream": {"url": "ws://127.0.0.1:9000/ocpp", "version": "ocpp1.6", "connectTimeout": "5s"},
    "admin": {"host": "127.0.0.1", "port": 8181},
}


def write_config(tmp_path, data=None, text=None, name="proxy.yaml"):
    path = tmp_path / name
    path.write_text(text if text is not None else yaml.safe_dump(data, sort_keys=False))
    return path


def mutated(fn):
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_all_lines_are_errors(result):
    lines = error_lines(result.stderr)
    assert lines, "expected at least one error line on stderr, got nothing"
    bad = [line for line in lines if not line.startswith("error: ")]
    assert not bad, f"stderr lines not of the form 'error: ...': {bad}\nfull stderr:\n{result.stderr}"
    return lines


def assert_key_error(result, key_path: str, *, exact: bool = True, contains: str | None = None):
    """An `error: <key path>: ...` line names the offending key (and, optionally, a text)."""
    assert result.returncode == 2, (
        f"expected exit status 2, got {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    lines = assert_all_lines_are_errors(result)
    if exact:
        pattern = re.compile(r"^error: " + re.escape(key_path) + r": \S")
    else:
        pattern = re.compile(r"^error: " + re.escape(key_path) + r"[.:\[]")
    matching = [line for line in lines if pattern.search(line)]
    assert matching, f"no error line for key path {key_path!r}; stderr was:\n{result.stderr}"
    if contains is not None:
        assert any(contains.lower() in line.lower() for line in matching), (
            f"error line(s) for {key_path!r} do not mention {contains!r}: {matching}"
        )
    assert "configuration OK" not in result.stdout


# ---------------------------------------------------------------------------
# valid files
# ---------------------------------------------------------------------------


def test_check_config_accepts_minimal_valid_file(proxy_binary, tmp_path):
    path = write_config(tmp_path, BASE)
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 0, f"stderr:\n{result.stderr}"
    assert "configuration OK" in result.stdout


def test_check_config_accepts_every_documented_section(proxy_binary, tmp_path):
    (tmp_path / "Rules").mkdir()
    (tmp_path / "data").mkdir()
    conf_dir = tmp_path / "Config"
    conf_dir.mkdir()
    data = mutated(
        lambda d: d.update(
            {
                "listeners": [
                    {
                        "name": "chargers",
                        "host": "0.0.0.0",
                        "port": 8180,
                        "path": "/ocpp",
                        "versions": ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"],
                        "defaultVersion": "ocpp1.6",
                        "securityProfile": 0,
                    },
                    {"name": "second", "port": 8190, "versions": ["ocpp2.0.1"]},
                ],
                "duplicateIdentity": "reject",
                "rules": "../Rules",
                "state": {"sqlite": "../data/state.sqlite"},
                "limits": {"maxFrameBytes": 65536, "callTimeout": "60s"},
                "keepalive": {"pingInterval": "30s", "pongTimeout": "10s"},
                "logging": {"level": "info", "format": "json"},
                "shutdown": {"gracePeriod": "10s"},
            }
        )
    )
    path = write_config(conf_dir, data)
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 0, f"stderr:\n{result.stderr}"
    assert "configuration OK" in result.stdout


@pytest.mark.parametrize("duration", ["500ms", "5s", "2m", "1h", 5, 0.5])
def test_check_config_accepts_every_duration_form(proxy_binary, tmp_path, duration):
    path = write_config(tmp_path, mutated(lambda d: d["upstream"].update(connectTimeout=duration)))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 0, f"duration {duration!r} rejected:\n{result.stderr}"
    assert "configuration OK" in result.stdout


def test_check_config_substitutes_set_environment_variables(proxy_binary, tmp_path):
    path = write_config(tmp_path, mutated(lambda d: d["upstream"].update(url="ws://${OCPP_TEST_CSMS_HOST}:9000/ocpp")))
    result = run_cli(proxy_binary, "check-config", "--config", str(path), env={"OCPP_TEST_CSMS_HOST": "127.0.0.1"})
    assert result.returncode == 0, f"stderr:\n{result.stderr}"
    assert "configuration OK" in result.stdout


def test_keepalive_ping_interval_zero_is_valid(proxy_binary, tmp_path):
    path = write_config(tmp_path, mutated(lambda d: d.update(keepalive={"pingInterval": 0, "pongTimeout": "10s"})))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 0, f"stderr:\n{result.stderr}"


# ---------------------------------------------------------------------------
# invalid files: one problem each
# ---------------------------------------------------------------------------


def _set_listener(**kv):
    return lambda d: d["listeners"][0].update(kv)


def _drop_listener_key(key):
    return lambda d: d["listeners"][0].pop(key)


BAD_CASES = [
    # id, mutation, key path, exact key path?, text the line must contain
    ("port-not-integer", _set_listener(port="abc"), "listeners[0].port", True, "abc"),
    ("port-too-large", _set_listener(port=70000), "listeners[0].port", True, "70000"),
    ("port-zero", _set_listener(port=0), "listeners[0].port", True, None),
    ("port-missing", _drop_listener_key("port"), "listeners[0].port", True, "missing"),
    ("name-missing", _drop_listener_key("name"), "listeners[0].name", True, "missing"),
    ("name-empty", _set_listener(name=""), "listeners[0].name", True, None),
    ("unknown-listener-key", _set_listener(prot=8180), "listeners[0].prot", True, "unknown key"),
    ("unknown-top-level-key", lambda d: d.update(csms={}), "csms", True, "unknown key"),
    ("upstream-and-upstreams", lambda d: d.update(upstreams=[{"name": "a", **d["upstream"]}]), "upstreams", True,
     "not both"),
    ("unknown-upstream-key", lambda d: d["upstream"].update(timeout="5s"), "upstream.timeout", True, "unknown key"),
    ("upstream-url-missing", lambda d: d["upstream"].pop("url"), "upstream.url", True, "missing"),
    ("upstream-section-missing", lambda d: d.pop("upstream"), "upstream", False, "missing"),
    ("upstream-version-missing", lambda d: d["upstream"].pop("version"), "upstream.version", True, "missing"),
    ("bad-listener-version-name", _set_listener(versions=["ocpp1.6", "ocpp1.7"]), "listeners[0].versions", False, "ocpp1.7"),
    ("empty-versions", _set_listener(versions=[]), "listeners[0].versions", True, None),
    ("bad-upstream-version", lambda d: d["upstream"].update(version="ocpp2.0"), "upstream.version", True, "ocpp2.0"),
    ("default-version-not-listed", _set_listener(defaultVersion="ocpp2.1"), "listeners[0].defaultVersion", True, "ocpp2.1"),
    (
        "duplicate-listener-name",
        lambda d: d["listeners"].append({"name": "chargers", "port": 8190, "versions": ["ocpp1.6"]}),
        "listeners[1].name",
        True,
        "chargers",
    ),
    (
        "duplicate-host-and-port",
        lambda d: d["listeners"].append({"name": "other", "host": "127.0.0.1", "port": 8180, "versions": ["ocpp1.6"]}),
        "listeners[1]",
        False,
        None,
    ),
    ("no-listeners", lambda d: d.update(listeners=[]), "listeners", True, None),
    ("path-without-leading-slash", _set_listener(path="ocpp"), "listeners[0].path", True, None),
    ("security-profile-2-without-tls", _set_listener(securityProfile=2), "listeners[0].tls", True, "missing"),
    ("security-profile-3-without-tls", _set_listener(securityProfile=3), "listeners[0].tls", True, "missing"),
    ("security-profile-4", _set_listener(securityProfile=4), "listeners[0].securityProfile", True, "4"),
    (
        "unknown-chargers-allowed-above-profile-0",
        _set_listener(securityProfile=1, unknownChargers="allow"),
        "listeners[0].unknownChargers",
        True,
        "allow",
    ),
    ("tls-files-missing", _set_listener(tls={"certificate": "nope.pem", "privateKey": "nope.key"}), "listeners[0].tls.certificate", True, "nope.pem"),
    ("charger-without-password", lambda d: d.update(chargers=[{"identity": "CP1", "securityProfile": 1}]), "chargers[0].passwordHash", True, "required"),
    ("charger-hash-malformed", lambda d: d.update(chargers=[{"identity": "CP1", "passwordHash": "secret"}]), "chargers[0].passwordHash", True, "hash-password"),
    ("charger-listed-twice", lambda d: d.update(chargers=[{"identity": "CP1"}, {"identity": "CP1"}]), "chargers[1].identity", True, "twice"),
    ("charger-list-file-missing", lambda d: d.update(chargers="missing-chargers.yaml"), "chargers", True, "missing-chargers.yaml"),
    ("upstream-tls-with-ws-url", lambda d: d["upstream"].update(tls={"insecureSkipVerify": True}), "upstream.tls", True, "wss://"),
    ("bad-duration", lambda d: d["upstream"].update(connectTimeout="5 parsecs"), "upstream.connectTimeout", True, "5 parsecs"),
    ("bad-call-timeout", lambda d: d.update(limits={"callTimeout": "soon"}), "limits.callTimeout", True, "soon"),
    ("http-url", lambda d: d["upstream"].update(url="http://127.0.0.1:9000/ocpp"), "upstream.url", True, "http://"),
    ("bad-duplicate-identity", lambda d: d.update(duplicateIdentity="maybe"), "duplicateIdentity", True, "maybe"),
    ("frame-limit-too-small", lambda d: d.update(limits={"maxFrameBytes": 100}), "limits.maxFrameBytes", True, "100"),
    ("frame-limit-too-large", lambda d: d.update(limits={"maxFrameBytes": 16777217}), "limits.maxFrameBytes", True, "16777217"),
    ("bad-log-format", lambda d: d.update(logging={"format": "xml"}), "logging.format", True, "xml"),
    ("bad-log-level", lambda d: d.update(logging={"level": "loud"}), "logging.level", True, "loud"),
    ("admin-port-not-integer", lambda d: d["admin"].update(port="x"), "admin.port", True, None),
    (
        "unset-environment-variable",
        lambda d: d["upstream"].update(url="ws://${" + UNSET_VAR + "}:9000/ocpp"),
        "upstream.url",
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    "mutation,key_path,exact,contains", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_check_config_reports_invalid_key_with_its_path(proxy_binary, tmp_path, mutation, key_path, exact, contains):
    path = write_config(tmp_path, mutated(mutation))
    assert UNSET_VAR not in os.environ
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert_key_error(result, key_path, exact=exact, contains=contains)


def test_port_error_line_has_documented_shape(proxy_binary, tmp_path):
    path = write_config(tmp_path, mutated(_set_listener(port="abc")))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2
    line = next(l for l in error_lines(result.stderr) if l.startswith("error: listeners[0].port: "))
    assert re.match(r'^error: listeners\[0\]\.port: expected .+, got .*abc', line), line


def test_all_problems_in_one_file_are_reported(proxy_binary, tmp_path):
    def several(d):
        d["listeners"][0]["port"] = "abc"
        d["listeners"][0]["prot"] = 1
        d["upstream"].pop("url")
        d["upstream"]["connectTimeout"] = "5 parsecs"

    path = write_config(tmp_path, mutated(several))
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2
    lines = assert_all_lines_are_errors(result)
    for key in ("listeners[0].port", "listeners[0].prot", "upstream.url", "upstream.connectTimeout"):
        assert any(line.startswith(f"error: {key}: ") for line in lines), f"{key} not reported:\n{result.stderr}"
    assert len(lines) >= 4


def test_yaml_syntax_error_reports_file_and_line(proxy_binary, tmp_path):
    text = (
        "listeners:\n"  # 1
        "  - name: chargers\n"  # 2
        "    port: 8180\n"  # 3
        "    path: /ocpp: /x\n"  # 4  <- "mapping values are not allowed here"
        "    versions: [ocpp1.6]\n"  # 5
        "upstream:\n"
        "  url: ws://127.0.0.1:9000/ocpp\n"
        "  version: ocpp1.6\n"
    )
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(text)
    path = write_config(tmp_path, text=text, name="broken.yaml")
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, f"expected exactly one error line, got:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(r"broken\.yaml:4\b", lines[0]), f"line does not point at broken.yaml:4: {lines[0]}"


def test_missing_file_is_one_error_and_status_2(proxy_binary, tmp_path):
    path = tmp_path / "does-not-exist.yaml"
    result = run_cli(proxy_binary, "check-config", "--config", str(path))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "does-not-exist.yaml" in lines[0]


def test_unreadable_file_is_one_error_and_status_2(proxy_binary, tmp_path):
    directory = tmp_path / "a-directory.yaml"
    directory.mkdir()
    result = run_cli(proxy_binary, "check-config", "--config", str(directory))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_serve_with_invalid_file_exits_2_without_binding(proxy_binary, tmp_path):
    listener_port, admin_port = free_port(), free_port()

    def broken(d):
        d["listeners"][0]["port"] = listener_port
        d["listeners"][0]["prot"] = 1  # unknown key
        d["admin"]["port"] = admin_port

    path = write_config(tmp_path, mutated(broken))
    proc = subprocess.Popen(
        [str(proxy_binary), "serve", "--config", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bound = []
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        for port in (listener_port, admin_port):
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((LOCALHOST, port)) == 0:
                    bound.append(port)
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
    _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 2, f"serve exited with {proc.returncode}:\n{stderr}"
    assert not bound, f"serve bound port(s) {sorted(set(bound))} despite an invalid configuration"
    assert any(line.startswith("error: listeners[0].prot: ") for line in stderr.splitlines()), stderr
    # the ports really are free afterwards
    for port in (listener_port, admin_port):
        with socket.socket() as s:
            s.bind((LOCALHOST, port))


def test_serve_with_missing_file_exits_2(proxy_binary, tmp_path):
    result = run_cli(proxy_binary, "serve", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_serve_reports_unset_environment_variable_by_key_path(proxy_binary, tmp_path):
    path = write_config(tmp_path, mutated(lambda d: d["upstream"].update(url="ws://${" + UNSET_VAR + "}/ocpp")))
    result = run_cli(proxy_binary, "serve", "--config", str(path))
    assert_key_error(result, "upstream.url")
