"""Peers for the SOAP (OCPP-S 1.5 and 1.6) interop tests, on ``zeep`` and the official WSDLs.

The four official WSDLs (``Tests/Interop/wsdl/``) are the oracle:

* ``SoapCharger``: a charger driven by ``zeep`` with the official CentralSystemService WSDL of its version,
  pointed at the proxy's SOAP URL: SOAP 1.2 as the WSDL binds, the ``chargeBoxIdentity`` header, and
  WS-Addressing ``Action`` (``/BootNotification``), ``MessageID``, ``To`` (zeep's own, from the WSDL's
  ``wsaw:Action``), ``From`` (the charger's ChargePointService URL) and ``ReplyTo`` (anonymous). Every answer
  body is validated against the WSDL's schema; every exchange is kept raw.
* ``ChargePointServer``: the charger's own ChargePointService endpoint (aiohttp, loopback). It validates
  every request the proxy sends against the official ChargePointService WSDL (body element of the action,
  XSD) and checks the WS-Addressing set OCPP-S and the issue require (Action, MessageID, To, From,
  ReplyTo anonymous, chargeBoxIdentity); whatever is wrong is recorded in ``problems`` (and the request is
  refused with a SOAP Fault, as a strict charger would). It answers with scripted per-action answers
  built from the WSDL, a SOAP Fault, or never.
* ``SoapCsms16``: a 1.6 CSMS on the ``ocpp`` package (schema validation on) with tunable answers; the
  2.0.1 CSMS is ``translation_support.TranslationCsms201``.
* a writer of raw SOAP requests and a reader of SOAP answers, for what zeep will not send;
* ``soap_listener`` / ``soap_proxy`` / ``soap_station``: a proxy with a ``transport: soap`` listener
  (``harness.listener`` / ``harness.proxy_config``, started by ``h.proxy``) and SOAP chargers on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gzip
import uuid
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from xml.sax.saxutils import escape

import requests
import zeep
import zeep.exceptions
from aiohttp import web
from lxml import etree
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from zeep.helpers import serialize_object
from zeep.plugins import Plugin
from zeep.transports import Transport
from zeep.wsdl.utils import get_or_create_header

from harness import LOCALHOST, V16, free_port, listener
from ocpp_peers import Csms16

V15 = "ocpp1.5"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
WSA_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP_PATH = "/ocpp/soap"
WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
CSMS_TIME = "2026-03-01T12:00:00.000Z"  # the currentTime every test CSMS answers with
SOAP_TIMEOUT = 15.0  # seconds a SOAP charger waits for the proxy's answer


@dataclass(frozen=True)
class OcppS:
    """An OCPP-S version: its two services' namespaces and official WSDL files (OCPP-S 1.6 §8)."""

    version: str
    cs: str
    cp: str
    cs_wsdl: str
    cp_wsdl: str


OCPP_S = {
    V15: OcppS(V15, "urn://Ocpp/Cs/2012/06/", "urn://Ocpp/Cp/2012/06/",
               "ocpp_centralsystemservice_1.5_final.wsdl", "ocpp_chargepointservice_1.5_final.wsdl"),
    V16: OcppS(V16, "urn://Ocpp/Cs/2015/10/", "urn://Ocpp/Cp/2015/10/",
               "OCPP_CentralSystemService_1.6.wsdl", "OCPP_ChargePointService_1.6.wsdl"),
}


def wsdl_path(filename: str) -> Path:
    path = WSDL_DIR / filename
    assert path.exists(), (
        f"official WSDL {filename} not found in {WSDL_DIR}: the tests read the byte-for-byte copies of the four "
        f"OCPP 1.5/1.6 WSDLs kept there as fixtures")
    return path


