"""Shared pieces of the OCPP 1.6 charger -> OCPP 2.0.1 CSMS translation tests.

* ``translating_proxy``: a 2.0.1 CSMS and a proxy translating for 1.6 chargers (``h.pair(..., translate=True)``:
  ``harness.proxy_config`` sets ``rules:`` = the repository's Rules directory, ``state.sqlite`` in the test's
  temporary directory, listener versions ``ocpp1.6`` and ``ocpp2.0.1``);
* real peers on the ``ocpp`` package with schema validation on in both directions: a 1.6 charger
  (``TranslationCharger16``) and a 2.0.1 CSMS (``TranslationCsms201``);
* payload matchers for exact comparisons with a few declared degrees of freedom (``Opt``, ``Instant`` ...);
* the official JSON schemas of the installed ``ocpp`` package as the oracle for translated frames;
* a driver for ``ocpp-proxy translate``.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jsonschema
import ocpp
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from harness import REPO_ROOT, RULES_DIR, V16, V201, run_cli, wait_until

PAIR_FILE_NAME = "ocpp1.6-ocpp2.0.1.yaml"
RESPONSE_TIMEOUT = 10
CSMS_TIME = "2026-03-01T12:00:00.000Z"  # the currentTime the test CSMS answers with

# ---------------------------------------------------------------------------
# the translating proxy (configured and started by the harness)
# ---------------------------------------------------------------------------


async def translating_proxy(h, *, raw_csms: bool = False, listener: dict | None = None, top: dict | None = None):
    """A 2.0.1 CSMS (``TranslationCsms201``, or raw) and a translating proxy in front of it (``h.pair`` with
    ``translate=True``); ``listener`` is merged into the listener, ``top`` into the configuration."""
    return await h.pair(V201, raw=raw_csms, cp_factory=None if raw_csms else TranslationCsms201, translate=True,
                        listener_options=listener, overrides=top)


async def connect_charger16(h, proxy, csms, identity: str):
    """A 1.6 ``ocpp`` charger on the proxy and the 2.0.1 upstream session the proxy opened for it."""
    charger = await h.charger(proxy, identity, V16, cp_factory=TranslationCharger16)
    session = await csms.next_session()
    assert session.identity == identity
    assert session.subprotocol == V201, f"upstream link negotiated {session.subprotocol!r}, expected {V201!r}"
    return charger, session


# ---------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------


def answer_to(recorder, message_id: str) -> list:
    """The one CALLRESULT/CALLERROR ``recorder`` received for its CALL ``message_id``."""
    answers = [f for f in recorder.received_frames() if f[0] in (3, 4) and f[1] == message_id]
    assert len(answers) == 1, f"expected one answer to {message_id!r}, got {answers}"
    return answers[0]


def last_answer(recorder) -> list:
    """The answer to the last CALL sent through ``recorder``."""
    sent = [f for f in recorder.sent_frames() if f[0] == 2]
    assert sent, "no CALL was sent"
    return answer_to(recorder, sent[-1][1])


def result_payload(recorder) -> dict:
    answer = last_answer(recorder)
    assert answer[0] == 3, f"expected a CALLRESULT, got {answer}"
    return answer[2]


def calls(frames: list, action: str | None = None) -> list[dict]:
    """Payloads of the CALL frames (of one action) among recorded frames, in order."""
    return [f[3] for f in frames if f[0] == 2 and (action is None or f[2] == action)]


def call_frames(frames: list, action: str | None = None) -> list[list]:
    return [f for f in frames if f[0] == 2 and (action is None or f[2] == action)]


def call_actions(frames: list) -> list[str]:
    return [f[2] for f in frames if f[0] == 2]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def wait_for_call(recorder, action: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
    """Wait until ``recorder`` received ``count`` CALLs of ``action``; return their payloads."""
    await wait_until(lambda: len(calls(recorder.received_frames(), action)) >= count, timeout,
                     f"{count} {action} CALL(s)", interval=0.02)
    return calls(recorder.received_frames(), action)


# ---------------------------------------------------------------------------
# matchers: exact comparison with declared freedom
# ---------------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_datetime(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if not m:
        return None
    fraction = (m.group(7) or "")[:7]  # '.' + up to 6 digits
    zone = "+00:00" if m.group(8) == "Z" else m.group(8)
    try:
        return datetime.fromisoformat(text[: m.start(7) if m.group(7) else m.start(8)] + fraction + zone)
    except ValueError:
        return None


class Matcher:
    def matches(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Opt:
    """A key that may be absent; when present its value must match ``value``."""

    value: Any


class AnyOf(Matcher):
    def __init__(self, *options):
        self.options = options

    def matches(self, value):
        return any(not match_problems(value, option) for option in self.options)

    def __repr__(self):
        return f"AnyOf{self.options!r}"


class Instant(Matcher):
    """An RFC 3339 date-time denoting the same instant as ``text`` (format may differ: Z, fractions)."""

    def __init__(self, text: str):
        self.when = parse_datetime(text)
        assert self.when is not None, f"bad test timestamp {text!r}"
        self.text = text

    def matches(self, value):
        got = parse_datetime(value)
        return got is not None and abs(got - self.when) < timedelta(milliseconds=1)

    def __repr__(self):
        return f"Instant({self.text!r})"


class Recent(Matcher):
    """An RFC 3339 date-time within ``seconds`` of the wall clock (a timestamp the proxy filled in)."""

    def __init__(self, seconds: float = 120):
        self.seconds = seconds

    def matches(self, value):
        got = parse_datetime(value)
        return got is not None and abs(got - datetime.now(timezone.utc)) < timedelta(seconds=self.seconds)

    def __repr__(self):
        return f"Recent(±{self.seconds}s)"


class _AnyDatetime(Matcher):
    def matches(self, value):
        return parse_datetime(value) is not None

    def __repr__(self):
        return "AnyDatetime"


class _IsInt(Matcher):
    def matches(self, value):
        return isinstance(value, int) and not isinstance(value, bool)

    def __repr__(self):
        return "IsInt"


class _IsUUID(Matcher):
    def matches(self, value):
        if not isinstance(value, str) or len(value) > 36:
            return False
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True

    def __repr__(self):
        return "IsUUID"


class Pred(Matcher):
    def __init__(self, fn: Callable[[Any], bool], description: str):
        self.fn = fn
        self.description = description

    def matches(self, value):
        try:
            return bool(self.fn(value))
        except Exception:
            return False

    def __repr__(self):
        return self.description


ANY_DATETIME = _AnyDatetime()
IS_INT = _IsInt()
IS_UUID = _IsUUID()
ANY = Pred(lambda _: True, "ANY")


def match_problems(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Every difference between ``actual`` and ``expected`` (which may hold matchers), as readable lines."""
    if isinstance(expected, Opt):
        expected = expected.value
    if isinstance(expected, Matcher):
        return [] if expected.matches(actual) else [f"{path}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = []
        for key, want in expected.items():
            if key not in actual:
                if not isinstance(want, Opt):
                    problems.append(f"{path}.{key}: missing (expected {want!r})")
                continue
            problems += match_problems(actual[key], want, f"{path}.{key}")
        for key in actual:
            if key not in expected:
                problems.append(f"{path}.{key}: unexpected field with value {actual[key]!r}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {actual!r}"]
        if len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} element(s), got {len(actual)}: {actual!r}"]
        problems = []
        for i, (a, e) in enumerate(zip(actual, expected)):
            problems += match_problems(a, e, f"{path}[{i}]")
        return problems
    if isinstance(expected, bool) or isinstance(actual, bool):
        ok = isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        ok = isinstance(actual, (int, float)) and actual == expected
    else:
        ok = type(actual) is type(expected) and actual == expected
    return [] if ok else [f"{path}: expected {expected!r}, got {actual!r}"]


