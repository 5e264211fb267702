"""The API gateway's settings (prefix ``POTR_``): where its nginx directory is, where it
listens, each region's API processes and identity's, and which region's processes serve
the web UI's sign-in pages; ``config()`` turns them into the ``GatewayConfig`` that
``potr gateway-config render`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker_config.nginx import (
    GatewayConfig,
    GatewayConfigError,
    GatewayTls,
    Upstream,
    parse_region_upstreams,
    parse_upstreams,
)
from contracts.topics import Region

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POTR_", extra="ignore")

    #: The gateway's nginx prefix: nginx.conf, logs/, run/nginx.pid, tmp/.
    gateway_dir: Path
    #: host:port the gateway listens on (0.0.0.0:443 with TLS in production).
    gateway_listen: str = "127.0.0.1:8080"
    #: Each region's API processes: ``au=h:p,h:p;us=h:p,h:p;es=h:p,h:p``.
    gateway_upstreams: str
    #: Identity's processes: ``h:p,h:p``.
    gateway_identity_upstreams: str
    #: The paths identity serves, comma-separated, each ending with ``/``.
    gateway_identity_paths: str = "/api/v1/auth/"
    #: The region whose API processes serve the web UI's paths of no region (``/``,
    #: ``/login``, ``/static/…``); unset: the first region of ``gateway_upstreams``.
    gateway_portal_region: Region | None = None
    gateway_min_servers: int = Field(default=2, ge=1)
    gateway_max_fails: int = Field(default=2, ge=1)
    gateway_fail_timeout_s: int = Field(default=10, ge=1)
    gateway_tries: int = Field(default=2, ge=1)
    gateway_max_body_kib: int = Field(default=1024, ge=1)
    gateway_worker_processes: int | Literal["auto"] = "auto"
    #: TLS on the listener (both or neither): PEM certificate chain and key.
    gateway_tls_cert_file: Path | None = None
    gateway_tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _renderable(self) -> GatewaySettings:
        self.config()  # refuses here, naming the setting, rather than at render time
        return self

    def config(self) -> GatewayConfig:
        """The gateway these settings describe (``ValueError`` naming what is wrong)."""
        try:
            listen = Upstream.parse(self.gateway_listen)
            return GatewayConfig(
                listen_host=listen.host,
                listen_port=listen.port,
                regions=parse_region_upstreams(self.gateway_upstreams),
                identity=parse_upstreams(self.gateway_identity_upstreams),
                identity_paths=tuple(
                    p.strip() for p in self.gateway_identity_paths.split(",") if p.strip()
                ),
                portal_region=self.gateway_portal_region,
                min_servers=self.gateway_min_servers,
                max_fails=self.gateway_max_fails,
                fail_timeout_s=self.gateway_fail_timeout_s,
                next_upstream_tries=self.gateway_tries,
                client_max_body_kib=self.gateway_max_body_kib,
                worker_processes=self.gateway_worker_processes,
                tls=self._tls(),
            )
        except GatewayConfigError as exc:
            raise ValueError(str(exc)) from None

    def _tls(self) -> GatewayTls | None:
        cert, key = self.gateway_tls_cert_file, self.gateway_tls_key_file
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            raise GatewayConfigError("TLS needs both POTR_GATEWAY_TLS_CERT_FILE and _KEY_FILE")
        return GatewayTls(certfile=cert, keyfile=key)
