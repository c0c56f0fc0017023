"""Issue 13: defects of the 1.6 -> 2.0.1 translation, one row (or scenario) per defect.

Table rows go through ``ocpp-proxy translate`` (``run_table`` of test_translation_table.py); exchanges that
make more than one frame (``then:`` steps, ``foreach``) are checked on the raw ``translate`` output; what needs
both sides of one charger (a transaction, then a CSMS CALL about it) runs through a translating proxy with real
peers (translation_support.py).
"""

from __future__ import annotations

import json

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from test_translation_table import Row, answered, csms_row, cv, run_table, status, status_201
from translation_support import (
    ANY,
    ANY_DATETIME,
    V16,
    V201,
    Exchange,
    Instant,
    Opt,
    TranslateRun,
    assert_match,
    assert_schema_valid,
    calls,
    connect_charger16,
    sent,
    translating_proxy,
    wait_for_call,
)

T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T10:15:00Z"
TAG = "04A1B2C3D4E5F6"
SIGNED = {"signedMeterData": "T0NNRnx7fQ==", "signingMethod": "", "encodingMethod": "OCMF", "publicKey": ""}


def profile(limit, min_rate=None, transaction_id=None, purpose="TxDefaultProfile"):
    schedule = {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    if min_rate is not None:
        schedule["minChargingRate"] = min_rate
    p = {"id": 30, "stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Relative",
         "chargingSchedule": [schedule]}
    if transaction_id is not None:
        p["transactionId"] = transaction_id
    return p


# ---------------------------------------------------------------------------
# 1. charging limits are multiples of 0.1 in 1.6; 3. TxProfile of an unknown transaction
# ---------------------------------------------------------------------------


def test_charging_limits_are_rounded_to_a_tenth_and_unknown_tx_profiles_rejected(proxy_binary, tmp_path):
    def sent_profile(limit, min_rate):
        schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
        if min_rate is not None:
            schedule["minChargingRate"] = min_rate
        return {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 30, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": schedule}}

    rows = [
        # 16.35 A is a valid 2.0.1 limit; forwarded as it is, a 1.6 charger must reject the whole profile
        csms_row("limit-hundredths", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile(16.35, 6.05)},
                 "SetChargingProfile", sent_profile(16.4, 6.1), status("Accepted"), status_201("Accepted")),
        csms_row("limit-tenths-unchanged", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile(7.7)},
                 "SetChargingProfile", sent_profile(7.7, None), status("Accepted"), status_201("Accepted")),
        csms_row("limit-rounds-down", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile(31.94)},
                 "SetChargingProfile", sent_profile(31.9, None), status("Accepted"), status_201("Accepted")),
        # K01.FR.33: the proxy knows no such transaction; never forwarded without its id
        answered("tx-profile-unknown-transaction", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile(
            16, transaction_id="0b7c3c1e-unknown", purpose="TxProfile")}, status_201("Rejected")),
    ]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "issue 13: charging profiles")


# ---------------------------------------------------------------------------
# 2. signed meter values; 9. timestamps with 6 decimals
# ---------------------------------------------------------------------------


def energy(value, **extra):
    return {"value": value, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
            "unit": "Wh", **extra}


def signed_energy(**extra):
    return {"value": json.dumps(SIGNED), "format": "SignedData", "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register", "unit": "Wh", **extra}


