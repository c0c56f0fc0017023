"""Table tests of Rules/ocpp1.6-ocpp2.0.1.yaml through ``ocpp-proxy translate``.

Each table is one file of frames, one per line: every CALL followed by the answer the other side gives
its translation. The answer needs the message id ``translate`` printed for the translated CALL, so
``TranslateRun.converse`` writes guessed ids, checks them against the printed ones and reruns from the
first wrong guess (usually two runs per table; every run also checks the command is deterministic).
Transactions need a second stage: MeterValues and StopTransaction carry the integer transaction id the
first stage handed to the charger.

For every row the test checks the key translated fields and validates every translated frame against
the official JSON schema of its version (from the installed ``ocpp`` package). The input frames and the
answers the table feeds in are validated too, so a wrong row fails as a table error, not as a proxy bug.
All failures of a table are reported together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from translation_support import (
    ANY,
    ANY_DATETIME,
    IS_INT,
    IS_UUID,
    TRANSLATE_NOW,
    V16,
    V201,
    AnyOf,
    Exchange,
    Instant,
    Matcher,
    Opt,
    Problems,
    TranslateRun,
    assert_match,
    assert_schema_valid,
    match_problems,
    only_call,
    only_result,
)

T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T10:15:00Z"
T2 = "2026-01-01T10:30:00Z"
T3 = "2026-01-01T10:45:00Z"
TAG = "04A1B2C3D4E5F6"
TAG20 = "ABCDEFGHIJKLMNOPQRST"


# ---------------------------------------------------------------------------
# the table runner
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One sample frame.

    ``frame``: the CALL in the source version, or ``fn(ctx) -> frame``.
    ``action``: the action of the one CALL it becomes toward the other side; None when the proxy answers
    the CALL itself (``expected_result`` is then that answer).
    ``expected``: the translated payload: a matcher tree (see ``assert_match``) or ``fn(payload, ctx)``.
    ``result``: the other side's answer payload (or ``fn(ctx) -> payload``); None: the row gets no answer.
    ``expected_result``: the answer that goes back to the caller: matcher tree or ``fn(payload, ctx)``.
    """

    name: str
    frame: Any
    action: str | None = None
    expected: Any = None
    result: Any = None
    expected_result: Any = None


def check(actual, expected, ctx, what):
    if callable(expected) and not isinstance(expected, Matcher):
        expected(actual, ctx)
    else:
        assert_match(actual, expected, what)


def run_table(binary, workdir, source: str, target: str, stages: list[list[Row]], what: str) -> dict:
    """Run the rows stage by stage; fail with every problem found. Returns ``ctx``: per row name its
    input frame, the output objects of its lines, the translated CALL and the translated answer."""
    toward, back = ("csms", "charger") if source == V16 else ("charger", "csms")
    run = TranslateRun(binary, workdir, source, target)
    problems = Problems()
    ctx: dict[str, dict] = {}
    for stage in stages:
        exchanges: dict[str, Exchange] = {}
        for row in stage:
            frame = problems.check(f"{row.name} (building the frame)",
                                   lambda row=row: row.frame(ctx) if callable(row.frame) else row.frame)
            if frame is None:
                continue
            assert_schema_valid(source, frame[2], "request", frame[3], f"table row {row.name}: input")
            assert frame[1] not in {c["frame"][1] for c in ctx.values()}, f"table row {row.name}: reused id"
            assert (row.action is None) == (row.result is None), f"table row {row.name}: a CALL needs an answer"
            answer = None
            if row.result is not None:
                answer = problems.check(f"{row.name} (building the answer)",
                                        lambda row=row: row.result(ctx) if callable(row.result) else row.result)
                if answer is None:
                    continue
                assert_schema_valid(target, row.action, "response", answer, f"table row {row.name}: answer fed in")
            ctx[row.name] = {"frame": frame}
            exchanges[row.name] = Exchange(frame, answer)
        run.converse(list(exchanges.values()))
        out = run.outputs
        for row in stage:
            if row.name not in exchanges:
                continue
            ex, entry = exchanges[row.name], ctx[row.name]
            entry["call_output"] = output = out[ex.call_line]
            if row.action is None:
                answer = problems.check(row.name, lambda: only_result(output, back, entry["frame"][1]))
                if answer is not None:
                    problems.check(row.name, lambda: assert_schema_valid(
                        source, entry["frame"][2], "response", answer, f"{row.name}: answer"))
                    problems.check(row.name, lambda: check(answer, row.expected_result, ctx, f"{row.name}: answer"))
                continue
            call = problems.check(row.name, lambda: only_call(output, toward, row.action))
            if call is None:
                continue
            entry["call"] = call
            problems.check(row.name, lambda: assert_schema_valid(target, row.action, "request", call[3], row.name))
            problems.check(row.name, lambda: check(call[3], row.expected, ctx, row.name))
            if ex.answer_line is None:
                continue
            entry["result_output"] = output = out[ex.answer_line]
            result = problems.check(f"{row.name} result", lambda: only_result(output, back, entry["frame"][1]))
            if result is None:
                continue
            entry["result"] = result
            problems.check(f"{row.name} result", lambda: assert_schema_valid(
                source, entry["frame"][2], "response", result, f"{row.name} result"))
            problems.check(f"{row.name} result",
                           lambda: check(result, row.expected_result, ctx, f"{row.name} result"))
    problems.assert_none(what)
    return ctx


def unit_of_measure(unit: str) -> Any:
    unit = {"Celcius": "Celsius"}.get(unit, unit)
    return AnyOf({"unit": unit}, {"unit": unit, "multiplier": 0})


def sampled_value_201(sv: dict) -> dict:
    """The 2.0.1 sampledValue an unsigned 1.6 sampledValue becomes: value as a number, unit as unitOfMeasure."""
    out: dict[str, Any] = {"value": float(sv["value"])}
    for key in ("context", "measurand", "phase", "location"):
        out[key] = sv[key] if key in sv else Opt(ANY)  # a missing one may get its 1.6 default
    out["unitOfMeasure"] = unit_of_measure(sv["unit"]) if "unit" in sv else Opt(ANY)
    return out


