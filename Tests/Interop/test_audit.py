"""The audit log (issue 14): every frame on its four legs and the security events, hash-chained, signed, redacted.

Each test runs real peers through a proxy with ``audit:`` on (``audit_support.AuditDir``: checkpoints every
second), then reads what the proxy wrote -- after stopping it with SIGTERM unless the test is about the running
proxy -- and checks it with the binary's own ``audit verify / query / export`` commands and from the outside.
Tampering is done to a finished log the way an attacker would: on the bytes, or by rewriting the hash chain
consistently so that only the signatures can tell.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import resource
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audit_support import (
    NODE,
    ONWARD,
    AuditDir,
    assert_broken_at,
    assert_verified,
    audit_cli,
    canonical,
    caused_by,
    events,
    export,
    frames,
    merkle_root,
    pseudonym,
    query,
    received,
    rechain,
    self_signed_tls,
    verify,
)
from harness import LOCALHOST, V16, V201, connect_raw, metric_value, recv_json, run_cli, start_proxy, wait_until
from ocpp_peers import now_iso
from security_support import SecCharger16, charger_entry, hash_password, secret_forms, start_secure_env
from translation_support import connect_charger16, times_after_connecting, translating_proxy

TAG = "AUDIT-TAG-0001"
REMOTE_TAG = "AUDIT-TAG-0002"


def audit_dir(h, name: str = "log") -> AuditDir:
    return AuditDir(h.tmp_path / name)


async def stop(proxy) -> None:
    assert await proxy.stop(signal.SIGTERM) == 0, proxy.describe()


def local_address(ws) -> str:
    host, port = ws.local_address[:2]
    return f"{host}:{port}"


# ---------------------------------------------------------------------------
# a pass-through session: every leg of every frame, in order, and verify passes
# ---------------------------------------------------------------------------


async def charging_session_16(charger, session) -> None:
    """Boot, Authorize, a transaction; then two CSMS CALLs (one with an idTag)."""
    cp = charger.cp
    await cp.call(call16.BootNotification(charge_point_model="Audit-1", charge_point_vendor="ocpp-proxy-tests"),
                  suppress=False)
    assert (await cp.call(call16.Authorize(id_tag=TAG), suppress=False)).id_tag_info["status"] == "Accepted"
    start = await cp.call(call16.StartTransaction(connector_id=1, id_tag=TAG, meter_start=1000, timestamp=now_iso()),
                          suppress=False)
    await cp.call(call16.StopTransaction(meter_stop=1800, timestamp=now_iso(), transaction_id=start.transaction_id,
                                         id_tag=TAG, reason="Local"), suppress=False)
    conf = await session.cp.call(call16.GetConfiguration(key=["HeartbeatInterval"]), suppress=False)
    assert conf.configuration_key[0]["value"] == "300"
    remote = await session.cp.call(call16.RemoteStartTransaction(id_tag=REMOTE_TAG, connector_id=1), suppress=False)
    assert remote.status == "Accepted"


def redacted_16(payload: dict) -> dict:
    """A 1.6 payload as the log keeps it in ``redacted`` mode: idTags (top level, idTagInfo.parentIdTag) as
    pseudonyms."""
    out = json.loads(json.dumps(payload))
    if "idTag" in out:
        out["idTag"] = pseudonym(out["idTag"])
    if "parentIdTag" in out.get("idTagInfo", {}):
        out["idTagInfo"]["parentIdTag"] = pseudonym(out["idTagInfo"]["parentIdTag"])
    return out


def assert_pass_through_legs(records: list[dict], sent_by: list, inbound: str) -> None:
    """Each frame ``sent_by`` one peer (its recorder's frames) is recorded as received on ``inbound`` with its
    payload (redacted), then once as forwarded onward -- no payload, cause = the inbound record -- later in the
    log."""
    onward = ONWARD[inbound]
    for frame in sent_by:
        message_type = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}[frame[0]]
        inbound_record = received(records, inbound, frame[1], message_type)
        assert (inbound_record["decision"], inbound_record["version"]) == ("received", V16)
        assert inbound_record["payload"] == redacted_16(frame[-1]), f"payload recorded for {frame}"
        outbound = caused_by(records, inbound_record)
        assert len(outbound) == 1, f"expected one onward record of {frame}, got {outbound}"
        forwarded = outbound[0]
        assert (forwarded["leg"], forwarded["decision"], forwarded["version"]) == (onward, "forwarded", V16), forwarded
        assert forwarded["msg"] == inbound_record["msg"], "a forwarded frame has the same envelope"
        assert "payload" not in forwarded, "a forwarded frame's record carries no payload (same bytes as its cause)"
        assert forwarded["seq"] > inbound_record["seq"]


async def test_pass_through_session_records_every_leg_in_order_and_verifies(h):
    log = audit_dir(h)
    proxy, csms = await h.pair(V16, overrides=log.overrides())
    charger = await h.charger(proxy, "CPAUDIT", V16)
    session = await csms.next_session()
    await charging_session_16(charger, session)
    await stop(proxy)

    lines = log.lines()
    records = [line.record for line in lines]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1)), "seq must count 1, 2, 3 ... in file order"
    for before, after in zip(records, records[1:]):
        assert after["prev"] == before["hash"], f"record {after['seq']}: prev is not the hash of the one before"
    assert all(r["node"] == NODE for r in records)
    # what an outside verifier recomputes: each hash over its line without it, the checkpoint's RFC 6962 root over them
    assert all(hashlib.sha256(canonical(line.text)).hexdigest() == line.record["hash"] for line in lines)
    assert records[-1]["root"] == merkle_root([bytes.fromhex(line.record["hash"]) for line in lines[:-1]])

    # start first, stop then a checkpoint last
    start = records[0]
    assert start["event"] == "start"
    assert (start["payloads"], start["pid"], start["key"]) == ("redacted", proxy.proc.pid, log.key_id())
    assert [r["event"] for r in records[-2:]] == ["stop", "checkpoint"]

    # the charger's CALLs and the CSMS's answers; the CSMS's CALLs and the charger's answers
    charger_calls = [f for f in charger.recorder.sent_frames() if f[0] == 2]
    csms_calls = [f for f in session.recorder.sent_frames() if f[0] == 2]
    assert [f[2] for f in charger_calls] == ["BootNotification", "Authorize", "StartTransaction", "StopTransaction"]
    assert_pass_through_legs(records, charger.recorder.sent_frames(), "charger_to_proxy")
    assert_pass_through_legs(records, session.recorder.sent_frames(), "csms_to_proxy")
    for call in charger_calls + csms_calls:
        legs = [(r["leg"], r["msg"]["type"]) for r in frames(records) if r["msg"]["id"] == call[1]]
        inbound = "charger_to_proxy" if call in charger_calls else "csms_to_proxy"
        back = {"charger_to_proxy": "csms_to_proxy", "csms_to_proxy": "charger_to_proxy"}[inbound]
        assert legs == [(inbound, "CALL"), (ONWARD[inbound], "CALL"), (back, "CALLRESULT"),
                        (ONWARD[back], "CALLRESULT")], f"the four legs of {call[2]} {call[1]} in log order"
        assert {r["msg"].get("action") for r in frames(records) if r["msg"]["id"] == call[1]} == {call[2]}, (
            "an answer's record names the action of the CALL it answers")
    assert len(frames(records)) == 4 * (len(charger_calls) + len(csms_calls)), "no frame records but these"

    # connect and disconnects: the session's own fields on each, around its frames
    (connect,) = events(records, "connect")
    assert connect["charger"] == "CPAUDIT" and connect["transport"] == "websocket"
    assert connect["remote"] == {"address": local_address(charger.connection), "listener": "chargers", "profile": 0}
    assert connect["upstream"] == csms.url
    session_id = connect["session"]
    assert re.fullmatch(r"[0-9a-f]+-\d+", session_id), session_id
    disconnects = events(records, "disconnect")
    assert sorted(d["side"] for d in disconnects) == ["charger", "csms"]
    for r in frames(records) + disconnects:
        assert (r["charger"], r["session"], r["remote"]) == ("CPAUDIT", session_id, connect["remote"])
    assert connect["seq"] < min(r["seq"] for r in frames(records))
    assert max(r["seq"] for r in frames(records)) < min(d["seq"] for d in disconnects)
    assert max(d["seq"] for d in disconnects) < records[-2]["seq"], "the sessions end before the stop record"

    summary = assert_verified(verify(h.binary, log.path, log.public_key))
    assert (int(summary["segments"]), int(summary["records"])) == (1, len(records))
    assert (int(summary["first"]), int(summary["last"])) == (1, len(records))
    assert summary["time"] == records[-1]["ts"]
    assert summary["signatures"] == f"signatures verified with key {log.key_id()}"


# ---------------------------------------------------------------------------
# a translated session: originals and translations side by side, paired by cause
# ---------------------------------------------------------------------------

VERSION_OF_LEG = {"charger_to_proxy": V16, "proxy_to_charger": V16, "csms_to_proxy": V201, "proxy_to_csms": V201}
ANSWER_LEG = {"charger_to_proxy": "csms_to_proxy", "csms_to_proxy": "charger_to_proxy"}


def assert_translated_exchange(records: list[dict], call: list, sender, receiver, inbound: str, action: str) -> None:
    """``call`` (sent by the peer whose recorder is ``sender``) is recorded as received on ``inbound``, its translation
    (``action``, a new id, the other version) as translated onto the next leg with ``cause`` = the original, and the
    answer likewise on the way back; every payload is the one the peer sent or got (``payloads: full``)."""
    original = received(records, inbound, call[1], "CALL")
    assert (original["decision"], original["version"], original["payload"]) == (
        "received", VERSION_OF_LEG[inbound], call[3])
    translated = caused_by(records, original)
    assert len(translated) == 1, f"expected one translation of {call[2]}, got {translated}"
    translated = translated[0]
    assert (translated["leg"], translated["decision"], translated["version"]) == (
        ONWARD[inbound], "translated", VERSION_OF_LEG[ONWARD[inbound]])
    assert translated["cause"] == {"leg": inbound, "id": call[1]}
    assert translated["msg"]["type"] == "CALL" and translated["msg"]["action"] == action
    new_id = translated["msg"]["id"]
    assert new_id != call[1], "a translated CALL gets an id of the proxy's own"
    delivered = [f for f in receiver.received_frames() if f[0] == 2 and f[1] == new_id]
    assert [f[2] for f in delivered] == [action] and translated["payload"] == delivered[0][3], (
        f"the translated {action} recorded is not what the peer got")

    answer = [f for f in receiver.sent_frames() if f[0] == 3 and f[1] == new_id]
    assert len(answer) == 1
    back = ANSWER_LEG[inbound]
    answer_record = received(records, back, new_id, "CALLRESULT")
    assert (answer_record["version"], answer_record["msg"]["action"], answer_record["payload"]) == (
        VERSION_OF_LEG[back], action, answer[0][2])
    returned = caused_by(records, answer_record)
    assert len(returned) == 1, f"expected one translated answer to {call[2]}, got {returned}"
    returned = returned[0]
    got = [f for f in sender.received_frames() if f[0] == 3 and f[1] == call[1]]
    assert len(got) == 1
    assert (returned["leg"], returned["decision"], returned["version"]) == (
        ONWARD[back], "translated", VERSION_OF_LEG[ONWARD[back]])
    assert returned["msg"] == {"type": "CALLRESULT", "id": call[1], "action": call[2]}
    assert returned["payload"] == got[0][2], f"the {call[2]} answer recorded is not what the peer got"
    assert original["seq"] < translated["seq"] < answer_record["seq"] < returned["seq"]


async def test_translated_session_pairs_each_original_with_its_translation(h):
    t0, t1, _, _ = times_after_connecting()
    log = audit_dir(h)
    proxy, csms = await translating_proxy(h, top=log.overrides(payloads="full"))
    charger, session = await connect_charger16(h, proxy, csms, "CPTRANS")
    cp = charger.cp
    await cp.call(call16.BootNotification(charge_point_model="Audit-1", charge_point_vendor="ocpp-proxy-tests"),
                  suppress=False)
    await cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    start = await cp.call(call16.StartTransaction(connector_id=1, id_tag=TAG, meter_start=1000, timestamp=t0),
                          suppress=False)
    await cp.call(call16.StopTransaction(meter_stop=1800, timestamp=t1, transaction_id=start.transaction_id,
                                         id_tag=TAG, reason="Local"), suppress=False)
    await session.cp.call(call201.RequestStartTransaction(
        id_token={"idToken": REMOTE_TAG, "type": "ISO14443"}, remote_start_id=7, evse_id=1), suppress=False)
    await stop(proxy)

    records = log.records()
    expected = {"BootNotification": "BootNotification", "Authorize": "Authorize",
                "StartTransaction": "TransactionEvent", "StopTransaction": "TransactionEvent"}
    charger_calls = [f for f in charger.recorder.sent_frames() if f[0] == 2]
    assert [f[2] for f in charger_calls] == list(expected)
    for call in charger_calls:
        assert_translated_exchange(records, call, charger.recorder, session.recorder, "charger_to_proxy",
                                   expected[call[2]])
    (csms_call,) = [f for f in session.recorder.sent_frames() if f[0] == 2]
    assert_translated_exchange(records, csms_call, session.recorder, charger.recorder, "csms_to_proxy",
                               "RemoteStartTransaction")
    assert len(frames(records)) == 4 * (len(charger_calls) + 1), "no frame records but these"
    assert {r["session"] for r in frames(records)} == {events(records, "connect")[0]["session"]}
    assert_verified(verify(h.binary, log.path, log.public_key))


# ---------------------------------------------------------------------------
# redaction: no token, password or key in any file; tokens as correlatable pseudonyms
# ---------------------------------------------------------------------------

CHARGER_PW = "Audit-charger-pa55word-01"
WRONG_PW = "Audit-wrong-pa55word-0002"
UPSTREAM_PW = "Audit-upstream-pa55word-03"
NEW_AUTHORIZATION_KEY = "5e3a9c0d7b1f4e2a8c6d0b9f3e7a1c5d9b2f6e0a"  # 40 hex digits (A00.FR.205)
REPORTED_KEY = "Audit-reported-authorization-key-04"


class KeyReportingCharger16(SecCharger16):
    """Reports an AuthorizationKey in GetConfiguration (write-only in the spec; some chargers do it anyway)."""

    @on(Action16.get_configuration)
    def on_get_configuration(self, key=None, **_):
        return result16.GetConfiguration(configuration_key=[
            {"key": "AuthorizationKey", "readonly": False, "value": REPORTED_KEY},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ])


async def secrets_session(h, log: AuditDir, payloads: str) -> dict:
    """A profile-1 charger (Basic auth) authorizes and starts a transaction with TAG; a wrong password is refused;
    the CSMS sets a new AuthorizationKey (answered by the proxy) and reads the configuration (the charger reports
    its key). The proxy is stopped; returns the frames of interest."""
    entry = charger_entry("CPSECRET", 1, password_hash=hash_password(h.binary, CHARGER_PW),
                          upstream_password=UPSTREAM_PW)
    env = await start_secure_env(h, None, 1, [entry], overrides=log.overrides(payloads=payloads))  # no TLS: no PKI
    assert await env.status("CPSECRET", WRONG_PW) == 401
    charger = await env.ocpp_charger("CPSECRET", CHARGER_PW, cp_factory=KeyReportingCharger16)
    session = await env.csms.next_session()
    await charger.cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    await charger.cp.call(call16.StartTransaction(connector_id=1, id_tag=TAG, meter_start=0, timestamp=now_iso()),
                          suppress=False)
    changed = await session.cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=NEW_AUTHORIZATION_KEY),
                                    suppress=False)
    assert changed.status == "Accepted"
    conf = await session.cp.call(call16.GetConfiguration(key=["AuthorizationKey"]), suppress=False)
    assert conf.configuration_key[0]["value"] == REPORTED_KEY
    await stop(env.proxy)
    return {
        "authorize": [f for f in charger.recorder.sent_frames() if f[0] == 2 and f[2] == "Authorize"][0],
        "change": [f for f in session.recorder.sent_frames() if f[0] == 2 and f[2] == "ChangeConfiguration"][0],
        "get": [f for f in session.recorder.sent_frames() if f[0] == 2 and f[2] == "GetConfiguration"][0],
    }


def raw_log_bytes(log: AuditDir) -> dict:
    """Every file of the audit directory (segments and indexes; the key files beside it are not part of it)."""
    files = {p.name: p.read_bytes() for p in sorted(log.path.iterdir()) if p.is_file()}
    assert any(name.endswith(".jsonl") for name in files) and any(name.endswith(".idx") for name in files), files
    return files


SECRETS = {
    "the charger's password": secret_forms("CPSECRET", CHARGER_PW),
    "the wrong password tried": secret_forms("CPSECRET", WRONG_PW),
    "the upstream password": secret_forms("CPSECRET", UPSTREAM_PW),
    "the AuthorizationKey set by the CSMS": [NEW_AUTHORIZATION_KEY],
    "the AuthorizationKey the charger reported": [REPORTED_KEY],
}


def assert_no_secret_in(files: dict, secrets: dict) -> None:
    for what, forms in secrets.items():
        for name, data in files.items():
            leaked = [form for form in forms if form.encode() in data]
            assert not leaked, f"{what} found in {name} of the audit directory"


def assert_secret_records(records: list[dict], sent: dict) -> None:
    """The AuthorizationKey CALL (value dropped, answered by the proxy, a credential_change record) and the
    charger's GetConfiguration answer (value dropped), in any mode that keeps payloads."""
    change = received(records, "csms_to_proxy", sent["change"][1], "CALL")
    assert change["payload"] == {"key": "AuthorizationKey"} and change["redacted"] == ["value"]
    (answer,) = caused_by(records, change)
    assert (answer["leg"], answer["decision"], answer["payload"]) == ("proxy_to_csms", "answered",
                                                                      {"status": "Accepted"})
    (credential,) = events(records, "credential_change")
    assert (credential["what"], credential["result"], credential["charger"]) == (
        "upstream_password", "stored", "CPSECRET")
    reported = received(records, "charger_to_proxy", sent["get"][1], "CALLRESULT")
    assert reported["payload"]["configurationKey"][0] == {"key": "AuthorizationKey", "readonly": False}
    assert reported["redacted"] == ["configurationKey[].value"]


async def test_redacted_log_holds_no_token_password_or_key_and_pseudonyms_correlate(h):
    log = audit_dir(h)
    sent = await secrets_session(h, log, "redacted")
    files = raw_log_bytes(log)
    assert_no_secret_in(files, {**SECRETS, "the idTag": [TAG]})
    records = log.records()
    assert_secret_records(records, sent)
    tagged = [r for r in frames(records, leg="charger_to_proxy", type="CALL") if "idTag" in r["payload"]]
    assert [r["msg"]["action"] for r in tagged] == ["Authorize", "StartTransaction"]
    for record in tagged:
        assert record["payload"]["idTag"] == pseudonym(TAG), "the same token, the same pseudonym in every record"
        assert record["redacted"] == ["idTag"]
    refused = events(records, "refused")
    assert [(r["status"], r["charger"]) for r in refused] == [(401, "CPSECRET")]
    assert_verified(verify(h.binary, log.path, log.public_key))


async def test_payloads_none_keeps_only_the_envelope(h):
    log = audit_dir(h)
    sent = await secrets_session(h, log, "none")
    assert_no_secret_in(raw_log_bytes(log), {**SECRETS, "the idTag": [TAG], "its pseudonym": [pseudonym(TAG)]})
    records = log.records()
    assert records[0]["payloads"] == "none"
    # Authorize, StartTransaction, GetConfiguration: 4 legs each; ChangeConfiguration(AuthorizationKey): 2
    assert len(frames(records)) == 14
    for record in frames(records):
        assert not {"payload", "details", "redacted"} & set(record), f"a payload kept in none mode: {record}"
        assert set(record["msg"]) >= {"type", "id", "action"}
    assert received(records, "charger_to_proxy", sent["authorize"][1], "CALL")["msg"]["action"] == "Authorize"
    assert_verified(verify(h.binary, log.path, log.public_key))


async def test_payloads_full_keeps_tokens_but_never_secrets(h):
    log = audit_dir(h)
    sent = await secrets_session(h, log, "full")
    files = raw_log_bytes(log)
    assert_no_secret_in(files, SECRETS)
    records = log.records()
    authorize = received(records, "charger_to_proxy", sent["authorize"][1], "CALL")
    assert authorize["payload"] == {"idTag": TAG} and "redacted" not in authorize
    assert any(TAG.encode() in data for data in files.values())
    assert_secret_records(records, sent)
    assert_verified(verify(h.binary, log.path, log.public_key))


# ---------------------------------------------------------------------------
# malformed input: recorded as such (hashed), and the proxy's refusal paired with it
# ---------------------------------------------------------------------------

# frame text, the message id the proxy's CALLERROR carries (None: unreadable, "-1")
MALFORMED = [
    (f"not json at all, {TAG}", None),
    ('[2,"p1","Heartbeat",[]]', "p1"),
    ('[2,"a1","Heartbeat"]', "a1"),
    ('[7,"u1","Heartbeat",{}]', "u1"),
]


async def malformed_session(h, log: AuditDir) -> list:
    """A raw charger sends each MALFORMED frame; returns the CALLERROR it got for each. The proxy is stopped."""
    proxy, csms = await h.pair(V16, raw=True, overrides=log.overrides())
    ws = await h.raw_charger(proxy, "CPMALFORMED", [V16])
    await csms.next_session()
    answers = []
    for text, message_id in MALFORMED:
        await ws.send(text)
        answer = await recv_json(ws)
        assert answer[0] == 4 and answer[1] == (message_id or "-1"), answer
        answers.append(answer)
    await stop(proxy)
    return answers


async def test_malformed_frames_are_recorded_hashed_with_the_refusal_sent_back(h):
    log = audit_dir(h)
    answers = await malformed_session(h, log)
    records = log.records()
    malformed = frames(records, decision="malformed")
    refusals = frames(records, decision="refused")
    assert len(malformed) == len(refusals) == len(MALFORMED)
    for (text, _), answer, record, refusal in zip(MALFORMED, answers, malformed, refusals):
        assert record["leg"] == "charger_to_proxy" and record["reason"], record
        assert record["bytes"] == len(text.encode())
        assert record["raw"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest(), "redacted: the bytes' digest"
        assert refusal["leg"] == "proxy_to_charger" and refusal["seq"] > record["seq"]
        assert refusal["msg"] == {"type": "CALLERROR", "id": answer[1], "errorCode": answer[2],
                                  "description": answer[3]}, "the CALLERROR recorded is the one the charger got"
        assert refusal["cause"]["leg"] == "charger_to_proxy"
    assert_no_secret_in(raw_log_bytes(log), {"the idTag inside a malformed frame": [TAG]})


async def test_refusal_of_a_malformed_frame_with_a_readable_id_is_paired_with_it_by_cause(h):
    """The contract pairs an outbound record with its inbound one by cause = (leg, msg.id): a frame whose message
    id the proxy could read (and answered with) must be findable by that id."""
    log = audit_dir(h)
    await malformed_session(h, log)
    records = log.records()
    unpaired = []
    for refusal in frames(records, decision="refused"):
        cause = refusal["cause"]
        if cause["id"] == "-1":
            continue  # the id of text that is not JSON cannot be read
        inbound = [r for r in frames(records, leg=cause["leg"]) if r["msg"].get("id") == cause["id"]]
        if len(inbound) != 1:
            unpaired.append(f"CALLERROR {cause['id']!r}: cause {cause} matches {len(inbound)} inbound record(s)")
    assert not unpaired, "\n".join(unpaired)


# ---------------------------------------------------------------------------
# tampering with a finished log: each kind is found, at the right file:line
# ---------------------------------------------------------------------------

SMALL_SEGMENTS = {"rotate": {"maxBytes": 4096}}


async def finished_log(h, name: str = "log", identity: str = "CPTAMPER", calls: int = 14) -> AuditDir:
    """A log of several segments (rotate.maxBytes 4096) from a proxy stopped with SIGTERM; verify passes on it."""
    log = audit_dir(h, name)
    proxy, csms = await h.pair(V16, overrides=log.overrides(**SMALL_SEGMENTS))
    ws = await h.raw_charger(proxy, identity, [V16])
    await csms.next_session()
    for n in range(calls):
        await ws.send(json.dumps([2, f"hb-{n}", "Heartbeat", {}]))
        assert (await recv_json(ws))[:2] == [3, f"hb-{n}"]
    await stop(proxy)
    assert len(log.segments()) >= 4, f"expected several segments, got {log.segments()}"
    assert_verified(verify(h.binary, log.path, log.public_key))
    return log


def middle_line(log: AuditDir, segment: int = 1):
    """A record line inside a segment that is not the last: not its first line, not its checkpoint."""
    path = log.segments()[segment]
    lines = [line for line in log.lines() if line.path == path]
    assert len(lines) >= 4, f"{path} is too short to tamper with in the middle"
    line = lines[len(lines) // 2]
    assert line.record["event"] != "checkpoint" and line.number < len(lines)
    return line, lines


def rewrite(path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode())


async def test_editing_one_byte_of_a_record_is_found_at_its_line(h):
    log = await finished_log(h)
    line, lines = middle_line(log)
    data = bytearray(line.path.read_bytes())
    offset = sum(len(l.text.encode()) + 1 for l in lines[:line.number - 1]) + line.text.index('"ts":"') + 20
    data[offset] = ord("0") if data[offset] != ord("0") else ord("1")  # one digit of the record's time
    line.path.write_bytes(bytes(data))
    assert_broken_at(verify(h.binary, log.path, log.public_key), line.where, "hash does not match")


async def test_deleting_a_line_is_found_where_it_was(h):
    log = await finished_log(h)
    line, lines = middle_line(log)
    rewrite(line.path, [l.text for l in lines if l.number != line.number])
    assert_broken_at(verify(h.binary, log.path, log.public_key), line.where, r"seq \d+ where \d+ was expected")


async def test_swapping_two_lines_is_found_at_the_first(h):
    log = await finished_log(h)
    line, lines = middle_line(log)
    texts = [l.text for l in lines]
    i = line.number - 1
    texts[i], texts[i + 1] = texts[i + 1], texts[i]
    rewrite(line.path, texts)
    assert_broken_at(verify(h.binary, log.path, log.public_key), line.where, r"seq \d+ where \d+ was expected")


async def test_truncating_a_segment_in_the_middle_of_a_line_is_found_at_that_line(h):
    log = await finished_log(h)
    line, lines = middle_line(log)
    keep = sum(len(l.text.encode()) + 1 for l in lines[:line.number - 1]) + len(line.text.encode()) // 2
    with open(line.path, "r+b") as f:
        f.truncate(keep)
    assert_broken_at(verify(h.binary, log.path, log.public_key), line.where, "incomplete line|truncated")


async def test_replacing_a_segment_with_one_of_another_log_is_found_at_its_first_line(h):
    log = await finished_log(h, "log")
    other = await finished_log(h, "other", identity="CPOTHER")
    victim = log.segments()[1]
    shutil.copyfile(other.segments()[1], victim)
    assert_broken_at(verify(h.binary, log.path, log.public_key), f"{victim}:1",
                     "prev does not match|file name says|seq")


async def test_removing_a_whole_segment_is_found_at_the_next_one(h):
    log = await finished_log(h)
    segments = log.segments()
    segments[1].unlink()
    assert_broken_at(verify(h.binary, log.path, log.public_key), f"{segments[2]}:1", "file name says|seq|prev")


async def test_rewriting_the_chain_consistently_leaves_only_the_signature_wrong(h):
    """An attacker edits a record and recomputes every hash, prev, checkpoint head, count and Merkle root after it:
    only the checkpoint signatures can tell, at the first checkpoint after the edit."""
    log = await finished_log(h)
    line, _ = middle_line(log)
    per_segment = [[l.text for l in log.lines() if l.path == p] for p in log.segments()]
    edited = per_segment[1][line.number - 1]
    ts = json.loads(edited)["ts"]
    per_segment[1][line.number - 1] = edited.replace(f'"ts":"{ts}"', f'"ts":"{ts[:2]}00{ts[4:]}"')  # backdated
    forged = rechain(per_segment, "0" * 64)
    assert forged[0] == per_segment[0], "lines before the edit are rewritten identically"
    for path, lines in zip(log.segments(), forged):
        rewrite(path, lines)

    first_checkpoint = next(l for l in log.lines()
                            if l.path == line.path and l.number > line.number and l.record["event"] == "checkpoint")
    assert_broken_at(verify(h.binary, log.path, log.public_key), first_checkpoint.where,
                     "signature does not verify")
    # without the public key nothing else is wrong: the rewrite was consistent
    assert_verified(verify(h.binary, log.path))


async def test_verifying_with_another_public_key_fails_at_the_first_checkpoint(h):
    log = await finished_log(h)
    other_key = h.tmp_path / "other-signing.key"
    made = audit_cli(h.binary, "keygen", "--out", str(other_key))
    assert made.returncode == 0, made.stderr
    first_checkpoint = next(l for l in log.lines() if l.record["event"] == "checkpoint")
    assert_broken_at(verify(h.binary, log.path, other_key.with_name("other-signing.key.pub")),
                     first_checkpoint.where, "signed with key|signature")


# ---------------------------------------------------------------------------
# SIGKILL under traffic: what is on disk verifies; a restart continues the chain
# ---------------------------------------------------------------------------


async def heartbeat_loop(proxy, identity: str, answered: list, stop_after: int | None = None) -> None:
    """A raw charger sending Heartbeats one after the other until the link drops (or ``stop_after`` answers)."""
    ws = await connect_raw(proxy.url(identity), [V16])
    try:
        n = 0
        while stop_after is None or n < stop_after:
            await ws.send(json.dumps([2, f"{identity}-{n}", "Heartbeat", {}]))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer[:2] == [3, f"{identity}-{n}"], answer
            answered.append(answer[1])
            n += 1
    except ConnectionClosed:
        pass
    finally:
        await ws.close()


async def test_sigkill_under_traffic_leaves_a_log_that_verifies_and_a_restart_continues_it(h):
    log = audit_dir(h)
    proxy, csms = await h.pair(V16, overrides=log.overrides(**SMALL_SEGMENTS))
    answered: list = []
    chargers = [asyncio.create_task(heartbeat_loop(proxy, f"CPKILL{i}", answered)) for i in range(3)]
    await wait_until(lambda: len(answered) >= 150, 20, "150 answered Heartbeats")
    proxy.send_signal(signal.SIGKILL)
    assert await proxy.wait_exit(5) == -signal.SIGKILL
    await asyncio.gather(*chargers)

    first_run = log.lines()
    assert frames([line.record for line in first_run]), "records of the first run's frames are on disk"
    assert_verified(verify(h.binary, log.path, log.public_key))
    # a write interrupted by the crash: a torn last line is allowed, and said
    last = log.segments()[-1]
    with open(last, "ab") as f:
        f.write(b'{"event":"frame","hash":"00')
    torn = verify(h.binary, log.path, log.public_key)
    assert_verified(torn)
    assert f"note: {last}:" in torn.stderr and "torn last line" in torn.stderr, torn.stderr

    restarted = await h.restart(proxy)
    await asyncio.gather(*(heartbeat_loop(restarted, f"CPAGAIN{i}", answered, stop_after=10) for i in range(2)))
    await stop(restarted)

    records = log.records()
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1)), "seq goes on by one, no duplicate"
    assert records[: len(first_run)] == [line.record for line in first_run], "the first run's records are kept"
    second_start = records[len(first_run)]
    assert second_start["event"] == "start" and second_start["pid"] == restarted.proc.pid
    assert second_start["prev"] == first_run[-1].record["hash"], "the chain goes on from the last complete record"
    assert [r["event"] for r in records[-2:]] == ["stop", "checkpoint"]
    for i in range(2):
        assert len(frames(records[len(first_run):], charger=f"CPAGAIN{i}")) == 4 * 10
    result = verify(h.binary, log.path, log.public_key)
    assert_verified(result)
    assert "torn" not in result.stderr, "the restarted proxy cut the torn line off"


# ---------------------------------------------------------------------------
# admission refusals and TLS handshake failures are records
# ---------------------------------------------------------------------------


async def test_admission_refusals_are_recorded_with_status_rule_and_remote(h):
    log = audit_dir(h)
    entry = charger_entry("CPADMIT", 1, password_hash=hash_password(h.binary, CHARGER_PW))
    env = await start_secure_env(h, None, 1, [entry],
                                 overrides={"duplicateIdentity": "reject", **log.overrides()})
    assert await env.status("CPADMIT", WRONG_PW) == 401
    ws = await env.connect("CPADMIT", CHARGER_PW)
    await env.csms.next_session()
    assert await env.status("CPADMIT", CHARGER_PW) == 409
    await stop(env.proxy)

    records = log.records()
    refused = events(records, "refused")
    assert [(r["status"], r["rule"], r["charger"]) for r in refused] == [
        (401, "auth_wrong_password", "CPADMIT"), (409, "duplicate", "CPADMIT")]
    (connect,) = events(records, "connect")
    assert connect["remote"]["address"] == local_address(ws)
    for record in refused:
        assert record["transport"] == "websocket" and record["reason"]
        assert record["remote"]["listener"] == "secure" and record["remote"]["profile"] == 1
        assert re.fullmatch(r"127\.0\.0\.1:\d+", record["remote"]["address"])
        assert record["remote"]["address"] != connect["remote"]["address"], "the refused connection's own address"
    assert refused[0]["seq"] < connect["seq"] < refused[1]["seq"]
    assert_no_secret_in(raw_log_bytes(log), {"a password": secret_forms("CPADMIT", CHARGER_PW) + [WRONG_PW]})


async def plaintext_to_tls_port(port: int) -> str:
    """A plain-text WebSocket upgrade sent to a TLS port; returns the client's address (host:port). The proxy must
    close the connection."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    host, local_port = writer.get_extra_info("sockname")[:2]
    writer.write(f"GET /ocpp/CPPLAIN HTTP/1.1\r\nHost: {LOCALHOST}:{port}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode())
    await writer.drain()
    try:
        while await asyncio.wait_for(reader.read(4096), 8):
            pass
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
    return f"{host}:{local_port}"


async def test_tls_handshake_failure_is_recorded_with_the_remote_address(h):
    log = audit_dir(h)
    env = await start_secure_env(h, None, 2, [charger_entry("CPTLS", 2, password=CHARGER_PW)],
                                 tls=self_signed_tls(h.tmp_path / "tls"), overrides=log.overrides())
    address = await plaintext_to_tls_port(env.port)
    await stop(env.proxy)

    records = log.records()
    (failure,) = events(records, "tls_failure")
    assert failure["remote"] == {"address": address, "listener": "secure", "profile": 2}
    assert failure["reason"]
    assert not events(records, "connect") and not events(records, "refused")


# ---------------------------------------------------------------------------
# rotation, indexes, query
# ---------------------------------------------------------------------------


def micros(ts: str) -> int:
    """An RFC 3339 time as microseconds since the epoch."""
    when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def with_offset(ts: str, hours: int) -> str:
    """The same instant written with a ``+hh:00`` offset."""
    when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    local = when.astimezone(timezone(timedelta(hours=hours)))
    return local.isoformat(timespec="microseconds")


async def two_chargers_log(h) -> AuditDir:
    """CPQA boots and authorizes, then leaves; CPQB does the same, with more Heartbeats: many small segments, the
    later ones without CPQA."""
    log = audit_dir(h)
    proxy, csms = await h.pair(V16, overrides=log.overrides(**SMALL_SEGMENTS))
    for identity, heartbeats in (("CPQA", 3), ("CPQB", 12)):
        charger = await h.charger(proxy, identity, V16)
        session = await csms.next_session()
        await charger.cp.call(call16.BootNotification(charge_point_model="Q", charge_point_vendor="v"), suppress=False)
        await charger.cp.call(call16.Authorize(id_tag=f"TAG-{identity}"), suppress=False)
        for _ in range(heartbeats):
            await charger.cp.call(call16.Heartbeat(), suppress=False)
        await charger.close()
        await session.wait_closed()
    await stop(proxy)
    return log


async def test_query_filters_return_exactly_the_matching_records_across_rotated_segments(h):
    log = await two_chargers_log(h)
    lines = log.lines()
    segments = log.segments()
    assert len(segments) >= 4
    a_segments = {line.path for line in lines if line.record.get("charger") == "CPQA"}
    assert len(a_segments) < len(segments), "later segments hold no CPQA record (their index lets query skip them)"

    def expect(predicate) -> list[str]:
        chosen = [line.text for line in lines if predicate(line.record)]
        assert chosen, "a filter that matches nothing proves little"
        return chosen

    binary, d = h.binary, log.path
    assert query(binary, d) == [line.text for line in lines]
    assert query(binary, d, "--charger", "CPQA") == expect(lambda r: r.get("charger") == "CPQA")
    assert query(binary, d, "--action", "Authorize") == expect(lambda r: r.get("msg", {}).get("action") == "Authorize")
    assert len(query(binary, d, "--action", "Authorize")) == 8, "two Authorize exchanges, four legs each"
    assert query(binary, d, "--charger", "CPQB", "--action", "Heartbeat") == expect(
        lambda r: r.get("charger") == "CPQB" and r.get("msg", {}).get("action") == "Heartbeat")
    assert query(binary, d, "--event", "connect") == expect(lambda r: r["event"] == "connect")
    session_a = next(line.record["session"] for line in lines if line.record["event"] == "connect")
    assert query(binary, d, "--session", session_a) == expect(lambda r: r.get("session") == session_a)
    assert query(binary, d, "--session", session_a) == query(binary, d, "--charger", "CPQA")
    assert query(binary, d, "--charger", "CPNOBODY") == []

    since, until = lines[len(lines) // 3].record["ts"], lines[2 * len(lines) // 3].record["ts"]
    window = expect(lambda r: micros(since) <= micros(r["ts"]) < micros(until))
    assert query(binary, d, "--since", since, "--until", until) == window
    assert query(binary, d, "--since", with_offset(since, 2), "--until", with_offset(until, -5)) == window, (
        "times with an offset denote the same instants")
    assert query(binary, d, "--since", since) == expect(lambda r: micros(r["ts"]) >= micros(since))

    # each closed segment has its index: seqs, times, chargers
    for segment in segments:
        index = json.loads(segment.with_suffix(".idx").read_text())
        records = [line.record for line in lines if line.path == segment]
        assert index["firstSeq"] == records[0]["seq"] and index["lastSeq"] == records[-1]["seq"]
        assert index["bytes"] == segment.stat().st_size
        assert sorted(index["chargers"]) == sorted({r["charger"] for r in records if "charger" in r})
        assert micros(index["firstTs"]) == min(micros(r["ts"]) for r in records)
        assert micros(index["lastTs"]) == max(micros(r["ts"]) for r in records)


async def test_query_rejects_a_time_that_is_not_rfc_3339(h):
    log = await finished_log(h)
    result = audit_cli(h.binary, "query", "--dir", str(log.path), "--since", "yesterday")
    assert result.returncode != 0 and not result.stdout
    assert "--since" in result.stderr


# ---------------------------------------------------------------------------
# export for SIEMs: jsonl, OCSF, RFC 5424 syslog
# ---------------------------------------------------------------------------

# record event -> (class_uid, class_name, category_uid, activity_id), as AuditExporter.ocsfClasses promises
OCSF_CLASSES = {
    "frame": (6003, "API Activity", 6, 99),
    "connect": (4001, "Network Activity", 4, 1),
    "disconnect": (4001, "Network Activity", 4, 2),
    "start": (6002, "Application Lifecycle", 6, 3),
    "stop": (6002, "Application Lifecycle", 6, 4),
    "checkpoint": (0, "Base Event", 0, 99),
}


async def export_log(h) -> tuple[AuditDir, str]:
    """A session with a CALLERROR passed on (the charger has no ClearCache handler), and a refused duplicate."""
    log = audit_dir(h)
    proxy, csms = await h.pair(V16, overrides={"duplicateIdentity": "reject", **log.overrides()})
    charger = await h.charger(proxy, "CPEXPORT", V16)
    session = await csms.next_session()
    await charger.cp.call(call16.BootNotification(charge_point_model="E", charge_point_vendor="v"), suppress=False)
    await charger.cp.call(call16.Authorize(id_tag=TAG), suppress=False)
    with pytest.raises(OcppNotImplemented):  # the charger has no ClearCache handler
        await session.cp.call(call16.ClearCache(), suppress=False)
    with pytest.raises(InvalidStatus):
        await connect_raw(proxy.url("CPEXPORT"), [V16])
    await stop(proxy)
    return log, csms.url


async def test_export_jsonl_is_the_records_as_written(h):
    log, _ = await export_log(h)
    assert export(h.binary, log.path, "jsonl") == [line.text for line in log.lines()]
    assert export(h.binary, log.path, "jsonl", "--event", "frame") == [
        line.text for line in log.lines() if line.record["event"] == "frame"]


async def test_export_ocsf_events_carry_the_class_fields_of_their_record(h):
    log, _ = await export_log(h)
    records = log.records()
    events_out = [json.loads(line) for line in export(h.binary, log.path, "ocsf")]
    assert len(events_out) == len(records)
    for record, event in zip(records, events_out):
        if record["event"] not in OCSF_CLASSES:
            continue
        class_uid, class_name, category_uid, activity_id = OCSF_CLASSES[record["event"]]
        where = f"record {record['seq']} ({record['event']})"
        assert (event["class_uid"], event["class_name"], event["category_uid"], event["activity_id"]) == (
            class_uid, class_name, category_uid, activity_id), where
        assert event["type_uid"] == class_uid * 100 + activity_id, where
        assert event["activity_name"] and event["category_name"], where
        assert event["time"] == micros(record["ts"]) // 1000, f"{where}: time is the record's ts in epoch ms"
        assert event["metadata"]["product"] == {"name": "ocpp-proxy", "vendor_name": "ocpp-proxy"}, where
        assert event["metadata"]["version"] == "1.3.0", where
        assert (event["metadata"]["uid"], event["metadata"]["sequence"], event["metadata"]["original_time"]) == (
            record["hash"], record["seq"], record["ts"]), where
        assert event["severity_id"] in (1, 3) and event["status_id"] in (0, 1, 2), where
        if record["event"] == "frame":
            assert event["api"]["operation"] == record["msg"]["action"], where
            assert event["api"]["request"] == {"uid": record["msg"]["id"]}, where
            assert event["actor"] == {"app_name": "ocpp-proxy", "session": {"uid": record["session"]}}, where
            assert event["status_detail"] == record["decision"], where
            assert record["msg"]["type"] in event["activity_name"], where
        if record["event"] in ("connect", "disconnect"):
            host, port = record["remote"]["address"].rsplit(":", 1)
            assert event["src_endpoint"] == {"uid": record["charger"], "ip": host, "port": int(port)}, where
            assert event["connection_info"] == {"uid": record["session"]}, where


async def test_export_ocsf_frame_endpoints_follow_the_leg(h):
    """src_endpoint/dst_endpoint of an API Activity come from the frame's leg: charger, proxy or CSMS."""
    log, upstream = await export_log(h)
    records = log.records()
    events_out = [json.loads(line) for line in export(h.binary, log.path, "ocsf")]
    charger = {"uid": "CPEXPORT", "ip": LOCALHOST}
    proxy = {"svc_name": "ocpp-proxy", "hostname": NODE}
    csms = {"name": upstream}
    ends = {"charger_to_proxy": (charger, proxy), "proxy_to_csms": (proxy, csms),
            "csms_to_proxy": (csms, proxy), "proxy_to_charger": (proxy, charger)}
    problems = []
    for record, event in zip(records, events_out):
        if record["event"] != "frame":
            continue
        src, dst = ends[record["leg"]]
        got = ({k: v for k, v in event["src_endpoint"].items() if k != "port"},
               {k: v for k, v in event["dst_endpoint"].items() if k != "port"})
        if got != (src, dst):
            problems.append(f"{record['leg']}: src {event['src_endpoint']}, dst {event['dst_endpoint']}")
    assert not problems, f"{len(problems)} frame events with endpoints that do not follow the leg:\n" + "\n".join(
        sorted(set(problems)))


async def test_export_ocsf_admission_refusal_is_an_authentication_failure(h):
    """A refused admission is an OCSF Authentication (3002) logon that failed, by the charger it claimed to be."""
    log, _ = await export_log(h)
    records = log.records()
    events_out = [json.loads(line) for line in export(h.binary, log.path, "ocsf")]
    (index,) = [i for i, r in enumerate(records) if r["event"] == "refused"]
    event = events_out[index]
    assert (event["class_uid"], event["category_uid"], event["activity_id"]) == (3002, 3, 1), event
    assert event["user"]["uid"] == "CPEXPORT", event
    assert (event["status_id"], event["status"]) == (2, "Failure"), event


async def test_export_ocsf_marks_a_callerror_as_a_failure(h):
    log, _ = await export_log(h)
    records = log.records()
    events_out = [json.loads(line) for line in export(h.binary, log.path, "ocsf")]
    errors = [(r, e) for r, e in zip(records, events_out) if r["event"] == "frame" and r["msg"]["type"] == "CALLERROR"]
    assert len(errors) == 2, "the charger's NotImplemented, on its way in and passed on"
    for record, event in errors:
        assert (event["status_id"], event["severity_id"]) == (2, 3), f"{record['leg']}: {event}"


SYSLOG = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|\[(?:[^\]\\\\]|\\\\.)*\]) (?P<msg>.*)$"
)
SD_PARAM = re.compile(r' ([A-Za-z]+)="((?:[^"\\\\\]]|\\\\.)*)"')


