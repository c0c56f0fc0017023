"""The upstream link is opened before the charger's upgrade completes; its failures map to 502/503/504."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from websockets.exceptions import InvalidStatus

from harness import LOCALHOST, connect_raw, free_port, wait_event

V16 = "ocpp1.6"


async def rejected_status(url: str, protocols=(V16,)) -> int:
    with pytest.raises(InvalidStatus) as info:
        ws = await connect_raw(url, list(protocols), open_timeout=15)
        await ws.close()
    return info.value.response.status_code


async def test_upstream_connection_refused_is_502(h):
    dead_port = free_port()
    proxy = await h.proxy(f"ws://{LOCALHOST}:{dead_port}/ocpp", V16)
    assert await rejected_status(proxy.url("CPREFUSED")) == 502


@pytest.mark.parametrize("status", [HTTPStatus.NOT_FOUND, HTTPStatus.FORBIDDEN, HTTPStatus.INTERNAL_SERVER_ERROR])
async def test_upstream_http_error_answer_is_502(h, status):
    csms = await h.raw_csms(V16, process_request=lambda conn, req: conn.respond(status, "no\n"))
    proxy = await h.proxy(csms.url, V16)
    assert await rejected_status(proxy.url("CPHTTPERR")) == 502
    assert csms.handshake_paths == ["/ocpp/CPHTTPERR"], "the proxy should have tried the upstream exactly once"


async def test_upstream_refusing_the_subprotocol_is_502(h):
    # the CSMS only speaks 2.0.1; the proxy asks for 1.6 -> the CSMS answers 400
    csms = await h.raw_csms("ocpp2.0.1")
    proxy = await h.proxy(csms.url, V16)
    assert await rejected_status(proxy.url("CPPROTO")) == 502


async def test_upstream_upgrade_without_subprotocol_is_502_and_link_is_closed(h):
    # the CSMS completes the upgrade but selects no subprotocol
    csms = await h.raw_csms(None)
    proxy = await h.proxy(csms.url, V16)
    assert await rejected_status(proxy.url("CPNOSUB")) == 502
    session = await csms.next_session()
    await session.wait_closed(timeout=5)  # no half-open upstream link


async def test_upstream_host_unresolvable_is_503(h):
    proxy = await h.proxy("ws://nonexistent.invalid:9000/ocpp", V16)
    assert await rejected_status(proxy.url("CPDNS")) == 503


async def test_upstream_not_answering_the_upgrade_is_504_after_connect_timeout(h):
    silent = await h.silent_server()
    proxy = await h.proxy(f"ws://{LOCALHOST}:{silent.port}/ocpp", V16, {"upstream": {"connectTimeout": "1s"}})
    started = time.monotonic()
    assert await rejected_status(proxy.url("CPSLOW")) == 504
    elapsed = time.monotonic() - started
    assert silent.accepted.is_set(), "the proxy never reached the silent upstream"
    assert 0.8 <= elapsed <= 5.0, f"504 came after {elapsed:.2f}s, connectTimeout is 1s"
    await wait_event(silent.peer_closed, "close of the timed-out upstream TCP connection", timeout=5)


async def test_connect_timeout_in_milliseconds_is_honoured(h):
    silent = await h.silent_server()
    proxy = await h.proxy(f"ws://{LOCALHOST}:{silent.port}/ocpp", V16, {"upstream": {"connectTimeout": "500ms"}})
    started = time.monotonic()
    assert await rejected_status(proxy.url("CPSLOW2")) == 504
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed <= 3.0, f"504 came after {elapsed:.2f}s, connectTimeout is 500ms"


@pytest.mark.parametrize("kind", ["refused", "rejected", "timeout"])
async def test_failed_upstream_leaves_no_charger_registered(h, kind):
    if kind == "refused":
        url = f"ws://{LOCALHOST}:{free_port()}/ocpp"
    elif kind == "rejected":
        csms = await h.raw_csms(V16, process_request=lambda conn, req: conn.respond(HTTPStatus.NOT_FOUND, "no\n"))
        url = csms.url
    else:
        silent = await h.silent_server()
        url = f"ws://{LOCALHOST}:{silent.port}/ocpp"
    proxy = await h.proxy(url, V16, {"upstream": {"connectTimeout": "1s"}})
    await rejected_status(proxy.url("CPGONE"))
    assert [c for c in await proxy.chargers() if c["identity"] == "CPGONE"] == []


async def test_charger_can_connect_once_the_upstream_comes_back(h):
    # first attempt: nothing listens upstream -> 502; then a CSMS appears on that port
    port = free_port()
    proxy = await h.proxy(f"ws://{LOCALHOST}:{port}/ocpp", V16)
    assert await rejected_status(proxy.url("CPBACK")) == 502

    from websockets.asyncio.server import serve

    seen = []

    async def handler(ws):
        seen.append(ws.request.path)
        await ws.wait_closed()

    async with serve(handler, LOCALHOST, port, subprotocols=[V16], ping_interval=None):
        ws = await connect_raw(proxy.url("CPBACK"), [V16])
        h.track(ws)
        assert ws.subprotocol == V16
        assert seen == ["/ocpp/CPBACK"]
        await ws.close()


async def test_upstream_upgrade_request_is_a_plain_websocket_get(h):
    # A GET upgrade carries no body: RFC 9110 §8.6 says a client SHOULD NOT send Content-Length
    # without content, and CSMSs on Python websockets < 16 answer such a request with HTTP 400.
    csms = await h.raw_ws_server(V16)
    proxy = await h.proxy(csms.url, V16)
    await h.raw_charger(proxy, "CPHDR", [V16])
    await csms.next_connection()
    (request_line, headers), = csms.requests
    assert request_line == "GET /ocpp/CPHDR HTTP/1.1"
    assert headers.get("upgrade", "").lower() == "websocket"
    assert "upgrade" in headers.get("connection", "").lower()
    assert headers.get("sec-websocket-version") == "13"
    assert headers.get("sec-websocket-protocol") == V16
    assert headers.get("host") == f"{LOCALHOST}:{csms.port}"
    assert "content-length" not in headers, f"upgrade request carries Content-Length: {headers['content-length']}"
    assert "transfer-encoding" not in headers