# ---------------------------------------------------------------------------
# one official WSDL: operations, XSD validation, building and reading bodies
# ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """zeep's serialized objects as plain data: absent optional fields (None, []) left out."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class ServiceDefinition:
    """One official WSDL: its operations (action -> request/response element), its XSD, zeep's types."""

    def __init__(self, filename: str):
        self.path = wsdl_path(filename)
        self.document = zeep.Client(str(self.path)).wsdl  # shared by every zeep client of this WSDL
        [(self.binding_name, self.binding)] = self.document.bindings.items()
        self.namespace = etree.QName(self.binding_name).namespace
        self.operations: dict[str, tuple[Any, Any]] = {
            name: (op.input.body, op.output.body) for name, op in self.binding._operations.items()}
        self.schema = self._xml_schema()

    def _xml_schema(self) -> etree.XMLSchema:
        types = etree.parse(str(self.path)).find(f"{{{WSDL}}}types/{{{XSD}}}schema")
        # the schema's QName attributes use prefixes declared on wsdl:definitions: declare them on the copy
        root = etree.Element(types.tag, attrib=dict(types.attrib), nsmap={k: v for k, v in types.nsmap.items() if k})
        root.extend(copy.deepcopy(list(types)))
        return etree.XMLSchema(etree.ElementTree(root))

    def request_element(self, action: str):
        return self.operations[action][0]

    def response_element(self, action: str):
        return self.operations[action][1]

    def action_of(self, tag: str) -> str | None:
        """The operation whose request element is ``tag`` (a Clark-notation name)."""
        return next((a for a, (req, _) in self.operations.items() if req.qname == tag), None)

    def errors(self, node: etree._Element) -> list[str]:
        """XSD errors of one element (a message body or a header block); [] when it validates."""
        schema = self.schema
        if schema.validate(etree.ElementTree(copy.deepcopy(node))):
            return []
        return [f"line {e.line}: {e.message}" for e in schema.error_log] or ["invalid"]

    def build(self, element, fields: dict) -> etree._Element:
        """The XML of a message body built by zeep from ``fields``, checked against the XSD."""
        container = etree.Element("container")
        element.render(container, element(**fields))
        node = container[0]
        errors = self.errors(node)
        assert not errors, f"the test built an invalid {etree.QName(node).localname}: {errors} {fields}"
        return node

    def build_request(self, action: str, fields: dict | None = None) -> etree._Element:
        return self.build(self.request_element(action), fields or {})

    def build_response(self, action: str, fields: dict | None = None) -> etree._Element:
        return self.build(self.response_element(action), fields or {})

    def read(self, node: etree._Element) -> dict:
        """A body element as plain data (zeep's reading: ints as int, dateTimes as datetime)."""
        element = self.document.types.get_element(node.tag)
        return plain(serialize_object(element.parse(node, self.document.types), dict)) or {}


@lru_cache(maxsize=None)
def service(filename: str) -> ServiceDefinition:
    return ServiceDefinition(filename)


def central_system(version: str) -> ServiceDefinition:
    return service(OCPP_S[version].cs_wsdl)


def charge_point(version: str) -> ServiceDefinition:
    return service(OCPP_S[version].cp_wsdl)


# ---------------------------------------------------------------------------
# SOAP messages: reading answers, writing raw requests
# ---------------------------------------------------------------------------

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _qname(text: str | None, node: etree._Element) -> etree.QName | None:
    if not text:
        return None
    prefix, sep, local = text.strip().partition(":")
    if not sep:
        return etree.QName(node.nsmap.get(None), prefix) if node.nsmap.get(None) else etree.QName(prefix)
    return etree.QName(node.nsmap.get(prefix), local)


@dataclass
class SoapFault:
    """A SOAP Fault as received: code and subcodes as (namespace, localname) names."""

    code: etree.QName | None
    subcodes: list[etree.QName]
    reason: str


