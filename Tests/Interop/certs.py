"""A throw-away PKI for the security interop tests, made with the ``openssl`` command line.

The session-scoped ``pki`` fixture builds, once per test run, in a temporary
directory:

* charger side (the proxy is the TLS server):
  - ``ca``: the test CA (RSA 2048, ``O=Test CPO``) that signs the listener's
    server certificate and the chargers' client certificates; it is run with
    ``openssl ca`` so that it keeps an index and can revoke and issue a CRL;
  - ``other_ca``: an unrelated CA (signs a client certificate ``CN=CP3``);
  - ``server``: ``127.0.0.1`` / ``localhost`` (SAN IP + DNS), signed by ``ca``;
  - client certificates ``O=Test CPO, CN=<identity>``: ``CP3`` (valid),
    ``CP3-EXPIRED`` (validity 2020-2021), ``CP3-REVOKED`` (valid, revoked in
    ``ca.crl``), ``CP3-WRONGORG`` (``O=Other CPO``), ``CP3-OTHERCA`` (``CN=CP3``
    signed by ``other_ca``), ``CP4`` (valid, a second identity);
  - ``ca.crl`` (PEM) and ``ca.crl.der`` (DER), listing ``CP3-REVOKED``;
* CSMS side (the proxy is the TLS client):
  - ``csms_ca``: the "CSMS CA";
  - ``csms_server``: ``127.0.0.1`` / ``localhost``, signed by ``csms_ca``;
  - ``csms_bad``: the same names, signed by the unrelated ``rogue_ca``;
  - ``csms_wronghost``: signed by ``csms_ca`` but only for ``csms.example``;
  - ``proxy_client``: ``CN=ocpp-proxy``, signed by ``csms_ca`` (mutual TLS).

It also provides ``ssl`` context builders for the Python peers.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CPO_NAME = "Test CPO"
OTHER_CPO_NAME = "Other CPO"

# the TLS 1.2 suites a charger with RSA keys offers under OCPP (A00.FR.317/318):
# TLS_RSA_WITH_AES_128_GCM_SHA256 and TLS_RSA_WITH_AES_256_GCM_SHA384
OCPP_TLS12_RSA_SUITES = "AES128-GCM-SHA256:AES256-GCM-SHA384"

# identities of the client certificates issued by the test CA
CLIENT_IDENTITIES = ("CP3", "CP3-EXPIRED", "CP3-REVOKED", "CP3-WRONGORG", "CP4")


class PkiError(RuntimeError):
    pass


def _openssl() -> str:
    path = shutil.which("openssl") or ("/usr/bin/openssl" if Path("/usr/bin/openssl").exists() else None)
    if path is None:
        raise PkiError(
            "the `openssl` command line tool is needed to generate the test certificates "
            "(install it, e.g. `apt-get install openssl`)"
        )
    return path


def _run(*args: str, cwd: Path) -> str:
    cmd = [_openssl(), *args]
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise PkiError(f"openssl failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class KeyPair:
    """A certificate (PEM) and its private key (PEM, PKCS#8)."""

    cert: Path
    key: Path

    @property
    def cert_pem(self) -> str:
        return self.cert.read_text()

    @property
    def key_pem(self) -> str:
        return self.key.read_text()


@dataclass
class Pki:
    dir: Path
    ca: KeyPair
    other_ca: KeyPair
    server: KeyPair
    server_chain: Path  # server leaf first, then the CA
    intermediate: KeyPair  # an intermediate CA below ``ca``
    server_leaf_only: KeyPair  # server cert signed by ``intermediate`` (file holds the leaf only)
    server_intermediate_chain: Path  # that leaf first, then ``intermediate``
    clients: dict[str, KeyPair]
    crl_pem: Path
    crl_der: Path
    csms_ca: KeyPair
    rogue_ca: KeyPair
    csms_server: KeyPair
    csms_bad: KeyPair
    csms_wronghost: KeyPair
    proxy_client: KeyPair
    serials: dict[str, str] = field(default_factory=dict)

    def client(self, name: str) -> KeyPair:
        return self.clients[name]

    def all_private_keys(self) -> list[Path]:
        pairs = [self.ca, self.other_ca, self.server, self.intermediate, self.server_leaf_only, self.csms_ca,
                 self.rogue_ca, self.csms_server, self.csms_bad, self.csms_wronghost, self.proxy_client,
                 *self.clients.values()]
        return [p.key for p in pairs]

    # -- ssl contexts for the Python peers ------------------------------------------------
    def charger_context(
        self,
        client: str | None = None,
        *,
        trust: Path | None = None,
        tls_version: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> ssl.SSLContext:
        """A charger's TLS client context: trusts the test CA, optionally presents a client cert.

        ``tls_version`` pins both the minimum and maximum protocol version;
        ``ciphers`` (OpenSSL syntax) replaces Python's default TLS 1.2 suites.
        """
        ctx = ssl.create_default_context(cafile=str(trust or self.ca.cert))
        if tls_version is not None:
            ctx.minimum_version = tls_version
            ctx.maximum_version = tls_version
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        if client is not None:
            pair = self.clients[client]
            ctx.load_cert_chain(str(pair.cert), str(pair.key))
        return ctx

    def legacy_charger_context(
        self, client: str | None = None, ciphers: str = "DEFAULT:@SECLEVEL=0"
    ) -> ssl.SSLContext:
        """A charger limited to TLS 1.0/1.1 (and therefore to CBC suites such as AES128-SHA)."""
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers(ciphers)
        if client is not None:
            pair = self.clients[client]
            ctx.load_cert_chain(str(pair.cert), str(pair.key))
        return ctx

    def csms_context(self, which: str = "good", *, require_client_cert: bool = False) -> ssl.SSLContext:
        """The CSMS's TLS server context: ``good`` / ``bad`` (unrelated CA) / ``wronghost``."""
        pair = {"good": self.csms_server, "bad": self.csms_bad, "wronghost": self.csms_wronghost}[which]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=str(self.csms_ca.cert))
        return ctx


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------

CA_CONFIG = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir               = {dir}
database          = $dir/index.txt
new_certs_dir     = $dir/newcerts
certificate       = $dir/ca.pem
private_key       = $dir/ca.key
serial            = $dir/serial
crlnumber         = $dir/crlnumber
default_md        = sha256
default_days      = 365
default_crl_days  = 30
policy            = policy_any
unique_subject    = no
email_in_dn       = no
copy_extensions   = none

[ policy_any ]
organizationName  = optional
commonName        = supplied

[ client_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer

[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName         = IP:127.0.0.1, DNS:localhost

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""

SERVER_EXT = """\
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName         = {san}
"""

INTERMEDIATE_EXT = """\
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
"""

CLIENT_EXT = """\
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
"""


def _make_ca(d: Path, name: str, subject: str) -> KeyPair:
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    _run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
        "-keyout", str(key), "-out", str(cert), "-subj", subject,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=d,
    )
    return KeyPair(cert, key)


def _make_csr(d: Path, name: str, subject: str) -> tuple[Path, Path]:
    key, csr = d / f"{name}.key", d / f"{name}.csr"
    _run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", str(key), "-out", str(csr),
         "-subj", subject, cwd=d)
    return key, csr


def _sign_with_x509(d: Path, name: str, subject: str, ca: KeyPair, ext_text: str, days: int = 365) -> KeyPair:
    """Sign with ``openssl x509 -req`` (for the CAs that keep no database)."""
    key, csr = _make_csr(d, name, subject)
    ext = d / f"{name}.ext"
    ext.write_text(ext_text)
    cert = d / f"{name}.pem"
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
         "-sha256", "-days", str(days), "-extfile", str(ext), "-out", str(cert), cwd=d)
    return KeyPair(cert, key)


