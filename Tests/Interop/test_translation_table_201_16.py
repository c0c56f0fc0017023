"""Table tests of Rules/ocpp2.0.1-ocpp1.6.yaml (OCPP 2.0.1 stations on an OCPP 1.6 CSMS) through ``ocpp-proxy
translate``.

The same kind of table as test_translation_table.py, with the charger on the newer version: a station's
CALLs are read as 2.0.1 (``--from ocpp2.0.1``) and go to the CSMS as 1.6, a CSMS's CALLs are read as 1.6
and go to the station as 2.0.1. Every input frame and every answer fed in is validated against the official
JSON schema of its version (``ocpp`` package), and so is every frame the proxy makes.

Transactions are tested as conversations (``Conversation``): one translate file grows line by line, each
translated CALL answered with the id the proxy printed, so the state (the CSMS's integer transaction id,
what a held start remembers) carries from line to line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import run_cli
from translation_support import (
    ANY,
    IS_INT,
    V16,
    V201,
    AnyOf,
    Exchange,
    Instant,
    Matcher,
    Opt,
    Pred,
    Problems,
    TranslateRun,
    assert_match,
    assert_schema_valid,
    only_call,
    only_result,
)

T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T10:15:00Z"
T2 = "2026-01-01T10:30:00Z"
T3 = "2026-01-01T10:45:00Z"
TAG = "04A1B2C3D4E5F6"
TAG20 = "ABCDEFGHIJKLMNOPQRST"
TAG21 = "ABCDEFGHIJKLMNOPQRSTU"
SECURITY = ("--capability", "securityExtension")


def token(value: str, kind: str = "Central") -> dict:
    return {"idToken": value, "type": kind}


def data_transfer(message_id: str | None, data: dict | None = None, vendor="org.openchargealliance.iso15118pnc"):
    """A check for a DataTransfer whose data is JSON text holding at least ``data``'s fields."""
    def check_payload(payload):
        expected = {"vendorId": vendor, "data": ANY}
        if message_id is not None:
            expected["messageId"] = message_id
        assert_match(payload, expected, "DataTransfer")
        parsed = json.loads(payload["data"])
        for key, value in (data or {}).items():
            assert parsed.get(key) == value, f"data field {key}: {parsed.get(key)!r}, expected {value!r}"
    return check_payload


def json_text_of(value) -> Pred:
    return Pred(lambda text: isinstance(text, str) and json.loads(text) == value, f"JSON text of {value!r}")


def has_capability_option(binary: Path) -> bool:
    result = run_cli(binary, "translate", "--help")
    return "--capability" in result.stdout + result.stderr


# ---------------------------------------------------------------------------
# the table runner (the charger is the 2.0.1 side)
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One sample frame (see test_translation_table.Row): ``frame`` in the sender's version; ``action`` the
    one CALL it becomes (None: the proxy answers itself, ``expected_result`` is that answer); ``expected``
    the translated payload; ``result`` the other side's answer; ``expected_result`` what goes back."""

    name: str
    frame: Any
    action: str | None = None
    expected: Any = None
    result: Any = None
    expected_result: Any = None


def check(actual, expected, what):
    if callable(expected) and not isinstance(expected, Matcher):
        expected(actual)
    else:
        assert_match(actual, expected, what)


def run_table(binary, workdir, sender: str, rows: list[Row], what: str, options: tuple = ()) -> None:
    """``sender`` is V201 for the station's CALLs, V16 for the CSMS's. Fails with every problem found."""
    source, target = (V201, V16) if sender == V201 else (V16, V201)
    toward, back = ("csms", "charger") if sender == V201 else ("charger", "csms")
    run = TranslateRun(binary, workdir, source, target, charger=V201, options=options)
    problems = Problems()
    exchanges: dict[str, Exchange] = {}
    for row in rows:
        frame = row.frame
        assert_schema_valid(source, frame[2], "request", frame[3], f"table row {row.name}: input")
        assert (row.action is None) == (row.result is None), f"table row {row.name}: a CALL needs an answer"
        if row.result is not None:
            assert_schema_valid(target, row.action, "response", row.result, f"table row {row.name}: answer fed in")
        exchanges[row.name] = Exchange(frame, row.result)
    assert len({r.frame[1] for r in rows}) == len(rows), "table rows reuse a message id"
    run.converse(list(exchanges.values()))
    out = run.outputs
    for row in rows:
        ex = exchanges[row.name]
        output = out[ex.call_line]
        if row.action is None:
            answer = problems.check(row.name, lambda: only_result(output, back, row.frame[1]))
            if answer is not None:
                problems.check(row.name, lambda: assert_schema_valid(source, row.frame[2], "response", answer,
                                                                     f"{row.name}: answer"))
                problems.check(row.name, lambda: check(answer, row.expected_result, f"{row.name}: answer"))
            continue
        call = problems.check(row.name, lambda: only_call(output, toward, row.action))
        if call is None:
            continue
        problems.check(row.name, lambda: assert_schema_valid(target, row.action, "request", call[3], row.name))
        problems.check(row.name, lambda: check(call[3], row.expected, row.name))
        if ex.answer_line is None:
            continue
        output = out[ex.answer_line]
        result = problems.check(f"{row.name} result", lambda: only_result(output, back, row.frame[1]))
        if result is None:
            continue
        problems.check(f"{row.name} result", lambda: assert_schema_valid(
            source, row.frame[2], "response", result, f"{row.name} result"))
        problems.check(f"{row.name} result", lambda: check(result, row.expected_result, f"{row.name} result"))
    problems.assert_none(what)


def station(name, action, payload, action16=None, expected=None, result=None, expected_result=None) -> Row:
    return Row(name, [2, name, action, payload], action16, expected, result, expected_result)


def csms(name, action, payload, action201=None, expected=None, result=None, expected_result=None) -> Row:
    return Row(name, [2, name, action, payload], action201, expected, result, expected_result)


def status(value: str) -> dict:
    return {"status": value}


# ---------------------------------------------------------------------------
# sampled values
# ---------------------------------------------------------------------------


def sv201(value, measurand="Energy.Active.Import.Register", context="Sample.Periodic", unit="Wh", **extra) -> dict:
    sample = {"value": value, "context": context, "measurand": measurand, **extra}
    if unit is not None:
        sample["unitOfMeasure"] = {"unit": unit} if isinstance(unit, str) else unit
    return sample


def sv16(value: str, measurand="Energy.Active.Import.Register", context="Sample.Periodic", unit="Wh", **extra):
    sample = {"value": value, "context": context, "measurand": measurand, "format": Opt("Raw"), **extra}
    if unit is not None:
        sample["unit"] = unit
    return sample


