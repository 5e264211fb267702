"""The brokers' private certificate authority: a directory of files, made with ``cryptography``.

Layout of a CA directory (``init`` makes it 0700; see docs/brokers.md, "PKI")::

    ca.key      the CA's private key (ECDSA P-256, PEM, 0600) — never leaves this directory
    ca.crt      the self-signed CA certificate (public)
    crl.pem     the certificate revocation list, signed by the CA, with a next update
    index.json  every certificate issued: serial, CN, kind, validity, hosts, revoked_at

An issued certificate and its key go to their own output directory (``server.crt`` +
``server.key`` or ``client.crt`` + ``client.key``, and a copy of ``ca.crt``); the CA does
not keep issued keys. Keys are ECDSA P-256: OpenSSL and Mosquitto take it on both sides of
TLS 1.2 and 1.3, where Ed25519 certificates are still refused by many TLS stacks.

Every private key is written by :func:`broker_config.files.write_secret` — 0600, or 0640
for the broker's group, fixed before the first byte is written: never readable by others,
not even briefly.
Nothing here prints or logs key material. This is the only module importing
``cryptography.x509`` for the PKI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker_config import files

__all__ = [
    "CA_DAYS",
    "CLIENT_DAYS",
    "CRL_DAYS",
    "SERVER_DAYS",
    "CertRecord",
    "IssuedFiles",
    "PkiError",
    "init",
    "issue_client",
    "issue_server",
    "listing",
    "parse_serial",
    "refresh_crl",
    "revoke",
]

CA_DAYS = 3650
SERVER_DAYS = 365
CLIENT_DAYS = 365
#: A CRL past its next update makes OpenSSL refuse *every* client certificate on a
#: listener with ``crlfile``: re-sign it (``potr pki crl``) well within this period.
CRL_DAYS = 30

Kind = Literal["ca", "server", "client"]

# A server's name (file names, CN): a host-like label. A client CN is the MQTT username
# the broker derives from it (use_identity_as_username): a gateway id, or a service or
# technician username (``_ingest/au-1``, ``_tech/alice``; never a gateway id).
_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
_CLIENT_CN_RE = re.compile(r"^(?:[a-z0-9][a-z0-9-]{2,63}|_[a-z]+/[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")
_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class PkiError(RuntimeError):
    """A CA operation refused; the message says why (never containing key material)."""


@dataclass(frozen=True)
class CertRecord:
    """One certificate the CA issued (its index entry)."""

    serial: int
    cn: str
    kind: Kind
    not_before: dt.datetime
    not_after: dt.datetime
    hosts: tuple[str, ...] = ()
    revoked_at: dt.datetime | None = None

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "X")

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.not_after else "valid"


@dataclass(frozen=True)
class IssuedFiles:
    """Where an issued certificate, its key and the CA certificate were written."""

    record: CertRecord
    cert_file: Path
    key_file: Path
    ca_file: Path


# --- public operations ---------------------------------------------------------------


def init(
    ca_dir: Path,
    *,
    name: str = "PoTR brokers CA",
    days: int = CA_DAYS,
    crl_days: int = CRL_DAYS,
    now: dt.datetime | None = None,
) -> CertRecord:
    """Make a new CA in ``ca_dir`` (key, self-signed certificate, empty CRL, index).

    Refuses a directory that already holds a CA: a second ``init`` would orphan every
    certificate the first one issued.
    """
    now = _now(now)
    _check_days(days, "CA validity")
    if (ca_dir / "ca.key").exists() or (ca_dir / "ca.crt").exists():
        raise PkiError(f"{ca_dir} already holds a CA; refusing to replace it")
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    with _locked(ca_dir):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(ca_dir / "ca.key", _key_pem(key))
        _write_public(ca_dir / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
        record = _record(cert, "ca")
        _save_index(ca_dir, _Index(records=(record,), crl_number=0))
        _sign_crl(ca_dir, now, crl_days)
    return record


def issue_server(
    ca_dir: Path,
    name: str,
    hosts: Sequence[str],
    out_dir: Path,
    *,
    days: int = SERVER_DAYS,
    key_group: str | None = None,
    now: dt.datetime | None = None,
) -> IssuedFiles:
    """Issue a broker's certificate (CN ``name``, SANs ``hosts``: IP addresses or DNS
    names) into ``out_dir`` as ``server.crt``/``server.key``/``ca.crt``.

    ``key_group``: the key is made 0640 for that group (e.g. ``mosquitto``, which the
    broker runs as once it has dropped root), else 0600 for the caller only.
    """
    if not _SERVER_NAME_RE.match(name):
        raise PkiError(f"server name {name!r} must match {_SERVER_NAME_RE.pattern}")
    if not hosts:
        raise PkiError("a server certificate needs at least one host (IP address or DNS name)")
    sans = [_san(h) for h in hosts]
    return _issue(
        ca_dir,
        name,
        "server",
        out_dir,
        days=days,
        extensions=[
            (x509.SubjectAlternativeName(sans), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
        hosts=tuple(hosts),
        key_group=key_group,
        now=now,
    )


def issue_client(
    ca_dir: Path,
    cn: str,
    out_dir: Path,
    *,
    days: int = CLIENT_DAYS,
    now: dt.datetime | None = None,
) -> IssuedFiles:
    """Issue a client certificate whose CN is the MQTT username (a gateway id) into
    ``out_dir`` as ``client.crt``/``client.key``/``ca.crt``. Several certificates may
    be valid for one CN at once: rotation issues the new one, then revokes the old."""
    if not _CLIENT_CN_RE.match(cn):
        raise PkiError(
            f"client CN {cn!r} must be a gateway id or a service username"
            f" (pattern {_CLIENT_CN_RE.pattern})"
        )
    return _issue(
        ca_dir,
        cn,
        "client",
        out_dir,
        days=days,
        extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        hosts=(),
        key_group=None,
        now=now,
    )


def revoke(
    ca_dir: Path,
    *,
    serial: int | None = None,
    cn: str | None = None,
    crl_days: int = CRL_DAYS,
    now: dt.datetime | None = None,
) -> list[CertRecord]:
    """Revoke one certificate by serial, or every unrevoked one with CN ``cn``; re-sign
    the CRL. Returns the records revoked now. A broker sees it once it has the new
    ``crl.pem`` and reloads (SIGHUP): new connections are refused, live ones stay."""
    if (serial is None) == (cn is None):
        raise PkiError("revoke takes exactly one of a serial or a CN")
    now = _now(now)
    with _locked(ca_dir):
        index = _load_index(ca_dir)
        if serial is not None:
            targets = [r for r in index.records if r.serial == serial and r.kind != "ca"]
            if not targets:
                raise PkiError(f"no issued certificate with serial {serial:X}")
        else:
            targets = [r for r in index.records if r.cn == cn and r.kind != "ca"]
            if not targets:
                raise PkiError(f"no issued certificate with CN {cn!r}")
        fresh = [r for r in targets if r.revoked_at is None]
        if not fresh:
            raise PkiError("already revoked: " + ", ".join(r.serial_hex for r in targets))
        done = {r.serial: replace(r, revoked_at=now) for r in fresh}
        records = tuple(done.get(r.serial, r) for r in index.records)
        _save_index(ca_dir, replace(index, records=records))
        _sign_crl(ca_dir, now, crl_days)
    return list(done.values())


def refresh_crl(
    ca_dir: Path, *, crl_days: int = CRL_DAYS, now: dt.datetime | None = None
) -> dt.datetime:
    """Re-sign the CRL with a new next update (returned); run it well before the old one
    passes, then give brokers the new ``crl.pem`` and reload them."""
    now = _now(now)
    with _locked(ca_dir):
        _load_index(ca_dir)
        return _sign_crl(ca_dir, now, crl_days)


def listing(ca_dir: Path) -> list[CertRecord]:
    """Every certificate the CA issued (itself first), in issue order."""
    return list(_load_index(ca_dir).records)


def parse_serial(text: str) -> int:
    """A serial as ``potr pki list`` prints it (hex, optional ``0x`` or colons)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise PkiError(f"serial {text!r} is not hexadecimal") from None
    if value <= 0:
        raise PkiError(f"serial {text!r} must be positive")
    return value


