"""Helpers for the audit-log interop tests (``test_audit.py``).

The proxy writes its audit log (issue 14; README.md, "Audit log", is the contract) as JSON Lines
segments ``audit-<20-digit first seq>.jsonl`` in ``audit.dir``, with its signing key (``audit-signing.key`` and
``.pub``) beside the directory, in its parent.  This module provides

* ``AuditDir``: one audit directory of a test -- the ``audit:`` section that points a proxy at it, its segments,
  lines and records as they are on disk;
* the ``ocpp-proxy audit`` commands (``verify``, ``query``, ``export``, ``keygen``) and their expected outcomes;
* the record format recomputed from the outside, for forging a log the way an attacker would: what a record's
  ``hash`` covers is its line without the ``hash`` member (the last one), its ``hash`` the SHA-256 of those
  bytes, and a checkpoint's ``root`` the RFC 6962 Merkle root whose leaves are the hashes (32 bytes each) of the
  segment's records before it.  Edits are made on the text;
* the pseudonym the proxy gives a token (``hmac:`` + the first 32 hex digits of HMAC-SHA256(key, token)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import run_cli

PSEUDONYM_KEY = "interop-audit-pseudonym-key-0001"
NODE = "interop-node"
# the leg an inbound frame is forwarded / translated onto
ONWARD = {"charger_to_proxy": "proxy_to_csms", "csms_to_proxy": "proxy_to_charger"}
SUMMARY = re.compile(
    r"^audit log OK: (?P<segments>\d+) segments?, (?P<records>\d+) records? \(seq (?P<first>\d+)–(?P<last>\d+)\), "
    r"(?P<checkpoints>\d+) checkpoints?, last checkpoint (?P<time>\S+); (?P<signatures>.*)$"
)
HASH_MEMBER = re.compile(r',"hash":"([0-9a-f]{64})"')


# ---------------------------------------------------------------------------
# one audit directory
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    path: Path
    number: int  # 1-based
    text: str  # without the newline

    @property
    def record(self) -> dict:
        return json.loads(self.text)

    @property
    def where(self) -> str:
        """How ``audit verify`` names the line: ``FILE:LINE``."""
        return f"{self.path}:{self.number}"


@dataclass(frozen=True)
class AuditDir:
    """``<base>/audit``: the log's directory; the signing key is made beside it (``<base>/audit-signing.key``)."""

    base: Path

    @property
    def path(self) -> Path:
        return self.base / "audit"

    @property
    def signing_key(self) -> Path:
        return self.base / "audit-signing.key"

    @property
    def public_key(self) -> Path:
        return self.base / "audit-signing.key.pub"

    def section(self, **options: Any) -> dict:
        """The ``audit:`` section: this directory, a fixed pseudonym key and node, checkpoints every second."""
        section = {"dir": str(self.path), "pseudonymKey": PSEUDONYM_KEY, "checkpointInterval": "1s", "node": NODE}
        section.update(options)
        return section

    def overrides(self, **options: Any) -> dict:
        return {"audit": self.section(**options)}

    def segments(self) -> list[Path]:
        return sorted(self.path.glob("audit-*.jsonl"))

    def lines(self) -> list[LogLine]:
        """Every complete line of every segment, in log order (a torn last line is left out)."""
        out = []
        for segment in self.segments():
            data = segment.read_bytes().decode("utf-8")
            parts = data.split("\n")
            for number, text in enumerate(parts[:-1], start=1):  # the part after the last "\n" is torn or empty
                out.append(LogLine(segment, number, text))
        return out

    def records(self) -> list[dict]:
        return [line.record for line in self.lines()]

    def key_id(self) -> str:
        return key_id(self.public_key)


def key_id(public_key_file: Path) -> str:
    """What checkpoints carry as ``key``: the first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    header, encoded = public_key_file.read_text().split()
    assert header == "ocpp-proxy-audit-ed25519-public", f"{public_key_file}: {header!r}"
    raw = base64.b64decode(encoded)
    assert len(raw) == 32
    return hashlib.sha256(raw).hexdigest()[:16]


def self_signed_tls(directory: Path) -> dict:
    """A listener ``tls:`` block with a throw-away self-signed certificate for 127.0.0.1 (no CA: for tests that
    need a TLS port, not a trusted one)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "self-signed.crt", directory / "self-signed.key"
    result = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"openssl failed: {result.stderr}"
    return {"certificate": str(cert), "privateKey": str(key)}


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------


def frames(records: list[dict], *, leg: str | None = None, decision: str | None = None,
           action: str | None = None, type: str | None = None, charger: str | None = None) -> list[dict]:
    """The ``frame`` records matching every condition given, in log order."""
    return [
        r for r in records
        if r["event"] == "frame"
        and (leg is None or r["leg"] == leg)
        and (decision is None or r["decision"] == decision)
        and (action is None or r["msg"].get("action") == action)
        and (type is None or r["msg"].get("type") == type)
        and (charger is None or r.get("charger") == charger)
    ]


def events(records: list[dict], name: str) -> list[dict]:
    return [r for r in records if r["event"] == name]


def the_one(records: list[dict], what: str) -> dict:
    assert len(records) == 1, f"expected exactly one record of {what}, got {len(records)}:\n" + "\n".join(
        json.dumps(r) for r in records)
    return records[0]