SIGNED = {"signedMeterData": "T0NNRnx7fQ==", "signingMethod": "ECDSA-secp256r1-SHA256", "encodingMethod": "OCMF",
          "publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}


def signed_sample(context="Sample.Periodic"):
    def matches(value):
        return isinstance(value, str) and json.loads(value) == SIGNED
    return {"value": Pred(matches, "JSON text of the signed meter value"), "format": "SignedData",
            "context": context, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}


# ---------------------------------------------------------------------------
# station -> CSMS
# ---------------------------------------------------------------------------


def test_station_provisioning_and_authorization_table(proxy_binary, tmp_path):
    id_tag_info = {"status": "Accepted", "expiryDate": T3, "parentIdTag": "GROUP-1"}
    rows = [
        station("boot-minimal", "BootNotification", {"chargingStation": {"vendorName": "V", "model": "M"},
                                                     "reason": "PowerUp"},
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"},
                {"currentTime": T0, "interval": 300, "status": "Accepted"},
                {"currentTime": Instant(T0), "interval": 300, "status": "Accepted"}),
        station("boot-full", "BootNotification", {"reason": "RemoteReset", "chargingStation": {
            "vendorName": "V" * 50, "model": "M" * 20, "serialNumber": "S" * 25, "firmwareVersion": "F" * 50,
            "modem": {"iccid": "8931000000000000000", "imsi": "262011234567890"}}},
            "BootNotification", {"chargePointVendor": "V" * 20, "chargePointModel": "M" * 20,
                                 "chargePointSerialNumber": "S" * 25, "firmwareVersion": "F" * 50,
                                 "iccid": "8931000000000000000", "imsi": "262011234567890"},
            {"currentTime": T1, "interval": 60, "status": "Pending"},
            {"currentTime": Instant(T1), "interval": 60, "status": "Pending"}),
        station("heartbeat", "Heartbeat", {}, "Heartbeat", {}, {"currentTime": T2}, {"currentTime": Instant(T2)}),
        station("authorize", "Authorize", {"idToken": token(TAG, "ISO14443")}, "Authorize", {"idTag": TAG},
                {"idTagInfo": {"status": "Accepted"}}, {"idTokenInfo": {"status": "Accepted"}}),
        station("authorize-20", "Authorize", {"idToken": token(TAG20)}, "Authorize", {"idTag": TAG20},
                {"idTagInfo": id_tag_info},
                {"idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": Instant(T3),
                                 "groupIdToken": {"idToken": "GROUP-1", "type": "Central"}}}),
        station("authorize-blocked", "Authorize", {"idToken": token("TAG-2")}, "Authorize", {"idTag": "TAG-2"},
                {"idTagInfo": {"status": "Blocked"}}, {"idTokenInfo": {"status": "Blocked"}}),
        # a token 1.6 cannot hold is never cut: the proxy answers
        station("authorize-21", "Authorize", {"idToken": token(TAG21)},
                expected_result={"idTokenInfo": {"status": AnyOf("Unknown", "Invalid")}}),
        station("authorize-pnc", "Authorize", {"idToken": token("DEMOC1234567890", "eMAID"),
                                               "certificate": "-----BEGIN CERTIFICATE-----"},
                "DataTransfer", data_transfer("Authorize", {"idToken": token("DEMOC1234567890", "eMAID")}),
                {"status": "Accepted", "data": json.dumps({"idTokenInfo": {"status": "Accepted"},
                                                            "certificateStatus": "Accepted"})},
                {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}),
        station("authorize-pnc-unknown-vendor", "Authorize", {
            "idToken": token("DEMOC1234567891", "eMAID"),
            "iso15118CertificateHashData": [{"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b",
                                             "serialNumber": "c", "responderURL": "http://ocsp.example"}]},
            "DataTransfer", {"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "Authorize",
                             "data": ANY},
            status("UnknownVendorId"), {"idTokenInfo": {"status": "Unknown"}}),
        station("data-transfer-text", "DataTransfer", {"vendorId": "org.example", "messageId": "m1", "data": "x"},
                "DataTransfer", {"vendorId": "org.example", "messageId": "m1", "data": "x"},
                {"status": "Accepted", "data": "y"}, {"status": "Accepted", "data": "y"}),
        station("data-transfer-object", "DataTransfer", {"vendorId": "org.example", "data": {"a": [1, True]}},
                "DataTransfer", {"vendorId": "org.example", "data": json_text_of({"a": [1, True]})},
                status("UnknownVendorId"), status("UnknownVendorId")),
        station("data-transfer-vendor-only", "DataTransfer", {"vendorId": "v" * 255}, "DataTransfer",
                {"vendorId": "v" * 255}, status("UnknownMessageId"), status("UnknownMessageId")),
    ]
    run_table(proxy_binary, tmp_path, V201, rows, "the provisioning/authorization table")


def test_station_status_and_event_table(proxy_binary, tmp_path):
    def status_row(name, payload, expected):
        return station(name, "StatusNotification", {"timestamp": T0, **payload}, "StatusNotification",
                       {"timestamp": Instant(T0), "errorCode": "NoError", **expected}, {}, {})

    def event(component, variable, actual, **extra):
        return {"eventId": 1, "timestamp": T1, "trigger": "Delta", "actualValue": actual,
                "component": component, "variable": {"name": variable},
                "eventNotificationType": "HardWiredNotification", **extra}

    def notify(name, events, action=None, expected=None):
        payload = {"generatedAt": T1, "seqNo": 0, "eventData": events}
        if action is None:
            return station(name, "NotifyEvent", payload, expected_result={})
        return station(name, "NotifyEvent", payload, action, expected, {}, {})

    rows = [
        status_row("available", {"connectorStatus": "Available", "evseId": 1, "connectorId": 1},
                   {"connectorId": 1, "status": "Available"}),
        status_row("occupied-no-transaction", {"connectorStatus": "Occupied", "evseId": 2, "connectorId": 1},
                   {"connectorId": 2, "status": "Preparing"}),
        status_row("reserved", {"connectorStatus": "Reserved", "evseId": 3, "connectorId": 1},
                   {"connectorId": 3, "status": "Reserved"}),
        status_row("unavailable", {"connectorStatus": "Unavailable", "evseId": 1, "connectorId": 1},
                   {"connectorId": 1, "status": "Unavailable"}),
        station("faulted", "StatusNotification", {"timestamp": T0, "connectorStatus": "Faulted", "evseId": 1,
                                                  "connectorId": 1},
                "StatusNotification", {"timestamp": Instant(T0), "connectorId": 1, "status": "Faulted",
                                       "errorCode": "OtherError"}, {}, {}),
        notify("station-unavailable", [event({"name": "ChargingStation"}, "AvailabilityState", "Unavailable")],
               "StatusNotification", {"connectorId": 0, "status": "Unavailable", "errorCode": "NoError",
                                      "timestamp": Instant(T1)}),
        notify("connector-faulted", [event({"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
                                           "AvailabilityState", "Faulted", techCode="E42")],
               "StatusNotification", {"connectorId": 2, "status": "Faulted", "errorCode": "OtherError",
                                      "vendorErrorCode": "E42", "timestamp": Instant(T1)}),
        notify("problem", [event({"name": "EVSE", "evse": {"id": 1}}, "Problem", "true", techCode="C" * 50,
                                 techInfo="I" * 80)],
               "StatusNotification", {"connectorId": 1, "status": "Faulted", "errorCode": "OtherError",
                                      "vendorErrorCode": "C" * 50, "info": "I" * 50, "timestamp": Instant(T1)}),
        notify("problem-with-other-events", [
            event({"name": "TempSensor"}, "Temperature", "80"),
            event({"name": "ChargingStation"}, "Problem", "true", techCode="OVERHEAT")],
            "StatusNotification", {"connectorId": 0, "status": "Faulted", "errorCode": "OtherError",
                                   "vendorErrorCode": "OVERHEAT", "info": ANY, "timestamp": Instant(T1)}),
        notify("monitoring-only", [event({"name": "TempSensor"}, "Temperature", "80")]),
        notify("station-occupied", [event({"name": "ChargingStation"}, "AvailabilityState", "Occupied")]),
    ]
    run_table(proxy_binary, tmp_path, V201, rows, "the status/event table")


def test_station_meter_values_table(proxy_binary, tmp_path):
    rows = [
        station("station-meter", "MeterValues", {"evseId": 0, "meterValue": [{"timestamp": T0, "sampledValue": [
            sv201(1234.5, context="Sample.Clock"), sv201(230.1, measurand="Voltage", unit="V", phase="L1-N")]}]},
            "MeterValues", {"connectorId": 0, "meterValue": [{"timestamp": Instant(T0), "sampledValue": [
                sv16("1234.5", context="Sample.Clock"), sv16("230.1", measurand="Voltage", unit="V", phase="L1-N")]}]},
            {}, {}),
        station("units", "MeterValues", {"evseId": 2, "meterValue": [{"timestamp": T1, "sampledValue": [
            sv201(1.25, unit={"unit": "Wh", "multiplier": 3}),
            sv201(1.5, unit="kWh"),
            sv201(25, measurand="SoC", unit="Percent", location="EV"),
            sv201(50.01, measurand="Frequency", unit="Hz"),
            sv201(21.5, measurand="Current.Import", unit={"unit": "A", "multiplier": 0}),
            sv201(7, measurand="Power.Active.Import", unit={"unit": "kW"}),
            sv201(3, measurand="Power.Factor", unit=None),
            sv201(42, measurand="Power.Offered", unit="dBm")]}]},
            "MeterValues", {"connectorId": 2, "meterValue": [{"timestamp": Instant(T1), "sampledValue": [
                sv16("1250"), sv16("1.5", unit="kWh"), sv16("25", measurand="SoC", unit="Percent", location="EV"),
                sv16("50.01", measurand="Frequency", unit="Hertz"), sv16("21.5", measurand="Current.Import", unit="A"),
                sv16("7", measurand="Power.Active.Import", unit="kW"), sv16("3", measurand="Power.Factor", unit=None),
                sv16("42", measurand="Power.Offered", unit=None)]}]},
            {}, {}),
        station("only-201-measurands", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T2, "sampledValue": [
            sv201(10, measurand="Energy.Active.Net"), sv201(11, measurand="Energy.Apparent.Import", unit="VAh")]}]},
            expected_result={}),
        station("signed", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T3, "sampledValue": [
            sv201(1500, signedMeterValue=SIGNED), sv201(10, measurand="Energy.Active.Net")]}]},
            "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": Instant(T3), "sampledValue": [
                sv16("1500"), signed_sample()]}]},
            {}, {}),
    ]
    run_table(proxy_binary, tmp_path, V201, rows, "the MeterValues table")


