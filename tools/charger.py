#!/usr/bin/env python3
"""A charging-station simulator for trying out ocpp-proxy by hand.

Built on the `ocpp` package (schema validation on). It boots, reports its
connector, authorizes a tag, runs one whole transaction with meter values,
then sends heartbeats until --duration seconds have passed, printing every
frame it sends and receives. It answers GetConfiguration / GetVariables,
Reset and RemoteStartTransaction / RequestStartTransaction.

    .venv/bin/python tools/charger.py --url ws://127.0.0.1:8180/ocpp/CP001 --version ocpp1.6

Exit status: 0 when the run completed, 1 when the connection failed, a call
was refused with a CALLERROR or timed out, or the link was closed early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
import urllib.parse
from datetime import datetime, timezone

import websockets
from websockets.asyncio.client import connect

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def say(text: str) -> None:
    print(f"{now()} {text}", flush=True)


class LoggingConnection:
    def __init__(self, ws):
        self.ws = ws

    async def recv(self):
        message = await self.ws.recv()
        say(f"<- {message}")
        return message

    async def send(self, message):
        say(f"-> {message}")
        await self.ws.send(message)


# ---------------------------------------------------------------------------
# what the charger answers
# ---------------------------------------------------------------------------


class Charger16(ChargePoint16):
    configuration = {
        "HeartbeatInterval": "10",
        "MeterValueSampleInterval": "1",
        "NumberOfConnectors": "1",
        "AuthorizeRemoteTxRequests": "false",
    }

    @on(Action16.get_configuration)
    def on_get_configuration(self, key=None, **_):
        wanted = key or list(self.configuration)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": k == "NumberOfConnectors", "value": self.configuration[k]}
                for k in wanted if k in self.configuration
            ],
            unknown_key=[k for k in wanted if k not in self.configuration] or None,
        )

    @on(Action16.reset)
    def on_reset(self, type, **_):
        say(f"** {type} reset requested (simulated: accepted, not rebooting)")
        return result16.Reset(status="Accepted")

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag, connector_id=None, **_):
        say(f"** remote start requested for {id_tag} on connector {connector_id} (simulated: accepted)")
        return result16.RemoteStartTransaction(status="Accepted")


class Charger201(ChargePoint201):
    variables = {
        ("OCPPCommCtrlr", "HeartbeatInterval"): "10",
        ("AlignedDataCtrlr", "Interval"): "1",
        ("AuthCtrlr", "Enabled"): "true",
    }

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data, **_):
        results = []
        for item in get_variable_data:
            component, variable = item["component"]["name"], item["variable"]["name"]
            value = self.variables.get((component, variable))
            entry = {
                "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                "component": {"name": component},
                "variable": {"name": variable},
            }
            if value is not None:
                entry["attribute_value"] = value
            results.append(entry)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.reset)
    def on_reset(self, type, **_):
        say(f"** {type} reset requested (simulated: accepted, not rebooting)")
        return result201.Reset(status="Accepted")

    @on(Action201.request_start_transaction)
    def on_request_start(self, id_token, remote_start_id, **_):
        say(f"** remote start {remote_start_id} requested for {id_token.get('id_token')} (simulated: accepted)")
        return result201.RequestStartTransaction(status="Accepted")


# ---------------------------------------------------------------------------
# what the charger does
# ---------------------------------------------------------------------------


class CallFailed(Exception):
    pass


async def call(cp, payload):
    try:
        result = await cp.call(payload, suppress=False)
    except asyncio.TimeoutError as exc:
        raise CallFailed(f"{type(payload).__name__}: no answer ({exc})") from exc
    except Exception as exc:  # CALLERROR raised as an OCPPError
        raise CallFailed(f"{type(payload).__name__}: {exc!r}") from exc
    return result


async def session16(cp, args, deadline) -> int:
    boot = await call(cp, call16.BootNotification(charge_point_vendor="ocpp-proxy", charge_point_model="SimCharger",
                                                  charge_point_serial_number=cp.id, firmware_version="sim-1"))
    if boot.status != "Accepted":
        raise CallFailed(f"BootNotification answered {boot.status}")
    interval = args.heartbeat_interval or boot.interval
    await call(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                             timestamp=now()))
    auth = await call(cp, call16.Authorize(id_tag=args.id_tag))
    say(f"** {args.id_tag} is {auth.id_tag_info['status']}")
    await call(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
    meter = 10_000
    start = await call(cp, call16.StartTransaction(connector_id=1, id_tag=args.id_tag, meter_start=meter,
                                                   timestamp=now()))
    tx = start.transaction_id
    say(f"** transaction {tx} started")
    await call(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
    for _ in range(args.meter_values):
        await asyncio.sleep(args.meter_interval)
        meter += 250
        await call(cp, call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": now(),
            "sampledValue": [
                {"value": str(meter), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                 "context": "Sample.Periodic"},
                {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
            ],
        }]))
    await call(cp, call16.StopTransaction(meter_stop=meter, timestamp=now(), transaction_id=tx, id_tag=args.id_tag,
                                          reason="Local"))
    say(f"** transaction {tx} stopped at {meter} Wh")
    await call(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status="Finishing"))
    await call(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    await heartbeats(cp, call16.Heartbeat, interval, deadline)
    return 0


async def session201(cp, args, deadline) -> int:
    id_token = {"id_token": args.id_tag, "type": "ISO14443"}
    boot = await call(cp, call201.BootNotification(
        charging_station={"vendor_name": "ocpp-proxy", "model": "SimCharger", "serial_number": cp.id[:25],
                          "firmware_version": "sim-1"},
        reason="PowerUp"))
    if boot.status != "Accepted":
        raise CallFailed(f"BootNotification answered {boot.status}")
    interval = args.heartbeat_interval or boot.interval
    await call(cp, call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1,
                                              connector_id=1))
    auth = await call(cp, call201.Authorize(id_token=id_token))
    say(f"** {args.id_tag} is {auth.id_token_info['status']}")
    await call(cp, call201.StatusNotification(timestamp=now(), connector_status="Occupied", evse_id=1,
                                              connector_id=1))
    tx = f"sim-{int(time.time())}"
    meter = 10_000.0
    seq = 0

    def energy(wh, context="Sample.Periodic"):
        return [{"timestamp": now(), "sampled_value": [{
            "value": wh, "measurand": "Energy.Active.Import.Register", "context": context,
            "unit_of_measure": {"unit": "Wh"}}]}]

    await call(cp, call201.TransactionEvent(
        event_type="Started", timestamp=now(), trigger_reason="Authorized", seq_no=seq,
        transaction_info={"transaction_id": tx, "charging_state": "Charging"}, id_token=id_token,
        evse={"id": 1, "connector_id": 1}, meter_value=energy(meter, "Transaction.Begin")))
    say(f"** transaction {tx} started")
    for _ in range(args.meter_values):
        await asyncio.sleep(args.meter_interval)
        meter += 250
        seq += 1
        await call(cp, call201.MeterValues(evse_id=1, meter_value=energy(meter)))
        await call(cp, call201.TransactionEvent(
            event_type="Updated", timestamp=now(), trigger_reason="MeterValuePeriodic", seq_no=seq,
            transaction_info={"transaction_id": tx}, meter_value=energy(meter)))
    seq += 1
    await call(cp, call201.TransactionEvent(
        event_type="Ended", timestamp=now(), trigger_reason="StopAuthorized", seq_no=seq,
        transaction_info={"transaction_id": tx, "stopped_reason": "Local"}, id_token=id_token,
        meter_value=energy(meter, "Transaction.End")))
    say(f"** transaction {tx} ended at {meter} Wh")
    await call(cp, call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1,
                                              connector_id=1))
    await heartbeats(cp, call201.Heartbeat, interval, deadline)
    return 0


async def heartbeats(cp, heartbeat_cls, interval, deadline):
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(interval, remaining))
        if time.monotonic() >= deadline:
            return
        await call(cp, heartbeat_cls())


async def run(args) -> int:
    identity = urllib.parse.unquote(urllib.parse.urlparse(args.url).path.rstrip("/").rsplit("/", 1)[-1])
    deadline = time.monotonic() + args.duration
    try:
        ws = await connect(args.url, subprotocols=[args.version], open_timeout=args.connect_timeout)
    except websockets.InvalidStatus as exc:
        say(f"!! connection refused: HTTP {exc.response.status_code}")
        return 1
    except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
        say(f"!! cannot connect to {args.url}: {exc}")
        return 1
    if ws.subprotocol != args.version:
        say(f"!! server selected subprotocol {ws.subprotocol!r}, asked for {args.version}")
        await ws.close()
        return 1
    say(f"** connected to {args.url} as {identity} ({ws.subprotocol})")
    cls = Charger16 if args.version == "ocpp1.6" else Charger201
    cp = cls(identity, LoggingConnection(ws), response_timeout=args.response_timeout)
    reader = asyncio.create_task(cp.start())
    script = asyncio.create_task((session16 if args.version == "ocpp1.6" else session201)(cp, args, deadline))
    try:
        done, _ = await asyncio.wait({reader, script}, return_when=asyncio.FIRST_COMPLETED)
        if script in done:
            status = script.result()
            await ws.close(1000, "simulation finished")
            say(f"** done after {args.duration}s, closed with {ws.close_code}")
            return status
        say(f"!! link closed early: code {ws.close_code} {ws.close_reason!r}")
        return 1
    except CallFailed as exc:
        say(f"!! {exc}")
        await ws.close(1000)
        return 1
    finally:
        for task in (reader, script):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8180/ocpp/CP001",
                        help="charger URL: endpoint + '/' + identity")
    parser.add_argument("--version", choices=["ocpp1.6", "ocpp2.0.1"], default="ocpp1.6")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run before exiting")
    parser.add_argument("--heartbeat-interval", type=float, default=None,
                        help="seconds between heartbeats (default: the interval from BootNotification)")
    parser.add_argument("--meter-values", type=int, default=3, help="meter readings during the transaction")
    parser.add_argument("--meter-interval", type=float, default=1.0, help="seconds between meter readings")
    parser.add_argument("--id-tag", default="TAG-0001")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--response-timeout", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true", help="also show the ocpp package's own log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
