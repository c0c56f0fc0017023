#!/usr/bin/env python3
"""Seeded fuzz driver that attacks the real ``ocpp-proxy`` binary from the charger side and from the CSMS side.

For each mode and side it starts the proxy on free loopback ports with a generated configuration in a temporary
directory, puts a hostile peer on one side of a proxied link and a receiving peer on the other, and sends seeded
mutations of valid OCPP-J frames (built for every action of both directions from the official JSON schemas of the
installed ``ocpp`` package): type confusion, huge and negative numbers, integral doubles beyond every integer width,
deep nesting, long strings, invalid escapes, lone surrogates, invalid UTF-8, missing and extra fields, wrong array
shapes, broken envelopes, trailing garbage, mutated CALLRESULT/CALLERROR answers to the other peer's CALLs, binary
and fragmented frames. Meanwhile a well-behaved charger (the ``ocpp`` package) on its own identity keeps running a
session through the same proxy against a well-behaved CSMS.

Modes: ``passthrough`` (an ocpp1.6 charger on an ocpp1.6 CSMS, then ocpp2.0.1 on ocpp2.0.1, half of the frames
each) and ``translation`` (an ocpp1.6 charger on an ocpp2.0.1 CSMS through the repository's ``Rules/``, state in
SQLite in the temporary directory). Sides: ``charger`` (the hostile peer is the charger) and ``csms``.

Every one of these is a hard failure, reported with a message saying what was seen:

* the proxy process exits, or ``/readyz`` does not answer 200 (polled every second);
* its RSS (``/proc/PID/status`` VmRSS) grows beyond the start value + ``--rss-growth-mb`` (default 150 MB);
* a peer receives a frame that is not a well-formed OCPP-J frame (UTF-8 text, strict JSON without NaN or lone
  surrogates, a CALL/CALLRESULT/CALLERROR of the right shape); in translation mode also a CALL or CALLRESULT that
  does not validate against the official schema of the receiving side's version, or a CALLERROR code that version
  does not define; in pass-through mode a forwarded CALL or answer that is not byte for byte what its sender sent,
  or an answer the receiving peer never asked for;
* a hostile CALL with a well-formed envelope and a fresh id gets no answer (CALLRESULT or CALLERROR) within
  ``--answer-deadline`` seconds while its link stays open, or gets two;
* in translation mode, a CALL of the receiving peer gets no answer within the deadline while its link stays open;
* any exchange of the well-behaved charger fails, gets a wrong answer, or its link closes; the well-behaved CSMS
  does not receive exactly the CALLs the well-behaved charger sent;
* the proxy does not exit 0 within 15 s of SIGTERM at the end;
* with ``limits.maxPendingCalls`` in the binary: ``/api/chargers`` shows more pending CALLs than that limit.

Outcomes are counted per mode and side (CALLRESULT, CALLERROR by code, link closed by close code, frames the
receiving peer got). When the proxy dies, the last frames sent to it (``--keep-frames``) and its stderr go to
``crash-*.json`` in the artifacts directory; ``--replay FILE`` sends those frames again, one at a time, to a fresh
proxy and names the first one after which the process is gone.

Hostile frames are pipelined, not sent one by one: at most ``--window`` (32) well-formed hostile CALLs await an
answer at a time, twice ``limits.maxPendingCalls`` (16), so the proxy's refusal of the excess is exercised too.
On the debug build with 2 cores a run sends about 1,000-2,000 frames/s (pass-through ~1,600-2,000, translation
~1,100-1,300; Python and the proxy share the cores).

Usage (from the repository root, after ``make venv`` and ``swift build``)::

    .venv/bin/python Tests/Fuzz/fuzz_proxy.py --seed 1 --frames 20000
    .venv/bin/python Tests/Fuzz/fuzz_proxy.py --seed 7 --frames 50000 --modes translation --sides csms --json out.json
    .venv/bin/python Tests/Fuzz/fuzz_proxy.py --replay /tmp/ocpp-fuzz-XXXX/crash-translation-charger-ocpp1.6.json
    .venv/bin/python Tests/Fuzz/fuzz_proxy.py --seed 1 --frames 5000 --modes passthrough --sides csms --trace

``--keep-going N`` restarts the proxy after a crash (or a hang) and goes on with the frames not yet sent, so one
failure does not hide the next; ``--trace`` writes every frame of the fuzzed link, with link openings and closes,
to ``frames.trace`` in the run's directory; ``--log-level`` sets the proxy's ``logging.level`` (default error).

The long run, 10^6 frames per mode and side (4 x 10^6 frames: at the rates above about 45-60 minutes on the debug
build, less with ``--binary .build/release/ocpp-proxy``)::

    .venv/bin/python Tests/Fuzz/fuzz_proxy.py --seed 20260301 --frames 1000000 \\
        --modes passthrough,translation --sides charger,csms --keep-going 20 --json fuzz-long.json

Exit status: 0 when every run passed, 1 when any check failed, 2 for a usage error.
The short CI pass is ``Tests/Interop/test_fuzz.py`` (it imports this module); ``repros.py`` beside this file
reproduces, one by one, what it found.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import copy
import decimal
import json
import logging
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
INTEROP = REPO_ROOT / "Tests" / "Interop"
if str(INTEROP) not in sys.path:
    sys.path.insert(0, str(INTEROP))

import jsonschema  # noqa: E402
import websockets  # noqa: E402
import yaml  # noqa: E402
from ocpp.v16 import call as call16  # noqa: E402
from ocpp.v201 import call as call201  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402

from harness import (  # noqa: E402
    LOCALHOST,
    RULES_DIR,
    ProxyProcess,
    default_config,
    free_port,
    http_request,
    run_cli,
)
from ocpp_peers import Charger16, Charger201, Csms16, Csms201  # noqa: E402
from translation_support import (  # noqa: E402
    CSMS_TIME,
    SCHEMA_DIRS,
    TranslationCharger16,
    TranslationCsms201,
    parse_datetime,
    schema_path,
)

V16 = "ocpp1.6"
# The Swift backtracer (swift-backtrace) stops after frame 0 of the crashed thread on this platform and takes ~2 s;
# with it off the runtime prints "Current stack trace" with offsets, which ``symbolize`` turns into file:line.
PROXY_ENV = {"SWIFT_BACKTRACE": os.environ.get("SWIFT_BACKTRACE", "enable=no")}
V201 = "ocpp2.0.1"
MODES = ("passthrough", "translation")
SIDES = ("charger", "csms")
FUZZ_ID = "FUZZ1"
HONEST_ID = "HONEST1"
TAG = "04A1B2C3D4E5F6"

ERROR_CODES = {
    V16: frozenset({
        "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError", "FormationViolation",
        "PropertyConstraintViolation", "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError",
    }),
    V201: frozenset({
        "FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported", "NotImplemented",
        "NotSupported", "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
        "RpcFrameworkError", "SecurityError", "TypeConstraintViolation",
    }),
}
DEFINITION_FILES = {V16: RULES_DIR / "definitions" / "ocpp1.6.yaml", V201: RULES_DIR / "definitions" / "ocpp2.0.1.yaml"}
SENT_BY = {"charger": "chargingStation", "csms": "csms"}


def other(side: str) -> str:
    return "csms" if side == "charger" else "charger"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# valid seeds: every action of both directions, from the official JSON schemas
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def actions_sent_by(version: str, side: str) -> tuple[str, ...]:
    """The actions whose CALL ``side`` sends in ``version`` (Rules/definitions: ``sentBy`` from the specification)."""
    doc = yaml.safe_load(DEFINITION_FILES[version].read_text())
    wanted = {SENT_BY[side], "both"}
    names = [name for name, msg in doc["messages"].items() if msg.get("sentBy") in wanted]
    return tuple(sorted(n for n in names if schema_path(version, n, "request").exists()))


@lru_cache(maxsize=None)
def schema_actions(version: str) -> frozenset[str]:
    """Every action with an official request schema in ``version``."""
    suffix = ".json" if version == V16 else "Request.json"
    return frozenset(p.name[: -len(suffix)] for p in SCHEMA_DIRS[version].glob("*" + suffix)
                     if not p.name.endswith("Response.json"))


@lru_cache(maxsize=None)
def _schema(version: str, action: str, kind: str) -> dict:
    return json.loads(schema_path(version, action, kind).read_text(encoding="utf-8-sig"))


class SchemaSampler:
    """Valid instances of one JSON schema (draft 4/6 subset the OCPP schemas use), random but seeded."""

    WORDS = string.ascii_letters + string.digits

    def __init__(self, schema: dict):
        self.root = schema

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def sample(self, rng: random.Random, full: bool, node: dict | None = None, depth: int = 0) -> Any:
        node = self._resolve(self.root if node is None else node)
        if "enum" in node:
            return rng.choice(node["enum"])
        kind = node.get("type", "object")
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if kind == "object":
            out = {}
            required = set(node.get("required", []))
            for key, sub in node.get("properties", {}).items():
                if key in required or (full and depth < 6 and key != "customData" and rng.random() < 0.6):
                    out[key] = self.sample(rng, full, sub, depth + 1)
            return out
        if kind == "array":
            low = node.get("minItems", 0)
            high = min(node.get("maxItems", 3), 3)
            count = rng.randint(max(low, 1 if full else low), max(low, high if full else max(low, 1)))
            return [self.sample(rng, full, node.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "string":
            fmt = node.get("format")
            if fmt == "date-time":
                moment = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randint(0, 10**7))
                return moment.isoformat().replace("+00:00", "Z")
            if fmt == "uri":
                return "https://example.com/" + "".join(rng.choice(self.WORDS) for _ in range(6))
            length = rng.randint(1, max(1, min(node.get("maxLength", 20), 20)))
            return "".join(rng.choice(self.WORDS) for _ in range(length))
        if kind == "integer":
            low = node.get("minimum", 0)
            high = node.get("maximum", 100)
            return rng.randint(int(low), int(max(low, min(high, 100))))
        if kind == "number":
            low = node.get("minimum", 0)
            return round(low + rng.uniform(0, 100), 1)
        if kind == "boolean":
            return rng.random() < 0.5
        return None


class Catalog:
    """Schema-valid request and response payloads for every action of one version (checked with jsonschema)."""

    VARIANTS = 6

    def __init__(self, version: str, seed: int = 0):
        self.version = version
        self._cache: dict[tuple[str, str], list[dict]] = {}
        self._seed = seed

    def seeds(self, action: str, kind: str) -> list[dict]:
        key = (action, kind)
        if key not in self._cache:
            rng = random.Random(f"{self._seed}-{self.version}-{action}-{kind}")
            sampler = SchemaSampler(_schema(self.version, action, kind))
            validator = schema_validator(self.version, action, kind)
            found = []
            for i in range(self.VARIANTS * 4):
                payload = sampler.sample(rng, full=i % 2 == 1)
                instance = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
                if not list(validator.iter_errors(instance)):
                    found.append(payload)
                if len(found) >= self.VARIANTS:
                    break
            if not found:
                raise AssertionError(f"could not build a valid {self.version} {action} {kind} from its schema")
            self._cache[key] = found
        return self._cache[key]

    def request(self, action: str, rng: random.Random) -> dict:
        return copy.deepcopy(rng.choice(self.seeds(action, "request")))

    def response(self, action: str, rng: random.Random) -> dict:
        return copy.deepcopy(rng.choice(self.seeds(action, "response")))

    def knows(self, action: Any) -> bool:
        return isinstance(action, str) and action in schema_actions(self.version)

    def check_all(self) -> None:
        """Build every seed now: a schema this sampler cannot satisfy is found before the proxy starts."""
        for side in SIDES:
            for action in actions_sent_by(self.version, side):
                self.seeds(action, "request")
                self.seeds(action, "response")


# ---------------------------------------------------------------------------
# frames: strict checking and encoding with raw tokens
# ---------------------------------------------------------------------------


class FrameProblem(Exception):
    pass


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


MAX_DOUBLE = decimal.Decimal("1.7976931348623157e308")


def _walk(value: Any, depth: int, state: list) -> int:
    """Raises on a lone surrogate (a string that is not Unicode text); returns the nesting depth and notes in
    ``state[0]`` a number no double can hold."""
    if isinstance(value, str):
        value.encode("utf-8")
        return depth
    if isinstance(value, list):
        return max([_walk(v, depth + 1, state) for v in value], default=depth + 1)
    if isinstance(value, dict):
        deepest = depth + 1
        for k, v in value.items():
            k.encode("utf-8")
            deepest = max(deepest, _walk(v, depth + 1, state))
        return deepest
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool) and abs(value) > MAX_DOUBLE:
        state[0] = False
    return depth


def strict_json_ex(data: bytes | str) -> tuple[Any, int, bool]:
    """Parses like an RFC 8259 parser that refuses NaN/Infinity, lone surrogates and invalid UTF-8.

    Returns (value, nesting depth, every number fits a double). Floats are Decimal (so that schema
    ``multipleOf`` is checked exactly)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    value = json.loads(text, parse_float=decimal.Decimal, parse_constant=_reject_constant)
    state = [True]
    depth = _walk(value, 0, state)
    return value, depth, state[0]


