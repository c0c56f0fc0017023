"""Issue 13: defects of the 1.6 -> 2.0.1 translation, one row (or scenario) per defect.

Table rows go through ``ocpp-proxy translate`` (``run_table`` of test_translation_table.py); exchanges that
make more than one frame (``then:`` steps, ``foreach``) are checked on the raw ``translate`` output; what needs
both sides of one charger (a transaction, then a CSMS CALL about it) runs through a translating proxy with real
peers (translation_support.py).
"""

from __future__ import annotations

import asyncio
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
    """Feed ``frames`` (CALLs of ``source``) to translate and answer every CALL it sends, in turn, with the next
    payload of ``answers[action]`` (a list; ``{}`` when none is left). Returns (every CALL sent, as (to, frame),
    every answer sent back to the side ``frames`` came from, the outputs)."""
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


# ---------------------------------------------------------------------------
# per-charger settings: capabilities (14) and EVSE layouts (15), with real peers
# ---------------------------------------------------------------------------

from datetime import datetime, timedelta, timezone  # noqa: E402

from ocpp.routing import on  # noqa: E402
from ocpp.v16 import call_result as result16  # noqa: E402
from ocpp.v16.enums import Action as Action16  # noqa: E402

from ocpp.v201 import call_result as result201  # noqa: E402
from ocpp.v201.enums import Action as Action201  # noqa: E402

from translation_support import TranslationCharger16, TranslationCsms201, call_actions  # noqa: E402


class Csms201(TranslationCsms201):
    @on(Action201.reservation_status_update)
    def on_reservation_status_update(self, reservation_id, reservation_update_status, **_):
        return result201.ReservationStatusUpdate()


class Charger16(TranslationCharger16):
    """Also answers the 1.6 security extension's messages and reservations."""

    @on(Action16.signed_update_firmware)
    async def on_signed_update_firmware(self, request_id, firmware, **_):
        return result16.SignedUpdateFirmware(status="Accepted")

    @on(Action16.update_firmware)
    async def on_update_firmware(self, location, retrieve_date, **_):
        return result16.UpdateFirmware()

    @on(Action16.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(self, certificate_type, **_):
        chain = {"CentralSystemRootCertificate": [HASH], "ManufacturerRootCertificate": [HASH2]}[certificate_type]
        return result16.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=chain)

    @on(Action16.get_log)
    async def on_get_log(self, log, log_type, request_id, **_):
        return result16.GetLog(status="Accepted", filename="security.log")

    @on(Action16.extended_trigger_message)
    async def on_extended_trigger_message(self, requested_message, **_):
        return result16.ExtendedTriggerMessage(status="Accepted")

    @on(Action16.reserve_now)
    async def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, **_):
        return result16.ReserveNow(status="Accepted")

    @on(Action16.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id, **_):
        return result16.CancelReservation(status="Accepted")


async def with_charger(h, identity, capabilities=None, evses=None):
    entry = {"identity": identity, "securityProfile": 0}
    if capabilities is not None:
        entry["capabilities"] = capabilities
    if evses is not None:
        entry["evses"] = evses
    proxy, csms = await h.pair(V201, cp_factory=Csms201, translate=True, overrides={"chargers": [entry]})
    charger = await h.charger(proxy, identity, V16, cp_factory=Charger16)
    session = await csms.next_session()
    return charger, session


FIRMWARE = {"location": "https://fw.example/fw.bin", "retrieveDateTime": T0, "installDateTime": T1,
            "signingCertificate": "-----BEGIN CERTIFICATE-----x", "signature": "c2ln"}


async def barrier(session, charger):
    await session.cp.call(call201.ClearCache(), suppress=False)


async def test_signed_firmware_goes_as_signed_update_firmware_with_the_security_extension(h):
    charger, session = await with_charger(h, "CPSECEXT", capabilities=["securityExtension"])
    result = await session.cp.call(call201.UpdateFirmware(request_id=5, firmware=FIRMWARE), suppress=False)
    assert result.status == "Accepted"
    assert calls(charger.recorder.received_frames(), "SignedUpdateFirmware") == [{
        "requestId": 5, "firmware": FIRMWARE}]
    log = await session.cp.call(call201.GetLog(log_type="SecurityLog", request_id=6,
                                               log={"remoteLocation": "ftp://logs.example/"}), suppress=False)
    assert (log.status, log.filename) == ("Accepted", "security.log")
    assert calls(charger.recorder.received_frames(), "GetLog") == [{
        "logType": "SecurityLog", "requestId": 6, "log": {"remoteLocation": "ftp://logs.example/"}}]
    trigger = await session.cp.call(call201.TriggerMessage(requested_message="SignChargingStationCertificate"),
                                    suppress=False)
    assert trigger.status == "Accepted"
    assert calls(charger.recorder.received_frames(), "ExtendedTriggerMessage") == [
        {"requestedMessage": "SignChargePointCertificate"}]
    # 11. every certificate type asked for, one 1.6 call each, the answers joined
    ids = await session.cp.call(call201.GetInstalledCertificateIds(), suppress=False)
    assert ids.status == "Accepted"
    assert calls(charger.recorder.received_frames(), "GetInstalledCertificateIds") == [
        {"certificateType": "CentralSystemRootCertificate"}, {"certificateType": "ManufacturerRootCertificate"}]
    assert_match(ids.certificate_hash_data_chain, [
        {"certificate_type": "CSMSRootCertificate", "certificate_hash_data": ANY},
        {"certificate_type": "ManufacturerRootCertificate", "certificate_hash_data": ANY}])


