#!/usr/bin/env python3
"""Generate the OCPP-S (SOAP) definitions from the official WSDLs in Tests/Interop/wsdl/.

Outputs, in ocpp-proxy's notation (Rules/README.md, "Definition files" and "SOAP layout files"):

    Rules/definitions/ocpp1.5.yaml   the messages of OCPP 1.5, for the rule engine
    Rules/soap/ocpp1.5.yaml          how 1.5 messages are laid out in SOAP (namespaces, body elements,
                                     header, simple-content elements); its messages are the file above
    Rules/soap/ocpp1.6.yaml          the same for 1.6, with the messages of the 1.6 WSDLs inline
                                     (definitions/ocpp1.6.yaml holds the OCPP-J schemas' version)

Each WSDL pair (Central System service: the CALLs a charger sends; Charge Point service: the CALLs
a CSMS sends) gives, per operation, the request and response element and its type. XSD maps onto
the notation as: s:int -> integer, s:decimal/s:float/s:double -> number, s:boolean -> boolean,
s:dateTime -> datetime, s:string/s:anyURI -> string (string(N) with a maxLength), an enumeration
restriction -> enum(A|B), minOccurs="0" -> optional, maxOccurs > 1 -> an array (minOccurs >= 1 and a
bounded maxOccurs become its min/max). Field order is XML element order.

An element with simple content and attributes (1.5 MeterValues `value`) is an object in JSON: its
text is the field `value`, each attribute a field of its own name. Its path is listed under
`simpleContent` in the SOAP layout file, so the codec knows to write the other fields as attributes.

Facets the notation cannot say (fractionDigits, ...) are dropped; a summary goes to stderr.

    .venv/bin/python tools/gen_soap_definitions.py            # write the files
    .venv/bin/python tools/gen_soap_definitions.py --check    # exit 1 if a committed file differs

Tests/Interop/test_soap_definitions.py regenerates them in memory and compares byte for byte.
"""

from __future__ import annotations

import argparse
import collections
import io
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_definitions import Array, check_message, field_lines, plain_data, scalar_text, sync_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
WSDL_DIR = REPO_ROOT / "Tests" / "Interop" / "wsdl"
RULES_DIR = REPO_ROOT / "Rules"
TOOL = "tools/gen_soap_definitions.py"

XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSAW = "http://www.w3.org/2006/05/addressing/wsdl"

# version -> (Central System service WSDL, Charge Point service WSDL)
WSDLS = {
    "ocpp1.5": ("ocpp_centralsystemservice_1.5_final.wsdl", "ocpp_chargepointservice_1.5_final.wsdl"),
    "ocpp1.6": ("OCPP_CentralSystemService_1.6.wsdl", "OCPP_ChargePointService_1.6.wsdl"),
}
# Versions whose messages go to Rules/definitions/ (the rule engine's one file per version). 1.6 has
# its OCPP-J definitions there already; its SOAP messages stay in the layout file.
RULE_DEFINITIONS = {"ocpp1.5"}

XSD_SCALARS = {
    "int": "integer", "decimal": "number", "float": "number", "double": "number",
    "boolean": "boolean", "dateTime": "datetime", "string": "string", "anyURI": "string",
}
DOC = {"annotation"}  # schema children that only document
DROPPABLE_FACETS = {"fractionDigits", "totalDigits", "minLength", "pattern", "whiteSpace"}


class WSDLError(Exception):
    pass


@dataclass
class Service:
    """What one WSDL says: its namespace, header elements and operations."""
    file: str
    namespace: str
    header: dict                      # element name -> shape
    operations: dict                  # action -> {"request": (element, shape), "response": (element, shape)}
    simple_content: list              # (action, half, path below the body) of simple-content objects


@dataclass
class Generated:
    version: str
    files: dict                       # path relative to Rules/ -> text
    dropped: collections.Counter = field(default_factory=collections.Counter)


