"""Named upstreams and per-charger routes (issue 16, points 1 and 2).

One proxy, two CSMSs of the ``ocpp`` package (schema validation on): ``old`` speaks 1.6, ``new`` 2.0.1.  Each charger
goes to the upstream its route names -- its own ``chargers[].upstream`` (override), else the first
``routing.rules[]`` whose pattern matches its identity (rule), else ``routing.default`` -- and is translated to
*that* upstream's version: a 1.6 charger routed to ``new`` reaches a 2.0.1 CSMS, a 1.6 charger routed to ``old``
passes through, at the same time.  ``GET /api/routes`` says where each charger goes and why.  Each upstream has its
own health: one CSMS gone past its outage grace refuses only the chargers routed to it.
"""

from __future__ import annotations

import asyncio
import base64
import signal

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from audit_support import AuditDir, events
from harness import V16, V201, expect_closed, free_port, metric_value, parse_prometheus, raw_ws_connect, wait_until

RULES = [{"match": "ABB-*", "upstream": "new"}]
CHARGERS = [
    {"identity": "CP042", "upstream": "new"},  # override: no rule names it
    {"identity": "ABB-OLD", "upstream": "old"},  # override beats the ABB-* rule
    {"identity": "CP900", "upstream": "new"},  # configured, never connected
]


def upstreams(old, new, extra: dict) -> list[dict]:
    """``old`` (1.6) and ``new`` (2.0.1), each with ``extra[name]`` merged in."""
    return [
        {"name": "old", "url": old.url, "version": V16, "connectTimeout": "2s", **extra.get("old", {})},
        {"name": "new", "url": new.url, "version": V201, "connectTimeout": "2s", **extra.get("new", {})},
    ]


async def routed_proxy(h, *, chargers=CHARGERS, rules=RULES, translate=True, overrides=None, old=None, new=None,
                       extra=None, **options):
    """The two CSMSs (unless given) and a proxy routing between them: default ``old``, ``ABB-*`` to ``new``."""
    old = old or await h.csms(V16)
    new = new or await h.csms(V201)
    config = h.config(old.url, V16, translate=translate, chargers=chargers, overrides={
        "upstream": None,
        "upstreams": upstreams(old, new, extra or {}),
        "routing": {"default": "old", "rules": rules},
        **(overrides or {}),
    }, **options)
    proxy = await h.proxy(config=config)
    return proxy, old, new


async def boot16(charger) -> None:
    result = await charger.cp.call(call16.BootNotification(charge_point_model="DC-150", charge_point_vendor="ACME"))
    assert result.status == "Accepted"


async def boot201(charger) -> None:
    result = await charger.cp.call(call201.BootNotification(
        charging_station={"model": "DC-150", "vendor_name": "ACME"}, reason="PowerUp"))
    assert result.status == "Accepted"


def actions(session) -> list[str]:
    return [f[2] for f in session.recorder.received_frames() if f[0] == 2]


async def session_of(csms, identity: str):
    await wait_until(lambda: any(s.identity == identity for s in csms.sessions), 10, f"{identity} at the CSMS")
    return next(s for s in csms.sessions if s.identity == identity)


async def metrics(proxy):
    return parse_prometheus((await proxy.admin("/metrics")).text)


# -- routes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("identity, version, upstream, translated", [
    ("ABB-001", V16, "new", True),   # rule: a 1.6 charger on the 2.0.1 CSMS, translated
    ("CP042", V16, "new", True),     # override
    ("ABB-OLD", V16, "old", False),  # override over the rule: passes through to the 1.6 CSMS
    ("CP100", V16, "old", False),    # default
    ("W201", V201, "old", True),     # default: a 2.0.1 charger on the 1.6 CSMS, translated
    ("ABB-201", V201, "new", False),  # rule: passes through to the 2.0.1 CSMS
])
async def test_each_charger_reaches_its_routes_csms_in_that_csmss_version(h, identity, version, upstream, translated):
    proxy, old, new = await routed_proxy(h)
    charger = await h.charger(proxy, identity, version)
    await (boot16 if version == V16 else boot201)(charger)
    target, other = (new, old) if upstream == "new" else (old, new)
    session = await session_of(target, identity)
    assert session.subprotocol == target.version
    assert actions(session) == ["BootNotification"]
    assert identity not in [s.identity for s in other.sessions]
    (entry,) = [c for c in await proxy.chargers() if c["identity"] == identity]
    assert (entry["upstream"], entry["version"], entry["upstreamVersion"]) == (upstream, version, target.version)
    assert (entry.get("translation") is not None) == translated