async def test_without_the_security_extension_signed_firmware_and_security_messages_are_answered_by_the_proxy(h):
    charger, session = await with_charger(h, "CPPLAIN")
    result = await session.cp.call(call201.UpdateFirmware(request_id=5, firmware=FIRMWARE), suppress=False)
    assert result.status == "Rejected"  # the charger could not verify the signature
    unsigned = {k: v for k, v in FIRMWARE.items() if k not in ("signingCertificate", "signature")}
    result = await session.cp.call(call201.UpdateFirmware(request_id=6, firmware=unsigned), suppress=False)
    assert result.status == "Accepted"
    # installDateTime: the download (after which a 1.6 charger installs) waits for it
    assert_match(calls(charger.recorder.received_frames(), "UpdateFirmware"), [
        {"location": FIRMWARE["location"], "retrieveDate": Instant(T1)}])
    for request, expected in (
            (call201.GetLog(log_type="SecurityLog", request_id=7, log={"remoteLocation": "ftp://x/"}), "Rejected"),
            (call201.TriggerMessage(requested_message="SignChargingStationCertificate"), "Rejected"),
            (call201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate="x"), "Rejected"),
            (call201.CertificateSigned(certificate_chain="x"), "Rejected"),
            (call201.GetInstalledCertificateIds(), "NotFound"),
            (call201.DeleteCertificate(certificate_hash_data=HASH), "NotFound")):
        answer = await session.cp.call(request, suppress=False)
        assert answer.status == expected, (request, answer)
    await barrier(session, charger)
    assert call_actions(charger.recorder.received_frames()) == ["UpdateFirmware", "ClearCache"]