def qname_map(path: Path) -> dict:
    """prefix -> namespace URI, as declared anywhere in the file (the WSDLs declare each prefix once)."""
    prefixes: dict = {}
    for _, (prefix, uri) in ET.iterparse(path, events=("start-ns",)):
        if prefixes.get(prefix, uri) != uri:
            raise WSDLError(f"{path.name}: prefix {prefix!r} bound to two namespaces")
        prefixes[prefix] = uri
    return prefixes


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Reader:
    def __init__(self, path: Path, dropped: collections.Counter):
        self.path = path
        self.name = path.name
        self.root = ET.parse(path).getroot()
        self.prefixes = qname_map(path)
        self.dropped = dropped
        schemas = self.root.findall(f"{{{WSDL}}}types/{{{XSD}}}schema")
        if len(schemas) != 1:
            self.fail("types", f"expected one schema, found {len(schemas)}")
        self.schema = schemas[0]
        self.namespace = self.schema.get("targetNamespace")
        if self.schema.get("elementFormDefault") != "qualified":
            self.fail("schema", "elementFormDefault is not qualified")
        self.types = {}
        self.elements = {}
        for child in self.schema:
            kind = local(child.tag)
            if kind in ("simpleType", "complexType"):
                self.types[child.get("name")] = child
            elif kind == "element":
                self.elements[child.get("name")] = child
            elif kind not in DOC:
                self.fail("schema", f"top-level <{kind}> is not supported")
        self.simple_content: list = []

    def fail(self, where: str, message: str):
        raise WSDLError(f"{self.name}: {where}: {message}")

    def resolve(self, text: str, where: str) -> tuple[str, str]:
        prefix, _, name = text.rpartition(":")
        uri = self.prefixes.get(prefix)
        if uri is None:
            self.fail(where, f"unknown prefix in {text!r}")
        return uri, name

    # ----------------------------------------------------------------------------------------
    # Types -> shapes

    def type_shape(self, type_text: str, path: str, stack: tuple):
        uri, name = self.resolve(type_text, path)
        if uri == XSD:
            if name not in XSD_SCALARS:
                self.fail(path, f"XSD type s:{name} is not supported")
            return XSD_SCALARS[name]
        if uri != self.namespace or name not in self.types:
            self.fail(path, f"unknown type {type_text!r}")
        if name in stack:
            self.fail(path, f"recursive type {' -> '.join(stack + (name,))}")
        node = self.types[name]
        if local(node.tag) == "simpleType":
            return self.simple_shape(node, path)
        return self.complex_shape(node, path, stack + (name,))

    def only_child(self, node, kind: str, path: str, what: str):
        """The one child of `node` (documentation aside), which must be a <kind>, and its XSD scalar base."""
        parts = [c for c in node if local(c.tag) not in DOC]
        if len(parts) != 1 or local(parts[0].tag) != kind:
            self.fail(path, f"{what} must be one {kind}")
        uri, base = self.resolve(parts[0].get("base", ""), path)
        if uri != XSD or base not in XSD_SCALARS:
            self.fail(path, f"{what} of {parts[0].get('base')!r} is not supported")
        return parts[0], base

    def simple_shape(self, node, path: str) -> str:
        restriction, base = self.only_child(node, "restriction", path, "a simple type")
        values, max_length = [], None
        for facet in restriction:
            kind = local(facet.tag)
            if kind == "enumeration":
                values.append(facet.get("value"))
            elif kind == "maxLength":
                max_length = int(facet.get("value"))
            elif kind in DROPPABLE_FACETS:
                self.dropped[f"{kind} (on s:{base})"] += 1
            elif kind not in DOC:
                self.fail(path, f"facet <{kind}> is not supported")
        if values:
            if base != "string":
                self.fail(path, f"enumeration on s:{base}")
            if len(set(values)) != len(values):
                self.fail(path, f"duplicate enumeration values {values}")
            if max_length is not None:
                self.dropped["maxLength (on an enumeration)"] += 1
            return "enum(" + "|".join(values) + ")"
        if max_length is not None:
            if XSD_SCALARS[base] != "string":
                self.fail(path, f"maxLength on s:{base}")
            return f"string({max_length})"
        return XSD_SCALARS[base]

    def complex_shape(self, node, path: str, stack: tuple) -> dict:
        extra = set(node.attrib) - {"name"}
        if extra:
            self.fail(path, f"complexType attributes {sorted(extra)} are not supported")
        parts = [c for c in node if local(c.tag) not in DOC]
        if not parts:
            return {}
        if len(parts) != 1:
            self.fail(path, "a complex type must be one sequence or one simpleContent")
        kind = local(parts[0].tag)
        if kind == "sequence":
            return self.sequence_shape(parts[0], path, stack)
        if kind == "simpleContent":
            return self.simple_content_shape(parts[0], path)
        self.fail(path, f"<{kind}> is not supported")

    def sequence_shape(self, sequence, path: str, stack: tuple) -> dict:
        if sequence.attrib:
            self.fail(path, "attributes on a sequence are not supported")
        shape = {}
        for element in sequence:
            kind = local(element.tag)
            if kind in DOC:
                continue
            if kind != "element":
                self.fail(path, f"<{kind}> inside a sequence is not supported")
            name = element.get("name")
            extra = set(element.attrib) - {"name", "type", "minOccurs", "maxOccurs"}
            if not name or extra:
                self.fail(path, f"element {name!r}: unsupported attributes {sorted(extra)}")
            if name in shape or name + "!" in shape or name.endswith("!") or name == "*":
                self.fail(path, f"element name {name!r} repeated or clashing with the notation")
            low = int(element.get("minOccurs", "1"))
            high_text = element.get("maxOccurs", "1")
            high = None if high_text == "unbounded" else int(high_text)
            sub_path = f"{path}.{name}"
            inline = [c for c in element if local(c.tag) not in DOC]
            if element.get("type") and inline:
                self.fail(sub_path, "both a type and an inline type")
            if high is None or high > 1:
                item_path = sub_path + "[]"
            else:
                item_path = sub_path
            if element.get("type"):
                item = self.type_shape(element.get("type"), item_path, stack)
            elif len(inline) == 1 and local(inline[0].tag) == "complexType":
                item = self.complex_shape(inline[0], item_path, stack)
            else:
                self.fail(sub_path, "an element needs a type")
            if high is None or high > 1:
                value = Array(item, low if low > 0 else None, high)
            else:
                value = item
            shape[name + "!" if low > 0 else name] = value
        return shape

    def simple_content_shape(self, content, path: str) -> dict:
        extension, base = self.only_child(content, "extension", path, "simple content")
        # The text is the field `value`, required: the element is there, so its text is (maybe empty).
        shape = {"value!": XSD_SCALARS[base]}
        for attribute in extension:
            kind = local(attribute.tag)
            if kind in DOC:
                continue
            if kind != "attribute":
                self.fail(path, f"<{kind}> in a simpleContent extension is not supported")
            name = attribute.get("name")
            if not name or name == "value" or name in shape or name + "!" in shape:
                self.fail(path, f"attribute {name!r} clashes with the text field or another attribute")
            extra = set(attribute.attrib) - {"name", "type", "use"}
            if extra:
                self.fail(path, f"attribute {name}: unsupported {sorted(extra)}")
            use = attribute.get("use", "optional")
            if use not in ("optional", "required"):
                self.fail(path, f"attribute {name}: use={use!r}")
            shape[name + "!" if use == "required" else name] = self.type_shape(
                attribute.get("type", "s:string"), f"{path}@{name}", ())
        self.simple_content.append(path)
        return shape

    # ----------------------------------------------------------------------------------------
    # Messages, operations, header

    def message_element(self, message_text: str, where: str) -> str:
        _, message_name = self.resolve(message_text, where)
        messages = [m for m in self.root.findall(f"{{{WSDL}}}message") if m.get("name") == message_name]
        if len(messages) != 1:
            self.fail(where, f"message {message_name!r} defined {len(messages)} times")
        parts = messages[0].findall(f"{{{WSDL}}}part")
        if len(parts) != 1 or not parts[0].get("element"):
            self.fail(where, f"message {message_name!r} must have one element part")
        uri, element = self.resolve(parts[0].get("element"), where)
        if uri != self.namespace or element not in self.elements:
            self.fail(where, f"message {message_name!r}: unknown element {parts[0].get('element')!r}")
        return element

    def service(self) -> Service:
        port_types = self.root.findall(f"{{{WSDL}}}portType")
        if len(port_types) != 1:
            self.fail("portType", f"expected one, found {len(port_types)}")
        operations = {}
        for operation in port_types[0].findall(f"{{{WSDL}}}operation"):
            action = operation.get("name")
            if action in operations:
                self.fail(action, "operation defined twice")
            entry = {}
            for half, tag, suffix in (("request", "input", ""), ("response", "output", "Response")):
                io_node = operation.find(f"{{{WSDL}}}{tag}")
                if io_node is None:
                    self.fail(action, f"no {tag}")
                if io_node.get(f"{{{WSAW}}}Action") != f"/{action}{suffix}":
                    self.fail(action, f"{tag} wsaw:Action is {io_node.get(f'{{{WSAW}}}Action')!r}, "
                                      f"expected '/{action}{suffix}' (OCPP-S §3.4)")
                element = self.message_element(io_node.get("message", ""), f"{action}.{half}")
                node = self.elements[element]
                where = f"{action}.{half}"
                shape = self.type_shape(node.get("type", ""), where, ())
                if not isinstance(shape, dict):
                    self.fail(where, "a body element must be of a complex type")
                entry[half] = (element, shape)
            operations[action] = entry
        self.check_binding(operations)
        return Service(self.name, self.namespace, self.header(), operations,
                       [tuple(p.split(".", 2)) for p in self.simple_content])

    def check_binding(self, operations: dict):
        """Every operation is bound with SOAPAction '/Action', document/literal, with the header."""
        bindings = self.root.findall(f"{{{WSDL}}}binding")
        if len(bindings) != 1:
            self.fail("binding", f"expected one, found {len(bindings)}")
        bound = set()
        for operation in bindings[0].findall(f"{{{WSDL}}}operation"):
            action = operation.get("name")
            soap = operation.find(f"{{{SOAP12}}}operation")
            if soap is None or soap.get("soapAction") != f"/{action}" or soap.get("style") != "document":
                self.fail(action, "binding is not document style with soapAction '/Action'")
            if operation.find(f"{{{WSDL}}}input/{{{SOAP12}}}header") is None:
                self.fail(action, "the request binding has no header")
            bound.add(action)
        if bound != set(operations):
            self.fail("binding", f"operations bound differ from the portType: {sorted(bound ^ set(operations))}")

    def header(self) -> dict:
        header = {}
        for message in self.root.findall(f"{{{WSDL}}}message"):
            if message.get("name") != "Header":
                continue
            for part in message.findall(f"{{{WSDL}}}part"):
                uri, element = self.resolve(part.get("element", ""), "Header")
                if uri != self.namespace or element not in self.elements:
                    self.fail("Header", f"unknown element {part.get('element')!r}")
                header[element] = self.type_shape(self.elements[element].get("type", ""), f"header.{element}", ())
        if not header:
            self.fail("Header", "no header message")
        return header