FIRMWARE = {"Downloaded": "Downloaded", "DownloadFailed": "DownloadFailed", "Downloading": "Downloading",
            "DownloadScheduled": "Idle", "DownloadPaused": "Downloading", "Idle": "Idle",
            "InstallationFailed": "InstallationFailed", "Installing": "Installing", "Installed": "Installed",
            "InstallRebooting": "Installing", "InstallScheduled": "Downloaded",
            "InstallVerificationFailed": "InstallationFailed", "InvalidSignature": "InstallationFailed",
            "SignatureVerified": "Downloaded"}
UPLOAD = {"BadMessage": "UploadFailed", "Idle": "Idle", "NotSupportedOperation": "UploadFailed",
          "PermissionDenied": "UploadFailed", "Uploaded": "Uploaded", "UploadFailure": "UploadFailed",
          "Uploading": "Uploading", "AcceptedCanceled": "Idle"}


def test_station_firmware_log_and_answered_table(proxy_binary, tmp_path):
    rows = []
    for i, (value, value16) in enumerate(FIRMWARE.items()):
        rows.append(station(f"firmware-{value}", "FirmwareStatusNotification", {"status": value, "requestId": 900 + i},
                            "FirmwareStatusNotification", {"status": value16}, {}, {}))
    for value, value16 in UPLOAD.items():
        rows.append(station(f"log-{value}", "LogStatusNotification", {"status": value, "requestId": 5},
                            "DiagnosticsStatusNotification", {"status": value16}, {}, {}))
    rows += [
        # without the 1.6 security extension: answered here
        station("security-event", "SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": T0},
                expected_result={}),
        station("sign-certificate", "SignCertificate", {"csr": "CSR"}, expected_result={"status": "Rejected",
                                                                                       "statusInfo": Opt(ANY)}),
        station("sign-v2g-certificate", "SignCertificate", {"csr": "CSR", "certificateType": "V2GCertificate"},
                "DataTransfer", {"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "SignCertificate",
                                 "data": ANY},
                {"status": "Accepted", "data": json.dumps({"status": "Accepted"})}, {"status": "Accepted"}),
        station("ev-certificate", "Get15118EVCertificate", {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                                                             "action": "Install", "exiRequest": "AAAA"},
                "DataTransfer", data_transfer("Get15118EVCertificate", {"exiRequest": "AAAA", "action": "Install"}),
                {"status": "Accepted", "data": json.dumps({"status": "Accepted", "exiResponse": "BBBB"})},
                {"status": "Accepted", "exiResponse": "BBBB"}),
        station("ev-certificate-unknown-vendor", "Get15118EVCertificate", {
            "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Update", "exiRequest": "AAAA"},
            "DataTransfer", {"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "Get15118EVCertificate",
                             "data": ANY},
            status("UnknownVendorId"), {"status": "Failed", "exiResponse": ""}),
        station("certificate-status", "GetCertificateStatus", {"ocspRequestData": {
            "hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "c",
            "responderURL": "http://ocsp.example"}},
            "DataTransfer", {"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "GetCertificateStatus",
                             "data": ANY},
            {"status": "Accepted", "data": json.dumps({"status": "Accepted", "ocspResult": "OCSP"})},
            {"status": "Accepted", "ocspResult": "OCSP"}),
        station("notify-report", "NotifyReport", {"requestId": 1, "generatedAt": T0, "seqNo": 0},
                expected_result={}),
        station("notify-charging-limit", "NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "EMS"}},
                expected_result={}),
        station("cleared-charging-limit", "ClearedChargingLimit", {"chargingLimitSource": "SO"}, expected_result={}),
        station("report-charging-profiles", "ReportChargingProfiles", {
            "requestId": 1, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [{
                "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": [{
                    "id": 1, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}]}]},
            expected_result={}),
        station("ev-charging-needs", "NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": {
            "requestedEnergyTransfer": "DC"}}, expected_result={"status": "Rejected", "statusInfo": Opt(ANY)}),
        station("ev-charging-schedule", "NotifyEVChargingSchedule", {"timeBase": T0, "evseId": 1, "chargingSchedule": {
            "id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}},
            expected_result={"status": "Accepted", "statusInfo": Opt(ANY)}),
        station("display-messages", "NotifyDisplayMessages", {"requestId": 1}, expected_result={}),
        station("customer-information", "NotifyCustomerInformation", {"data": "d", "seqNo": 0, "generatedAt": T0,
                                                                      "requestId": 1}, expected_result={}),
        station("monitoring-report", "NotifyMonitoringReport", {"requestId": 1, "seqNo": 0, "generatedAt": T0},
                expected_result={}),
        station("publish-firmware-status", "PublishFirmwareStatusNotification", {"status": "Idle"},
                expected_result={}),
        station("reservation-status", "ReservationStatusUpdate", {"reservationId": 1,
                                                                  "reservationUpdateStatus": "Expired"},
                expected_result={}),
    ]
    run_table(proxy_binary, tmp_path, V201, rows, "the firmware/log/answered table")


def test_station_security_extension_table(proxy_binary, tmp_path):
    if not has_capability_option(proxy_binary):
        pytest.skip("this ocpp-proxy has no translate --capability (engine of issue 13)")
    rows = [
        station("security-event", "SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": T0,
                                                                 "techInfo": "v2"},
                "SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": Instant(T0), "techInfo": "v2"},
                {}, {}),
        station("sign-certificate", "SignCertificate", {"csr": "CSR", "certificateType": "ChargingStationCertificate"},
                "SignCertificate", {"csr": "CSR"}, status("Accepted"), {"status": "Accepted", "statusInfo": Opt(ANY)}),
        station("firmware-not-signed", "FirmwareStatusNotification", {"status": "InstallScheduled", "requestId": 77},
                "FirmwareStatusNotification", {"status": "Downloaded"}, {}, {}),
        station("log-not-asked", "LogStatusNotification", {"status": "Uploading", "requestId": 78},
                "DiagnosticsStatusNotification", {"status": "Uploading"}, {}, {}),
    ]
    run_table(proxy_binary, tmp_path, V201, rows, "the security extension table (station)", options=SECURITY)


