#!/usr/bin/env python3
"""A SOAP (OCPP-S 1.5 / 1.6) charging-station simulator for trying out ocpp-proxy by hand.

Built on zeep and the official CentralSystemService / ChargePointService WSDLs kept in
Tests/Interop/wsdl/ (it reuses the interop suite's SOAP peers, Tests/Interop/soap_peers.py). It POSTs
SOAP 1.2 envelopes to the proxy's SOAP listener: boots, reports its connector, authorizes a tag, runs
one whole transaction with meter values, then sends heartbeats until --duration seconds have passed,
printing every envelope it sends and receives. Its own ChargePointService endpoint (sent as wsa:From,
on 127.0.0.1:--listen-port) answers the CSMS's calls: GetConfiguration, ChangeConfiguration, Reset,
RemoteStartTransaction, RemoteStopTransaction, UnlockConnector, ChangeAvailability (and, with canned
answers, the other operations of the WSDL); every request it gets is checked against the WSDL.

    .venv/bin/python tools/soap_charger.py --url http://127.0.0.1:8190/ocpp/soap --identity CP015 --version ocpp1.5

Exit status: 0 when the run completed, 1 when a request failed (a SOAP Fault, an HTTP error, no
answer, BootNotification not accepted), the endpoint could not listen, or the proxy sent the endpoint
a request that does not validate against the ChargePointService WSDL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# the SOAP peers of the interop suite: zeep on the official WSDLs, and the charger's own endpoint
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Tests" / "Interop"))

import zeep.exceptions  # noqa: E402
from lxml import etree  # noqa: E402
from zeep.plugins import Plugin  # noqa: E402

from soap_peers import (  # noqa: E402
    V15,
    V16,
    WSA,
    ChargePointServer,
    ReceivedRequest,
    SoapCharger,
    default_answers,
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def say(text: str) -> None:
    print(f"{now()} {text}", flush=True)


# ---------------------------------------------------------------------------
# printing envelopes
# ---------------------------------------------------------------------------


class Printer:
    """Envelopes as one line each: the whole envelope, or with --brief the wsa:Action and the body only."""

    def __init__(self, brief: bool):
        self.brief = brief

    def text(self, data: bytes | etree._Element) -> str:
        try:
            root = data if isinstance(data, etree._Element) else etree.fromstring(
                data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError:
            return repr(data[:500])
        if not self.brief:
            return etree.tostring(root, encoding="unicode")
        ns = etree.QName(root).namespace
        action = root.findtext(f"{{{ns}}}Header/{{{WSA}}}Action") or "?"
        body = root.find(f"{{{ns}}}Body")
        content = "".join(etree.tostring(child, encoding="unicode") for child in body) if body is not None else ""
        return f"[{action.strip()}] {content}"


class PrintRequests(Plugin):
    """A zeep plugin printing each request envelope as it leaves (WS-Addressing headers included)."""

    def __init__(self, printer: Printer, url: str):
        self.printer = printer
        self.url = url

    def egress(self, envelope, http_headers, operation, binding_options):
        say(f"-> POST {self.url} {self.printer.text(envelope)}")
        return envelope, http_headers


# ---------------------------------------------------------------------------
# what the charger answers on its own endpoint
# ---------------------------------------------------------------------------


class Station:
    """The simulated charger's state and its answers to the CSMS's calls."""

    def __init__(self, version: str):
        self.version = version
        self.configuration = {
            "HeartbeatInterval": ("10", False),
            "MeterValueSampleInterval": ("1", False),
            "NumberOfConnectors": ("1", True),
            "AuthorizeRemoteTxRequests": ("false", False),
        }

    def answers(self) -> dict:
        answers = default_answers(self.version)  # canned answers for the operations not simulated below
        answers.update({
            "GetConfiguration": self.get_configuration,
            "ChangeConfiguration": self.change_configuration,
            "Reset": self.reset,
            "RemoteStartTransaction": self.remote_start,
            "RemoteStopTransaction": self.remote_stop,
            "UnlockConnector": self.unlock,
            "ChangeAvailability": self.change_availability,
        })
        return answers

    def get_configuration(self, payload: dict) -> dict:
        wanted = payload.get("key") or list(self.configuration)
        return {"configurationKey": [{"key": k, "readonly": self.configuration[k][1], "value": self.configuration[k][0]}
                                     for k in wanted if k in self.configuration],
                "unknownKey": [k for k in wanted if k not in self.configuration]}

    def change_configuration(self, payload: dict) -> dict:
        key, value = payload["key"], payload["value"]
        if key not in self.configuration:
            status = "NotSupported"
        elif self.configuration[key][1]:
            status = "Rejected"
        else:
            self.configuration[key] = (value, False)
            status = "Accepted"
        say(f"** configuration {key} = {value!r}: {status}")
        return {"status": status}

    def reset(self, payload: dict) -> dict:
        say(f"** {payload.get('type')} reset requested (simulated: accepted, not rebooting)")
        return {"status": "Accepted"}

    def remote_start(self, payload: dict) -> dict:
        say(f"** remote start requested for {payload.get('idTag')} on connector {payload.get('connectorId')} "
            f"(simulated: accepted)")
        return {"status": "Accepted"}

    def remote_stop(self, payload: dict) -> dict:
        say(f"** remote stop requested for transaction {payload.get('transactionId')} (simulated: accepted)")
        return {"status": "Accepted"}

    def unlock(self, payload: dict) -> dict:
        say(f"** unlock requested for connector {payload.get('connectorId')} (simulated: unlocked)")
        return {"status": "Accepted" if self.version == V15 else "Unlocked"}

    def change_availability(self, payload: dict) -> dict:
        say(f"** connector {payload.get('connectorId')} made {payload.get('type')} (simulated: accepted)")
        return {"status": "Accepted"}


# ---------------------------------------------------------------------------
# what the charger does
# ---------------------------------------------------------------------------


class CallFailed(Exception):
    pass


class Caller:
    def __init__(self, charger: SoapCharger, printer: Printer):
        self.charger = charger
        self.printer = printer

    async def __call__(self, action: str, **fields) -> dict:
        sent = len(self.charger.exchanges)
        try:
            return await self.charger.call(action, **fields)
        except zeep.exceptions.Fault as exc:
            raise CallFailed(f"{action}: SOAP Fault {exc.code}: {exc.message}") from exc
        except AssertionError as exc:  # HTTP error, no answer, an answer the WSDL does not validate
            raise CallFailed(f"{action}: {str(exc).splitlines()[0]}") from exc
        finally:
            if len(self.charger.exchanges) > sent:
                exchange = self.charger.last
                if exchange.status is not None:
                    say(f"<- HTTP {exchange.status} {self.printer.text(exchange.response)}")


def utc() -> datetime:
    return datetime.now(timezone.utc)


async def session(call: Caller, args, version: str, identity: str, deadline: float) -> int:
    v15 = version == V15
    boot = await call("BootNotification", chargePointVendor="ocpp-proxy", chargePointModel="SimSoapCharger",
                      chargePointSerialNumber=identity[:25], firmwareVersion="sim-1")
    if boot.get("status") != "Accepted":
        raise CallFailed(f"BootNotification answered {boot.get('status')}")
    interval = args.heartbeat_interval or boot.get("heartbeatInterval" if v15 else "interval") or 10

    async def status(state: str):
        await call("StatusNotification", connectorId=1, status=state, errorCode="NoError", timestamp=utc())

    await status("Available")
    auth = await call("Authorize", idTag=args.id_tag)
    say(f"** {args.id_tag} is {auth['idTagInfo']['status']}")
    await status("Occupied" if v15 else "Preparing")
    meter = 10_000
    start = await call("StartTransaction", connectorId=1, idTag=args.id_tag, timestamp=utc(), meterStart=meter)
    tx = start["transactionId"]
    say(f"** transaction {tx} started ({start['idTagInfo']['status']})")
    if not v15:
        await status("Charging")
    for _ in range(args.meter_values):
        await asyncio.sleep(args.meter_interval)
        meter += 250
        if v15:  # 1.5: `values`, each `value` a text carrying its attributes
            await call("MeterValues", connectorId=1, transactionId=tx, values=[{"timestamp": utc(), "value": [
                {"_value_1": str(meter), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"},
                {"_value_1": "16.0", "context": "Sample.Periodic", "measurand": "Current.Import", "unit": "Amp"},
            ]}])
        else:
            await call("MeterValues", connectorId=1, transactionId=tx, meterValue=[{"timestamp": utc(), "sampledValue": [
                {"value": str(meter), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"},
                {"value": "16.0", "context": "Sample.Periodic", "measurand": "Current.Import", "unit": "A",
                 "phase": "L1"},
            ]}])
    stop = {} if v15 else {"reason": "Local"}  # 1.5 has no reason
    await call("StopTransaction", transactionId=tx, idTag=args.id_tag, timestamp=utc(), meterStop=meter, **stop)
    say(f"** transaction {tx} stopped at {meter} Wh")
    if not v15:
        await status("Finishing")
    await status("Available")
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 0
        await asyncio.sleep(min(interval, remaining))
        if time.monotonic() >= deadline:
            return 0
        await call("Heartbeat")


async def run(args) -> int:
    printer = Printer(args.brief)
    station = Station(args.version)
    deadline = time.monotonic() + args.duration

    def on_request(received: ReceivedRequest) -> None:
        say(f"<- POST {server.url} {printer.text(received.raw)}")
        for problem in received.problems:
            say(f"!! invalid request from the proxy: {problem}")

    def on_answer(received: ReceivedRequest, response) -> None:
        say(f"-> HTTP {response.status} {printer.text(response.body)}")

    server = ChargePointServer(args.version, args.identity, answers=station.answers(), port=args.listen_port or None,
                               on_request=on_request, on_answer=on_answer)
    try:
        await server.start()
    except OSError as exc:
        say(f"!! cannot listen on 127.0.0.1:{args.listen_port}: {exc}")
        return 1
    charger = SoapCharger(args.version, args.identity, args.url, from_address=server.url,
                          timeout=args.response_timeout, plugins=[PrintRequests(printer, args.url)])
    say(f"** {args.identity} ({args.version} over SOAP) posting to {args.url}; its ChargePointService is {server.url}")
    try:
        status = await session(Caller(charger, printer), args, args.version, args.identity, deadline)
    except CallFailed as exc:
        say(f"!! {exc}")
        status = 1
    finally:
        await charger.aclose()
        await server.close()
    if server.problems:
        say(f"!! the proxy sent {len(server.problems)} invalid request(s) to the charger's endpoint (see above)")
        status = 1
    if status == 0:
        say(f"** done after {args.duration}s: {len(charger.exchanges)} requests sent, "
            f"{len(server.requests)} received from the CSMS")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8190/ocpp/soap",
                        help="the proxy's SOAP listener (the charger's central system URL)")
    parser.add_argument("--identity", default="CP015", help="chargeBoxIdentity")
    parser.add_argument("--version", choices=[V15, V16], default=V15)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run before exiting")
    parser.add_argument("--listen-port", type=int, default=0,
                        help="port of the charger's own ChargePointService endpoint on 127.0.0.1, sent as wsa:From "
                             "(default: a free port)")
    parser.add_argument("--heartbeat-interval", type=float, default=None,
                        help="seconds between heartbeats (default: the interval from BootNotification)")
    parser.add_argument("--meter-values", type=int, default=3, help="meter readings during the transaction")
    parser.add_argument("--meter-interval", type=float, default=1.0, help="seconds between meter readings")
    parser.add_argument("--id-tag", default="TAG-0001")
    parser.add_argument("--response-timeout", type=float, default=15.0, help="seconds to wait for each answer")
    parser.add_argument("--brief", action="store_true", help="print wsa:Action and body only, not whole envelopes")
    parser.add_argument("--verbose", action="store_true", help="also show zeep's and aiohttp's own log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