def _sign_with_ca(d: Path, cnf: Path, name: str, subject: str, extensions: str,
                  start: str | None = None, end: str | None = None) -> KeyPair:
    """Sign with ``openssl ca`` (the test CA: keeps an index so it can revoke)."""
    key, csr = _make_csr(d, name, subject)
    cert = d / f"{name}.pem"
    args = ["ca", "-batch", "-config", str(cnf), "-preserveDN", "-notext", "-extensions", extensions,
            "-in", str(csr), "-out", str(cert)]
    if start:
        args += ["-startdate", start]
    if end:
        args += ["-enddate", end]
    else:
        args += ["-days", "365"]
    _run(*args, cwd=d)
    return KeyPair(cert, key)


def serial_of(cert: Path) -> str:
    out = _run("x509", "-in", str(cert), "-noout", "-serial", cwd=cert.parent)
    return out.strip().split("=", 1)[1].upper()


def is_expired(cert: Path) -> bool:
    result = subprocess.run([_openssl(), "x509", "-in", str(cert), "-noout", "-checkend", "0"],
                            capture_output=True, text=True, timeout=30)
    return result.returncode != 0


def build_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    (d / "newcerts").mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "crlnumber").write_text("1000\n")
    cnf = d / "ca.cnf"
    cnf.write_text(CA_CONFIG.format(dir=str(d)))

    # charger side
    ca = _make_ca(d, "ca", f"/O={CPO_NAME}/CN=Test Root CA")
    other_ca = _make_ca(d, "other-ca", "/O=Somebody Else/CN=Unrelated Root CA")
    server = _sign_with_ca(d, cnf, "server", f"/O={CPO_NAME}/CN=127.0.0.1", "server_ext")
    server_chain = d / "server-chain.pem"
    server_chain.write_text(server.cert_pem + ca.cert_pem)

    intermediate = _sign_with_x509(d, "intermediate-ca", f"/O={CPO_NAME}/CN=Test Intermediate CA", ca,
                                   INTERMEDIATE_EXT, days=1825)
    server_leaf_only = _sign_with_x509(d, "server-via-intermediate", f"/O={CPO_NAME}/CN=127.0.0.1", intermediate,
                                       SERVER_EXT.format(san="IP:127.0.0.1, DNS:localhost"))
    server_intermediate_chain = d / "server-via-intermediate-chain.pem"
    server_intermediate_chain.write_text(server_leaf_only.cert_pem + intermediate.cert_pem)

    clients: dict[str, KeyPair] = {}
    clients["CP3"] = _sign_with_ca(d, cnf, "client-CP3", f"/O={CPO_NAME}/CN=CP3", "client_ext")
    clients["CP4"] = _sign_with_ca(d, cnf, "client-CP4", f"/O={CPO_NAME}/CN=CP4", "client_ext")
    clients["CP3-EXPIRED"] = _sign_with_ca(
        d, cnf, "client-CP3-EXPIRED", f"/O={CPO_NAME}/CN=CP3-EXPIRED", "client_ext",
        start="20200101000000Z", end="20210101000000Z",
    )
    clients["CP3-REVOKED"] = _sign_with_ca(d, cnf, "client-CP3-REVOKED", f"/O={CPO_NAME}/CN=CP3-REVOKED",
                                           "client_ext")
    clients["CP3-WRONGORG"] = _sign_with_ca(d, cnf, "client-CP3-WRONGORG",
                                            f"/O={OTHER_CPO_NAME}/CN=CP3-WRONGORG", "client_ext")
    clients["CP3-OTHERCA"] = _sign_with_x509(d, "client-CP3-OTHERCA", f"/O={CPO_NAME}/CN=CP3", other_ca,
                                             CLIENT_EXT)

    _run("ca", "-batch", "-config", str(cnf), "-revoke", str(clients["CP3-REVOKED"].cert),
         "-crl_reason", "keyCompromise", cwd=d)
    crl_pem = d / "ca.crl"
    _run("ca", "-batch", "-config", str(cnf), "-gencrl", "-crlexts", "crl_ext", "-out", str(crl_pem), cwd=d)
    crl_der = d / "ca.crl.der"
    _run("crl", "-in", str(crl_pem), "-outform", "DER", "-out", str(crl_der), cwd=d)

    # CSMS side
    csms_ca = _make_ca(d, "csms-ca", "/O=Test CSMS Operator/CN=CSMS Root CA")
    rogue_ca = _make_ca(d, "rogue-ca", "/O=Rogue/CN=Rogue Root CA")
    san = "IP:127.0.0.1, DNS:localhost"
    csms_server = _sign_with_x509(d, "csms-server", "/O=Test CSMS Operator/CN=127.0.0.1", csms_ca,
                                  SERVER_EXT.format(san=san))
    csms_bad = _sign_with_x509(d, "csms-bad", "/O=Rogue/CN=127.0.0.1", rogue_ca, SERVER_EXT.format(san=san))
    csms_wronghost = _sign_with_x509(d, "csms-wronghost", "/O=Test CSMS Operator/CN=csms.example", csms_ca,
                                     SERVER_EXT.format(san="DNS:csms.example"))
    proxy_client = _sign_with_x509(d, "proxy-client", "/O=Test CPO/CN=ocpp-proxy", csms_ca, CLIENT_EXT)

    pki = Pki(
        dir=d, ca=ca, other_ca=other_ca, server=server, server_chain=server_chain, intermediate=intermediate,
        server_leaf_only=server_leaf_only, server_intermediate_chain=server_intermediate_chain, clients=clients,
        crl_pem=crl_pem, crl_der=crl_der, csms_ca=csms_ca, rogue_ca=rogue_ca, csms_server=csms_server,
        csms_bad=csms_bad, csms_wronghost=csms_wronghost, proxy_client=proxy_client,
    )
    pki.serials = {name: serial_of(pair.cert) for name, pair in clients.items()}
    _self_check(pki)
    return pki