def strict_json(data: bytes | str) -> tuple[Any, int]:
    value, depth, _ = strict_json_ex(data)
    return value, depth


def check_frame(data: Any, echoed_ids: bool = False) -> list:
    """The frame as a list if it is a well-formed OCPP-J 1.6/2.0.1 RPC frame; raises FrameProblem otherwise.

    ``echoed_ids``: a CALLERROR may carry a message id over 36 characters (the proxy answers a CALL whose id is too
    long with that same id, as the README's table says); only for frames to the peer that sent such an id."""
    if not isinstance(data, str):
        raise FrameProblem("a binary frame")
    try:
        frame, _ = strict_json(data)
    except RecursionError:
        raise FrameProblem("JSON nested too deep to read") from None
    except (ValueError, UnicodeError) as exc:
        raise FrameProblem(f"not strict JSON ({exc})") from None
    if not isinstance(frame, list) or not frame:
        raise FrameProblem("not a non-empty JSON array")
    kind = frame[0]
    if type(kind) is not int or kind not in (2, 3, 4):
        raise FrameProblem(f"message type {kind!r} is not 2, 3 or 4")
    if len(frame) < 2 or not isinstance(frame[1], str) or (len(frame[1]) > 36 and not (echoed_ids and kind == 4)):
        raise FrameProblem("message id missing, not a string or longer than 36")
    if kind == 2:
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            raise FrameProblem("CALL is not [2, id, action, {payload}]")
    elif kind == 3:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise FrameProblem("CALLRESULT is not [3, id, {payload}]")
    else:
        if len(frame) != 5 or not isinstance(frame[2], str) or not isinstance(frame[3], str) \
                or not isinstance(frame[4], dict):
            raise FrameProblem("CALLERROR is not [4, id, code, description, {details}]")
    return frame


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$")


def rfc3339_date_time(value: Any) -> bool:
    """RFC 3339 §5.6 ``date-time``, as JSON Schema's format means it: "T" and "Z" in either case, second 60
    allowed (a leap second), a real calendar date, offsets within ±23:59."""
    if not isinstance(value, str):
        return True
    m = _RFC3339.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if hour > 23 or minute > 59 or second > 60:
        return False
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return True


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date-time")(rfc3339_date_time)


@lru_cache(maxsize=None)
def schema_validator(version: str, action: str, kind: str):
    """The official schema of ``action`` (floats as Decimal, so 1.6's ``multipleOf 0.1`` is exact)."""
    schema = json.loads(schema_path(version, action, kind).read_text(encoding="utf-8-sig"),
                        parse_float=decimal.Decimal)
    return jsonschema.validators.validator_for(schema)(schema, format_checker=FORMAT_CHECKER)


def schema_problems(version: str, action: str, kind: str, payload: dict) -> list[str]:
    if action not in schema_actions(version):
        return [f"{version} has no {action} {kind} schema"]
    validator = schema_validator(version, action, kind)
    try:
        return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(payload)]
    except decimal.InvalidOperation:
        # multipleOf on a number too large for exact Decimal division (1e300 in a 1.6 limit): the schema cannot be
        # decided here; not counted as a problem (the 1.6 multipleOf is a known translation gap of its own issue)
        return []