# --------------------------------------------------------------------------------------------
# Both services of a version -> messages and layout


def load_version(version: str, wsdl_dir: Path = WSDL_DIR):
    dropped: collections.Counter = collections.Counter()
    central, charge_point = (Reader(wsdl_dir / name, dropped).service() for name in WSDLS[version])
    if central.header != charge_point.header:
        raise WSDLError(f"{version}: the two services declare different headers")
    messages, elements, simple_content = {}, {}, []
    for action in sorted(set(central.operations) | set(charge_point.operations)):
        owners = [s for s in (central, charge_point) if action in s.operations]
        entries = [s.operations[action] for s in owners]
        if len(entries) == 2 and entries[0] != entries[1]:
            raise WSDLError(f"{version}: {action} differs between the two services")
        entry = entries[0]
        sent_by = "both" if len(owners) == 2 else ("chargingStation" if owners[0] is central else "csms")
        messages[action] = {"sentBy": sent_by, "request": entry["request"][1], "response": entry["response"][1]}
        elements[action] = [entry["request"][0], entry["response"][0]]
    for service in (central, charge_point):
        for action, half, rest in service.simple_content:
            path = f"{action}.{half}.{rest}"
            if path not in simple_content:
                simple_content.append(path)
    return {
        "messages": messages, "elements": elements, "simpleContent": sorted(simple_content),
        "header": central.header,
        "namespaces": {"centralSystem": central.namespace, "chargePoint": charge_point.namespace},
    }, dropped


