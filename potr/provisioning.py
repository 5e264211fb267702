"""Provision, revoke and rotate broker identities: the registry's records, the CA's
certificates and the region's broker files, kept in step (issue 12).

The registry holds who may connect (hashes only); the CA directory holds certificates and
the CRL; the broker directory holds what Mosquitto reads (``passwd``, ``acl``,
``crl.pem``) next to the config ``potr broker render`` wrote. Every change here rewrites
the broker's auth files from the registry (never edits them) and reloads the broker
(SIGHUP via its pid file), which is how a revocation takes effect within 2 seconds.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from broker_config import pki
from broker_config.acl import render_acl
from broker_config.files import write_public, write_secret
from broker_config.passwords import amqtt_hash, mosquitto_hash, new_secret, render_password_file
from cloud.registry import BrokerIdentities, BrokerIdentityRecord, GatewayIn, RegistryService
from cloud.registry.service import ConflictError, NotFoundError
from contracts.identities import BrokerIdentity, IdentityError, IdentityKind, username_for
from contracts.topics import GATEWAY_ID_RE, RETAINED, Region, topic
from potr.servers.mosquitto import broker_group

log = logging.getLogger(__name__)

Credential = Literal["password", "certificate"]

#: Files of a broker directory that provisioning rewrites (the config is render's).
PASSWORD_FILE = "passwd"
AMQTT_PASSWORD_FILE = "passwd.amqtt"
ACL_FILE = "acl"
CRL_FILE = "crl.pem"
PID_FILE = "run/mosquitto.pid"
ADMIN_SECRET_FILE = "admin.secret"


class ProvisioningError(RuntimeError):
    """A provisioning step refused; the message says what to fix."""


@dataclass(frozen=True)
class BrokerPlace:
    """One region's broker as this host manages it."""

    region: Region
    broker_dir: Path
    pki_dir: Path
    #: How gateways reach it: the password listener and the certificate listener.
    url: str
    cert_url: str

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"


@dataclass(frozen=True)
class Provisioned:
    """What was written for one identity (paths only: the secret stays in the files)."""

    username: str
    credential: Credential
    settings_file: Path | None
    files: tuple[Path, ...]
    reloaded: bool


# -- the broker's auth files ----------------------------------------------------------


def auth_files(region: Region, records: list[BrokerIdentityRecord]) -> dict[str, str]:
    """The password files (Mosquitto, amqtt) and ACL of ``region`` from its records."""
    live_pw = [r for r in records if r.credential == "password" and not r.revoked]
    acl_ids = [
        BrokerIdentity(r.username, r.region, blocked=r.revoked and r.credential == "certificate")
        for r in records
    ]
    return {
        PASSWORD_FILE: render_password_file({r.username: str(r.mosquitto_hash) for r in live_pw}),
        AMQTT_PASSWORD_FILE: render_password_file({r.username: str(r.amqtt_hash) for r in live_pw}),
        ACL_FILE: render_acl([region], acl_ids),
    }


def sync_broker(identities: BrokerIdentities, place: BrokerPlace) -> bool:
    """Rewrite the broker's auth files and CRL from the registry and the CA, then reload
    it; False when no broker runs from that directory (the files are ready for it)."""
    place.broker_dir.mkdir(parents=True, exist_ok=True)
    for name, text in auth_files(place.region, identities.for_region(place.region)).items():
        write_secret(place.broker_dir / name, text.encode(), group=broker_group(), overwrite=True)
    crl = place.pki_dir / CRL_FILE
    if crl.exists():
        write_public(place.broker_dir / CRL_FILE, crl.read_bytes())
    return reload_broker(place.broker_dir)