class Raw:
    """Bytes put into an encoded frame verbatim (hostile numbers, broken escapes, invalid UTF-8, deep nesting)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | str):
        self.data = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)

    def __repr__(self):
        return f"Raw({self.data[:40]!r})"


class Pairs(list):
    """A JSON object written from (key, value) pairs: lets a key appear twice."""


def encode(value: Any, ascii_only: bool = True) -> bytes:
    parts: list[bytes] = []
    _encode(value, parts, ascii_only)
    return b"".join(parts)


def _encode(value: Any, out: list[bytes], ascii_only: bool) -> None:
    if isinstance(value, Raw):
        out.append(value.data)
    elif isinstance(value, (Pairs, dict)):
        # Pairs keep duplicate keys in their order; a dict has each key once
        out.append(b"{")
        for i, (k, v) in enumerate(value.items() if isinstance(value, dict) else value):
            if i:
                out.append(b",")
            out.append(json.dumps(k, ensure_ascii=ascii_only).encode())
            out.append(b":")
            _encode(v, out, ascii_only)
        out.append(b"}")
    elif isinstance(value, list):
        out.append(b"[")
        for i, v in enumerate(value):
            if i:
                out.append(b",")
            _encode(v, out, ascii_only)
        out.append(b"]")
    elif isinstance(value, decimal.Decimal):
        out.append(str(value).encode())
    else:
        out.append(json.dumps(value, ensure_ascii=ascii_only).encode())


# ---------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    "1e300", "-1e300", "9223372036854775808", "-9223372036854775809", "9223372036854775807",
    "-9223372036854775808", "18446744073709551615", "18446744073709551616", "4294967296", "4294967295",
    "-4294967297", "2147483648", "2147483647", "-2147483648", "-2147483649", "1.5", "-1.5", "-0.0", "-0", "0.0",
    "1e-400", "1e308", "1.7976931348623157e308", "5e-324", "1E2", "1e+2", "100.0", "-1", "0",
    "123456789012345678901234567890", "0.1", "2.5e9", "-2.5e9", "3.4028235e38", "1e19", "9007199254740993",
    "2147483647.0", "2147483648.0", "-2147483648.5", "9.223372036854775807e18", "1e-7", "65535", "65536",
]
INVALID_NUMBERS = ["01", "+1", "1.", ".5", "NaN", "Infinity", "-Infinity", "0x10", "1e", "--1", "1e400",
                   "-1e400", "1_000", "1,5", "- 1"]
NUMERIC_STRINGS = ["1e300", "9223372036854775808", "-9223372036854775809", "NaN", "Infinity", "-0", "1e-400",
                   "0x1A", " 12 ", "12abc", "", "1.5", "4294967296", "2147483648", "1e308", "-1e300", "１２",
                   "1e400", "-0.0", "00012", "1.7976931348623157e309"]
BAD_DATETIMES = ["2026-13-45T25:61:61Z", "", "yesterday", "2026-01-01", "1e300", "99999-01-01T00:00:00Z",
                 "-0001-01-01T00:00:00Z", "2026-01-01T00:00:00.123456789123456789Z", "2026-01-01T00:00:00+25:00",
                 "0000-00-00T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00", "9223372036854775808",
                 "2026-01-01T00:00:60Z", "2026-01-01 00:00:00Z", "292277026596-12-04T15:30:08Z"]
TYPE_CONFUSION = ["", "x", True, False, None, [], {}, [1, 2], {"a": 1}, 0, -1, "1", "true", "null",
                  "2026-01-01T00:00:00Z", "Accepted", 3.25, [[]], [{}], {"": None}]
BAD_STRING_TOKENS = ['"\\ud800"', '"\\udc00"', '"\\ud800\\ud800"', '"\\udbff\\u0041"', '"a\\ud800b"',
                     '"\\ud83d\\ude00"', '"\\x41"', '"\\u12"', '"\\u12G4"', '"\\U0041"', '"\\a"', '"\\u0000"',
                     '"a\tb"', '"\x01"', '"\\"', "'single'", '"unterminated', '"\\ud800\\', '"\\uDFFF\\uD800"',
                     '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\x7f"']
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xa0\xa1", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80",
                b"\xf8\x88\x80\x80\x80", b"\xc1\xbf"]
EXTRA_KEYS = ["extra", "customData", "", "a" * 100, "transactionId", "__proto__", "ü", "idTag", "seqNo",
              "$ref", "connectorId", "evseId", "requestId"]
UNICODE_CHUNKS = ["é", "€", "😀", "\u0000", "\u2028", "ﬀ", "\ufeff", "Ω", "\u200b", "𝄞"]
GARBAGE = ["", " ", "[", "]", "[2,", "null", "true", "{}", "[]", '"str"', "42", "[[]]", "[null]", "[2]", "[3]",
           "[4]", "[2,\"x\"]", "[2,\"x\",\"Heartbeat\"]", "\t\n", "[2,\"x\",\"Heartbeat\",{}]]", "{\"a\":}", "[,]",
           "[2,,\"x\"]", "[1e300]", "[9223372036854775808,\"x\",\"Heartbeat\",{}]", "\ufeff[]", "[\"\\ud800\"]"]


def deep_nesting(rng: random.Random) -> Raw:
    depth = rng.choice([10, 64, 120, 126, 127, 128, 129, 200, 500, 1000, 5000, 20000])
    style = rng.randrange(4)
    if style == 0:
        return Raw("[" * depth + "]" * depth)
    if style == 1:
        return Raw('{"a":' * depth + "1" + "}" * depth)
    if style == 2:
        return Raw('[{"a":' * (depth // 2) + "null" + "}]" * (depth // 2))
    return Raw("[" * depth + "]" * (depth - 1))  # unbalanced


def long_string(rng: random.Random, room: int) -> Any:
    length = rng.choice([256, 1024, 8192, 32768, max(16, room)])
    length = max(1, min(length, room))
    style = rng.randrange(4)
    if style == 0:
        return "A" * length
    if style == 1:
        chunk = "".join(rng.choice(UNICODE_CHUNKS[:3] + UNICODE_CHUNKS[5:]) for _ in range(16))
        return Raw(json.dumps((chunk * (length // 64 + 1))[: length // 4], ensure_ascii=False))
    if style == 2:
        return Raw('"' + "\\u00e9" * (length // 6) + '"')
    return Raw('"' + "\\n\\\"\\\\" * (length // 6) + '"')


@dataclass
class Frame:
    """One frame a hostile peer sends, with what it is and whether it must be answered by message id."""

    data: bytes
    text: bool = True  # False: a binary frame
    kind: str = ""
    action: str | None = None
    tracked_id: str | None = None  # a CALL with a well-formed envelope and a fresh id: exactly one answer is due
    fragments: int = 1
    reused_id: str | None = None  # a CALL reusing the id of a pending one: that id may get two answers


def _positions(value: Any, out: list, parent: Any = None, key: Any = None, depth: int = 0) -> list:
    """Every (container, key, value) in a payload, the payload itself as (None, None, payload)."""
    out.append((parent, key, value))
    if depth > 12:
        return out
    if isinstance(value, dict):
        for k, v in list(value.items()):
            _positions(v, out, value, k, depth + 1)
    elif isinstance(value, list) and not isinstance(value, Pairs):  # a Pairs object is mutated no further
        for i, v in enumerate(value):
            _positions(v, out, value, i, depth + 1)
    return out


class Mutator:
    """Seeded mutations of valid frames of one version, for one hostile side."""

    def __init__(self, version: str, side: str, catalog: Catalog, rng: random.Random, max_frame: int):
        self.version = version
        self.side = side
        self.catalog = catalog
        self.rng = rng
        self.max_frame = max_frame
        self.actions = actions_sent_by(version, side)
        self.other_actions = actions_sent_by(version, other(side))
        self.counter = 0
        self.recent_peer_ids: collections.deque[str] = collections.deque(maxlen=64)

    def fresh_id(self) -> str:
        self.counter += 1
        return f"f{self.counter}"

    # -- payload mutations ----------------------------------------------------
    def mutate_payload(self, payload: dict, room: int) -> tuple[Any, list[str]]:
        rng = self.rng
        notes = []
        root: Any = payload
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            positions = _positions(root, [])
            ints = [p for p in positions if isinstance(p[2], int) and not isinstance(p[2], bool)]
            strings = [p for p in positions if isinstance(p[2], str)]
            containers = [p for p in positions if isinstance(p[2], (dict, list)) and not isinstance(p[2], Pairs)]
            op = rng.choices(
                ["int", "number", "confuse", "string", "datetime", "escape", "utf8", "long", "delete", "extra",
                 "array", "deep", "duplicate", "json-in-string", "unicode"],
                weights=[22, 8, 12, 9, 4, 5, 2, 2, 9, 7, 7, 3, 3, 3, 3])[0]
            if op == "int" and ints:
                target = rng.choice(ints)
                value: Any = Raw(rng.choice(HOSTILE_NUMBERS if rng.random() < 0.85 else INVALID_NUMBERS))
            elif op == "number":
                target = rng.choice(positions)
                value = Raw(rng.choice(HOSTILE_NUMBERS if rng.random() < 0.8 else INVALID_NUMBERS))
            elif op == "string" and strings:
                target = rng.choice(strings)
                value = rng.choice(NUMERIC_STRINGS + [target[2].upper(), target[2].lower(), target[2] + "x",
                                                      target[2][::-1], "Ünknown"])
            elif op == "datetime":
                target = rng.choice(strings or positions)
                value = rng.choice(BAD_DATETIMES)
            elif op == "escape":
                target = rng.choice(strings or positions)
                value = Raw(rng.choice(BAD_STRING_TOKENS))
            elif op == "utf8":
                target = rng.choice(strings or positions)
                value = Raw(b'"a' + rng.choice(INVALID_UTF8) + b'b"')
            elif op == "long":
                target = rng.choice(strings or positions)
                value = long_string(rng, room)
            elif op == "delete" and containers:
                parent_key_value = rng.choice(containers)
                container = parent_key_value[2]
                if isinstance(container, dict) and container:
                    del container[rng.choice(list(container))]
                    notes.append("delete")
                    continue
                if isinstance(container, list) and container:
                    container.pop(rng.randrange(len(container)))
                    notes.append("delete")
                    continue
                target, value = rng.choice(positions), None
            elif op == "extra":
                dicts = [p for p in containers if isinstance(p[2], dict)]
                if dicts:
                    rng.choice(dicts)[2][rng.choice(EXTRA_KEYS)] = copy.deepcopy(rng.choice(
                        TYPE_CONFUSION + [Raw(rng.choice(HOSTILE_NUMBERS))]))
                    notes.append("extra")
                    continue
                target, value = rng.choice(positions), {"extra": 1}
            elif op == "array":
                target = rng.choice(positions)
                old = target[2]
                if isinstance(old, Pairs):
                    value = rng.choice([[old], [old, old]])
                elif isinstance(old, list):
                    value = rng.choice([{}, [], [None], [old], "[]", [1, "a", None],
                                        (old * 200)[:200] if old else [0] * 200])
                elif isinstance(old, dict):
                    value = rng.choice([[old], [], [old, old], [[old]]])
                else:
                    value = rng.choice([[old], [[old]], [old] * 50])
            elif op == "deep":
                target = rng.choice(positions)
                value = deep_nesting(rng)
            elif op == "duplicate":
                dicts = [p for p in containers if isinstance(p[2], dict) and p[2]]
                if dicts:
                    parent, key, d = rng.choice(dicts)
                    k = rng.choice(list(d))
                    pairs = Pairs(list(d.items()) + [(k, copy.deepcopy(rng.choice(TYPE_CONFUSION + [Raw("1e300")])))])
                    if parent is None:
                        root = pairs
                    else:
                        parent[key] = pairs
                    notes.append("duplicate")
                    continue
                target, value = rng.choice(positions), None
            elif op == "json-in-string":
                target = rng.choice(strings or positions)
                depth = rng.choice([5, 127, 129, 1000, 5000])
                value = rng.choice([
                    "[" * depth + "]" * depth,
                    json.dumps({"signedMeterData": "1e300", "signingMethod": 9223372036854775808}),
                    '{"signedMeterData":' + "[" * depth + "]" * depth + "}",
                    "1e300", "{", '{"a":1e400}', '"\\ud800"',
                ])
            elif op == "unicode":
                target = rng.choice(strings or positions)
                value = "".join(rng.choice(UNICODE_CHUNKS) for _ in range(rng.randint(1, 40)))
            else:
                target = rng.choice(positions)
                value = copy.deepcopy(rng.choice(TYPE_CONFUSION))
            parent, key, _ = target
            if parent is None:
                root = value if value is not None else {}
            else:
                parent[key] = value
            notes.append(op)
        return root, notes

    # -- whole frames ----------------------------------------------------------
    def _finish(self, value: Any, kind: str, action: str | None = None, ascii_only: bool = True,
                pending: set | frozenset = frozenset()) -> Frame:
        data = encode(value, ascii_only)
        frame = Frame(data=data, kind=kind, action=action)
        frame.tracked_id = tracked_call_id(data, pending)
        return frame

    def call(self, pending: set) -> Frame:
        """A spontaneous hostile frame (not an answer to a CALL of the other side)."""
        rng = self.rng
        roll = rng.random()
        action = rng.choice(self.actions)
        payload = self.catalog.request(action, rng)
        mid = self.fresh_id()
        room = self.max_frame - 200
        if roll < 0.0007:
            return Frame(data=encode([2, mid, action, payload]), text=False, kind="binary", action=action)
        if roll < 0.0010:
            big = "B" * (self.max_frame + 16)
            return Frame(data=encode([2, mid, "DataTransfer", {"vendorId": "x", "data": big}]), kind="oversize")
        if roll < 0.09:
            return self._finish([2, mid, action, payload], "valid", action, pending=pending)
        if roll < 0.62:
            mutated, notes = self.mutate_payload(payload, room)
            return self._finish([2, mid, action, mutated], "payload:" + "+".join(notes), action,
                                ascii_only=rng.random() < 0.7, pending=pending)
        if roll < 0.77:
            return self.envelope(mid, action, payload, pending)
        if roll < 0.87:
            return self.unsolicited_answer()
        if roll < 0.94:
            return self.garbage(mid, action, payload)
        if roll < 0.97:
            frame = self._finish([2, mid, action, payload], "fragmented", action, pending=pending)
            frame.fragments = rng.randint(2, 5)
            return frame
        # invalid UTF-8 somewhere in an otherwise valid frame
        data = encode([2, mid, action, payload])
        cut = rng.randrange(len(data))
        return Frame(data=data[:cut] + rng.choice(INVALID_UTF8) + data[cut:], kind="utf8-frame", action=action)

    def envelope(self, mid: str, action: str, payload: dict, pending: set) -> Frame:
        rng = self.rng
        frame: list[Any] = [2, mid, action, payload]
        op = rng.randrange(13)
        if op == 0:
            frame[0] = Raw(rng.choice(["5", "6", "7", "0", "-1", "1", "2.0", '"2"', "null", "1e300",
                                       "9223372036854775808", "3", "4", "true", "[2]", "2e0", "-0"]))
        elif op == 1:
            frame[1] = rng.choice([17, None, {}, [], "", " ", "L" * 37, "L" * 1000, Raw('"\\u0000"'),
                                   "ü" * 36, "ü" * 37, Raw('"\\ud800"'), "-1", Raw("1e300"), True])
        elif op == 2:
            # reuse the id of a pending CALL (the same draw either way: the sequence must not depend on timing)
            pick = rng.random()
            frame[1] = sorted(pending)[int(pick * len(pending))] if pending else f"f{self.counter - 1}"
            reused = self._finish(frame, "envelope:reused-id", action, pending=pending)
            reused.reused_id, reused.tracked_id = frame[1], None  # its id may be pending at the proxy: never tracked
            return reused
        elif op == 3:
            frame[2] = rng.choice(["FooBar", "", action.lower(), action.upper(), "A" * 1000, 42, None,
                                   rng.choice(self.other_actions), "TransactionEvent", "StartTransaction",
                                   "Heartbeat ", "\u0000", Raw('"\\ud800"'), ["Heartbeat"]])
        elif op == 4:
            frame = frame[: rng.randint(0, 3)]
        elif op == 5:
            frame = frame + rng.choice([[{}], [{}, {}], [None], ["extra"]])
        elif op == 6:
            frame[3] = rng.choice([[], "{}", None, 42, Raw("1e300"), [payload], True])
        elif op == 7:
            return Frame(data=encode(frame) + rng.choice([b" x", b"]", b",", b"\x00", b"[]", b"{}", b" 1",
                                                           b"\n\n", b"  "]), kind="envelope:trailing",
                         action=action)
        elif op == 8:
            return Frame(data=rng.choice([b"x", b" ", b"\xef\xbb\xbf", b",", b"\n"]) + encode(frame),
                         kind="envelope:leading", action=action)
        elif op == 9:
            value = rng.choice([{"0": 2, "1": mid, "2": action, "3": payload}, mid, 2, None, True])
            return self._finish(value, "envelope:not-array", action)
        elif op == 10:
            # a CALL shaped as an answer, or an answer shaped as a CALL
            frame = rng.choice([[3, mid, payload], [4, mid, "GenericError", "x", {}], [3, mid, action, payload],
                                [4, mid, "GenericError", {}], [2, mid, payload]])
        elif op == 11:
            data = encode(frame)
            return Frame(data=data + data, kind="envelope:twice", action=action)
        else:
            data = encode(frame)
            return Frame(data=data[: rng.randrange(len(data))], kind="envelope:truncated", action=action)
        return self._finish(frame, f"envelope:{op}", action, pending=pending)

    def unsolicited_answer(self) -> Frame:
        rng = self.rng
        ids = list(self.recent_peer_ids)
        use_peer_id, pick = rng.random() < 0.5, rng.random()  # drawn either way: see envelope()
        mid = rng.choice([self.fresh_id(), "-1", "", "x" * 36, "r0"])
        if use_peer_id and ids:
            mid = ids[int(pick * len(ids))]
        action = rng.choice(self.other_actions)
        if rng.random() < 0.6:
            payload, _ = self.mutate_payload(self.catalog.response(action, rng), self.max_frame - 200)
            return self._finish([3, mid, payload], "answer:unsolicited-result")
        return self._finish([4, mid, rng.choice(sorted(ERROR_CODES[self.version]) + ["Foo", ""]),
                             rng.choice(["", "x", "y" * 300]), rng.choice([{}, {"a": 1}])],
                            "answer:unsolicited-error")

    def garbage(self, mid: str, action: str, payload: dict) -> Frame:
        rng = self.rng
        roll = rng.randrange(4)
        if roll == 0:
            return Frame(data=rng.choice(GARBAGE).encode(), kind="garbage:token")
        if roll == 1:
            return Frame(data=bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))), kind="garbage:bytes")
        if roll == 2:
            return Frame(data=deep_nesting(rng).data, kind="garbage:deep")
        return self._finish([2, mid, action, deep_nesting(rng)], "garbage:deep-payload", action)

    # -- answers to the other side's CALLs -----------------------------------------
    def answers(self, call: list, rng: random.Random) -> list[Frame]:
        """What the hostile peer sends back for a CALL it received: mostly mutated answers, sometimes two."""
        mid, action = call[1], call[2]
        self.recent_peer_ids.append(mid)
        roll = rng.random()
        known = self.catalog.knows(action)
        if roll < 0.12 and known:
            return [Frame(data=encode([3, mid, self.catalog.response(action, rng)]), kind="answer:valid")]
        if roll < 0.70 and known:
            payload, notes = self.mutate_payload(self.catalog.response(action, rng), self.max_frame - 200)
            frames = [Frame(data=encode([3, mid, payload], rng.random() < 0.7),
                            kind="answer:result:" + "+".join(notes))]
        elif roll < 0.85:
            code = rng.choice(sorted(ERROR_CODES[self.version]) + ["Foo", "", "formationviolation"])
            description = rng.choice(["", "bad", "d" * 300, Raw('"\\ud800"'), 42, None])
            details = rng.choice([{}, {"a": 1}, [], None, "x", {"deep": deep_nesting(rng)}])
            frames = [Frame(data=encode([4, mid, code, description, details]), kind="answer:error")]
        else:
            shape = rng.choice([[3, mid], [3, mid, {}, {}], [3, mid, []], [4, mid, "GenericError"],
                                [3, Raw("1e300"), {}], [3, mid, None], [2, mid, action, {}],
                                [Raw("3.0"), mid, {}], [3, mid.upper() + "x", {}], [5, mid, {}]])
            frames = [Frame(data=encode(shape), kind="answer:envelope")]
        if rng.random() < 0.05:
            frames.append(Frame(data=encode([3, mid, {}]), kind="answer:duplicate"))
        return frames


def tracked_call_id(data: bytes, pending: set | frozenset) -> str | None:
    """The id of a CALL the proxy must answer by that id: strict JSON well inside the proxy's nesting limit,
    [2, fresh ASCII id of 1..36, action, {payload}], no number a double cannot hold."""
    try:
        value, depth, finite = strict_json_ex(data)
    except (ValueError, UnicodeError, RecursionError):
        return None
    if depth > 100 or not finite or not isinstance(value, list) or len(value) != 4:
        return None
    kind, mid, action, payload = value
    if type(kind) is not int or kind != 2 or not isinstance(mid, str) or not isinstance(action, str):
        return None
    if not isinstance(payload, dict) or not mid.isascii() or not 0 < len(mid) <= 36 or mid in pending:
        return None
    if not (mid[:1] == "f" and mid[1:].isdigit()):
        return None  # only the ids Mutator.fresh_id hands out are known to be unique
    return mid


# ---------------------------------------------------------------------------
# the proxy
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def binary_accepts(binary: str, section: str, key: str, value: Any) -> bool:
    """Whether ``check-config`` of this binary accepts ``section.key: value`` (new keys appear over time)."""
    with tempfile.TemporaryDirectory(prefix="ocpp-fuzz-check-") as tmp:
        base = default_config(free_port(), free_port(), "ws://127.0.0.1:9/ocpp", V16)
        path = Path(tmp) / "proxy.yaml"
        path.write_text(yaml.safe_dump(base))
        plain = run_cli(Path(binary), "check-config", "--config", str(path))
        if plain.returncode != 0:
            raise RuntimeError(f"check-config refuses the base configuration:\n{plain.stdout}{plain.stderr}")
        base.setdefault(section, {})[key] = value
        path.write_text(yaml.safe_dump(base))
        return run_cli(Path(binary), "check-config", "--config", str(path)).returncode == 0


_TRACE_LINE = re.compile(r"^\s*\d+\s+ocpp-proxy\s+0x[0-9a-fA-F]+\s+<unavailable>\s+\+\s+(\d+)")


def symbolize(stderr: str, binary: Path, limit: int = 14) -> list[str]:
    """The proxy frames of a "Current stack trace" as function and file:line (addr2line; raw offsets without it)."""
    offsets = [int(m.group(1)) for m in map(_TRACE_LINE.match, stderr.splitlines()) if m]
    if not offsets:
        return []
    addr2line = shutil.which("addr2line")
    if addr2line is None:
        return [f"ocpp-proxy + {o}" for o in offsets[:limit]]
    try:
        out = subprocess.run([addr2line, "-e", str(binary), "-f", "-i", "-p", *[hex(o) for o in offsets[:limit]]],
                             capture_output=True, text=True, timeout=60).stdout
        demangler = shutil.which("swift-demangle") or "/opt/swift/usr/bin/swift-demangle"
        if Path(demangler).exists():
            out = subprocess.run([demangler, "--simplified"], input=out, capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return [f"ocpp-proxy + {o}" for o in offsets[:limit]]
    return [line.strip() for line in out.splitlines() if line.strip()]


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def proxy_config(run: "FuzzRun", upstream_url: str) -> dict:
    cfg = default_config(free_port(), free_port(), upstream_url, run.csms_version)
    listener = cfg["listeners"][0]
    listener["versions"] = [V16, V201] if run.mode == "translation" else [run.charger_version]
    cfg["limits"] = {"maxFrameBytes": run.opts.max_frame, "callTimeout": f"{run.opts.call_timeout}s"}
    if run.max_pending is not None:
        cfg["limits"]["maxPendingCalls"] = run.max_pending
    if run.budgets_off:
        for key in ("handshakes", "handshakesPerAddress", "handshakesPerIdentity", "upstreamConnects", "messages"):
            cfg["limits"][key] = "off"
    cfg["logging"] = {"level": run.opts.log_level, "format": "text"}
    if run.mode == "translation":
        cfg["rules"] = str(RULES_DIR)
        cfg["state"] = {"sqlite": str(run.workdir / "state.sqlite")}
    return cfg


# ---------------------------------------------------------------------------
# a connection wrapper for the well-behaved peers: every frame checked on the way in
# ---------------------------------------------------------------------------


class CheckedConnection:
    """What an ``ocpp`` ChargePoint talks through: checks every received frame, counts CALLs both ways."""

    def __init__(self, run: "FuzzRun", connection, version: str, who: str):
        self.run = run
        self.connection = connection
        self.version = version
        self.who = who
        self.calls_sent: collections.Counter = collections.Counter()
        self.calls_received: collections.Counter = collections.Counter()
        self.sent_actions: dict[str, str] = {}
        self.on_call = None  # optional hook(frame)

    async def recv(self):
        message = await self.connection.recv()
        try:
            frame = check_frame(message)
        except FrameProblem as exc:
            self.run.fail(f"the well-behaved {self.who} received a malformed frame ({exc}): {preview(message)}")
            raise
        if frame[0] == 2:
            self.calls_received[frame[2]] += 1
            if self.run.mode == "translation":
                problems = schema_problems(self.version, frame[2], "request", frame[3])
                if problems:
                    self.run.fail(f"the well-behaved {self.who} received a {frame[2]} CALL that breaks the "
                                  f"{self.version} schema: {problems[:3]}: {preview(message)}")
            if self.on_call:
                self.on_call(frame)
        elif frame[0] == 4 and frame[2] not in ERROR_CODES[self.version]:
            self.run.fail(f"the well-behaved {self.who} received CALLERROR code {frame[2]!r} that {self.version} "
                          f"does not define: {preview(message)}")
        return message

    async def send(self, message):
        try:
            frame = json.loads(message)
            if frame[0] == 2:
                self.calls_sent[frame[2]] += 1
        except (ValueError, IndexError, KeyError):
            pass
        self.run.record("honest-" + self.who, message)
        await self.connection.send(message)


def preview(message: Any, limit: int = 300) -> str:
    if isinstance(message, (bytes, bytearray)):
        text = repr(bytes(message[:limit]))
    else:
        text = repr(message[:limit])
    return text + (f"... ({len(message)} bytes)" if len(message) > limit else "")


# ---------------------------------------------------------------------------
# one fuzz run: one proxy, one mode, one side, one version pair
# ---------------------------------------------------------------------------


@dataclass
class Options:
    frames: int = 10000
    window: int = 32
    max_frame: int = 65536
    call_timeout: float = 3.0
    answer_deadline: float = 30.0
    rss_growth_mb: int = 150
    keep_frames: int = 300
    peer_calls_in_flight: int = 2
    log_level: str = "error"
    honest: bool = True
    trace: bool = False


@dataclass
class Tracked:
    mid: str
    sent_at: float
    kind: str
    action: str | None
    data: bytes
    link: int


class Link:
    """The hostile peer's current connection."""

    def __init__(self, ws, number: int):
        self.ws = ws
        self.number = number
        self.closed = asyncio.Event()
        self.answered: collections.OrderedDict[str, None] = collections.OrderedDict()


