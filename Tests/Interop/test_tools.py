"""The walkthrough tools (tools/csms.py, tools/charger.py, tools/soap_charger.py) work, directly and through the
proxy, and the walkthrough configurations (Config/*.yaml) pass check-config."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import pytest

from harness import LOCALHOST, REPO_ROOT, free_port, wait_until
from soap_peers import soap_listener

TOOLS = REPO_ROOT / "tools"
EXPECTED_CSMS_CALL = {"ocpp1.6": "GetConfiguration answered", "ocpp2.0.1": "GetVariables answered"}


class CsmsTool:
    def __init__(self, version: str, tmp_path):
        self.port = free_port()
        self.log_path = tmp_path / f"csms-{version}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(TOOLS / "csms.py"), "--version", version, "--port", str(self.port),
             "--heartbeat-interval", "1"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    async def wait_listening(self):
        async def listening():
            try:
                _, writer = await asyncio.open_connection(LOCALHOST, self.port)
            except OSError:
                assert self.proc.poll() is None, f"csms.py exited early:\n{self.output()}"
                return False
            writer.close()
            return True

        await wait_until(listening, 15, "tools/csms.py to listen")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


async def run_charger(url: str, version: str, duration: float = 3.0) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(TOOLS / "charger.py"), "--url", url, "--version", version, "--duration", str(duration),
        "--meter-values", "2", "--meter-interval", "0.1", "--heartbeat-interval", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), duration + 30)
    return subprocess.CompletedProcess(["charger.py", url], proc.returncode, out.decode(), "")


@pytest.fixture
async def csms_tool(tmp_path):
    tools = []

    async def start(version):
        tool = CsmsTool(version, tmp_path)
        tools.append(tool)
        await tool.wait_listening()
        return tool

    yield start
    for tool in tools:
        assert tool.stop() == 0, f"csms.py did not exit cleanly:\n{tool.output()}"


def assert_whole_session(version: str, charger_out: str, csms_out: str, identity: str):
    assert "!!" not in charger_out, charger_out
    assert "transaction" in charger_out and "done after" in charger_out, charger_out
    assert "Heartbeat" in charger_out
    assert EXPECTED_CSMS_CALL[version] in csms_out, csms_out
    assert f"[{identity}] connected" in csms_out, csms_out
    for action in ("BootNotification", "StatusNotification", "Authorize", "MeterValues", "Heartbeat"):
        assert f'"{action}"' in csms_out, f"{action} missing from the CSMS log"
    if version == "ocpp1.6":
        assert '"StartTransaction"' in csms_out and '"StopTransaction"' in csms_out
    else:
        for event in ("Started", "Updated", "Ended"):
            assert f"TransactionEvent {event}" in csms_out


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
async def test_charger_tool_runs_a_whole_session_against_csms_tool(csms_tool, version):
    csms = await csms_tool(version)
    result = await run_charger(f"ws://{LOCALHOST}:{csms.port}/ocpp/CPTOOL", version)
    assert result.returncode == 0, result.stdout
    assert_whole_session(version, result.stdout, csms.output(), "CPTOOL")


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
async def test_walkthrough_through_the_proxy(h, csms_tool, version):
    csms = await csms_tool(version)
    proxy = await h.proxy(f"ws://{LOCALHOST}:{csms.port}/ocpp", version)
    result = await run_charger(proxy.url("CPWALK"), version)
    assert result.returncode == 0, result.stdout + proxy.describe()
    assert_whole_session(version, result.stdout, csms.output(), "CPWALK")


async def test_2_0_1_walkthrough_through_the_proxy_to_a_1_6_csms(h, csms_tool):
    # README: "A 2.0.1 station on a 1.6 CSMS" (Rules/ocpp2.0.1-ocpp1.6.yaml)
    csms = await csms_tool("ocpp1.6")
    proxy = await h.proxy(f"ws://{LOCALHOST}:{csms.port}/ocpp", "ocpp1.6", translate=True)
    result = await run_charger(proxy.url("CPWALK201"), "ocpp2.0.1")
    assert result.returncode == 0, result.stdout + proxy.describe()
    out, csms_out = result.stdout, csms.output()
    assert "!!" not in out and "done after" in out, out
    assert "[CPWALK201] connected" in csms_out and "subprotocol ocpp1.6" in csms_out, csms_out
    for action in ("BootNotification", "StatusNotification", "Authorize", "StartTransaction", "MeterValues",
                   "StopTransaction", "Heartbeat"):
        assert f'"{action}"' in csms_out, f"{action} missing from the CSMS log\n{csms_out}"
    assert "GetConfiguration answered" in csms_out, csms_out
    assert "GetConfiguration failed" not in csms_out, csms_out
    # the station's registers (10000 Wh at the start, two readings of +250 Wh) become meterStart/meterStop,
    # with the integer id the CSMS gave
    started = re.search(r"transaction (\d+) started on connector 1 at 10000 Wh", csms_out)
    assert started, csms_out
    assert f"transaction {started.group(1)} stopped at 10500 Wh" in csms_out, csms_out


async def test_charger_tool_exits_1_when_nothing_listens():
    result = await run_charger(f"ws://{LOCALHOST}:{free_port()}/ocpp/CPNONE", "ocpp1.6", duration=1)
    assert result.returncode == 1
    assert "cannot connect" in result.stdout


# ---------------------------------------------------------------------------
# tools/soap_charger.py and Config/soap.yaml (README: "A 1.5 SOAP charger on a 2.0.1 CSMS")
# ---------------------------------------------------------------------------


async def run_soap_charger(url: str, version: str, duration: float = 3.0, *extra: str) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(TOOLS / "soap_charger.py"), "--url", url, "--version", version, "--identity", "CPSOAP",
        "--duration", str(duration), "--meter-values", "2", "--meter-interval", "0.1", "--heartbeat-interval", "1",
        *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), duration + 60)
    return subprocess.CompletedProcess(["soap_charger.py", url], proc.returncode, out.decode(), "")


@pytest.mark.parametrize("version", ["ocpp1.5", "ocpp1.6"])
async def test_soap_walkthrough_through_the_proxy_to_a_2_0_1_csms(h, csms_tool, version):
    csms = await csms_tool("ocpp2.0.1")
    proxy = await h.proxy(f"ws://{LOCALHOST}:{csms.port}/ocpp", "ocpp2.0.1", listeners=[soap_listener()],
                          translate=True)
    result = await run_soap_charger(proxy.soap_url, version)
    assert result.returncode == 0, result.stdout + proxy.describe()
    out = result.stdout
    assert "!!" not in out and "done after" in out, out
    for action in ("BootNotification", "StatusNotification", "Authorize", "StartTransaction", "MeterValues",
                   "StopTransaction", "Heartbeat"):  # whole envelopes are printed: the action is the wsa:Action
        assert f">/{action}</" in out, f"{action} missing from the charger's output"
    # the CSMS's GetVariables reaches the charger's endpoint as GetConfiguration, and is answered
    assert ">/GetConfiguration</" in out and "-> HTTP 200" in out, out
    csms_out = csms.output()
    assert "[CPSOAP] connected" in csms_out and "GetVariables answered" in csms_out, csms_out
    for event in ("Started", "Updated", "Ended"):
        assert f"TransactionEvent {event}" in csms_out, csms_out


async def test_soap_charger_tool_exits_1_when_nothing_listens():
    result = await run_soap_charger(f"http://{LOCALHOST}:{free_port()}/ocpp/soap", "ocpp1.5", 1.0)
    assert result.returncode == 1, result.stdout
    assert "!! BootNotification" in result.stdout, result.stdout


@pytest.mark.parametrize("name", ["proxy.yaml", "soap.yaml", "ocpp201-on-16.yaml", "migration.yaml"])
def test_shipped_configurations_pass_check_config(proxy_binary, name):
    # migration.yaml takes its admin token from the environment, as the README's walkthrough sets it
    env = {**os.environ, "OCPP_PROXY_ADMIN_TOKEN": "walkthrough-token-0123456789"}
    result = subprocess.run([str(proxy_binary), "check-config", "--config", str(REPO_ROOT / "Config" / name)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout + result.stderr