def _self_check(pki: Pki) -> None:
    """The PKI must really be what the tests assume, or every test result would be meaningless."""
    d = pki.dir

    def verify(cert: Path, ca: Path, *extra: str) -> bool:
        r = subprocess.run([_openssl(), "verify", "-CAfile", str(ca), *extra, str(cert)],
                           capture_output=True, text=True, timeout=30, cwd=d)
        return r.returncode == 0

    if not is_expired(pki.clients["CP3-EXPIRED"].cert):
        raise PkiError("CP3-EXPIRED is not expired")
    for name in ("CP3", "CP4", "CP3-REVOKED", "CP3-WRONGORG"):
        if is_expired(pki.clients[name].cert) or not verify(pki.clients[name].cert, pki.ca.cert):
            raise PkiError(f"client certificate {name} does not verify against the test CA")
    if verify(pki.clients["CP3-OTHERCA"].cert, pki.ca.cert):
        raise PkiError("CP3-OTHERCA verifies against the test CA")
    if verify(pki.clients["CP3-EXPIRED"].cert, pki.ca.cert):
        raise PkiError("CP3-EXPIRED verifies against the test CA")
    # the CRL must list CP3-REVOKED and only it
    crl_text = _run("crl", "-in", str(pki.crl_pem), "-noout", "-text", cwd=d)
    listed = {m.upper() for m in re.findall(r"Serial Number:\s*([0-9A-Fa-f]+)", crl_text)}
    if listed != {pki.serials["CP3-REVOKED"]}:
        raise PkiError(f"the CRL should list exactly CP3-REVOKED ({pki.serials['CP3-REVOKED']}), lists {listed}")
    crl_check = ("-crl_check", "-CRLfile", str(pki.crl_pem))
    if verify(pki.clients["CP3-REVOKED"].cert, pki.ca.cert, *crl_check):
        raise PkiError("CP3-REVOKED verifies against the test CA with the CRL")
    if not verify(pki.clients["CP3"].cert, pki.ca.cert, *crl_check):
        raise PkiError("CP3 does not verify against the test CA with the CRL")
    if not verify(pki.server.cert, pki.ca.cert):
        raise PkiError("the listener server certificate does not verify")
    if verify(pki.server_leaf_only.cert, pki.ca.cert):
        raise PkiError("the intermediate-signed server leaf verifies without its intermediate")
    if not verify(pki.server_leaf_only.cert, pki.ca.cert, "-untrusted", str(pki.intermediate.cert)):
        raise PkiError("the intermediate-signed server leaf does not verify with its intermediate")
    if not verify(pki.csms_server.cert, pki.csms_ca.cert) or verify(pki.csms_bad.cert, pki.csms_ca.cert):
        raise PkiError("CSMS certificates are not as intended")
    if not verify(pki.proxy_client.cert, pki.csms_ca.cert):
        raise PkiError("the proxy client certificate does not verify against the CSMS CA")
    subject = _run("x509", "-in", str(pki.clients["CP3"].cert), "-noout", "-subject", "-nameopt", "RFC2253",
                   cwd=d).strip()
    if subject != f"subject=CN=CP3,O={CPO_NAME}":
        raise PkiError(f"unexpected CP3 subject: {subject}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    try:
        return build_pki(tmp_path_factory.mktemp("pki"))
    except PkiError as exc:
        pytest.fail(f"could not build the test PKI: {exc}", pytrace=False)
