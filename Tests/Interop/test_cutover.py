"""Cutover without disconnecting (issue 16, point 4): a connected charger moved to another CSMS.

``PUT /api/chargers/{identity}/route`` (bearer token ``admin.token``) or a route reloaded on SIGHUP: the proxy opens
the new link, replays the charger's last BootNotification and latest StatusNotification per connector to it, then
sends new CALLs there; a transaction that started on the old CSMS stays there until it ends, then the old link
closes.  The charger's connection is never closed.  The route is kept in ``state.sqlite`` and survives restarts.
Two CSMSs of the ``ocpp`` package, schema validation on: ``old`` speaks 1.6, ``new`` 2.0.1.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import yaml
from ocpp.v16 import call as call16

from audit_support import AuditDir, events
from harness import V16, V201, http_request, wait_until
from ocpp_peers import TRANSACTION_ID_16, now_iso

TOKEN = "cutover-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def two_csms_proxy(h, *, token=TOKEN, translate=True, audit: AuditDir | None = None, rules=None,
                         chargers=None):
    old = await h.csms(V16)
    new = await h.csms(V201)
    admin = {"token": token} if token else {}
    config = h.config(old.url, V16, translate=translate, chargers=chargers or [], overrides={
        "upstream": None,
        "upstreams": [{"name": "old", "url": old.url, "version": V16, "connectTimeout": "2s"},
                      {"name": "new", "url": new.url, "version": V201, "connectTimeout": "2s"}],
        "routing": {"default": "old", "rules": rules or []},
        **(audit.overrides() if audit else {}),
    })
    config.setdefault("admin", {}).update(admin)
    proxy = await h.proxy(config=config)
    return proxy, old, new


async def put_route(proxy, identity: str, body, headers=AUTH):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http_request(proxy.admin_port, f"/api/chargers/{identity}/route", method="PUT", body=data,
                              headers={"Content-Type": "application/json", **(headers or {})})


async def session_of(csms, identity: str, index: int = 0):
    await wait_until(lambda: len([s for s in csms.sessions if s.identity == identity]) > index, 10,
                     f"{identity} at the CSMS")
    return [s for s in csms.sessions if s.identity == identity][index]


def calls(session) -> list[list]:
    return [f for f in session.recorder.received_frames() if f[0] == 2]


def actions(session) -> list[str]:
    return [f[2] for f in calls(session)]


async def charger_entry(proxy, identity: str) -> dict:
    response = await http_request(proxy.admin_port, "/api/chargers", headers=AUTH)
    assert response.status == 200, response.text
    return next(c for c in response.json()["chargers"] if c["identity"] == identity)


async def boot_and_status(charger):
    await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"),
                          suppress=False)
    await charger.cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"),
                          suppress=False)


def meter_value(wh: int) -> list[dict]:
    return [{"timestamp": now_iso(), "sampledValue": [
        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]


# -- a live cutover ----------------------------------------------------------------------------------------------


async def test_a_live_cutover_mid_transaction_keeps_the_charger_connected(h):
    log = AuditDir(h.tmp_path / "log")
    proxy, old, new = await two_csms_proxy(h, audit=log)
    charger = await h.charger(proxy, "CP-MOVE", V16)
    await boot_and_status(charger)
    started = await charger.cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-0001", meter_start=0,
                                                            timestamp=now_iso()), suppress=False)
    assert started.transaction_id == TRANSACTION_ID_16
    at_old = await session_of(old, "CP-MOVE")

    response = await put_route(proxy, "CP-MOVE", {"upstream": "new"})
    assert response.status == 200, response.text
    assert response.json() == {"identity": "CP-MOVE", "upstream": "new", "reason": "api", "connected": True}

    # the new CSMS gets the charger's boot and latest status, translated, then the charger is on it
    at_new = await session_of(new, "CP-MOVE")
    await wait_until(lambda: actions(at_new)[:2] == ["BootNotification", "StatusNotification"], 10,
                     "the replayed boot and status at the new CSMS")
    assert calls(at_new)[1][3]["connectorStatus"] == "Occupied"  # 1.6 Preparing, as the rules translate it
    await wait_until_entry(proxy, "CP-MOVE", lambda e: e["upstream"] == "new" and e.get("draining") == "old")

    # the running transaction ends on the old CSMS; everything else goes to the new one
    await charger.cp.call(call16.MeterValues(connector_id=1, transaction_id=TRANSACTION_ID_16,
                                             meter_value=meter_value(1500)), suppress=False)
    heartbeat = await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert heartbeat.current_time
    await charger.cp.call(call16.StopTransaction(meter_stop=3000, timestamp=now_iso(),
                                                 transaction_id=TRANSACTION_ID_16), suppress=False)
    assert actions(at_old) == ["BootNotification", "StatusNotification", "StartTransaction", "MeterValues",
                               "StopTransaction"]
    assert [f[3]["transactionId"] for f in calls(at_old)[3:]] == [TRANSACTION_ID_16] * 2
    # with nothing left there, the old link closes
    assert await at_old.wait_closed(timeout=10) == 1000
    await wait_until_entry(proxy, "CP-MOVE", lambda e: e.get("draining") is None)

    # the next transaction starts on the new CSMS
    second = await charger.cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-0002", meter_start=3000,
                                                           timestamp=now_iso()), suppress=False)
    assert second.id_tag_info["status"] == "Accepted"
    assert actions(at_new) == ["BootNotification", "StatusNotification", "Heartbeat", "TransactionEvent"]
    assert calls(at_new)[3][3]["eventType"] == "Started"
    # the new CSMS reaches the charger at once, in 1.6
    from ocpp.v201 import call as call201
    reset = await at_new.cp.call(call201.Reset(type="Immediate"), suppress=False)
    assert reset.status == "Accepted"

    # one connection all along
    assert charger.connection.state.name == "OPEN"
    assert proxy.stderr().count("charger connected") == 1
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()
    states = [(r["state"], r["from"], r["to"]) for r in events(log.records(), "cutover")]
    assert states == [("started", "old", "new"), ("switched", "old", "new"), ("drained", "old", "new")]


async def wait_until_entry(proxy, identity: str, predicate) -> dict:
    entry: dict = {}
    for _ in range(100):
        entry = await charger_entry(proxy, identity)
        if predicate(entry):
            return entry
        await asyncio.sleep(0.1)
    raise AssertionError(f"/api/chargers entry of {identity} never matched: {entry}")


async def test_without_a_running_transaction_the_old_link_closes_at_the_switch(h):
    proxy, old, new = await two_csms_proxy(h)
    charger = await h.charger(proxy, "CP-IDLE", V16)
    await boot_and_status(charger)
    at_old = await session_of(old, "CP-IDLE")
    assert (await put_route(proxy, "CP-IDLE", {"upstream": "new"})).status == 200
    assert await at_old.wait_closed(timeout=10) == 1000
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    at_new = await session_of(new, "CP-IDLE")
    assert actions(at_new) == ["BootNotification", "StatusNotification", "Heartbeat"]
    assert actions(at_old) == ["BootNotification", "StatusNotification"]


# -- routes kept, changed back, reloaded --------------------------------------------------------------------------


async def test_a_charger_moved_to_its_shadow_keeps_one_link_there(h):
    # SITE7-* go to old with new as the shadow; moved to new, the charger's shadow link to new closes: the new
    # CSMS never sees the charger twice, and new's CALLs reach the charger from then on.
    proxy, old, new = await two_csms_proxy(h, rules=[{"match": "SITE7-*", "upstream": "old", "shadow": "new"}])
    charger = await h.charger(proxy, "SITE7-001", V16)
    await boot_and_status(charger)
    shadow_side = await session_of(new, "SITE7-001")
    await wait_until(lambda: actions(shadow_side) == ["BootNotification", "StatusNotification"], 10,
                     "the shadow's copies")

    response = await put_route(proxy, "SITE7-001", {"upstream": "new"})
    assert response.status == 200, response.text
    assert await shadow_side.wait_closed(timeout=10) == 1001
    primary = await session_of(new, "SITE7-001", index=1)
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert actions(primary) == ["BootNotification", "StatusNotification", "Heartbeat"]
    assert actions(shadow_side) == ["BootNotification", "StatusNotification"]
    assert len([s for s in new.sessions if s.identity == "SITE7-001"]) == 2
    assert "shadow new ends for this charger" in proxy.stderr()
    from ocpp.v201 import call as call201
    reset = await primary.cp.call(call201.Reset(type="Immediate"), suppress=False)
    assert reset.status == "Accepted"


async def test_a_route_set_through_the_api_survives_a_restart_and_delete_moves_the_charger_back(h):
    proxy, old, new = await two_csms_proxy(h)
    response = await put_route(proxy, "CP-LATER", {"upstream": "new"})
    assert response.status == 200 and response.json()["connected"] is False
    routes = (await http_request(proxy.admin_port, "/api/routes", headers=AUTH)).json()["routes"]
    assert {"identity": "CP-LATER", "upstream": "new", "reason": "api", "configured": False,
            "connected": False} in routes
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()

    proxy = await h.restart(proxy)
    charger = await h.charger(proxy, "CP-LATER", V16)
    await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"),
                          suppress=False)
    at_new = await session_of(new, "CP-LATER")
    assert actions(at_new) == ["BootNotification"]
    assert not [s for s in old.sessions if s.identity == "CP-LATER"]

    response = await http_request(proxy.admin_port, "/api/chargers/CP-LATER/route", method="DELETE", headers=AUTH)
    assert response.status == 200, response.text
    assert response.json() == {"identity": "CP-LATER", "upstream": "old", "reason": "default", "connected": True}
    at_old = await session_of(old, "CP-LATER")
    await wait_until(lambda: actions(at_old) == ["BootNotification"], 10, "the boot replayed to the old CSMS")
    assert await at_new.wait_closed(timeout=10) == 1000
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert actions(at_old) == ["BootNotification", "Heartbeat"]


async def test_sighup_reloads_the_routes_and_moves_the_chargers_whose_route_changed(h):
    proxy, old, new = await two_csms_proxy(h)
    moving = await h.charger(proxy, "SITE9-1", V16)
    staying = await h.charger(proxy, "CP-STAY", V16)
    for charger in (moving, staying):
        await boot_and_status(charger)
    config = yaml.safe_load(proxy.config_path.read_text())
    config["routing"]["rules"] = [{"match": "SITE9-*", "upstream": "new"}]
    proxy.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proxy.send_signal(signal.SIGHUP)
    at_new = await session_of(new, "SITE9-1")
    await wait_until(lambda: actions(at_new) == ["BootNotification", "StatusNotification"], 10, "the replay")
    await wait_until_entry(proxy, "SITE9-1", lambda e: e["upstream"] == "new")
    await moving.cp.call(call16.Heartbeat(), suppress=False)
    await staying.cp.call(call16.Heartbeat(), suppress=False)
    assert actions(at_new)[-1] == "Heartbeat"
    assert actions(await session_of(old, "CP-STAY"))[-1] == "Heartbeat"
    assert not [s for s in new.sessions if s.identity == "CP-STAY"]
    routes = {r["identity"]: r for r in (await http_request(proxy.admin_port, "/api/routes",
                                                            headers=AUTH)).json()["routes"]}
    assert routes["SITE9-1"]["reason"] == "rule" and routes["SITE9-1"]["upstream"] == "new"

    # a file that names other upstreams changes nothing, and says why
    config["upstreams"] = config["upstreams"][:1]
    config["routing"] = {"default": "old"}
    proxy.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proxy.send_signal(signal.SIGHUP)
    await wait_until(lambda: "routes not reloaded" in proxy.stderr(), 10, "the refusal in the log")
    assert "upstreams change with a restart" in proxy.stderr()
    await wait_until_entry(proxy, "SITE9-1", lambda e: e["upstream"] == "new")


# -- the admin API refuses --------------------------------------------------------------------------------------


async def test_the_admin_api_without_the_token_is_refused(h):
    proxy, _, _ = await two_csms_proxy(h)
    for headers, status in [({}, 401), ({"Authorization": "Bearer wrong-token-000000000000"}, 401),
                            ({"Authorization": f"Basic {TOKEN}"}, 401)]:
        response = await put_route(proxy, "CP-X", {"upstream": "new"}, headers=headers)
        assert response.status == status, response.text
        assert response.headers.get("www-authenticate", "").startswith("Bearer")
        assert (await http_request(proxy.admin_port, "/api/routes", headers=headers)).status == 401
    # nothing changed
    routes = (await http_request(proxy.admin_port, "/api/routes", headers=AUTH)).json()["routes"]
    assert not [r for r in routes if r["identity"] == "CP-X"]
    # health, readiness and metrics need no token
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await proxy.admin(path)).status == 200


async def test_without_an_admin_token_the_api_is_read_only(h):
    proxy, _, _ = await two_csms_proxy(h, token=None)
    response = await put_route(proxy, "CP-X", {"upstream": "new"}, headers={})
    assert response.status == 403
    assert "admin.token is not configured" in response.json()["error"]
    assert (await proxy.admin("/api/routes")).status == 200


@pytest.mark.parametrize("body, status, message", [
    ({"upstream": "elsewhere"}, 400, 'unknown upstream "elsewhere"; expected one of old, new'),
    ({"route": "new"}, 400, 'expected a JSON body {"upstream": "<name>"}'),
    (b"not json", 400, 'expected a JSON body'),
    (b"x" * 5000, 413, "body over 4096 bytes"),
])
async def test_a_bad_route_request_is_refused_and_changes_nothing(h, body, status, message):
    proxy, _, _ = await two_csms_proxy(h)
    response = await put_route(proxy, "CP-BAD", body)
    assert response.status == status, response.text
    assert message in response.json()["error"]
    routes = (await http_request(proxy.admin_port, "/api/routes", headers=AUTH)).json()["routes"]
    assert not [r for r in routes if r["identity"] == "CP-BAD"]


async def test_a_charger_its_new_upstream_cannot_serve_is_not_moved(h):
    # no rules: a 1.6 charger cannot be served by the 2.0.1 CSMS
    proxy, old, new = await two_csms_proxy(h, translate=False)
    charger = await h.charger(proxy, "CP-16", V16)
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    response = await put_route(proxy, "CP-16", {"upstream": "new"})
    assert response.status == 409
    assert "no rules translate between them" in response.json()["error"]
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert actions(await session_of(old, "CP-16")) == ["Heartbeat", "Heartbeat"]
    assert new.sessions == []


def test_a_short_admin_token_is_a_configuration_error(h, tmp_path):
    from test_limits import check_config

    _, errors = check_config(h, tmp_path, {"admin": {"token": "short"}})
    assert len(errors) == 1 and "error: admin.token: expected at least 16 characters" in errors[0], errors
