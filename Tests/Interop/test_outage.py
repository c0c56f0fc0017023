"""CSMS outages while chargers are connected (issue 15, ``upstreamOutage``).

When a charger's CSMS link drops, the charger stays connected for ``upstreamOutage.grace`` while the proxy reconnects
(exponential back-off with jitter).  Meanwhile Heartbeat and StatusNotification are answered by the proxy (the latest
status per connector is sent when the link is back), transaction messages whose answer the charger does not act on
are persisted and acknowledged, then delivered in order with their own timestamps (``offline: true`` in 2.0.1), and
CALLs only the CSMS can answer wait.  Past the grace the charger is closed with 1011 and new chargers get 503 with
``Retry-After`` until the CSMS is reachable again.  A SIGKILL during the outage loses nothing acknowledged.

The CSMS here is the ``ocpp`` package (schema validation on) on a fixed port: the test stops it (its links close with
1001, going away) and starts another one on the same port.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from audit_support import AuditDir
from harness import V16, V201, expect_closed, metric_value, parse_prometheus, raw_ws_connect, recv_json, wait_until

OUTAGE = {"upstreamOutage": {"grace": "30s", "backoff": {"initial": "200ms", "max": "1s"}}}
T0 = "2026-12-07T08:00:00Z"
T1 = "2026-12-07T08:05:00Z"
T2 = "2026-12-07T08:10:00Z"


async def csms_calls(session, count: int, timeout: float = 15.0) -> list:
    """The first ``count`` CALLs the CSMS received on ``session`` (waits for them)."""
    def calls():
        return [f for f in session.recorder.received_frames() if f[0] == 2]
    await wait_until(lambda: len(calls()) >= count, timeout, f"{count} CALLs at the CSMS (got {calls()})")
    return calls()


async def call(ws, frame: list, timeout: float = 5.0) -> list:
    await ws.send(json.dumps(frame))
    return await recv_json(ws, timeout)


async def no_frame(ws, within: float) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), within)
    except asyncio.TimeoutError:
        return True
    return False


async def metrics(proxy):
    return parse_prometheus((await proxy.admin("/metrics")).text)


async def upstream_state(proxy, identity: str) -> str | None:
    entries = [c for c in await proxy.chargers() if c["identity"] == identity]
    return entries[0]["upstreamState"] if entries else None


async def outage_pair(h, version=V16, overrides=None, **options):
    """A CSMS on a port that outlives it, a proxy with outage handling in front of it, one raw charger."""
    csms = await h.csms(version)
    csms.listen_port = csms.port  # where the next CSMS starts, once this one is gone
    proxy = await h.proxy(csms.url, version, {**OUTAGE, **(overrides or {})}, **options)
    return csms, proxy


async def csms_goes_away(csms, session) -> None:
    await csms.close()
    await session.wait_closed()


# -- 1.6, pass-through ---------------------------------------------------------------------------------------------


async def test_csms_away_and_back_charger_stays_and_transaction_messages_arrive_in_order_once(h):
    csms, proxy = await outage_pair(h)
    ws = await h.raw_charger(proxy, "CPOUT1", [V16])
    session = await csms.next_session()
    started = await call(ws, [2, "s1", "StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                             "timestamp": T0}])
    transaction = started[2]["transactionId"]
    await csms_goes_away(csms, session)
    away = time.monotonic()
    await wait_until(lambda: upstream_state(proxy, "CPOUT1"), 5, "the session listed")
    assert await upstream_state(proxy, "CPOUT1") == "outage"

    heartbeat = await call(ws, [2, "h1", "Heartbeat", {}])
    assert heartbeat[:2] == [3, "h1"] and heartbeat[2]["currentTime"].endswith("Z")
    assert await call(ws, [2, "sn1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                            "status": "Charging"}]) == [3, "sn1", {}]
    assert await call(ws, [2, "mv1", "MeterValues", {
        "connectorId": 1, "transactionId": transaction,
        "meterValue": [{"timestamp": T1, "sampledValue": [{"value": "1500"}]}]}]) == [3, "mv1", {}]
    assert await call(ws, [2, "st1", "StopTransaction", {"transactionId": transaction, "meterStop": 3000,
                                                         "timestamp": T2}]) == [3, "st1", {}]
    assert await call(ws, [2, "sn2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                            "status": "Available"}]) == [3, "sn2", {}]

    # The CSMS stays away for 10 s (the proxy keeps trying, with back-off); the charger stays connected throughout.
    await asyncio.sleep(max(0.0, 10 - (time.monotonic() - away)))
    assert ws.close_code is None
    back = await h.csms(V16, listen_port=csms.listen_port)
    session = await back.next_session(timeout=10)
    delivered = await csms_calls(session, 3)
    assert [f[2] for f in delivered] == ["MeterValues", "StopTransaction", "StatusNotification"]
    assert delivered[0][3]["meterValue"][0]["timestamp"] == T1
    assert delivered[1][3]["timestamp"] == T2 and delivered[1][3]["transactionId"] == transaction
    assert delivered[2][3]["status"] == "Available", "only the latest status of the connector is sent"
    # Delivered: the link is the charger's again, and the CSMS answers it.
    answer = await call(ws, [2, "a1", "Authorize", {"idTag": "TAG1"}])
    assert answer == [3, "a1", {"idTagInfo": {"status": "Accepted"}}]
    assert [f[2] for f in await csms_calls(session, 4)] == [
        "MeterValues", "StopTransaction", "StatusNotification", "Authorize"], "nothing twice, no Heartbeat"
    await wait_until(lambda: upstream_state(proxy, "CPOUT1"), 5, "the session listed")
    assert await upstream_state(proxy, "CPOUT1") == "connected"
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_upstream_outages_total", event="started") == 1
    assert metric_value(samples, "ocpp_proxy_upstream_outages_total", event="restored") == 1
    # 10 s at back-off steps of 0.2 s doubling to 1 s (each drawn between half and all of it): several tries.
    assert 5 <= metric_value(samples, "ocpp_proxy_upstream_reconnects_total", result="failed") <= 40
    assert metric_value(samples, "ocpp_proxy_upstream_reconnects_total", result="opened") == 1
    assert metric_value(samples, "ocpp_proxy_outage_messages_total", decision="queued") == 2
    assert metric_value(samples, "ocpp_proxy_outage_messages_total", action="Heartbeat", decision="answered") == 1
    assert metric_value(samples, "ocpp_proxy_upstream_outage_sessions") == 0


async def test_a_call_only_the_csms_can_answer_waits_for_the_link(h):
    csms, proxy = await outage_pair(h)
    ws = await h.raw_charger(proxy, "CPOUT2", [V16])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    await ws.send(json.dumps([2, "a1", "Authorize", {"idTag": "TAG2"}]))
    assert await no_frame(ws, 1.0), "the proxy must not answer an Authorize in the CSMS's place"
    back = await h.csms(V16, listen_port=csms.listen_port)
    session = await back.next_session(timeout=10)
    assert await recv_json(ws, 10) == [3, "a1", {"idTagInfo": {"status": "Accepted"}}]
    assert [f[2] for f in await csms_calls(session, 1)] == ["Authorize"]


async def test_past_the_grace_the_charger_is_closed_1011_and_new_chargers_get_503_until_the_csms_is_back(h):
    csms, proxy = await outage_pair(h, overrides={"upstreamOutage": {"grace": "1500ms",
                                                                      "backoff": {"initial": "200ms", "max": "1s"}}})
    ws = await h.raw_charger(proxy, "CPOUT3", [V16])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    assert await expect_closed(ws, timeout=10) == 1011
    status, headers, _ = await raw_ws_connect(proxy.port, "/ocpp/CPOUT3b", [V16])
    assert status == 503
    assert 1 <= int(headers["retry-after"]) <= 1
    samples = await metrics(proxy)
    assert metric_value(samples, "ocpp_proxy_upstream_reachable") == 0
    assert metric_value(samples, "ocpp_proxy_upstream_outages_total", event="expired") == 1
    assert metric_value(samples, "ocpp_proxy_admissions_rejected_total", reason="upstream_unreachable") >= 1

    await h.csms(V16, listen_port=csms.listen_port)

    async def gets_in():
        status, _, raw = await raw_ws_connect(proxy.port, "/ocpp/CPOUT3c", [V16])
        if raw is not None:
            h.track(raw)
        return status == 101
    await wait_until(gets_in, 10, "a charger admitted once the CSMS is back", interval=0.3)
    assert metric_value(await metrics(proxy), "ocpp_proxy_upstream_reachable") == 1


async def test_sigkill_during_an_outage_loses_nothing_acknowledged(h, tmp_path):
    csms, proxy = await outage_pair(h, state=tmp_path / "state.sqlite")
    ws = await h.raw_charger(proxy, "CPOUT4", [V16])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    assert await call(ws, [2, "mv1", "MeterValues", {
        "connectorId": 1, "transactionId": 7,
        "meterValue": [{"timestamp": T1, "sampledValue": [{"value": "10"}]}]}]) == [3, "mv1", {}]
    assert await call(ws, [2, "st1", "StopTransaction", {"transactionId": 7, "meterStop": 20,
                                                         "timestamp": T2}]) == [3, "st1", {}]
    proxy.kill()
    back = await h.csms(V16, listen_port=csms.listen_port)
    proxy = await h.restart(proxy)
    ws = await h.raw_charger(proxy, "CPOUT4", [V16])
    session = await back.next_session(timeout=10)
    # What was acknowledged before the kill goes first; the charger's new CALL after it.
    assert await call(ws, [2, "a1", "Authorize", {"idTag": "TAG4"}], timeout=10) == [
        3, "a1", {"idTagInfo": {"status": "Accepted"}}]
    delivered = await csms_calls(session, 3)
    assert [f[2] for f in delivered] == ["MeterValues", "StopTransaction", "Authorize"]
    assert delivered[1][3] == {"transactionId": 7, "meterStop": 20, "timestamp": T2}

    # Delivered once: the next connection finds nothing left to deliver.
    await ws.close()
    ws = await h.raw_charger(proxy, "CPOUT4", [V16])
    session = await back.next_session(timeout=10)
    await call(ws, [2, "h2", "Heartbeat", {}], timeout=10)
    assert [f[2] for f in await csms_calls(session, 1)] == ["Heartbeat"]


async def closed_by_csms(h, identity: str, code: int):
    """A charger whose CSMS closes its link with ``code``: the CSMS (still there), the proxy, the charger."""
    csms, proxy = await outage_pair(h)
    ws = await h.raw_charger(proxy, identity, [V16])
    session = await csms.next_session()
    await session.connection.close(code, "closed by the CSMS")
    await session.wait_closed()
    return csms, proxy, ws


@pytest.mark.parametrize("code", [1000, 1008, 4000])
async def test_a_csms_that_closes_a_charger_on_purpose_still_closes_it(h, code):
    _, _, ws = await closed_by_csms(h, "CPOUT5", code)
    assert await expect_closed(ws, timeout=5) == code


@pytest.mark.parametrize("code", [1011, 1012, 1013])
async def test_a_csms_that_fails_or_restarts_starts_an_outage(h, code):
    csms, proxy, ws = await closed_by_csms(h, "CPOUT6", code)
    assert (await call(ws, [2, "h1", "Heartbeat", {}]))[:2] == [3, "h1"]
    # The CSMS is still there: the proxy reconnects at once (after the first back-off step).
    again = await csms.next_session(timeout=10)
    assert again.identity == "CPOUT6"

    async def connected():
        return await upstream_state(proxy, "CPOUT6") == "connected"
    await wait_until(connected, 5, "the link back")


# -- 2.0.1, pass-through and translated ---------------------------------------------------------------------------


def transaction_event(event_type: str, seq: int, *, id_token: dict | None = None, timestamp: str = T1) -> dict:
    payload = {"eventType": event_type, "timestamp": timestamp, "triggerReason": "MeterValuePeriodic",
               "seqNo": seq, "transactionInfo": {"transactionId": "TX-1"}}
    if id_token is not None:
        payload["idToken"] = id_token
        payload["triggerReason"] = "Authorized"
    return payload


async def test_201_transaction_events_without_id_token_are_queued_offline_and_with_one_they_wait(h):
    csms, proxy = await outage_pair(h, V201)
    ws = await h.raw_charger(proxy, "CPOUT7", [V201])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    assert await call(ws, [2, "t1", "TransactionEvent", transaction_event("Updated", 1)]) == [3, "t1", {}]
    await ws.send(json.dumps([2, "t2", "TransactionEvent",
                              transaction_event("Updated", 2, id_token={"idToken": "TAG7", "type": "ISO14443"})]))
    assert await no_frame(ws, 1.0), "an idToken asks the CSMS for an authorisation: it waits"
    back = await h.csms(V201, listen_port=csms.listen_port)
    session = await back.next_session(timeout=10)
    answer = await recv_json(ws, 10)
    assert answer[:2] == [3, "t2"] and answer[2]["idTokenInfo"]["status"] == "Accepted"
    delivered = await csms_calls(session, 2)
    assert [(f[3]["seqNo"], f[3].get("offline")) for f in delivered] == [(1, True), (2, None)]


async def test_translated_16_transaction_during_an_outage_reaches_a_201_csms_offline_with_its_own_timestamps(h):
    csms, proxy = await outage_pair(h, V201, translate=True)
    ws = await h.raw_charger(proxy, "CPOUT8", [V16])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    started = await call(ws, [2, "s1", "StartTransaction", {"connectorId": 1, "idTag": "TAG8", "meterStart": 100,
                                                             "timestamp": T0}])
    assert started[:2] == [3, "s1"] and started[2]["idTagInfo"]["status"] == "Accepted"
    transaction = started[2]["transactionId"]
    assert isinstance(transaction, int)
    assert await call(ws, [2, "mv1", "MeterValues", {
        "connectorId": 1, "transactionId": transaction,
        "meterValue": [{"timestamp": T1, "sampledValue": [{"value": "600"}]}]}]) == [3, "mv1", {}]
    stopped = await call(ws, [2, "st1", "StopTransaction", {"transactionId": transaction, "meterStop": 900,
                                                            "timestamp": T2}])
    assert stopped[:2] == [3, "st1"]

    back = await h.csms(V201, listen_port=csms.listen_port)
    session = await back.next_session(timeout=10)
    delivered = await csms_calls(session, 3)
    assert [f[2] for f in delivered] == ["TransactionEvent"] * 3
    assert [f[3]["eventType"] for f in delivered] == ["Started", "Updated", "Ended"]
    assert [f[3]["timestamp"] for f in delivered] == [T0, T1, T2]
    assert all(f[3]["offline"] is True for f in delivered)
    assert len({f[3]["transactionInfo"]["transactionId"] for f in delivered}) == 1
    seqs = [f[3]["seqNo"] for f in delivered]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    # The ocpp-package CSMS validated each against the 2.0.1 schema and answered it (a CALLRESULT, no CALLERROR).
    def answers():
        return [f[0] for f in session.recorder.sent_frames()]
    await wait_until(lambda: len(answers()) >= 3, 5, "3 answers from the CSMS")
    assert answers() == [3, 3, 3]


# -- the audit log -----------------------------------------------------------------------------------------------


async def test_the_audit_log_records_the_outage_and_the_delivery(h, tmp_path):
    audit = AuditDir(tmp_path)
    csms, proxy = await outage_pair(h, overrides=audit.overrides())
    ws = await h.raw_charger(proxy, "CPOUT9", [V16])
    session = await csms.next_session()
    await csms_goes_away(csms, session)
    assert await call(ws, [2, "st1", "StopTransaction", {"transactionId": 9, "meterStop": 20,
                                                         "timestamp": T2}]) == [3, "st1", {}]
    back = await h.csms(V16, listen_port=csms.listen_port)
    await csms_calls(await back.next_session(timeout=10), 1)
    await proxy.stop()

    records = [r for r in audit.records() if r.get("charger") == "CPOUT9"]
    phases = [r["phase"] for r in records if r["event"] == "upstream_outage"]
    assert phases == ["started", "restored"]
    answered = [r for r in records if r["event"] == "frame" and r.get("leg") == "proxy_to_charger"
                and r["msg"]["id"] == "st1"]
    assert [r["decision"] for r in answered] == ["answered"]
    replayed = [r for r in records if r["event"] == "frame" and r.get("decision") == "replayed"]
    assert [(r["leg"], r["msg"]["action"], r["payload"]["timestamp"]) for r in replayed] == [
        ("proxy_to_csms", "StopTransaction", T2)]


# -- configuration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("section, key, message", [
    ({"grace": "0s"}, "upstreamOutage.grace", "expected a positive duration"),
    ({"grace": "soon"}, "upstreamOutage.grace", "expected a positive duration"),
    ({"backoff": {"initial": "5s", "max": "1s"}}, "upstreamOutage.backoff.max", "expected at least"),
    ({"maxQueued": 0}, "upstreamOutage.maxQueued", "expected"),
    ({"retries": 3}, "upstreamOutage.retries", "unknown key"),
])
def test_bad_outage_settings_are_one_error_line_naming_the_key(h, tmp_path, section, key, message):
    from test_limits import check_config

    _, errors = check_config(h, tmp_path, {"upstreamOutage": section})
    assert len(errors) == 1, errors
    assert key in errors[0] and message in errors[0], errors
