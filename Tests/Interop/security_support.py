"""Helpers for the security interop tests (``test_security_*.py``).

On top of ``harness.py`` / ``conftest.py`` (which build every configuration
and start every proxy).  It provides

* ``hash_password``: runs ``ocpp-proxy hash-password`` (results cached per run);
* the security sections of a configuration (``tls_block``, ``charger_entry``,
  ``upstream_tls``) for ``harness.proxy_config`` / ``h.config`` (listeners:
  ``harness.listener``); proxies are started by ``h.proxy``;
* ``start_secure_env``: a recording CSMS and a proxy with one secured listener;
* CSMS stand-ins that can serve ``wss://`` (optionally requiring a client
  certificate) and record the headers and client certificate of every upgrade;
* charger-side connectors: ``websockets`` clients with Basic auth, TLS contexts
  and a chosen source address, an ``ocpp`` charger over the same, and a raw
  TLS upgrade attempt that tells a TLS refusal from an HTTP answer;
* log / metrics helpers (auth-failure counters, secret scanning).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import InvalidStatus

from harness import (
    LOCALHOST,
    V16,
    V201,
    OcppCharger,
    OcppCsms,
    ProxyProcess,
    RawCsms,
    Recorder,
    _run_charge_point,
    connect_raw,
    free_port,
    listener,
    metric_value,
)

AUTH_FAILURES = "ocpp_proxy_auth_failures_total"
# hashes made for tests use the default iteration count (the proxy enforces a minimum)
TEST_ITERATIONS: int | None = None
CUSTOM_ITERATIONS = 250000

# ---------------------------------------------------------------------------
# hash-password
# ---------------------------------------------------------------------------

_hash_cache: dict[tuple[str, str, int | None], str] = {}


def run_hash_password(binary: Path, stdin: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "hash-password", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def hash_password(binary: Path, password: str, iterations: int | None = TEST_ITERATIONS) -> str:
    key = (str(binary), password, iterations)
    if key not in _hash_cache:
        args = ["--iterations", str(iterations)] if iterations is not None else []
        result = run_hash_password(binary, password + "\n", *args)
        assert result.returncode == 0, (
            f"`ocpp-proxy hash-password {' '.join(args)}` exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        value = result.stdout.strip()
        assert value.startswith("pbkdf2-sha256$"), f"hash-password printed {result.stdout!r}"
        _hash_cache[key] = value
    return _hash_cache[key]


# ---------------------------------------------------------------------------
# security sections of a configuration (for ``h.config`` / ``harness.proxy_config``)
# ---------------------------------------------------------------------------


def tls_block(
    pki,
    *,
    client_ca: bool = False,
    crl: Path | str | None = None,
    cpo_name: str | None = None,
    allow_legacy: bool | None = None,
    chain: bool = False,
) -> dict:
    block: dict[str, Any] = {
        "certificate": str(pki.server_chain if chain else pki.server.cert),
        "privateKey": str(pki.server.key),
    }
    if client_ca:
        block["clientCA"] = str(pki.ca.cert)
    if crl is not None:
        block["crl"] = str(crl)
    if cpo_name is not None:
        block["cpoName"] = cpo_name
    if allow_legacy is not None:
        block["allowLegacyTLS"] = allow_legacy
    return block


def charger_entry(
    identity: str,
    profile: int,
    *,
    password: str | None = None,
    password_hash: str | None = None,
    upstream_password: str | None = None,
) -> dict:
    entry: dict[str, Any] = {"identity": identity, "securityProfile": profile}
    if password is not None:
        entry["password"] = password
    if password_hash is not None:
        entry["passwordHash"] = password_hash
    if upstream_password is not None:
        entry["upstream"] = {"password": upstream_password}
    return entry


def upstream_tls(
    pki=None,
    *,
    ca: bool = True,
    client_cert: bool = False,
    insecure: bool | None = None,
) -> dict:
    block: dict[str, Any] = {}
    if ca and pki is not None:
        block["ca"] = str(pki.csms_ca.cert)
    if client_cert:
        block["certificate"] = str(pki.proxy_client.cert)
        block["privateKey"] = str(pki.proxy_client.key)
    if insecure is not None:
        block["insecureSkipVerify"] = insecure
    return block


def ws_url(port: int, identity: str, path: str = "/ocpp") -> str:
    return f"ws://{LOCALHOST}:{port}{path}/{identity}"


def wss_url(port: int, identity: str, path: str = "/ocpp") -> str:
    return f"wss://{LOCALHOST}:{port}{path}/{identity}"


# ---------------------------------------------------------------------------
# CSMS stand-ins with TLS and header recording
# ---------------------------------------------------------------------------


@dataclass
class Handshake:
    path: str
    headers: dict[str, list[str]]  # lower-cased name -> every value
    peer_cert: dict | None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def basic_credentials(self) -> tuple[str, str] | None:
        value = self.header("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        assert scheme.lower() == "basic", f"upstream Authorization is not Basic: {value!r}"
        user, sep, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
        assert sep == ":", f"upstream Basic credentials without a colon: {value!r}"
        return user, password


def _peer_subject(peer_cert: dict | None) -> dict[str, str]:
    if not peer_cert:
        return {}
    return {k: v for rdn in peer_cert.get("subject", ()) for (k, v) in rdn}


class _RecordingCsms:
    """Mixin for the harness CSMS classes: optional TLS, every upgrade's headers and client cert."""

    ssl_context: ssl.SSLContext | None

    def _init_recording(self, ssl_context: ssl.SSLContext | None) -> None:
        self.ssl_context = ssl_context
        self.handshakes: list[Handshake] = []

    async def start(self):
        kwargs: dict[str, Any] = dict(ping_interval=None, max_size=None, process_request=self._process_request)
        if self.subprotocols is not None:
            kwargs["subprotocols"] = self.subprotocols
        if self.ssl_context is not None:
            kwargs["ssl"] = self.ssl_context
        self.server = await ws_serve(self._handler, self.host, 0, **kwargs)
        return self

    def _process_request(self, connection, request):
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            headers.setdefault(name.lower(), []).append(value)
        peer = None
        with contextlib.suppress(Exception):
            peer = connection.transport.get_extra_info("peercert")
        self.handshakes.append(Handshake(request.path, headers, peer))
        return super()._process_request(connection, request)

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{LOCALHOST}:{self.port}/ocpp"

    def peer_subject(self, index: int = -1) -> dict[str, str]:
        return _peer_subject(self.handshakes[index].peer_cert)


