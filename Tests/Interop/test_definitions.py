"""Rules/definitions/*.yaml are what tools/gen_definitions.py makes of the `ocpp` package's JSON schemas.

The committed files are regenerated in memory and compared byte for byte, so neither a hand edit
nor a change of the generator or of the schemas can slip by unnoticed. No proxy binary needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import gen_definitions as gen  # noqa: E402

VERSIONS = ["ocpp1.6", "ocpp2.0.1"]


@pytest.fixture(scope="module", params=VERSIONS)
def generated(request) -> gen.Definitions:
    return gen.generate(request.param)


def load(version: str) -> dict:
    return yaml.safe_load(gen.output_path(version).read_text(encoding="utf-8"))


def test_the_schemas_come_from_ocpp_2_1_0():
    assert gen.ocpp_package_version() == "2.1.0", (
        "the definitions were generated from ocpp 2.1.0 (Tests/Interop/requirements.txt); "
        "after an upgrade regenerate them with tools/gen_definitions.py and review the diff")


def test_committed_files_equal_the_generated_ones(generated):
    path = gen.output_path(generated.version)
    assert path.exists(), f"{path} is missing: run .venv/bin/python tools/gen_definitions.py"
    committed = path.read_bytes()
    if committed != generated.text.encode("utf-8"):
        pytest.fail(gen.check_message(path.relative_to(REPO_ROOT), committed, generated.text),
                    pytrace=False)


def test_generation_is_deterministic(generated):
    assert gen.generate(generated.version).text == generated.text


def test_every_schema_file_maps_to_a_message(generated):
    folder_name, request_suffix = gen.VERSIONS[generated.version]
    folder = gen.ocpp_package_dir() / folder_name / "schemas"
    messages = yaml.safe_load(generated.text)["messages"]
    files = sorted(folder.glob("*.json"))
    assert len(files) == 2 * len(messages)
    for path in files:
        stem = path.stem
        if stem.endswith("Response"):
            action, half = stem[: -len("Response")], "response"
        else:
            assert stem.endswith(request_suffix), path.name
            action, half = stem[: len(stem) - len(request_suffix)], "request"
        assert action in messages, path.name
        entry = messages[action]
        assert isinstance(entry[half], dict), path.name
        schema = json.loads(path.read_text(encoding="utf-8"))
        # Top-level fields and their required marks follow the schema, in schema order.
        fields = [k for k in entry[half] if k != "*"]
        expected = [name + "!" if name in schema.get("required", []) else name
                    for name in schema.get("properties", {})]
        assert fields == expected, path.name


def test_file_shape_and_sent_by(generated):
    data = yaml.safe_load(generated.text)
    assert list(data) == ["version", "messages"]
    assert data["version"] == generated.version
    actions = list(data["messages"])
    assert actions == sorted(actions)
    for action, entry in data["messages"].items():
        assert list(entry) == ["sentBy", "request", "response"], action
        expected = "both" if action == "DataTransfer" else None
        assert entry["sentBy"] in ("chargingStation", "csms", "both"), action
        if expected:
            assert entry["sentBy"] == expected
        else:
            assert entry["sentBy"] != "both", action
    for action in ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "Authorize"):
        assert data["messages"][action]["sentBy"] == "chargingStation"
    for action in ("Reset", "ChangeAvailability", "UnlockConnector", "TriggerMessage"):
        assert data["messages"][action]["sentBy"] == "csms"


def walk_scalars(shape, path=""):
    if isinstance(shape, str):
        yield path, shape
    elif isinstance(shape, dict):
        for key, value in shape.items():
            yield from walk_scalars(value, f"{path}.{key}")
    elif isinstance(shape, list):
        assert len(shape) in (1, 2), path
        if len(shape) == 2:
            limits = shape[1]
            assert isinstance(limits, dict) and limits and set(limits) <= {"min", "max"}, path
        yield from walk_scalars(shape[0], path + "[]")
    else:
        raise AssertionError(f"{path}: unexpected {shape!r}")


SCALAR = r"integer(\(>=-?\d+(\.\d+)?\))?|number(\((>=-?\d+(\.\d+)?( multipleOf \d+(\.\d+)?)?|multipleOf \d+(\.\d+)?)\))?|boolean|string(\(\d+\))?|datetime|any|enum\([A-Za-z0-9_.\-]+(\|[A-Za-z0-9_.\-]+)*\)"


def test_every_scalar_is_in_the_notation(generated):
    import re

    for action, entry in yaml.safe_load(generated.text)["messages"].items():
        for half in ("request", "response"):
            for path, scalar in walk_scalars(entry[half], f"{action}.{half}"):
                assert re.fullmatch(SCALAR, scalar), f"{path}: {scalar!r}"
                if path.endswith(".*"):
                    assert scalar == "any", path


def test_ocpp16_status_notification():
    request = load("ocpp1.6")["messages"]["StatusNotification"]["request"]
    assert request["connectorId!"] == "integer"
    status = request["status!"]
    assert status.startswith("enum(") and "Charging" in status[5:-1].split("|")
    assert request["errorCode!"].startswith("enum(ConnectorLockFailure|EVCommunicationError|")
    assert request["info"] == "string(50)"
    assert request["timestamp"] == "datetime"
    assert "*" not in request  # 1.6 schemas are closed (additionalProperties: false)
    assert load("ocpp1.6")["messages"]["StatusNotification"]["response"] == {}


def test_ocpp201_transaction_event():
    message = load("ocpp2.0.1")["messages"]["TransactionEvent"]
    request = message["request"]
    assert message["sentBy"] == "chargingStation"
    for field in ("eventType!", "timestamp!", "triggerReason!", "seqNo!", "transactionInfo!"):
        assert field in request, field
    assert request["seqNo!"] == "integer"
    assert request["transactionInfo!"]["transactionId!"] == "string(36)"
    assert request["customData"] == {"vendorId!": "string(255)", "*": "any"}
    meter_value = request["meterValue"]
    assert meter_value[1] == {"min": 1}
    assert meter_value[0]["sampledValue!"][0]["value!"] == "number"


def test_ocpp201_refs_are_inlined_and_minimums_kept():
    messages = load("ocpp2.0.1")["messages"]
    needs = messages["NotifyEVChargingNeeds"]["request"]["chargingNeeds!"]
    assert needs["dcChargingParameters"]["stateOfCharge"] == "integer(>=0)"
    token_info = messages["Authorize"]["request"]["idToken!"]
    assert token_info["type!"].startswith("enum(Central|eMAID|")
    assert messages["Authorize"]["request"]["iso15118CertificateHashData"][1] == {"min": 1, "max": 4}


def test_ocpp16_limits_keep_multiple_of():
    # 1.6 charging limits are multiples of 0.1; a definition without it lets a finer 2.0.1 limit through
    messages = load("ocpp1.6")["messages"]
    schedule = messages["SetChargingProfile"]["request"]["csChargingProfiles!"]["chargingSchedule!"]
    assert schedule["chargingSchedulePeriod!"][0]["limit!"] == "number(multipleOf 0.1)"
    assert schedule["minChargingRate"] == "number(multipleOf 0.1)"
    assert "multipleOf" not in gen.generate("ocpp1.6").dropped


def test_check_flags_an_edited_file(tmp_path):
    for version in VERSIONS:
        (tmp_path / f"{version}.yaml").write_bytes(gen.generate(version).text.encode("utf-8"))
    tool = [sys.executable, str(REPO_ROOT / "tools" / "gen_definitions.py"), "--check", "--out", str(tmp_path)]
    ok = subprocess.run(tool, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    edited = tmp_path / "ocpp1.6.yaml"
    edited.write_text(edited.read_text().replace("info: string(50)", "info: string(60)", 1))
    bad = subprocess.run(tool, capture_output=True, text=True)
    assert bad.returncode == 1
    first = bad.stdout.splitlines()[0]
    assert first.startswith(f"{edited}:") and "differs" in first, bad.stdout
    assert "-      info: string(60)" in bad.stdout and "+      info: string(50)" in bad.stdout
