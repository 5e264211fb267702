"""Render a regional broker's directory: its Mosquitto config, server certificate, auth
files from the registry and the admin identity; check the candidate by starting it on
free ports; install it only when Mosquitto loads it; reload a running broker.

The directory (``POTR_BROKER_DIR``) is what the broker reads and nothing else::

    mosquitto.conf  passwd  passwd.amqtt  acl  crl.pem  ca.crt  server.crt  server.key
    admin.secret    data/ (persistence)   run/mosquitto.pid
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from broker_config import pki
from broker_config.files import write_public, write_secret
from broker_config.mosquitto import (
    Listener,
    MosquittoConfig,
    MosquittoConfigError,
    MosquittoListener,
    TlsCertificateListener,
    TlsFiles,
    TlsPasswordListener,
)
from cloud.registry import BrokerIdentities
from contracts.identities import IdentityKind, username_for
from potr.provisioning import (
    ACL_FILE,
    ADMIN_SECRET_FILE,
    CRL_FILE,
    PASSWORD_FILE,
    PID_FILE,
    BrokerPlace,
    ProvisioningError,
    auth_files,
    provision_service,
    rotate_password,
    sync_broker,
)
from potr.servers.mosquitto import broker_group, validate_candidate

__all__ = ["BrokerLayout", "RenderResult", "broker_config_for", "render_broker"]

CONF_FILE = "mosquitto.conf"
BROKER_USER = "mosquitto"


@dataclass(frozen=True)
class BrokerLayout:
    """Where the broker listens: TLS with passwords, TLS with client certificates, and
    a plain loopback listener only in development mode."""

    port: int = 8883
    cert_port: int = 8884
    #: None: every interface (production); tests and the demo use 127.0.0.1.
    host: str | None = None
    #: Names clients use for the broker (the server certificate's SANs).
    server_names: tuple[str, ...] = ("127.0.0.1", "localhost")
    dev_plain_port: int | None = None
    persistence: bool = True


@dataclass(frozen=True)
class RenderResult:
    conf_file: Path
    created_admin: bool
    issued_server_cert: bool
    reloaded: bool


def render_broker(
    identities: BrokerIdentities, place: BrokerPlace, layout: BrokerLayout
) -> RenderResult:
    """Write ``place.broker_dir`` for ``layout``; a config Mosquitto refuses is never
    installed (:class:`ProvisioningError` with its reason, the live files untouched)."""
    bdir = place.broker_dir
    bdir.mkdir(parents=True, exist_ok=True)
    os.chmod(bdir, 0o755)  # the broker's user must reach its files
    issued = _ensure_server_cert(place, layout)
    created = _ensure_admin(identities, place)
    files = auth_files(place.region, identities.for_region(place.region))
    conf = broker_config_for(
        bdir, layout, password_file=bdir / PASSWORD_FILE, acl_file=bdir / ACL_FILE
    )
    _check_candidate(conf, files, bdir, layout)
    _own_dirs(bdir)
    write_public(bdir / CONF_FILE, conf.render().encode())
    # The auth files and CRL as every other change writes them, then the reload.
    return RenderResult(bdir / CONF_FILE, created, issued, sync_broker(identities, place))


def broker_config_for(
    bdir: Path,
    layout: BrokerLayout,
    *,
    password_file: Path,
    acl_file: Path,
) -> MosquittoConfig:
    tls = TlsFiles(
        cafile=bdir / "ca.crt", certfile=bdir / "server.crt", keyfile=bdir / "server.key"
    )
    listeners: list[Listener] = [
        TlsPasswordListener(layout.port, tls, host=layout.host),
        TlsCertificateListener(layout.cert_port, tls, crlfile=bdir / CRL_FILE, host=layout.host),
    ]
    if layout.dev_plain_port is not None:
        listeners.append(MosquittoListener(layout.dev_plain_port))
    try:
        return MosquittoConfig(
            tuple(listeners),
            development=layout.dev_plain_port is not None,
            persistence_dir=bdir / "data" if layout.persistence else None,
            password_file=password_file,
            acl_file=acl_file,
            pid_file=bdir / PID_FILE,
            log_stderr=True,  # `docker compose logs broker`, journald: docs/brokers.md
        )
    except MosquittoConfigError as exc:
        raise ProvisioningError(str(exc)) from None


def _check_candidate(
    conf: MosquittoConfig, files: dict[str, str], bdir: Path, layout: BrokerLayout
) -> None:
    """Start Mosquitto on the candidate (its auth files in a scratch directory, its
    listeners on free ports) and refuse it unless it loads."""
    with tempfile.TemporaryDirectory(prefix="potr-broker-candidate-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)
        for name, text in files.items():
            write_secret(scratch / name, text.encode(), group=broker_group(), overwrite=True)
        candidate = broker_config_for(
            bdir,
            layout,
            password_file=scratch / PASSWORD_FILE,
            acl_file=scratch / ACL_FILE,
        )
        verdict = validate_candidate(candidate.render())
    if not verdict.ok:
        raise ProvisioningError(f"Mosquitto refused the rendered config: {verdict.reason}")


def _ensure_server_cert(place: BrokerPlace, layout: BrokerLayout) -> bool:
    bdir = place.broker_dir
    write_public(bdir / "ca.crt", place.ca_file.read_bytes())
    write_public(bdir / CRL_FILE, (place.pki_dir / CRL_FILE).read_bytes())
    if (bdir / "server.crt").exists() and (bdir / "server.key").exists():
        return False
    staging = Path(tempfile.mkdtemp(prefix="potr-server-cert-", dir=bdir))
    try:
        pki.issue_server(
            place.pki_dir,
            f"broker-{place.region.value}",
            list(layout.server_names),
            staging,
            key_group=broker_group(),
        )
        for name in ("server.crt", "server.key"):
            os.replace(staging / name, bdir / name)
    except pki.PkiError as exc:
        raise ProvisioningError(str(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def _ensure_admin(identities: BrokerIdentities, place: BrokerPlace) -> bool:
    """The region's admin identity (clears a revoked gateway's retained messages); its
    secret lives only in the broker directory (0600). A lost secret is replaced by a new
    one (the admin identity is only ever used from this directory)."""
    username = username_for(IdentityKind.ADMIN, place.region.value)
    secret_file = place.broker_dir / ADMIN_SECRET_FILE
    record = identities.get(username)
    if record is not None and secret_file.exists():
        return False
    if record is not None:
        rotate_password(identities, place, username, secret_file, reload=False)
        return True
    provision_service(
        identities, place, kind=IdentityKind.ADMIN, name=place.region.value, out_file=secret_file
    )
    return True


def _own_dirs(bdir: Path) -> None:
    """``data/`` and ``run/`` belong to the broker's user: it writes its persistence and
    pid file there after dropping root."""
    for sub in ("data", Path(PID_FILE).parent.name):
        path = bdir / sub
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(BROKER_USER)
            os.chown(path, user.pw_uid, user.pw_gid)
