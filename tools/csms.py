#!/usr/bin/env python3
"""A small OCPP CSMS for trying out ocpp-proxy by hand.

Built on the `ocpp` package (schema validation on). Chargers (or the proxy)
connect to ws://HOST:PORT/ocpp/{identity}; every frame is printed. After a
BootNotification the CSMS sends one call of its own: GetConfiguration (1.6) or
GetVariables (2.0.1).

    .venv/bin/python tools/csms.py --version ocpp1.6 --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
import sys
import urllib.parse
from datetime import datetime, timezone
from http import HTTPStatus

import websockets
from websockets.asyncio.server import serve

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

PATH_PREFIX = "/ocpp/"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log(identity: str, text: str) -> None:
    print(f"{now()} [{identity}] {text}", flush=True)


class LoggingConnection:
    """Hands frames to the ocpp ChargePoint and prints each one."""

    def __init__(self, identity: str, ws):
        self.identity = identity
        self.ws = ws

    async def recv(self):
        message = await self.ws.recv()
        log(self.identity, f"<- {message}")
        return message

    async def send(self, message):
        log(self.identity, f"-> {message}")
        await self.ws.send(message)


_transaction_ids = itertools.count(1)


class Csms16(ChargePoint16):
    heartbeat_interval = 10

    @on(Action16.boot_notification)
    def on_boot(self, charge_point_vendor, charge_point_model, **_):
        log(self.id, f"BootNotification from {charge_point_vendor} {charge_point_model}: Accepted")
        return result16.BootNotification(current_time=now(), interval=self.heartbeat_interval, status="Accepted")

    @after(Action16.boot_notification)
    async def after_boot(self, **_):
        try:
            result = await self.call(call16.GetConfiguration(), suppress=False)
            log(self.id, f"GetConfiguration answered: {result}")
        except Exception as exc:  # noqa: BLE001 - a walkthrough tool reports and carries on
            log(self.id, f"GetConfiguration failed: {exc!r}")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_):
        return result16.Heartbeat(current_time=now())

    @on(Action16.authorize)
    def on_authorize(self, id_tag, **_):
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.status_notification)
    def on_status(self, connector_id, status, **_):
        return result16.StatusNotification()

    @on(Action16.start_transaction)
    def on_start(self, connector_id, id_tag, meter_start, **_):
        tx = next(_transaction_ids)
        log(self.id, f"transaction {tx} started on connector {connector_id} at {meter_start} Wh")
        return result16.StartTransaction(transaction_id=tx, id_tag_info={"status": "Accepted"})

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id, meter_value, **_):
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop(self, transaction_id, meter_stop, **_):
        log(self.id, f"transaction {transaction_id} stopped at {meter_stop} Wh")
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})


class Csms201(ChargePoint201):
    heartbeat_interval = 10

    @on(Action201.boot_notification)
    def on_boot(self, charging_station, reason, **_):
        log(self.id, f"BootNotification ({reason}) from {charging_station.get('vendor_name')} "
                     f"{charging_station.get('model')}: Accepted")
        return result201.BootNotification(current_time=now(), interval=self.heartbeat_interval, status="Accepted")

    @after(Action201.boot_notification)
    async def after_boot(self, **_):
        try:
            result = await self.call(
                call201.GetVariables(get_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                    {"component": {"name": "AuthCtrlr"}, "variable": {"name": "Enabled"}},
                ]),
                suppress=False,
            )
            log(self.id, f"GetVariables answered: {result}")
        except Exception as exc:  # noqa: BLE001
            log(self.id, f"GetVariables failed: {exc!r}")

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_):
        return result201.Heartbeat(current_time=now())

    @on(Action201.authorize)
    def on_authorize(self, id_token, **_):
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.status_notification)
    def on_status(self, **_):
        return result201.StatusNotification()

    @on(Action201.transaction_event)
    def on_transaction_event(self, event_type, transaction_info, id_token=None, **_):
        log(self.id, f"TransactionEvent {event_type} for {transaction_info.get('transaction_id')}")
        if id_token is not None:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, **_):
        return result201.MeterValues()


CLASSES = {"ocpp1.6": Csms16, "ocpp2.0.1": Csms201}


async def run(args) -> int:
    cls = CLASSES[args.version]
    cls.heartbeat_interval = args.heartbeat_interval

    def check_path(connection, request):
        if not request.path.startswith(PATH_PREFIX) or "/" in request.path[len(PATH_PREFIX):] \
                or len(request.path) == len(PATH_PREFIX):
            log("-", f"refusing {request.path}: expected {PATH_PREFIX}{{identity}}")
            return connection.respond(HTTPStatus.NOT_FOUND, "expected /ocpp/{identity}\n")
        return None

    async def handler(ws):
        identity = urllib.parse.unquote(ws.request.path[len(PATH_PREFIX):])
        remote = ws.remote_address
        log(identity, f"connected from {remote[0]}:{remote[1]} with subprotocol {ws.subprotocol}")
        cp = cls(identity, LoggingConnection(identity, ws), response_timeout=30)
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            log(identity, f"disconnected (close code {ws.close_code}, reason {ws.close_reason!r})")

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    async with serve(handler, args.host, args.port, subprotocols=[args.version], process_request=check_path):
        log("-", f"CSMS ({args.version}) listening on ws://{args.host}:{args.port}{PATH_PREFIX}{{identity}}")
        await stop
    log("-", "stopped")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", choices=sorted(CLASSES), default="ocpp1.6", help="OCPP version (subprotocol)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--heartbeat-interval", type=int, default=10,
                        help="interval returned in BootNotification responses (seconds)")
    parser.add_argument("--verbose", action="store_true", help="also show the ocpp package's own log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