# ---------------------------------------------------------------------------
# CSMS -> station
# ---------------------------------------------------------------------------

PROFILE_16 = {"chargingProfileId": 7, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
              "chargingProfileKind": "Relative",
              "chargingSchedule": {"chargingRateUnit": "A", "duration": 3600, "minChargingRate": 6.0,
                                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                                                              {"startPeriod": 1800, "limit": 10.5}]}}
PROFILE_201 = {"id": 7, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
               "chargingSchedule": [{"id": IS_INT, "chargingRateUnit": "A", "duration": 3600, "minChargingRate": 6.0,
                                     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                                                                {"startPeriod": 1800, "limit": 10.5}]}]}


def test_csms_transaction_availability_table(proxy_binary, tmp_path):
    rows = [
        csms("remote-start-connector1", "RemoteStartTransaction", {"connectorId": 1, "idTag": TAG},
             "RequestStartTransaction", {"idToken": token(TAG, "ISO14443"), "remoteStartId": IS_INT, "evseId": 1},
             status("Accepted"), status("Accepted")),
        csms("remote-start-any", "RemoteStartTransaction", {"idTag": "USER-1"},
             "RequestStartTransaction", {"idToken": token("USER-1"), "remoteStartId": IS_INT},
             {"status": "Rejected", "transactionId": "tx-1"}, status("Rejected")),
        csms("remote-start-profile", "RemoteStartTransaction", {"connectorId": 2, "idTag": TAG20,
                                                                "chargingProfile": PROFILE_16},
             "RequestStartTransaction", {"idToken": token(TAG20), "remoteStartId": IS_INT, "evseId": 2,
                                         "chargingProfile": PROFILE_201},
             status("Accepted"), status("Accepted")),
        csms("remote-start-not-tx-profile", "RemoteStartTransaction", {
            "idTag": TAG, "chargingProfile": {**PROFILE_16, "chargingProfilePurpose": "TxDefaultProfile"}},
            expected_result=status("Rejected")),
        csms("remote-stop-unknown", "RemoteStopTransaction", {"transactionId": 99}, expected_result=status("Rejected")),
        csms("reset-hard", "Reset", {"type": "Hard"}, "Reset", {"type": "Immediate"}, status("Accepted"),
             status("Accepted")),
        csms("reset-soft", "Reset", {"type": "Soft"}, "Reset", {"type": "OnIdle"}, {"status": "Scheduled"},
             status("Accepted")),
        csms("reset-rejected", "Reset", {"type": "Soft"}, "Reset", {"type": "OnIdle"}, status("Rejected"),
             status("Rejected")),
        csms("availability-station", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"},
             "ChangeAvailability", {"operationalStatus": "Inoperative"}, status("Scheduled"), status("Scheduled")),
        csms("availability-connector2", "ChangeAvailability", {"connectorId": 2, "type": "Operative"},
             "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2, "connectorId": 1}},
             status("Accepted"), status("Accepted")),
        csms("unlock", "UnlockConnector", {"connectorId": 1}, "UnlockConnector", {"evseId": 1, "connectorId": 1},
             status("Unlocked"), status("Unlocked")),
        csms("unlock-ongoing", "UnlockConnector", {"connectorId": 2}, "UnlockConnector",
             {"evseId": 2, "connectorId": 1}, status("OngoingAuthorizedTransaction"), status("UnlockFailed")),
        csms("unlock-unknown", "UnlockConnector", {"connectorId": 3}, "UnlockConnector",
             {"evseId": 3, "connectorId": 1}, status("UnknownConnector"), status("NotSupported")),
        csms("unlock-connector0", "UnlockConnector", {"connectorId": 0}, expected_result=status("NotSupported")),
    ]
    for i, (message, message201) in enumerate([("BootNotification", "BootNotification"),
                                               ("DiagnosticsStatusNotification", "LogStatusNotification"),
                                               ("FirmwareStatusNotification", "FirmwareStatusNotification"),
                                               ("Heartbeat", "Heartbeat")]):
        rows.append(csms(f"trigger-{i}", "TriggerMessage", {"requestedMessage": message}, "TriggerMessage",
                         {"requestedMessage": message201}, status("Accepted"), status("Accepted")))
    rows += [
        csms("trigger-status-connector2", "TriggerMessage", {"requestedMessage": "StatusNotification",
                                                             "connectorId": 2},
             "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 2, "connectorId": 1}},
             status("Rejected"), status("Rejected")),
        csms("trigger-meter-values-idle", "TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1},
             "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1, "connectorId": 1}},
             status("NotImplemented"), status("NotImplemented")),
    ]
    run_table(proxy_binary, tmp_path, V16, rows, "the CSMS transaction/availability table")