def meter_value_201(mv: dict) -> dict:
    return {"timestamp": Instant(mv["timestamp"]), "sampledValue": [sampled_value_201(s) for s in mv["sampledValue"]]}


def energy_sample(wh: int, context: str) -> dict:
    return {"value": wh, "context": context, "measurand": Opt("Energy.Active.Import.Register"),
            "unitOfMeasure": Opt(unit_of_measure("Wh"))}


def id_tag_info(status: str) -> dict:
    return {"idTagInfo": {"status": status}}


# ---------------------------------------------------------------------------
# charger -> CSMS
# ---------------------------------------------------------------------------


def test_authorize_table(proxy_binary, tmp_path):
    def authorize(n, id_tag, token_type, answer, expected):
        return Row(f"authorize-{n}", [2, f"a-{n}", "Authorize", {"idTag": id_tag}], "Authorize",
                   {"idToken": {"idToken": id_tag, "type": token_type}}, answer, expected)

    rows = [
        authorize("uid7", TAG, "ISO14443", {"idTokenInfo": {"status": "Accepted"}}, id_tag_info("Accepted")),
        authorize("uid4", "04A1B2C3", "ISO14443", {"idTokenInfo": {"status": "Blocked"}}, id_tag_info("Blocked")),
        authorize("iso15693", "E004010012345678", "ISO15693", {"idTokenInfo": {"status": "Expired"}},
                  id_tag_info("Expired")),
        authorize("central20", TAG20, "Central", {"idTokenInfo": {"status": "ConcurrentTx"}},
                  id_tag_info("ConcurrentTx")),
        authorize("short", "A", "Central", {"idTokenInfo": {"status": "Invalid"}}, id_tag_info("Invalid")),
        authorize("expiry-group", "TAG-0002", "Central", {
            "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": T3, "chargingPriority": 5,
                            "language1": "en", "groupIdToken": {"idToken": "GROUP-1", "type": "Central"},
                            "personalMessage": {"format": "ASCII", "content": "hello"}},
            "certificateStatus": "Accepted",
        }, {"idTagInfo": {"status": "Accepted", "expiryDate": Instant(T3), "parentIdTag": "GROUP-1"}}),
    ]
    for i, status in enumerate(["NoCredit", "NotAllowedTypeEVSE", "NotAtThisLocation", "NotAtThisTime", "Unknown"]):
        rows.append(authorize(f"only201-{status}", f"TAG-1{i}", "Central", {"idTokenInfo": {"status": status}},
                              id_tag_info("Invalid")))
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "the Authorize table")


def test_boot_notification_table(proxy_binary, tmp_path):
    full = {"chargePointVendor": "ocpp-proxy-tests", "chargePointModel": "Interop-1",
            "chargePointSerialNumber": "S" * 25, "chargeBoxSerialNumber": "BOX-1", "firmwareVersion": "F" * 50,
            "iccid": "8931000000000000000", "imsi": "262011234567890", "meterType": "M-1", "meterSerialNumber": "MS-1"}
    rows = [
        Row("minimal", [2, "b-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}],
            "BootNotification", {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
            {"currentTime": T0, "interval": 300, "status": "Accepted"},
            {"currentTime": Instant(T0), "interval": 300, "status": "Accepted"}),
        Row("all-fields", [2, "b-2", "BootNotification", full], "BootNotification", {
            "chargingStation": {"vendorName": "ocpp-proxy-tests", "model": "Interop-1", "serialNumber": "S" * 25,
                                "firmwareVersion": "F" * 50,
                                "modem": {"iccid": "8931000000000000000", "imsi": "262011234567890"}},
            "reason": "PowerUp",
        }, {"currentTime": T1, "interval": 60, "status": "Pending", "statusInfo": {"reasonCode": "Later"}},
            {"currentTime": Instant(T1), "interval": 60, "status": "Pending"}),
        Row("longest-vendor-and-model", [2, "b-3", "BootNotification",
                                         {"chargePointVendor": "V" * 20, "chargePointModel": "M" * 20}],
            "BootNotification", {"chargingStation": {"vendorName": "V" * 20, "model": "M" * 20}, "reason": "PowerUp"},
            {"currentTime": T2, "interval": 0, "status": "Rejected"},
            {"currentTime": Instant(T2), "interval": 0, "status": "Rejected"}),
    ]
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "the BootNotification table")


def test_heartbeat_and_data_transfer_table(proxy_binary, tmp_path):
    def object_data(payload, ctx):
        assert payload["status"] == "Accepted" and set(payload) == {"status", "data"}, payload
        assert isinstance(payload["data"], str) and json.loads(payload["data"]) == {"a": 1, "b": [1, 2]}, payload

    rows = [
        Row("heartbeat", [2, "h-1", "Heartbeat", {}], "Heartbeat", {}, {"currentTime": T0},
            {"currentTime": Instant(T0)}),
        Row("data-transfer-full", [2, "d-1", "DataTransfer", {"vendorId": "org.example", "messageId": "m1",
                                                               "data": "text"}],
            "DataTransfer", {"vendorId": "org.example", "messageId": "m1", "data": "text"},
            {"status": "Accepted", "data": "ok"}, {"status": "Accepted", "data": "ok"}),
        Row("data-transfer-vendor-only", [2, "d-2", "DataTransfer", {"vendorId": "v" * 255}], "DataTransfer",
            {"vendorId": "v" * 255}, {"status": "UnknownVendorId"}, {"status": "UnknownVendorId"}),
        Row("data-transfer-json-text", [2, "d-3", "DataTransfer", {"vendorId": "org.example", "messageId": "m3",
                                                                    "data": '{"a":1}'}],
            "DataTransfer", {"vendorId": "org.example", "messageId": "m3", "data": '{"a":1}'},
            {"status": "Accepted", "data": {"a": 1, "b": [1, 2]}}, object_data),
        Row("data-transfer-rejected", [2, "d-4", "DataTransfer", {"vendorId": "org.example", "messageId": "m4"}],
            "DataTransfer", {"vendorId": "org.example", "messageId": "m4"},
            {"status": "Rejected", "statusInfo": {"reasonCode": "NoReason"}}, {"status": "Rejected"}),
        Row("data-transfer-unknown-message", [2, "d-5", "DataTransfer", {"vendorId": "org.example",
                                                                          "messageId": "m5"}],
            "DataTransfer", {"vendorId": "org.example", "messageId": "m5"}, {"status": "UnknownMessageId"},
            {"status": "UnknownMessageId"}),
    ]
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "the Heartbeat/DataTransfer table")


