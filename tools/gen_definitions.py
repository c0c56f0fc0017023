#!/usr/bin/env python3
"""Generate Rules/definitions/ocpp1.6.yaml and Rules/definitions/ocpp2.0.1.yaml.

The source is the set of official OCPP JSON schemas shipped in the PyPI package `ocpp`
(ocpp/v16/schemas/*.json, ocpp/v201/schemas/*.json). The output re-expresses the facts those
schemas state -- field names, types, required fields, enum values, lengths, minimums, item
counts -- in ocpp-proxy's definition notation (Rules/README.md, "Definition files"):

    messages:
      StatusNotification:
        sentBy: chargingStation        # who sends the CALL: chargingStation, csms or both
        request:
          connectorId!: integer        # `!` = required
          status!: enum(Available|Preparing|...)
        response: {}

Constraints the notation cannot say (maximum, pattern, ...) are dropped; a summary of the
dropped kinds, with counts, goes to stderr. A number's multipleOf is kept: `number(multipleOf 0.1)`
(with a minimum: `number(>=0 multipleOf 0.1)`).

    .venv/bin/python tools/gen_definitions.py            # write the files
    .venv/bin/python tools/gen_definitions.py --check    # exit 1 if the committed files differ

Tests/Interop/test_definitions.py regenerates both files in memory and compares them byte for
byte with the committed ones.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import json
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "Rules" / "definitions"
LINE_WIDTH = 100

# Who sends the CALL of each action. These are protocol facts (OCPP 1.6 edition 2 + the 1.6
# security whitepaper; OCPP 2.0.1 part 2), not something the schemas say. Every action found in
# the schema folder must be in exactly one class; anything else is an error.
SENT_BY = {
    "ocpp1.6": {
        "chargingStation": {
            "Authorize", "BootNotification", "DiagnosticsStatusNotification",
            "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
            "StatusNotification", "StopTransaction",
            # security extension
            "LogStatusNotification", "SecurityEventNotification", "SignCertificate",
            "SignedFirmwareStatusNotification",
        },
        "both": {"DataTransfer"},
        "csms": {
            "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
            "ClearChargingProfile", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics",
            "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
            "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
            "UnlockConnector", "UpdateFirmware",
            # security extension
            "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage",
            "GetInstalledCertificateIds", "GetLog", "InstallCertificate", "SignedUpdateFirmware",
        },
    },
    "ocpp2.0.1": {
        "chargingStation": {
            "Authorize", "BootNotification", "ClearedChargingLimit", "FirmwareStatusNotification",
            "Get15118EVCertificate", "GetCertificateStatus", "Heartbeat", "LogStatusNotification",
            "MeterValues", "NotifyChargingLimit", "NotifyCustomerInformation",
            "NotifyDisplayMessages", "NotifyEVChargingNeeds", "NotifyEVChargingSchedule",
            "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
            "PublishFirmwareStatusNotification", "ReportChargingProfiles",
            "ReservationStatusUpdate", "SecurityEventNotification", "SignCertificate",
            "StatusNotification", "TransactionEvent",
        },
        "both": {"DataTransfer"},
        "csms": {
            "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache",
            "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring",
            "CostUpdated", "CustomerInformation", "DeleteCertificate", "GetBaseReport",
            "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
            "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport",
            "GetReport", "GetTransactionStatus", "GetVariables", "InstallCertificate",
            "PublishFirmware", "RequestStartTransaction", "RequestStopTransaction", "ReserveNow",
            "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
            "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile",
            "SetVariableMonitoring", "SetVariables", "TriggerMessage", "UnlockConnector",
            "UnpublishFirmware", "UpdateFirmware",
        },
    },
}

# version -> (schema folder in the package, suffix of a request file name)
VERSIONS = {
    "ocpp1.6": ("v16", ""),            # Foo.json, FooResponse.json
    "ocpp2.0.1": ("v201", "Request"),  # FooRequest.json, FooResponse.json
}

# Keywords that only annotate; they say nothing a frame is checked against.
ANNOTATIONS = {"$schema", "$id", "id", "title", "description", "comment", "javaType", "default"}
# Validation keywords the notation cannot say: dropped and counted.
DROPPABLE = {
    "maximum", "exclusiveMaximum", "exclusiveMinimum", "minLength", "pattern",
    "uniqueItems", "minProperties", "maxProperties", "const", "contentEncoding",
    "contentMediaType",
}
# Keywords this generator understands.
HANDLED = {
    "type", "properties", "required", "additionalProperties", "items", "additionalItems",
    "enum", "maxLength", "minimum", "minItems", "maxItems", "format", "$ref", "definitions",
    "multipleOf",
}
FORMATS_AS_STRING = {"uri"}  # a plain string in the notation; nothing is lost worth a warning


class SchemaError(Exception):
    pass


@dataclass(frozen=True)
class Array:
    item: object            # a shape
    min: int | None = None
    max: int | None = None


@dataclass
class Definitions:
    version: str
    text: str
    dropped: collections.Counter       # kind -> count (in the generated, ref-inlined shapes)
    dropped_where: dict                # kind -> [path, ...]
    notes: list                        # schema oddities worth a look


def ocpp_package_dir() -> Path:
    import ocpp

    return Path(ocpp.__file__).resolve().parent


def ocpp_package_version() -> str:
    return metadata.version("ocpp")


# --------------------------------------------------------------------------------------------
# Schema -> shape


class Converter:
    def __init__(self, file_name: str, schema: dict, dropped: collections.Counter,
                 dropped_where: dict, notes: list):
        self.file_name = file_name
        self.definitions = schema.get("definitions", {})
        self.dropped = dropped
        self.dropped_where = dropped_where
        self.notes = notes

    def fail(self, path: str, message: str):
        raise SchemaError(f"{self.file_name}: {path}: {message}")

    def drop(self, kind: str, path: str):
        self.dropped[kind] += 1
        self.dropped_where.setdefault(kind, []).append(path)

    def resolve(self, node: dict, path: str, stack: tuple) -> tuple[dict, tuple]:
        while "$ref" in node:
            ref = node["$ref"]
            extra = set(node) - {"$ref"} - ANNOTATIONS
            if extra:
                self.fail(path, f"$ref with sibling keywords {sorted(extra)}")
            match = re.fullmatch(r"#/definitions/([A-Za-z0-9_]+)", ref)
            if not match or match.group(1) not in self.definitions:
                self.fail(path, f"unresolvable $ref {ref!r}")
            name = match.group(1)
            if name in stack:
                self.fail(path, f"recursive $ref {' -> '.join(stack + (name,))}")
            stack = stack + (name,)
            node = self.definitions[name]
        return node, stack

    def shape(self, node, path: str, stack: tuple = ()):
        if not isinstance(node, dict):
            self.fail(path, f"schema is not an object: {node!r}")
        node, stack = self.resolve(node, path, stack)
        unknown = set(node) - ANNOTATIONS - DROPPABLE - HANDLED
        if unknown:
            self.fail(path, f"keywords this generator does not understand: {sorted(unknown)}")
        for kind in sorted(set(node) & DROPPABLE):
            self.drop(kind, path)
        if "definitions" in node and path.count(".") > 1:
            self.fail(path, "nested definitions")

        kind = node.get("type")
        if isinstance(kind, list):
            self.fail(path, f"type lists are not supported: {kind}")
        if kind != "object" and ("properties" in node or "required" in node):
            self.fail(path, f"properties/required on type {kind!r}")
        if kind != "array" and any(k in node for k in ("items", "minItems", "maxItems", "additionalItems")):
            self.fail(path, f"array keywords on type {kind!r}")
        if "enum" in node and kind not in ("string", None):
            self.fail(path, f"enum on type {kind!r}")
        if kind not in ("object", None) and "additionalProperties" in node:
            self.notes.append(f"additionalProperties on a {kind} (no effect, ignored)")

        if kind == "object":
            return self.object_shape(node, path, stack)
        if kind == "array":
            return self.array_shape(node, path, stack)
        return self.scalar_shape(node, kind, path)

    def object_shape(self, node: dict, path: str, stack: tuple) -> dict:
        properties = node.get("properties", {})
        required = node.get("required", [])
        missing = [name for name in required if name not in properties]
        if missing:
            self.fail(path, f"required fields without a property: {missing}")
        if len(set(required)) != len(required):
            self.fail(path, f"duplicate required entries: {required}")
        shape = {}
        for name, sub in properties.items():
            if name.endswith("!") or name == "*":
                self.fail(path, f"field name {name!r} clashes with the notation")
            key = name + "!" if name in required else name
            shape[key] = self.shape(sub, f"{path}.{name}", stack)
        extra = node.get("additionalProperties", True)
        if isinstance(extra, dict):
            self.fail(path, "additionalProperties with a schema is not supported")
        if extra is not False:
            self.notes.append("object open to other fields (additionalProperties "
                              + ("true" if "additionalProperties" in node else "absent") + ")")
            shape["*"] = "any"
        return shape

    def array_shape(self, node: dict, path: str, stack: tuple) -> Array:
        items = node.get("items")
        if not isinstance(items, dict):
            self.fail(path, f"array items must be one schema, got {items!r}")
        # With a single `items` schema, `additionalItems` has no effect (draft 4-7).
        if "additionalItems" in node:
            self.notes.append("additionalItems next to a single items schema (no effect, ignored)")
        item = self.shape(items, path + "[]", stack)
        low, high = node.get("minItems"), node.get("maxItems")
        for value in (low, high):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                self.fail(path, f"bad minItems/maxItems {value!r}")
        return Array(item, low, high)

    def scalar_shape(self, node: dict, kind, path: str) -> str:
        fmt = node.get("format")
        if "enum" in node:
            values = node["enum"]
            if not values or not all(isinstance(v, str) for v in values):
                self.fail(path, f"enum values must be non-empty strings: {values!r}")
            bad = [v for v in values if not re.fullmatch(r"[A-Za-z0-9_.\-]+", v)]
            if bad:
                self.fail(path, f"enum values the notation cannot carry: {bad}")
            if len(set(values)) != len(values):
                self.fail(path, f"duplicate enum values: {values}")
            for keyword in ("maxLength", "multipleOf"):
                if keyword in node:
                    self.drop(f"{keyword} (on an enum)", path)
            if fmt is not None:
                self.drop(f"format: {fmt} (on an enum)", path)
            return "enum(" + "|".join(values) + ")"
        if kind is None:
            dropped = set(node) & {"maxLength", "minimum", "format", "multipleOf"}
            for keyword in sorted(dropped):
                self.drop(f"{keyword} (without a type)", path)
            return "any"
        if kind == "string":
            for keyword in ("minimum", "multipleOf"):
                if keyword in node:
                    self.drop(f"{keyword} (on a string)", path)
            if fmt == "date-time":
                if "maxLength" in node:
                    self.drop("maxLength (on a date-time)", path)
                return "datetime"
            if fmt is not None and fmt not in FORMATS_AS_STRING:
                self.drop(f"format: {fmt}", path)
            if "maxLength" in node:
                return f"string({self.number(node['maxLength'], path, 'maxLength')})"
            return "string"
        if kind in ("integer", "number"):
            for keyword in ("maxLength", "format"):
                if keyword in node:
                    self.drop(f"{keyword} (on a {kind})", path)
            # space-separated constraints: a comma would end the value in a YAML flow mapping
            constraints = []
            if "minimum" in node:
                constraints.append(f">={self.number(node['minimum'], path, 'minimum')}")
            if "multipleOf" in node:
                if kind != "number":
                    self.drop(f"multipleOf (on a {kind})", path)
                else:
                    step = self.number(node["multipleOf"], path, "multipleOf")
                    if float(step) <= 0:
                        self.fail(path, f"multipleOf must be positive, got {step}")
                    constraints.append(f"multipleOf {step}")
            return f"{kind}({' '.join(constraints)})" if constraints else kind
        if kind == "boolean":
            for keyword in ("maxLength", "minimum", "format", "multipleOf"):
                if keyword in node:
                    self.drop(f"{keyword} (on a boolean)", path)
            return "boolean"
        self.fail(path, f"unsupported type {kind!r}")

    def number(self, value, path: str, keyword: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"{keyword} is not a number: {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if keyword == "maxLength" and (not isinstance(value, int) or value < 0):
            self.fail(path, f"bad maxLength {value!r}")
        return str(value)


# --------------------------------------------------------------------------------------------
# Schema folder -> messages


def load_messages(version: str, package_dir: Path | None = None):
    """Returns (messages, dropped, dropped_where, notes); messages is {action: {...}} sorted."""
    folder_name, request_suffix = VERSIONS[version]
    folder = (package_dir or ocpp_package_dir()) / folder_name / "schemas"
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise SchemaError(f"no schema files in {folder}")
    others = [p.name for p in files if p.suffix != ".json"]
    if others:
        raise SchemaError(f"{folder}: files that are not JSON schemas: {others}")

    halves: dict[str, dict[str, Path]] = {}
    for path in files:
        stem = path.stem
        if stem.endswith("Response"):
            action, half = stem[: -len("Response")], "response"
        elif stem.endswith(request_suffix):
            action, half = stem[: len(stem) - len(request_suffix)], "request"
        else:
            raise SchemaError(f"{path.name}: neither a request (*{request_suffix}.json) nor a response")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", action):
            raise SchemaError(f"{path.name}: odd action name {action!r}")
        if half in halves.setdefault(action, {}):
            raise SchemaError(f"{path.name}: second {half} schema for {action}")
        halves[action][half] = path
    for action, pair in halves.items():
        if set(pair) != {"request", "response"}:
            raise SchemaError(f"{version}: {action} has only a {', '.join(pair)} schema")

    classes = SENT_BY[version]
    for action in halves:
        owners = [name for name, members in classes.items() if action in members]
        if len(owners) != 1:
            raise SchemaError(f"{version}: {action} is in {len(owners)} sentBy classes {owners}, needs exactly 1")
    listed = set().union(*classes.values())
    unknown = sorted(listed - set(halves))
    if unknown:
        raise SchemaError(f"{version}: sentBy lists actions without schema files: {unknown}")

    dropped: collections.Counter = collections.Counter()
    dropped_where: dict = {}
    notes: list = []
    messages = {}
    for action in sorted(halves):
        entry = {"sentBy": next(n for n, m in classes.items() if action in m)}
        for half in ("request", "response"):
            path = halves[action][half]
            schema = json.loads(path.read_text(encoding="utf-8"))
            if schema.get("type") != "object":
                raise SchemaError(f"{path.name}: the top-level schema is not an object")
            converter = Converter(path.name, schema, dropped, dropped_where, notes)
            entry[half] = converter.shape(schema, f"{action}.{half}")
            used = referenced_definitions(schema)
            unused = sorted(set(schema.get("definitions", {})) - used)
            if unused:
                notes.append(f"unused definitions ({path.name}: {', '.join(unused)})")
        messages[action] = entry
    return messages, dropped, dropped_where, notes


def referenced_definitions(schema: dict) -> set:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref[len("#/definitions/"):]
                if name not in found:
                    found.add(name)
                    walk(schema.get("definitions", {}).get(name))
            for key, value in node.items():
                if key != "definitions":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


# --------------------------------------------------------------------------------------------
# Shape -> YAML text (own emitter: block mappings indented 2, flow for small all-scalar parts)

import functools

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.()|>=!\-]*")


@functools.lru_cache(maxsize=None)
def scalar_text(value: str) -> str:
    """A plain scalar where YAML (1.1, as PyYAML and libyaml/Yams read it) keeps it a string
    in both block and flow context; a double-quoted one otherwise."""
    if _PLAIN.fullmatch(value) and yaml.safe_load(f"k: {value}") == {"k": value} \
            and yaml.safe_load(f"[{value}]") == [value]:
        return value
    return json.dumps(value, ensure_ascii=False)


def is_compact(shape) -> bool:
    """All-scalar objects, and arrays of scalars or of all-scalar objects, may go on one line."""
    if isinstance(shape, str):
        return True
    if isinstance(shape, dict):
        return all(isinstance(v, str) for v in shape.values())
    if isinstance(shape, Array):
        return is_compact(shape.item) and not isinstance(shape.item, Array)
    raise TypeError(shape)


def flow_text(shape) -> str:
    if isinstance(shape, str):
        return scalar_text(shape)
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{scalar_text(k)}: {flow_text(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, Array):
        return "[" + ", ".join([flow_text(shape.item)] + ([limits_text(shape)] if limits_of(shape) else [])) + "]"
    raise TypeError(shape)


def limits_of(array: Array) -> dict:
    limits = {}
    if array.min is not None:
        limits["min"] = array.min
    if array.max is not None:
        limits["max"] = array.max
    return limits


def limits_text(array: Array) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in limits_of(array).items()) + "}"


def field_lines(key: str, shape, indent: int, force_block: bool = False) -> list[str]:
    pad = " " * indent
    head = f"{pad}{scalar_text(key)}:"
    if isinstance(shape, str) or (isinstance(shape, dict) and not shape):
        return [f"{head} {flow_text(shape)}"]
    if not force_block and is_compact(shape):
        line = f"{head} {flow_text(shape)}"
        if len(line) <= LINE_WIDTH:
            return [line]
    return [head] + block_lines(shape, indent + 2)


def block_lines(shape, indent: int) -> list[str]:
    """The lines of a non-scalar shape in block style, starting at `indent`."""
    if isinstance(shape, dict):
        lines = []
        for key, value in shape.items():
            lines += field_lines(key, value, indent)
        return lines
    if isinstance(shape, Array):
        pad = " " * indent
        if is_compact(shape.item) and (isinstance(shape.item, str) or
                                       len(pad) + 2 + len(flow_text(shape.item)) <= LINE_WIDTH):
            lines = [f"{pad}- {flow_text(shape.item)}"]
        else:
            inner = block_lines(shape.item, indent + 2)
            lines = [f"{pad}- {inner[0][indent + 2:]}"] + inner[1:]
        if limits_of(shape):
            lines.append(f"{pad}- {limits_text(shape)}")
        return lines
    raise TypeError(shape)


def header(version: str, package_version: str) -> list[str]:
    return [
        f"# Generated by tools/gen_definitions.py from the JSON schemas of the PyPI package ocpp "
        f"{package_version}. Do not edit by hand.",
        "# These are facts of the OCPP schemas (field names, types, required fields, enums, lengths,",
        "# minimums, item counts) re-expressed in ocpp-proxy's notation; see Rules/README.md,",
        "# \"Definition files\". sentBy (who sends the CALL) comes from the protocol specification.",
    ]


def render(version: str, messages: dict, package_version: str) -> str:
    lines = header(version, package_version)
    lines += [f"version: {scalar_text(version)}", "messages:"]
    for action, entry in messages.items():
        lines.append(f"  {scalar_text(action)}:")
        lines.append(f"    sentBy: {entry['sentBy']}")
        for half in ("request", "response"):
            lines += field_lines(half, entry[half], 4, force_block=True)
    return "\n".join(lines) + "\n"


def plain_data(shape):
    """The value PyYAML must read back for a shape."""
    if isinstance(shape, str):
        return shape
    if isinstance(shape, dict):
        return {k: plain_data(v) for k, v in shape.items()}
    if isinstance(shape, Array):
        return [plain_data(shape.item)] + ([limits_of(shape)] if limits_of(shape) else [])
    raise TypeError(shape)


def generate(version: str, package_dir: Path | None = None) -> Definitions:
    package_version = ocpp_package_version()
    messages, dropped, dropped_where, notes = load_messages(version, package_dir)
    text = render(version, messages, package_version)
    expected = {
        "version": version,
        "messages": {
            action: {"sentBy": e["sentBy"], "request": plain_data(e["request"]),
                     "response": plain_data(e["response"])}
            for action, e in messages.items()
        },
    }
    if yaml.safe_load(text) != expected:
        raise SchemaError(f"{version}: the emitted YAML does not read back as what was meant")
    return Definitions(version, text, dropped, dropped_where, notes)


def output_path(version: str, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    return out_dir / f"{version}.yaml"


def report_dropped(result: Definitions, stream=sys.stderr):
    if not result.dropped:
        print(f"{result.version}: no constraints dropped", file=stream)
        return
    total = sum(result.dropped.values())
    print(f"{result.version}: {total} constraints dropped (the notation cannot say them):", file=stream)
    for kind, count in sorted(result.dropped.items()):
        where = result.dropped_where[kind]
        example = ", ".join(where[:3]) + (", ..." if len(where) > 3 else "")
        print(f"  {kind}: {count}  ({example})", file=stream)


def check_message(shown, current: bytes | None, generated: str, max_diff_lines: int = 60,
                  tool: str = "tools/gen_definitions.py") -> str:
    """One `file:line: ...` line for a committed file that differs, then a unified diff."""
    if current is None:
        return f"{shown}: missing (run {tool})"
    old = current.decode("utf-8", errors="replace").split("\n")
    new = generated.split("\n")
    first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    lines = [f"{shown}:{first + 1}: differs from what {tool} generates "
             f"(run it to regenerate)"]
    diff = list(difflib.unified_diff(old, new, f"{shown} (committed)", f"{shown} (generated)",
                                     lineterm=""))
    lines += diff[:max_diff_lines]
    if len(diff) > max_diff_lines:
        lines.append(f"... ({len(diff) - max_diff_lines} more diff lines)")
    return "\n".join(lines)


def sync_file(path: Path, text: str, check: bool, tool: str = "tools/gen_definitions.py") -> bool:
    """Writes `text` to `path` when it differs, or with `check` only prints how it differs; False when it does."""
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    data = text.encode("utf-8")
    current = path.read_bytes() if path.exists() else None
    if current == data:
        if not check:
            print(f"{shown} is up to date", file=sys.stderr)
        return True
    if check:
        print(check_message(shown, current, text, tool=tool))
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"wrote {shown} ({text.count(chr(10))} lines)", file=sys.stderr)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a committed file differs from what would be generated")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR,
                        help="directory of the definition files (default: Rules/definitions)")
    parser.add_argument("--notes", action="store_true", help="also print schema oddities to stderr")
    args = parser.parse_args(argv)

    status = 0
    for version in VERSIONS:
        try:
            result = generate(version)
        except SchemaError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        report_dropped(result)
        if args.notes:
            for note, count in sorted(collections.Counter(result.notes).items()):
                print(f"  note: {note}: {count}", file=sys.stderr)
        if not sync_file(output_path(version, args.out), result.text, args.check):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