def test_csms_configuration_table(proxy_binary, tmp_path):
    def var(component, variable, instance=None):
        return {"component": {"name": component}, "variable": {"name": variable, **({"instance": instance}
                                                                                     if instance else {})}}

    def get_result(component, variable, value=None, attribute_status="Accepted", instance=None):
        entry = {**var(component, variable, instance), "attributeStatus": attribute_status}
        if value is not None:
            entry["attributeValue"] = value
        return entry

    def all_keys(payload):
        items = payload["getVariableData"]
        names = {(i["component"]["name"], i["variable"]["name"], i["variable"].get("instance")) for i in items}
        assert ("OCPPCommCtrlr", "HeartbeatInterval", None) in names, names
        assert ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent") in names, names
        assert ("SecurityCtrlr", "BasicAuthPassword", None) not in names, "AuthorizationKey is write-only"
        assert len(items) == len(names) >= 40, f"{len(items)} items: {names}"

    rows = [
        csms("get-keys", "GetConfiguration", {"key": ["HeartbeatInterval", "TransactionMessageAttempts",
                                                      "ChargeProfileMaxStackLevel", "VendorKey", "NumberOfConnectors"]},
             "GetVariables", {"getVariableData": [
                 var("OCPPCommCtrlr", "HeartbeatInterval"), var("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
                 var("SmartChargingCtrlr", "ProfileStackLevel"), var("OCPP16LegacyCtrlr", "VendorKey"),
                 var("OCPP16LegacyCtrlr", "NumberOfConnectors")]},
             {"getVariableResult": [
                 get_result("OCPPCommCtrlr", "HeartbeatInterval", "300"),
                 get_result("OCPPCommCtrlr", "MessageAttempts", "3", instance="TransactionEvent"),
                 get_result("SmartChargingCtrlr", "ProfileStackLevel", "8"),
                 get_result("OCPP16LegacyCtrlr", "VendorKey", "v"),
                 get_result("OCPP16LegacyCtrlr", "NumberOfConnectors", attribute_status="UnknownComponent")]},
             {"configurationKey": [
                 {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                 {"key": "TransactionMessageAttempts", "readonly": False, "value": "3"},
                 {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
                 {"key": "VendorKey", "readonly": False, "value": "v"}],
              "unknownKey": ["NumberOfConnectors"]}),
        csms("get-long-value", "GetConfiguration", {"key": ["MeterValuesSampledData"]},
             "GetVariables", {"getVariableData": [var("SampledDataCtrlr", "TxUpdatedMeasurands")]},
             {"getVariableResult": [get_result("SampledDataCtrlr", "TxUpdatedMeasurands", "x" * 501)]},
             {"configurationKey": [{"key": "MeterValuesSampledData", "readonly": False}], "unknownKey": Opt([])}),
        csms("get-all", "GetConfiguration", {}, "GetVariables", all_keys,
             {"getVariableResult": [get_result("OCPPCommCtrlr", "HeartbeatInterval", "300"),
                                    get_result("AuthCtrlr", "LocalPreAuthorize", attribute_status="UnknownVariable")]},
             {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
              "unknownKey": Opt([])}),
        csms("change", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, "SetVariables",
             {"setVariableData": [{**var("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "60"}]},
             {"setVariableResult": [{**var("OCPPCommCtrlr", "HeartbeatInterval"), "attributeStatus": "Accepted"}]},
             status("Accepted")),
        csms("change-reboot", "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"},
             "SetVariables", {"setVariableData": [{**var("SampledDataCtrlr", "TxUpdatedInterval"),
                                                   "attributeValue": "30"}]},
             {"setVariableResult": [{**var("SampledDataCtrlr", "TxUpdatedInterval"),
                                     "attributeStatus": "RebootRequired"}]}, status("RebootRequired")),
        csms("change-unknown", "ChangeConfiguration", {"key": "VendorKey", "value": "x"}, "SetVariables",
             {"setVariableData": [{**var("OCPP16LegacyCtrlr", "VendorKey"), "attributeValue": "x"}]},
             {"setVariableResult": [{**var("OCPP16LegacyCtrlr", "VendorKey"), "attributeStatus": "UnknownComponent"}]},
             status("NotSupported")),
        csms("change-rejected", "ChangeConfiguration", {"key": "LocalPreAuthorize", "value": "maybe"}, "SetVariables",
             {"setVariableData": [{**var("AuthCtrlr", "LocalPreAuthorize"), "attributeValue": "maybe"}]},
             {"setVariableResult": [{**var("AuthCtrlr", "LocalPreAuthorize"), "attributeStatus": "Rejected"}]},
             status("Rejected")),
        csms("change-authorization-key", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "0" * 40},
             expected_result=status("Rejected")),
    ]
    run_table(proxy_binary, tmp_path, V16, rows, "the CSMS configuration table")


def test_csms_smart_charging_and_authorization_table(proxy_binary, tmp_path):
    periods = [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}, {"startPeriod": 1800, "limit": 10.5}]
    rows = [
        csms("set-tx-default", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "startSchedule": T0, "duration": 3600, "chargingRateUnit": "A", "chargingSchedulePeriod": periods,
                "minChargingRate": 6.0}}},
            "SetChargingProfile", {"evseId": 1, "chargingProfile": {
                "id": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": [{
                    "id": IS_INT, "startSchedule": Instant(T0), "duration": 3600, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": periods, "minChargingRate": 6.0}]}},
            status("Accepted"), status("Accepted")),
        csms("set-max-recurring", "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 11, "stackLevel": 2, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "validFrom": T0, "validTo": T3,
            "chargingSchedule": {"startSchedule": T1, "chargingRateUnit": "W",
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}]}}},
            "SetChargingProfile", {"evseId": 0, "chargingProfile": {
                "id": 11, "stackLevel": 2, "chargingProfilePurpose": "ChargingStationMaxProfile",
                "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "validFrom": Instant(T0),
                "validTo": Instant(T3), "chargingSchedule": [{
                    "id": IS_INT, "startSchedule": Instant(T1), "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}]}]}},
            status("Rejected"), status("Rejected")),
        csms("clear-by-id", "ClearChargingProfile", {"id": 5}, "ClearChargingProfile", {"chargingProfileId": 5},
             status("Accepted"), status("Accepted")),
        csms("clear-by-criteria", "ClearChargingProfile", {"connectorId": 1, "chargingProfilePurpose":
                                                           "ChargePointMaxProfile", "stackLevel": 2},
             "ClearChargingProfile", {"chargingProfileCriteria": {
                 "evseId": 1, "chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 2}},
             status("Unknown"), status("Unknown")),
        csms("clear-all", "ClearChargingProfile", {}, "ClearChargingProfile", {}, status("Accepted"),
             status("Accepted")),
        csms("composite", "GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
             "GetCompositeSchedule", {"evseId": 1, "duration": 3600, "chargingRateUnit": "W"},
             {"status": "Accepted", "schedule": {"evseId": 1, "duration": 3600, "scheduleStart": T0,
                                                 "chargingRateUnit": "W", "chargingSchedulePeriod": [
                                                     {"startPeriod": 0, "limit": 7360.04, "phaseToUse": 1}]}},
             {"status": "Accepted", "connectorId": 1, "scheduleStart": Instant(T0), "chargingSchedule": {
                 "duration": 3600, "startSchedule": Opt(Instant(T0)), "chargingRateUnit": "W",
                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7360.0}]}}),
        csms("composite-rejected", "GetCompositeSchedule", {"connectorId": 2, "duration": 60},
             "GetCompositeSchedule", {"evseId": 2, "duration": 60}, status("Rejected"), status("Rejected")),
        csms("local-list-full", "SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
            {"idTag": TAG, "idTagInfo": {"status": "Accepted", "expiryDate": T1, "parentIdTag": "GROUP-1"}},
            {"idTag": "TAG-2", "idTagInfo": {"status": "Blocked"}}, {"idTag": "TAG-3"}]},
            "SendLocalList", {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
                {"idToken": token(TAG, "ISO14443"), "idTokenInfo": {
                    "status": "Accepted", "cacheExpiryDateTime": Instant(T1),
                    "groupIdToken": token("GROUP-1")}},
                {"idToken": token("TAG-2"), "idTokenInfo": {"status": "Blocked"}},
                {"idToken": token("TAG-3")}]},
            status("Accepted"), status("Accepted")),
        csms("local-list-empty", "SendLocalList", {"listVersion": 4, "updateType": "Full", "localAuthorizationList": []},
             "SendLocalList", {"versionNumber": 4, "updateType": "Full"}, status("VersionMismatch"),
             status("VersionMismatch")),
        csms("local-list-version", "GetLocalListVersion", {}, "GetLocalListVersion", {}, {"versionNumber": 3},
             {"listVersion": 3}),
        csms("reserve-connector1", "ReserveNow", {"connectorId": 1, "expiryDate": T2, "idTag": TAG,
                                                  "parentIdTag": "GROUP-1", "reservationId": 8},
             "ReserveNow", {"id": 8, "expiryDateTime": Instant(T2), "idToken": token(TAG, "ISO14443"), "evseId": 1,
                            "groupIdToken": token("GROUP-1")},
             status("Occupied"), status("Occupied")),
        csms("reserve-any", "ReserveNow", {"connectorId": 0, "expiryDate": T2, "idTag": "TAG-9", "reservationId": 9},
             "ReserveNow", {"id": 9, "expiryDateTime": Instant(T2), "idToken": token("TAG-9")},
             status("Accepted"), status("Accepted")),
        csms("cancel-reservation", "CancelReservation", {"reservationId": 9}, "CancelReservation",
             {"reservationId": 9}, status("Rejected"), status("Rejected")),
        csms("clear-cache", "ClearCache", {}, "ClearCache", {}, status("Accepted"), status("Accepted")),
        csms("data-transfer", "DataTransfer", {"vendorId": "org.example", "messageId": "m", "data": "x"},
             "DataTransfer", {"vendorId": "org.example", "messageId": "m", "data": "x"},
             {"status": "Accepted", "data": {"a": 1}},
             {"status": "Accepted", "data": json_text_of({"a": 1})}),
        csms("data-transfer-vendor-only", "DataTransfer", {"vendorId": "org.example"}, "DataTransfer",
             {"vendorId": "org.example"}, status("UnknownVendorId"), status("UnknownVendorId")),
    ]
    run_table(proxy_binary, tmp_path, V16, rows, "the CSMS smart charging/authorization table")


