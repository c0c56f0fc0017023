"""Real OCPP peers on the ``ocpp`` package: a CSMS and a charging station per version.

The handlers answer with fixed, schema-valid payloads; the raw frames are kept
by the ``Recorder`` each peer is given as its connection.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

RESPONSE_TIMEOUT = 10
TRANSACTION_ID_16 = 4242


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# OCPP 1.6
# ---------------------------------------------------------------------------


class Csms16(ChargePoint16):
    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)

    @on(Action16.boot_notification)
    def on_boot_notification(self, **_):
        return result16.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_):
        return result16.Heartbeat(current_time=now_iso())

    @on(Action16.authorize)
    def on_authorize(self, **_):
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.status_notification)
    def on_status_notification(self, **_):
        return result16.StatusNotification()

    @on(Action16.start_transaction)
    def on_start_transaction(self, **_):
        return result16.StartTransaction(transaction_id=TRANSACTION_ID_16, id_tag_info={"status": "Accepted"})

    @on(Action16.meter_values)
    def on_meter_values(self, **_):
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop_transaction(self, **_):
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})


class Charger16(ChargePoint16):
    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)

    @on(Action16.reset)
    def on_reset(self, type, **_):
        return result16.Reset(status="Accepted")

    @on(Action16.get_configuration)
    def on_get_configuration(self, key=None, **_):
        known = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"}
        wanted = key or list(known)
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on(Action16.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag, **_):
        return result16.RemoteStartTransaction(status="Accepted")


# ---------------------------------------------------------------------------
# OCPP 2.0.1
# ---------------------------------------------------------------------------


class Csms201(ChargePoint201):
    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)

    @on(Action201.boot_notification)
    def on_boot_notification(self, **_):
        return result201.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_):
        return result201.Heartbeat(current_time=now_iso())

    @on(Action201.authorize)
    def on_authorize(self, **_):
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.status_notification)
    def on_status_notification(self, **_):
        return result201.StatusNotification()

    @on(Action201.transaction_event)
    def on_transaction_event(self, event_type, id_token=None, **_):
        if id_token is not None:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, **_):
        return result201.MeterValues()


class Charger201(ChargePoint201):
    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)

    @on(Action201.reset)
    def on_reset(self, type, **_):
        return result201.Reset(status="Accepted")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data, **_):
        values = {("OCPPCommCtrlr", "HeartbeatInterval"): "300", ("AuthCtrlr", "Enabled"): "true"}
        results = []
        for item in get_variable_data:
            component = item["component"]["name"]
            variable = item["variable"]["name"]
            value = values.get((component, variable))
            entry = {
                "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                "component": {"name": component},
                "variable": {"name": variable},
            }
            if value is not None:
                entry["attribute_value"] = value
            results.append(entry)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.request_start_transaction)
    def on_request_start_transaction(self, id_token, remote_start_id, **_):
        return result201.RequestStartTransaction(status="Accepted")


def csms_class_for(version: str):
    return {"ocpp1.6": Csms16, "ocpp2.0.1": Csms201}[version]


def charger_class_for(version: str):
    return {"ocpp1.6": Charger16, "ocpp2.0.1": Charger201}[version]
