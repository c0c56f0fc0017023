"""Overload protection (issue 15, point 5; README "Overload protection").

The proxy reads its resident memory, its event loops' lag and the CALLs awaiting the CSMS's answer, and sheds load
in steps: 1 Heartbeats answered by the proxy, 2 new handshakes refused with 503 + ``Retry-After``, 3 the listeners
stop accepting.  Each change is logged, counted and reversed when the pressure falls.  The pressure here is real:
a memory threshold below the process's resident set, and CALLs held by a CSMS (an ``ocpp`` peer) that does not answer
until the test lets it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from websockets.exceptions import InvalidStatus

from audit_support import AuditDir, events
from harness import LOCALHOST, V16, connect_raw, metric_value, parse_prometheus, raw_ws_connect, wait_until
from ocpp_peers import Csms16
from test_limits import check_config

# Sampled every 50 ms, a step left after 300 ms of calm: the tests wait for steps, never for time.
FAST = {"interval": "50ms", "recoverAfter": "300ms"}


def overload(**monitors) -> dict:
    """Overrides with overload protection on: the given monitors only, each of the others ``off``.  The message-limit
    stage, where Heartbeats are shed, runs when some message limit is configured: a DataTransfer rule no test reaches."""
    section = {**FAST, "memory": "off", "eventLoopLag": "off", "pendingCalls": "off", **monitors}
    return {"overload": section,
            "limits": {"messages": {"DataTransfer": {"rate": "100/s", "burst": 100, "over": "reject"}}}}


async def metrics(proxy):
    return parse_prometheus((await proxy.admin("/metrics")).text)


async def step(proxy) -> float:
    return metric_value(await metrics(proxy), "ocpp_proxy_overload_step")


async def wait_step(proxy, value: int) -> None:
    async def reached():
        try:
            return await step(proxy) == value
        except OSError:  # a proxy started without waiting for /readyz: its admin endpoint is not up yet
            return False

    await wait_until(reached, 15, f"overload step {value}")


class HoldingCsms(Csms16):
    """A 1.6 CSMS that answers the Authorize of a charger named HELD… only once ``gate`` is set."""

    def __init__(self, identity, connection, gate: asyncio.Event):
        super().__init__(identity, connection)
        self.gate = gate

    @on(Action16.authorize)
    async def on_authorize(self, **_):
        if self.id.startswith("HELD"):
            await self.gate.wait()
        return result16.Authorize(id_tag_info={"status": "Accepted"})


async def holding_pair(h, **monitors):
    gate = asyncio.Event()
    proxy, csms = await h.pair(V16, overrides=overload(**monitors),
                               cp_factory=lambda identity, connection: HoldingCsms(identity, connection, gate))
    return proxy, csms, gate


async def hold_calls(h, proxy, count: int) -> list[asyncio.Task]:
    """``count`` chargers, each with an Authorize the CSMS holds: ``count`` CALLs awaiting its answer."""
    chargers = [await h.charger(proxy, f"HELD{n}", V16) for n in range(count)]
    return [asyncio.create_task(c.cp.call(call16.Authorize(id_tag="HOLD"), suppress=False)) for c in chargers]


async def try_connect(proxy, identity: str):
    """A WebSocket upgrade: the open connection, or the refusal's (status, Retry-After)."""
    try:
        return await connect_raw(proxy.url(identity), [V16])
    except InvalidStatus as refused:
        return refused.response.status_code, refused.response.headers.get("Retry-After")


