"""The rule files as an operator meets them: `rules check`, `serve` with a broken rule file, `translate`.

Broken rule directories are copies of the repository's Rules/ with one targeted edit. Edits keep every
other line where it was, so a reported ``file:line`` can be compared with the line that was changed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from harness import run_cli
from translation_support import (
    PAIR_FILE_NAME,
    RULES_DIR,
    TRANSLATE_NOW,
    V16,
    V201,
    ANY_DATETIME,
    IS_INT,
    IS_UUID,
    Instant,
    Opt,
    ANY,
    TranslateRun,
    assert_match,
    assert_schema_valid,
    enum_value_sets,
    only_call,
    only_result,
)

LOCATION = re.compile(r"(?P<file>[^\s:]*\.yaml):(?P<line>\d+)")


# ---------------------------------------------------------------------------
# editing a copy of the rules
# ---------------------------------------------------------------------------


def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "Rules"
    shutil.copytree(RULES_DIR, target)
    return target


def pair_file(rules: Path) -> Path:
    path = rules / PAIR_FILE_NAME
    assert path.exists(), f"no rule file {path}"
    return path


def mapping_entry(node: yaml.MappingNode, key: str):
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def remove_entry(text: str, parent: yaml.MappingNode, key: str) -> str:
    """Remove ``key`` and its value from the mapping ``parent``; every other line keeps its number."""
    entry = mapping_entry(parent, key)
    assert entry is not None, f"no key {key!r} in the mapping at line {parent.start_mark.line + 1}"
    k, v = entry
    start, end = k.start_mark.index, v.end_mark.index
    removed = text[start:end]
    newlines = removed.count("\n")
    replacement = "\n" * newlines + " " * v.end_mark.column if newlines else ""
    out = text[:start] + replacement + text[end:]
    if parent.flow_style:
        # drop the comma that separated the removed entry from a neighbour
        after = re.match(r"\s*,\s*", out[start + len(replacement):])
        if after:
            out = out[:start + len(replacement)] + out[start + len(replacement) + after.end():]
        else:
            before = re.search(r",\s*$", out[:start])
            if before:
                out = out[:before.start()] + out[start:]
    return out


def top_level(root: yaml.MappingNode, key: str) -> yaml.MappingNode:
    entry = mapping_entry(root, key)
    assert entry is not None and isinstance(entry[1], yaml.MappingNode), f"no mapping `{key}:` in the rule file"
    return entry[1]


def scalar_start_lines(node, needle: str) -> set[int]:
    """1-based start lines of scalar nodes under ``node`` whose text contains ``needle``."""
    found = set()
    if isinstance(node, yaml.ScalarNode):
        if needle in node.value:
            found.add(node.start_mark.line + 1)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            found |= scalar_start_lines(k, needle) | scalar_start_lines(v, needle)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found |= scalar_start_lines(item, needle)
    return found


def with_unknown_function(rules: Path) -> set[int]:
    """Replace the first ``tx.begin(`` with ``tx.bogus(``; return the line numbers that locate it."""
    path = pair_file(rules)
    text = path.read_text()
    index = text.find("tx.begin(")
    assert index >= 0, f"{PAIR_FILE_NAME} has no tx.begin( to break"
    text = text[:index] + "tx.bogus(" + text[index + len("tx.begin("):]
    path.write_text(text)
    lines = {text.count("\n", 0, index) + 1}
    return lines | scalar_start_lines(yaml.compose(text), "tx.bogus(")


def reported(output: str, needle: str) -> list[tuple[str, int, str]]:
    """(file, line, text) of every output line that has a ``file.yaml:N`` location and mentions ``needle``."""
    found = []
    for line in output.splitlines():
        m = LOCATION.search(line)
        if m and needle in line:
            found.append((m.group("file"), int(m.group("line")), line))
    return found


def rules_check(binary, rules: Path):
    result = run_cli(binary, "rules", "check", "--rules", str(rules))
    return result, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# rules check
# ---------------------------------------------------------------------------


def test_rules_check_accepts_the_repository_rules(proxy_binary):
    result, output = rules_check(proxy_binary, RULES_DIR)
    assert result.returncode == 0, f"rules check exited {result.returncode}:\n{output}"
    assert not LOCATION.search(output), f"rules check reported a problem in the repository rules:\n{output}"


def test_rules_check_reports_an_unknown_function_with_file_and_line(proxy_binary, tmp_path):
    rules = rules_copy(tmp_path)
    lines = with_unknown_function(rules)
    result, output = rules_check(proxy_binary, rules)
    assert result.returncode == 1, f"rules check exited {result.returncode}:\n{output}"
    hits = reported(output, "bogus")
    assert hits, f"no file:line problem naming tx.bogus:\n{output}"
    assert any(Path(f).name == PAIR_FILE_NAME and n in lines for f, n, _ in hits), (
        f"expected {PAIR_FILE_NAME}:{sorted(lines)}, got {[h[2] for h in hits]}")


def test_rules_check_reports_an_enum_map_that_is_no_longer_total(proxy_binary, tmp_path):
    rules = rules_copy(tmp_path)
    path = pair_file(rules)
    text = path.read_text()
    enums = top_level(yaml.compose(text), "enums")
    value_sets = set(enum_value_sets())
    candidates = []
    for k, v in enums.value:
        if not isinstance(v, yaml.MappingNode):
            continue
        keys = frozenset(key.value for key, _ in v.value)
        if "_" not in keys and keys in value_sets and len(keys) >= 2:
            candidates.append((k.value, v, keys))
    assert candidates, "no enum map without `_` that covers a whole schema enumeration: nothing to make partial"
    preferred = [c for c in candidates if "Finishing" in c[2]]  # 1.6 ChargePointStatus, when mapped this way
    name, node, keys = (preferred or sorted(candidates, key=lambda c: -len(c[2])))[0]
    missing = [key.value for key, _ in node.value][-1]
    path.write_text(remove_entry(text, node, missing))
    result, output = rules_check(proxy_binary, rules)
    assert result.returncode == 1, f"rules check exited {result.returncode} after removing {name}.{missing}:\n{output}"
    hits = reported(output, missing)
    assert hits, f"no file:line problem naming the unmapped value {missing!r} of enum map {name}:\n{output}"


@pytest.mark.parametrize("side,action", [("charger", "Heartbeat"), ("csms", "ClearCache")])
def test_rules_check_reports_an_action_without_a_rule(proxy_binary, tmp_path, side, action):
    rules = rules_copy(tmp_path)
    path = pair_file(rules)
    text = path.read_text()
    path.write_text(remove_entry(text, top_level(yaml.compose(text), side), action))
    assert mapping_entry(top_level(yaml.compose(path.read_text()), side), action) is None
    result, output = rules_check(proxy_binary, rules)
    assert result.returncode == 1, f"rules check exited {result.returncode} without a {action} rule:\n{output}"
    assert reported(output, action), f"no file:line problem naming the unmapped action {action}:\n{output}"


async def test_serve_refuses_to_start_with_a_broken_rule_file(h):
    rules = rules_copy(h.tmp_path)
    lines = with_unknown_function(rules)
    proxy = await h.proxy("ws://127.0.0.1:9/ocpp", V201, translate=True, rules=rules, wait_ready=False)
    rc = await proxy.wait_exit(15)
    assert rc == 2, f"serve exited with {rc} (None: still running){proxy.describe()}"
    hits = reported(proxy.stderr(), "bogus")
    assert any(Path(f).name == PAIR_FILE_NAME and n in lines for f, n, _ in hits), (
        f"expected an error line with {PAIR_FILE_NAME}:{sorted(lines)}{proxy.describe()}")


# ---------------------------------------------------------------------------
# translate
# ---------------------------------------------------------------------------

TAG = "04A1B2C3D4E5F6"


def test_translate_prints_the_translated_charger_call_toward_the_csms(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V16, V201)
    run.add([2, "c-1", "Authorize", {"idTag": TAG}])
    out = run.run()
    frame = only_call(out[0], "csms", "Authorize")
    assert frame[3] == {"idToken": {"idToken": TAG, "type": "ISO14443"}}


def test_translate_holds_a_second_charger_call_until_the_first_is_answered(proxy_binary, tmp_path):
    # OCPP-J 2.0.1 §4: no second CALL toward the CSMS while one awaits its answer
    run = TranslateRun(proxy_binary, tmp_path, V16, V201)
    run.add([2, "c-1", "Authorize", {"idTag": TAG}])
    run.add([2, "c-2", "Heartbeat", {}])
    out = run.run()
    first = only_call(out[0], "csms", "Authorize")
    assert out[1]["send"] == [], f"a second CALL went to the CSMS while the first was pending: {out[1]['send']}"
    run.add([3, first[1], {"idTokenInfo": {"status": "Accepted"}}])
    out = run.run()
    sends = out[2]["send"]
    assert sorted(e["to"] for e in sends) == ["charger", "csms"], sends
    assert [e["frame"] for e in sends if e["to"] == "charger"] == [[3, "c-1", {"idTagInfo": {"status": "Accepted"}}]]
    [heartbeat] = [e["frame"] for e in sends if e["to"] == "csms"]
    assert heartbeat[0] == 2 and heartbeat[2] == "Heartbeat" and heartbeat[3] == {}, heartbeat
    assert heartbeat[1] != first[1], "two CALLs toward the CSMS share a message id"


def test_translate_turns_the_csms_result_into_the_chargers_result_with_the_chargers_message_id(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V16, V201)
    run.add([2, "c-1", "Authorize", {"idTag": TAG}])
    translated = only_call(run.run()[0], "csms", "Authorize")
    run.add([3, translated[1], {"idTokenInfo": {"status": "NotAtThisTime"}}])
    out = run.run()
    assert only_result(out[1], "charger", "c-1") == {"idTagInfo": {"status": "Invalid"}}


def test_translate_from_2_0_1_to_1_6_sends_csms_calls_toward_the_charger(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V201, V16)
    run.add([2, "s-1", "Reset", {"type": "Immediate"}])
    translated = only_call(run.run()[0], "charger", "Reset")
    assert translated[3] == {"type": "Hard"}
    run.add([3, translated[1], {"status": "Accepted"}])
    out = run.run()
    assert only_result(out[1], "csms", "s-1") == {"status": "Accepted"}


def test_translate_now_option_is_the_time_filled_into_missing_timestamps(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V16, V201)
    run.add([2, "c-1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}])
    frame = only_call(run.run()[0], "csms", "StatusNotification")
    assert_match(frame[3], {"timestamp": Instant(TRANSLATE_NOW), "connectorStatus": "Available", "evseId": 1,
                            "connectorId": 1})


def test_translate_is_deterministic_for_message_ids_and_transaction_ids(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V16, V201)
    run.add([2, "c-1", "StartTransaction",
             {"connectorId": 1, "idTag": TAG, "meterStart": 0, "timestamp": "2026-01-01T10:00:00Z"}])
    first = run.run()
    frame = only_call(first[0], "csms", "TransactionEvent")
    assert_match(frame[3]["transactionInfo"], {"transactionId": IS_UUID, "chargingState": Opt(ANY)})
    # the transaction is kept when the CSMS acknowledges the Started event, not before
    assert not first[0]["state"], "StartTransaction wrote state before the CSMS acknowledged it"
    run.run()  # the same file again: TranslateRun compares every line's output with the first run's
    run.add([3, frame[1], {"idTokenInfo": {"status": "Accepted"}}])
    out = run.run()
    assert any("transaction" in change for change in out[1]["state"]), "the acknowledged start was not kept"
    result = only_result(out[1], "charger", "c-1")
    assert_match(result, {"transactionId": IS_INT, "idTagInfo": {"status": "Accepted"}})
    assert_schema_valid(V16, "StartTransaction", "response", result)


def test_translate_reports_every_frame_it_sends_with_its_direction(proxy_binary, tmp_path):
    run = TranslateRun(proxy_binary, tmp_path, V201, V16)
    run.add([2, "s-1", "GetBaseReport", {"requestId": 3, "reportBase": "ConfigurationInventory"}])
    out = run.run()
    to_csms = [e["frame"] for e in out[0]["send"] if e["to"] == "csms"]
    to_charger = [e["frame"] for e in out[0]["send"] if e["to"] == "charger"]
    assert to_csms == [[3, "s-1", {"status": "Accepted"}]], out[0]["send"]
    assert len(to_charger) == 1 and to_charger[0][0] == 2 and to_charger[0][2] == "GetConfiguration", out[0]["send"]
    run.add([3, to_charger[0][1], {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False,
                                                         "value": "300"}]}])
    out = run.run()
    notify = [e["frame"] for e in out[1]["send"]]
    assert len(notify) == 1 and out[1]["send"][0]["to"] == "csms", out[1]["send"]
    assert notify[0][0] == 2 and notify[0][2] == "NotifyReport", notify
    assert_schema_valid(V201, "NotifyReport", "request", notify[0][3])
    assert_match({k: notify[0][3].get(k) for k in ("requestId", "seqNo", "generatedAt")},
                 {"requestId": 3, "seqNo": 0, "generatedAt": ANY_DATETIME})
    assert notify[0][3].get("tbc", False) is False
