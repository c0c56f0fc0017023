"""Limits on what a connection may hold before it is a charger (issue 15).

``limits.handshakeTimeout``: a connection that has not finished TLS and its WebSocket upgrade (or sent a complete
SOAP request) in time is closed, so half-open handshakes cannot use up the proxy's file descriptors while real
chargers still get in.
"""

from __future__ import annotations

import asyncio
import time

from ocpp.v16 import call as call16

from harness import LOCALHOST, V16, metric_value, parse_prometheus, run_cli
from soap_peers import soap_listener

PARTIAL_HANDSHAKES = 1000
TIMEOUT = 1.0


async def open_partial(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    if request:
        writer.write(request)
        await writer.drain()
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the proxy closes the connection (EOF, or a reset) within ``within`` seconds, sending nothing."""
    try:
        data = await asyncio.wait_for(reader.read(1024), within)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False
    return data == b""


async def handshake_timeouts(proxy) -> float:
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    return metric_value(samples, "ocpp_proxy_handshake_timeouts_total", listener="chargers")


async def test_partial_handshakes_are_closed_at_the_timeout_while_a_charger_gets_in(h):
    proxy, csms = await h.pair(V16, overrides={"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                               "upstream": {"connectTimeout": "500ms"}})
    started = time.monotonic()
    # A request line and one header, never the blank line that ends the head.
    partial = [await open_partial(proxy.port, b"GET /ocpp/HALF HTTP/1.1\r\nHost: x\r\n")
               for _ in range(PARTIAL_HANDSHAKES)]
    # While they are held, a real charger connects and is served.
    charger = await h.charger(proxy, "REAL1", V16)
    boot = await charger.cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
                                 suppress=False)
    assert boot.status == "Accepted"
    closed = await asyncio.gather(*(closed_by_peer(reader, TIMEOUT + 10) for reader, _ in partial))
    elapsed = time.monotonic() - started
    assert all(closed), f"{closed.count(False)} partial handshakes still open after {elapsed:.1f}s"
    assert elapsed >= TIMEOUT, "closed before the timeout"
    assert await handshake_timeouts(proxy) == PARTIAL_HANDSHAKES
    # The charger that finished its upgrade is not touched by the timeout.
    heartbeat = await charger.cp.call(call16.Heartbeat(), suppress=False)
    assert heartbeat.current_time
    for _, writer in partial:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_timeout(h):
    proxy, _ = await h.pair(V16, overrides={"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                            "upstream": {"connectTimeout": "500ms"}})
    reader, writer = await open_partial(proxy.port, b"")
    assert await closed_by_peer(reader, TIMEOUT + 10)
    assert await handshake_timeouts(proxy) == 1
    writer.close()


async def test_a_soap_request_whose_body_never_ends_is_closed_at_the_timeout(h):
    csms = await h.csms(V16)
    soap = soap_listener(versions=(V16,))
    proxy = await h.proxy(csms.url, V16, {"limits": {"handshakeTimeout": f"{TIMEOUT}s"},
                                          "upstream": {"connectTimeout": "500ms"}}, listeners=[soap])
    head = (f"POST {soap['path']} HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
            "Content-Length: 1000\r\n\r\n<soap:Envelope").encode()
    reader, writer = await open_partial(soap["port"], head)
    assert await closed_by_peer(reader, TIMEOUT + 10)
    samples = parse_prometheus((await proxy.admin("/metrics")).text)
    assert metric_value(samples, "ocpp_proxy_handshake_timeouts_total", listener=soap["name"]) == 1
    writer.close()


def test_a_handshake_timeout_not_longer_than_the_upstream_connect_timeout_is_refused(h, tmp_path):
    from harness import proxy_config
    import yaml

    config = proxy_config("ws://127.0.0.1:9/ocpp", V16, overrides={
        "limits": {"handshakeTimeout": "5s"}, "upstream": {"connectTimeout": "5s"}})
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(h.binary, "check-config", "--config", str(path))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: limits.handshakeTimeout: expected more than upstream.connectTimeout (5s), got 5s"), result.stderr
