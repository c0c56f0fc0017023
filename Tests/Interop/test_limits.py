"""Limits on who gets in (issue 15).

``limits.handshakeTimeout``: a connection that has not finished TLS and its WebSocket upgrade (or sent a complete
SOAP request) in time is closed, so half-open handshakes cannot use up the proxy's file descriptors while real
chargers still get in.  The handshake budgets (token buckets for the whole proxy, per address, per identity) and
``maxConnections`` refuse with 503 or 429 and ``Retry-After``, and a charger that honours it gets in.
"""

from __future__ import annotations

import asyncio
import json
import time

from ocpp.v16 import call as call16

from websockets.exceptions import InvalidStatus

from harness import LOCALHOST, V16, connect_raw, metric_value, parse_prometheus, recv_json, run_cli
from soap_peers import soap_listener

PARTIAL_HANDSHAKES = 1000
TIMEOUT = 1.0


def check_config(h, tmp_path, overrides: dict):
    """``check-config`` of the suite's configuration with ``overrides``: it must exit 2; its output and its
    ``error:`` lines."""
    from harness import proxy_config
    import yaml

    config = proxy_config("ws://127.0.0.1:9/ocpp", V16, overrides=overrides)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(h.binary, "check-config", "--config", str(path))
    assert result.returncode == 2, result.stderr
    return result, [line for line in result.stderr.splitlines() if line.startswith("error:")]