# --- issuing -------------------------------------------------------------------------

# Certificates start a minute in the past: a peer whose clock lags a little must not
# see a certificate that is "not yet valid".
_BACKDATE = dt.timedelta(minutes=1)


def _issue(
    ca_dir: Path,
    cn: str,
    kind: Kind,
    out_dir: Path,
    *,
    days: int,
    extensions: list[tuple[x509.ExtensionType, bool]],
    hosts: tuple[str, ...],
    key_group: str | None,
    now: dt.datetime | None,
) -> IssuedFiles:
    now = _now(now)
    _check_days(days, f"{kind} validity")
    _check_group(key_group)
    cert_file, key_file, ca_file = (
        out_dir / f"{kind}.crt",
        out_dir / f"{kind}.key",
        out_dir / "ca.crt",
    )
    for path in (cert_file, key_file):
        if path.exists():
            raise PkiError(f"{path} exists; issue into another --out directory")
    with _locked(ca_dir):
        ca_key, ca_cert = _load_ca(ca_dir)
        if now >= ca_cert.not_valid_after_utc:
            raise PkiError(f"the CA in {ca_dir} expired on {ca_cert.not_valid_after_utc:%Y-%m-%d}")
        not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(_authority_key_id(ca_cert), critical=False)
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        cert = builder.sign(ca_key, hashes.SHA256())
        record = replace(_record(cert, kind), hosts=hosts)
        # The index first: the CA must never have signed a certificate it does not list
        # (one whose files then fail to write is listed, and can be revoked).
        index = _load_index(ca_dir)
        _save_index(ca_dir, replace(index, records=(*index.records, record)))
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_private(key_file, _key_pem(key), group=key_group)
        _write_public(cert_file, cert.public_bytes(serialization.Encoding.PEM), exclusive=True)
        _write_public(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    return IssuedFiles(record, cert_file, key_file, ca_file)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise PkiError(f"host {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host.rstrip(".").lower())


def _record(cert: x509.Certificate, kind: Kind) -> CertRecord:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return CertRecord(
        serial=cert.serial_number,
        cn=str(cn),
        kind=kind,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


# --- the CRL -------------------------------------------------------------------------


def _sign_crl(ca_dir: Path, now: dt.datetime, crl_days: int) -> dt.datetime:
    _check_days(crl_days, "CRL validity")
    ca_key, ca_cert = _load_ca(ca_dir)
    index = _load_index(ca_dir)
    number = index.crl_number + 1
    next_update = now + dt.timedelta(days=crl_days)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    for record in index.records:
        if record.revoked_at is not None:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(record.serial)
                .revocation_date(record.revoked_at)
                .build()
            )
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_public(ca_dir / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
    _save_index(ca_dir, replace(index, crl_number=number))
    return next_update


# --- files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    records: tuple[CertRecord, ...]
    crl_number: int


def _load_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key_pem = (ca_dir / "ca.key").read_bytes()
        cert_pem = (ca_dir / "ca.crt").read_bytes()
    except FileNotFoundError:
        raise PkiError(f"no CA in {ca_dir}: run `potr pki init --dir {ca_dir}` first") from None
    except OSError as exc:
        raise PkiError(f"cannot read the CA in {ca_dir}: {exc.strerror}") from None
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{ca_dir / 'ca.key'} is not an EC key")
    return key, x509.load_pem_x509_certificate(cert_pem)


def _load_index(ca_dir: Path) -> _Index:
    path = ca_dir / "index.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PkiError(f"no CA in {ca_dir}: run `potr pki init --dir {ca_dir}` first") from None
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {path}: {exc}") from None
    records = tuple(
        CertRecord(
            serial=int(r["serial"], 16),
            cn=r["cn"],
            kind=r["kind"],
            not_before=dt.datetime.fromisoformat(r["not_before"]),
            not_after=dt.datetime.fromisoformat(r["not_after"]),
            hosts=tuple(r.get("hosts", ())),
            revoked_at=dt.datetime.fromisoformat(r["revoked_at"]) if r["revoked_at"] else None,
        )
        for r in raw["certificates"]
    )
    return _Index(records=records, crl_number=int(raw["crl_number"]))


def _save_index(ca_dir: Path, index: _Index) -> None:
    doc = {
        "crl_number": index.crl_number,
        "certificates": [
            {
                "serial": r.serial_hex,
                "cn": r.cn,
                "kind": r.kind,
                "not_before": r.not_before.isoformat(),
                "not_after": r.not_after.isoformat(),
                "hosts": list(r.hosts),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in index.records
        ],
    }
    _write_public(ca_dir / "index.json", (json.dumps(doc, indent=2) + "\n").encode())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes, *, group: str | None = None) -> None:
    try:
        files.write_secret(path, data, group=group, overwrite=False)
    except files.FileExistsRefused:
        raise PkiError(f"{path} exists; refusing to overwrite a key") from None


def _write_public(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    try:
        files.write_public(path, data, overwrite=not exclusive)
    except files.FileExistsRefused as exc:
        raise PkiError(str(exc)) from None


@contextlib.contextmanager
def _locked(ca_dir: Path) -> Iterator[None]:
    """One CA operation at a time (two concurrent issues would lose an index entry)."""
    if not ca_dir.is_dir():
        raise PkiError(f"no CA in {ca_dir}: run `potr pki init --dir {ca_dir}` first")
    fd = os.open(ca_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_group(group: str | None) -> None:
    if group is not None:
        try:
            files.group_id(group)
        except KeyError as exc:
            raise PkiError(str(exc.args[0])) from None


def _check_days(days: int, what: str) -> None:
    if days < 1:
        raise PkiError(f"{what} must be at least 1 day, got {days}")


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise PkiError("times must be timezone-aware")
    # Certificates carry whole seconds; the index must agree with them.
    return now.astimezone(dt.UTC).replace(microsecond=0)
