"""The portal process's settings (prefix ``POTR_``): where it listens, the region it
serves, its database, the identity service's public key it verifies tokens with, and the
web UI's: where the identity service is, and whether its cookies demand HTTPS."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from cloud.identity import TokenSettings
from cloud.settings import DatabaseSettings
from contracts.topics import Region

__all__ = ["ApiSettings", "PortalSettings", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiSettings(TokenSettings, DatabaseSettings):
    """The REST API: address, database, the identity service's public key (required in
    production; without one the API refuses to start), and the region it serves
    (``POTR_API_REGION``; unset: every region, the one-process demo). A request for
    another region's URL answers 404: the gateway routed it wrongly.

    ``reports_gateway_url`` (``POTR_REPORTS_GATEWAY_URL``): the API gateway, through
    which a process pinned to a region asks the other regions' reports APIs for their
    tables (the reports across every region); unset: a pinned process does not offer
    them. ``reports_gateway_timeout_s``: how long a region's answer may take (the
    regions are asked at once). Production refuses plaintext ``http://`` to another
    host."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)
    api_region: Region | None = None
    #: Whose ``X-Forwarded-For`` is believed (uvicorn's ``forwarded_allow_ips``): the API
    #: gateway's address, so a person's address — which sign-in hands to identity's
    #: per-address throttle — is theirs, not the gateway's.
    api_trusted_proxies: str = Field(default="127.0.0.1", max_length=500)
    reports_gateway_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
    )
    #: Below the gateway's read timeout (30 s), so the caller gets this process's 503.
    reports_gateway_timeout_s: float = Field(default=10.0, gt=0, le=25)

    @model_validator(mode="after")
    def _reports_gateway_secure(self) -> ApiSettings:
        url = self.reports_gateway_url or ""
        if self.env == "production" and url.startswith("http://") and not _host_is_loopback(url):
            raise ValueError(
                "POTR_REPORTS_GATEWAY_URL is plaintext http to another host: use https://"
            )
        return self


class PortalSettings(ApiSettings):
    """The web UI on top of the API. ``portal_identity_url``: the identity service the
    sign-in form asks (through the API gateway or directly; None: the identity service
    in this process, the one-process demo). ``portal_cookie_secure``: the browser
    cookies carry ``Secure`` (production refuses to turn it off; browsers treat
    ``http://localhost`` and ``127.0.0.1`` as secure, so the demo keeps it on too).
    ``portal_live_interval_s``: how often a live view asks for new values (the agents'
    publish interval is the natural figure)."""

    portal_identity_url: str | None = Field(default=None, max_length=2000)
    portal_cookie_secure: bool = True
    portal_live_interval_s: float = Field(default=5.0, ge=1.0, le=300.0)
    portal_identity_timeout_s: float = Field(default=10.0, gt=0, le=60)

    @model_validator(mode="after")
    def _secure_in_production(self) -> PortalSettings:
        if self.env == "production":
            if not self.portal_cookie_secure:
                raise ValueError("POTR_PORTAL_COOKIE_SECURE=false is refused in production")
            url = self.portal_identity_url or ""
            if url.startswith("http://") and not _host_is_loopback(url):
                raise ValueError(
                    "POTR_PORTAL_IDENTITY_URL is plaintext http to another host: use https://"
                )
        return self


def _host_is_loopback(url: str) -> bool:
    return is_loopback(urlsplit(url).hostname or "")
