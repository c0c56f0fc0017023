"""Table tests of Rules/ocpp1.5-ocpp1.6.yaml through ``ocpp-proxy translate``: every OCPP 1.5 operation in
both directions, toward a 1.6 CSMS (one rule file) and toward a 2.0.1 CSMS (the 1.5 → 1.6 → 2.0.1 chain).

Each row is one CALL and, when it becomes a CALL toward the other side, the answer that side gives. The test
checks the translated CALL and the answer that goes back, and validates every 1.6 and 2.0.1 frame (in and out)
against the official JSON schema of the installed ``ocpp`` package. OCPP 1.5 has no JSON schema: its frames
are checked by the proxy against ``Rules/definitions/ocpp1.5.yaml`` (made from the official WSDLs), and here
against the expected payloads. All failures of a table are reported together.
"""

from __future__ import annotations

from typing import Any

from test_translation_table import Row  # name, frame, action, expected, result, expected_result
from translation_support import (
    IS_UUID,
    V16,
    V201,
    Exchange,
    Instant,
    Problems,
    FIRST_TX_ID,
    TRANSLATE_NOW,
    TranslateRun,
    assert_match,
    assert_schema_valid,
    only_call,
    only_result,
)

V15 = "ocpp1.5"
T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T10:15:00Z"
TAG = "04A1B2C3D4E5F6"


def validate(version: str, action: str, kind: str, payload: Any, what: str) -> None:
    if version != V15:
        assert_schema_valid(version, action, kind, payload, what)


def run_rows(binary, workdir, source: str, target: str, rows: list[Row], what: str) -> None:
    run = TranslateRun(binary, workdir, source, target)
    toward = run.toward
    back = "charger" if toward == "csms" else "csms"
    problems = Problems()
    exchanges = []
    for row in rows:
        validate(source, row.frame[2], "request", row.frame[3], f"table row {row.name}: input")
        assert (row.action is None) == (row.result is None), f"table row {row.name}: a CALL needs an answer"
        if row.action is not None:
            validate(target, row.action, "response", row.result, f"table row {row.name}: answer fed in")
        exchanges.append(Exchange(row.frame, row.result))
    run.converse(exchanges)
    out = run.outputs
    for row, ex in zip(rows, exchanges):
        output = out[ex.call_line]
        if row.action is None:
            answer = problems.check(row.name, lambda: only_result(output, back, row.frame[1]))
            if answer is not None:
                problems.check(row.name, lambda: validate(source, row.frame[2], "response", answer, row.name))
                problems.check(row.name, lambda: assert_match(answer, row.expected_result, f"{row.name}: answer"))
            continue
        call = problems.check(row.name, lambda: only_call(output, toward, row.action))
        if call is None or ex.answer_line is None:
            continue
        problems.check(row.name, lambda: validate(target, row.action, "request", call[3], row.name))
        problems.check(row.name, lambda: assert_match(call[3], row.expected, row.name))
        name = f"{row.name} result"
        result = problems.check(name, lambda: only_result(out[ex.answer_line], back, row.frame[1]))
        if result is not None:
            problems.check(name, lambda: validate(source, row.frame[2], "response", result, name))
            problems.check(name, lambda: assert_match(result, row.expected_result, name))
    problems.assert_none(what)


def reading(value: str, **attributes) -> dict:
    """A 1.5 meter reading: its text is ``value``, its XML attributes the other fields."""
    return {"value": value, **attributes}


# ---------------------------------------------------------------------------
# 1.5 charger -> 1.6 CSMS
# ---------------------------------------------------------------------------