async def test_an_evse_of_two_connectors(h):
    charger, session = await with_charger(h, "CPLAYOUT", evses=[[1, 2], [3]])
    result = await session.cp.call(call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}),
                                   suppress=False)
    assert result.status == "Accepted"
    assert calls(charger.recorder.received_frames(), "ChangeAvailability") == [
        {"connectorId": 1, "type": "Inoperative"}, {"connectorId": 2, "type": "Inoperative"}]
    await session.cp.call(call201.ChangeAvailability(operational_status="Operative", evse={"id": 1, "connector_id": 2}),
                          suppress=False)
    await session.cp.call(call201.UnlockConnector(evse_id=1, connector_id=2), suppress=False)
    await session.cp.call(call201.TriggerMessage(requested_message="StatusNotification",
                                                 evse={"id": 2, "connector_id": 1}), suppress=False)
    received = [f[2:] for f in charger.recorder.received_frames() if f[0] == 2]
    assert received[2:] == [["ChangeAvailability", {"connectorId": 2, "type": "Operative"}],
                            ["UnlockConnector", {"connectorId": 2}],
                            ["TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 3}]], received
    # the layout in the full report
    await session.cp.call(call201.GetBaseReport(request_id=9, report_base="FullInventory"), suppress=False)
    [report] = await wait_for_call(session.recorder, "NotifyReport")
    layout = [(e["component"]["name"], e["component"].get("evse")) for e in report["reportData"]
              if e["component"]["name"] in ("EVSE", "Connector")]
    assert layout == [("EVSE", {"id": 1}), ("Connector", {"id": 1, "connectorId": 1}),
                      ("Connector", {"id": 1, "connectorId": 2}), ("EVSE", {"id": 2}),
                      ("Connector", {"id": 2, "connectorId": 1})], layout


# ---------------------------------------------------------------------------
# 12. BootNotification reason; 13. ReservationStatusUpdate
# ---------------------------------------------------------------------------


async def test_boot_after_an_accepted_trigger_says_triggered(h):
    charger, session = await with_charger(h, "CPBOOTTRIG")
    result = await session.cp.call(call201.TriggerMessage(requested_message="BootNotification"), suppress=False)
    assert result.status == "Accepted"
    await charger.cp.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"), suppress=False)
    await charger.cp.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"), suppress=False)
    assert [c["reason"] for c in calls(session.recorder.received_frames(), "BootNotification")] == [
        "Triggered", "PowerUp"]


async def test_an_expired_reservation_is_reported_at_the_next_heartbeat(h):
    charger, session = await with_charger(h, "CPRESERVE")
    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    token = {"idToken": TAG, "type": "ISO14443"}
    for id_, expiry, evse in ((1, soon, 1), (2, later, 2), (3, later, 3)):
        result = await session.cp.call(call201.ReserveNow(id=id_, expiry_date_time=expiry, id_token=token,
                                                          evse_id=evse), suppress=False)
        assert result.status == "Accepted"
    await session.cp.call(call201.CancelReservation(reservation_id=3), suppress=False)
    await charger.cp.call(call16.Heartbeat(), suppress=False)  # nothing expired yet
    await asyncio.sleep(4)  # past the expiry, also by the proxy's clock, which may count whole seconds
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    await charger.cp.call(call16.StatusNotification(connector_id=2, error_code="NoError", status="Faulted"),
                          suppress=False)
    await charger.cp.call(call16.Heartbeat(), suppress=False)
    await wait_for_call(session.recorder, "ReservationStatusUpdate", 2, timeout=15)
    await asyncio.sleep(0.3)
    assert calls(session.recorder.received_frames(), "ReservationStatusUpdate") == [
        {"reservationId": 1, "reservationUpdateStatus": "Expired"},
        {"reservationId": 2, "reservationUpdateStatus": "Removed"}]


# ---------------------------------------------------------------------------
# 10. a connector's fault as NotifyEvent; 12. boot after a firmware installation; 8. trigger without a transaction
# ---------------------------------------------------------------------------


def test_a_connector_fault_goes_on_as_a_notify_event(proxy_binary, tmp_path):
    calls_sent, _, _ = drive(proxy_binary, tmp_path, V16, V201, [
        [2, "sn-f", "StatusNotification", {"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted",
                                           "timestamp": T0, "info": "RCD tripped", "vendorId": "org.example",
                                           "vendorErrorCode": "E42"}],
        [2, "sn-0", "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}],
        [2, "sn-v", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available",
                                           "vendorErrorCode": "W7"}],
        [2, "sn-ok", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}]])
    actions = [f[2] for _, f in calls_sent]
    assert actions == ["StatusNotification", "NotifyEvent", "NotifyEvent", "StatusNotification", "NotifyEvent",
                       "StatusNotification"], actions
    events = [f[3]["eventData"][0] for _, f in calls_sent if f[2] == "NotifyEvent"]
    assert_match(events[0], {
        "eventId": 1, "timestamp": Instant(T0), "trigger": "Delta", "actualValue": "Faulted",
        "techCode": "GroundFailure", "techInfo": "RCD tripped (org.example E42)",
        "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
        "variable": {"name": "AvailabilityState"}, "eventNotificationType": "HardWiredNotification"})
    assert events[1]["eventId"] == 2 and events[1]["component"] == {"name": "ChargingStation"}, events[1]
    assert_match(events[2], {"eventId": 3, "timestamp": ANY_DATETIME, "trigger": "Delta", "actualValue": "Available",
                             "techCode": "W7", "techInfo": "(vendor W7)",
                             "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                             "variable": {"name": "AvailabilityState"}, "eventNotificationType": ANY})


def test_the_boot_after_a_firmware_installation_says_firmware_update(proxy_binary, tmp_path):
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    calls_sent, _, _ = drive(proxy_binary, tmp_path, V16, V201, [
        [2, "f-1", "FirmwareStatusNotification", {"status": "Installing"}],
        [2, "b-1", "BootNotification", boot],
        [2, "b-2", "BootNotification", boot]],
        {"BootNotification": [{"currentTime": T0, "interval": 300, "status": "Accepted"}] * 2})
    reasons = [f[3]["reason"] for _, f in calls_sent if f[2] == "BootNotification"]
    assert reasons == ["FirmwareUpdate", "PowerUp"], reasons


def test_trigger_transaction_event_without_a_transaction_is_rejected(proxy_binary, tmp_path):
    rows = [answered("trigger-tx-idle-evse", "TriggerMessage", {"requestedMessage": "TransactionEvent",
                                                                "evse": {"id": 1}}, status_201("Rejected"))]
    run_table(proxy_binary, tmp_path, V201, V16, [rows], "issue 13: TriggerMessage(TransactionEvent)")