def reload_broker(broker_dir: Path) -> bool:
    """SIGHUP the Mosquitto whose pid file is in ``broker_dir``: it rereads its password
    file, ACL and CRL, disconnects users no longer in the password file (or whose
    password changed) at once and applies the ACL to live sessions. False when none runs
    there — a stale pid file naming another process (or none) included, so "reloaded"
    is never claimed for a signal that went nowhere."""
    try:
        pid = int((broker_dir / PID_FILE).read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return False
    if comm != "mosquitto":
        log.warning("%s names pid %d (%s), not mosquitto: not reloaded", PID_FILE, pid, comm)
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return False
    return True


# -- gateways -------------------------------------------------------------------------


def provision_gateway(
    registry: RegistryService,
    identities: BrokerIdentities,
    place: BrokerPlace,
    *,
    gateway_id: str,
    site_id: int,
    credential: Credential,
    out_dir: Path,
    install_dir: Path | None = None,
) -> Provisioned:
    """Register ``gateway_id`` under ``site_id``, create its credential and write the
    agent's bundle into ``out_dir`` (settings naming files under ``install_dir``, where
    the bundle will be copied on the gateway; default ``out_dir`` itself)."""
    if not GATEWAY_ID_RE.match(gateway_id):
        raise ProvisioningError(
            f"gateway id {gateway_id!r} must match {GATEWAY_ID_RE.pattern}"
            " (lower-case letters, digits and '-', 3 to 64 characters)"
        )
    site = registry.get_site(site_id)
    if site is None:
        raise ProvisioningError(f"site {site_id} does not exist")
    if site.region != place.region:
        raise ProvisioningError(
            f"site {site_id} is in region {site.region.value}, not {place.region.value}"
        )
    if identities.get(gateway_id) is not None or registry.get_gateway(gateway_id) is not None:
        raise ProvisioningError(f"gateway {gateway_id!r} already exists")
    try:
        registry.add_gateway(GatewayIn(id=gateway_id, site_id=site_id))
    except (ConflictError, NotFoundError) as exc:
        raise ProvisioningError(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = _credential_bundle(identities, place, gateway_id, credential, out_dir)
    settings = _agent_settings(place, gateway_id, credential, install_dir or out_dir)
    settings_file = out_dir / "agent.yaml"
    write_secret(settings_file, yaml.safe_dump(settings, sort_keys=False).encode())
    reloaded = sync_broker(identities, place)
    log.info("gateway %s provisioned (%s) in %s", gateway_id, credential, place.region.value)
    return Provisioned(gateway_id, credential, settings_file, (settings_file, *bundle), reloaded)


def _credential_bundle(
    identities: BrokerIdentities,
    place: BrokerPlace,
    username: str,
    credential: Credential,
    out_dir: Path,
) -> tuple[Path, ...]:
    write_public(out_dir / "ca.crt", place.ca_file.read_bytes())
    if credential == "certificate":
        try:
            issued = pki.issue_client(place.pki_dir, username, out_dir)
        except pki.PkiError as exc:
            raise ProvisioningError(str(exc)) from None
        identities.add(username, place.region, "certificate")
        return (issued.cert_file, issued.key_file, out_dir / "ca.crt")
    secret = new_secret()
    identities.add(
        username, place.region, "password", hashes=(mosquitto_hash(secret), amqtt_hash(secret))
    )
    write_secret(out_dir / "mqtt.secret", secret.encode())
    return (out_dir / "mqtt.secret", out_dir / "ca.crt")


def _agent_settings(
    place: BrokerPlace, gateway_id: str, credential: Credential, install_dir: Path
) -> dict[str, object]:
    settings: dict[str, object] = {
        "gateway_id": gateway_id,
        "region": place.region.value,
        "env": "production",
        "mqtt_url": place.cert_url if credential == "certificate" else place.url,
        "mqtt_ca_file": str(install_dir / "ca.crt"),
    }
    if credential == "certificate":
        settings["mqtt_cert_file"] = str(install_dir / "client.crt")
        settings["mqtt_key_file"] = str(install_dir / "client.key")
    else:
        settings["mqtt_username"] = gateway_id
        settings["mqtt_password_file"] = str(install_dir / "mqtt.secret")
    settings["buffer_path"] = "/var/lib/potr/buffer.sqlite"
    settings["endpoints"] = []  # filled in on site: the devices this gateway polls
    return settings


def revoke_identity(
    identities: BrokerIdentities, place: BrokerPlace, username: str
) -> BrokerIdentityRecord:
    """End ``username``'s access: out of the password file (its live session is dropped
    at the reload) or, for a certificate, revoked in the CRL (refuses new connections)
    and denied everything by the ACL (its live TLS session survives a CRL reload)."""
    try:
        record = identities.revoke(username)
    except NotFoundError as exc:
        raise ProvisioningError(str(exc)) from None
    if record.credential == "certificate":
        live = _live_certificates(place, username)
        if live:
            pki.revoke(place.pki_dir, cn=username)
    sync_broker(identities, place)
    return record


def _live_certificates(place: BrokerPlace, cn: str) -> list[pki.CertRecord]:
    """The CA's unrevoked certificates of ``cn``, in issue order."""
    return [c for c in pki.listing(place.pki_dir) if c.cn == cn and c.revoked_at is None]


def clear_retained(place: BrokerPlace, gateway_id: str, admin_secret: str) -> None:
    """Publish empty retained messages on the gateway's retained topics (state, config,
    config_state) as the region's admin identity, so nothing stale outlives it."""
    from pydantic import SecretStr

    from cloud.adapters.mqtt import MqttOptions, MqttPublisher
    from cloud.settings import MqttEndpoint

    endpoint = MqttEndpoint(place.url)
    publisher = MqttPublisher(
        MqttOptions(
            endpoint.host,
            endpoint.port,
            client_id=username_for(IdentityKind.ADMIN, place.region.value),
            username=username_for(IdentityKind.ADMIN, place.region.value),
            password=SecretStr(admin_secret),
            tls=endpoint.tls,
            ca_file=str(place.ca_file) if endpoint.tls else None,
            session_expiry_s=0,
        )
    )
    if not publisher.start():
        raise ProvisioningError(f"cannot reach the {place.region.value} broker to clear state")
    try:
        for kind in sorted(RETAINED):
            publisher.publish(topic(place.region, gateway_id, kind), b"", retain=True)
    finally:
        publisher.stop()


# -- service and technician identities ------------------------------------------------


def provision_service(
    identities: BrokerIdentities,
    place: BrokerPlace,
    *,
    kind: IdentityKind,
    name: str,
    out_file: Path,
    credentials_file: bool = False,
) -> Provisioned:
    """A password identity for an ingest worker, the config service, the admin CLI or a
    technician; its secret goes only into ``out_file`` (0600): the bare secret, or with
    ``credentials_file`` an entry ``username: secret`` added to that YAML file (what
    ``POTR_MQTT_CREDENTIALS_FILE`` names: one file for all of a host's ingest workers)."""
    if kind is IdentityKind.GATEWAY:
        raise ProvisioningError("gateways are provisioned with `potr gateway provision`")
    try:
        username = username_for(kind, name)
    except IdentityError as exc:
        raise ProvisioningError(str(exc)) from None
    secret = new_secret()
    try:
        identities.add(
            username, place.region, "password", hashes=(mosquitto_hash(secret), amqtt_hash(secret))
        )
    except ConflictError as exc:
        raise ProvisioningError(str(exc)) from None
    if credentials_file:
        _add_credential(out_file, username, secret)
    else:
        write_secret(out_file, secret.encode(), overwrite=True)
    reloaded = sync_broker(identities, place)
    return Provisioned(username, "password", None, (out_file,), reloaded)


def _add_credential(path: Path, username: str, secret: str) -> None:
    from cloud.credentials import CredentialsError, read_credentials, write_credentials

    try:
        known = read_credentials(path) if path.exists() else {}
    except CredentialsError as exc:
        raise ProvisioningError(str(exc)) from None
    write_credentials(path, {**known, username: secret})


def copy_ca(place: BrokerPlace, dest: Path) -> None:
    shutil.copyfile(place.ca_file, dest)


# -- rotation -------------------------------------------------------------------------


def rotate_password(
    identities: BrokerIdentities,
    place: BrokerPlace,
    username: str,
    secret_file: Path,
    *,
    reload: bool = False,
) -> Provisioned:
    """A new secret for a password identity, written to ``secret_file``. Mosquitto keeps
    one hash per user, so the hand-over is: this records the new hash and writes the
    secret; the operator installs it where the client reads it at each connect (its live
    session goes on); then ``potr broker sync`` (or ``reload=True`` when the client reads
    ``secret_file`` itself) reloads the broker, which drops the session once, and the
    client reconnects with the new secret — its buffer holds what it publishes meanwhile
    (docs/brokers.md). Any other sync before then applies the new hash early: the client
    is refused until its secret arrives, and loses nothing."""
    secret = new_secret()
    try:
        identities.set_password(username, (mosquitto_hash(secret), amqtt_hash(secret)))
    except NotFoundError as exc:
        raise ProvisioningError(str(exc)) from None
    write_secret(secret_file, secret.encode(), overwrite=True)
    reloaded = sync_broker(identities, place) if reload else False
    return Provisioned(username, "password", None, (secret_file,), reloaded)


def rotate_certificate(place: BrokerPlace, gateway_id: str, out_dir: Path) -> pki.IssuedFiles:
    """Issue a second certificate with the same CN; the old one stays valid until
    :func:`finish_certificate_rotation` (overlap: the gateway switches at its next
    connect, without losing a message)."""
    live = _live_certificates(place, gateway_id)
    if not live:
        raise ProvisioningError(f"{gateway_id!r} has no live certificate to rotate")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return pki.issue_client(place.pki_dir, gateway_id, out_dir)
    except pki.PkiError as exc:
        raise ProvisioningError(str(exc)) from None


def finish_certificate_rotation(
    identities: BrokerIdentities, place: BrokerPlace, gateway_id: str
) -> list[pki.CertRecord]:
    """Revoke every live certificate of ``gateway_id`` but the newest, once the gateway
    connects with the newest; the broker refuses the old ones from its reload on."""
    live = _live_certificates(place, gateway_id)
    if len(live) < 2:
        raise ProvisioningError(f"{gateway_id!r} has no older certificate to retire")
    newest = live[-1]  # listing() is in issue order
    revoked = []
    for cert in live:
        if cert.serial != newest.serial:
            revoked += pki.revoke(place.pki_dir, serial=cert.serial)
    sync_broker(identities, place)
    return revoked