async def test_export_syslog_lines_are_rfc_5424_with_the_record_as_message(h):
    log, _ = await export_log(h)
    lines = log.lines()
    out = export(h.binary, log.path, "syslog")
    ocsf = [json.loads(line) for line in export(h.binary, log.path, "ocsf")]
    assert len(out) == len(lines) == len(ocsf)
    for line, text, event in zip(lines, out, ocsf):
        record = line.record
        m = SYSLOG.match(text)
        assert m, f"not an RFC 5424 line: {text[:160]!r}"
        # facility 13 (log audit); severity 4 (warning) for what the OCSF export calls a failure, else 6
        assert int(m["pri"]) == 13 * 8 + (4 if event["status_id"] == 2 else 6), (record["seq"], m["pri"])
        assert (m["ts"], m["host"], m["app"], m["procid"], m["msgid"]) == (
            record["ts"], NODE, "ocpp-proxy", "-", record["event"])
        assert m["msg"] == line.text, "MSG is the record's line"
        assert m["sd"].startswith("[ocpp@32473")
        params = dict(SD_PARAM.findall(m["sd"]))
        assert params["seq"] == str(record["seq"])
        for name in ("charger", "session", "leg"):
            assert params.get(name) == record.get(name), name
        assert params.get("action") == record.get("msg", {}).get("action")


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------