def assert_match(actual: Any, expected: Any, what: str = "payload") -> None:
    problems = match_problems(actual, expected)
    assert not problems, f"{what} differs:\n  " + "\n  ".join(problems) + f"\nactual: {json.dumps(actual)}"


# ---------------------------------------------------------------------------
# the official JSON schemas (installed ``ocpp`` package)
# ---------------------------------------------------------------------------

SCHEMA_DIRS = {
    V16: Path(ocpp.__file__).parent / "v16" / "schemas",
    V201: Path(ocpp.__file__).parent / "v201" / "schemas",
}

FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("date-time")
def _is_rfc3339(value) -> bool:
    return not isinstance(value, str) or parse_datetime(value) is not None


def schema_path(version: str, action: str, kind: str) -> Path:
    """``kind`` is "request" or "response"; 1.6 names requests ``<Action>.json``, 2.0.1 ``<Action>Request.json``."""
    if kind == "request":
        name = f"{action}.json" if version == V16 else f"{action}Request.json"
    else:
        name = f"{action}Response.json"
    return SCHEMA_DIRS[version] / name


@lru_cache(maxsize=None)
def schema_validator(version: str, action: str, kind: str):
    path = schema_path(version, action, kind)
    assert path.exists(), f"no official {version} schema for {action} {kind} ({path})"
    # floats as Decimal so that 1.6's multipleOf 0.1 is checked exactly (as the ocpp package does)
    schema = json.loads(path.read_text(encoding="utf-8-sig"), parse_float=decimal.Decimal)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(json.loads(path.read_text(encoding="utf-8-sig")))
    return cls(schema, format_checker=FORMAT_CHECKER)