CONNECTOR_STATUS = {"Available": "Available", "Preparing": "Occupied", "Charging": "Occupied",
                    "SuspendedEVSE": "Occupied", "SuspendedEV": "Occupied", "Finishing": "Occupied",
                    "Reserved": "Reserved", "Unavailable": "Unavailable", "Faulted": "Faulted"}


def test_status_notification_table(proxy_binary, tmp_path):
    def notify_event(actual_value, timestamp):
        def check_event(payload, ctx):
            assert_match(payload, {"generatedAt": ANY_DATETIME, "seqNo": IS_INT, "tbc": Opt(False),
                                   "eventData": ANY}, "NotifyEvent")
            assert len(payload["eventData"]) == 1, payload
            assert_match(payload["eventData"][0], {
                "eventId": IS_INT, "timestamp": timestamp, "trigger": "Delta", "actualValue": actual_value,
                "eventNotificationType": ANY, "component": {"name": "ChargingStation"},
                "variable": {"name": "AvailabilityState"}, "cleared": Opt(ANY), "techCode": Opt(ANY),
                "techInfo": Opt(ANY),
            }, "NotifyEvent eventData")
        return check_event

    rows = []
    for i, (status, connector_status) in enumerate(CONNECTOR_STATUS.items()):
        rows.append(Row(f"connector1-{status}", [2, f"s-{i}", "StatusNotification",
                                                 {"connectorId": 1, "errorCode": "NoError", "status": status,
                                                  "timestamp": T0}],
                        "StatusNotification",
                        {"timestamp": Instant(T0), "connectorStatus": connector_status, "evseId": 1, "connectorId": 1},
                        {}, {}))
    rows += [
        Row("no-timestamp", [2, "s-n", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                               "status": "Available"}],
            "StatusNotification",
            {"timestamp": Instant(TRANSLATE_NOW), "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
            {}, {}),
        Row("connector2", [2, "s-c2", "StatusNotification", {"connectorId": 2, "errorCode": "NoError",
                                                              "status": "Charging", "timestamp": T1}],
            "StatusNotification",
            {"timestamp": Instant(T1), "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1}, {}, {}),
        # info and vendorErrorCode go on as a NotifyEvent after it (test_translation_issue13.py)
        Row("vendor-id", [2, "s-i", "StatusNotification", {
            "connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": T2,
            "vendorId": "org.example"}],
            "StatusNotification",
            {"timestamp": Instant(T2), "connectorStatus": "Available", "evseId": 1, "connectorId": 1}, {}, {}),
    ]
    for status in ("Available", "Unavailable", "Faulted"):
        rows.append(Row(f"connector0-{status}", [2, f"s0-{status}", "StatusNotification",
                                                 {"connectorId": 0, "errorCode": "NoError", "status": status,
                                                  "timestamp": T3}],
                        "NotifyEvent", notify_event(status, Instant(T3)), {}, {}))
    rows.append(Row("connector0-no-timestamp", [2, "s0-n", "StatusNotification",
                                                {"connectorId": 0, "errorCode": "NoError", "status": "Available"}],
                    "NotifyEvent", notify_event("Available", Instant(TRANSLATE_NOW)), {}, {}))
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "the StatusNotification table")


def test_firmware_and_diagnostics_status_table(proxy_binary, tmp_path):
    rows = []
    for status in ("Downloaded", "DownloadFailed", "Downloading", "Idle", "InstallationFailed", "Installing",
                   "Installed"):
        rows.append(Row(f"firmware-{status}", [2, f"f-{status}", "FirmwareStatusNotification", {"status": status}],
                        "FirmwareStatusNotification", {"status": status, "requestId": Opt(IS_INT)}, {}, {}))
    for status, log_status in (("Idle", "Idle"), ("Uploaded", "Uploaded"), ("UploadFailed", "UploadFailure"),
                               ("Uploading", "Uploading")):
        rows.append(Row(f"diagnostics-{status}", [2, f"g-{status}", "DiagnosticsStatusNotification",
                                                  {"status": status}],
                        "LogStatusNotification", {"status": log_status, "requestId": Opt(IS_INT)}, {}, {}))
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "the firmware/diagnostics status table")


# ---------------------------------------------------------------------------
# transactions (two stages)
# ---------------------------------------------------------------------------

STOP_REASONS = {  # connector: (1.6 reason, 2.0.1 stoppedReason)
    3: ("HardReset", "ImmediateReset"),
    4: ("UnlockCommand", "Other"),
    5: ("EVDisconnected", "EVDisconnected"),
    6: ("Remote", "Remote"),
    7: ("PowerLoss", "PowerLoss"),
    8: ("DeAuthorized", "DeAuthorized"),
    9: ("EmergencyStop", "EmergencyStop"),
}