async def test_metrics_count_what_is_on_disk_and_the_checkpoint_age(h):
    log = audit_dir(h)
    proxy, csms = await h.pair(V16, overrides=log.overrides(**SMALL_SEGMENTS))
    charger = await h.charger(proxy, "CPMETRICS", V16)
    await csms.next_session()
    for _ in range(3):
        await charger.cp.call(call16.Heartbeat(), suppress=False)

    def checkpointed() -> bool:
        lines = log.lines()
        return bool(lines) and lines[-1].record["event"] == "checkpoint" and len(frames(log.records())) == 12

    await wait_until(checkpointed, 5, "a checkpoint after the Heartbeats (checkpointInterval 1s)")
    lines = log.lines()
    assert len(log.segments()) >= 2, "a rotation happened"
    on_disk = (len(lines), sum(p.stat().st_size for p in log.segments()))

    deadline = time.monotonic() + 3  # the counters follow the commit that wrote the checkpoint
    while True:
        samples = await proxy.metrics()
        counted = (metric_value(samples, "ocpp_proxy_audit_records_total"),
                   metric_value(samples, "ocpp_proxy_audit_bytes_total"))
        if counted == on_disk or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    names = {s.name for s in samples}
    assert metric_value(samples, "ocpp_proxy_audit_records_total") > 0
    assert "ocpp_proxy_audit_last_checkpoint_age_seconds" in names
    # no record since the checkpoint: no newer checkpoint, so its age is the time since its ts
    written = micros(lines[-1].record["ts"]) / 1e6
    age = metric_value(samples, "ocpp_proxy_audit_last_checkpoint_age_seconds")
    assert abs(age - (time.time() - written)) < 1.5, f"last checkpoint age {age}s, written {time.time() - written}s ago"
    last = metric_value(samples, "ocpp_proxy_audit_last_checkpoint_timestamp_seconds")
    assert abs(last - written) < 1.5, "the timestamp of the last checkpoint written"
    assert metric_value(samples, "ocpp_proxy_audit_backpressure") == 0
    assert metric_value(samples, "ocpp_proxy_audit_dropped_records_total") == 0
    assert metric_value(samples, "ocpp_proxy_audit_write_failures_total") == 0
    assert counted == on_disk, (
        'records_total ("checkpoints included") and bytes_total should count every record and byte on disk')