async def open_partial(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    if request:
        writer.write(request)
        await writer.drain()
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the proxy closes the connection (EOF, or a reset) within ``within`` seconds, sending nothing."""
    try:
        data = await asyncio.wait_for(reader.read(1024), within)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False
    return data == b""


async def handshake_timeouts(proxy) -> float:
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    return metric_value(samples, "ocpp_proxy_handshake_timeouts_total", listener="chargers")


async def test_partial_handshakes_are_closed_at_the_timeout_while_a_charger_gets_in(h):
    proxy, csms = await h.pair(V16, overrides={"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                               "upstream": {"connectTimeout": "500ms"}})
    started = time.monotonic()
    # A request line and one header, never the blank line that ends the head.
    partial = [await open_partial(proxy.port, b"GET /ocpp/HALF HTTP/1.1\r\nHost: x\r\n")
               for _ in range(PARTIAL_HANDSHAKES)]
    # While they are held, a real charger connects and is served.
    charger = await h.charger(proxy, "REAL1", V16)
    boot = await charger.cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
                                 suppress=False)
    assert boot.status == "Accepted"
    closed = await asyncio.gather(*(closed_by_peer(reader, TIMEOUT + 10) for reader, _ in partial))
    elapsed = time.monotonic() - started
    assert all(closed), f"{closed.count(False)} partial handshakes still open after {elapsed:.1f}s"
    assert elapsed >= TIMEOUT, "closed before the timeout"
    assert await handshake_timeouts(proxy) == PARTIAL_HANDSHAKES
    # The charger that finished its upgrade is not touched by the timeout.
    heartbeat = await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert heartbeat.current_time
    for _, writer in partial:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_timeout(h):
    proxy, _ = await h.pair(V16, overrides={"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                            "upstream": {"connectTimeout": "500ms"}})
    reader, writer = await open_partial(proxy.port, b"")
    assert await closed_by_peer(reader, TIMEOUT + 10)
    assert await handshake_timeouts(proxy) == 1
    writer.close()


async def test_a_soap_request_whose_body_never_ends_is_closed_at_the_timeout(h):
    csms = await h.csms(V16)
    soap = soap_listener(versions=(V16,))
    proxy = await h.proxy(csms.url, V16, {"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                          "upstream": {"connectTimeout": "500ms"}}, listeners=[soap])
    head = (f"POST {soap['path']} HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
            "Content-Length: 1000\r\n\r\n<soap:Envelope").encode()
    reader, writer = await open_partial(soap["port"], head)
    assert await closed_by_peer(reader, TIMEOUT + 10)
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_handshake_timeouts_total", listener=soap["name"]) == 1
    writer.close()


def test_a_handshake_timeout_not_longer_than_the_upstream_connect_timeout_is_refused(h, tmp_path):
    result, errors = check_config(h, tmp_path, {
        "limits": {"handshakeTimeout": "5s"}, "upstream": {"connectTimeout": "5s"}})
    assert len(errors) == 1 and errors[0].startswith(
        "error: limits.handshakeTimeout: expected more than upstream.connectTimeout (5s), got 5s"), result.stderr


# ---------------------------------------------------------------------------
# handshake budgets and maxConnections: refused with 429/503 and Retry-After, in on retry
# ---------------------------------------------------------------------------


async def try_connect(proxy, identity: str, local: str = LOCALHOST):
    """A WebSocket upgrade from ``local``: the open connection, or the refusal's (status, Retry-After)."""
    try:
        return await connect_raw(proxy.url(identity), [V16], local_addr=(local, 0))
    except InvalidStatus as refused:
        return refused.response.status_code, refused.response.headers.get("Retry-After")


async def connect_with_retries(h, proxy, identity: str, local: str = LOCALHOST, attempts: int = 30):
    """Connects, sleeping Retry-After between refusals (as a well-behaved charger does); the connection and the
    refusals it met."""
    refusals = []
    for _ in range(attempts):
        outcome = await try_connect(proxy, identity, local)
        if not isinstance(outcome, tuple):
            h.track(outcome)
            return outcome, refusals
        refusals.append(outcome)
        status, retry_after = outcome
        assert status in (429, 503) and retry_after is not None and int(retry_after) >= 1, outcome
        await asyncio.sleep(min(int(retry_after), 2))
    raise AssertionError(f"{identity} never got in: {refusals}")


async def test_a_charger_reconnecting_in_a_loop_is_refused_429_then_gets_in_after_retry_after(h):
    proxy, _ = await h.pair(V16, overrides={"limits": {"handshakesPerIdentity": {"rate": "1/s", "burst": 2}}})
    for _ in range(2):
        ws = await try_connect(proxy, "LOOPER")
        assert not isinstance(ws, tuple), ws
        await ws.close()
    assert await try_connect(proxy, "LOOPER") == (429, "1")
    # Another identity from the same address is not held back by LOOPER's budget.
    other = await try_connect(proxy, "NEIGHBOUR")
    assert not isinstance(other, tuple), other
    await other.close()
    await asyncio.sleep(1.1)
    ws = await try_connect(proxy, "LOOPER")
    assert not isinstance(ws, tuple), ws
    await ws.close()
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_admissions_rejected_total", reason="handshakes_per_identity") == 1


async def test_one_address_over_its_budget_is_refused_while_another_gets_in(h):
    proxy, _ = await h.pair(V16, overrides={"limits": {"handshakesPerAddress": {"rate": "1/min", "burst": 3}}})
    for n in range(3):
        ws = await try_connect(proxy, f"NAT{n}", "127.0.0.2")
        assert not isinstance(ws, tuple), ws
        h.track(ws)
    status, retry_after = await try_connect(proxy, "NAT3", "127.0.0.2")
    assert status == 429 and 1 <= int(retry_after) <= 60
    ws = await try_connect(proxy, "ELSEWHERE", "127.0.0.3")
    assert not isinstance(ws, tuple), ws
    h.track(ws)


async def test_a_storm_over_the_proxys_budget_gets_503_and_every_charger_in_on_retry(h):
    proxy, csms = await h.pair(V16, overrides={"limits": {"handshakes": {"rate": "20/s", "burst": 10}}})
    identities = [f"STORM{n:03d}" for n in range(60)]
    locals_ = [f"127.0.0.{2 + n % 4}" for n in range(60)]
    results = await asyncio.gather(*(connect_with_retries(h, proxy, i, local) for i, local in zip(identities, locals_)))
    refusals = [r for _, rs in results for r in rs]
    assert refusals and all(status == 503 for status, _ in refusals), refusals
    chargers = (await proxy.admin("/api/chargers")).json()["chargers"]
    assert sorted(c["identity"] for c in chargers) == identities
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_admissions_rejected_total", reason="handshakes") == len(refusals)


async def test_max_connections_refuses_503_until_a_charger_leaves(h):
    proxy, _ = await h.pair(V16, overrides={"limits": {"maxConnections": 2}})
    first = await try_connect(proxy, "FULL1")
    second = await try_connect(proxy, "FULL2")
    assert not isinstance(first, tuple) and not isinstance(second, tuple)
    h.track(second)
    assert await try_connect(proxy, "FULL3") == (503, "10")
    await first.close()
    # The proxy notices the close, then has room again: FULL3 gets in on a retry.
    await connect_with_retries(h, proxy, "FULL3")
    chargers = (await proxy.admin("/api/chargers")).json()["chargers"]
    assert sorted(c["identity"] for c in chargers) == ["FULL2", "FULL3"]


async def test_a_listener_holds_at_most_its_own_max_connections(h):
    csms = await h.csms(V16)
    proxy = await h.proxy(csms.url, V16, listener_options={"maxConnections": 1})
    first = await try_connect(proxy, "ONLY1")
    assert not isinstance(first, tuple)
    h.track(first)
    assert await try_connect(proxy, "ONLY2") == (503, "10")


def test_a_bad_rate_names_its_key(h, tmp_path):
    result, errors = check_config(h, tmp_path, {
        "limits": {"handshakesPerAddress": {"rate": "20 per second", "burst": 40}}})
    assert len(errors) == 1 and errors[0].startswith(
        'error: limits.handshakesPerAddress.rate: expected a rate such as 200/s, 20/min or 100/h, got "20 per second"'
    ), result.stderr


# ---------------------------------------------------------------------------
# upstream connect pacing: a storm reaches the CSMS at the configured rate
# ---------------------------------------------------------------------------


async def test_a_storm_reaches_the_csms_at_the_configured_rate_and_every_charger_gets_in(h):
    opened: list[float] = []

    def record(connection, request):
        opened.append(time.monotonic())
        return None

    csms = await h.csms(V16, process_request=record)
    rate, burst = 10, 5
    proxy = await h.proxy(csms.url, V16, {"limits": {"upstreamConnects": {"rate": f"{rate}/s", "burst": burst,
                                                                           "jitter": "0s"}}})
    identities = [f"PACED{n:02d}" for n in range(30)]
    results = await asyncio.gather(*(connect_with_retries(h, proxy, i) for i in identities))
    refusals = [r for _, rs in results for r in rs]
    assert all(status == 503 for status, _ in refusals), refusals
    assert len(opened) == len(identities)
    opened.sort()
    for start in opened:
        in_one_second = sum(1 for t in opened if start <= t < start + 1.0)
        # the burst, one second's rate, and one for a slot at the window's edge
        assert in_one_second <= burst + rate + 1, f"{in_one_second} CSMS links opened within one second"
    assert opened[-1] - opened[0] >= (len(identities) - burst) / rate - 0.5, "the storm was not spread out"
    chargers = (await proxy.admin("/api/chargers")).json()["chargers"]
    assert sorted(c["identity"] for c in chargers) == identities


# ---------------------------------------------------------------------------
# message limits per charger: floods slow the flooder only, transaction messages are never lost
# ---------------------------------------------------------------------------


def message_limits(**rules) -> dict:
    return {"limits": {"messages": rules}}


async def limited_pair(h, **rules):
    proxy, csms = await h.pair(V16, overrides=message_limits(**rules))
    return proxy, csms


async def test_a_heartbeat_flood_is_answered_by_the_proxy_and_not_forwarded(h):
    proxy, csms = await limited_pair(h, Heartbeat={"minInterval": "60s", "over": "answerLocally"})
    charger = await h.charger(proxy, "HBFLOOD", V16)
    session = await csms.next_session()
    answers = [await charger.cp.call(call16.Heartbeat(), suppress=False) for _ in range(20)]
    assert all(a.current_time for a in answers), "every Heartbeat is answered with the time"
    # A CALL after the flood is forwarded, so the CSMS has seen everything forwarded before it.
    await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                          suppress=False)
    actions = [f[2] for f in session.recorder.received_frames() if f[0] == 2]
    assert actions == ["Heartbeat", "StatusNotification"], actions
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_messages_limited_total", action="Heartbeat", decision="answered") == 19