# --------------------------------------------------------------------------------------------
# Rendering (the shape emitter of gen_definitions.py)


def source_line(version: str) -> str:
    return f"# Generated by tools/gen_soap_definitions.py from {' and '.join(WSDLS[version])} (Tests/Interop/wsdl/)."


def messages_lines(messages: dict) -> list[str]:
    lines = ["messages:"]
    for action, entry in messages.items():
        lines.append(f"  {scalar_text(action)}:")
        lines.append(f"    sentBy: {entry['sentBy']}")
        for half in ("request", "response"):
            lines += field_lines(half, entry[half], 4, force_block=True)
    return lines


def render_definitions(version: str, data: dict) -> str:
    lines = [
        source_line(version) + " Do not edit by hand.",
        "# The facts of the WSDLs (field names, XML element order, types, required fields, enums, lengths,",
        "# item counts) in ocpp-proxy's notation; see Rules/README.md, \"Definition files\". sentBy is the",
        "# service an operation belongs to (Central System: the charger sends it; Charge Point: the CSMS).",
        f"version: {scalar_text(version)}",
    ]
    return "\n".join(lines + messages_lines(data["messages"])) + "\n"


def render_layout(version: str, data: dict) -> str:
    lines = [
        source_line(version) + " Do not edit by hand.",
        "# How the messages of this version are laid out in a SOAP envelope; see Rules/README.md,",
        "# \"SOAP layout files\". Every operation's wsa:Action and SOAPAction is /Action (answers: /ActionResponse).",
        f"version: {scalar_text(version)}",
    ]
    if version in RULE_DEFINITIONS:
        lines.append(f"definitions: definitions/{version}.yaml")
    lines.append("namespaces:")
    for key, value in data["namespaces"].items():
        lines.append(f"  {key}: {scalar_text(value)}")
    lines.append("header:")
    for key, value in data["header"].items():
        lines += field_lines(key, value, 2)
    lines.append("elements:")
    for action, pair in data["elements"].items():
        lines.append(f"  {scalar_text(action)}: [{', '.join(scalar_text(e) for e in pair)}]")
    if data["simpleContent"]:
        lines.append("simpleContent:")
        lines += [f"  - {scalar_text(path)}" for path in data["simpleContent"]]
    else:
        lines.append("simpleContent: []")
    if version not in RULE_DEFINITIONS:
        lines += messages_lines(data["messages"])
    return "\n".join(lines) + "\n"