def test_signed_meter_values_carry_true_readings(proxy_binary, tmp_path):
    def sample(value, **extra):
        return {"value": value, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "Wh"}, **extra}

    voltage = {"value": "230.4", "context": "Sample.Periodic", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}
    voltage_201 = {"value": 230.4, "context": "Sample.Periodic", "measurand": "Voltage", "phase": "L1-N",
                   "unitOfMeasure": {"unit": "V"}}
    rows = [
        # the signed sample signs the plain reading beside it: one 2.0.1 sample, the reading with its signature
        Row("signed-beside-plain", [2, "mv-s1", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": T0, "sampledValue": [signed_energy(), energy("123457000")]}]}],
            "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": Instant(T0), "sampledValue": [
                sample(123457000, signedMeterValue=SIGNED)]}]}, {}, {}),
        # no plain partner (here: another location): the signed sample has no reading the proxy can read and
        # is left out, never sent as 0
        Row("signed-alone", [2, "mv-s2", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": T0, "sampledValue": [voltage, signed_energy(location="Inlet")]}]}],
            "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": Instant(T0), "sampledValue": [voltage_201]}]},
            {}, {}),
        Row("signed-only", [2, "mv-s3", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": T0, "sampledValue": [signed_energy()]}]}], None, None, None, {}),
        # two plain energy readings (Wh, kWh): the signature goes with the first one only
        Row("signed-two-plain", [2, "mv-s4", "MeterValues", {"connectorId": 2, "meterValue": [
            {"timestamp": T1, "sampledValue": [energy("1250"), energy("1.25", unit="kWh"), signed_energy()]}]}],
            "MeterValues", {"evseId": 2, "meterValue": [{"timestamp": Instant(T1), "sampledValue": [
                sample(1250, signedMeterValue=SIGNED), {**sample(1.25), "unitOfMeasure": {"unit": "kWh"}}]}]},
            {}, {}),
        # 9. 2.0.1 allows 3 fractional digits: a 1.6 timestamp with 6 is cut to 3
        Row("timestamp-micro", [2, "mv-t", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-01-01T10:00:00.123456Z", "sampledValue": [energy("10")]}]}],
            "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T10:00:00.123Z",
                                                         "sampledValue": [sample(10)]}]}, {}, {}),
        Row("status-timestamp-micro", [2, "sn-t", "StatusNotification", {
            "connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "2026-01-01T10:00:00.123456Z"}],
            "StatusNotification", {"timestamp": "2026-01-01T10:00:00.123Z", "connectorStatus": "Available",
                                   "evseId": 1, "connectorId": 1}, {}, {}),
    ]
    run_table(proxy_binary, tmp_path, V16, V201, [rows], "issue 13: signed meter values and timestamps")


# ---------------------------------------------------------------------------
# 7. SecurityCtrlr.SecurityProfile is read-only; 11. every certificate type; 6. GetReport filters
# ---------------------------------------------------------------------------


def converse(binary, workdir, source, target, exchanges):
    run = TranslateRun(binary, workdir, source, target)
    run.converse(exchanges)
    return run.outputs


def test_set_variables_on_security_profile_is_rejected_and_the_rest_goes_on(proxy_binary, tmp_path):
    frame = [2, "sv-1", "SetVariables", {"setVariableData": [
        {**cv("SecurityCtrlr", "SecurityProfile"), "attributeValue": "2"},
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "60"}]}]
    out = converse(proxy_binary, tmp_path, V201, V16, [Exchange(frame, {"status": "Accepted"})])
    [call] = sent(out[0], "charger", 2)
    assert call[2:] == ["ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}], out[0]
    [result] = sent(out[1], "csms", 3)
    assert_schema_valid(V201, "SetVariables", "response", result[2])
    assert_match(result[2], {"setVariableResult": [
        {**cv("SecurityCtrlr", "SecurityProfile"), "attributeType": Opt("Actual"), "attributeStatus": "Rejected"},
        {**cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeType": Opt("Actual"), "attributeStatus": "Accepted"},
    ]}, "SetVariables result")


HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "a" * 64, "issuerKeyHash": "b" * 64, "serialNumber": "01"}
HASH2 = {**HASH, "serialNumber": "02"}


def drive(binary, workdir, source, target, frames, answers=None):
    """Feed ``frames`` (CALLs of ``source``) to translate and answer every CALL it sends: toward the other version's
    peer with the next payload of ``answers[action]`` (a list), toward the side ``frames`` came from... never (the
    proxy only answers that side). Returns (every CALL sent, as [to, frame], every answer sent back, outputs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    queues = {k: list(v) for k, v in (answers or {}).items()}
    run = TranslateRun(binary, workdir, source, target)
    run.lines = list(frames)
    answered_ids: set[str] = set()
    while True:
        outputs = run.run()
        pending = [(e["to"], e["frame"]) for o in outputs for e in o["send"]
                   if e["frame"][0] == 2 and e["frame"][1] not in answered_ids]
        if not pending:
            break
        to, frame = pending[0]
        queue = queues.get(frame[2])
        payload = queue.pop(0) if queue else {}
        answered_ids.add(frame[1])
        run.lines.append([3, frame[1], payload])
    calls_sent = [(e["to"], e["frame"]) for o in outputs for e in o["send"] if e["frame"][0] == 2]
    back = "csms" if source == V201 else "charger"
    answers_back = [e["frame"] for o in outputs for e in o["send"] if e["to"] == back and e["frame"][0] in (3, 4)]
    for to, frame in calls_sent:
        assert_schema_valid(target if to != back else source, frame[2], "request", frame[3], f"{frame[2]} sent")
    return calls_sent, answers_back, outputs


def run_certificate_ids(binary, workdir, payload, answers):
    calls_sent, results, _ = drive(binary, workdir, V201, V16, [[2, "gic", "GetInstalledCertificateIds", payload]],
                                   {"GetInstalledCertificateIds": answers})
    return [f[3] for _, f in calls_sent], results


def test_get_installed_certificate_ids_asks_for_every_type(proxy_binary, tmp_path):
    asked, results = run_certificate_ids(
        proxy_binary, tmp_path, {"certificateType": ["V2GRootCertificate", "CSMSRootCertificate",
                                                     "ManufacturerRootCertificate"]},
        [{"status": "Accepted", "certificateHashData": [HASH]}, {"status": "Accepted", "certificateHashData": [HASH2]}])
    assert asked == [{"certificateType": "CentralSystemRootCertificate"},
                     {"certificateType": "ManufacturerRootCertificate"}], asked
    [result] = results
    assert result[0] == 3, result
    assert_schema_valid(V201, "GetInstalledCertificateIds", "response", result[2])
    assert_match(result[2], {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": "CSMSRootCertificate", "certificateHashData": HASH},
        {"certificateType": "ManufacturerRootCertificate", "certificateHashData": HASH2}]})

    asked, results = run_certificate_ids(proxy_binary, tmp_path / "none", {},
                                         [{"status": "NotFound"}, {"status": "Accepted",
                                                                   "certificateHashData": [HASH2]}])
    assert len(asked) == 2, asked
    assert_match(results[0][2], {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": "ManufacturerRootCertificate", "certificateHashData": HASH2}]})

    asked, results = run_certificate_ids(proxy_binary, tmp_path / "v2g", {"certificateType": ["MORootCertificate"]},
                                         [])
    assert asked == [] and results[0][2] == {"status": "NotFound"}, (asked, results)


def config(*entries):
    return {"configurationKey": [{"key": k, "readonly": False, "value": v} for k, v in entries]}


def get_report(binary, workdir, payload, configuration):
    calls_sent, results, _ = drive(binary, workdir, V201, V16, [[2, "gr", "GetReport", {"requestId": 4, **payload}]],
                                   {"GetConfiguration": [configuration, configuration]})
    [result] = results
    assert result[0] == 3, result
    assert_schema_valid(V201, "GetReport", "response", result[2])
    reports = [f[3] for to, f in calls_sent if f[2] == "NotifyReport"]
    for report in reports:
        assert_match(report, {"requestId": 4, "generatedAt": ANY_DATETIME, "seqNo": 0, "tbc": Opt(False),
                              "reportData": ANY})
    return result[2]["status"], [[(e["component"]["name"], e["variable"]["name"], e["variable"].get("instance"))
                                  for e in r["reportData"]] for r in reports]


def test_get_report_reports_what_was_asked_for(proxy_binary, tmp_path):
    charger = config(("HeartbeatInterval", "300"), ("MeterValueSampleInterval", "60"),
                     ("AuthorizationCacheEnabled", "false"), ("LocalAuthListEnabled", "true"),
                     ("TransactionMessageAttempts", "3"), ("VendorKey", "v"))
    # one variable: that one, not every fixed variable too
    assert get_report(proxy_binary, tmp_path / "a", {"componentVariable": [cv("OCPPCommCtrlr", "HeartbeatInterval")]},
                      charger) == ("Accepted", [[("OCPPCommCtrlr", "HeartbeatInterval", None)]])
    # a component without a variable: all its variables (B08.FR.20), keyed and fixed
    status_, [report] = get_report(proxy_binary, tmp_path / "b", {"componentVariable": [{"component": {
        "name": "TxCtrlr"}}]}, charger)
    assert status_ == "Accepted" and sorted(report) == [("TxCtrlr", "TxStartPoint", None),
                                                        ("TxCtrlr", "TxStopPoint", None)], report
    # a variable without an instance: every instance (B08.FR.21)
    assert get_report(proxy_binary, tmp_path / "c", {"componentVariable": [cv("OCPPCommCtrlr", "MessageAttempts")]},
                      charger) == ("Accepted", [[("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")]])
    # an unmapped key asked for under OCPP16LegacyCtrlr
    assert get_report(proxy_binary, tmp_path / "d", {"componentVariable": [cv("OCPP16LegacyCtrlr", "VendorKey")]},
                      charger) == ("Accepted", [[("OCPP16LegacyCtrlr", "VendorKey", None)]])
    # nothing the charger or the proxy has: EmptyResultSet and no report (B08.FR.15)
    assert get_report(proxy_binary, tmp_path / "e", {"componentVariable": [cv("DisplayMessageCtrlr", "Enabled")]},
                      charger) == ("EmptyResultSet", [])
    # criteria Enabled: components whose Enabled is false are left out (B08.FR.09)
    status_, [report] = get_report(proxy_binary, tmp_path / "f", {"componentCriteria": ["Enabled"], "componentVariable": [
        {"component": {"name": "AuthCacheCtrlr"}}, {"component": {"name": "LocalAuthListCtrlr"}}]}, charger)
    assert status_ == "Accepted" and report == [("LocalAuthListCtrlr", "Enabled", None)], report


# ---------------------------------------------------------------------------
# 4. GetTransactionStatus of an ended transaction (real peers: the transaction is the charger's)
# ---------------------------------------------------------------------------


async def test_get_transaction_status_says_not_ongoing_once_the_transaction_ended(h):
    proxy, csms = await translating_proxy(h)
    charger, session = await connect_charger16(h, proxy, csms, "CPTXSTATUS")
    started = await charger.cp.call(call16.StartTransaction(connector_id=1, id_tag=TAG, meter_start=0, timestamp=T0),
                                    suppress=False)
    [event] = await wait_for_call(session.recorder, "TransactionEvent")
    uuid_ = event["transactionInfo"]["transactionId"]
    ongoing = await session.cp.call(call201.GetTransactionStatus(transaction_id=uuid_), suppress=False)
    assert (ongoing.ongoing_indicator, ongoing.messages_in_queue) == (True, False), ongoing
    await charger.cp.call(call16.StopTransaction(meter_stop=10, timestamp=T1, transaction_id=started.transaction_id),
                          suppress=False)
    ended = await session.cp.call(call201.GetTransactionStatus(transaction_id=uuid_), suppress=False)
    assert (ended.ongoing_indicator, ended.messages_in_queue) == (False, False), ended  # E14.FR.03