# ---------------------------------------------------------------------------
# the disk refuses writes (a full disk, made with RLIMIT_FSIZE): onBackpressure refuse-new and drop-and-count
# ---------------------------------------------------------------------------


def xfsz_ignoring_wrapper(h) -> Path:
    """An executable that execs the proxy with SIGXFSZ ignored (an ignored signal stays ignored across exec), so
    that a write past RLIMIT_FSIZE fails with EFBIG instead of killing the process: the proxy then sees what a full
    disk looks like to it, a failing write."""
    wrapper = h.tmp_path / "ocpp-proxy-efbig"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"os.execv({str(h.binary)!r}, [{str(h.binary)!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    return wrapper


async def proxy_on_a_disk_that_fills(h, log: AuditDir, **audit_options):
    """A proxy (started through ``xfsz_ignoring_wrapper``, warnings only on stderr) and its CSMS, with one charger
    CPFULL whose first Heartbeat is on disk; returns (proxy, csms, charger)."""
    csms = await h.csms(V16)
    config = h.config(csms.url, V16, overrides={"logging": {"level": "warning", "format": "text"},
                                                 **log.overrides(**audit_options)})
    proxy = await start_proxy(xfsz_ignoring_wrapper(h), h.tmp_path / "proxy", config, started=h.proxies)
    charger = await h.charger(proxy, "CPFULL", V16)
    await csms.next_session()
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    await wait_until(lambda: len(frames(log.records())) == 4, 5, "the first Heartbeat's records on disk")
    return proxy, csms, charger


