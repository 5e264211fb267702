"""The portal API process's settings (prefix ``POTR_``): where it listens, the region it
serves, its database and the identity service's public key it verifies tokens with."""

from __future__ import annotations

import ipaddress

from pydantic import Field

from cloud.identity import TokenSettings
from cloud.settings import DatabaseSettings
from contracts.topics import Region

__all__ = ["ApiSettings", "is_loopback"]


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
    another region's URL answers 404: the gateway routed it wrongly."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)
    api_region: Region | None = None