class SecureOcppCsms(_RecordingCsms, OcppCsms):
    def __init__(self, version: str = V16, *, ssl_context: ssl.SSLContext | None = None, **kwargs):
        OcppCsms.__init__(self, version, **kwargs)
        self._init_recording(ssl_context)


class SecureRawCsms(_RecordingCsms, RawCsms):
    def __init__(self, version: str | None = V16, *, ssl_context: ssl.SSLContext | None = None, **kwargs):
        RawCsms.__init__(self, version, **kwargs)
        self._init_recording(ssl_context)


async def secure_csms(h, version: str = V16, *, ssl_context=None, raw: bool = False, **kwargs):
    cls = SecureRawCsms if raw else SecureOcppCsms
    server = await cls(version, ssl_context=ssl_context, **kwargs).start()
    h.servers.append(server)
    return server


# ---------------------------------------------------------------------------
# charger side
# ---------------------------------------------------------------------------


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")


def auth_headers(user: str | None, password: str | None) -> dict[str, str]:
    if user is None or password is None:
        return {}
    return {"Authorization": basic_auth(user, password)}


async def connect_charger_ws(
    url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    subprotocols: list[str] | None = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    open_timeout: float = 10.0,
):
    """A ``websockets`` client connection to the proxy (raises ``InvalidStatus`` on a refusal)."""
    kwargs: dict[str, Any] = {}
    hdrs = auth_headers(user, password)
    hdrs.update(headers or {})
    if hdrs:
        kwargs["additional_headers"] = hdrs
    if ssl_context is not None:
        kwargs["ssl"] = ssl_context
    if source is not None:
        kwargs["local_addr"] = (source, 0)
    return await connect_raw(url, subprotocols if subprotocols is not None else [V16],
                             open_timeout=open_timeout, **kwargs)


async def refusal(url: str, **kwargs) -> InvalidStatus:
    """Connect and expect an HTTP refusal; returns the ``InvalidStatus`` (``.response``)."""
    try:
        ws = await connect_charger_ws(url, **kwargs)
    except InvalidStatus as exc:
        return exc
    await ws.close()
    raise AssertionError(f"the proxy accepted the upgrade of {url} (101), a refusal was expected")


async def refusal_status(url: str, **kwargs) -> int:
    return (await refusal(url, **kwargs)).response.status_code


def response_header(exc: InvalidStatus, name: str) -> str | None:
    return exc.response.headers.get(name)


