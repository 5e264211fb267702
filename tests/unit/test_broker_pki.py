"""The brokers' private CA (``broker_config.pki``): files, permissions, certificates, CRL.

Certificates are checked with ``cryptography`` directly (signature, extensions), and the
expected dates are computed here from a fixed ``now``.
"""

from __future__ import annotations

import datetime as dt
import grp
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker_config import pki

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    pki.init(directory, now=NOW)
    return directory


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _crl(ca: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_init_makes_a_private_ca_directory_with_its_key_0600(ca: Path) -> None:
    assert _mode(ca) == 0o700
    assert _mode(ca / "ca.key") == 0o600
    assert _mode(ca / "ca.crt") == 0o644
    cert = _cert(ca / "ca.crt")
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _signed_by(cert, cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)


def test_init_writes_an_empty_crl_signed_by_the_ca_with_a_next_update(ca: Path) -> None:
    crl = _crl(ca)
    assert len(crl) == 0
    assert crl.is_signature_valid(_cert(ca / "ca.crt").public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc == NOW + dt.timedelta(days=30)


def test_a_second_init_over_an_existing_ca_is_refused(ca: Path) -> None:
    before = (ca / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match="already holds a CA"):
        pki.init(ca)
    assert (ca / "ca.key").read_bytes() == before


def test_a_server_certificate_names_its_hosts_and_serves_tls(ca: Path, tmp_path: Path) -> None:
    hosts = ["10.0.0.5", "mqtt.au.example"]
    issued = pki.issue_server(ca, "broker-au", hosts, tmp_path / "s", now=NOW)
    cert = _cert(issued.cert_file)
    assert _signed_by(cert, _cert(ca / "ca.crt"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "broker-au"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.au.example"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc == dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)  # 365 days
    assert _mode(issued.key_file) == 0o600
    assert issued.ca_file.read_bytes() == (ca / "ca.crt").read_bytes()


def test_validity_is_a_parameter(ca: Path, tmp_path: Path) -> None:
    issued = pki.issue_client(ca, "gw-au-0001", tmp_path / "c", days=10, now=NOW)
    cert = _cert(issued.cert_file)
    assert cert.not_valid_after_utc == dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)
    # a minute back: a peer whose clock lags a little still accepts it
    assert cert.not_valid_before_utc == dt.datetime(2026, 3, 1, 11, 59, tzinfo=dt.UTC)
    assert issued.record.not_after == cert.not_valid_after_utc


def test_a_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    pki.init(ca, days=30, now=NOW)
    issued = pki.issue_client(ca, "gw-au-0001", tmp_path / "c", days=365, now=NOW)
    assert _cert(issued.cert_file).not_valid_after_utc == NOW + dt.timedelta(days=30)


def test_a_server_key_for_the_broker_group_is_0640_and_that_group(ca: Path, tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name  # a group we may give a file to
    issued = pki.issue_server(ca, "broker", ["127.0.0.1"], tmp_path / "s", key_group=group)
    assert _mode(issued.key_file) == 0o640
    assert issued.key_file.stat().st_gid == os.getgid()


def test_a_client_certificate_carries_the_gateway_id_as_cn(ca: Path, tmp_path: Path) -> None:
    issued = pki.issue_client(ca, "gw-au-0001", tmp_path / "c")
    cert = _cert(issued.cert_file)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-au-0001"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _mode(issued.key_file) == 0o600
    assert (issued.cert_file.name, issued.key_file.name) == ("client.crt", "client.key")


def test_two_certificates_of_one_cn_are_valid_at_once(ca: Path, tmp_path: Path) -> None:
    old = pki.issue_client(ca, "gw-au-0001", tmp_path / "old")
    new = pki.issue_client(ca, "gw-au-0001", tmp_path / "new")
    assert old.record.serial != new.record.serial
    listed = [r for r in pki.listing(ca) if r.cn == "gw-au-0001"]
    assert [r.serial for r in listed] == [old.record.serial, new.record.serial]
    assert all(r.status(NOW) == "valid" for r in listed)


def test_revoking_by_serial_lists_only_that_certificate(ca: Path, tmp_path: Path) -> None:
    old = pki.issue_client(ca, "gw-au-0001", tmp_path / "old")
    new = pki.issue_client(ca, "gw-au-0001", tmp_path / "new")
    later = NOW + dt.timedelta(days=1)
    done = pki.revoke(ca, serial=old.record.serial, now=later)
    assert [r.serial for r in done] == [old.record.serial]
    crl = _crl(ca)
    assert [r.serial_number for r in crl] == [old.record.serial]
    assert crl.get_revoked_certificate_by_serial_number(new.record.serial) is None
    assert crl.next_update_utc == later + dt.timedelta(days=30)
    by_serial = {r.serial: r for r in pki.listing(ca)}
    assert by_serial[old.record.serial].revoked_at == later
    assert by_serial[new.record.serial].revoked_at is None


def test_revoking_by_cn_revokes_every_certificate_of_it(ca: Path, tmp_path: Path) -> None:
    a = pki.issue_client(ca, "gw-au-0001", tmp_path / "a")
    b = pki.issue_client(ca, "gw-au-0001", tmp_path / "b")
    other = pki.issue_client(ca, "gw-au-0002", tmp_path / "o")
    pki.revoke(ca, cn="gw-au-0001")
    assert {r.serial_number for r in _crl(ca)} == {a.record.serial, b.record.serial}
    assert other.record.serial not in {r.serial_number for r in _crl(ca)}


def test_each_crl_carries_a_higher_number(ca: Path, tmp_path: Path) -> None:
    first = _crl(ca).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    pki.issue_client(ca, "gw-au-0001", tmp_path / "a")
    pki.revoke(ca, cn="gw-au-0001")
    after = _crl(ca).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert after == first + 1


def test_refreshing_the_crl_moves_its_next_update(ca: Path) -> None:
    later = NOW + dt.timedelta(days=20)
    until = pki.refresh_crl(ca, crl_days=7, now=later)
    assert until == later + dt.timedelta(days=7)
    assert _crl(ca).next_update_utc == until


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"serial": 12345}, "no issued certificate with serial 3039"),
        ({"cn": "gw-nobody"}, "no issued certificate with CN"),
        ({}, "exactly one"),
    ],
)
def test_revoking_the_unknown_is_refused(ca: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(pki.PkiError, match=message):
        pki.revoke(ca, **kwargs)  # type: ignore[arg-type]


def test_revoking_twice_is_refused(ca: Path, tmp_path: Path) -> None:
    pki.issue_client(ca, "gw-au-0001", tmp_path / "a")
    pki.revoke(ca, cn="gw-au-0001")
    with pytest.raises(pki.PkiError, match="already revoked"):
        pki.revoke(ca, cn="gw-au-0001")


def test_the_ca_itself_cannot_be_revoked(ca: Path) -> None:
    own = pki.listing(ca)[0]
    assert own.kind == "ca"
    with pytest.raises(pki.PkiError, match="no issued certificate"):
        pki.revoke(ca, serial=own.serial)


@pytest.mark.parametrize("cn", ["GW-AU", "gw au", "../gw", "x", "gw-au-0001/../../etc", "_ingest"])
def test_bad_client_names_are_refused(ca: Path, tmp_path: Path, cn: str) -> None:
    with pytest.raises(pki.PkiError, match="client CN"):
        pki.issue_client(ca, cn, tmp_path / "c")


def test_service_usernames_may_hold_certificates(ca: Path, tmp_path: Path) -> None:
    issued = pki.issue_client(ca, "_ingest/au-1", tmp_path / "c")
    assert issued.record.cn == "_ingest/au-1"


@pytest.mark.parametrize(
    ("name", "hosts", "message"),
    [
        ("broker au", ["127.0.0.1"], "server name"),
        ("broker", [], "at least one host"),
        ("broker", ["not a host!"], "neither an IP address nor a DNS name"),
    ],
)
def test_bad_server_requests_are_refused(
    ca: Path, tmp_path: Path, name: str, hosts: list[str], message: str
) -> None:
    with pytest.raises(pki.PkiError, match=message):
        pki.issue_server(ca, name, hosts, tmp_path / "s")


def test_issuing_over_existing_files_is_refused(ca: Path, tmp_path: Path) -> None:
    first = pki.issue_client(ca, "gw-au-0001", tmp_path / "c")
    key = first.key_file.read_bytes()
    with pytest.raises(pki.PkiError, match="exists"):
        pki.issue_client(ca, "gw-au-0001", tmp_path / "c")
    assert first.key_file.read_bytes() == key


def test_without_a_ca_every_operation_says_to_run_init(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    with pytest.raises(pki.PkiError, match="pki init"):
        pki.issue_client(missing, "gw-au-0001", tmp_path / "c")
    with pytest.raises(pki.PkiError, match="pki init"):
        pki.listing(missing)
    with pytest.raises(pki.PkiError, match="pki init"):
        pki.revoke(missing, cn="gw-au-0001")


def test_an_expired_ca_issues_nothing(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    pki.init(ca, days=1, now=NOW)
    with pytest.raises(pki.PkiError, match="expired"):
        pki.issue_client(ca, "gw-au-0001", tmp_path / "c", now=NOW + dt.timedelta(days=2))


@pytest.mark.parametrize("text", ["7F", "0x7f", "7f", "00:7F"])
def test_serials_are_read_as_printed(text: str) -> None:
    assert pki.parse_serial(text) == 127


def test_a_serial_that_is_not_hex_is_refused() -> None:
    with pytest.raises(pki.PkiError, match="not hexadecimal"):
        pki.parse_serial("xyz")