async def test_a_repeated_status_is_answered_locally_and_a_change_is_forwarded(h):
    proxy, csms = await limited_pair(h, StatusNotification={"minInterval": "60s", "over": "answerLocally"})
    charger = await h.charger(proxy, "STFLOOD", V16)
    session = await csms.next_session()
    for status in ["Available", "Available", "Available", "Preparing", "Preparing", "Available"]:
        await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status=status),
                              suppress=False)
    await charger.cp.call(call16.StatusNotification(connector_id=2, error_code="NoError", status="Available"),
                          suppress=False)
    seen = [(f[3]["connectorId"], f[3]["status"]) for f in session.recorder.received_frames()
            if f[0] == 2 and f[2] == "StatusNotification"]
    assert seen == [(1, "Available"), (1, "Preparing"), (1, "Available"), (2, "Available")]


async def test_a_meter_values_flood_is_delayed_and_every_message_arrives_in_order(h):
    proxy, csms = await limited_pair(h, default={"rate": "10/s", "burst": 5, "over": "delay", "maxDelay": "5s"})
    charger = await h.charger(proxy, "MVFLOOD", V16)
    session = await csms.next_session()
    started = time.monotonic()
    for n in range(25):
        await charger.cp.call(call16.MeterValues(connector_id=1, transaction_id=7, meter_value=[{
            "timestamp": "2026-12-07T00:00:00Z", "sampledValue": [{"value": str(1000 + n)}]}]), suppress=False)
    elapsed = time.monotonic() - started
    # 5 at once, then 10 a second: 20 more take about 2 s
    assert elapsed >= 1.5, f"25 MeterValues went through in {elapsed:.2f}s: not delayed"
    values = [f[3]["meterValue"][0]["sampledValue"][0]["value"] for f in session.recorder.received_frames()
              if f[0] == 2 and f[2] == "MeterValues"]
    assert values == [str(1000 + n) for n in range(25)], "every MeterValues, once, in order"