async def connect_ocpp_charger_secure(
    h,
    url: str,
    identity: str,
    version: str = V16,
    *,
    cp_factory=None,
    **connect_kwargs,
) -> OcppCharger:
    """An ``ocpp`` charger (schema validation on) over a secured connection; tracked by ``h``.

    By default the charger also answers the security messages (``SecCharger16`` / ``SecCharger201``).
    """
    if cp_factory is None:
        cp_factory = sec_charger_class(version)
    ws = await connect_charger_ws(url, subprotocols=[version], **connect_kwargs)
    h.track(ws)
    assert ws.subprotocol == version, f"proxy negotiated {ws.subprotocol!r}, expected {version!r}"
    recorder = Recorder(ws)
    cp = cp_factory(identity, recorder)
    task = asyncio.create_task(_run_charge_point(cp))
    charger = OcppCharger(identity, ws, recorder, cp, task)
    h.track(charger)
    return charger


async def boot_round_trip(charger: OcppCharger, version: str = V16) -> None:
    """A BootNotification through the proxy, answered Accepted by the ``ocpp`` CSMS."""
    if version == V16:
        from ocpp.v16 import call as call16

        result = await charger.cp.call(
            call16.BootNotification(charge_point_model="Secure-1", charge_point_vendor="ocpp-proxy-tests"),
            suppress=False,
        )
    else:
        from ocpp.v201 import call as call201

        result = await charger.cp.call(
            call201.BootNotification(
                charging_station={"model": "Secure-1", "vendor_name": "ocpp-proxy-tests"}, reason="PowerUp"
            ),
            suppress=False,
        )
    assert result.status == "Accepted", f"BootNotification answered {result}"


@dataclass
class UpgradeAttempt:
    """What a raw TLS + HTTP upgrade attempt got: where it stopped and what it saw."""

    stage: str  # "handshake" (TLS handshake failed), "response" (no HTTP answer after it), "http"
    error: BaseException | None = None
    status: int | None = None
    tls_version: str | None = None
    cipher: str | None = None

    @property
    def refused_by_tls(self) -> bool:
        return self.stage in ("handshake", "response")


async def tls_upgrade_attempt(
    port: int,
    path: str,
    ctx: ssl.SSLContext,
    *,
    headers: dict[str, str] | None = None,
    protocols: Iterable[str] = (V16,),
    timeout: float = 8.0,
) -> UpgradeAttempt:
    """TLS handshake, then a WebSocket upgrade request; never raises for a refusal.

    A refusal before any HTTP status line is a TLS refusal: with TLS 1.2 it
    shows as a failed handshake; with TLS 1.3 the client's side of the
    handshake completes before the server has checked the client
    certificate, so it shows as an alert / EOF instead of an HTTP response.
    A proxy that does not answer at all within ``timeout`` fails the test.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOCALHOST, port, ssl=ctx, server_hostname=LOCALHOST), timeout
        )
    except asyncio.TimeoutError:
        raise AssertionError(f"TLS handshake with the proxy hung for {timeout}s") from None
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return UpgradeAttempt("handshake", exc)
    ssl_obj = writer.get_extra_info("ssl_object")
    tls_version = ssl_obj.version() if ssl_obj else None
    cipher = ssl_obj.cipher()[0] if ssl_obj else None
    try:
        request_headers = {
            "Host": f"{LOCALHOST}:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Protocol": ", ".join(protocols),
        }
        request_headers.update(headers or {})
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request_headers.items()) + "\r\n"
        writer.write(request.encode("latin-1"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        status = int(first.split(" ")[1])
        return UpgradeAttempt("http", None, status, tls_version, cipher)
    except asyncio.TimeoutError:
        raise AssertionError(
            f"no answer and no close from the proxy within {timeout}s after the TLS handshake"
        ) from None
    except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return UpgradeAttempt("response", exc, None, tls_version, cipher)
    finally:
        writer.transport.abort()


async def plaintext_upgrade_attempt(port: int, path: str, timeout: float = 8.0) -> bytes:
    """Send a plain-text WebSocket upgrade to a TLS port; return every byte received until EOF."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), timeout)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {LOCALHOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        data = b""
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(4096), timeout)
                if not chunk:
                    break
                data += chunk
        except (ConnectionError, OSError):
            pass
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the TLS listener kept a plain-text connection open for {timeout}s (received {data[:80]!r})"
            ) from None
        return data
    finally:
        writer.transport.abort()


# ---------------------------------------------------------------------------
# observability
# ---------------------------------------------------------------------------


async def auth_failures(proxy: ProxyProcess, reason: str | None = None, listener_name: str | None = None) -> float:
    labels = {}
    if reason is not None:
        labels["reason"] = reason
    if listener_name is not None:
        labels["listener"] = listener_name
    return metric_value(await proxy.metrics(), AUTH_FAILURES, **labels)


