"""Rules/definitions/ocpp1.5.yaml and Rules/soap/*.yaml are what tools/gen_soap_definitions.py makes
of the official WSDLs in Tests/Interop/wsdl/.

The committed files are regenerated in memory and compared byte for byte, so neither a hand edit nor
a change of the generator or of the WSDL fixtures can slip by unnoticed. No proxy binary needed.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import gen_soap_definitions as gen  # noqa: E402

VERSIONS = list(gen.WSDLS)


@pytest.fixture(scope="module", params=VERSIONS)
def generated(request) -> gen.Generated:
    return gen.generate(request.param)


def test_committed_files_equal_the_generated_ones(generated):
    for name, text in generated.files.items():
        path = gen.RULES_DIR / name
        assert path.exists(), f"{path} is missing: run .venv/bin/python tools/gen_soap_definitions.py"
        committed = path.read_bytes()
        if committed != text.encode("utf-8"):
            pytest.fail(gen.check_message(path.relative_to(REPO_ROOT), committed, text, tool=gen.TOOL), pytrace=False)


def test_generation_is_deterministic(generated):
    assert gen.generate(generated.version).files == generated.files


def test_only_ocpp15_goes_to_the_rule_definitions():
    # The rule engine reads one file per version from Rules/definitions/; 1.6 has its OCPP-J one there.
    assert set(gen.generate("ocpp1.5").files) == {"definitions/ocpp1.5.yaml", "soap/ocpp1.5.yaml"}
    assert set(gen.generate("ocpp1.6").files) == {"soap/ocpp1.6.yaml"}


def wsdl_operations(name: str) -> list[str]:
    root = ET.parse(gen.WSDL_DIR / name).getroot()
    return [op.get("name") for op in root.iter(f"{{{gen.WSDL}}}operation") if op.find(f"{{{gen.WSDL}}}input") is not None
            and op.find(f"{{{gen.WSDL}}}input").get("message")]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_operation_is_a_message_sent_by_its_service(version):
    central, charge_point = (wsdl_operations(name) for name in gen.WSDLS[version])
    layout = yaml.safe_load(gen.generate(version).files[f"soap/{version}.yaml"])
    messages = messages_of(version)
    assert sorted(messages) == sorted(set(central) | set(charge_point)) == sorted(layout["elements"])
    for action, entry in messages.items():
        expected = {(True, False): "chargingStation", (False, True): "csms", (True, True): "both"}
        assert entry["sentBy"] == expected[(action in central, action in charge_point)], action
        request, response = layout["elements"][action]
        assert request == action[0].lower() + action[1:] + "Request", action
        assert response == action[0].lower() + action[1:] + "Response", action


def messages_of(version: str) -> dict:
    files = gen.generate(version).files
    if f"definitions/{version}.yaml" in files:
        return yaml.safe_load(files[f"definitions/{version}.yaml"])["messages"]
    return yaml.safe_load(files[f"soap/{version}.yaml"])["messages"]


def test_ocpp15_namespaces_and_header():
    layout = yaml.safe_load(gen.generate("ocpp1.5").files["soap/ocpp1.5.yaml"])
    assert layout["namespaces"] == {"centralSystem": "urn://Ocpp/Cs/2012/06/", "chargePoint": "urn://Ocpp/Cp/2012/06/"}
    assert layout["header"] == {"chargeBoxIdentity": "string"}
    assert layout["definitions"] == "definitions/ocpp1.5.yaml"


def test_ocpp16_namespaces():
    layout = yaml.safe_load(gen.generate("ocpp1.6").files["soap/ocpp1.6.yaml"])
    assert layout["namespaces"] == {"centralSystem": "urn://Ocpp/Cs/2015/10/", "chargePoint": "urn://Ocpp/Cp/2015/10/"}
    assert layout["simpleContent"] == []


def test_ocpp15_meter_values_text_with_attributes_is_an_object_with_field_value():
    messages = messages_of("ocpp1.5")
    values = messages["MeterValues"]["request"]["values"]
    assert values[0]["timestamp!"] == "datetime"
    value = values[0]["value!"]
    assert value[1] == {"min": 1}
    assert list(value[0]) == ["value!", "context", "format", "measurand", "location", "unit"]
    assert "Amp" in value[0]["unit"][5:-1].split("|")
    layout = yaml.safe_load(gen.generate("ocpp1.5").files["soap/ocpp1.5.yaml"])
    assert layout["simpleContent"] == ["MeterValues.request.values[].value[]",
                                       "StopTransaction.request.transactionData[].values[].value[]"]


def test_xsd_types_map_onto_the_notation():
    v15, v16 = messages_of("ocpp1.5"), messages_of("ocpp1.6")
    assert v15["BootNotification"]["response"] == {
        "status!": "enum(Accepted|Rejected)", "currentTime!": "datetime", "heartbeatInterval!": "integer"}
    assert v15["GetDiagnostics"]["request"]["location!"] == "string"                     # s:anyURI
    assert v15["GetConfiguration"]["response"]["configurationKey"][0]["readonly!"] == "boolean"
    assert v15["StartTransaction"]["request"]["idTag!"] == "string(20)"                  # IdToken
    assert v16["BootNotification"]["request"]["chargePointVendor!"] == "string(20)"      # CiString20Type
    period = v16["GetCompositeSchedule"]["response"]["chargingSchedule"]["chargingSchedulePeriod!"]
    assert period == [{"startPeriod!": "integer", "limit!": "number", "numberPhases": "integer"}, {"min": 1}]
    # Element order is the WSDL's, not the JSON schema's.
    assert list(v16["SendLocalList"]["request"]) == ["listVersion!", "localAuthorizationList", "updateType!"]


def test_check_flags_an_edited_file(tmp_path):
    for version in VERSIONS:
        for name, text in gen.generate(version).files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(text.encode("utf-8"))
    tool = [sys.executable, str(REPO_ROOT / "tools" / "gen_soap_definitions.py"), "--check", "--rules", str(tmp_path)]
    ok = subprocess.run(tool, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    edited = tmp_path / "definitions" / "ocpp1.5.yaml"
    edited.write_text(edited.read_text().replace("idTag!: string(20)", "idTag!: string(21)", 1))
    bad = subprocess.run(tool, capture_output=True, text=True)
    assert bad.returncode == 1
    first = bad.stdout.splitlines()[0]
    assert first.startswith(f"{edited}:") and "gen_soap_definitions.py" in first, bad.stdout