def received(records: list[dict], leg: str, message_id: str, type: str) -> dict:
    """The one record of a frame as it arrived on ``leg``."""
    return the_one([r for r in frames(records, leg=leg, type=type) if r["msg"].get("id") == message_id],
                   f"a {type} {message_id!r} on {leg}")


def caused_by(records: list[dict], record: dict) -> list[dict]:
    """The outbound frame records whose ``cause`` is ``record`` (its leg and message id)."""
    cause = {"leg": record["leg"], "id": record["msg"]["id"]}
    return [r for r in records if r["event"] == "frame" and r.get("cause") == cause]


def pseudonym(token: str, key: str = PSEUDONYM_KEY) -> str:
    return "hmac:" + hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()[:32]


# ---------------------------------------------------------------------------
# the record format from the outside (for forging)
# ---------------------------------------------------------------------------


def canonical(line: str) -> bytes:
    """What a line's ``hash`` covers: the line without its ``hash`` member."""
    stripped, count = HASH_MEMBER.subn("", line, count=1)
    assert count == 1, f"no hash member in {line[:120]!r}"
    return stripped.encode("utf-8")


def line_hash(line: str) -> str:
    return HASH_MEMBER.search(line).group(1)


def sealed(line: str) -> str:
    """The line with its ``hash`` recomputed from its content."""
    digest = hashlib.sha256(canonical(line)).hexdigest()
    return HASH_MEMBER.sub(f',"hash":"{digest}"', line, count=1)


def replace_member(line: str, name: str, value: str) -> str:
    """The line with the string member ``name`` set to ``value`` (a value of the same character class)."""
    pattern = re.compile(r'"' + re.escape(name) + r'":"[^"]*"')
    new, count = pattern.subn(f'"{name}":"{value}"', line, count=1)
    assert count == 1, f"no member {name!r} in {line[:120]!r}"
    return new


def merkle_root(leaves: list[bytes]) -> str:
    """RFC 6962 Merkle Tree Hash, hex."""

    def mth(items: list[bytes]) -> bytes:
        if not items:
            return hashlib.sha256(b"").digest()
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1
        while k * 2 < len(items):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth(leaves).hex()


def rechain(segment_lines: list[list[str]], start_prev: str) -> list[list[str]]:
    """Segments of lines re-chained the way the writer would: each ``prev`` the hash of the line before, each
    checkpoint's ``head``/``count``/``root`` recomputed over its segment, each ``hash`` resealed.  Signatures are
    left as they are: only they can tell the result from a log the proxy wrote."""
    prev = start_prev
    out = []
    for lines in segment_lines:
        leaves: list[bytes] = []
        new_lines = []
        for line in lines:
            line = replace_member(line, "prev", prev)
            if json.loads(line)["event"] == "checkpoint":
                line = replace_member(line, "head", prev)
                line = replace_member(line, "root", merkle_root(leaves))
                assert json.loads(line)["count"] == len(leaves)
            line = sealed(line)
            leaves.append(bytes.fromhex(line_hash(line)))
            prev = line_hash(line)
            new_lines.append(line)
        out.append(new_lines)
    return out


# ---------------------------------------------------------------------------
# ``ocpp-proxy audit``
# ---------------------------------------------------------------------------


def audit_cli(binary: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(binary, "audit", *args)


def verify(binary: Path, directory: Path, public_key: Path | None = None) -> subprocess.CompletedProcess:
    args = ["verify", "--dir", str(directory)]
    if public_key is not None:
        args += ["--public-key", str(public_key)]
    return audit_cli(binary, *args)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit status {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def assert_verified(result: subprocess.CompletedProcess) -> re.Match:
    """``audit verify`` passed: exit 0 and its one-line summary; returns the summary's fields."""
    assert result.returncode == 0, f"audit verify failed: {describe(result)}"
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"expected a one-line summary: {describe(result)}"
    summary = SUMMARY.match(lines[0])
    assert summary, f"unexpected summary line {lines[0]!r}"
    return summary


def assert_broken_at(result: subprocess.CompletedProcess, where: str, why: str | None = None) -> str:
    """``audit verify`` failed with exit 1 naming ``FILE:LINE`` (and, if given, a reason matching ``why``)."""
    assert result.returncode == 1, f"audit verify should fail at {where}: {describe(result)}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, f"expected one error line: {describe(result)}"
    prefix = f"error: audit log broken: {where}: "
    assert errors[0].startswith(prefix), f"expected the error at {where}, got {errors[0]!r}"
    reason = errors[0][len(prefix):]
    if why is not None:
        assert re.search(why, reason, re.IGNORECASE), f"reason {reason!r} does not match {why!r}"
    return reason


def query(binary: Path, directory: Path, *filters: str) -> list[str]:
    """``audit query`` output lines (exit 0, nothing on stderr)."""
    result = audit_cli(binary, "query", "--dir", str(directory), *filters)
    assert result.returncode == 0 and not result.stderr, f"audit query {' '.join(filters)}: {describe(result)}"
    return result.stdout.splitlines()


def export(binary: Path, directory: Path, fmt: str, *filters: str) -> list[str]:
    result = audit_cli(binary, "export", "--dir", str(directory), "--format", fmt, *filters)
    assert result.returncode == 0 and not result.stderr, f"audit export --format {fmt}: {describe(result)}"
    return result.stdout.splitlines()
