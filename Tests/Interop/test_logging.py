"""Structured logs on stderr: --log-format json, --log-level, logging.* in the config."""

from __future__ import annotations

import json
from datetime import datetime

from harness import recv_json

V16 = "ocpp1.6"
LEVELS = ["trace", "debug", "info", "notice", "warning", "error", "critical"]


async def exercise_session(h, proxy, csms, identity):
    ws = await h.raw_charger(proxy, identity, [V16])
    session = await csms.next_session()
    await ws.send(json.dumps([2, "log-1", "Heartbeat", {}]))
    await session.recv_json()
    await session.send_json([3, "log-1", {"currentTime": "2026-01-01T00:00:00Z"}])
    await recv_json(ws)
    await ws.send("not json")  # something worth a warning
    await recv_json(ws)
    await ws.close()
    await session.wait_closed()


def json_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"stderr line is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"stderr line is not a JSON object: {line!r}"
        records.append(record)
    return records


async def test_json_log_format_writes_one_object_per_line_with_session_fields(h):
    proxy, csms = await h.pair(V16, raw=True, extra_args=["--log-format", "json", "--log-level", "debug"])
    await exercise_session(h, proxy, csms, "CPLOGJSON")
    assert await proxy.stop() == 0
    records = json_lines(proxy.stderr())
    assert records, "no log lines at debug level"
    for r in records:
        for key in ("timestamp", "level", "message"):
            assert key in r, f"log record without {key!r}: {r}"
        assert r["level"] in LEVELS, r
        datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
    session_lines = [r for r in records if r.get("identity") == "CPLOGJSON"]
    assert session_lines, "no log line carries identity=CPLOGJSON"
    assert any(r.get("version") == V16 for r in session_lines), "session lines should carry version"
    for r in session_lines:
        assert "version" in r, f"session line without version: {r}"


async def test_log_format_json_can_come_from_the_config_file(h):
    proxy, csms = await h.pair(V16, raw=True, overrides={"logging": {"format": "json", "level": "info"}})
    await exercise_session(h, proxy, csms, "CPLOGCFG")
    assert await proxy.stop() == 0
    records = json_lines(proxy.stderr())
    assert records, "nothing logged at info level for a whole session"


async def test_log_level_option_filters_lower_levels(h):
    proxy, csms = await h.pair(V16, raw=True, extra_args=["--log-format", "json", "--log-level", "warning"])
    await exercise_session(h, proxy, csms, "CPLOGWARN")
    assert await proxy.stop() == 0
    records = json_lines(proxy.stderr())
    too_low = [r for r in records if r["level"] in ("trace", "debug", "info", "notice")]
    assert not too_low, f"lines below warning were logged: {too_low[:5]}"


async def test_debug_level_logs_more_than_error_level(h):
    counts = {}
    for level in ("debug", "error"):
        proxy, csms = await h.pair(V16, raw=True, extra_args=["--log-format", "json", "--log-level", level])
        await exercise_session(h, proxy, csms, f"CPLVL{level}")
        assert await proxy.stop() == 0
        counts[level] = len(json_lines(proxy.stderr()))
    assert counts["debug"] > counts["error"], counts


async def test_text_log_format_is_not_json(h):
    proxy, csms = await h.pair(V16, raw=True, extra_args=["--log-format", "text", "--log-level", "info"])
    await exercise_session(h, proxy, csms, "CPLOGTEXT")
    assert await proxy.stop() == 0
    lines = [line for line in proxy.stderr().splitlines() if line.strip()]
    assert lines, "nothing logged at info level"
    assert any("CPLOGTEXT" in line for line in lines), "text logs should mention the charger identity"
    for line in lines:
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        assert not isinstance(parsed, dict), f"text format produced a JSON object: {line}"