LOG_LEVEL = re.compile(r"^\S+\s+(trace|debug|info|notice|warning|error|critical)\s", re.IGNORECASE)


def log_lines(text: str, *, min_level: str = "trace") -> list[str]:
    """Text-format log lines at or above ``min_level``."""
    order = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    floor = order.index(min_level)
    out = []
    for line in text.splitlines():
        m = LOG_LEVEL.match(line)
        if m and order.index(m.group(1).lower()) >= floor:
            out.append(line)
    return out


def warnings_matching(text: str, pattern: str) -> list[str]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [line for line in log_lines(text, min_level="warning") if rx.search(line)]


def secret_forms(identity: str | None, secret: str) -> list[str]:
    """The secret itself and the forms it would take inside a Basic Authorization header."""
    forms = [secret]
    if identity is not None:
        token = base64.b64encode(f"{identity}:{secret}".encode()).decode()
        forms.append(token)
    forms.append(base64.b64encode(secret.encode()).decode().rstrip("="))
    return forms


def key_material(pem_path: Path) -> list[str]:
    """Distinctive lines of a PEM private key (any one of them in a log is a leak)."""
    lines = [line for line in pem_path.read_text().splitlines() if line and not line.startswith("-----")]
    return lines[1:4]


def assert_no_secrets(text: str, secrets: Iterable[str], where: str) -> None:
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"secret material found in {where}: {[s[:12] + '...' for s in leaked]}"


# ---------------------------------------------------------------------------
# one proxy with one secured listener in front of a CSMS
# ---------------------------------------------------------------------------

_UNSET = object()


@dataclass
class SecureEnv:
    """A proxy with one listener of a given security profile, in front of a recording CSMS."""

    h: Any
    pki: Any
    proxy: ProxyProcess
    csms: Any
    port: int
    profile: int
    listener_name: str = "secure"

    @property
    def tls(self) -> bool:
        return self.profile >= 2

    def url(self, identity: str) -> str:
        return (wss_url if self.tls else ws_url)(self.port, identity)

    def ctx(self, client: str | None = None, **kwargs) -> ssl.SSLContext | None:
        return self.pki.charger_context(client, **kwargs) if self.tls else None

    def _kwargs(self, identity: str, user, password, client, kwargs) -> dict:
        out = dict(kwargs)
        if password is not None:
            out["user"] = identity if user is _UNSET else user
            out["password"] = password
        if self.tls and "ssl_context" not in out:
            out["ssl_context"] = self.ctx(client)
        return out

    async def connect(self, identity: str, password: str | None = None, *, user=_UNSET, client: str | None = None,
                      **kwargs):
        ws = await connect_charger_ws(self.url(identity), **self._kwargs(identity, user, password, client, kwargs))
        self.h.track(ws)
        return ws

    async def refusal(self, identity: str, password: str | None = None, *, user=_UNSET, client: str | None = None,
                      **kwargs) -> InvalidStatus:
        return await refusal(self.url(identity), **self._kwargs(identity, user, password, client, kwargs))

    async def status(self, identity: str, password: str | None = None, **kwargs) -> int:
        return (await self.refusal(identity, password, **kwargs)).response.status_code

    async def ocpp_charger(self, identity: str, password: str | None = None, version: str = V16, *,
                           client: str | None = None, cp_factory=None, **kwargs) -> OcppCharger:
        return await connect_ocpp_charger_secure(
            self.h, self.url(identity), identity, version, cp_factory=cp_factory,
            **self._kwargs(identity, _UNSET, password, client, kwargs),
        )

    async def failures(self, reason: str | None = None) -> float:
        return await auth_failures(self.proxy, reason, self.listener_name)


async def start_secure_env(
    h,
    pki,
    profile: int,
    chargers: list[dict] | str | None,
    *,
    csms_version: str = V16,
    raw_csms: bool = False,
    csms_ssl: ssl.SSLContext | None = None,
    tls: dict | None = None,
    unknown_chargers: str | None = None,
    lockout: dict | None = None,
    upstream_extra: dict | None = None,
    state: Path | None = None,
    overrides: dict | None = None,
    workdir: Path | None = None,
) -> SecureEnv:
    """A recording CSMS (``csms_version``) and a proxy with one listener ``secure`` of ``profile`` in front."""
    csms_kwargs = {} if raw_csms else {"cp_factory": sec_csms_class(csms_version)}
    csms = await secure_csms(h, csms_version, ssl_context=csms_ssl, raw=raw_csms, **csms_kwargs)
    port = free_port()
    if tls is None and profile >= 2:
        tls = tls_block(pki, client_ca=profile == 3)
    proxy = await h.proxy(
        csms.url, csms_version, overrides, workdir=workdir,
        listeners=[listener(port, profile, name="secure", tls=tls, unknown_chargers=unknown_chargers,
                            versions=[csms_version])],
        chargers=chargers, lockout=lockout, upstream_options=upstream_extra, state=state,
    )
    return SecureEnv(h, pki, proxy, csms, port, profile)


