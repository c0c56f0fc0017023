"""A shadow CSMS (issue 16, point 3): a charger's CALLs copied to a second CSMS, its answers compared, never passed on.

Three CSMSs of the ``ocpp`` package (schema validation on): ``old`` (1.6) is the primary of every charger here;
``new`` (2.0.1) and ``twin`` (1.6) are shadows.  The charger gets only the primary's answers; the shadow sees the
charger's CALLs translated to its own version under message ids of its own (``shadow-N``), a 1.6 shadow its own
transaction ids; every answer is compared in the charger's version and each divergence is an audit record, a metric
and an entry of ``GET /api/shadow/{identity}``.  ``ocpp-proxy shadow report`` sums the audit records up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from audit_support import AuditDir, events
from harness import V16, V201, free_port, metric_value, parse_prometheus, run_cli, wait_until
from ocpp_peers import TRANSACTION_ID_16, Csms16, Csms201, now_iso

SHADOW_TRANSACTION_ID = 777


class DifferentShadow201(Csms201):
    """A 2.0.1 CSMS that answers some CALLs differently from the primary: another heartbeat interval, and a
    blocked token."""

    @on(Action201.boot_notification)
    def on_boot_notification(self, **_):
        return result201.BootNotification(current_time=now_iso(), interval=60, status="Accepted")

    @on(Action201.authorize)
    def on_authorize(self, **_):
        return result201.Authorize(id_token_info={"status": "Blocked"})


class Twin16(Csms16):
    """A 1.6 shadow that numbers its transactions its own way."""

    @on(Action16.start_transaction)
    def on_start_transaction(self, **_):
        return result16.StartTransaction(transaction_id=SHADOW_TRANSACTION_ID, id_tag_info={"status": "Accepted"})


def upstreams(old, new, twin=None, extra: dict | None = None) -> list[dict]:
    extra = extra or {}
    listed = [
        {"name": "old", "url": old.url, "version": V16, "connectTimeout": "2s", **extra.get("old", {})},
        {"name": "new", "url": new.url if new else f"ws://127.0.0.1:{free_port()}/ocpp", "version": V201,
         "connectTimeout": "2s", **extra.get("new", {})},
    ]
    if twin is not None:
        listed.append({"name": "twin", "url": twin.url, "version": V16, "connectTimeout": "2s"})
    return listed


async def shadowed_proxy(h, *, new=None, twin=None, shadow="new", chargers=None, extra=None, overrides=None,
                         audit: AuditDir | None = None, new_down=False):
    """``old`` (1.6) primary of every charger; ``SITE7-*`` shadowed to ``shadow``."""
    old = await h.csms(V16)
    if new is None and not new_down:
        new = await h.csms(V201, cp_factory=DifferentShadow201)
    config = h.config(old.url, V16, translate=True, chargers=chargers or [], overrides={
        "upstream": None,
        "upstreams": upstreams(old, new, twin, extra),
        "routing": {"default": "old", "rules": [{"match": "SITE7-*", "upstream": "old", "shadow": shadow}]},
        **(audit.overrides() if audit else {}),
        **(overrides or {}),
    })
    proxy = await h.proxy(config=config)
    return proxy, old, new


async def session_of(csms, identity: str):
    await wait_until(lambda: any(s.identity == identity for s in csms.sessions), 10, f"{identity} at the CSMS")
    return next(s for s in csms.sessions if s.identity == identity)


def calls(session) -> list[list]:
    return [f for f in session.recorder.received_frames() if f[0] == 2]


def actions(session) -> list[str]:
    return [f[2] for f in calls(session)]


async def shadow_report(proxy, identity: str) -> dict:
    response = await proxy.admin(f"/api/shadow/{identity}")
    assert response.status == 200, response.text
    return response.json()


async def compared(proxy, identity: str, count: int) -> dict:
    """The shadow report once ``count`` answers were compared."""
    report: dict = {}

    async def done():
        nonlocal report
        report = await shadow_report(proxy, identity)
        return report["compared"] >= count

    for _ in range(100):
        if await done():
            return report
        await asyncio.sleep(0.1)
    raise AssertionError(f"the shadow of {identity} compared {report.get('compared')} answers, expected {count}: "
                         f"{report}")


def meter_value(wh: int) -> list[dict]:
    return [{"timestamp": now_iso(), "sampledValue": [
        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}]}]


async def whole_session(charger) -> dict:
    """Boot, status, authorize, a transaction with one meter value, a heartbeat: the charger's answers."""
    cp = charger.cp
    answers = {
        "boot": await cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"),
                              suppress=False),
        "status": await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                                suppress=False),
        "authorize": await cp.call(call16.Authorize(id_tag="TAG-0001"), suppress=False),
        "start": await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-0001", meter_start=0,
                                                       timestamp=now_iso()), suppress=False),
    }
    transaction_id = answers["start"].transaction_id
    answers["meter"] = await cp.call(call16.MeterValues(connector_id=1, transaction_id=transaction_id,
                                                        meter_value=meter_value(1500)), suppress=False)
    answers["stop"] = await cp.call(call16.StopTransaction(meter_stop=3000, timestamp=now_iso(),
                                                           transaction_id=transaction_id), suppress=False)
    answers["heartbeat"] = await cp.call(call16.Heartbeat(), suppress=False)
    return answers