def accept_queue(port: int) -> int:
    """Connections the kernel completed on the listening socket at ``port`` that the proxy has not accepted yet (the
    receive queue of a LISTEN socket in /proc/net/tcp is its accept queue)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return int(queues.split(":")[1], 16)
    raise AssertionError(f"no listening socket on port {port}")


async def pending_calls(proxy, value: int) -> bool:
    return metric_value(await metrics(proxy), "ocpp_proxy_overload_pending_calls") == value


def log_lines(proxy, text: str) -> list[str]:
    return [line for line in proxy.stderr().splitlines() if text in line]


# ---------------------------------------------------------------------------
# step 1: Heartbeats answered by the proxy
# ---------------------------------------------------------------------------


async def test_above_memory_shed_at_heartbeats_are_answered_by_the_proxy_and_never_reach_the_csms(h):
    proxy, csms = await h.pair(V16, overrides=overload(memory={"shedAt": "1MiB"}))
    await wait_step(proxy, 1)
    charger = await h.charger(proxy, "SHED1", V16)
    session = await csms.next_session()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    answers = [await charger.cp.call(call16.Heartbeat(), suppress=False) for _ in range(3)]
    for answer in answers:
        current = datetime.fromisoformat(answer.current_time.replace("Z", "+00:00"))
        assert current >= before, "the proxy answers with the current time"
    # A CALL after the Heartbeats is forwarded: the CSMS has seen everything forwarded before it.
    await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                          suppress=False)
    actions = [f[2] for f in session.recorder.received_frames() if f[0] == 2]
    assert actions == ["StatusNotification"], actions
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_messages_limited_total", action="Heartbeat", decision="shed") == 3
    assert metric_value(samples, "ocpp_proxy_overload_transitions_total", step="shed") == 1
    assert metric_value(samples, "ocpp_proxy_overload_memory_bytes") > 1 << 20
    assert metric_value(samples, "ocpp_proxy_overload_monitor_step", monitor="memory") == 1
    (line,) = log_lines(proxy, "overload: step 1 (shed)")
    assert "memory" in line and ">= shedAt 1MiB" in line


# ---------------------------------------------------------------------------
# step 2: new handshakes refused with 503 + Retry-After, recorded in the audit log
# ---------------------------------------------------------------------------


async def test_above_memory_refuse_at_a_new_charger_gets_503_with_retry_after_recorded_in_the_audit_log(h):
    log = AuditDir(h.tmp_path / "log")
    overrides = overload(memory={"refuseAt": "1MiB"})
    overrides["audit"] = log.section()
    # Over its threshold from the start, the proxy is never ready (/readyz 503): its start is not waited for.
    proxy, _ = await h.pair(V16, overrides=overrides, wait_ready=False)
    await wait_step(proxy, 2)
    readyz = await proxy.admin("/readyz")
    assert (readyz.status, readyz.text) == (503, "overloaded (step 2, refuse)\n")
    status, retry_after = await try_connect(proxy, "REFUSED1")
    assert status == 503 and int(retry_after) >= 1, (status, retry_after)
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_admissions_rejected_total", reason="overload") == 1
    assert await proxy.stop() == 0, proxy.describe()
    records = log.records()
    (refused,) = events(records, "refused")
    assert (refused["status"], refused["rule"], refused["charger"]) == (503, "overload", "REFUSED1")
    (change,) = events(records, "overload")
    assert (change["step"], change["previous"], change["causes"]) == ("refuse", "normal", ["memory"])
    assert change["readings"]["memoryBytes"] > 1 << 20
    assert change["seq"] < refused["seq"]


async def test_pending_calls_refuse_new_chargers_while_connected_ones_keep_working_then_the_steps_reverse(h):
    proxy, csms, gate = await holding_pair(h, pendingCalls={"shedAt": 1, "refuseAt": 2})
    neighbour = await h.charger(proxy, "CALM", V16)
    held = await hold_calls(h, proxy, 2)
    await wait_step(proxy, 2)
    status, retry_after = await try_connect(proxy, "LATE")
    assert status == 503 and int(retry_after) >= 1, (status, retry_after)
    # Not ready while it refuses: a load balancer sends new chargers to another node.
    readyz = await proxy.admin("/readyz")
    assert (readyz.status, readyz.text) == (503, "overloaded (step 2, refuse)\n")
    # The connected charger keeps working: its Heartbeat is answered by the proxy, its other CALLs reach the CSMS.
    assert (await neighbour.cp.call(call16.Heartbeat(), suppress=False)).current_time
    authorized = await neighbour.cp.call(call16.Authorize(id_tag="CALM"), suppress=False)
    assert authorized.id_tag_info["status"] == "Accepted"
    # (the neighbour's Authorize counted while it waited for its answer)
    await wait_until(lambda: pending_calls(proxy, 2), 10, "2 pending CALLs on /metrics")
    # The CSMS answers: no CALL is pending, the proxy goes back to normal, and LATE gets in.
    gate.set()
    assert all(r.id_tag_info["status"] == "Accepted" for r in await asyncio.gather(*held))
    await wait_step(proxy, 0)
    assert (await proxy.admin("/readyz")).status == 200
    late = await h.charger(proxy, "LATE", V16)
    boot = await late.cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
                              suppress=False)
    assert boot.status == "Accepted"
    heartbeat_session = [s for s in csms.sessions if s.identity == "LATE"][0]
    await late.cp.call(call16.Heartbeat(), suppress=False)
    assert [f[2] for f in heartbeat_session.recorder.received_frames() if f[0] == 2] == [
        "BootNotification", "Heartbeat"], "back to normal: Heartbeats reach the CSMS again"
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_overload_transitions_total", step="refuse") == 1
    assert metric_value(samples, "ocpp_proxy_overload_transitions_total", step="normal") == 1
    assert len(log_lines(proxy, "overload: step 2 (refuse)")) == 1
    (back,) = log_lines(proxy, "overload: step 0 (normal)")
    assert "stayed below" in back


# ---------------------------------------------------------------------------
# step 3: the listeners stop accepting, and accept again when the pressure falls
# ---------------------------------------------------------------------------


async def test_at_the_stop_step_a_new_connection_waits_unaccepted_and_is_served_when_the_pressure_falls(h):
    proxy, csms, gate = await holding_pair(h, pendingCalls={"stopAt": 2})
    held = await hold_calls(h, proxy, 2)
    await wait_step(proxy, 3)
    upgrade = asyncio.create_task(raw_ws_connect(proxy.port, "/ocpp/QUEUED", [V16], timeout=30))
    # The kernel completed the TCP handshake and holds the connection; the proxy does not take it.
    await wait_until(lambda: accept_queue(proxy.port) == 1, 10, "the connection in the accept queue")
    assert not upgrade.done()
    # The admin endpoint is not a charger listener: it still answers (the step above came from it).
    gate.set()
    await asyncio.gather(*held)
    status, _, ws = await upgrade
    assert status == 101
    h.track(ws)
    assert accept_queue(proxy.port) == 0
    assert await step(proxy) == 0
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_overload_transitions_total", step="stop") == 1
    assert len(log_lines(proxy, "overload: step 3 (stop)")) == 1


# ---------------------------------------------------------------------------
# the monitors' readings, and the configuration
# ---------------------------------------------------------------------------


async def test_every_monitor_reports_its_reading_and_step_on_metrics(h):
    # The defaults, but a lag threshold a busy test machine cannot reach: the readings are what is checked here.
    proxy, _ = await h.pair(V16, overrides={"overload": {**FAST, "eventLoopLag": {"shedAt": "30s"}}})
    await wait_until(lambda: _has_all_readings(proxy), 15, "the readings of the three monitors")
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_overload_step") == 0
    assert metric_value(samples, "ocpp_proxy_overload_event_loop_lag_seconds") >= 0
    assert metric_value(samples, "ocpp_proxy_overload_pending_calls") == 0
    for monitor in ("memory", "eventLoopLag", "pendingCalls"):
        assert metric_value(samples, "ocpp_proxy_overload_monitor_step", monitor=monitor) == 0


async def _has_all_readings(proxy) -> bool:
    names = {s.name for s in await metrics(proxy)}
    return {"ocpp_proxy_overload_memory_bytes", "ocpp_proxy_overload_event_loop_lag_seconds",
            "ocpp_proxy_overload_pending_calls"} <= names


def test_thresholds_out_of_order_name_their_key(h, tmp_path):
    result, errors = check_config(h, tmp_path, {"overload": {"memory": {"shedAt": "2GiB", "refuseAt": "1GiB"}}})
    assert len(errors) == 1 and errors[0].startswith(
        "error: overload.memory.refuseAt: expected more than shedAt (2GiB), got 1GiB"), result.stderr