# ---------------------------------------------------------------------------
# OCPP peers that also handle the security messages (schema validation on)
# ---------------------------------------------------------------------------


def _security_peers():
    from ocpp.routing import on
    from ocpp.v16 import call_result as result16
    from ocpp.v16.enums import Action as Action16
    from ocpp.v201 import call_result as result201
    from ocpp.v201.enums import Action as Action201

    from ocpp_peers import Charger16, Charger201, Csms16, Csms201

    class SecCharger16(Charger16):
        """Accepts ChangeConfiguration, InstallCertificate and CertificateSigned."""

        @on(Action16.change_configuration)
        def on_change_configuration(self, key, value, **_):
            return result16.ChangeConfiguration(status="Accepted")

        @on(Action16.install_certificate)
        def on_install_certificate(self, certificate_type, certificate, **_):
            return result16.InstallCertificate(status="Accepted")

        @on(Action16.certificate_signed)
        def on_certificate_signed(self, certificate_chain, **_):
            return result16.CertificateSigned(status="Accepted")

    class SecCharger201(Charger201):
        """SetVariables: HeartbeatInterval Accepted, AuthCtrlr.Enabled Rejected, others UnknownVariable."""

        SET_STATUS = {("OCPPCommCtrlr", "HeartbeatInterval"): "Accepted", ("AuthCtrlr", "Enabled"): "Rejected"}

        @on(Action201.set_variables)
        def on_set_variables(self, set_variable_data, **_):
            results = []
            for item in set_variable_data:
                component, variable = item["component"]["name"], item["variable"]["name"]
                results.append({
                    "attribute_status": self.SET_STATUS.get((component, variable), "UnknownVariable"),
                    "component": {"name": component},
                    "variable": {"name": variable},
                })
            return result201.SetVariables(set_variable_result=results)

        @on(Action201.set_network_profile)
        def on_set_network_profile(self, configuration_slot, connection_data, **_):
            return result201.SetNetworkProfile(status="Accepted")

        @on(Action201.install_certificate)
        def on_install_certificate(self, certificate_type, certificate, **_):
            return result201.InstallCertificate(status="Accepted")

        @on(Action201.certificate_signed)
        def on_certificate_signed(self, certificate_chain, **_):
            return result201.CertificateSigned(status="Accepted")

    class SecCsms16(Csms16):
        @on(Action16.sign_certificate)
        def on_sign_certificate(self, csr, **_):
            return result16.SignCertificate(status="Accepted")

    class SecCsms201(Csms201):
        @on(Action201.sign_certificate)
        def on_sign_certificate(self, csr, **_):
            return result201.SignCertificate(status="Accepted")

    return SecCharger16, SecCharger201, SecCsms16, SecCsms201


SecCharger16, SecCharger201, SecCsms16, SecCsms201 = _security_peers()


def sec_charger_class(version: str):
    return {V16: SecCharger16, V201: SecCharger201}[version]


def sec_csms_class(version: str):
    return {V16: SecCsms16, V201: SecCsms201}[version]


def frames_with_action(frames: list, action: str) -> list:
    """CALL frames (``[2, id, action, payload]``) of one action among recorded frames."""
    return [f for f in frames if isinstance(f, list) and len(f) == 4 and f[0] == 2 and f[2] == action]


async def everything_sent_before_has_arrived(session, charger, version) -> None:
    """Proves absence by order, not by sleeping: the CSMS sends a CALL the proxy forwards (CertificateSigned), and
    once the charger has answered it, every CALL the CSMS sent before it on this link has reached the charger, or
    never will."""
    from ocpp.v16 import call as call16
    from ocpp.v201 import call as call201

    marker = (call16 if version == "ocpp1.6" else call201).CertificateSigned(certificate_chain="ordering-marker")
    result = await session.cp.call(marker, suppress=False)
    assert result.status == "Accepted", result
    received = [f for f in charger.recorder.received_frames() if f[0] == 2 and f[2] == "CertificateSigned"]
    assert received, "the forwarded CertificateSigned was not recorded at the charger"
