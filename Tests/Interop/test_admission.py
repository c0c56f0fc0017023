"""Admission: the HTTP answer the proxy gives before (or instead of) the WebSocket upgrade."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from harness import (
    connect_raw,
    expect_closed,
    free_port,
    http_request,
    listener,
    raw_ws_connect,
    recv_json,
    wait_event,
)

V16, V201, V21 = "ocpp1.6", "ocpp2.0.1", "ocpp2.1"


async def handshake_status(proxy, path, protocols=("ocpp1.6",)):
    status, headers, ws = await raw_ws_connect(proxy.port, path, list(protocols) if protocols is not None else None)
    if ws is not None:
        await ws.aclose()
    return status, headers


async def heartbeat_round_trip(ws, csms_session, message_id="hb-1"):
    """Send a Heartbeat through the proxy and have the (raw) CSMS answer it."""
    await ws.send(json.dumps([2, message_id, "Heartbeat", {}]))
    assert await csms_session.recv_json() == [2, message_id, "Heartbeat", {}]
    await csms_session.send_json([3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}])
    assert await recv_json(ws) == [3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}]


# ---------------------------------------------------------------------------
# accepted connections
# ---------------------------------------------------------------------------


async def test_charger_is_accepted_with_its_offered_version_and_linked_upstream(h):
    proxy, csms = await h.pair(V16)
    ws = await h.raw_charger(proxy, "CP1", [V16])
    assert ws.subprotocol == V16
    session = await csms.next_session()
    assert session.identity == "CP1"
    assert session.path == "/ocpp/CP1"
    assert session.subprotocol == V16


async def test_identity_of_48_characters_is_accepted(h):
    proxy, csms = await h.pair(V16)
    identity = "C" * 48
    ws = await h.raw_charger(proxy, identity, [V16])
    assert ws.subprotocol == V16
    session = await csms.next_session()
    assert session.identity == identity


async def test_upstream_path_carries_the_percent_encoded_identity(h):
    proxy, csms = await h.pair(V16)
    status, _, raw = await raw_ws_connect(proxy.port, "/ocpp/CP%2001", [V16])
    assert status == 101
    h.track(raw)
    session = await csms.next_session()
    assert session.path == "/ocpp/CP%2001"
    assert session.identity == "CP 01"


async def test_unreserved_identity_characters_pass_unchanged_upstream(h):
    proxy, csms = await h.pair(V16)
    await h.raw_charger(proxy, "CP-1_a.b~c", [V16])
    session = await csms.next_session()
    assert session.path == "/ocpp/CP-1_a.b~c"


# ---------------------------------------------------------------------------
# 404 / 400 before the upgrade
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/other/CP1", "/ocpp", "/ocpp/a/b", "/ocppx/CP1", "/", "/CP1"])
async def test_request_path_not_under_listener_path_is_404(h, path):
    proxy, csms = await h.pair(V16, raw=True)
    status, _ = await handshake_status(proxy, path)
    assert status == 404
    assert csms.handshake_paths == [], "a rejected charger must not get an upstream connection"


async def test_websockets_client_sees_404_as_invalid_status(h):
    proxy, _ = await h.pair(V16, raw=True)
    with pytest.raises(InvalidStatus) as info:
        await connect_raw(f"ws://127.0.0.1:{proxy.port}/other/CP1", [V16])
    assert info.value.response.status_code == 404


BAD_IDENTITY_PATHS = {
    "empty": "/ocpp/",
    "49-chars": "/ocpp/" + "C" * 49,
    "colon": "/ocpp/CP:1",
    "encoded-colon": "/ocpp/CP%3A1",
    "encoded-slash": "/ocpp/CP%2F1",
    "encoded-newline": "/ocpp/CP%0A1",
    "encoded-nul": "/ocpp/CP%001",
    "encoded-tab": "/ocpp/CP%091",
    "encoded-del": "/ocpp/CP%7F1",
    "bad-percent-hex": "/ocpp/CP%ZZ",
    "truncated-percent": "/ocpp/CP%4",
    "lone-percent": "/ocpp/%",
    "49-chars-after-decoding": "/ocpp/" + "%41" * 49,
    # appended to the CSMS URL, a dot-segment would be a path traversal (/ocpp/.. is the CSMS's root)
    "dot": "/ocpp/.",
    "dot-dot": "/ocpp/..",
    "encoded-dot-dot": "/ocpp/%2E%2E",
    "mixed-dot-dot": "/ocpp/.%2e",
}


@pytest.mark.parametrize("path", list(BAD_IDENTITY_PATHS.values()), ids=list(BAD_IDENTITY_PATHS))
async def test_invalid_identity_is_400(h, path):
    proxy, csms = await h.pair(V16, raw=True)
    status, _ = await handshake_status(proxy, path)
    assert status == 400
    assert csms.handshake_paths == [], "a rejected charger must not get an upstream connection"


async def test_percent_encoded_identity_of_48_characters_is_accepted(h):
    proxy, csms = await h.pair(V16, raw=True)
    status, headers = await handshake_status(proxy, "/ocpp/" + "%41" * 48)
    assert status == 101
    session = await csms.next_session()
    assert session.identity == "A" * 48


async def test_plain_http_get_without_upgrade_is_rejected(h):
    proxy, csms = await h.pair(V16, raw=True)
    resp = await http_request(proxy.port, "/ocpp/CP1")
    assert resp.status in (400, 426)
    assert csms.handshake_paths == []


# ---------------------------------------------------------------------------
# subprotocol negotiation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offered,listener_versions",
    [
        ([V201, V16], [V16, V201, V21]),
        ([V21, V201], [V16, V201]),  # ocpp2.1 not on the listener: skipped
        ([V16, V201], [V201]),  # listener only has 2.0.1: first offered one that is listed
        (["ocpp1.5", "ocpp2.0", V201], [V16, V201]),
    ],
)
async def test_first_offered_version_that_the_listener_supports_is_chosen(h, offered, listener_versions):
    csms = await h.raw_csms(V201)
    proxy = await h.proxy(csms.url, V201, config=_config_with_versions(h, csms.url, V201, listener_versions))
    ws = await h.raw_charger(proxy, "CPNEG", offered)
    assert ws.subprotocol == V201
    session = await csms.next_session()
    assert session.subprotocol == V201
    await heartbeat_round_trip(ws, session)


def _config_with_versions(h, upstream_url, upstream_version, versions, default_version=None):
    options = {"defaultVersion": default_version} if default_version else None
    return h.config(upstream_url, upstream_version, versions=versions, listener_options=options)


async def test_charger_preference_order_wins_over_listener_order(h):
    # Listener lists 2.0.1 first, the charger prefers 1.6: 1.6 is chosen, which then
    # mismatches the 2.0.1 upstream (no translation yet) -> 400.
    csms = await h.raw_csms(V201)
    proxy = await h.proxy(csms.url, V201, config=_config_with_versions(h, csms.url, V201, [V201, V16]))
    status, _ = await handshake_status(proxy, "/ocpp/CPORDER", [V16, V201])
    assert status == 400
    assert csms.handshake_paths == []


async def test_negotiated_version_different_from_upstream_version_is_400(h):
    proxy, csms = await h.pair(V16, raw=True)
    with pytest.raises(InvalidStatus) as info:
        await connect_raw(proxy.url("CPV201"), [V201])
    assert info.value.response.status_code == 400
    assert csms.handshake_paths == []


async def test_missing_subprotocol_header_uses_default_version(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy(csms.url, V16, config=_config_with_versions(h, csms.url, V16, [V16, V201], V16))
    status, headers, raw = await raw_ws_connect(proxy.port, "/ocpp/CPDEFAULT", None)
    h.track(raw)
    assert status == 101
    assert "sec-websocket-protocol" not in headers, "no protocol was offered, so none may be returned"
    session = await csms.next_session()
    assert session.subprotocol == V16
    await raw.send_text(json.dumps([2, "d1", "Heartbeat", {}]))
    assert await session.recv_json() == [2, "d1", "Heartbeat", {}]


async def test_missing_subprotocol_header_without_default_version_is_400(h):
    proxy, csms = await h.pair(V16, raw=True)
    status, _ = await handshake_status(proxy, "/ocpp/CPNOPROTO", None)
    assert status == 400
    assert csms.handshake_paths == []


async def test_no_supported_subprotocol_completes_handshake_without_header_then_closes_1002(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy(csms.url, V16, config=_config_with_versions(h, csms.url, V16, [V16]))
    status, headers, raw = await raw_ws_connect(proxy.port, "/ocpp/CPOLD", ["ocpp1.2", "ocpp1.5"])
    assert status == 101, "OCPP-J: the handshake completes, then the server closes"
    h.track(raw)
    assert "sec-websocket-protocol" not in headers
    await wait_event(raw.close_received, "a close frame from the proxy")
    assert raw.close_code == 1002


async def test_no_supported_subprotocol_opens_no_upstream_link(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy(csms.url, V16, config=_config_with_versions(h, csms.url, V16, [V16]))
    status, _headers, raw = await raw_ws_connect(proxy.port, "/ocpp/CPOLD2", ["ocpp1.5"])
    assert status == 101
    h.track(raw)
    await wait_event(raw.close_received, "a close frame from the proxy")
    assert csms.handshake_paths == []


async def test_websockets_client_sees_1002_when_no_subprotocol_matches(h):
    proxy, _ = await h.pair(V16, raw=True)
    ws = await connect_raw(proxy.url("CPOLD3"), ["ocpp1.5"])
    h.track(ws)
    assert ws.subprotocol is None
    assert await expect_closed(ws) == 1002


# ---------------------------------------------------------------------------
# listener configuration
# ---------------------------------------------------------------------------


async def test_custom_listener_path_is_honoured(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy(csms.url, V16, listener_options={"path": "/cs/v1"})
    status, _ = await handshake_status(proxy, "/ocpp/CPPATH")
    assert status == 404
    status, _, raw = await raw_ws_connect(proxy.port, "/cs/v1/CPPATH", [V16])
    assert status == 101
    h.track(raw)
    session = await csms.next_session()
    assert session.identity == "CPPATH"
    assert session.path == "/ocpp/CPPATH", "the upstream path is upstream.url + /identity, whatever the listener path"


async def test_every_listener_accepts_chargers_and_is_named_in_the_charger_list(h):
    csms = await h.raw_csms(V16)
    second_port = free_port()
    proxy = await h.proxy(csms.url, V16, listeners=[listener(free_port()),
                                                    listener(second_port, name="depot", path="/depot", versions=[V16])])
    ws1 = await h.raw_charger(proxy, "CPMAIN", [V16])
    ws2 = await connect_raw(f"ws://127.0.0.1:{second_port}/depot/CPDEPOT", [V16])
    h.track(ws2)
    assert ws1.subprotocol == ws2.subprotocol == V16
    identities = {(await csms.next_session()).identity, (await csms.next_session()).identity}
    assert identities == {"CPMAIN", "CPDEPOT"}
    # A session is registered before its 101 is written: a charger that has its answer is listed, no waiting.
    listeners = {c["identity"]: c["listener"] for c in await proxy.chargers()}
    assert listeners == {"CPMAIN": "chargers", "CPDEPOT": "depot"}


async def test_serve_substitutes_environment_variables(h):
    csms = await h.raw_csms(V16)
    proxy = await h.proxy("ws://127.0.0.1:${OCPP_TEST_CSMS_PORT}/ocpp", V16, env={"OCPP_TEST_CSMS_PORT": str(csms.port)})
    ws = await h.raw_charger(proxy, "CPENV", [V16])
    assert ws.subprotocol == V16
    assert (await csms.next_session()).identity == "CPENV"