def expected_data(version: str, data: dict) -> dict[str, dict]:
    """What PyYAML must read back from each file."""
    messages = {a: {"sentBy": e["sentBy"], "request": plain_data(e["request"]), "response": plain_data(e["response"])}
                for a, e in data["messages"].items()}
    layout = {"version": version}
    if version in RULE_DEFINITIONS:
        layout["definitions"] = f"definitions/{version}.yaml"
    layout.update({
        "namespaces": data["namespaces"],
        "header": {k: plain_data(v) for k, v in data["header"].items()},
        "elements": data["elements"],
        "simpleContent": data["simpleContent"],
    })
    files = {}
    if version in RULE_DEFINITIONS:
        files[f"definitions/{version}.yaml"] = {"version": version, "messages": messages}
    else:
        layout["messages"] = messages
    files[f"soap/{version}.yaml"] = layout
    return files


def generate(version: str, wsdl_dir: Path = WSDL_DIR) -> Generated:
    data, dropped = load_version(version, wsdl_dir)
    files = {}
    if version in RULE_DEFINITIONS:
        files[f"definitions/{version}.yaml"] = render_definitions(version, data)
    files[f"soap/{version}.yaml"] = render_layout(version, data)
    expected = expected_data(version, data)
    for name, text in files.items():
        if yaml.safe_load(io.StringIO(text)) != expected[name]:
            raise WSDLError(f"{name}: the emitted YAML does not read back as what was meant")
    return Generated(version, files, dropped)


def report_dropped(result: Generated, stream=sys.stderr):
    if not result.dropped:
        print(f"{result.version}: no facets dropped", file=stream)
        return
    print(f"{result.version}: facets dropped (the notation cannot say them): "
          + ", ".join(f"{kind}: {count}" for kind, count in sorted(result.dropped.items())), file=stream)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a committed file differs from what would be generated")
    parser.add_argument("--rules", type=Path, default=RULES_DIR,
                        help="the rules directory to write into or check (default: Rules)")
    args = parser.parse_args(argv)

    status = 0
    for version in WSDLS:
        try:
            result = generate(version)
        except WSDLError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        report_dropped(result)
        for name, text in result.files.items():
            if not sync_file(args.rules / name, text, args.check, tool=TOOL):
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