def test_csms_firmware_diagnostics_and_security_table(proxy_binary, tmp_path):
    hash_data = {"hashAlgorithm": "SHA256", "issuerNameHash": "a" * 64, "issuerKeyHash": "b" * 64,
                 "serialNumber": "01"}
    rows = [
        csms("update-firmware", "UpdateFirmware", {"location": "https://fw.example/fw.bin", "retrieveDate": T1,
                                                   "retries": 3, "retryInterval": 60},
             "UpdateFirmware", {"requestId": IS_INT, "retries": 3, "retryInterval": 60, "firmware": {
                 "location": "https://fw.example/fw.bin", "retrieveDateTime": Instant(T1)}},
             status("Accepted"), {}),
        csms("update-firmware-refused", "UpdateFirmware", {"location": "ftp://fw.example/fw.bin", "retrieveDate": T2},
             "UpdateFirmware", {"requestId": IS_INT, "firmware": {
                 "location": "ftp://fw.example/fw.bin", "retrieveDateTime": Instant(T2)}},
             status("InvalidCertificate"), {}),
        csms("get-diagnostics", "GetDiagnostics", {"location": "ftp://logs.example/", "startTime": T0,
                                                   "stopTime": T1, "retries": 2, "retryInterval": 30},
             "GetLog", {"logType": "DiagnosticsLog", "requestId": IS_INT, "retries": 2, "retryInterval": 30,
                        "log": {"remoteLocation": "ftp://logs.example/", "oldestTimestamp": Instant(T0),
                                "latestTimestamp": Instant(T1)}},
             {"status": "Accepted", "filename": "diag.zip"}, {"fileName": "diag.zip"}),
        csms("get-diagnostics-rejected", "GetDiagnostics", {"location": "ftp://logs.example/"},
             "GetLog", {"logType": "DiagnosticsLog", "requestId": IS_INT,
                        "log": {"remoteLocation": "ftp://logs.example/"}},
             {"status": "Rejected", "filename": "ignored.zip"}, {}),
        csms("get-log", "GetLog", {"logType": "SecurityLog", "requestId": 12, "log": {
            "remoteLocation": "https://logs.example/", "oldestTimestamp": T0}},
            "GetLog", {"logType": "SecurityLog", "requestId": 12, "log": {
                "remoteLocation": "https://logs.example/", "oldestTimestamp": Instant(T0)}},
            {"status": "AcceptedCanceled", "filename": "sec.log"}, {"status": "AcceptedCanceled", "filename": "sec.log"}),
        csms("signed-update-firmware", "SignedUpdateFirmware", {"requestId": 13, "retries": 1, "firmware": {
            "location": "https://fw.example/fw.bin", "retrieveDateTime": T1, "installDateTime": T2,
            "signingCertificate": "CERT", "signature": "SIG"}},
            "UpdateFirmware", {"requestId": 13, "retries": 1, "firmware": {
                "location": "https://fw.example/fw.bin", "retrieveDateTime": Instant(T1),
                "installDateTime": Instant(T2), "signingCertificate": "CERT", "signature": "SIG"}},
            status("RevokedCertificate"), status("RevokedCertificate")),
        csms("install-certificate", "InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                                           "certificate": "PEM"},
             "InstallCertificate", {"certificateType": "CSMSRootCertificate", "certificate": "PEM"},
             status("Failed"), status("Failed")),
        csms("delete-certificate", "DeleteCertificate", {"certificateHashData": hash_data}, "DeleteCertificate",
             {"certificateHashData": hash_data}, status("NotFound"), status("NotFound")),
        csms("installed-certificates", "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"},
             "GetInstalledCertificateIds", {"certificateType": ["ManufacturerRootCertificate"]},
             {"status": "Accepted", "certificateHashDataChain": [
                 {"certificateType": "ManufacturerRootCertificate", "certificateHashData": hash_data,
                  "childCertificateHashData": [hash_data]}]},
             {"status": "Accepted", "certificateHashData": [hash_data]}),
        csms("installed-certificates-none", "GetInstalledCertificateIds",
             {"certificateType": "CentralSystemRootCertificate"},
             "GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]}, status("NotFound"),
             status("NotFound")),
        csms("certificate-signed", "CertificateSigned", {"certificateChain": "PEM-CHAIN"}, "CertificateSigned",
             {"certificateChain": "PEM-CHAIN", "certificateType": Opt("ChargingStationCertificate")},
             status("Rejected"), status("Rejected")),
        csms("extended-trigger-sign", "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"},
             "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, status("Accepted"),
             status("Accepted")),
        csms("extended-trigger-log", "ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification",
                                                                "connectorId": 1},
             "TriggerMessage", {"requestedMessage": "LogStatusNotification", "evse": {"id": 1, "connectorId": 1}},
             status("NotImplemented"), status("NotImplemented")),
    ]
    run_table(proxy_binary, tmp_path, V16, rows, "the CSMS firmware/diagnostics/security table")


def test_evse_layout_table(proxy_binary, tmp_path):
    """With a layout (EVSE 1 has 1.6 connectors 1 and 2, EVSE 2 has connector 3) connectors map both ways."""
    if not has_capability_option(proxy_binary):
        pytest.skip("this ocpp-proxy has no translate --evses (engine of issue 13)")
    layout = ("--evses", "[[1,2],[3]]")
    (tmp_path / "station").mkdir()
    (tmp_path / "csms").mkdir()
    rows = [
        station("evse1-connector2", "StatusNotification", {"timestamp": T0, "connectorStatus": "Available",
                                                           "evseId": 1, "connectorId": 2},
                "StatusNotification", {"timestamp": Instant(T0), "connectorId": 2, "status": "Available",
                                       "errorCode": "NoError"}, {}, {}),
        station("evse2-connector1", "StatusNotification", {"timestamp": T0, "connectorStatus": "Reserved",
                                                           "evseId": 2, "connectorId": 1},
                "StatusNotification", {"timestamp": Instant(T0), "connectorId": 3, "status": "Reserved",
                                       "errorCode": "NoError"}, {}, {}),
        station("meter-evse2", "MeterValues", {"evseId": 2, "meterValue": meter(T1, sv201(10))},
                "MeterValues", {"connectorId": 3, "meterValue": [{"timestamp": Instant(T1),
                                                                  "sampledValue": [sv16("10")]}]}, {}, {}),
    ]
    run_table(proxy_binary, tmp_path / "station", V201, rows, "the station layout table", options=layout)
    rows = [
        csms("availability-connector2", "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"},
             "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 2}},
             status("Accepted"), status("Accepted")),
        csms("unlock-connector3", "UnlockConnector", {"connectorId": 3}, "UnlockConnector",
             {"evseId": 2, "connectorId": 1}, status("Unlocked"), status("Unlocked")),
    ]
    run_table(proxy_binary, tmp_path / "csms", V16, rows, "the CSMS layout table", options=layout)


# ---------------------------------------------------------------------------
# transactions: conversations
# ---------------------------------------------------------------------------