@dataclass
class SoapMessage:
    """A parsed SOAP envelope (1.1 or 1.2)."""

    envelope_ns: str
    headers: list[etree._Element]
    body: etree._Element | None  # the Body's first child
    root: etree._Element

    @classmethod
    def parse(cls, data: bytes) -> "SoapMessage":
        root = etree.fromstring(data, parser=SAFE_PARSER)
        ns = etree.QName(root).namespace
        assert etree.QName(root).localname == "Envelope" and ns in (SOAP11, SOAP12), (
            f"not a SOAP envelope: {data[:300]!r}")
        header = root.find(f"{{{ns}}}Header")
        body = root.find(f"{{{ns}}}Body")
        assert body is not None, f"SOAP envelope without a Body: {data[:300]!r}"
        return cls(ns, list(header) if header is not None else [], body[0] if len(body) else None, root)

    def header(self, localname: str, namespace: str | None = WSA) -> etree._Element | None:
        """A header block by name; ``namespace`` None matches any namespace, the name case-insensitively."""
        for h in self.headers:
            q = etree.QName(h)
            if namespace is None and q.localname.lower() == localname.lower():
                return h
            if q.namespace == namespace and q.localname == localname:
                return h
        return None

    def header_text(self, localname: str, namespace: str | None = WSA) -> str | None:
        h = self.header(localname, namespace)
        return None if h is None else (h.text or "").strip()

    def address(self, localname: str) -> str | None:
        """``wsa:<localname>/wsa:Address`` (From, ReplyTo)."""
        h = self.header(localname)
        if h is None:
            return None
        a = h.find(f"{{{WSA}}}Address")
        return None if a is None else (a.text or "").strip()

    @property
    def fault(self) -> SoapFault | None:
        if self.body is None or etree.QName(self.body).localname != "Fault":
            return None
        f, ns = self.body, self.envelope_ns
        if ns == SOAP12:
            value = f.find(f"{{{ns}}}Code/{{{ns}}}Value")
            subcodes = []
            sub = f.find(f"{{{ns}}}Code/{{{ns}}}Subcode")
            while sub is not None:
                v = sub.find(f"{{{ns}}}Value")
                subcodes.append(_qname(v.text if v is not None else None, v if v is not None else sub))
                sub = sub.find(f"{{{ns}}}Subcode")
            reason = f.findtext(f"{{{ns}}}Reason/{{{ns}}}Text") or ""
            return SoapFault(_qname(value.text if value is not None else None, value if value is not None else f),
                             subcodes, reason)
        code = f.find("faultcode")
        return SoapFault(_qname(code.text if code is not None else None, code if code is not None else f), [],
                         f.findtext("faultstring") or "")


def to_text(node: etree._Element) -> str:
    return etree.tostring(node, encoding="unicode")


def soap_envelope(body: str, headers: str = "", soap_ns: str = SOAP12, declaration: bool = True) -> bytes:
    """An envelope around ``body`` and ``headers`` (XML text), prefix ``s``."""
    head = f"<s:Header>{headers}</s:Header>" if headers else ""
    text = f'<s:Envelope xmlns:s="{soap_ns}">{head}<s:Body>{body}</s:Body></s:Envelope>'
    return (('<?xml version="1.0" encoding="UTF-8"?>' if declaration else "") + text).encode()


def ocpp_headers(version: str, identity: str | None, *, action: str | None, to: str, message_id: str | None = None,
                 from_address: str | None = WSA_ANONYMOUS, identity_name: str = "chargeBoxIdentity",
                 namespace: str | None = None, soap_ns: str = SOAP12) -> str:
    """The header blocks a SOAP charger sends (OCPP-S 1.6 §3), as XML text; ``None`` leaves one out."""
    ns = namespace or OCPP_S[version].cs
    parts = []
    if identity is not None:
        parts.append(f'<cs:{identity_name} xmlns:cs="{escape(ns)}" s:mustUnderstand="{1 if soap_ns == SOAP11 else "true"}">'
                     f"{escape(identity)}</cs:{identity_name}>")
    if action is not None:
        parts.append(f'<a:Action xmlns:a="{WSA}">{escape(action)}</a:Action>')
    parts.append(f'<a:MessageID xmlns:a="{WSA}">{escape(message_id or new_message_id())}</a:MessageID>')
    if from_address is not None:
        parts.append(f'<a:From xmlns:a="{WSA}"><a:Address>{escape(from_address)}</a:Address></a:From>')
    parts.append(f'<a:ReplyTo xmlns:a="{WSA}"><a:Address>{WSA_ANONYMOUS}</a:Address></a:ReplyTo>')
    parts.append(f'<a:To xmlns:a="{WSA}">{escape(to)}</a:To>')
    return "".join(parts)


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def soap12_content_type(action: str | None = None) -> str:
    return "application/soap+xml; charset=utf-8" + (f'; action="{action}"' if action else "")


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":  # HTTP "deflate" is the zlib format (RFC 9110 §8.4.1.2)
        return zlib.compress(data)
    raise ValueError(encoding)


# ---------------------------------------------------------------------------
# the SOAP charger (zeep, CentralSystemService WSDL)
# ---------------------------------------------------------------------------


@dataclass
class Exchange:
    """One HTTP POST of a SOAP charger: what it sent and what came back, raw."""

    request: bytes
    request_headers: dict
    status: int | None = None
    response_headers: dict = field(default_factory=dict)
    response: bytes = b""

    def request_message(self) -> SoapMessage:
        return SoapMessage.parse(self.request)

    def response_message(self) -> SoapMessage:
        return SoapMessage.parse(self.response)