async def test_one_node_serves_16_chargers_to_a_16_and_a_201_csms_at_once(h):
    proxy, old, new = await routed_proxy(h)
    to_new = await h.charger(proxy, "ABB-100", V16)
    to_old = await h.charger(proxy, "CP100", V16)
    await asyncio.gather(boot16(to_new), boot16(to_old))
    for charger in (to_new, to_old):
        result = await charger.cp.call(call16.Heartbeat())
        assert result.current_time
    assert actions(await session_of(new, "ABB-100")) == ["BootNotification", "Heartbeat"]
    assert actions(await session_of(old, "CP100")) == ["BootNotification", "Heartbeat"]
    # the 2.0.1 CSMS speaks to the translated charger: its CALL arrives in 1.6
    session = await session_of(new, "ABB-100")
    result = await session.cp.call(call201.Reset(type="Immediate"))
    assert result.status == "Accepted"
    assert [f[2] for f in to_new.recorder.received_frames() if f[0] == 2] == ["Reset"]


async def test_api_routes_shows_every_configured_and_connected_charger_with_its_upstream_and_why(h):
    proxy, old, new = await routed_proxy(h)
    for identity in ("ABB-001", "CP042", "CP100"):
        await boot16(await h.charger(proxy, identity, V16))
    response = await proxy.admin("/api/routes")
    assert response.status == 200
    body = response.json()
    routes = {r["identity"]: r for r in body["routes"]}
    assert routes == {
        "ABB-001": {"identity": "ABB-001", "upstream": "new", "reason": "rule", "match": "ABB-*",
                    "configured": False, "connected": True},
        "ABB-OLD": {"identity": "ABB-OLD", "upstream": "old", "reason": "override", "configured": True,
                    "connected": False},
        "CP042": {"identity": "CP042", "upstream": "new", "reason": "override", "configured": True,
                  "connected": True},
        "CP100": {"identity": "CP100", "upstream": "old", "reason": "default", "configured": False,
                  "connected": True},
        "CP900": {"identity": "CP900", "upstream": "new", "reason": "override", "configured": True,
                  "connected": False},
    }
    assert [r["identity"] for r in body["routes"]] == sorted(routes)
    assert body["upstreams"] == [
        {"name": "old", "url": f"ws://127.0.0.1:{old.port}/ocpp", "version": V16, "default": True,
         "reachable": True},
        {"name": "new", "url": f"ws://127.0.0.1:{new.port}/ocpp", "version": V201, "default": False,
         "reachable": True},
    ]


async def test_a_charger_whose_version_its_upstream_cannot_serve_is_refused_400_naming_the_upstream(h):
    # no rules: nothing translates, so a 1.6 charger can only go to the 1.6 CSMS
    proxy, old, new = await routed_proxy(h, translate=False)
    status, _, _ = await raw_ws_connect(proxy.port, "/ocpp/ABB-002", [V16])
    assert status == 400
    assert "ocpp1.6 chargers cannot be served: upstream new speaks ocpp2.0.1" in proxy.stderr()
    charger = await h.charger(proxy, "CP101", V16)
    await boot16(charger)
    assert actions(await session_of(old, "CP101")) == ["BootNotification"]
    assert new.sessions == []


async def test_upstream_passwords_go_to_the_upstream_they_belong_to(h):
    seen: dict[str, str | None] = {}

    def recording(connection, request):
        identity = request.path.rsplit("/", 1)[-1]
        seen[identity] = request.headers.get("Authorization")
        return None

    old = await h.csms(V16, process_request=recording)
    new = await h.csms(V201, process_request=recording)
    proxy, _, _ = await routed_proxy(h, old=old, new=new, chargers=[
        # the password of the upstream the charger is routed to (here by the ABB-* rule: new)
        {"identity": "ABB-PW", "upstream": {"password": "for-its-route"}},
        # one password per upstream: the one of its route (default: old) is sent
        {"identity": "CPPW", "upstreamPasswords": {"old": "old-secret", "new": "new-secret"}},
        # route and password together
        {"identity": "CPNEW", "upstream": {"name": "new", "password": "new-only"}},
    ])
    for identity in ("ABB-PW", "CPPW", "CPNEW"):
        await boot16(await h.charger(proxy, identity, V16))

    def basic(identity, password):
        return "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()

    assert seen == {"ABB-PW": basic("ABB-PW", "for-its-route"), "CPPW": basic("CPPW", "old-secret"),
                    "CPNEW": basic("CPNEW", "new-only")}
    assert [s.identity for s in new.sessions] == ["ABB-PW", "CPNEW"]


async def test_audit_records_carry_the_url_of_the_sessions_own_upstream(h):
    log = AuditDir(h.tmp_path / "log")
    proxy, old, new = await routed_proxy(h, overrides=log.overrides())
    await boot16(await h.charger(proxy, "ABB-001", V16))
    await boot16(await h.charger(proxy, "CP100", V16))
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()
    connects = {r["charger"]: r for r in events(log.records(), "connect")}
    assert connects["ABB-001"]["upstream"] == new.url
    assert connects["CP100"]["upstream"] == old.url


# -- one CSMS down -----------------------------------------------------------------------------------------------