class FuzzRun:
    def __init__(self, binary: Path, workdir: Path, mode: str, side: str, charger_version: str,
                 csms_version: str, seed: Any, frames: int, opts: Options, artifacts: Path):
        self.binary = binary
        self.workdir = workdir
        self.mode = mode
        self.side = side
        self.charger_version = charger_version
        self.csms_version = csms_version
        self.hostile_version = charger_version if side == "charger" else csms_version
        self.receiving_version = csms_version if side == "charger" else charger_version
        self.frames = frames
        self.opts = opts
        self.artifacts = artifacts
        self.label = f"{mode}/{side}/{charger_version}->{csms_version}"
        self.rng = random.Random(f"{seed}|{mode}|{side}|{charger_version}|{csms_version}")
        self.answer_rng = random.Random(f"{seed}|answers|{mode}|{side}|{charger_version}")
        self.peer_rng = random.Random(f"{seed}|peer|{mode}|{side}|{charger_version}")
        self.hostile_catalog = Catalog(self.hostile_version)
        self.receiving_catalog = Catalog(self.receiving_version)
        self.mutator = Mutator(self.hostile_version, side, self.hostile_catalog, self.rng, opts.max_frame)
        self.max_pending = 16 if binary_accepts(str(binary), "limits", "maxPendingCalls", 16) else None
        # The fuzzing charger reconnects with one identity after every close and floods: the admission budgets and
        # message limits would refuse or slow it.
        self.budgets_off = binary_accepts(str(binary), "limits", "messages", "off")
        self.binary_mtime = binary.stat().st_mtime
        self.attempt_suffix = ""
        self._crash_seen = False
        workdir.mkdir(parents=True, exist_ok=True)
        self.trace = open(workdir / "frames.trace", "w") if opts.trace else None  # noqa: SIM115

        self.failures: list[str] = []
        self.failure_count = 0
        self.stop = asyncio.Event()
        self.crash: dict | None = None
        self.proxy: ProxyProcess | None = None
        self.server = None
        self.tasks: set[asyncio.Task] = set()

        # hostile side
        self.link: Link | None = None
        self.link_ready = asyncio.Event()
        self.links_opened = 0
        self.outstanding: dict[str, Tracked] = {}
        self.window_open = asyncio.Event()
        self.window_open.set()
        self.sent = 0
        self.sent_kinds: collections.Counter = collections.Counter()
        self.outcomes: collections.Counter = collections.Counter()
        self.close_codes: collections.Counter = collections.Counter()
        self.close_examples: dict[str, list] = {}
        self.untracked_answers: collections.Counter = collections.Counter()
        self.answer_kinds: collections.Counter = collections.Counter()
        self.contested: dict[str, int] = {}  # pending ids a later CALL reused: one more answer may come
        self.contested_actions: dict[str, set] = {}  # the actions of the CALLs that used such an id

        # receiving side
        self.received_on_fuzz_link: collections.Counter = collections.Counter()
        self.peer_answer_texts: dict[str, bytes] = {}  # pass-through: what the receiving peer answered, by id
        self.peer_call_texts: dict[str, bytes] = {}  # pass-through: the receiving peer's CALLs, by id
        self.peer_stats: collections.Counter = collections.Counter()
        self.peer_counter = 0
        self.nonstandard_codes_forwarded = 0
        self.unknown_actions_forwarded: collections.Counter = collections.Counter()
        # translated frames that break only 1.6's multipleOf 0.1 on charging limits: a known translation gap with an
        # issue of its own (the definitions do not carry multipleOf yet); counted and shown, not failed
        self.known_gaps: collections.Counter = collections.Counter()

        # honest session
        self.honest_stats: collections.Counter = collections.Counter()
        self.honest_max_latency = 0.0
        self.honest_charger_conn: CheckedConnection | None = None
        self.honest_csms_conn: CheckedConnection | None = None
        self.honest_csms_cp = None
        self.honest_csms_ready = asyncio.Event()
        self.honest_tx_seq: dict[str, int] = {}
        self.honest_link_lost = False

        # monitor
        self.rss_start: int | None = None
        self.rss_max = 0
        self.max_pending_seen = 0
        self.ring: collections.deque = collections.deque(maxlen=opts.keep_frames)
        self.started_at = 0.0
        self.duration = 0.0

    # -- bookkeeping -------------------------------------------------------------
    def fail(self, message: str, fatal: bool = False) -> None:
        self.failure_count += 1
        if len(self.failures) < 25:
            self.failures.append(message)
        if fatal:
            self.stop.set()
            self.link_ready.set()  # wake whatever waits for a link or a window slot: it sees ``stop``
            self.window_open.set()

    def record(self, who: str, data: Any, binary: bool = False, kind: str = "") -> None:
        self.ring.append((time.monotonic() - self.started_at, f"{who}:{kind}" if kind else who, data, binary))
        if self.trace is not None:
            self.trace.write(f"{time.monotonic() - self.started_at:.4f} sent {who} {kind} {preview(data, 200)}\n")

    def traced(self, who: str, data: Any) -> None:
        """A frame a peer received, for ``--trace`` (debugging a hang: who got what, when)."""
        if self.trace is not None:
            self.trace.write(f"{time.monotonic() - self.started_at:.4f} got {who} {preview(data, 200)}\n")

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)  # a long run spawns an answer task per CALL it is sent
        return task

    # -- the whole run -------------------------------------------------------------
    async def execute(self) -> dict:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hostile_catalog.check_all()
        self.receiving_catalog.check_all()
        self.started_at = time.monotonic()
        self.server = await ws_serve(self._csms_handler, LOCALHOST, 0, subprotocols=[self.csms_version],
                                     ping_interval=None, max_size=None, compression=None)
        port = self.server.sockets[0].getsockname()[1]
        self.proxy = ProxyProcess(self.binary, self.workdir, proxy_config(self, f"ws://{LOCALHOST}:{port}/ocpp"),
                                  [], PROXY_ENV)
        self.proxy.start()
        try:
            await self.proxy.wait_ready()
            self._spawn(self._monitor())
            if self.opts.honest:
                await self._start_honest()
            if self.side == "csms":
                self._spawn(self._receiving_charger_loop())
            await self._hostile_link()
            self.rss_start = rss_kb(self.proxy.proc.pid)
            self.rss_max = self.rss_start or 0
            began = time.monotonic()
            await self._send_loop()
            await self._drain()
            self.duration = time.monotonic() - began
            if not self.crash:
                await self._final_checks()
        except _Stopped:
            pass
        except (AssertionError, OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            # the proxy did not come up, or a well-behaved peer could not connect: reported, never swallowed
            self.fail(f"the run could not go on: {type(exc).__name__}: {str(exc)[:2000]}", fatal=True)
        finally:
            self.duration = self.duration or (time.monotonic() - self.started_at)
            await self._teardown()
        return self.summary()

    async def _teardown(self) -> None:
        if self.proxy is not None and self.proxy.proc is not None and not self.crash:
            # after a failure the process may be on its way out (a crash report takes a moment)
            for _ in range(30 if self.failure_count else 1):
                if self.proxy.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            rc = self.proxy.proc.poll()
            if rc is not None and self.proxy.returncode is None:
                await self._crashed(rc)
        self.stop.set()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.link is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.link.ws.close(), 3)
        if self.proxy is not None and self.proxy.returncode is None and self.proxy.alive() and not self.crash:
            try:
                rc = await self.proxy.stop(signal.SIGTERM, timeout=15)
                if rc != 0:
                    self.fail(f"the proxy exited with status {rc} after SIGTERM (expected 0)")
            except AssertionError as exc:
                self.fail(str(exc).split("\n")[0])
        if self.proxy is not None:
            self.proxy.kill()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.server.wait_closed(), 5)
        if self.trace is not None:
            self.trace.close()

    # -- monitor: process alive, /readyz, RSS, pending CALLs ----------------------------
    async def _monitor(self) -> None:
        last_ready = 0.0
        last_pending = 0.0
        limit_kb = None
        while True:
            await asyncio.sleep(0.2)
            rc = self.proxy.proc.poll()
            if rc is not None:
                await self._crashed(rc)
                return
            rss = rss_kb(self.proxy.proc.pid)
            if rss:
                self.rss_max = max(self.rss_max, rss)
                if self.rss_start is not None:
                    limit_kb = self.rss_start + self.opts.rss_growth_mb * 1024
                    if rss > limit_kb:
                        self.fail(f"proxy RSS {rss // 1024} MB exceeds the bound of {limit_kb // 1024} MB "
                                  f"(start {self.rss_start // 1024} MB + {self.opts.rss_growth_mb} MB)", fatal=True)
                        return
            now = time.monotonic()
            if now - last_ready >= 1.0:
                last_ready = now
                try:
                    resp = await http_request(self.proxy.admin_port, "/readyz", timeout=5.0)
                    if resp.status != 200:
                        self.fail(f"/readyz answered {resp.status}", fatal=True)
                        return
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    for _ in range(50):  # a crashing process may still be writing its report
                        if self.proxy.proc.poll() is not None:
                            break
                        await asyncio.sleep(0.1)
                    if self.proxy.proc.poll() is not None:
                        continue  # reported as a crash on the next turn
                    self.fail(f"/readyz did not answer within 5 s ({exc!r})", fatal=True)
                    return
            if self.max_pending is not None and now - last_pending >= 2.0:
                last_pending = now
                with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                    resp = await http_request(self.proxy.admin_port, "/api/chargers", timeout=5.0)
                    for charger in resp.json().get("chargers", []):
                        pending = charger.get("pendingCalls") or {}
                        # Translating, a direction also carries the proxy's own follow-up CALLs for exchanges the
                        # other peer started (each at most one), so its bound is twice the peer's.
                        bound = self.max_pending * (2 if self.mode == "translation" else 1)
                        for direction, count in pending.items():
                            self.max_pending_seen = max(self.max_pending_seen, count)
                            if count > bound:
                                self.fail(f"/api/chargers shows {count} pending CALLs {direction} for "
                                          f"{charger.get('identity')}, above {bound} (limits.maxPendingCalls "
                                          f"{self.max_pending}{' x 2 when translating' if bound > self.max_pending else ''})")

    async def _crashed(self, rc: int) -> None:
        if self._crash_seen:
            return
        self._crash_seen = True
        await asyncio.sleep(0.3)  # let the crash report reach the stderr file
        self.proxy._finish(rc)
        stderr = self.proxy.stderr()
        path = self.artifacts / f"crash-{self.mode}-{self.side}-{self.charger_version}{self.attempt_suffix}.json"
        frames = []
        for t, who, data, binary in self.ring:
            entry: dict[str, Any] = {"t": round(t, 4), "from": who, "binary": binary}
            raw = data if isinstance(data, (bytes, bytearray)) else str(data).encode("utf-8", "surrogatepass")
            try:
                entry["text"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                entry["base64"] = base64.b64encode(raw).decode()
            frames.append(entry)
        path.write_text(json.dumps({
            "mode": self.mode, "side": self.side, "charger_version": self.charger_version,
            "csms_version": self.csms_version, "returncode": rc, "frames": frames,
            "stderr_tail": stderr[-20000:], "config": self.proxy.config,
        }, indent=1))
        path.with_suffix(".stderr").write_text(stderr)
        fatal = next((line for line in stderr.splitlines() if "Fatal error" in line or "fatal error" in line), "")
        trace = symbolize(stderr, self.binary)
        if self.binary.stat().st_mtime != self.binary_mtime:
            trace.insert(0, "(the binary was rebuilt during the run: this trace may name the wrong lines)")
        self.crash = {"returncode": rc, "artifact": str(path), "fatal": fatal, "trace": trace,
                      "stderr_tail": stderr[-4000:],
                      "last_frames": [f.get("text", f.get("base64", ""))[:400] for f in frames[-5:]]}
        self.fail(f"the proxy exited with status {rc} (signal {-rc if rc < 0 else '-'}) after "
                  f"{self.sent} hostile frames; last frames and stderr saved to {path}", fatal=True)

    # -- the CSMS server: one process, a handler per identity ------------------------------
    async def _csms_handler(self, ws) -> None:
        identity = urllib.parse.unquote(ws.request.path.rsplit("/", 1)[-1])
        try:
            if identity == HONEST_ID:
                await self._serve_honest_csms(ws)
            elif identity == FUZZ_ID:
                if self.side == "charger":
                    await ReceivingPeer(self, ws, "csms").serve()
                else:
                    await self._serve_hostile(ws)
            else:
                await ws.close(1008, "unknown identity")
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass

    # -- the hostile peer --------------------------------------------------------------
    async def _hostile_link(self) -> Link:
        if self.link is not None and not self.link.closed.is_set():
            return self.link
        if self.side == "charger":
            last_error = None
            for attempt in range(40):
                if self.stop.is_set():
                    raise _Stopped()
                try:
                    ws = await ws_connect(self.proxy.url(FUZZ_ID), subprotocols=[self.hostile_version],
                                          open_timeout=10, ping_interval=None, max_size=None, compression=None,
                                          close_timeout=2)
                except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError) as exc:
                    last_error = exc
                    await asyncio.sleep(0.1 + 0.05 * attempt)
                    continue
                self._open_link(ws)
                self._spawn(self._hostile_reader(self.link))
                return self.link
            self.fail(f"the hostile charger could not reconnect in 40 attempts ({last_error!r})", fatal=True)
            raise _Stopped()
        # side == csms: the receiving charger reconnects; its new upstream link arrives at _serve_hostile
        try:
            await asyncio.wait_for(self._wait_link(), 20)
        except asyncio.TimeoutError:
            self.fail("no new upstream link for the fuzzed charger within 20 s after its previous link closed "
                      "(was the charger's link closed with it?)", fatal=True)
            raise _Stopped() from None
        return self.link

    async def _wait_link(self) -> None:
        while self.link is None or self.link.closed.is_set():
            if self.stop.is_set():
                raise _Stopped()
            self.link_ready.clear()
            await self.link_ready.wait()
        if self.stop.is_set():
            raise _Stopped()

    def _open_link(self, ws) -> None:
        self.links_opened += 1
        self.link = Link(ws, self.links_opened)
        self.link_ready.set()
        if self.trace is not None:
            self.trace.write(f"{time.monotonic() - self.started_at:.4f} link {self.links_opened} opened\n")

    async def _serve_hostile(self, ws) -> None:
        if self.link is not None and not self.link.closed.is_set():
            self._link_closed(self.link)
        self._open_link(ws)
        await self._hostile_reader(self.link)

    def _link_closed(self, link: Link) -> None:
        if link.closed.is_set():
            return
        link.closed.set()
        if self.trace is not None:
            self.trace.write(f"{time.monotonic() - self.started_at:.4f} link {link.number} closed "
                             f"(code {link.ws.close_code}, outstanding {len(self.outstanding)})\n")
        for mid, tracked in list(self.outstanding.items()):
            if tracked.link == link.number:
                del self.outstanding[mid]
                self.outcomes["closed"] += 1
        self.window_open.set()

    async def _hostile_reader(self, link: Link) -> None:
        try:
            async for message in link.ws:
                self._hostile_received(link, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._link_closed(link)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(link.ws.wait_closed(), 5)
        code = str(link.ws.close_code)
        self.close_codes[code] += 1
        examples = self.close_examples.setdefault(code, [])
        if len(examples) < 3:
            protocol = link.ws.protocol
            last = [(who, preview(data, 160)) for _, who, data, _ in list(self.ring)[-3:]]
            examples.append({"link": link.number, "last_frames_sent": last,
                             "close_received": str(protocol.close_rcvd), "close_sent": str(protocol.close_sent),
                             "received_then_sent": protocol.close_rcvd_then_sent})

    def _hostile_received(self, link: Link, message: Any) -> None:
        self.traced(f"hostile-{self.side}", message)
        try:
            frame = check_frame(message, echoed_ids=True)
        except FrameProblem as exc:
            self.fail(f"the hostile {self.side} received a malformed frame from the proxy ({exc}): "
                      f"{preview(message)}")
            return
        kind, mid = frame[0], frame[1]
        if kind == 2:
            self._check_translated(frame, self.hostile_version, "request", frame[2], message, self.side)
            if self.mode == "passthrough":
                expected = self.peer_call_texts.pop(mid, None)
                if expected is not None and expected != message.encode():
                    self.fail(f"pass-through altered the receiving peer's CALL {mid}: sent {preview(expected)}, "
                              f"the hostile {self.side} got {preview(message)}")
            for answer in self.mutator.answers(frame, self.answer_rng):
                self._spawn(self._send_answer(link, answer))
            return
        tracked = self.outstanding.pop(mid, None)
        contested = mid in self.contested
        if tracked is None:
            if contested:
                self.contested[mid] -= 1
                if not self.contested[mid]:
                    del self.contested[mid]
                if kind == 3:
                    self._check_translated_any(frame, mid, message)
                    self.contested_actions.pop(mid, None)
                self.peer_answer_texts.pop(mid, None)
                self.untracked_answers["second answer to a reused id"] += 1
            elif mid in link.answered:
                self.fail(f"the hostile {self.side}'s CALL {mid} was answered twice on one link: {preview(message)}")
            else:
                self.untracked_answers["CALLRESULT" if kind == 3 else f"CALLERROR:{frame[2]}"] += 1
            return
        link.answered[mid] = None
        if len(link.answered) > 20000:
            link.answered.popitem(last=False)
        if len(self.outstanding) < self.opts.window:
            self.window_open.set()
        if kind == 3:
            self.outcomes["CALLRESULT"] += 1
            if contested:
                self._check_translated_any(frame, mid, message)
            elif tracked.action:
                self._check_translated(frame, self.hostile_version, "response", tracked.action, message,
                                       self.side)
        else:
            self.outcomes[f"CALLERROR:{frame[2]}"] += 1
            if self.mode == "translation" and frame[2] not in ERROR_CODES[self.hostile_version]:
                self.fail(f"the proxy sent the hostile {self.side} CALLERROR code {frame[2]!r}, not a "
                          f"{self.hostile_version} code: {preview(message)}")
        if self.mode == "passthrough" and not contested:
            forwarded = self.peer_answer_texts.pop(mid, None)
            if forwarded is not None and forwarded != message.encode():
                self.fail(f"pass-through altered the answer to CALL {mid}: the receiving peer sent "
                          f"{preview(forwarded)}, the hostile {self.side} got {preview(message)}")
            if forwarded is not None:
                self.outcomes["answered-by-receiving-peer"] += 1

    def _check_translated_any(self, frame: list, mid: str, message: str) -> None:
        """A CALLRESULT for an id two CALLs used: it must be a valid answer to one of them."""
        if self.mode != "translation":
            return
        actions = [a for a in self.contested_actions.get(mid, ()) if isinstance(a, str)]
        if actions and all(schema_problems(self.hostile_version, a, "response", frame[2]) for a in actions):
            self.fail(f"the proxy sent the {self.side} a CALLRESULT for {mid} (used by {sorted(actions)}) that is no "
                      f"valid {self.hostile_version} answer to any of them: {preview(message)}")

    def _check_translated(self, frame: list, version: str, kind: str, action: str, message: str, who: str):
        if self.mode != "translation":
            return
        problems = schema_problems(version, action, kind, frame[3] if kind == "request" else frame[2])
        if problems and all("is not a multiple of 0.1" in p for p in problems):
            self.known_gaps[f"{action}: a 1.6 limit that is no multiple of 0.1"] += 1
            return
        if problems:
            self.fail(f"the proxy sent the {who} a {action} {'CALL' if kind == 'request' else 'CALLRESULT'} that "
                      f"breaks the {version} schema: {problems[:3]}: {preview(message)}")

    async def _send_answer(self, link: Link, frame: Frame) -> None:
        self.answer_kinds[frame.kind.split(":")[1] if ":" in frame.kind else frame.kind] += 1
        self.sent += 1
        self.record(f"hostile-{self.side}-answer", frame.data)
        with contextlib.suppress(websockets.ConnectionClosed):
            await link.ws.send(frame.data, text=True)

    async def _send_loop(self) -> None:
        last_progress = time.monotonic()
        while self.sent < self.frames:
            if self.stop.is_set():
                raise _Stopped()
            frame = self.mutator.call(set(self.outstanding))
            if frame.tracked_id:
                while len(self.outstanding) >= self.opts.window:
                    self.window_open.clear()
                    try:
                        await asyncio.wait_for(self.window_open.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
                    if self.stop.is_set():
                        raise _Stopped()
                    self._check_deadlines()
            link = await self._hostile_link()
            if frame.reused_id is not None:
                # the proxy may answer it, or forward it when the CALL it copies is no longer pending there:
                # either way that id may see one more answer
                self.contested[frame.reused_id] = self.contested.get(frame.reused_id, 0) + 1
                first = self.outstanding.get(frame.reused_id)
                self.contested_actions.setdefault(frame.reused_id, {first.action if first else None}).add(frame.action)
            if frame.tracked_id:
                self.outstanding[frame.tracked_id] = Tracked(frame.tracked_id, time.monotonic(), frame.kind,
                                                             frame.action, frame.data, link.number)
            self.sent += 1
            self.sent_kinds[frame.kind.split(":")[0]] += 1
            self.record(f"hostile-{self.side}@{link.number}", frame.data, not frame.text, frame.kind)
            try:
                if not frame.text:
                    await link.ws.send(frame.data)
                elif frame.fragments > 1:
                    size = len(frame.data) // frame.fragments + 1
                    await link.ws.send([frame.data[i:i + size] for i in range(0, len(frame.data), size)], text=True)
                else:
                    await link.ws.send(frame.data, text=True)
            except websockets.ConnectionClosed:
                self._link_closed(link)
                if self.outstanding.pop(frame.tracked_id or "", None) is not None:
                    self.outcomes["closed"] += 1
            if time.monotonic() - last_progress > 2.0:
                last_progress = time.monotonic()
                self._check_deadlines()
                await asyncio.sleep(0)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        late = [t for t in self.outstanding.values() if now - t.sent_at > self.opts.answer_deadline]
        if late:
            t = min(late, key=lambda x: x.sent_at)
            self.fail(f"{len(late)} hostile CALL(s) without an answer after {self.opts.answer_deadline:.0f} s on an "
                      f"open link; oldest {t.mid} ({t.kind}): {preview(t.data)}", fatal=True)

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.opts.answer_deadline + 2
        while self.outstanding and time.monotonic() < deadline and not self.stop.is_set():
            await asyncio.sleep(0.05)
        if self.stop.is_set():
            raise _Stopped()
        self._check_deadlines()
        if self.stop.is_set():
            raise _Stopped()

    # -- the receiving charger (side == csms) -----------------------------------------------
    async def _receiving_charger_loop(self) -> None:
        version = self.charger_version
        failures = 0
        while not self.stop.is_set():
            try:
                ws = await ws_connect(self.proxy.url(FUZZ_ID), subprotocols=[version], open_timeout=10,
                                      ping_interval=None, max_size=None, compression=None, close_timeout=2)
            except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError) as exc:
                failures += 1
                if failures > 40:
                    self.fail(f"the receiving charger could not reconnect ({exc!r})", fatal=True)
                    return
                await asyncio.sleep(0.1)
                continue
            failures = 0
            with contextlib.suppress(websockets.ConnectionClosed):
                await ReceivingPeer(self, ws, "charger").serve()

    # -- the well-behaved session ------------------------------------------------------
    async def _serve_honest_csms(self, ws) -> None:
        if self.mode == "translation":
            factory = TranslationCsms201
        else:
            factory = Csms16 if self.csms_version == V16 else Csms201
        conn = CheckedConnection(self, ws, self.csms_version, "CSMS")
        if self.mode == "translation":
            conn.on_call = self._honest_transaction_event
        cp = factory(HONEST_ID, conn)
        self.honest_csms_conn, self.honest_csms_cp = conn, cp
        self.honest_csms_ready.set()
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    def _honest_transaction_event(self, frame: list) -> None:
        """seqNo 0, 1, 2 ... per translated transaction, one transactionId from Started to Ended."""
        if frame[2] != "TransactionEvent":
            return
        payload = frame[3]
        tx = payload.get("transactionInfo", {}).get("transactionId")
        seq = payload.get("seqNo")
        expected = 0 if payload.get("eventType") == "Started" else self.honest_tx_seq.get(tx, -1) + 1
        if payload.get("eventType") == "Started" and tx in self.honest_tx_seq:
            self.fail(f"translated TransactionEvent(Started) reuses transactionId {tx}")
        if seq != expected:
            self.fail(f"translated TransactionEvent {payload.get('eventType')} of {tx} has seqNo {seq}, "
                      f"expected {expected}")
        self.honest_tx_seq[tx] = seq if isinstance(seq, int) else expected

    async def _start_honest(self) -> None:
        version = self.charger_version
        if self.mode == "translation":
            factory = TranslationCharger16
        else:
            factory = Charger16 if version == V16 else Charger201
        ws = await ws_connect(self.proxy.url(HONEST_ID), subprotocols=[version], open_timeout=10,
                              ping_interval=None, max_size=None, compression=None)
        conn = CheckedConnection(self, ws, version, "charger")
        cp = factory(HONEST_ID, conn)
        self.honest_charger_conn = conn
        self.honest_ws = ws
        self.honest_cp = cp
        self._spawn(self._run_honest_cp(cp))
        await asyncio.wait_for(self.honest_csms_ready.wait(), 10)
        await self._honest_cycle(0)  # one whole session before the fuzzing starts
        self._spawn(self._honest_loop())
        self._spawn(self._honest_csms_loop())

    async def _run_honest_cp(self, cp) -> None:
        try:
            await cp.start()
        except websockets.ConnectionClosed as exc:
            if not self.stop.is_set():
                self.honest_link_lost = True
                self.fail(f"the well-behaved charger's link closed during the run ({exc})")
        except asyncio.CancelledError:
            raise

    async def _honest_exchange(self, what: str, coro, check) -> Any:
        if self.stop.is_set() or self.honest_link_lost:
            coro.close()  # after a fatal failure or a lost link, no more exchanges (and no cascade of failures)
            return None
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(coro, 15)
        except Exception as exc:  # noqa: BLE001 - every failure of an exchange is reported as such
            self.honest_stats["failed"] += 1
            if isinstance(exc, websockets.ConnectionClosed):
                self.honest_link_lost = True
            self.fail(f"the well-behaved charger's {what} failed: {type(exc).__name__}: {str(exc)[:300]}")
            return None
        latency = time.monotonic() - started
        self.honest_max_latency = max(self.honest_max_latency, latency)
        problem = None
        try:
            problem = check(result)
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self.honest_stats["wrong"] += 1
            self.fail(f"the well-behaved charger's {what} got a wrong answer: {problem}: {result!r}"[:600])
            return None
        self.honest_stats["ok"] += 1
        return result

    async def _honest_cycle(self, n: int) -> None:
        cp = self.honest_cp
        if self.charger_version == V16:
            await self._honest_cycle16(cp, n)
        else:
            await self._honest_cycle201(cp, n)

    def _time_ok(self, value: str) -> str | None:
        when = parse_datetime(value)
        if when is None:
            return f"currentTime {value!r} is not RFC 3339"
        if self.mode == "translation" and when != parse_datetime(CSMS_TIME):
            return f"currentTime {value!r} is not the CSMS's {CSMS_TIME}"
        return None

    async def _honest_cycle16(self, cp, n: int) -> None:
        ok = lambda cond, text: None if cond else text  # noqa: E731
        await self._honest_exchange("BootNotification", cp.call(call16.BootNotification(
            charge_point_vendor="ocpp-proxy-fuzz", charge_point_model="Honest-1"), suppress=False),
            lambda r: ok(r.status == "Accepted" and r.interval == 300, "expected Accepted, interval 300")
            or self._time_ok(r.current_time))
        await self._honest_exchange("Heartbeat", cp.call(call16.Heartbeat(), suppress=False),
                                    lambda r: self._time_ok(r.current_time))
        await self._honest_exchange("Authorize", cp.call(call16.Authorize(id_tag=TAG), suppress=False),
                                    lambda r: ok(r.id_tag_info["status"] == "Accepted", "expected Accepted"))
        start = await self._honest_exchange("StartTransaction", cp.call(call16.StartTransaction(
            connector_id=1, id_tag=TAG, meter_start=1000 + n, timestamp=now_iso()), suppress=False),
            lambda r: ok(r.id_tag_info["status"] == "Accepted" and isinstance(r.transaction_id, int)
                         and not isinstance(r.transaction_id, bool)
                         and (self.mode == "translation" or r.transaction_id == 4242),
                         "expected Accepted and the CSMS's integer transactionId"))
        if start is None:
            return
        tx = start.transaction_id
        await self._honest_exchange("MeterValues", cp.call(call16.MeterValues(
            connector_id=1, transaction_id=tx, meter_value=[{"timestamp": now_iso(), "sampled_value": [
                {"value": str(1500 + n), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"}]}]), suppress=False), lambda r: None)
        await self._honest_exchange("StopTransaction", cp.call(call16.StopTransaction(
            meter_stop=2000 + n, timestamp=now_iso(), transaction_id=tx, id_tag=TAG), suppress=False),
            lambda r: ok(r.id_tag_info and r.id_tag_info["status"] == "Accepted", "expected idTagInfo Accepted"))

    async def _honest_cycle201(self, cp, n: int) -> None:
        ok = lambda cond, text: None if cond else text  # noqa: E731
        token = {"id_token": TAG, "type": "ISO14443"}
        await self._honest_exchange("BootNotification", cp.call(call201.BootNotification(
            charging_station={"model": "Honest-1", "vendor_name": "ocpp-proxy-fuzz"}, reason="PowerUp"),
            suppress=False),
            lambda r: ok(r.status == "Accepted" and r.interval == 300, "expected Accepted, interval 300")
            or self._time_ok(r.current_time))
        await self._honest_exchange("Heartbeat", cp.call(call201.Heartbeat(), suppress=False),
                                    lambda r: self._time_ok(r.current_time))
        await self._honest_exchange("Authorize", cp.call(call201.Authorize(id_token=token), suppress=False),
                                    lambda r: ok(r.id_token_info["status"] == "Accepted", "expected Accepted"))
        tx = f"honest-{n}"
        info = {"transaction_id": tx}
        await self._honest_exchange("TransactionEvent(Started)", cp.call(call201.TransactionEvent(
            event_type="Started", timestamp=now_iso(), trigger_reason="Authorized", seq_no=0,
            transaction_info=info, id_token=token, evse={"id": 1, "connector_id": 1}), suppress=False),
            lambda r: ok(r.id_token_info and r.id_token_info["status"] == "Accepted", "expected Accepted"))
        await self._honest_exchange("TransactionEvent(Updated)", cp.call(call201.TransactionEvent(
            event_type="Updated", timestamp=now_iso(), trigger_reason="MeterValuePeriodic", seq_no=1,
            transaction_info=info, meter_value=[{"timestamp": now_iso(), "sampled_value": [{"value": 1500 + n}]}]),
            suppress=False), lambda r: ok(r.id_token_info is None, "expected no idTokenInfo"))
        await self._honest_exchange("TransactionEvent(Ended)", cp.call(call201.TransactionEvent(
            event_type="Ended", timestamp=now_iso(), trigger_reason="StopAuthorized", seq_no=2,
            transaction_info=info, id_token=token), suppress=False),
            lambda r: ok(r.id_token_info and r.id_token_info["status"] == "Accepted", "expected Accepted"))

    async def _honest_loop(self) -> None:
        n = 1
        while not self.stop.is_set() and not self.honest_link_lost:
            await self._honest_cycle(n)
            self.honest_stats["cycles"] += 1
            n += 1
            await asyncio.sleep(0.05)

    async def _honest_csms_loop(self) -> None:
        """The well-behaved CSMS asks the well-behaved charger for its HeartbeatInterval, every half second."""
        while not self.stop.is_set() and not self.honest_link_lost:
            await asyncio.sleep(0.5)
            cp = self.honest_csms_cp
            if self.csms_version == V16:
                await self._honest_exchange("GetConfiguration (from the CSMS)", cp.call(
                    call16.GetConfiguration(key=["HeartbeatInterval"]), suppress=False),
                    lambda r: None if [k["value"] for k in r.configuration_key] == ["300"]
                    else "expected HeartbeatInterval 300")
            else:
                await self._honest_exchange("GetVariables (from the CSMS)", cp.call(call201.GetVariables(
                    get_variable_data=[{"component": {"name": "OCPPCommCtrlr"},
                                        "variable": {"name": "HeartbeatInterval"}}]), suppress=False),
                    lambda r: None if (r.get_variable_result[0]["attribute_status"] == "Accepted"
                                       and r.get_variable_result[0]["attribute_value"] == "300")
                    else "expected Accepted 300")

    # -- final checks ------------------------------------------------------------------
    async def _final_checks(self) -> None:
        if not self.proxy.alive():
            return
        try:
            resp = await http_request(self.proxy.admin_port, "/readyz", timeout=5.0)
            if resp.status != 200:
                self.fail(f"/readyz answered {resp.status} after the fuzzing")
        except (OSError, asyncio.TimeoutError) as exc:
            self.fail(f"/readyz did not answer after the fuzzing ({exc!r})")
        if self.opts.honest:
            before = self.honest_stats["ok"]
            self.stop_honest_loops()
            await self._honest_cycle(10**6)
            if self.honest_stats["ok"] - before < 4:
                self.fail("the well-behaved charger's session after the fuzzing did not complete")
            await asyncio.sleep(0.2)
            sent = self.honest_charger_conn.calls_sent
            got = self.honest_csms_conn.calls_received
            if self.mode == "passthrough" and sent != got:
                self.fail(f"the well-behaved CSMS received CALLs {dict(got)}, the well-behaved charger sent "
                          f"{dict(sent)}")
            if self.mode == "translation" and sum(sent.values()) != sum(got.values()):
                self.fail(f"the well-behaved CSMS received {sum(got.values())} CALLs ({dict(got)}), the well-behaved "
                          f"charger sent {sum(sent.values())} ({dict(sent)})")
            csms_sent = self.honest_csms_conn.calls_sent
            charger_got = self.honest_charger_conn.calls_received
            if sum(csms_sent.values()) != sum(charger_got.values()):
                self.fail(f"the well-behaved charger received {dict(charger_got)}, the well-behaved CSMS sent "
                          f"{dict(csms_sent)}")
            if self.honest_stats["cycles"] < 1:
                self.fail("the well-behaved charger did not complete a single session cycle while fuzzing ran")

    def stop_honest_loops(self) -> None:
        for task in list(self.tasks):
            name = getattr(task.get_coro(), "__name__", "")
            if name in ("_honest_loop", "_honest_csms_loop"):
                task.cancel()

    # -- summary ---------------------------------------------------------------------
    def summary(self) -> dict:
        forwarded = sum(self.received_on_fuzz_link.values())
        return {
            "mode": self.mode, "side": self.side, "charger_version": self.charger_version,
            "csms_version": self.csms_version, "frames_sent": self.sent,
            "duration_s": round(self.duration, 2),
            "frames_per_s": round(self.sent / self.duration, 1) if self.duration else None,
            "sent_kinds": dict(self.sent_kinds), "answers_sent_to_peer_calls": dict(self.answer_kinds),
            "tracked_call_outcomes": dict(self.outcomes),
            "other_answers_from_proxy": dict(self.untracked_answers),
            "links_closed_by_code": dict(self.close_codes), "links_opened": self.links_opened,
            "link_close_examples": self.close_examples,
            "receiving_peer_got": dict(self.received_on_fuzz_link), "forwarded_total": forwarded,
            "receiving_peer_calls": dict(self.peer_stats),
            "nonstandard_callerror_codes_forwarded": self.nonstandard_codes_forwarded,
            "unknown_actions_forwarded": dict(self.unknown_actions_forwarded.most_common(10)),
            "known_gaps": dict(self.known_gaps),
            "honest": dict(self.honest_stats), "honest_max_latency_ms": round(self.honest_max_latency * 1000, 1),
            "rss_start_mb": round((self.rss_start or 0) / 1024, 1), "rss_max_mb": round(self.rss_max / 1024, 1),
            "rss_bound_mb": round(((self.rss_start or 0) + self.opts.rss_growth_mb * 1024) / 1024, 1),
            "max_pending_calls": self.max_pending, "max_pending_seen": self.max_pending_seen,
            "crashes": 1 if self.crash else 0, "crash": self.crash,
            "failures": self.failures, "failure_count": self.failure_count, "ok": self.failure_count == 0,
            "workdir": str(self.workdir),
        }


class _Stopped(Exception):
    """The run was stopped by a fatal failure (crash, RSS, /readyz, hang)."""


class ReceivingPeer:
    """The well-behaved peer on the other end of the fuzzed link: checks everything, answers every CALL validly,
    and sends valid CALLs of its own for the hostile peer to answer."""

    def __init__(self, run: FuzzRun, ws, role: str):
        self.run = run
        self.ws = ws
        self.role = role  # "csms" or "charger"
        self.version = run.receiving_version
        self.catalog = run.receiving_catalog
        self.pending: dict[str, tuple[str, float]] = {}
        self.given_up: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.slot = asyncio.Semaphore(run.opts.peer_calls_in_flight)

    async def serve(self) -> None:
        caller = asyncio.create_task(self._caller())
        try:
            async for message in self.ws:
                try:
                    self._received(message)
                except Exception as exc:  # a bug of this harness, reported as such; the peer goes on
                    self.run.fail(f"harness error in the receiving {self.role} on {preview(message)}: {exc!r}")
        except websockets.ConnectionClosed:
            pass
        finally:
            caller.cancel()
            with contextlib.suppress(BaseException):
                await caller
            code = self.ws.close_code
            if code == 1007 and self.ws.protocol.close_sent and self.ws.protocol.close_sent.code == 1007:
                self.run.fail(f"the receiving {self.role} closed its link with 1007: the proxy sent it invalid UTF-8")

    def _received(self, message: Any) -> None:
        run = self.run
        run.traced(f"receiving-{self.role}", message)
        try:
            frame = check_frame(message)
        except FrameProblem as exc:
            run.fail(f"the receiving {self.role} got a malformed frame from the proxy ({exc}): {preview(message)}")
            return
        kind, mid = frame[0], frame[1]
        run.received_on_fuzz_link[{2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}[kind]] += 1
        if kind == 2 and not self.catalog.knows(frame[2]):
            run.unknown_actions_forwarded[frame[2][:40]] += 1
        if kind == 2:
            run._check_translated(frame, self.version, "request", frame[2], message, f"receiving {self.role}")
            if run.mode == "passthrough" and mid not in run.contested:
                tracked = run.outstanding.get(mid)
                if tracked is not None and tracked.data != message.encode():
                    run.fail(f"pass-through altered hostile CALL {mid}: sent {preview(tracked.data)}, the receiving "
                             f"{self.role} got {preview(message)}")
            answer = self._answer(frame)
            if run.mode == "passthrough":
                run.peer_answer_texts[mid] = answer
                if len(run.peer_answer_texts) > 5000:
                    run.peer_answer_texts.pop(next(iter(run.peer_answer_texts)))
            run.record(f"receiving-{self.role}", answer)
            asyncio.ensure_future(self._send(answer))
            return
        entry = self.pending.pop(mid, None)
        if entry is None:
            if mid in self.given_up:
                run.peer_stats["late answers"] += 1
            else:
                run.fail(f"the receiving {self.role} got an answer to no CALL it sent (id {mid!r}): {preview(message)}")
            return
        action, _ = entry
        self.slot.release()
        if kind == 3:
            run.peer_stats["CALLRESULT"] += 1
            run._check_translated(frame, self.version, "response", action, message, f"receiving {self.role}")
        else:
            run.peer_stats[f"CALLERROR:{frame[2]}"] += 1
            if frame[2] not in ERROR_CODES[self.version]:
                if run.mode == "translation":
                    run.fail(f"the proxy sent the receiving {self.role} CALLERROR code {frame[2]!r}, not a "
                             f"{self.version} code: {preview(message)}")
                else:
                    run.nonstandard_codes_forwarded += 1

    def _answer(self, frame: list) -> bytes:
        rng = self.run.peer_rng
        mid, action = frame[1], frame[2]
        if self.catalog.knows(action) and rng.random() < 0.85:
            return encode([3, mid, self.catalog.response(action, rng)])
        code = "NotImplemented" if not self.catalog.knows(action) else rng.choice(
            ["GenericError", "InternalError", "FormationViolation" if self.version == V16 else "FormatViolation"])
        return encode([4, mid, code, "answered by the fuzz harness", {}])

    async def _send(self, data: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(data, text=True)

    async def _caller(self) -> None:
        """Valid CALLs of the receiving side, a few in flight, for the hostile peer to answer (mutated)."""
        run = self.run
        actions = actions_sent_by(self.version, self.role)
        # translation may hold a CALL while up to callTimeout passes for each CALL queued before it
        deadline = run.opts.answer_deadline + 10 * run.opts.call_timeout
        while True:
            while True:
                try:
                    await asyncio.wait_for(self.slot.acquire(), 0.5)
                    break
                except asyncio.TimeoutError:
                    self._expire(deadline)
            await asyncio.sleep(0.01)
            self._expire(deadline)
            run.peer_counter += 1
            mid = f"r{run.peer_counter}"
            action = run.peer_rng.choice(actions)
            data = encode([2, mid, action, self.catalog.request(action, run.peer_rng)])
            self.pending[mid] = (action, time.monotonic())
            if run.mode == "passthrough":
                run.peer_call_texts[mid] = data
                if len(run.peer_call_texts) > 5000:
                    run.peer_call_texts.pop(next(iter(run.peer_call_texts)))
            run.peer_stats["sent"] += 1
            run.record(f"receiving-{self.role}", data)
            await self.ws.send(data, text=True)

    def _expire(self, deadline: float) -> None:
        now = time.monotonic()
        for mid, (action, sent_at) in list(self.pending.items()):
            # pass-through keeps no timer of its own: a CALL whose answer the proxy dropped stays unanswered
            limit = deadline if self.run.mode == "translation" else self.run.opts.call_timeout + 2
            if now - sent_at > limit:
                del self.pending[mid]
                self.given_up[mid] = None
                if len(self.given_up) > 5000:
                    self.given_up.popitem(last=False)
                self.slot.release()
                if self.run.mode == "translation":
                    self.run.fail(f"the receiving {self.role}'s {action} CALL {mid} got no answer within "
                                  f"{deadline:.0f} s (translation answers every CALL, with InternalError after "
                                  f"limits.callTimeout)")
                else:
                    self.run.peer_stats["unanswered (answer dropped by the proxy)"] += 1


# ---------------------------------------------------------------------------
# driving several runs
# ---------------------------------------------------------------------------


def plan(modes: list[str], sides: list[str], frames: int) -> list[tuple[str, str, str, str, int]]:
    """(mode, side, charger version, CSMS version, frames) for each run; pass-through splits its frames over
    ocpp1.6 and ocpp2.0.1."""
    runs = []
    for mode in modes:
        for side in sides:
            if mode == "passthrough":
                runs.append((mode, side, V16, V16, frames - frames // 2))
                runs.append((mode, side, V201, V201, frames // 2))
            else:
                runs.append((mode, side, V16, V201, frames))
    return runs


async def fuzz(binary: Path, artifacts: Path, seed: Any, modes: list[str], sides: list[str], frames: int,
               opts: Options | None = None, log=print, keep_going: int = 0) -> list[dict]:
    """Runs every (mode, side); returns one summary per run (see ``FuzzRun.summary``).

    ``keep_going``: after a crash (or another failure that stops a run: a hang, RSS, /readyz), start a fresh proxy
    (seed ``{seed}.{n}``) for the frames not yet sent, up to that many times per mode and side, so that one
    failure does not hide the next."""
    opts = opts or Options()
    results = []
    for i, (mode, side, cv, sv, n) in enumerate(plan(modes, sides, frames)):
        remaining, attempt = n, 0
        while remaining > 0:
            run_seed = seed if attempt == 0 else f"{seed}.{attempt}"
            workdir = artifacts / f"{i:02d}-{mode}-{side}-{cv}" / (f"attempt{attempt}" if attempt else "")
            run = FuzzRun(binary, workdir, mode, side, cv, sv, run_seed, remaining, opts, artifacts)
            run.attempt_suffix = f"-{attempt}" if attempt else ""
            log(f"==> {run.label}: {remaining} frames (seed {run_seed})")
            summary = await run.execute()
            results.append(summary)
            log(format_summary(summary))
            stopped_early = summary["frames_sent"] < remaining
            remaining -= max(summary["frames_sent"], 1)
            attempt += 1
            if not (summary["crashes"] or stopped_early) or attempt > keep_going:
                break
    return results


def format_summary(s: dict) -> str:
    lines = [
        f"    {s['mode']}/{s['side']} {s['charger_version']} -> {s['csms_version']}: {s['frames_sent']} frames in "
        f"{s['duration_s']} s ({s['frames_per_s']} frames/s), {'OK' if s['ok'] else 'FAILED'}",
        f"    hostile CALLs answered: {s['tracked_call_outcomes']}",
        f"    other answers from the proxy: {s['other_answers_from_proxy']}",
        f"    links closed: {s['links_closed_by_code']} (opened {s['links_opened']})",
        f"    receiving peer got: {s['receiving_peer_got']}; its own CALLs: {s['receiving_peer_calls']}",
        f"    forwarded as they came (pass-through): CALLERROR codes the version lacks "
        f"{s['nonstandard_callerror_codes_forwarded']}, CALLs of actions it lacks {s['unknown_actions_forwarded']}",
        f"    known gaps (translation, not failures): {s['known_gaps'] or 'none'}",
        f"    well-behaved session: {s['honest']} (max latency {s['honest_max_latency_ms']} ms)",
        f"    RSS: start {s['rss_start_mb']} MB, max {s['rss_max_mb']} MB, bound {s['rss_bound_mb']} MB; "
        f"crashes: {s['crashes']}",
    ]
    if s["max_pending_calls"] is not None:
        lines.append(f"    limits.maxPendingCalls {s['max_pending_calls']}, most seen in /api/chargers: "
                     f"{s['max_pending_seen']}")
    if s["crash"]:
        lines.append(f"    CRASH: status {s['crash']['returncode']}, artifact {s['crash']['artifact']}")
        lines.append(f"    {s['crash']['fatal']}")
        lines.extend("      at " + t for t in s["crash"]["trace"][:10])
        lines.append("    last frames sent: " + " | ".join(s["crash"]["last_frames"]))
        if not s["crash"]["trace"]:
            lines.append("    stderr tail:\n" + "\n".join("      " + x for x in s["crash"]["stderr_tail"].splitlines()[-40:]))
    for f in s["failures"]:
        lines.append(f"    FAIL: {f}")
    if s["failure_count"] > len(s["failures"]):
        lines.append(f"    ... {s['failure_count'] - len(s['failures'])} more failure(s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# replay of a crash artifact
# ---------------------------------------------------------------------------


async def replay(binary: Path, artifact: Path, workdir: Path, settle: float = 0.05, log=print) -> dict | None:
    """Sends the hostile frames of a crash artifact one at a time to a fresh proxy of the same mode and side;
    returns the first frame after which the process is gone (with its stderr), or None."""
    doc = json.loads(artifact.read_text())
    mode, side = doc["mode"], doc["side"]
    opts = Options(frames=0, honest=False)
    run = FuzzRun(binary, workdir, mode, side, doc["charger_version"], doc["csms_version"], "replay", 0, opts,
                  workdir)
    run.workdir.mkdir(parents=True, exist_ok=True)
    run.started_at = time.monotonic()
    received_calls: list[str] = []
    run.mutator.answers = lambda call, rng: (received_calls.append(call[1]), [])[1]
    run.server = await ws_serve(run._csms_handler, LOCALHOST, 0, subprotocols=[run.csms_version],
                                ping_interval=None, max_size=None, compression=None)
    port = run.server.sockets[0].getsockname()[1]
    run.proxy = ProxyProcess(binary, workdir, proxy_config(run, f"ws://{LOCALHOST}:{port}/ocpp"), [], PROXY_ENV)
    run.proxy.start()
    found = None
    try:
        await run.proxy.wait_ready()
        if side == "csms":
            run._spawn(run._receiving_charger_loop())
        hostile = [f for f in doc["frames"] if f["from"].startswith("hostile")]
        log(f"replaying {len(hostile)} hostile frames of {artifact} ({mode}/{side})")
        for i, f in enumerate(hostile):
            data = base64.b64decode(f["base64"]) if "base64" in f else f["text"].encode("utf-8", "surrogatepass")
            if f["from"].endswith("-answer") and received_calls:
                # answers name the proxy's message ids, which differ in this run: answer its latest CALL instead
                with contextlib.suppress(ValueError, IndexError, TypeError):
                    value = json.loads(data)
                    if isinstance(value, list) and len(value) > 1 and isinstance(value[1], str):
                        value[1] = received_calls[-1]
                        data = json.dumps(value).encode()
            link = await run._hostile_link()
            with contextlib.suppress(websockets.ConnectionClosed):
                await (link.ws.send(data) if f["binary"] else link.ws.send(data, text=True))
            await asyncio.sleep(settle)
            if run.proxy.proc.poll() is not None:
                await asyncio.sleep(0.3)
                found = {"index": i, "frame": data.decode("utf-8", "backslashreplace"),
                         "returncode": run.proxy.proc.returncode, "stderr_tail": run.proxy.stderr()[-6000:]}
                break
    finally:
        run.stop.set()
        for task in list(run.tasks):
            task.cancel()
        run.proxy.kill()
        run.server.close()
    return found


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default="1", help="seed of every random choice (default 1)")
    parser.add_argument("--frames", type=int, default=10000, help="hostile frames per mode and side (default 10000)")
    parser.add_argument("--modes", default="passthrough,translation")
    parser.add_argument("--sides", default="charger,csms")
    parser.add_argument("--binary", default=os.environ.get("OCPP_PROXY_BIN", str(REPO_ROOT / ".build/debug/ocpp-proxy")))
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON to FILE ('-': stdout)")
    parser.add_argument("--artifacts", metavar="DIR", help="where configs, proxy logs and crash files go "
                        "(default: a new temporary directory, kept when a run fails)")
    parser.add_argument("--window", type=int, default=Options.window,
                        help="hostile CALLs awaiting an answer at most (default %(default)s)")
    parser.add_argument("--max-frame", type=int, default=Options.max_frame, help="limits.maxFrameBytes")
    parser.add_argument("--call-timeout", type=float, default=Options.call_timeout, help="limits.callTimeout, s")
    parser.add_argument("--answer-deadline", type=float, default=Options.answer_deadline,
                        help="seconds a well-formed hostile CALL may wait for its answer (default %(default)s)")
    parser.add_argument("--rss-growth-mb", type=int, default=Options.rss_growth_mb,
                        help="allowed RSS growth over the start value (default %(default)s MB)")
    parser.add_argument("--keep-frames", type=int, default=Options.keep_frames,
                        help="frames kept for a crash report (default %(default)s)")
    parser.add_argument("--log-level", default=Options.log_level, help="the proxy's logging.level")
    parser.add_argument("--replay", metavar="CRASH_JSON", help="replay a crash artifact frame by frame")
    parser.add_argument("--trace", action="store_true",
                        help="log every frame of the fuzzed link to frames.trace in the run's directory (slow)")
    parser.add_argument("--keep-going", type=int, default=0, metavar="N",
                        help="after a crash or another failure that stops a run, restart the proxy and go on, up to "
                             "N times per mode and side (the run still fails; default 0)")
    args = parser.parse_args(argv)
    # the libraries' own log lines (handler tracebacks of closed links, "unknown unique id") are not findings
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    logging.getLogger("ocpp").setLevel(logging.ERROR)

    binary = Path(args.binary)
    if not binary.exists():
        print(f"error: no proxy binary at {binary} (swift build, or --binary / OCPP_PROXY_BIN)", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    sides = [s for s in args.sides.split(",") if s]
    if any(m not in MODES for m in modes) or any(s not in SIDES for s in sides):
        print(f"error: modes are {MODES}, sides {SIDES}", file=sys.stderr)
        return 2
    artifacts = Path(args.artifacts) if args.artifacts else Path(tempfile.mkdtemp(prefix="ocpp-fuzz-"))
    artifacts.mkdir(parents=True, exist_ok=True)

    if args.replay:
        found = asyncio.run(replay(binary, Path(args.replay), artifacts / "replay"))
        if found is None:
            print("the proxy survived every frame of the replay")
            return 0
        print(f"the proxy exited with status {found['returncode']} after hostile frame #{found['index']}:\n"
              f"{found['frame'][:2000]}\n--- stderr tail ---\n{found['stderr_tail']}")
        return 1

    opts = Options(frames=args.frames, window=args.window, max_frame=args.max_frame, call_timeout=args.call_timeout,
                   answer_deadline=args.answer_deadline, rss_growth_mb=args.rss_growth_mb,
                   keep_frames=args.keep_frames, log_level=args.log_level, trace=args.trace)
    started = time.monotonic()
    results = asyncio.run(fuzz(binary, artifacts, args.seed, modes, sides, args.frames, opts,
                               keep_going=args.keep_going))
    total = time.monotonic() - started
    ok = all(r["ok"] for r in results)
    report = {"seed": args.seed, "binary": str(binary), "frames_per_mode_and_side": args.frames,
              "duration_s": round(total, 1), "ok": ok, "crashes": sum(r["crashes"] for r in results),
              "max_rss_mb": max((r["rss_max_mb"] for r in results), default=0), "artifacts": str(artifacts),
              "runs": results}
    print(f"==> {'OK' if ok else 'FAILED'}: {sum(r['frames_sent'] for r in results)} frames in {total:.1f} s, "
          f"crashes {report['crashes']}, max RSS {report['max_rss_mb']} MB, artifacts in {artifacts}")
    if args.json:
        text = json.dumps(report, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