MANY_SAMPLES = [
    {"value": "1250", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    {"value": "1.25", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "kWh",
     "location": "Outlet", "format": "Raw"},
    {"value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "unit": "W"},
    {"value": "16.0", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
    {"value": "15.5", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
    {"value": "16.1", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
    {"value": "230.4", "context": "Sample.Periodic", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
    {"value": "55", "context": "Sample.Periodic", "measurand": "SoC", "location": "EV", "unit": "Percent"},
    {"value": "32", "context": "Sample.Periodic", "measurand": "Current.Offered", "unit": "A"},
    {"value": "50.01", "context": "Sample.Periodic", "measurand": "Frequency"},
    {"value": "0.98", "context": "Sample.Periodic", "measurand": "Power.Factor"},
    {"value": "-3.5", "context": "Sample.Periodic", "measurand": "Power.Reactive.Import", "unit": "kvar"},
]
SIGNED = {"signedMeterData": "T0NNRnx7fQ==", "signingMethod": "", "encodingMethod": "OCMF", "publicKey": ""}


def test_transaction_table(proxy_binary, tmp_path):
    def tx_id(name):
        return lambda ctx: ctx[name]["result"]["transactionId"]

    def uuid_of(ctx, name):
        return ctx[name]["call"][3]["transactionInfo"]["transactionId"]

    def start(connector, id_tag, token_type, meter_start, extra=None, answer=None, expected_answer=None):
        payload = {"connectorId": connector, "idTag": id_tag, "meterStart": meter_start, "timestamp": T0,
                   **(extra or {})}
        expected = {
            "eventType": "Started", "timestamp": Instant(T0), "triggerReason": "Authorized", "seqNo": 0,
            "transactionInfo": {"transactionId": IS_UUID, "chargingState": Opt(ANY)},
            "idToken": {"idToken": id_tag, "type": token_type},
            "evse": {"id": connector, "connectorId": 1},
            "meterValue": [{"timestamp": Instant(T0),
                            "sampledValue": [energy_sample(meter_start, "Transaction.Begin")]}],
            "offline": Opt(False),
        }
        if extra and "reservationId" in extra:
            expected["reservationId"] = extra["reservationId"]
        return Row(f"start-c{connector}", [2, f"st-{connector}", "StartTransaction", payload], "TransactionEvent",
                   expected, answer if answer is not None else {"idTokenInfo": {"status": "Accepted"}},
                   expected_answer or {"transactionId": IS_INT, "idTagInfo": {"status": "Accepted"}})

    stage1 = [
        start(1, TAG, "ISO14443", 0),
        start(2, TAG20, "Central", 123456789, {"reservationId": 7}, {"idTokenInfo": {"status": "Blocked"}},
              {"transactionId": IS_INT, "idTagInfo": {"status": "Blocked"}}),
    ]
    for connector in STOP_REASONS:
        stage1.append(start(connector, f"TAG-{connector}", "Central", 100 * connector))
    # no idTokenInfo in the CSMS answer: the 1.6 answer still needs an idTagInfo
    stage1.append(start(10, "TAG-10", "Central", 10, answer={},
                        expected_answer={"transactionId": IS_INT, "idTagInfo": {
                            "status": ANY, "expiryDate": Opt(ANY), "parentIdTag": Opt(ANY)}}))

    def updated(name, seq_no, trigger, mv, start_row="start-c1"):
        def expected(payload, ctx):
            assert_match(payload, {
                "eventType": "Updated", "timestamp": ANY_DATETIME, "triggerReason": trigger, "seqNo": seq_no,
                "transactionInfo": {"transactionId": uuid_of(ctx, start_row), "chargingState": Opt(ANY)},
                "evse": Opt({"id": 1, "connectorId": 1}),
                "meterValue": [meter_value_201(m) for m in mv],
                "offline": Opt(False),
            }, f"{name}")
        return expected

    periodic = [{"timestamp": T1, "sampledValue": MANY_SAMPLES}]
    clock = [{"timestamp": T2, "sampledValue": [
        {"value": "2000", "context": "Sample.Clock", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
    trigger = [{"timestamp": T2, "sampledValue": [
        {"value": "2100", "context": "Trigger", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]},
        {"timestamp": T3, "sampledValue": [
            {"value": "2200", "context": "Trigger", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
    signed = [{"timestamp": T1, "sampledValue": [
        {"value": "123457000", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "unit": "Wh"},
        {"value": json.dumps(SIGNED), "format": "SignedData", "context": "Sample.Periodic",
         "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
    idle = [{"timestamp": T1, "sampledValue": [
        {"value": "230", "measurand": "Voltage", "unit": "V", "context": "Sample.Periodic"}]}]

    def signed_expected(payload, ctx):
        assert_match({k: payload[k] for k in ("eventType", "seqNo", "triggerReason")},
                     {"eventType": "Updated", "seqNo": 1, "triggerReason": "MeterValuePeriodic"})
        assert payload["transactionInfo"]["transactionId"] == uuid_of(ctx, "start-c2"), payload
        samples = [s for mv in payload["meterValue"] for s in mv["sampledValue"]]
        assert all(isinstance(s["value"], (int, float)) for s in samples), samples
        assert any(s["value"] == 123457000 for s in samples), f"the unsigned reading is missing: {samples}"
        assert [s["signedMeterValue"] for s in samples if "signedMeterValue" in s] == [SIGNED], (
            f"expected the 1.6 SignedData value as signedMeterValue: {samples}")

    def ended(name, start_row, seq_no, stopped_reason, meter_stop, id_token=None, extra_samples=()):
        def expected(payload, ctx):
            assert_match(payload, {
                "eventType": "Ended", "timestamp": Instant(T3), "triggerReason": ANY, "seqNo": seq_no,
                "transactionInfo": {"transactionId": uuid_of(ctx, start_row), "stoppedReason": stopped_reason,
                                    "chargingState": Opt(ANY)},
                **({"idToken": id_token} if id_token else {}),
                "evse": Opt(ANY), "meterValue": ANY, "offline": Opt(False),
            }, name)
            end = [{"timestamp": Instant(T3), "sampledValue": [energy_sample(meter_stop, "Transaction.End")]}]
            got = payload["meterValue"]
            wanted = end + [meter_value_201(m) for m in extra_samples]
            assert len(got) == len(wanted), f"{name}: meterValue {got}"
            remaining = list(got)
            for want in wanted:  # any order: Transaction.End may come first or last
                hit = next((g for g in remaining if not match_problems(g, want)), None)
                assert hit is not None, f"{name}: no meterValue matching {want!r} in {got}"
                remaining.remove(hit)
        return expected

    transaction_data = [{"timestamp": T2, "sampledValue": [
        {"value": "4000", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
    stage2 = [
        Row("mv-periodic-many", lambda ctx: [2, "mv-1", "MeterValues", {
            "connectorId": 1, "transactionId": tx_id("start-c1")(ctx), "meterValue": periodic}],
            "TransactionEvent", updated("mv-periodic-many", 1, "MeterValuePeriodic", periodic), {}, {}),
        Row("mv-clock", lambda ctx: [2, "mv-2", "MeterValues", {
            "connectorId": 1, "transactionId": tx_id("start-c1")(ctx), "meterValue": clock}],
            "TransactionEvent", updated("mv-clock", 2, "MeterValueClock", clock), {}, {}),
        Row("mv-trigger", lambda ctx: [2, "mv-3", "MeterValues", {
            "connectorId": 1, "transactionId": tx_id("start-c1")(ctx), "meterValue": trigger}],
            "TransactionEvent", updated("mv-trigger", 3, "Trigger", trigger), {}, {}),
        Row("mv-signed", lambda ctx: [2, "mv-4", "MeterValues", {
            "connectorId": 2, "transactionId": tx_id("start-c2")(ctx), "meterValue": signed}],
            "TransactionEvent", signed_expected, {}, {}),
        Row("mv-without-transaction-connector0", [2, "mv-5", "MeterValues", {"connectorId": 0, "meterValue": idle}],
            "MeterValues", {"evseId": 0, "meterValue": [meter_value_201(m) for m in idle]}, {}, {}),
        Row("mv-without-transaction-idle-connector", [2, "mv-6", "MeterValues",
                                                      {"connectorId": 11, "meterValue": idle}],
            "MeterValues", {"evseId": 11, "meterValue": [meter_value_201(m) for m in idle]}, {}, {}),
        Row("stop-local-with-id-tag-and-transaction-data", lambda ctx: [2, "sp-1", "StopTransaction", {
            "meterStop": 5000, "timestamp": T3, "transactionId": tx_id("start-c1")(ctx), "reason": "Local",
            "idTag": TAG, "transactionData": transaction_data}],
            "TransactionEvent",
            ended("stop-c1", "start-c1", 4, "Local", 5000, {"idToken": TAG, "type": "ISO14443"}, transaction_data),
            {"idTokenInfo": {"status": "Accepted"}}, id_tag_info("Accepted")),
        Row("stop-without-reason", lambda ctx: [2, "sp-2", "StopTransaction", {
            "meterStop": 123457999, "timestamp": T3, "transactionId": tx_id("start-c2")(ctx)}],
            "TransactionEvent", ended("stop-c2", "start-c2", 2, "Local", 123457999), {}, {}),
    ]
    for connector, (reason, stopped) in STOP_REASONS.items():
        stage2.append(Row(f"stop-{reason}", lambda ctx, c=connector, r=reason: [2, f"sp-{c}", "StopTransaction", {
            "meterStop": 100 * c + 50, "timestamp": T3, "transactionId": tx_id(f"start-c{c}")(ctx), "reason": r}],
            "TransactionEvent", ended(f"stop-{reason}", f"start-c{connector}", 1, stopped, 100 * connector + 50),
            {}, {}))

    ctx = run_table(proxy_binary, tmp_path, V16, V201, [stage1, stage2], "the transaction table")

    starts = [name for name in ctx if name.startswith("start-")]
    ints = [ctx[n]["result"]["transactionId"] for n in starts]
    uuids = [ctx[n]["call"][3]["transactionInfo"]["transactionId"] for n in starts]
    assert len(set(ints)) == len(ints), f"integer transaction ids repeat: {ints}"
    assert len(set(uuids)) == len(uuids), f"transaction UUIDs repeat: {uuids}"
    for name in starts:
        # A transaction is kept once the CSMS acknowledged its Started event, before the charger gets its id.
        assert not ctx[name]["call_output"]["state"], f"{name}: state written before the CSMS acknowledged it"
        assert any("transaction" in change for change in ctx[name]["result_output"]["state"]), \
            f"{name}: a new transaction but no state change with its answer"


# ---------------------------------------------------------------------------
# CSMS -> charger
# ---------------------------------------------------------------------------


def csms_row(name, action, payload, action16, expected, result=None, expected_result=None):
    return Row(name, [2, name, action, payload], action16, expected, result, expected_result)


def answered(name, action, payload, expected_answer):
    return Row(name, [2, name, action, payload], None, None, None, expected_answer)


def cv(component, variable, instance=None):
    variable_obj = {"name": variable, **({"instance": instance} if instance else {})}
    return {"component": {"name": component}, "variable": variable_obj}


def status(value):
    return {"status": value}


def status_201(value):
    return {"status": value, "statusInfo": Opt(ANY)}


def test_reset_availability_cache_table(proxy_binary, tmp_path):
    rows = [
        csms_row("reset-immediate", "Reset", {"type": "Immediate"}, "Reset", {"type": "Hard"}, status("Accepted"),
                 status_201("Accepted")),
        csms_row("reset-on-idle", "Reset", {"type": "OnIdle"}, "Reset", {"type": "Soft"}, status("Rejected"),
                 status_201("Rejected")),
        csms_row("availability-evse2", "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}},
                 "ChangeAvailability", {"connectorId": 2, "type": "Operative"}, status("Scheduled"),
                 status_201("Scheduled")),
        csms_row("availability-evse1-connector1", "ChangeAvailability",
                 {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
                 "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, status("Rejected"),
                 status_201("Rejected")),
        csms_row("availability-station", "ChangeAvailability", {"operationalStatus": "Inoperative"},
                 "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, status("Accepted"),
                 status_201("Accepted")),
        csms_row("clear-cache", "ClearCache", {}, "ClearCache", {}, status("Rejected"), status_201("Rejected")),
        csms_row("cancel-reservation", "CancelReservation", {"reservationId": 9}, "CancelReservation",
                 {"reservationId": 9}, status("Accepted"), status_201("Accepted")),
        csms_row("cancel-reservation-rejected", "CancelReservation", {"reservationId": 0}, "CancelReservation",
                 {"reservationId": 0}, status("Rejected"), status_201("Rejected")),
        csms_row("local-list-version", "GetLocalListVersion", {}, "GetLocalListVersion", {}, {"listVersion": 5},
                 {"versionNumber": 5}),
        csms_row("local-list-version-empty", "GetLocalListVersion", {}, "GetLocalListVersion", {},
                 {"listVersion": 0}, {"versionNumber": 0}),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the Reset/ChangeAvailability/ClearCache table")


def test_device_model_table(proxy_binary, tmp_path):
    def keys(*expected):
        def check_keys(payload, ctx):
            assert set(payload) == {"key"} and sorted(payload["key"]) == sorted(expected), payload
        return check_keys

    def got(component, variable, value=None, attribute_status="Accepted", instance=None):
        entry = {**cv(component, variable, instance), "attributeStatus": attribute_status,
                 "attributeType": Opt("Actual"), "attributeStatusInfo": Opt(ANY)}
        if value is not None:
            entry["attributeValue"] = value
        return entry

    def set_result(component, variable, attribute_status):
        return {**cv(component, variable), "attributeStatus": attribute_status, "attributeType": Opt("Actual"),
                "attributeStatusInfo": Opt(ANY)}

    rows = [
        csms_row("get-two-keys", "GetVariables", {"getVariableData": [
            cv("OCPPCommCtrlr", "HeartbeatInterval"), cv("SampledDataCtrlr", "TxUpdatedInterval")]},
            "GetConfiguration", keys("HeartbeatInterval", "MeterValueSampleInterval"),
            {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                                  {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}]},
            {"getVariableResult": [got("OCPPCommCtrlr", "HeartbeatInterval", "300"),
                                   got("SampledDataCtrlr", "TxUpdatedInterval", "60")]}),
        csms_row("get-key-the-charger-lacks", "GetVariables",
                 {"getVariableData": [cv("AuthCtrlr", "LocalPreAuthorize")]},
                 "GetConfiguration", keys("LocalPreAuthorize"), {"unknownKey": ["LocalPreAuthorize"]},
                 {"getVariableResult": [got("AuthCtrlr", "LocalPreAuthorize", attribute_status="UnknownVariable")]}),
        csms_row("get-variable-with-instance", "GetVariables", {"getVariableData": [
            cv("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")]},
            "GetConfiguration", keys("TransactionMessageAttempts"),
            {"configurationKey": [{"key": "TransactionMessageAttempts", "readonly": False, "value": "3"}]},
            {"getVariableResult": [got("OCPPCommCtrlr", "MessageAttempts", "3", instance="TransactionEvent")]}),
        csms_row("set-one", "SetVariables", {"setVariableData": [
            {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "60"}]},
            "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, status("Accepted"),
            {"setVariableResult": [set_result("OCPPCommCtrlr", "HeartbeatInterval", "Accepted")]}),
        csms_row("set-not-supported", "SetVariables", {"setVariableData": [
            {**cv("AuthCtrlr", "LocalPreAuthorize"), "attributeValue": "true"}]},
            "ChangeConfiguration", {"key": "LocalPreAuthorize", "value": "true"}, status("NotSupported"),
            {"setVariableResult": [set_result("AuthCtrlr", "LocalPreAuthorize", "UnknownVariable")]}),
        csms_row("set-reboot-required", "SetVariables", {"setVariableData": [
            {**cv("SampledDataCtrlr", "TxUpdatedInterval"), "attributeValue": "30"}]},
            "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}, status("RebootRequired"),
            {"setVariableResult": [set_result("SampledDataCtrlr", "TxUpdatedInterval", "RebootRequired")]}),
        csms_row("set-longest-1-6-value", "SetVariables", {"setVariableData": [
            {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "9" * 500}]},
            "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "9" * 500}, status("Rejected"),
            {"setVariableResult": [set_result("OCPPCommCtrlr", "HeartbeatInterval", "Rejected")]}),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the device-model table")


def test_remote_start_stop_table(proxy_binary, tmp_path):
    profile_201 = {"id": 3, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                   "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}]}
    profile_16 = {"chargingProfileId": 3, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
                  "chargingProfileKind": "Relative",
                  "chargingSchedule": {"chargingRateUnit": "W",
                                       "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}}
    rows = [
        csms_row("start-evse1", "RequestStartTransaction",
                 {"idToken": {"idToken": TAG, "type": "ISO14443"}, "remoteStartId": 1, "evseId": 1},
                 "RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}, status("Accepted"),
                 status_201("Accepted")),
        csms_row("start-any-evse", "RequestStartTransaction",
                 {"idToken": {"idToken": "TAG-2", "type": "Central"}, "remoteStartId": 2},
                 "RemoteStartTransaction", {"idTag": "TAG-2"}, status("Rejected"), status_201("Rejected")),
        csms_row("start-with-profile", "RequestStartTransaction",
                 {"idToken": {"idToken": TAG20, "type": "Central"}, "remoteStartId": 3, "evseId": 2,
                  "chargingProfile": profile_201},
                 "RemoteStartTransaction", {"connectorId": 2, "idTag": TAG20, "chargingProfile": profile_16},
                 status("Accepted"), status_201("Accepted")),
        answered("stop-unknown", "RequestStopTransaction", {"transactionId": "0b7c3c1e-unknown"},
                 status_201("Rejected")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the remote start/stop table")


def test_charging_profile_table(proxy_binary, tmp_path):
    periods = [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}, {"startPeriod": 1800, "limit": 10.5}]
    rows = [
        csms_row("set-tx-default-evse1", "SetChargingProfile", {"evseId": 1, "chargingProfile": {
            "id": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "startSchedule": T0, "duration": 3600, "chargingRateUnit": "A",
                                  "chargingSchedulePeriod": periods, "minChargingRate": 6.0}]}},
            "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": 10, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {"startSchedule": Instant(T0), "duration": 3600, "chargingRateUnit": "A",
                                     "chargingSchedulePeriod": periods, "minChargingRate": 6.0}}},
            status("Accepted"), status_201("Accepted")),
        csms_row("set-station-max-recurring", "SetChargingProfile", {"evseId": 0, "chargingProfile": {
            "id": 11, "stackLevel": 2, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "validFrom": T0, "validTo": T3,
            "chargingSchedule": [{"id": 2, "startSchedule": T1, "chargingRateUnit": "W",
                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}]}]}},
            "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
                "chargingProfileId": 11, "stackLevel": 2, "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "validFrom": Instant(T0),
                "validTo": Instant(T3),
                "chargingSchedule": {"startSchedule": Instant(T1), "chargingRateUnit": "W",
                                     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}]}}},
            status("Rejected"), status_201("Rejected")),
        csms_row("clear-by-id", "ClearChargingProfile", {"chargingProfileId": 5}, "ClearChargingProfile", {"id": 5},
                 status("Accepted"), status_201("Accepted")),
        csms_row("clear-by-criteria", "ClearChargingProfile", {"chargingProfileCriteria": {
            "evseId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 2}},
            "ClearChargingProfile", {"connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 2},
            status("Unknown"), status_201("Unknown")),
        csms_row("clear-station-max", "ClearChargingProfile", {"chargingProfileCriteria": {
            "chargingProfilePurpose": "ChargingStationMaxProfile"}},
            "ClearChargingProfile", {"chargingProfilePurpose": "ChargePointMaxProfile"},
            status("Accepted"), status_201("Accepted")),
        csms_row("composite", "GetCompositeSchedule", {"evseId": 1, "duration": 3600, "chargingRateUnit": "W"},
                 "GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
                 {"status": "Accepted", "connectorId": 1, "scheduleStart": T0, "chargingSchedule": {
                     "duration": 3600, "chargingRateUnit": "W",
                     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}]}},
                 {"status": "Accepted", "statusInfo": Opt(ANY), "schedule": {
                     "evseId": 1, "duration": 3600, "scheduleStart": Instant(T0), "chargingRateUnit": "W",
                     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}]}}),
        csms_row("composite-rejected", "GetCompositeSchedule", {"evseId": 1, "duration": 60},
                 "GetCompositeSchedule", {"connectorId": 1, "duration": 60}, status("Rejected"),
                 status_201("Rejected")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the charging profile table")


def test_reservation_and_local_list_table(proxy_binary, tmp_path):
    def reserve(name, payload, expected, answer):
        return csms_row(name, "ReserveNow", payload, "ReserveNow", expected, status(answer), status_201(answer))

    rows = [
        reserve("reserve-evse1", {"id": 9, "expiryDateTime": T1, "idToken": {"idToken": TAG, "type": "ISO14443"},
                                  "evseId": 1},
                {"connectorId": 1, "expiryDate": Instant(T1), "idTag": TAG, "reservationId": 9}, "Accepted"),
        reserve("reserve-station-with-group", {"id": 10, "expiryDateTime": T2,
                                               "idToken": {"idToken": "TAG-10", "type": "Central"},
                                               "groupIdToken": {"idToken": "GROUP-1", "type": "Central"}},
                {"connectorId": 0, "expiryDate": Instant(T2), "idTag": "TAG-10", "parentIdTag": "GROUP-1",
                 "reservationId": 10}, "Occupied"),
    ]
    for i, answer in enumerate(("Faulted", "Unavailable", "Rejected")):
        rows.append(reserve(f"reserve-{answer}", {"id": 20 + i, "expiryDateTime": T3,
                                                  "idToken": {"idToken": TAG20, "type": "Central"}, "evseId": 2},
                            {"connectorId": 2, "expiryDate": Instant(T3), "idTag": TAG20, "reservationId": 20 + i},
                            answer))
    rows += [
        csms_row("local-list-full", "SendLocalList", {"versionNumber": 3, "updateType": "Full",
                                                      "localAuthorizationList": [
            {"idToken": {"idToken": TAG, "type": "ISO14443"},
             "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": T1,
                             "groupIdToken": {"idToken": "GROUP-1", "type": "Central"}}},
            {"idToken": {"idToken": "TAG-2", "type": "Central"}, "idTokenInfo": {"status": "NotAtThisTime"}},
            {"idToken": {"idToken": "TAG-3", "type": "Central"}}]},
            "SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
                {"idTag": TAG,
                 "idTagInfo": {"status": "Accepted", "expiryDate": Instant(T1), "parentIdTag": "GROUP-1"}},
                {"idTag": "TAG-2", "idTagInfo": {"status": "Invalid"}},
                {"idTag": "TAG-3"}]},
            status("Accepted"), status_201("Accepted")),
        csms_row("local-list-differential-empty", "SendLocalList", {"versionNumber": 4, "updateType": "Differential"},
                 "SendLocalList", {"listVersion": 4, "updateType": "Differential", "localAuthorizationList": Opt([])},
                 status("NotSupported"), status_201("Failed")),
        csms_row("local-list-version-mismatch", "SendLocalList", {"versionNumber": 5, "updateType": "Full"},
                 "SendLocalList", {"listVersion": 5, "updateType": "Full", "localAuthorizationList": Opt([])},
                 status("VersionMismatch"), status_201("VersionMismatch")),
        csms_row("local-list-failed", "SendLocalList", {"versionNumber": 6, "updateType": "Full"},
                 "SendLocalList", {"listVersion": 6, "updateType": "Full", "localAuthorizationList": Opt([])},
                 status("Failed"), status_201("Failed")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the reservation/local list table")


def test_trigger_message_and_unlock_table(proxy_binary, tmp_path):
    def trigger(name, payload, expected, answer):
        return csms_row(name, "TriggerMessage", payload, "TriggerMessage", expected, status(answer),
                        status_201(answer))

    def unlock(name, answer16, answer201):
        return csms_row(name, "UnlockConnector", {"evseId": 1, "connectorId": 1}, "UnlockConnector",
                        {"connectorId": 1}, status(answer16), status_201(answer201))

    rows = [
        trigger("trigger-status-evse1", {"requestedMessage": "StatusNotification", "evse": {"id": 1}},
                {"requestedMessage": "StatusNotification", "connectorId": 1}, "Accepted"),
        trigger("trigger-boot", {"requestedMessage": "BootNotification"}, {"requestedMessage": "BootNotification"},
                "Rejected"),
        trigger("trigger-heartbeat", {"requestedMessage": "Heartbeat"}, {"requestedMessage": "Heartbeat"},
                "NotImplemented"),
        trigger("trigger-log-status", {"requestedMessage": "LogStatusNotification"},
                {"requestedMessage": "DiagnosticsStatusNotification"}, "Accepted"),
        trigger("trigger-firmware-status", {"requestedMessage": "FirmwareStatusNotification"},
                {"requestedMessage": "FirmwareStatusNotification"}, "Accepted"),
        trigger("trigger-meter-values-evse2", {"requestedMessage": "MeterValues", "evse": {"id": 2}},
                {"requestedMessage": "MeterValues", "connectorId": 2}, "Accepted"),
        unlock("unlock-unlocked", "Unlocked", "Unlocked"),
        unlock("unlock-failed", "UnlockFailed", "UnlockFailed"),
        unlock("unlock-not-supported", "NotSupported", "UnlockFailed"),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the TriggerMessage/UnlockConnector table")


def test_firmware_and_log_table(proxy_binary, tmp_path):
    rows = [
        csms_row("update-firmware", "UpdateFirmware", {"requestId": 5, "retries": 3, "retryInterval": 60, "firmware": {
            "location": "https://fw.example/fw.bin", "retrieveDateTime": T1}},
            "UpdateFirmware", {"location": "https://fw.example/fw.bin", "retrieveDate": Instant(T1), "retries": 3,
                               "retryInterval": 60},
            {}, status_201("Accepted")),
        csms_row("update-firmware-minimal", "UpdateFirmware", {"requestId": 6, "firmware": {
            "location": "ftp://fw.example/fw.bin", "retrieveDateTime": T2}},
            "UpdateFirmware", {"location": "ftp://fw.example/fw.bin", "retrieveDate": Instant(T2)},
            {}, status_201("Accepted")),
        csms_row("get-log", "GetLog", {"logType": "DiagnosticsLog", "requestId": 7, "retries": 2, "retryInterval": 30,
                                       "log": {"remoteLocation": "ftp://logs.example/", "oldestTimestamp": T0,
                                               "latestTimestamp": T1}},
                 "GetDiagnostics", {"location": "ftp://logs.example/", "startTime": Instant(T0),
                                    "stopTime": Instant(T1), "retries": 2, "retryInterval": 30},
                 {"fileName": "diagnostics.zip"},
                 {"status": "Accepted", "filename": "diagnostics.zip", "statusInfo": Opt(ANY)}),
        csms_row("get-log-no-file", "GetLog", {"logType": "DiagnosticsLog", "requestId": 8,
                                               "log": {"remoteLocation": "ftp://logs.example/"}},
                 "GetDiagnostics", {"location": "ftp://logs.example/"}, {}, status_201("Rejected")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the firmware/log table")


def test_csms_data_transfer_table(proxy_binary, tmp_path):
    def object_as_text(payload, ctx):
        assert set(payload) == {"vendorId", "messageId", "data"}, payload
        assert payload["vendorId"] == "org.example" and payload["messageId"] == "obj", payload
        assert isinstance(payload["data"], str) and json.loads(payload["data"]) == {"a": 1, "b": [True, None]}, payload

    rows = [
        csms_row("text", "DataTransfer", {"vendorId": "org.example", "messageId": "txt", "data": "x"},
                 "DataTransfer", {"vendorId": "org.example", "messageId": "txt", "data": "x"},
                 {"status": "Accepted", "data": "y"}, {"status": "Accepted", "data": "y", "statusInfo": Opt(ANY)}),
        csms_row("object", "DataTransfer", {"vendorId": "org.example", "messageId": "obj",
                                            "data": {"a": 1, "b": [True, None]}},
                 "DataTransfer", object_as_text, status("Rejected"), status_201("Rejected")),
        csms_row("vendor-only", "DataTransfer", {"vendorId": "org.example"}, "DataTransfer",
                 {"vendorId": "org.example"}, status("UnknownVendorId"), status_201("UnknownVendorId")),
        csms_row("unknown-message", "DataTransfer", {"vendorId": "org.example", "messageId": "nope"}, "DataTransfer",
                 {"vendorId": "org.example", "messageId": "nope"}, status("UnknownMessageId"),
                 status_201("UnknownMessageId")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the CSMS DataTransfer table")


def test_csms_messages_answered_by_the_proxy_table(proxy_binary, tmp_path):
    rows = [
        answered("transaction-status", "GetTransactionStatus", {},
                 {"messagesInQueue": False, "ongoingIndicator": Opt(ANY)}),
        answered("transaction-status-unknown", "GetTransactionStatus", {"transactionId": "unknown-tx"},
                 {"messagesInQueue": False, "ongoingIndicator": Opt(False)}),
        answered("network-profile", "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
            "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": "wss://csms.example/ocpp",
            "messageTimeout": 30, "securityProfile": 3, "ocppInterface": "Wired0"}}, status_201("Rejected")),
        answered("customer-information", "CustomerInformation", {"requestId": 1, "report": True, "clear": False},
                 status_201("Rejected")),
        answered("charging-profiles", "GetChargingProfiles", {"requestId": 2, "chargingProfile": {}},
                 status_201("NoProfiles")),
        answered("publish-firmware", "PublishFirmware", {"location": "https://fw.example/fw.bin",
                                                         "checksum": "0" * 32, "requestId": 3},
                 status_201("Rejected")),
        answered("unpublish-firmware", "UnpublishFirmware", {"checksum": "0" * 32}, {"status": "NoFirmware"}),
        answered("get-display-messages", "GetDisplayMessages", {"requestId": 4}, status_201("Unknown")),
        answered("clear-display-message", "ClearDisplayMessage", {"id": 1}, status_201("Unknown")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "the table of CSMS messages the proxy answers")