SESSION_16 = ["BootNotification", "StatusNotification", "Authorize", "StartTransaction", "MeterValues",
              "StopTransaction", "Heartbeat"]


# -- a whole session ---------------------------------------------------------------------------------------------


async def test_a_shadowed_16_charger_runs_a_whole_session_the_primary_untouched_the_201_shadow_translated(h):
    log = AuditDir(h.tmp_path / "log")
    proxy, old, new = await shadowed_proxy(h, audit=log)
    charger = await h.charger(proxy, "SITE7-001", V16)
    answers = await whole_session(charger)

    # the charger gets the primary's answers only
    assert answers["boot"].interval == 300
    assert answers["authorize"].id_tag_info["status"] == "Accepted"
    assert answers["start"].transaction_id == TRANSACTION_ID_16
    # the primary sees the charger's frames as they were
    primary = await session_of(old, "SITE7-001")
    assert actions(primary) == SESSION_16
    sent_ids = [f[1] for f in json_frames(charger.recorder.sent) if f[0] == 2]
    assert [f[1] for f in calls(primary)] == sent_ids
    assert [f[3]["transactionId"] for f in calls(primary) if f[2] in ("MeterValues", "StopTransaction")] == \
        [TRANSACTION_ID_16] * 2

    # the 2.0.1 shadow sees a valid translated session (the ocpp package validated every CALL) under its own ids
    report = await compared(proxy, "SITE7-001", len(SESSION_16))
    shadow = await session_of(new, "SITE7-001")
    assert shadow.subprotocol == V201
    seen = actions(shadow)
    assert seen[:3] == ["BootNotification", "StatusNotification", "Authorize"]
    transaction_events = [f[3] for f in calls(shadow) if f[2] == "TransactionEvent"]
    assert [e["eventType"] for e in transaction_events] == ["Started", "Updated", "Ended"]
    assert len({e["transactionInfo"]["transactionId"] for e in transaction_events}) == 1
    assert seen[-1] == "Heartbeat"
    shadow_ids = [f[1] for f in calls(shadow)]
    assert not set(shadow_ids) & set(sent_ids), (shadow_ids, sent_ids)
    # the charger never hears from the shadow
    assert [f for f in json_frames(charger.recorder.received) if f[0] == 2] == []

    # the deliberately different answers are divergences; the heartbeat (only its time differs) is not
    assert report["compared"] == len(SESSION_16)
    latest = {entry["action"]: entry["divergences"] for entry in report["latest"]}
    assert {"kind": "status", "field": "idTagInfo.status", "primary": "Accepted", "shadow": "Blocked"} in \
        latest["Authorize"]
    assert {"kind": "different_value", "field": "interval", "primary": "300", "shadow": "60"} in \
        latest["BootNotification"]
    assert "Heartbeat" not in latest
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_shadow_divergences_total", action="Authorize", kind="status") == 1
    assert metric_value(samples, "ocpp_proxy_shadow_comparisons_total", action="Heartbeat", result="match") == 1
    # the charger's frames are counted once, not again for the shadow
    assert metric_value(samples, "ocpp_proxy_frames_total", direction="charger_to_csms", type="call",
                        action="BootNotification") == 1

    # every comparison is an audit record, and the report sums them up
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()
    records = events(log.records(), "shadow_compared")
    assert len(records) == len(SESSION_16)
    assert {r["charger"] for r in records} == {"SITE7-001"}
    authorize = next(r for r in records if r["action"] == "Authorize")
    assert authorize["result"] == "divergent" and authorize["shadow"] == "new"
    assert "TAG-0001" not in json.dumps(records), "a divergence record shows an idTag"
    text = run_cli(h.binary, "shadow", "report", "--audit", str(log.path))
    assert text.returncode == 0, text.stderr
    assert "Authorize: 1 of 1 divergent (100.0 %)" in text.stdout
    assert "Heartbeat: 0 of 1 divergent (0.0 %)" in text.stdout
    assert "SITE7-001:" in text.stdout
    as_json = run_cli(h.binary, "shadow", "report", "--audit", str(log.path), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert summary["total"]["compared"] == len(SESSION_16)
    assert summary["actions"]["Authorize"]["kinds"] == {"status": 1}
    assert summary["chargers"]["SITE7-001"]["shadows"] == ["new"]


def json_frames(texts: list[str]) -> list[list]:
    return [json.loads(t) for t in texts]


async def test_a_16_shadow_gets_its_own_transaction_ids(h):
    twin = await h.csms(V16, cp_factory=Twin16)
    proxy, old, _ = await shadowed_proxy(h, twin=twin, shadow="twin")
    charger = await h.charger(proxy, "SITE7-TX", V16)
    answers = await whole_session(charger)
    assert answers["start"].transaction_id == TRANSACTION_ID_16
    report = await compared(proxy, "SITE7-TX", len(SESSION_16))
    shadow = await session_of(twin, "SITE7-TX")
    # passing through to a 1.6 shadow, the proxy still gives the copies ids of their own
    sent_ids = {f[1] for f in json_frames(charger.recorder.sent) if f[0] == 2}
    assert all(f[1].startswith("shadow-") and f[1] not in sent_ids for f in calls(shadow)), calls(shadow)
    assert [f[3]["transactionId"] for f in calls(shadow) if f[2] in ("MeterValues", "StopTransaction")] == \
        [SHADOW_TRANSACTION_ID] * 2
    primary = await session_of(old, "SITE7-TX")
    assert [f[3]["transactionId"] for f in calls(primary) if f[2] in ("MeterValues", "StopTransaction")] == \
        [TRANSACTION_ID_16] * 2
    # a twin answers alike: its own transaction id is mapped, not a divergence
    assert report["divergent"] == 0, report


# -- the shadow never delays the charger --------------------------------------------------------------------------


async def test_a_slow_shadow_does_not_hold_the_chargers_answers(h):
    release = asyncio.Event()

    class Held201(Csms201):
        @on(Action201.boot_notification)
        async def on_boot_notification(self, **_):
            await release.wait()
            return result201.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    new = await h.csms(V201, cp_factory=Held201)
    proxy, _, _ = await shadowed_proxy(h, new=new)
    charger = await h.charger(proxy, "SITE7-SLOW", V16)
    boot = await charger.cp.call(
        call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"), suppress=False)
    heartbeat = await charger.cp.call(call16.Heartbeat(), suppress=False)
    # both answered while the shadow still holds the BootNotification it got
    assert boot.status == "Accepted" and heartbeat.current_time
    shadow = await session_of(new, "SITE7-SLOW")
    await wait_until(lambda: actions(shadow) == ["BootNotification"], 10, "the BootNotification at the shadow")
    assert not release.is_set()
    assert (await shadow_report(proxy, "SITE7-SLOW"))["compared"] == 0
    # released, the shadow answers and gets the next copy: one CALL at a time, as OCPP-J wants
    release.set()
    report = await compared(proxy, "SITE7-SLOW", 2)
    assert actions(shadow) == ["BootNotification", "Heartbeat"]
    assert report["divergent"] == 0, report


async def test_a_shadow_that_is_down_changes_nothing_for_the_charger_and_its_losses_are_counted(h):
    proxy, old, _ = await shadowed_proxy(h, new_down=True, overrides={"shadow": {"retry": "200ms"}})
    charger = await h.charger(proxy, "SITE7-DOWN", V16)
    answers = await whole_session(charger)
    assert answers["boot"].interval == 300 and answers["start"].transaction_id == TRANSACTION_ID_16
    assert actions(await session_of(old, "SITE7-DOWN")) == SESSION_16
    # copies made while the first link was being opened are dropped when it fails, the later ones at once
    report: dict = {}

    async def dropped():
        nonlocal report
        report = await shadow_report(proxy, "SITE7-DOWN")
        return sum(report["dropped"].values()) == len(SESSION_16)

    for _ in range(100):
        if await dropped():
            break
        await asyncio.sleep(0.1)
    assert report["dropped"] == {"shadow_down": len(SESSION_16)}, report
    assert report["compared"] == 0
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_shadow_links_total", event="failed", upstream="new") >= 1
    assert metric_value(samples, "ocpp_proxy_shadow_dropped_total", reason="shadow_down", upstream="new") >= 1


# -- the shadow's CALLs ------------------------------------------------------------------------------------------


async def test_a_shadows_call_never_reaches_the_charger(h):
    log = AuditDir(h.tmp_path / "log")
    proxy, _, new = await shadowed_proxy(h, audit=log, extra={"new": {"answerLocally": {
        "TriggerMessage": {"status": "Rejected"}}}})
    charger = await h.charger(proxy, "SITE7-CALL", V16)
    await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"))
    shadow = await session_of(new, "SITE7-CALL")
    with pytest.raises(NotSupportedError):
        await shadow.cp.call(call201.Reset(type="Immediate"), suppress=False)
    triggered = await shadow.cp.call(call201.TriggerMessage(requested_message="Heartbeat"), suppress=False)
    assert triggered.status == "Rejected"
    # the charger still works, and never got a CALL
    assert (await charger.cp.call(call16.Heartbeat(), suppress=False)).current_time
    assert [f for f in json_frames(charger.recorder.received) if f[0] == 2] == []
    assert (await shadow_report(proxy, "SITE7-CALL"))["shadowCalls"] == 2
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()
    answered = [(r["action"], r["answer"]) for r in events(log.records(), "shadow_call")]
    assert answered == [("Reset", "NotSupported"), ("TriggerMessage", "result")]


# -- credentials, routes, configuration ---------------------------------------------------------------------------


async def test_the_shadow_gets_its_own_credentials_never_the_primarys(h):
    seen: dict[tuple[str, str], str | None] = {}

    def recording(name):
        def record(connection, request):
            seen[(name, request.path.rsplit("/", 1)[-1])] = request.headers.get("Authorization")
            return None
        return record

    new = await h.csms(V201, process_request=recording("new"))
    proxy, old, _ = await shadowed_proxy(h, new=new, chargers=[
        {"identity": "SITE7-PW", "upstreamPasswords": {"old": "old-secret", "new": "new-secret"}},
        {"identity": "SITE7-NOPW", "upstreamPasswords": {"old": "only-old"}},
    ])
    for identity in ("SITE7-PW", "SITE7-NOPW"):
        charger = await h.charger(proxy, identity, V16)
        await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"))
        await compared(proxy, identity, 1)

    def basic(identity, password):
        return "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()

    assert seen == {("new", "SITE7-PW"): basic("SITE7-PW", "new-secret"), ("new", "SITE7-NOPW"): None}


async def test_routes_name_the_shadow_and_a_charger_without_one_has_no_shadow_report(h):
    proxy, _, _ = await shadowed_proxy(h, chargers=[{"identity": "CP-OWN", "upstream": "old", "shadow": "new"}])
    await (await h.charger(proxy, "SITE7-R", V16)).cp.call(
        call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"))
    routes = {r["identity"]: r for r in (await proxy.admin("/api/routes")).json()["routes"]}
    assert routes["SITE7-R"]["shadow"] == "new" and routes["SITE7-R"]["reason"] == "rule"
    assert routes["CP-OWN"]["shadow"] == "new" and routes["CP-OWN"]["reason"] == "override"
    # a configured charger with a shadow has a (still empty) report before it connects
    assert (await shadow_report(proxy, "CP-OWN"))["compared"] == 0
    plain = await h.charger(proxy, "CP-PLAIN", V16)
    await plain.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"))
    assert "shadow" not in routes.get("CP-PLAIN", {})
    response = await proxy.admin("/api/shadow/CP-PLAIN")
    assert response.status == 404 and "has no shadow" in response.text


TWO = [{"name": "old", "url": "ws://127.0.0.1:9/ocpp", "version": V16},
       {"name": "new", "url": "ws://127.0.0.1:9/ocpp", "version": V201}]


@pytest.mark.parametrize("overrides, key, message", [
    ({"routing": {"default": "old", "rules": [{"match": "A*", "upstream": "old", "shadow": "gone"}]}},
     "routing.rules[0].shadow", 'unknown upstream "gone"'),
    ({"routing": {"default": "old", "rules": [{"match": "A*", "upstream": "old", "shadow": "old"}]}},
     "routing.rules[0].shadow", "the shadow must be another upstream than the one the rule routes to (old)"),
    ({"routing": {"default": "old"}, "chargers": [{"identity": "CP1", "upstream": "new", "shadow": "new"}]},
     "chargers[0].shadow", "the shadow must be another upstream than the one the charger is routed to (new)"),
    ({"routing": {"default": "old"}, "shadow": {"maxQueued": 0}}, "shadow.maxQueued", "expected an integer 1-10000"),
    ({"routing": {"default": "old"}, "shadow": {"ignoreFields": "currentTime"}}, "shadow.ignoreFields",
     "expected a list of field names"),
    ({"routing": {"default": "old"}, "upstreams": [TWO[0], {**TWO[1], "answerLocally": {"Reset": "Accepted"}}]},
     "upstreams[1].answerLocally.Reset", "expected the CALLRESULT's payload as a mapping"),
])
def test_a_bad_shadow_setting_is_one_error_line_naming_the_key(h, tmp_path, overrides, key, message):
    from test_limits import check_config

    _, errors = check_config(h, tmp_path, {"upstream": None, "upstreams": TWO, **overrides})
    assert len(errors) == 1, errors
    assert f"error: {key}: " in errors[0] and message in errors[0], errors