def disk_full(proxy, log: AuditDir) -> None:
    """No file of the proxy may grow past the current segment's size and a few bytes (a soft RLIMIT_FSIZE)."""
    limit = log.segments()[-1].stat().st_size + 100
    resource.prlimit(proxy.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def disk_has_room(proxy) -> None:
    resource.prlimit(proxy.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


async def audit_metric(proxy, name: str) -> float:
    return metric_value(await proxy.metrics(), name)


async def backpressure_off(proxy) -> bool:
    return await audit_metric(proxy, "ocpp_proxy_audit_backpressure") == 0


async def test_failing_audit_writes_refuse_new_chargers_and_lose_nothing_once_writes_succeed(h):
    log = audit_dir(h)
    proxy, csms, charger = await proxy_on_a_disk_that_fills(h, log, onBackpressure="refuse-new")
    disk_full(proxy, log)
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    await wait_until(lambda: audit_metric(proxy, "ocpp_proxy_audit_backpressure"), 5,
                     "ocpp_proxy_audit_backpressure 1 after a failed write")
    with pytest.raises(InvalidStatus) as refused:
        await connect_raw(proxy.url("CPLATE"), [V16])
    assert refused.value.response.status_code == 503
    for _ in range(3):  # the charger already connected keeps working
        await charger.cp.call(call16.Heartbeat(), suppress=False)
    samples = await proxy.metrics()
    assert metric_value(samples, "ocpp_proxy_audit_write_failures_total") >= 1
    assert metric_value(samples, "ocpp_proxy_audit_refused_admissions_total") == 1

    # room again: the writer's retry succeeds, new chargers are admitted
    disk_has_room(proxy)
    await wait_until(lambda: backpressure_off(proxy), 5, "ocpp_proxy_audit_backpressure back to 0")
    late = await h.charger(proxy, "CPLATE", V16)
    await csms.next_session()
    await late.cp.call(call16.Heartbeat(), suppress=False)
    dropped = await audit_metric(proxy, "ocpp_proxy_audit_dropped_records_total")
    await stop(proxy)

    records = log.records()
    assert_verified(verify(h.binary, log.path, log.public_key))
    assert len(frames(records, charger="CPFULL", action="Heartbeat")) == 4 * 5, (
        "every frame of the connected charger is in the log, those of the outage included")
    assert not events(records, "gap") and dropped == 0
    (refusal,) = events(records, "refused")
    assert (refusal["status"], refusal["rule"], refusal["charger"]) == (503, "audit_backpressure", "CPLATE")
    assert len(frames(records, charger="CPLATE")) == 4


async def test_drop_and_count_never_blocks_and_every_dropped_record_is_counted_in_a_gap(h):
    log = audit_dir(h)
    proxy, _, charger = await proxy_on_a_disk_that_fills(h, log, onBackpressure="drop-and-count", queue=64)
    disk_full(proxy, log)
    heartbeats = 1
    # the writer retries once a second; until then the queue (64) fills and the rest is dropped
    while heartbeats < 400 and not await audit_metric(proxy, "ocpp_proxy_audit_dropped_records_total"):
        for _ in range(20):
            await charger.cp.call(call16.Heartbeat(), suppress=False)  # answered: never blocked
        heartbeats += 20
    assert await audit_metric(proxy, "ocpp_proxy_audit_dropped_records_total") > 0, f"{heartbeats} Heartbeats"
    disk_has_room(proxy)
    await wait_until(lambda: backpressure_off(proxy), 5, "ocpp_proxy_audit_backpressure back to 0")
    dropped = await audit_metric(proxy, "ocpp_proxy_audit_dropped_records_total")
    await stop(proxy)

    records = log.records()
    assert_verified(verify(h.binary, log.path, log.public_key))
    gaps = events(records, "gap")
    assert gaps and sum(g["dropped"] for g in gaps) == dropped, "the gap records say how many were dropped"
    kept = len(frames(records, charger="CPFULL", action="Heartbeat"))
    assert kept + dropped == 4 * heartbeats, "each frame record is either in the log or counted in a gap"


# ---------------------------------------------------------------------------
# configuration errors: one line naming the key
# ---------------------------------------------------------------------------


def audit_config(h, section: dict) -> Path:
    """A proxy configuration file with this ``audit:`` section (written, not started)."""
    path = h.tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(h.config("ws://127.0.0.1:9/ocpp", overrides={"audit": section}), sort_keys=False))
    return path


def assert_one_error_naming(result, key: str) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0 and len(errors) == 1, (
        f"expected a non-zero exit and one error line for {key}: exit {result.returncode}\nstderr:\n{result.stderr}")
    assert errors[0].startswith(f"error: {key}: "), f"the error line does not name {key}: {errors[0]!r}"


BAD_AUDIT = [
    ("payloads", {"payloads": "bogus"}, "audit.payloads"),
    ("rotate-max-bytes-too-small", {"rotate": {"maxBytes": 12}}, "audit.rotate.maxBytes"),
    ("on-backpressure", {"onBackpressure": "x"}, "audit.onBackpressure"),
    ("pseudonym-key-too-short", {"pseudonymKey": "short-key"}, "audit.pseudonymKey"),
    ("queue-too-small", {"queue": 10}, "audit.queue"),
    ("checkpoint-interval-zero", {"checkpointInterval": "0s"}, "audit.checkpointInterval"),
    ("unknown-key", {"payload": "full"}, "audit.payload"),
    ("both-pseudonym-keys", {"pseudonymKeyFile": "/tmp/audit-pseudonym.key"}, "audit.pseudonymKeyFile"),
]


@pytest.mark.parametrize("change,key", [c[1:] for c in BAD_AUDIT], ids=[c[0] for c in BAD_AUDIT])
def test_check_config_names_the_bad_audit_key(h, change, key):
    section = {**audit_dir(h).section(), **change}
    result = run_cli(h.binary, "check-config", "--config", str(audit_config(h, section)))
    assert_one_error_naming(result, key)


def test_check_config_requires_the_audit_dir(h):
    section = {k: v for k, v in audit_dir(h).section().items() if k != "dir"}
    result = run_cli(h.binary, "check-config", "--config", str(audit_config(h, section)))
    assert_one_error_naming(result, "audit.dir")


@pytest.mark.parametrize("key_file_mode,content,key", [
    (0o644, None, "audit.signingKey"),
    (0o600, "not a key\n", "audit.signingKey"),
], ids=["signing-key-readable-by-others", "signing-key-not-a-key"])
def test_serve_refuses_an_unusable_signing_key_naming_the_key(h, key_file_mode, content, key):
    log = audit_dir(h)
    log.base.mkdir(parents=True)
    made = audit_cli(h.binary, "keygen", "--out", str(log.signing_key))
    assert made.returncode == 0, made.stderr
    if content is not None:
        log.signing_key.write_text(content)
    log.signing_key.chmod(key_file_mode)
    result = run_cli(h.binary, "serve", "--config", str(audit_config(h, log.section())), timeout=20)
    assert_one_error_naming(result, key)
    assert not log.path.exists() or not log.segments(), "nothing written with a key that was refused"

# ---------------------------------------------------------------------------
# SOAP chargers: the same records, with transport soap
# ---------------------------------------------------------------------------


async def test_soap_charger_is_recorded_with_its_translation_and_transport(h):
    from soap_peers import V15, soap_proxy, soap_station

    log = audit_dir(h)
    proxy, csms = await soap_proxy(h, V16, versions=(V15,), overrides=log.overrides())
    station = await soap_station(h, proxy, V15, "SOAPAUDIT")
    boot = await station.call("BootNotification", chargePointVendor="ocpp-proxy-tests", chargePointModel="Legacy-S")
    assert boot["status"] == "Accepted"
    assert (await station.call("Authorize", idTag=TAG))["idTagInfo"]["status"] == "Accepted"
    await stop(proxy)

    assert_verified(verify(proxy.binary, log.path, log.public_key))
    records = log.records()
    connect = the_one_event(records, "connect")
    assert (connect["charger"], connect["transport"]) == ("SOAPAUDIT", "soap")
    for action in ("BootNotification", "Authorize"):
        original = [r for r in frames(records, leg="charger_to_proxy")
                    if r["msg"].get("action") == action and r["msg"]["type"] == "CALL"]
        assert len(original) == 1, f"one {action} from the SOAP charger"
        assert (original[0]["version"], original[0]["transport"]) == (V15, "soap")
        onward = caused_by(records, original[0])
        assert [(r["leg"], r["decision"], r["version"], r["msg"]["action"]) for r in onward] == [
            ("proxy_to_csms", "translated", V16, action)]
    authorize = next(r for r in frames(records, leg="charger_to_proxy") if r["msg"].get("action") == "Authorize")
    assert authorize["payload"]["idTag"] == pseudonym(TAG)
    answers = frames(records, leg="proxy_to_charger")
    assert [r["msg"]["action"] for r in answers] == ["BootNotification", "Authorize"]
    assert all(r["decision"] == "translated" and r["version"] == V15 for r in answers)


def the_one_event(records: list[dict], name: str) -> dict:
    found = events(records, name)
    assert len(found) == 1, f"expected one {name} record, got {found}"
    return found[0]