async def test_one_csms_gone_past_its_grace_refuses_only_the_chargers_routed_to_it(h):
    old = await h.csms(V16)
    new = await h.csms(V201)
    new.listen_port = new.port
    proxy, _, _ = await routed_proxy(h, old=old, new=new, overrides={
        "upstreamOutage": {"grace": "1500ms", "backoff": {"initial": "200ms", "max": "1s"}}})
    on_new = await h.raw_charger(proxy, "ABB-OUT", [V16])
    on_old = await h.charger(proxy, "CP-STAYS", V16)
    await boot16(on_old)
    session = await session_of(new, "ABB-OUT")
    await new.close()
    await session.wait_closed()

    assert await expect_closed(on_new, timeout=10) == 1011
    status, headers, _ = await raw_ws_connect(proxy.port, "/ocpp/ABB-LATER", [V16])
    assert status == 503 and int(headers["retry-after"]) >= 1
    # the other CSMS's chargers: the connected one goes on, a new one gets in
    assert (await on_old.cp.call(call16.Heartbeat())).current_time
    newcomer = await h.charger(proxy, "CP-NEWCOMER", V16)
    await boot16(newcomer)
    assert actions(await session_of(old, "CP-NEWCOMER")) == ["BootNotification"]

    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_upstream_reachable", upstream="new") == 0
    assert metric_value(samples, "ocpp_proxy_upstream_reachable", upstream="old") == 1
    assert metric_value(samples, "ocpp_proxy_upstream_outages_total", event="expired", upstream="new") == 1
    assert metric_value(samples, "ocpp_proxy_upstream_outages_total", upstream="old") == 0
    routes = (await proxy.admin("/api/routes")).json()
    assert {u["name"]: u["reachable"] for u in routes["upstreams"]} == {"old": True, "new": False}


async def test_connect_failures_are_counted_per_upstream(h):
    # nothing listens where "new" is: its chargers get 502, "old"'s get in
    proxy, old, _ = await routed_proxy(h, extra={"new": {"url": f"ws://127.0.0.1:{free_port()}/ocpp"}})
    status, _, _ = await raw_ws_connect(proxy.port, "/ocpp/ABB-NOWHERE", [V16])
    assert status == 502
    await boot16(await h.charger(proxy, "CP-FINE", V16))
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_upstream_connect_failures_total", upstream="new", reason="refused") == 1
    assert metric_value(samples, "ocpp_proxy_upstream_connect_failures_total", upstream="old") == 0


# -- configuration -----------------------------------------------------------------------------------------------


def bad_config(h, tmp_path, overrides: dict) -> list[str]:
    from test_limits import check_config

    _, errors = check_config(h, tmp_path, overrides)
    return errors


TWO = [{"name": "old", "url": "ws://127.0.0.1:9/ocpp", "version": V16},
       {"name": "new", "url": "ws://127.0.0.1:9/ocpp", "version": V201}]


@pytest.mark.parametrize("overrides, key, message", [
    ({"upstream": None, "upstreams": TWO, "routing": {"default": "gone"}},
     "routing.default", 'unknown upstream "gone"; expected one of old, new'),
    ({"upstream": None, "upstreams": TWO, "routing": {"default": "old", "rules": [{"match": "A*", "upstream": "x"}]}},
     "routing.rules[0].upstream", 'unknown upstream "x"'),
    ({"upstream": None, "upstreams": TWO, "routing": {"default": "old"},
      "chargers": [{"identity": "CP1", "upstream": "x"}]},
     "chargers[0].upstream", 'unknown upstream "x"'),
    ({"upstream": None, "upstreams": [TWO[0], {**TWO[1], "name": "old"}], "routing": {"default": "old"}},
     "upstreams[1].name", 'upstream "old" is listed twice'),
    ({"upstreams": TWO, "routing": {"default": "old"}},
     "upstreams", "give either upstream (one CSMS) or upstreams (several, by name), not both"),
    ({"upstream": None, "upstreams": TWO, "routing": {"default": "old", "rules": [{"match": "ABB/*",
                                                                                     "upstream": "new"}]}},
     "routing.rules[0].match", "the pattern contains '/'"),
    ({"upstream": None, "upstreams": TWO, "routing": {"default": "old", "rules": [{"match": "", "upstream": "new"}]}},
     "routing.rules[0].match", "expected a non-empty string"),
    ({"upstream": None, "upstreams": [{**TWO[0], "name": "a b"}]},
     "upstreams[0].name", "expected a name of letters, digits, _ and -"),
    ({"upstream": None, "upstreams": TWO}, "routing.default", "required with several upstreams"),
])
def test_a_bad_route_or_upstream_is_one_error_line_naming_the_key(h, tmp_path, overrides, key, message):
    errors = bad_config(h, tmp_path, overrides)
    assert len(errors) == 1, errors
    assert f"error: {key}: " in errors[0] and message in errors[0], errors
    if "required with" not in message:
        assert "proxy.yaml:" in errors[0], errors