class Conversation:
    """One translate file for a 2.0.1 station on a 1.6 CSMS, grown a line at a time: ``station`` sends a CALL,
    ``csms_answers`` answers the CALL the proxy sent last. Every frame is checked against its schema."""

    def __init__(self, binary, workdir, options=()):
        self.run = TranslateRun(binary, workdir, V201, V16, charger=V201, options=options)
        self.pending: list[list] = []  # CALLs to the CSMS not answered yet, oldest first
        self.calls: dict[str, list] = {}  # station message id -> its CALL

    def _feed(self, line) -> dict:
        self.run.add(line)
        out = self.run.run()[-1]
        for entry in out["send"]:
            frame = entry["frame"]
            if entry["to"] == "csms":
                assert frame[0] == 2, f"only CALLs go to the CSMS here: {frame}"
                assert_schema_valid(V16, frame[2], "request", frame[3], f"{frame[2]} to the CSMS")
                self.pending.append(frame)
            else:
                assert frame[0] == 3, f"the station gets a CALLRESULT: {frame}"
                call = self.calls[frame[1]]
                assert_schema_valid(V201, call[2], "response", frame[2], f"answer to {call[2]}")
        return out

    def station(self, message_id: str, action: str, payload: dict) -> dict:
        assert_schema_valid(V201, action, "request", payload, f"input {action}")
        frame = [2, message_id, action, payload]
        self.calls[message_id] = frame
        return self._feed(frame)

    def csms_answers(self, payload: dict) -> dict:
        frame = self.pending.pop(0)
        assert_schema_valid(V16, frame[2], "response", payload, f"answer fed to {frame[2]}")
        return self._feed([3, frame[1], payload])


def to_csms(out: dict, action: str) -> dict:
    """The one frame of an output: a CALL of ``action`` to the CSMS; its payload."""
    return only_call(out, "csms", action)[3]


def to_station(out: dict, message_id: str) -> dict:
    return only_result(out, "charger", message_id)


def frames(out: dict) -> list[tuple[str, list]]:
    return [(e["to"], e["frame"]) for e in out["send"]]


def event(event_type, transaction_id, seq_no, trigger, timestamp=T0, **fields) -> dict:
    payload = {"eventType": event_type, "timestamp": timestamp, "triggerReason": trigger, "seqNo": seq_no,
               "transactionInfo": {"transactionId": transaction_id, **fields.pop("info", {})}}
    payload.update(fields)
    return payload


def meter(timestamp, *samples) -> list:
    return [{"timestamp": timestamp, "sampledValue": list(samples)}]


def test_transaction_started_updated_ended(proxy_binary, tmp_path):
    c = Conversation(proxy_binary, tmp_path)
    tx = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a01"
    started = event("Started", tx, 0, "Authorized", T0, evse={"id": 1, "connectorId": 1},
                    idToken=token(TAG, "ISO14443"), reservationId=3,
                    meterValue=meter(T0, sv201(1000, context="Transaction.Begin"),
                                     sv201(230, measurand="Voltage", unit="V", context="Transaction.Begin")))
    out = c.station("s-1", "TransactionEvent", started)
    assert_match(to_csms(out, "StartTransaction"), {"connectorId": 1, "idTag": TAG, "meterStart": 1000,
                                                    "timestamp": Instant(T0), "reservationId": 3})
    out = c.csms_answers({"transactionId": 4711, "idTagInfo": {"status": "Accepted", "parentIdTag": "G"}})
    assert_match(to_station(out, "s-1"), {"idTokenInfo": {"status": "Accepted", "groupIdToken": token("G")}})

    # the CSMS's id is bound: readings go with it
    out = c.station("s-2", "TransactionEvent", event(
        "Updated", tx, 1, "MeterValuePeriodic", T1, offline=True, meterValue=meter(T1, sv201(1500), sv201(16.5, "Current.Import",
                                                                                          unit="A", phase="L1"))))
    assert_match(to_csms(out, "MeterValues"), {"connectorId": 1, "transactionId": 4711, "meterValue": [
        {"timestamp": Instant(T1), "sampledValue": [sv16("1500"), sv16("16.5", "Current.Import", unit="A",
                                                                       phase="L1")]}]})
    out = c.csms_answers({})
    assert to_station(out, "s-2") == {}

    # the station did not get the answer to Started and sends it again: answered here, no second start
    out = c.station("s-3", "TransactionEvent", started)
    assert to_station(out, "s-3") == {}

    # a charging state change without readings is a 1.6 status
    out = c.station("s-4", "TransactionEvent", event("Updated", tx, 2, "ChargingStateChanged", T2,
                                                     info={"chargingState": "SuspendedEV"}))
    assert_match(to_csms(out, "StatusNotification"), {"connectorId": 1, "status": "SuspendedEV",
                                                      "errorCode": "NoError", "timestamp": Instant(T2)})
    out = c.csms_answers({})
    assert to_station(out, "s-4") == {}

    # a StatusNotification Occupied during the transaction reads as its charging state
    out = c.station("s-5", "StatusNotification", {"timestamp": T2, "connectorStatus": "Occupied", "evseId": 1,
                                                  "connectorId": 1})
    assert_match(to_csms(out, "StatusNotification"), {"connectorId": 1, "status": "SuspendedEV",
                                                      "errorCode": "NoError", "timestamp": Instant(T2)})
    c.csms_answers({})

    ended = event("Ended", tx, 3, "EVCommunicationLost", T3, info={"stoppedReason": "EVDisconnected"},
                  meterValue=meter(T3, sv201(2.5, context="Transaction.End", unit="kWh")))
    out = c.station("s-6", "TransactionEvent", ended)
    assert_match(to_csms(out, "StopTransaction"), {
        "transactionId": 4711, "meterStop": 2500, "timestamp": Instant(T3), "reason": "EVDisconnected",
        "transactionData": [{"timestamp": Instant(T3), "sampledValue": [
            sv16("2.5", context="Transaction.End", unit="kWh")]}]})
    out = c.csms_answers({"idTagInfo": {"status": "Accepted"}})
    assert_match(to_station(out, "s-6"), {"idTokenInfo": Opt({"status": "Accepted"})})

    # a retried Ended, and a late Updated: answered here
    out = c.station("s-7", "TransactionEvent", ended)
    assert to_station(out, "s-7") == {}
    out = c.station("s-8", "TransactionEvent", event("Updated", tx, 4, "MeterValuePeriodic", T3,
                                                     meterValue=meter(T3, sv201(2600))))
    assert to_station(out, "s-8") == {}
    assert not c.pending


def test_transaction_started_before_authorization(proxy_binary, tmp_path):
    """TxStartPoint EVConnected: Started without idToken is held; the start goes out with the token."""
    c = Conversation(proxy_binary, tmp_path)
    tx = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a02"
    out = c.station("p-1", "TransactionEvent", event(
        "Started", tx, 0, "CablePluggedIn", T0, evse={"id": 2, "connectorId": 1},
        info={"chargingState": "EVConnected"},
        meterValue=meter(T0, sv201(0.5, context="Transaction.Begin", unit="kWh"))))
    assert frames(out) == [("charger", [3, "p-1", {}])], frames(out)

    # readings before any 1.6 transaction: MeterValues without transactionId
    out = c.station("p-2", "TransactionEvent", event("Updated", tx, 1, "MeterValuePeriodic", T1,
                                                     meterValue=meter(T1, sv201(600))))
    assert_match(to_csms(out, "MeterValues"), {"connectorId": 2, "meterValue": [
        {"timestamp": Instant(T1), "sampledValue": [sv16("600")]}]})
    assert to_station(c.csms_answers({}), "p-2") == {}

    # the token: StartTransaction with the Transaction.Begin reading and the time of Started
    out = c.station("p-3", "TransactionEvent", event("Updated", tx, 2, "Authorized", T2,
                                                     idToken=token("USER-2")))
    assert_match(to_csms(out, "StartTransaction"), {"connectorId": 2, "idTag": "USER-2", "meterStart": 500,
                                                    "timestamp": Instant(T0)})
    out = c.csms_answers({"transactionId": 4712, "idTagInfo": {"status": "Accepted"}})
    sent = frames(out)
    assert ("charger", [3, "p-3", {"idTokenInfo": {"status": "Accepted"}}]) in sent, sent
    # the charging state the station reported before goes to the CSMS once it knows the transaction
    statuses = [f for to, f in sent if to == "csms"]
    assert len(statuses) == 1 and statuses[0][2] == "StatusNotification", sent
    assert_match(statuses[0][3], {"connectorId": 2, "status": "SuspendedEV", "errorCode": "NoError",
                                  "timestamp": Instant(T2)})
    c.csms_answers({})

    out = c.station("p-4", "TransactionEvent", event("Updated", tx, 3, "MeterValuePeriodic", T3,
                                                     meterValue=meter(T3, sv201(700))))
    assert_match(to_csms(out, "MeterValues"), {"connectorId": 2, "transactionId": 4712, "meterValue": ANY})


