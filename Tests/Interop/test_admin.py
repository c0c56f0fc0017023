"""The admin HTTP listener: health, readiness, Prometheus metrics, the charger list."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from http import HTTPStatus

import pytest
from websockets.exceptions import InvalidStatus

from harness import (
    LOCALHOST,
    connect_raw,
    find_samples,
    free_port,
    metric_value,
    raw_ws_connect,
    recv_json,
    wait_until,
)

V16, V201 = "ocpp1.6", "ocpp2.0.1"


async def test_healthz_and_readyz_answer_200(h):
    proxy, _ = await h.pair(V16, raw=True)
    assert (await proxy.admin("/healthz")).status == 200
    assert (await proxy.admin("/readyz")).status == 200


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/chargers/extra", "/metricsx"])
async def test_unknown_admin_path_is_404(h, path):
    proxy, _ = await h.pair(V16, raw=True)
    assert (await proxy.admin(path)).status == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/chargers", "/api/routes"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_non_get_admin_request_is_405(h, path, method):
    proxy, _ = await h.pair(V16, raw=True)
    assert (await proxy.admin(path, method=method)).status == 405


async def test_metrics_is_prometheus_text(h):
    proxy, _ = await h.pair(V16, raw=True)
    resp = await proxy.admin("/metrics")
    assert resp.status == 200
    assert resp.headers.get("content-type", "").startswith("text/plain")
    await proxy.metrics()  # every line parses


async def test_connected_chargers_gauge_follows_connections(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPGAUGE", [V16])
    session = await csms.next_session()

    async def gauge(expected):
        return metric_value(await proxy.metrics(), "ocpp_proxy_chargers_connected", version=V16) == expected

    await wait_until(lambda: gauge(1), 5, "ocpp_proxy_chargers_connected{version=ocpp1.6} == 1")
    await ws.close()
    await session.wait_closed()
    await wait_until(lambda: gauge(0), 5, "ocpp_proxy_chargers_connected{version=ocpp1.6} == 0")


async def test_frames_total_counts_calls_by_action_and_direction(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPFRAMES", [V16])
    session = await csms.next_session()
    boot = [2, "boot", "BootNotification", {"chargePointModel": "m", "chargePointVendor": "v"}]
    for i in range(2):
        boot[1] = f"boot-{i}"
        await ws.send(json.dumps(boot))
        await session.recv_json()
        await session.send_json([3, f"boot-{i}", {"currentTime": "2026-01-01T00:00:00Z", "interval": 300,
                                                  "status": "Accepted"}])
        await recv_json(ws)
    await session.send_json([2, "reset", "Reset", {"type": "Soft"}])
    await recv_json(ws)
    samples = await proxy.metrics()
    up = metric_value(samples, "ocpp_proxy_frames_total", action="BootNotification", direction="charger_to_csms",
                      type="call")
    assert up == 2, f"BootNotification calls counted: {up}"
    down = metric_value(samples, "ocpp_proxy_frames_total", action="Reset", direction="csms_to_charger", type="call")
    assert down == 1


async def test_callerrors_total_counts_proxy_generated_errors(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPERRS", [V16])
    await csms.next_session()
    await ws.send("not json")
    frame = await recv_json(ws)
    assert frame[2] == "FormationViolation"
    samples = await proxy.metrics()
    assert metric_value(samples, "ocpp_proxy_callerrors_total", code="FormationViolation", sender="proxy") >= 1


async def test_callerrors_total_counts_errors_sent_by_peers(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPERRS2", [V16])
    session = await csms.next_session()
    await session.send_json([2, "x1", "ClearCache", {}])
    await recv_json(ws)
    await ws.send(json.dumps([4, "x1", "NotImplemented", "no ClearCache here", {}]))
    assert (await session.recv_json())[2] == "NotImplemented"
    await ws.send(json.dumps([2, "y1", "Heartbeat", {}]))
    await session.recv_json()
    await session.send_json([4, "y1", "InternalError", "csms broke", {}])
    assert (await recv_json(ws))[2] == "InternalError"
    samples = await proxy.metrics()
    assert metric_value(samples, "ocpp_proxy_callerrors_total", code="NotImplemented", sender="charger") == 1
    assert metric_value(samples, "ocpp_proxy_callerrors_total", code="InternalError", sender="csms") == 1


@pytest.mark.parametrize("side", ["charger", "csms"])
async def test_malformed_frames_total_counts_by_origin(h, side):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPMAL", [V16])
    session = await csms.next_session()
    if side == "charger":
        await ws.send("{{{")
        await recv_json(ws)
    else:
        await session.connection.send("{{{")
        await session.recv_json()
    samples = await proxy.metrics()
    counted = find_samples(samples, "ocpp_proxy_malformed_frames_total", **{"from": side})
    assert counted and sum(s.value for s in counted) == 1, counted
    assert all("reason" in s.labels for s in counted)


async def test_upstream_connect_seconds_histogram_observes_each_link(h):
    proxy, csms = await h.pair(V16, raw=True)
    for identity in ("CPH1", "CPH2"):
        await h.raw_charger(proxy, identity, [V16])
        await csms.next_session()
    samples = await proxy.metrics()
    count = metric_value(samples, "ocpp_proxy_upstream_connect_seconds_count")
    assert count == 2
    total = metric_value(samples, "ocpp_proxy_upstream_connect_seconds_sum")
    assert 0 < total < 10
    buckets = sorted(
        ((float(s.labels["le"]), s.value) for s in find_samples(samples, "ocpp_proxy_upstream_connect_seconds_bucket")),
    )
    assert buckets, "no _bucket samples"
    assert buckets[-1][0] == float("inf") and buckets[-1][1] == count
    values = [v for _, v in buckets]
    assert values == sorted(values), "histogram buckets must be cumulative"


@pytest.mark.parametrize("reason", ["refused", "rejected", "unreachable", "timeout"])
async def test_upstream_connect_failures_are_counted_by_reason(h, reason):
    if reason == "refused":
        url = f"ws://{LOCALHOST}:{free_port()}/ocpp"
    elif reason == "rejected":
        csms = await h.raw_csms(V16, process_request=lambda c, r: c.respond(HTTPStatus.FORBIDDEN, "no\n"))
        url = csms.url
    elif reason == "unreachable":
        url = "ws://nonexistent.invalid:9000/ocpp"
    else:
        silent = await h.silent_server()
        url = f"ws://{LOCALHOST}:{silent.port}/ocpp"
    proxy = await h.proxy(url, V16, {"upstream": {"connectTimeout": "1s"}})
    with pytest.raises(InvalidStatus):
        await connect_raw(proxy.url("CPFAIL"), [V16], open_timeout=10)
    samples = await proxy.metrics()
    assert metric_value(samples, "ocpp_proxy_upstream_connect_failures_total", reason=reason) == 1
    others = {"refused", "rejected", "unreachable", "timeout"} - {reason}
    for other in others:
        assert metric_value(samples, "ocpp_proxy_upstream_connect_failures_total", reason=other) == 0


async def test_rejected_admissions_are_counted_per_listener(h):
    proxy, _ = await h.pair(V16, raw=True)
    for path in ("/other/CP1", "/ocpp/bad:id"):
        status, _, _ = await raw_ws_connect(proxy.port, path, [V16])
        assert status in (400, 404)
    samples = await proxy.metrics()
    rejected = find_samples(samples, "ocpp_proxy_admissions_rejected_total", listener="chargers")
    assert sum(s.value for s in rejected) == 2, rejected
    assert all(s.labels.get("reason") for s in rejected)
    assert len({s.labels["reason"] for s in rejected if s.value > 0}) == 2, "404 and 400 should have different reasons"


@pytest.mark.parametrize("version", [V16, V201])
async def test_charger_list_describes_each_connected_charger(h, version):
    proxy, csms = await h.pair(version, raw=True)
    before = datetime.now(timezone.utc)
    await h.raw_charger(proxy, "CPAPI", [version])
    session = await csms.next_session()
    chargers = await proxy.chargers()
    assert len(chargers) == 1
    c = chargers[0]
    assert c["identity"] == "CPAPI"
    assert c["version"] == version  # the negotiated version
    assert c["upstreamVersion"] == version
    assert c["upstream"] == "default"  # `upstream:` alone is the upstream named default
    assert c["listener"] == "chargers"
    assert "127.0.0.1" in c["remoteAddress"]
    assert c["upstreamState"] == "connected"
    since = datetime.fromisoformat(c["connectedSince"].replace("Z", "+00:00"))
    assert since.tzinfo is not None, "connectedSince should carry a UTC offset or Z"
    assert abs((since - before).total_seconds()) < 30
    assert c["pendingCalls"] == {"fromCharger": 0, "fromCSMS": 0}
    assert session.identity == "CPAPI"


async def test_charger_list_counts_pending_calls_each_way(h):
    proxy, csms = await h.pair(V16, raw=True)
    ws = await h.raw_charger(proxy, "CPPEND", [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "p-c", "Heartbeat", {}]))
    await session.recv_json()
    await session.send_json([2, "p-s", "ClearCache", {}])
    await recv_json(ws)
    (c,) = await proxy.chargers()
    assert c["pendingCalls"] == {"fromCharger": 1, "fromCSMS": 1}
    await session.send_json([3, "p-c", {"currentTime": "2026-01-01T00:00:00Z"}])
    await recv_json(ws)
    (c,) = await proxy.chargers()
    assert c["pendingCalls"] == {"fromCharger": 0, "fromCSMS": 1}


async def test_charger_list_is_json(h):
    proxy, _ = await h.pair(V16, raw=True)
    resp = await proxy.admin("/api/chargers")
    assert resp.status == 200
    assert "json" in resp.headers.get("content-type", "")
    assert resp.json() == {"chargers": []}