class _RecordingTransport(Transport):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []

    def post_xml(self, address, envelope, headers):
        exchange = Exchange(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), dict(headers))
        self.exchanges.append(exchange)
        response = super().post_xml(address, envelope, headers)
        exchange.status = response.status_code
        exchange.response_headers = {k.lower(): v for k, v in response.headers.items()}
        exchange.response = response.content
        return response


class _FromAndReplyTo(Plugin):
    """WS-Addressing ``From`` and ``ReplyTo`` (OCPP-S 1.6 §3.7, §3.8); zeep itself adds Action, MessageID, To."""

    def __init__(self, from_address: str):
        self.from_address = from_address

    def egress(self, envelope, http_headers, operation, binding_options):
        header = get_or_create_header(envelope)
        sender = etree.SubElement(header, f"{{{WSA}}}From")
        etree.SubElement(sender, f"{{{WSA}}}Address").text = self.from_address
        reply_to = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
        etree.SubElement(reply_to, f"{{{WSA}}}Address").text = WSA_ANONYMOUS
        return envelope, http_headers


class SoapCharger:
    """A SOAP charger of ``version`` (1.5 or 1.6) that POSTs to ``url`` (the proxy's central system URL).

    ``from_address`` is its ChargePointService URL (``wsa:From``); anonymous when it has none. ``session``
    (requests) carries TLS trust, client certificate and Basic auth. zeep is synchronous: calls run in a thread.
    ``plugins`` are further zeep plugins, applied after the one adding ``From``/``ReplyTo`` (``tools/soap_charger.py``
    prints every envelope with one).
    """

    def __init__(self, version: str, identity: str, url: str, *, from_address: str | None = None,
                 session: requests.Session | None = None, timeout: float = SOAP_TIMEOUT,
                 definition: ServiceDefinition | None = None, plugins: list[Plugin] | None = None):
        self.version = version
        self.identity = identity
        self.url = url
        self.from_address = from_address or WSA_ANONYMOUS
        # another WSDL only in the self-tests, which play the proxy toward a ChargePointServer with it
        self.definition = definition or central_system(version)
        self.session = session or requests.Session()
        # the environment's CA bundle (REQUESTS_CA_BUNDLE) and proxies must not override the test's TLS trust and
        # loopback addresses: requests lets them win over a Session's own settings
        self.session.trust_env = False
        self.transport = _RecordingTransport(session=self.session, timeout=timeout, operation_timeout=timeout)
        self.client = zeep.Client(self.definition.document, transport=self.transport,
                                  plugins=[_FromAndReplyTo(self.from_address), *(plugins or [])])
        self.service = self.client.create_service(self.definition.binding_name, url)

    @property
    def exchanges(self) -> list[Exchange]:
        return self.transport.exchanges

    @property
    def last(self) -> Exchange:
        assert self.exchanges, "the SOAP charger has sent nothing"
        return self.exchanges[-1]

    async def call(self, action: str, **fields) -> dict:
        """Send one request; return the answer's body as plain data. A SOAP Fault raises ``zeep.exceptions.Fault``
        (``self.last`` holds it raw). The answer's body must validate against the WSDL's schema."""
        operation = getattr(self.service, action)

        def send():
            return operation(**fields, _soapheaders={"ChargeBoxIdentity": self.identity})

        try:
            await asyncio.wait_for(asyncio.to_thread(send), SOAP_TIMEOUT + 5)
        except asyncio.TimeoutError:
            raise AssertionError(f"no answer to the SOAP {action} within {SOAP_TIMEOUT + 5}s") from None
        except zeep.exceptions.TransportError as exc:
            raise AssertionError(
                f"the SOAP {action} to {self.url} got HTTP {exc.status_code} and no SOAP answer: "
                f"{(exc.content or b'')[:300]!r}") from None
        except requests.RequestException as exc:
            raise AssertionError(f"the SOAP {action} to {self.url} failed: {exc}") from None
        answer = self.last.response_message()
        assert answer.body is not None, f"the answer to {action} has an empty Body"
        errors = self.definition.errors(answer.body)
        assert not errors, (
            f"the answer to {action} does not validate against {self.definition.path.name}: {errors}\n"
            f"{self.last.response.decode(errors='replace')}")
        # zeep unwraps single-field answers into the bare value; the body element itself reads the same every time
        return self.definition.read(answer.body)

    async def aclose(self) -> None:
        self.session.close()