def test_charger_operations_from_1_5_to_1_6(proxy_binary, tmp_path):
    boot = {"chargePointVendor": "Legacy", "chargePointModel": "S-15", "chargePointSerialNumber": "CP-9",
            "chargeBoxSerialNumber": "BOX-9", "firmwareVersion": "1.5.3", "iccid": "8931", "imsi": "2620",
            "meterType": "M", "meterSerialNumber": "MS"}
    rows = [
        Row("authorize", [2, "a1", "Authorize", {"idTag": TAG}], "Authorize", {"idTag": TAG},
            {"idTagInfo": {"status": "Blocked", "expiryDate": T1, "parentIdTag": "P"}},
            {"idTagInfo": {"status": "Blocked", "expiryDate": Instant(T1), "parentIdTag": "P"}}),
        Row("boot-accepted", [2, "b1", "BootNotification", boot], "BootNotification", boot,
            {"status": "Accepted", "currentTime": T0, "interval": 300},
            {"status": "Accepted", "currentTime": Instant(T0), "heartbeatInterval": 300}),
        Row("boot-pending", [2, "b2", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}],
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"},
            {"status": "Pending", "currentTime": T0, "interval": 60},
            {"status": "Rejected", "currentTime": Instant(T0), "heartbeatInterval": 60}),
        Row("heartbeat", [2, "h1", "Heartbeat", {}], "Heartbeat", {}, {"currentTime": T0},
            {"currentTime": Instant(T0)}),
        Row("data-transfer", [2, "d1", "DataTransfer", {"vendorId": "org.example", "messageId": "m", "data": "x"}],
            "DataTransfer", {"vendorId": "org.example", "messageId": "m", "data": "x"},
            {"status": "UnknownMessageId", "data": "y"}, {"status": "UnknownMessageId", "data": "y"}),
        Row("diagnostics-status", [2, "g1", "DiagnosticsStatusNotification", {"status": "UploadFailed"}],
            "DiagnosticsStatusNotification", {"status": "UploadFailed"}, {}, {}),
        Row("firmware-status", [2, "f1", "FirmwareStatusNotification", {"status": "InstallationFailed"}],
            "FirmwareStatusNotification", {"status": "InstallationFailed"}, {}, {}),
        Row("status-available", [2, "n1", "StatusNotification",
                                 {"connectorId": 1, "status": "Available", "errorCode": "NoError", "timestamp": T0}],
            "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError",
                                   "timestamp": Instant(T0)}, {}, {}),
        Row("status-occupied-before-a-transaction", [2, "n2", "StatusNotification",
                                                     {"connectorId": 1, "status": "Occupied", "errorCode": "NoError"}],
            "StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}, {}, {}),
        Row("status-mode3-error", [2, "n3", "StatusNotification",
                                   {"connectorId": 2, "status": "Faulted", "errorCode": "Mode3Error",
                                    "info": "i" * 80, "vendorId": "acme", "vendorErrorCode": "E1"}],
            "StatusNotification", {"connectorId": 2, "status": "Faulted", "errorCode": "EVCommunicationError",
                                   "info": "i" * 50, "vendorId": "acme", "vendorErrorCode": "E1"}, {}, {}),
        Row("start", [2, "s1", "StartTransaction", {"connectorId": 1, "idTag": TAG, "timestamp": T0,
                                                    "meterStart": 1000, "reservationId": 3}],
            "StartTransaction", {"connectorId": 1, "idTag": TAG, "timestamp": Instant(T0), "meterStart": 1000,
                                 "reservationId": 3},
            {"transactionId": 42, "idTagInfo": {"status": "Accepted"}},
            {"transactionId": 42, "idTagInfo": {"status": "Accepted"}}),
        # with transaction 42 running on connector 1, a 1.5 Occupied is 1.6 Charging
        Row("status-occupied-in-a-transaction", [2, "n4", "StatusNotification",
                                                 {"connectorId": 1, "status": "Occupied", "errorCode": "NoError"}],
            "StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"}, {}, {}),
        Row("meter-values", [2, "m1", "MeterValues", {"connectorId": 1, "transactionId": 42, "values": [
            {"timestamp": T0, "value": [
                reading("16.5", unit="Amp", measurand="Current.Import", context="Sample.Periodic", location="Outlet"),
                reading("230", unit="Volt", measurand="Voltage", format="Raw"),
                reading("1500", unit="Wh", measurand="Energy.Active.Import.Register"),
                reading("21", unit="Celsius", measurand="Temperature", location="Body")]},
            {"timestamp": T1, "value": [reading("1700")]}]}],
            "MeterValues", {"connectorId": 1, "transactionId": 42, "meterValue": [
                {"timestamp": Instant(T0), "sampledValue": [
                    {"value": "16.5", "unit": "A", "measurand": "Current.Import", "context": "Sample.Periodic",
                     "location": "Outlet"},
                    {"value": "230", "unit": "V", "measurand": "Voltage", "format": "Raw"},
                    {"value": "1500", "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                    {"value": "21", "unit": "Celsius", "measurand": "Temperature", "location": "Body"}]},
                {"timestamp": Instant(T1), "sampledValue": [{"value": "1700"}]}]}, {}, {}),
        Row("meter-values-without-readings", [2, "m2", "MeterValues", {"connectorId": 1}], None, None, None, {}),
        Row("stop", [2, "e1", "StopTransaction", {"transactionId": 42, "idTag": TAG, "timestamp": T1,
                                                  "meterStop": 2000, "transactionData": [
                                                      {"values": [{"timestamp": T0, "value": [reading("1000")]},
                                                                  {"timestamp": T1, "value": [reading("2", unit="kWh")]}]},
                                                      {"values": [{"timestamp": T1, "value": [
                                                          reading("0", unit="Amp", context="Transaction.End")]}]}]}],
            "StopTransaction", {"transactionId": 42, "idTag": TAG, "timestamp": Instant(T1), "meterStop": 2000,
                                "transactionData": [
                                    {"timestamp": Instant(T0), "sampledValue": [{"value": "1000"}]},
                                    {"timestamp": Instant(T1), "sampledValue": [{"value": "2", "unit": "kWh"}]},
                                    {"timestamp": Instant(T1), "sampledValue": [
                                        {"value": "0", "unit": "A", "context": "Transaction.End"}]}]},
            {"idTagInfo": {"status": "Expired"}}, {"idTagInfo": {"status": "Expired"}}),
        # transaction 42 has ended: Occupied is no longer Charging
        Row("status-occupied-after-the-transaction", [2, "n5", "StatusNotification",
                                                      {"connectorId": 1, "status": "Occupied", "errorCode": "NoError"}],
            "StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}, {}, {}),
        Row("stop-without-data", [2, "e2", "StopTransaction", {"transactionId": 7, "timestamp": T1, "meterStop": 5}],
            "StopTransaction", {"transactionId": 7, "timestamp": Instant(T1), "meterStop": 5}, {}, {}),
    ]
    run_rows(proxy_binary, tmp_path, V15, V16, rows, "the 1.5 → 1.6 charger table")


# ---------------------------------------------------------------------------
# 1.6 CSMS -> 1.5 charger
# ---------------------------------------------------------------------------

PROFILE16 = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
             "chargingProfileKind": "Absolute",
             "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}


def test_csms_operations_from_1_6_to_1_5(proxy_binary, tmp_path):
    entry = {"idTag": TAG, "idTagInfo": {"status": "Accepted", "expiryDate": T1, "parentIdTag": "P"}}
    rows = [
        Row("cancel-reservation", [2, "c1", "CancelReservation", {"reservationId": 4}], "CancelReservation",
            {"reservationId": 4}, {"status": "Rejected"}, {"status": "Rejected"}),
        Row("change-availability", [2, "c2", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}],
            "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, {"status": "Scheduled"},
            {"status": "Scheduled"}),
        Row("change-configuration", [2, "c3", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}],
            "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": "NotSupported"},
            {"status": "NotSupported"}),
        Row("clear-cache", [2, "c4", "ClearCache", {}], "ClearCache", {}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("data-transfer", [2, "c5", "DataTransfer", {"vendorId": "org.example", "data": "x"}], "DataTransfer",
            {"vendorId": "org.example", "data": "x"}, {"status": "Rejected"}, {"status": "Rejected"}),
        Row("get-configuration", [2, "c6", "GetConfiguration", {"key": ["A", "B", "C"]}], "GetConfiguration",
            {"key": ["A", "B", "C"]},
            {"configurationKey": [{"key": "A", "readonly": True, "value": "1"}, {"key": "B", "readonly": False}],
             "unknownKey": ["C"]},
            {"configurationKey": [{"key": "A", "readonly": True, "value": "1"}, {"key": "B", "readonly": False}],
             "unknownKey": ["C"]}),
        Row("get-configuration-long-value", [2, "c6b", "GetConfiguration", {}], "GetConfiguration", {},
            {"configurationKey": [{"key": "Long", "readonly": True, "value": "v" * 700}]},
            {"configurationKey": [{"key": "Long", "readonly": True, "value": "v" * 500}]}),
        Row("get-diagnostics", [2, "c7", "GetDiagnostics", {"location": "ftp://example.com/diag", "retries": 2,
                                                            "retryInterval": 30, "startTime": T0, "stopTime": T1}],
            "GetDiagnostics", {"location": "ftp://example.com/diag", "retries": 2, "retryInterval": 30,
                               "startTime": Instant(T0), "stopTime": Instant(T1)},
            {"fileName": "diag.zip"}, {"fileName": "diag.zip"}),
        Row("get-local-list-version", [2, "c8", "GetLocalListVersion", {}], "GetLocalListVersion", {},
            {"listVersion": 12}, {"listVersion": 12}),
        Row("remote-start", [2, "c9", "RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}],
            "RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("remote-start-with-a-profile", [2, "c10", "RemoteStartTransaction",
                                            {"idTag": TAG, "chargingProfile": PROFILE16 | {
                                                "chargingProfilePurpose": "TxProfile"}}],
            None, None, None, {"status": "Rejected"}),
        Row("remote-stop", [2, "c11", "RemoteStopTransaction", {"transactionId": 42}], "RemoteStopTransaction",
            {"transactionId": 42}, {"status": "Rejected"}, {"status": "Rejected"}),
        Row("reserve-now", [2, "c12", "ReserveNow", {"connectorId": 1, "expiryDate": T1, "idTag": TAG,
                                                     "parentIdTag": "P", "reservationId": 9}],
            "ReserveNow", {"connectorId": 1, "expiryDate": Instant(T1), "idTag": TAG, "parentIdTag": "P",
                           "reservationId": 9}, {"status": "Occupied"}, {"status": "Occupied"}),
        Row("reset", [2, "c13", "Reset", {"type": "Soft"}], "Reset", {"type": "Soft"}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("send-local-list", [2, "c14", "SendLocalList", {"listVersion": 3, "updateType": "Full",
                                                            "localAuthorizationList": [entry, {"idTag": "T2"}]}],
            "SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorisationList": [
                {"idTag": TAG, "idTagInfo": {"status": "Accepted", "expiryDate": Instant(T1), "parentIdTag": "P"}},
                {"idTag": "T2"}]},
            {"status": "HashError", "hash": "abc"}, {"status": "Failed"}),
        Row("send-local-list-empty", [2, "c15", "SendLocalList", {"listVersion": 4, "updateType": "Differential"}],
            "SendLocalList", {"listVersion": 4, "updateType": "Differential"}, {"status": "VersionMismatch"},
            {"status": "VersionMismatch"}),
        Row("unlock-accepted", [2, "c16", "UnlockConnector", {"connectorId": 1}], "UnlockConnector",
            {"connectorId": 1}, {"status": "Accepted"}, {"status": "Unlocked"}),
        Row("unlock-rejected", [2, "c17", "UnlockConnector", {"connectorId": 2}], "UnlockConnector",
            {"connectorId": 2}, {"status": "Rejected"}, {"status": "UnlockFailed"}),
        Row("update-firmware", [2, "c18", "UpdateFirmware", {"location": "http://example.com/fw.bin",
                                                             "retrieveDate": T1, "retries": 1}],
            "UpdateFirmware", {"location": "http://example.com/fw.bin", "retrieveDate": Instant(T1), "retries": 1},
            {}, {}),
        # 1.6 operations 1.5 lacks: the proxy answers (MAPPING.md §4)
        Row("set-charging-profile", [2, "x1", "SetChargingProfile", {"connectorId": 1,
                                                                      "csChargingProfiles": PROFILE16}],
            None, None, None, {"status": "NotSupported"}),
        Row("clear-charging-profile", [2, "x2", "ClearChargingProfile", {"id": 1}], None, None, None,
            {"status": "Unknown"}),
        Row("get-composite-schedule", [2, "x3", "GetCompositeSchedule", {"connectorId": 1, "duration": 60}],
            None, None, None, {"status": "Rejected"}),
        Row("trigger-message", [2, "x4", "TriggerMessage", {"requestedMessage": "Heartbeat"}], None, None, None,
            {"status": "NotImplemented"}),
        Row("extended-trigger-message", [2, "x5", "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}],
            None, None, None, {"status": "NotImplemented"}),
        Row("get-log", [2, "x6", "GetLog", {"log": {"remoteLocation": "ftp://example.com/"},
                                            "logType": "SecurityLog", "requestId": 1}],
            None, None, None, {"status": "Rejected"}),
        Row("signed-update-firmware", [2, "x7", "SignedUpdateFirmware", {
            "requestId": 2, "firmware": {"location": "http://example.com/fw", "retrieveDateTime": T1,
                                         "signingCertificate": "CERT", "signature": "SIG"}}],
            None, None, None, {"status": "Rejected"}),
        Row("certificate-signed", [2, "x8", "CertificateSigned", {"certificateChain": "PEM"}], None, None, None,
            {"status": "Rejected"}),
        Row("install-certificate", [2, "x9", "InstallCertificate",
                                    {"certificateType": "ManufacturerRootCertificate", "certificate": "PEM"}],
            None, None, None, {"status": "Rejected"}),
        Row("delete-certificate", [2, "x10", "DeleteCertificate", {"certificateHashData": {
            "hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "c"}}],
            None, None, None, {"status": "NotFound"}),
        Row("get-installed-certificate-ids", [2, "x11", "GetInstalledCertificateIds",
                                              {"certificateType": "CentralSystemRootCertificate"}],
            None, None, None, {"status": "NotFound"}),
    ]
    run_rows(proxy_binary, tmp_path, V16, V15, rows, "the 1.6 → 1.5 CSMS table")


# ---------------------------------------------------------------------------
# the chain: 1.5 charger <-> 2.0.1 CSMS through both rule files
# ---------------------------------------------------------------------------


def test_charger_operations_from_1_5_to_2_0_1_through_the_chain(proxy_binary, tmp_path):
    rows = [
        Row("boot", [2, "b1", "BootNotification", {"chargePointVendor": "Legacy", "chargePointModel": "S-15"}],
            "BootNotification", {"chargingStation": {"vendorName": "Legacy", "model": "S-15"}, "reason": "PowerUp"},
            {"status": "Accepted", "currentTime": T0, "interval": 300},
            {"status": "Accepted", "currentTime": Instant(T0), "heartbeatInterval": 300}),
        Row("authorize", [2, "a1", "Authorize", {"idTag": TAG}], "Authorize",
            {"idToken": {"idToken": TAG, "type": "ISO14443"}}, {"idTokenInfo": {"status": "NotAtThisTime"}},
            {"idTagInfo": {"status": "Invalid"}}),
        Row("heartbeat", [2, "h1", "Heartbeat", {}], "Heartbeat", {}, {"currentTime": T0},
            {"currentTime": Instant(T0)}),
        Row("data-transfer", [2, "d1", "DataTransfer", {"vendorId": "org.example", "data": "x"}], "DataTransfer",
            {"vendorId": "org.example", "data": "x"}, {"status": "Accepted"}, {"status": "Accepted"}),
        Row("status-available", [2, "n1", "StatusNotification",
                                 {"connectorId": 1, "status": "Available", "errorCode": "NoError", "timestamp": T0}],
            "StatusNotification", {"connectorStatus": "Available", "evseId": 1, "connectorId": 1,
                                   "timestamp": Instant(T0)}, {}, {}),
        Row("status-station-faulted", [2, "n2", "StatusNotification",
                                       {"connectorId": 0, "status": "Faulted", "errorCode": "Mode3Error"}],
            "NotifyEvent", station_faulted_event(), {}, {}),
        Row("diagnostics-status", [2, "g1", "DiagnosticsStatusNotification", {"status": "Uploaded"}],
            "LogStatusNotification", {"status": "Uploaded"}, {}, {}),  # no GetLog seen: no requestId
        Row("firmware-status", [2, "f1", "FirmwareStatusNotification", {"status": "Installed"}],
            "FirmwareStatusNotification", {"status": "Installed"}, {}, {}),
        Row("start", [2, "s1", "StartTransaction", {"connectorId": 2, "idTag": TAG, "timestamp": T0,
                                                    "meterStart": 1000}],
            "TransactionEvent", {"eventType": "Started", "timestamp": Instant(T0), "triggerReason": "Authorized",
                                 "seqNo": 0, "transactionInfo": {"transactionId": IS_UUID, "chargingState": "Charging"},
                                 "evse": {"id": 2, "connectorId": 1},
                                 "idToken": {"idToken": TAG, "type": "ISO14443"},
                                 "meterValue": [{"timestamp": Instant(T0), "sampledValue": [
                                     {"value": 1000, "context": "Transaction.Begin",
                                      "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}]}]},
            {"idTokenInfo": {"status": "Accepted"}}, {"transactionId": FIRST_TX_ID, "idTagInfo": {"status": "Accepted"}}),
        Row("meter-values", [2, "m1", "MeterValues", {"connectorId": 2, "transactionId": FIRST_TX_ID, "values": [
            {"timestamp": T1, "value": [reading("16", unit="Amp", measurand="Current.Import",
                                                context="Sample.Periodic")]}]}],
            "TransactionEvent", {"eventType": "Updated", "timestamp": Instant(T1),
                                 "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                                 "transactionInfo": {"transactionId": IS_UUID}, "evse": {"id": 2, "connectorId": 1},
                                 "meterValue": [{"timestamp": Instant(T1), "sampledValue": [
                                     {"value": 16, "measurand": "Current.Import", "context": "Sample.Periodic",
                                      "unitOfMeasure": {"unit": "A"}}]}]}, {}, {}),
        Row("stop", [2, "e1", "StopTransaction", {"transactionId": FIRST_TX_ID, "timestamp": T1, "meterStop": 2500,
                                                  "transactionData": [{"values": [
                                                      {"timestamp": T1, "value": [reading("230", unit="Volt",
                                                                                          measurand="Voltage")]}]}]}],
            "TransactionEvent", {"eventType": "Ended", "timestamp": Instant(T1), "triggerReason": "StopAuthorized",
                                 "seqNo": 2, "transactionInfo": {"transactionId": IS_UUID, "stoppedReason": "Local"},
                                 "meterValue": [
                                     {"timestamp": Instant(T1), "sampledValue": [
                                         {"value": 2500, "context": "Transaction.End",
                                          "measurand": "Energy.Active.Import.Register",
                                          "unitOfMeasure": {"unit": "Wh"}}]},
                                     {"timestamp": Instant(T1), "sampledValue": [
                                         {"value": 230, "measurand": "Voltage", "unitOfMeasure": {"unit": "V"}}]}]},
            {}, {}),
    ]
    run_rows(proxy_binary, tmp_path, V15, V201, rows, "the 1.5 → 2.0.1 charger table")


def station_faulted_event() -> dict:
    """What a 1.5 charger's station-wide Faulted (connector 0) becomes on a 2.0.1 CSMS: a NotifyEvent of
    ChargingStation.AvailabilityState, with the 1.5 Mode3Error as its 1.6 name."""
    return {"generatedAt": Instant(TRANSLATE_NOW), "seqNo": 0, "tbc": False, "eventData": [{
        "eventId": 1, "timestamp": Instant(TRANSLATE_NOW), "trigger": "Delta", "actualValue": "Faulted",
        "techCode": "EVCommunicationError", "component": {"name": "ChargingStation"},
        "variable": {"name": "AvailabilityState"}, "eventNotificationType": "HardWiredNotification"}]}


def test_csms_operations_from_2_0_1_to_1_5_through_the_chain(proxy_binary, tmp_path):
    rows = [
        Row("request-start", [2, "r1", "RequestStartTransaction", {"evseId": 1, "remoteStartId": 7,
                                                                   "idToken": {"idToken": TAG, "type": "ISO14443"}}],
            "RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("request-stop-unknown", [2, "r2", "RequestStopTransaction", {"transactionId": "nope"}], None, None,
            None, {"status": "Rejected"}),
        Row("reset", [2, "r3", "Reset", {"type": "Immediate"}], "Reset", {"type": "Hard"}, {"status": "Rejected"},
            {"status": "Rejected"}),
        Row("unlock", [2, "r4", "UnlockConnector", {"evseId": 1, "connectorId": 1}], "UnlockConnector",
            {"connectorId": 1}, {"status": "Rejected"}, {"status": "UnlockFailed"}),
        Row("change-availability", [2, "r5", "ChangeAvailability", {"operationalStatus": "Operative"}],
            "ChangeAvailability", {"connectorId": 0, "type": "Operative"}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("get-variables", [2, "r6", "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}],
            "GetConfiguration", {"key": ["HeartbeatInterval"]},
            {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "900"}]},
            {"getVariableResult": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                                    "attributeType": "Actual", "attributeStatus": "Accepted",
                                    "attributeValue": "900"}]}),
        Row("set-variables", [2, "r7", "SetVariables", {"setVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
             "attributeValue": "60"}]}],
            "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": "Accepted"},
            {"setVariableResult": [{"component": {"name": "OCPPCommCtrlr"},
                                    "variable": {"name": "HeartbeatInterval"}, "attributeType": "Actual",
                                    "attributeStatus": "Accepted"}]}),
        Row("clear-cache", [2, "r8", "ClearCache", {}], "ClearCache", {}, {"status": "Accepted"},
            {"status": "Accepted"}),
        Row("get-log", [2, "r9", "GetLog", {"log": {"remoteLocation": "ftp://example.com/"},
                                            "logType": "DiagnosticsLog", "requestId": 5}],
            "GetDiagnostics", {"location": "ftp://example.com/"}, {"fileName": "d.zip"},
            {"status": "Accepted", "filename": "d.zip"}),
        Row("update-firmware", [2, "r10", "UpdateFirmware", {"requestId": 6, "firmware": {
            "location": "http://example.com/fw", "retrieveDateTime": T1}}],
            "UpdateFirmware", {"location": "http://example.com/fw", "retrieveDate": Instant(T1)}, {},
            {"status": "Accepted"}),
        Row("send-local-list", [2, "r11", "SendLocalList", {"versionNumber": 2, "updateType": "Full",
                                                            "localAuthorizationList": [{
                                                                "idToken": {"idToken": TAG, "type": "ISO14443"},
                                                                "idTokenInfo": {"status": "Accepted"}}]}],
            "SendLocalList", {"listVersion": 2, "updateType": "Full", "localAuthorisationList": [
                {"idTag": TAG, "idTagInfo": {"status": "Accepted"}}]},
            {"status": "HashError"}, {"status": "Failed"}),
        Row("get-local-list-version", [2, "r12", "GetLocalListVersion", {}], "GetLocalListVersion", {},
            {"listVersion": 2}, {"versionNumber": 2}),
        Row("reserve-now", [2, "r13", "ReserveNow", {"id": 3, "expiryDateTime": T1, "evseId": 1,
                                                     "idToken": {"idToken": TAG, "type": "ISO14443"}}],
            "ReserveNow", {"connectorId": 1, "expiryDate": Instant(T1), "idTag": TAG, "reservationId": 3},
            {"status": "Accepted"}, {"status": "Accepted"}),
        Row("cancel-reservation", [2, "r14", "CancelReservation", {"reservationId": 3}], "CancelReservation",
            {"reservationId": 3}, {"status": "Accepted"}, {"status": "Accepted"}),
        Row("data-transfer", [2, "r15", "DataTransfer", {"vendorId": "org.example", "data": {"a": 1}}],
            "DataTransfer", {"vendorId": "org.example", "data": '{"a":1}'}, {"status": "Accepted", "data": "ok"},
            {"status": "Accepted", "data": "ok"}),
        # answered inside the chain by the 1.5 → 1.6 file, translated back by the 1.6 → 2.0.1 file
        Row("set-charging-profile", [2, "r16", "SetChargingProfile", {"evseId": 1, "chargingProfile": {
            "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}]}}],
            None, None, None, {"status": "Rejected"}),
        Row("trigger-message", [2, "r17", "TriggerMessage", {"requestedMessage": "StatusNotification"}], None, None,
            None, {"status": "NotImplemented"}),
        Row("get-composite-schedule", [2, "r18", "GetCompositeSchedule", {"evseId": 1, "duration": 60}], None,
            None, None, {"status": "Rejected"}),
    ]
    run_rows(proxy_binary, tmp_path, V201, V15, rows, "the 2.0.1 → 1.5 CSMS table")