async def test_a_data_transfer_flood_is_rejected_with_generic_error(h):
    proxy, csms = await limited_pair(h, DataTransfer={"rate": "1/min", "burst": 2, "over": "reject"})
    ws = await h.raw_charger(proxy, "DTFLOOD", [V16])
    answers = []
    for n in range(3):
        await ws.send(json.dumps([2, f"dt-{n}", "DataTransfer", {"vendorId": "V"}]))
        answers.append(await recv_json(ws))
    # The first two reach the CSMS (whose ocpp peer has no DataTransfer handler: NotImplemented), the third not.
    assert [(a[1], a[2]) for a in answers] == [("dt-0", "NotImplemented"), ("dt-1", "NotImplemented"),
                                               ("dt-2", "GenericError")], answers
    assert "message limit" in answers[2][3]
    session = await csms.next_session()
    assert [f[1] for f in session.recorder.received_frames() if f[0] == 2] == ["dt-0", "dt-1"]


async def test_transaction_messages_over_a_reject_rule_are_delayed_never_rejected(h):
    proxy, csms = await limited_pair(h, StopTransaction={"rate": "1/s", "burst": 1, "over": "reject",
                                                         "maxDelay": "3s"})
    charger = await h.charger(proxy, "TXSAFE", V16)
    for n in range(3):
        result = await charger.cp.call(call16.StopTransaction(meter_stop=100 + n, timestamp="2026-12-07T00:00:00Z",
                                                               transaction_id=n + 1), suppress=False)
        assert result is not None


async def test_a_flooding_charger_does_not_slow_its_neighbour(h):
    proxy, csms = await limited_pair(h, default={"rate": "5/s", "burst": 5, "over": "delay", "maxDelay": "30s"})
    flooder = await h.charger(proxy, "FLOODER", V16)
    neighbour = await h.charger(proxy, "NEIGHBOUR", V16)

    async def flood():
        for _ in range(40):
            await flooder.cp.call(call16.Authorize(id_tag="FLOOD"), suppress=False)

    task = asyncio.create_task(flood())
    await asyncio.sleep(1.0)  # the flooder is well over its rate now
    round_trips = []
    for _ in range(5):
        t = time.monotonic()
        await neighbour.cp.call(call16.Authorize(id_tag="CALM"), suppress=False)
        round_trips.append(time.monotonic() - t)
    assert not task.done(), "the flooder should still be held back"
    assert max(round_trips) < 0.5, f"the neighbour's round trips: {round_trips}"
    task.cancel()


def test_answer_locally_for_an_action_the_proxy_cannot_answer_names_its_key(h, tmp_path):
    result, errors = check_config(h, tmp_path, message_limits(
        Authorize={"minInterval": "10s", "over": "answerLocally"}))
    assert len(errors) == 1 and errors[0].startswith(
        "error: limits.messages.Authorize.over: answerLocally is for Heartbeat and StatusNotification"), result.stderr