# ---------------------------------------------------------------------------
# the charger's own endpoint (ChargePointService WSDL)
# ---------------------------------------------------------------------------

NO_ANSWER = "no-answer"  # an answer that never comes (the proxy's callTimeout applies)


@dataclass
class FaultAnswer:
    """A SOAP Fault the charger answers with (OCPP-S 1.6 §4)."""

    code: str = "Receiver"
    subcode: str = "InternalError"
    reason: str = "the test charger refuses"


@dataclass
class ReceivedRequest:
    """One request the proxy POSTed to the charger's endpoint."""

    action: str | None
    http_headers: dict[str, str]
    raw: bytes
    message: SoapMessage | None
    payload: dict | None
    problems: list[str]


def default_answers(version: str) -> dict[str, Any]:
    """Per action: the fields of the answer (or a function of the request payload to them)."""
    known = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"}

    def get_configuration(payload):
        wanted = payload.get("key") or list(known)
        return {"configurationKey": [{"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known],
                "unknownKey": [k for k in wanted if k not in known]}

    answers: dict[str, Any] = {
        "RemoteStartTransaction": {"status": "Accepted"},
        "RemoteStopTransaction": {"status": "Accepted"},
        "GetConfiguration": get_configuration,
        "ChangeConfiguration": {"status": "Accepted"},
        "Reset": {"status": "Accepted"},
        "UnlockConnector": {"status": "Accepted" if version == V15 else "Unlocked"},
        "ChangeAvailability": {"status": "Accepted"},
        "ClearCache": {"status": "Accepted"},
        "DataTransfer": {"status": "Accepted", "data": "from-charger"},
        "GetLocalListVersion": {"listVersion": 1},
        "CancelReservation": {"status": "Accepted"},
    }
    if version == V16:
        answers["TriggerMessage"] = {"status": "Accepted"}
    return answers


class ChargePointServer:
    """The SOAP charger's ChargePointService endpoint, on a free loopback port.

    Every request is checked (SOAP 1.2 as the WSDL binds, the WS-Addressing set, ``chargeBoxIdentity``, the
    body against the official ChargePointService WSDL); problems are recorded per request and in
    ``problems``, and such a request is refused with a Sender fault. ``answers`` script the answers per action:
    a dict of fields (or a function of the request payload returning one), a ``FaultAnswer``, or ``NO_ANSWER``.
    ``expected_from`` (if set) is the ``wsa:From`` address the proxy must send. ``port`` is the port to listen on
    (a free one when None). ``on_request`` is called with each ``ReceivedRequest`` once it is checked, before it is
    answered; ``on_answer`` with it and the ``web.Response`` sent (``tools/soap_charger.py`` prints both).

    ``definition``/``answers`` given, it serves another WSDL the same way: the self-tests (``test_soap_peers.py``)
    run a stand-in central system on the CentralSystemService WSDL to check the zeep charger with it.
    """

    PATH = "/ChargePointService"

    def __init__(self, version: str, identity: str, *, ssl_context=None, expected_from: str | None = None,
                 definition: ServiceDefinition | None = None, answers: dict[str, Any] | None = None,
                 port: int | None = None,
                 on_request: Callable[[ReceivedRequest], None] | None = None,
                 on_answer: Callable[[ReceivedRequest, web.Response], None] | None = None):
        self.version = version
        self.identity = identity
        self.definition = definition or charge_point(version)
        self.ssl_context = ssl_context
        self.expected_from = expected_from
        self.answers: dict[str, Any] = default_answers(version) if answers is None else answers
        self.requests: list[ReceivedRequest] = []
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._wanted_port = port
        self.port: int | None = None
        self.on_request = on_request
        self.on_answer = on_answer

    async def start(self) -> "ChargePointServer":
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(self.PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        self.port = self._wanted_port or free_port()
        site = web.TCPSite(self._runner, LOCALHOST, self.port, ssl_context=self.ssl_context)
        await site.start()
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{LOCALHOST}:{self.port}{self.PATH}"

    @property
    def problems(self) -> list[str]:
        return [f"{r.action or '?'}: {p}" for r in self.requests for p in r.problems]

    def assert_no_problems(self) -> None:
        assert not self.problems, "the charger's endpoint got invalid requests:\n  " + "\n  ".join(self.problems)

    def received(self, action: str | None = None) -> list[ReceivedRequest]:
        return [r for r in self.requests if action is None or r.action == action]

    def payloads(self, action: str) -> list[dict]:
        return [r.payload for r in self.received(action)]

    async def wait_for(self, action: str | None = None, count: int = 1, timeout: float = 10.0) -> list[ReceivedRequest]:
        async def enough():
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received(action)) >= count)

        try:
            await asyncio.wait_for(enough(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the charger's endpoint got {len(self.received(action))} {action or 'request'}(s) within {timeout}s, "
                f"expected {count}") from None
        return self.received(action)

    # -- one request -------------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = self._check(raw, headers)
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        if self.on_request is not None:
            self.on_request(received)
        response = await self._answer(received)
        if self.on_answer is not None:
            self.on_answer(received, response)
        return response

    async def _answer(self, received: ReceivedRequest) -> web.Response:
        if received.problems:
            return self._fault(FaultAnswer("Sender", "ProtocolError", "; ".join(received.problems)[:500]), received)
        answer = self.answers.get(received.action)
        if answer is None:
            return self._fault(FaultAnswer("Receiver", "NotSupported", f"no answer scripted for {received.action}"),
                               received)
        if answer == NO_ANSWER:
            await self._release.wait()
            return web.Response(status=503)
        if isinstance(answer, FaultAnswer):
            return self._fault(answer, received)
        fields = answer(received.payload) if callable(answer) else answer
        body = self.definition.build_response(received.action, fields)
        return self._respond(200, to_text(body), received)

    def _check(self, raw: bytes, headers: dict[str, str]) -> ReceivedRequest:
        problems: list[str] = []
        data = raw
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            data = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
        content_type = headers.get("content-type", "")
        if not content_type.lower().startswith("application/soap+xml"):
            problems.append(f"Content-Type {content_type!r}: SOAP 1.2 requires application/soap+xml")
        try:
            message = SoapMessage.parse(data)
        except (etree.XMLSyntaxError, AssertionError) as exc:
            return ReceivedRequest(None, headers, raw, None, None, problems + [f"not a SOAP envelope: {exc}"])
        if message.envelope_ns != SOAP12:
            problems.append(f"envelope namespace {message.envelope_ns}: the WSDL binds SOAP 1.2")
        action_text = message.header_text("Action")
        action = action_text[1:] if action_text and action_text.startswith("/") else None
        if action_text is None:
            problems.append("no wsa:Action header")
        elif action not in self.definition.operations:
            problems.append(f"wsa:Action {action_text!r} is not '/' + an operation of {self.definition.path.name}")
            action = None
        if not message.header_text("MessageID"):
            problems.append("no (or an empty) wsa:MessageID header")
        if message.header("RelatesTo") is not None:
            problems.append("wsa:RelatesTo in a request (OCPP-S 1.6 §3.6: responses only)")
        to = message.header_text("To")
        if to != self.url:
            problems.append(f"wsa:To is {to!r}, expected this endpoint's address {self.url!r}")
        sender = message.address("From")
        if not sender or not sender.startswith(("http://", "https://")):
            problems.append(f"wsa:From/wsa:Address is {sender!r}, expected the proxy's own SOAP URL")
        elif self.expected_from is not None and sender != self.expected_from:
            problems.append(f"wsa:From/wsa:Address is {sender!r}, expected {self.expected_from!r}")
        reply_to = message.address("ReplyTo")
        if reply_to != WSA_ANONYMOUS:
            problems.append(f"wsa:ReplyTo/wsa:Address is {reply_to!r}, expected {WSA_ANONYMOUS}")
        identity = message.header("chargeBoxIdentity", self.definition.namespace)
        if identity is None:
            problems.append(f"no chargeBoxIdentity header in {self.definition.namespace}")
        else:
            block = copy.deepcopy(identity)
            for name in [n for n in block.attrib if etree.QName(n).namespace in (SOAP11, SOAP12)]:
                del block.attrib[name]  # mustUnderstand, role, relay: SOAP's attributes of any header block
            problems += [f"chargeBoxIdentity: {e}" for e in self.definition.errors(block)]
            if (identity.text or "").strip() != self.identity:
                problems.append(f"chargeBoxIdentity is {identity.text!r}, expected {self.identity!r}")
        payload = None
        body = message.body
        if body is None:
            problems.append("empty SOAP Body")
        else:
            body_action = self.definition.action_of(body.tag)
            if body_action is None:
                problems.append(f"body element {body.tag} is no request of {self.definition.path.name}")
            elif action is not None and body_action != action:
                problems.append(f"body element {body.tag} does not belong to wsa:Action {action_text!r}")
            errors = self.definition.errors(body)
            problems += [f"body does not validate against {self.definition.path.name}: {e}" for e in errors]
            if body_action is not None and not errors:
                payload = self.definition.read(body)
            action = action or body_action
        return ReceivedRequest(action, headers, raw, message, payload, problems)

    def _respond(self, status: int, body: str, received: ReceivedRequest) -> web.Response:
        message_id = received.message.header_text("MessageID") if received.message else None
        head = ""
        if received.action:
            head += f'<a:Action xmlns:a="{WSA}">/{received.action}Response</a:Action>'
        head += f'<a:MessageID xmlns:a="{WSA}">{new_message_id()}</a:MessageID>'
        if message_id:
            head += f'<a:RelatesTo xmlns:a="{WSA}">{escape(message_id)}</a:RelatesTo>'
        head += f'<a:To xmlns:a="{WSA}">{WSA_ANONYMOUS}</a:To>'
        return web.Response(status=status, body=soap_envelope(body, head),
                            headers={"Content-Type": soap12_content_type()})

    def _fault(self, fault: FaultAnswer, received: ReceivedRequest) -> web.Response:
        ns = self.definition.namespace
        body = (f'<s:Fault xmlns:o="{ns}"><s:Code><s:Value>s:{fault.code}</s:Value><s:Subcode><s:Value>o:'
                f'{fault.subcode}</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">{escape(fault.reason)}'
                f"</s:Text></s:Reason></s:Fault>")
        return self._respond(400 if fault.code == "Sender" else 500, body, received)

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 10)


# ---------------------------------------------------------------------------
# the 1.6 CSMS (ocpp package, schema validation on)
# ---------------------------------------------------------------------------

TRANSACTION_ID = 4242


class SoapCsms16(Csms16):
    """``ocpp_peers.Csms16`` with fixed, tunable answers (``CSMS_TIME`` as its clock) and DataTransfer."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.boot_interval = 300
        self.authorize_info: dict = {"status": "Accepted"}
        self.transaction_id = TRANSACTION_ID

    @on(Action16.boot_notification)
    def on_boot_notification(self, **_):
        return result16.BootNotification(current_time=CSMS_TIME, interval=self.boot_interval, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_):
        return result16.Heartbeat(current_time=CSMS_TIME)

    @on(Action16.authorize)
    def on_authorize(self, **_):
        return result16.Authorize(id_tag_info=self.authorize_info)

    @on(Action16.start_transaction)
    def on_start_transaction(self, **_):
        return result16.StartTransaction(transaction_id=self.transaction_id, id_tag_info={"status": "Accepted"})

    @on(Action16.data_transfer)
    def on_data_transfer(self, **_):
        return result16.DataTransfer(status="Accepted", data="from-csms")


# ---------------------------------------------------------------------------
# a proxy with a SOAP listener, and SOAP chargers on it
# ---------------------------------------------------------------------------


def soap_listener(port: int | None = None, profile: int | None = 0, *, versions=(V15, V16), path: str = SOAP_PATH,
                  name: str = "soap", **options) -> dict:
    """A ``listeners[]`` entry with ``transport: soap`` (the issue's configuration shape)."""
    return listener(port if port is not None else free_port(), profile, name=name, versions=versions, path=path,
                    transport="soap", **options)


async def soap_proxy(h, csms_version: str = V16, *, listener_options: dict | None = None, chargers=None,
                     soap: dict | None = None, overrides: dict | None = None, upstream_url: str | None = None,
                     translate: bool | None = None, versions=(V15, V16), cp_factory=None):
    """A CSMS of ``csms_version`` (``SoapCsms16`` or ``TranslationCsms201``) and a proxy with one SOAP listener
    in front of it; translating (Rules/ and a state file) unless every charger version is the CSMS's.
    ``upstream_url`` replaces the CSMS (e.g. a port nobody listens on); ``cp_factory`` the CSMS's peer class.
    Returns (proxy, csms or None)."""
    from translation_support import TranslationCsms201

    csms = None
    if upstream_url is None:
        cp_factory = cp_factory or (SoapCsms16 if csms_version == V16 else TranslationCsms201)
        csms = await h.csms(csms_version, cp_factory=cp_factory)
        upstream_url = csms.url
    if translate is None:
        translate = any(v != csms_version for v in versions)
    proxy = await h.proxy(upstream_url, csms_version, overrides,
                          listeners=[soap_listener(versions=versions, **(listener_options or {}))],
                          translate=translate, chargers=chargers, soap=soap)
    return proxy, csms


@dataclass
class SoapStation:
    """A SOAP charger and (unless it has none) its ChargePointService endpoint."""

    charger: SoapCharger
    server: ChargePointServer | None

    async def call(self, action: str, **fields) -> dict:
        return await self.charger.call(action, **fields)


async def soap_station(h, proxy, version: str, identity: str, *, endpoint: bool = True,
                       from_address: str | None = None, session: requests.Session | None = None,
                       server_ssl=None, url: str | None = None) -> SoapStation:
    """A SOAP charger on ``proxy``'s SOAP listener; with ``endpoint`` its ChargePointServer, whose URL is its
    ``wsa:From`` unless ``from_address`` says otherwise (anonymous without an endpoint)."""
    server = None
    if endpoint:
        server = await ChargePointServer(version, identity, ssl_context=server_ssl).start()
        h.servers.append(server)
    if from_address is None:
        from_address = server.url if server else WSA_ANONYMOUS
    charger = SoapCharger(version, identity, url or proxy.soap_url, from_address=from_address, session=session)
    h.track(charger)
    return SoapStation(charger, server)


async def post_soap(proxy_or_port, body: bytes, *, content_type: str = soap12_content_type(), path: str = SOAP_PATH,
                    extra_headers: dict | None = None, timeout: float = 10.0):
    """POST raw bytes to the SOAP listener (``harness.http_request``); returns the ``HttpResponse``."""
    from harness import http_request

    port = proxy_or_port if isinstance(proxy_or_port, int) else next(
        e["port"] for e in proxy_or_port.config["listeners"] if e.get("transport") == "soap")
    headers = {"Content-Type": content_type, **(extra_headers or {})}
    return await http_request(port, path, method="POST", body=body, headers=headers, timeout=timeout)


# ---------------------------------------------------------------------------
# assertions shared by the SOAP tests
# ---------------------------------------------------------------------------


def last_answer(recorder) -> list:
    """The CALLRESULT/CALLERROR a recorded OCPP-J peer received for the last CALL it sent."""
    import json

    sent = [json.loads(m) for m in recorder.sent]
    calls = [f for f in sent if f[0] == 2]
    assert calls, "no CALL was sent"
    answers = [f for f in recorder.received_frames() if f[0] in (3, 4) and f[1] == calls[-1][1]]
    assert len(answers) == 1, f"expected one answer to {calls[-1]}, got {answers}"
    return answers[0]


def assert_fault(message: SoapMessage, code: str, subcode: str | None = None) -> SoapFault:
    """``message`` is a SOAP 1.2 Fault with ``code`` (Sender, Receiver, MustUnderstand ...) and, when given, the
    OCPP subcode ``subcode`` (OCPP-S 1.6 §4). Only the subcode's local name is compared: OCPP-S puts it in the
    Cs namespace ("urn://Ocpp/Cs/2015/10", errata 3.3) and has no word for 1.5; any urn://Ocpp/ namespace passes."""
    fault = message.fault
    assert fault is not None, f"expected a SOAP Fault, got {to_text(message.root)[:600]}"
    assert fault.code is not None and (fault.code.namespace, fault.code.localname) == (SOAP12, code), (
        f"fault code {fault.code}, expected {{{SOAP12}}}{code}: {to_text(message.root)[:600]}")
    assert fault.reason.strip(), "a SOAP Fault needs a Reason text"
    if subcode is not None:
        assert fault.subcodes, f"no OCPP subcode in the fault (expected {subcode}): {to_text(message.root)[:600]}"
        first = fault.subcodes[0]
        assert first.localname == subcode and (first.namespace or "").startswith("urn://Ocpp/"), (
            f"fault subcode {first}, expected {subcode} in an OCPP namespace")
    return fault


__all__ = [name for name in dir() if not name.startswith("_")]