def schema_errors(version: str, action: str, kind: str, payload: Any) -> list[str]:
    instance = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    validator = schema_validator(version, action, kind)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(instance)]


def assert_schema_valid(version: str, action: str, kind: str, payload: Any, what: str = "") -> None:
    errors = schema_errors(version, action, kind, payload)
    assert not errors, (
        f"{what or action} is not a valid {version} {action} {kind}:\n  " + "\n  ".join(errors)
        + f"\npayload: {json.dumps(payload)}"
    )


def enum_value_sets() -> list[frozenset]:
    """Every enumeration of the official 1.6 and 2.0.1 schemas, as sets of values."""
    found: set[frozenset] = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                found.add(frozenset(node["enum"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for directory in SCHEMA_DIRS.values():
        for path in directory.glob("*.json"):
            walk(json.loads(path.read_text(encoding="utf-8-sig")))
    return sorted(found, key=lambda s: (len(s), sorted(s)))


# ---------------------------------------------------------------------------
# real peers (ocpp package, schema validation on: nothing here passes skip_schema_validation)
# ---------------------------------------------------------------------------


class TranslationCsms201(ChargePoint201):
    """A 2.0.1 CSMS. Tests tune its answers through the attributes before the charger sends."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)
        self.boot_status = "Accepted"
        self.authorize_info: dict = {"status": "Accepted"}
        self.transaction_info: dict = {"status": "Accepted"}  # idTokenInfo when the event has an idToken
        self.data_transfer_error: OCPPError | None = None

    @on(Action201.boot_notification)
    def on_boot_notification(self, charging_station, reason, **_):
        return result201.BootNotification(current_time=CSMS_TIME, interval=300, status=self.boot_status)

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_):
        return result201.Heartbeat(current_time=CSMS_TIME)

    @on(Action201.authorize)
    def on_authorize(self, id_token, **_):
        return result201.Authorize(id_token_info=self.authorize_info)

    @on(Action201.status_notification)
    def on_status_notification(self, **_):
        return result201.StatusNotification()

    @on(Action201.notify_event)
    def on_notify_event(self, **_):
        return result201.NotifyEvent()

    @on(Action201.notify_report)
    def on_notify_report(self, **_):
        return result201.NotifyReport()

    @on(Action201.transaction_event)
    def on_transaction_event(self, event_type, id_token=None, **_):
        if id_token is not None:
            return result201.TransactionEvent(id_token_info=self.transaction_info)
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, **_):
        return result201.MeterValues()

    @on(Action201.data_transfer)
    def on_data_transfer(self, vendor_id, message_id=None, data=None, **_):
        if self.data_transfer_error is not None:
            raise self.data_transfer_error
        return result201.DataTransfer(status="Accepted", data="from-csms")


class RoutesConcurrently:
    """An ``ocpp`` peer that handles each incoming message in a task of its own, as a real peer does (the
    package's ``start`` awaits each handler before it reads the next message). Mix in before the ChargePoint."""

    async def start(self):
        tasks: set[asyncio.Task] = set()
        while True:
            message = await self._connection.recv()
            task = asyncio.create_task(self.route_message(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


class TranslationCharger16(RoutesConcurrently, ChargePoint16):
    """A 1.6 charger that handles every CSMS CALL the translation tests send.

    Incoming frames are routed concurrently (the ``ocpp`` package's own loop handles one CALL at a time,
    which would hide a proxy that sends a second CALL before the first is answered): so
    ``max_open_calls`` really counts CALLs the proxy had outstanding at the same time.
    """

    CONFIGURATION = {  # key: (value, readonly)
        "HeartbeatInterval": ("300", False),
        "MeterValueSampleInterval": ("60", False),
        "LocalPreAuthorize": ("false", False),
        "VendorSpecificKey": ("vendor-value", True),
    }

    def __init__(self, identity, connection):
        super().__init__(identity, connection, response_timeout=RESPONSE_TIMEOUT)
        self.open_calls = 0
        self.max_open_calls = 0
        self.change_answers: dict[str, str] = {}
        self.clear_cache_error: OCPPError | None = None

    async def _hold(self):
        """Count an open CALL and keep it open briefly, so that an overlapping CALL would be seen."""
        self.open_calls += 1
        self.max_open_calls = max(self.max_open_calls, self.open_calls)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.open_calls -= 1

    @on(Action16.remote_start_transaction)
    async def on_remote_start_transaction(self, id_tag, **_):
        await self._hold()
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop_transaction(self, transaction_id, **_):
        await self._hold()
        return result16.RemoteStopTransaction(status="Accepted")

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key=None, **_):
        await self._hold()
        wanted = key if key else list(self.CONFIGURATION)
        known = [k for k in wanted if k in self.CONFIGURATION]
        unknown = [k for k in wanted if k not in self.CONFIGURATION]
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": self.CONFIGURATION[k][1], "value": self.CONFIGURATION[k][0]}
                               for k in known],
            unknown_key=unknown or None,
        )

    @on(Action16.change_configuration)
    async def on_change_configuration(self, key, value, **_):
        await self._hold()
        return result16.ChangeConfiguration(status=self.change_answers.get(key, "Accepted"))

    @on(Action16.reset)
    async def on_reset(self, type, **_):
        await self._hold()
        return result16.Reset(status="Accepted")

    @on(Action16.change_availability)
    async def on_change_availability(self, connector_id, type, **_):
        await self._hold()
        return result16.ChangeAvailability(status="Accepted")

    @on(Action16.trigger_message)
    async def on_trigger_message(self, requested_message, **_):
        await self._hold()
        return result16.TriggerMessage(status="Accepted")

    @on(Action16.unlock_connector)
    async def on_unlock_connector(self, connector_id, **_):
        await self._hold()
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.set_charging_profile)
    async def on_set_charging_profile(self, connector_id, cs_charging_profiles, **_):
        await self._hold()
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.clear_cache)
    async def on_clear_cache(self, **_):
        await self._hold()
        if self.clear_cache_error is not None:
            raise self.clear_cache_error
        return result16.ClearCache(status="Accepted")

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, **_):
        await self._hold()
        return result16.DataTransfer(status="Accepted", data="from-charger")