def test_transaction_token_before_reading_and_ended_never_started(proxy_binary, tmp_path):
    c = Conversation(proxy_binary, tmp_path)
    # Started with a token but no register reading: the CSMS is asked about the token, the start waits
    tx_a = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a03"
    out = c.station("q-1", "TransactionEvent", event("Started", tx_a, 0, "Authorized", T0,
                                                     evse={"id": 3}, idToken=token("USER-3")))
    assert to_csms(out, "Authorize") == {"idTag": "USER-3"}
    out = c.csms_answers({"idTagInfo": {"status": "Accepted"}})
    assert to_station(out, "q-1") == {"idTokenInfo": {"status": "Accepted"}}
    out = c.station("q-2", "TransactionEvent", event("Updated", tx_a, 1, "MeterValuePeriodic", T1,
                                                     meterValue=meter(T1, sv201(5000, context="Sample.Periodic"))))
    assert_match(to_csms(out, "StartTransaction"), {"connectorId": 3, "idTag": "USER-3", "meterStart": 5000,
                                                    "timestamp": Instant(T0)})
    out = c.csms_answers({"transactionId": 4713, "idTagInfo": {"status": "Accepted"}})
    follow = [f for to, f in frames(out) if to == "csms"]
    assert [f[2] for f in follow] == ["MeterValues"], frames(out)
    assert_match(follow[0][3], {"connectorId": 3, "transactionId": 4713, "meterValue": ANY})
    c.csms_answers({})

    # a session that ends before the CSMS heard of it, with a token: StartTransaction, then StopTransaction
    tx_b = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a04"
    out = c.station("q-3", "TransactionEvent", event("Started", tx_b, 0, "CablePluggedIn", T0,
                                                     evse={"id": 4, "connectorId": 1},
                                                     meterValue=meter(T0, sv201(100, context="Transaction.Begin"))))
    assert to_station(out, "q-3") == {}
    out = c.station("q-4", "TransactionEvent", event(
        "Ended", tx_b, 1, "StopAuthorized", T1, idToken=token("USER-4"), info={"stoppedReason": "Local"},
        meterValue=meter(T1, sv201(300, context="Transaction.End"))))
    assert_match(to_csms(out, "StartTransaction"), {"connectorId": 4, "idTag": "USER-4", "meterStart": 100,
                                                    "timestamp": Instant(T0)})
    out = c.csms_answers({"transactionId": 4714, "idTagInfo": {"status": "Accepted"}})
    assert_match(to_csms(out, "StopTransaction"), {"transactionId": 4714, "idTag": "USER-4", "meterStop": 300,
                                                   "timestamp": Instant(T1), "reason": "Local",
                                                   "transactionData": ANY})
    out = c.csms_answers({"idTagInfo": {"status": "Accepted"}})
    assert_match(to_station(out, "q-4"), {"idTokenInfo": {"status": "Accepted"}})

    # a session never authorized: the CSMS never hears of it
    tx_c = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a05"
    assert to_station(c.station("q-5", "TransactionEvent", event("Started", tx_c, 0, "EVDetected", T2,
                                                                 evse={"id": 5})), "q-5") == {}
    assert to_station(c.station("q-6", "TransactionEvent", event("Ended", tx_c, 1, "EVDeparted", T3,
                                                                 info={"stoppedReason": "EVDisconnected"})),
                      "q-6") == {}

    # a token 1.6 cannot hold: refused here, never cut
    tx_d = "5b0e3f5e-6a0f-4d8e-9a55-0c3b0b5f4a06"
    out = c.station("q-7", "TransactionEvent", event("Started", tx_d, 0, "Authorized", T2, evse={"id": 6},
                                                     idToken=token(TAG21),
                                                     meterValue=meter(T2, sv201(1, context="Transaction.Begin"))))
    assert_match(to_station(out, "q-7"), {"idTokenInfo": {"status": AnyOf("Invalid", "Unknown")}})
    assert not c.pending


def test_an_event_of_a_transaction_with_no_known_connector_is_acknowledged_and_logged(proxy_binary, tmp_path):
    """An Updated or Ended of a transaction the proxy never saw start (state lost, or the station moved behind
    the proxy mid-transaction) that names no EVSE: a 1.6 CSMS cannot place it on a connector. It is acknowledged
    (the station would otherwise retry it and then drop it) and logged with the event, never an InternalError."""
    c = Conversation(proxy_binary, tmp_path)
    unknown = "0c2f7b8e-1d44-4f4a-a1a9-7a0d6b7e9c01"
    for number, payload in enumerate([
        event("Updated", unknown, 5, "MeterValuePeriodic", T1, meterValue=meter(T1, sv201(1500))),
        event("Ended", unknown, 6, "StopAuthorized", T2, info={"stoppedReason": "Local"},
              idToken=token(TAG, "ISO14443"), meterValue=meter(T2, sv201(1800, context="Transaction.End"))),
    ]):
        out = c.station(f"u-{number}", "TransactionEvent", payload)
        assert to_station(out, f"u-{number}") == {}, out
        assert [line for line in out["log"] if unknown in line and "no 1.6 connector" in line], out["log"]
        assert not [line for line in out["log"] if line.startswith("error")], out["log"]
    assert not c.pending


def test_a_charging_state_is_sent_to_the_csms_when_it_changes(proxy_binary, tmp_path):
    """A station that puts its chargingState into every Updated: the 1.6 CSMS gets a StatusNotification when
    the state changes, not one per meter reading."""
    c = Conversation(proxy_binary, tmp_path)
    tx = "7d1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    c.station("s-1", "TransactionEvent", event(
        "Started", tx, 0, "Authorized", T0, evse={"id": 1, "connectorId": 1}, idToken=token(TAG, "ISO14443"),
        info={"chargingState": "Charging"}, meterValue=meter(T0, sv201(1000, context="Transaction.Begin"))))
    out = c.csms_answers({"transactionId": 99, "idTagInfo": {"status": "Accepted"}})
    assert [frame[2:] for to, frame in frames(out) if to == "csms"] == [
        ["StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": T0}]]
    c.csms_answers({})
    # the same state with the readings: MeterValues only
    c.station("s-2", "TransactionEvent", event("Updated", tx, 1, "MeterValuePeriodic", T1,
                                               info={"chargingState": "Charging"}, meterValue=meter(T1, sv201(1200))))
    out = c.csms_answers({})
    assert frames(out) == [("charger", [3, "s-2", {}])], frames(out)
    # the same state, no readings: nothing for the CSMS
    out = c.station("s-3", "TransactionEvent", event("Updated", tx, 2, "Trigger", T1,
                                                     info={"chargingState": "Charging"}))
    assert frames(out) == [("charger", [3, "s-3", {}])], frames(out)
    # a new state with the readings: MeterValues, then the status
    c.station("s-4", "TransactionEvent", event("Updated", tx, 3, "ChargingStateChanged", T2,
                                               info={"chargingState": "SuspendedEV"}, meterValue=meter(T2, sv201(1300))))
    out = c.csms_answers({})
    assert [frame[2:] for to, frame in frames(out) if to == "csms"] == [
        ["StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEV", "timestamp": T2}]]
    c.csms_answers({})
    assert not c.pending