# ---------------------------------------------------------------------------
# ``ocpp-proxy translate``
# ---------------------------------------------------------------------------

def times_after_connecting(count: int = 4, minutes: int = 15) -> tuple[str, ...]:
    """Event times of a charger that is online now: from a day ahead, ``minutes`` apart. An event dated more than a
    minute before the charger's connection began was queued while it was offline, and the proxy flags it
    (``offline: true``, E04.FR.03); a day ahead, no test run is slow enough to pass these."""
    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    return tuple((base + timedelta(minutes=minutes * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(count))


TRANSLATE_NOW = "2026-01-01T00:00:00Z"
# The first 1.6 transaction id the proxy gives at TRANSLATE_NOW with no state: the seconds since 2024-01-01, so
# that ids keep growing when the state is lost instead of starting again at 1.
FIRST_TX_ID = 63158400
VERSION_ORDER = {"ocpp1.5": 0, V16: 1, V201: 2}
OUTPUT_KEYS = {"line", "input", "send", "state", "log"}


@dataclass
class Exchange:
    """One CALL fed to ``translate`` and, once the translated CALL's id is known, the answer to it."""

    frame: list  # the CALL, in the --from version
    answer: Any = None  # payload of the CALLRESULT the other side gives the translated CALL; None: no answer line
    call_line: int | None = None  # index of the CALL's line in the last run
    answer_line: int | None = None
    translated_id: str | None = None  # message id of the translated CALL, as translate printed it


@dataclass
class TranslateRun:
    """Feeds frames to ``ocpp-proxy translate`` (one per line) and checks the output's shape.

    ``run()`` translates every line added with ``add()``; each run re-translates the whole file and checks
    that the command is deterministic (lines an earlier run already had give the same output).

    ``converse()`` answers translated CALLs. The proxy holds a CALL while an earlier one toward the same
    side awaits its answer (OCPP-J: one outstanding CALL per direction), so an answer line must come right
    after its CALL line and needs the id ``translate`` gave the translated CALL. To keep runs few, the
    answer lines are written with an id guessed from the previous translated id (trailing number + 1); a
    guess is never trusted: after each run every answer line is compared with the id actually printed for
    its CALL, and from the first wrong guess on the file is rewritten with the printed id and run again.
    """

    binary: Path
    workdir: Path
    source: str
    target: str
    lines: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    exchanges: list = field(default_factory=list)
    runs: int = 0
    # the charger's version (source or target); None: the older of the two (a 1.6 charger on a 2.0.1 CSMS)
    charger: str | None = None
    # more options for translate (``--capability``, ``--evses``)
    options: tuple = ()

    def __post_init__(self):
        if self.charger is None:
            self.charger = self.source if VERSION_ORDER[self.source] < VERSION_ORDER[self.target] else self.target
        assert self.charger in (self.source, self.target), f"charger {self.charger} is neither side"

    @property
    def toward(self) -> str:
        # the charger's CALLs go to the CSMS, the CSMS's to the charger
        return "csms" if self.source == self.charger else "charger"

    def _rules_arguments(self) -> list[str]:
        # --charger: with rule files both ways (ocpp1.6-ocpp2.0.1 and ocpp2.0.1-ocpp1.6), --from and --to alone
        # do not say whether a 2.0.1 frame is a station's or a CSMS's
        return ["--rules", str(RULES_DIR), "--charger", self.charger]

    def add(self, frame: list) -> int:
        assert not self.exchanges, "add() and converse() do not mix in one TranslateRun"
        self.lines.append(frame)
        return len(self.lines) - 1

    def run(self) -> list[dict]:
        self.runs += 1
        path = self.workdir / f"translate-{self.source}-{self.target}-{self.runs}.jsonl"
        path.write_text("".join(json.dumps(frame) + "\n" for frame in self.lines))
        result = run_cli(self.binary, "translate", *self._rules_arguments(), "--from", self.source, "--to",
                         self.target, "--now", TRANSLATE_NOW, *self.options, str(path), cwd=REPO_ROOT)
        assert result.returncode == 0, (
            f"translate exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert len(outputs) == len(self.lines), (
            f"{len(self.lines)} input line(s) but {len(outputs)} output object(s)\nstdout:\n{result.stdout}")
        for number, (frame, out) in enumerate(zip(self.lines, outputs), start=1):
            assert isinstance(out, dict) and set(out) == OUTPUT_KEYS, f"line {number}: output keys {out!r}"
            assert out["line"] == number, f"line {number}: output says line {out['line']!r}"
            assert out["input"] == frame, f"line {number}: input echoed as {out['input']!r}, sent {frame!r}"
            assert isinstance(out["send"], list), f"line {number}: send is {out['send']!r}"
            for entry in out["send"]:
                assert isinstance(entry, dict) and set(entry) == {"to", "frame"}, f"line {number}: {entry!r}"
                assert entry["to"] in ("csms", "charger"), f"line {number}: {entry!r}"
                assert isinstance(entry["frame"], list) and entry["frame"][0] in (2, 3, 4), f"line {number}: {entry!r}"
            assert isinstance(out["state"], list) and all(isinstance(s, dict) for s in out["state"]), (
                f"line {number}: state is {out['state']!r}")
            assert isinstance(out["log"], list) and all(isinstance(s, str) for s in out["log"]), (
                f"line {number}: log is {out['log']!r}")
        self._check_deterministic(outputs)
        self.outputs = outputs
        self._previous_lines = list(self.lines)
        return outputs

    def _check_deterministic(self, outputs: list[dict]) -> None:
        previous_lines = getattr(self, "_previous_lines", [])
        for i, (old_line, new_line) in enumerate(zip(previous_lines, self.lines)):
            if old_line != new_line:
                return
            assert self.outputs[i] == outputs[i], (
                f"translate is not deterministic: line {i + 1} gave\n  {json.dumps(self.outputs[i])}\nbefore and\n"
                f"  {json.dumps(outputs[i])}\nnow")

    @staticmethod
    def _guess_after(message_id: str | None) -> str | None:
        m = re.match(r"^(.*?)(\d+)$", message_id or "")
        return f"{m.group(1)}{int(m.group(2)) + 1}" if m else None

    def converse(self, exchanges: list[Exchange]) -> None:
        """Add CALLs with their answers (see the class comment); afterwards each exchange knows its lines."""
        self.exchanges.extend(exchanges)
        while True:
            self.lines = []
            last_id = None
            complete = True
            for ex in self.exchanges:
                ex.call_line = len(self.lines)
                ex.answer_line = None
                self.lines.append(ex.frame)
                if ex.answer is None:
                    continue
                answer_id = ex.translated_id or self._guess_after(last_id)
                if answer_id is None:
                    complete = False  # run to learn this CALL's id before writing anything after it
                    break
                ex.answer_line = len(self.lines)
                self.lines.append([3, answer_id, ex.answer])
                last_id = answer_id
            outputs = self.run()
            rerun = not complete
            last_id = None
            for ex in self.exchanges:
                if ex.call_line is None or ex.call_line >= len(outputs):
                    break
                calls_sent = [e["frame"] for e in outputs[ex.call_line]["send"]
                              if e["to"] == self.toward and e["frame"][0] == 2]
                printed = calls_sent[0][1] if calls_sent else None
                if ex.answer is None:
                    continue
                if printed is None:
                    # not translated into a CALL (a bug the row's checks report): it gets no answer line
                    ex.answer = None
                    rerun = True
                    break
                if ex.answer_line is None or self.lines[ex.answer_line][1] != printed:
                    ex.translated_id = printed
                    rerun = True
                    break
                ex.translated_id = printed
            if not rerun:
                return


def sent(output: dict, to: str, message_type: int | None = None) -> list[list]:
    """Frames of one output object that go ``to`` one side (optionally of one message type)."""
    return [e["frame"] for e in output["send"]
            if e["to"] == to and (message_type is None or e["frame"][0] == message_type)]


def only_call(output: dict, to: str, action: str) -> list:
    """The one frame of an output object: a CALL of ``action`` toward ``to``."""
    frames = [e for e in output["send"]]
    assert len(frames) == 1, f"expected exactly one frame sent, got {json.dumps(output['send'])}"
    assert frames[0]["to"] == to, f"expected the frame to go to the {to}, got {json.dumps(frames[0])}"
    frame = frames[0]["frame"]
    assert frame[0] == 2 and len(frame) == 4, f"expected a CALL, got {json.dumps(frame)}"
    assert frame[2] == action, f"expected a {action} CALL, got {json.dumps(frame)}"
    assert isinstance(frame[1], str) and 0 < len(frame[1]) <= 36, f"bad message id in {json.dumps(frame)}"
    return frame


def only_result(output: dict, to: str, message_id: str) -> dict:
    """The one frame of an output object: a CALLRESULT with ``message_id`` toward ``to``; its payload."""
    frames = [e for e in output["send"]]
    assert len(frames) == 1, f"expected exactly one frame sent, got {json.dumps(output['send'])}"
    assert frames[0]["to"] == to, f"expected the frame to go to the {to}, got {json.dumps(frames[0])}"
    frame = frames[0]["frame"]
    assert frame[0] == 3 and len(frame) == 3, f"expected a CALLRESULT, got {json.dumps(frame)}"
    assert frame[1] == message_id, f"expected message id {message_id!r}, got {json.dumps(frame)}"
    return frame[2]


class Problems:
    """Collects failures of a table so one run reports every bad row, not only the first."""

    def __init__(self):
        self.items: list[str] = []

    def check(self, row: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except AssertionError as exc:
            self.items.append(f"[{row}] {exc}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            self.items.append(f"[{row}] {type(exc).__name__}: {exc}")
        return None

    def assert_none(self, what: str) -> None:
        assert not self.items, f"{len(self.items)} problem(s) in {what}:\n" + "\n".join(self.items)
