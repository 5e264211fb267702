"""Webhooks over the network: name resolution and an HTTP client (httpx) that connects
to the address the guard approved, not to whatever the name resolves to by then.

The request goes to ``scheme://<pinned address>:<port><path>`` with the Host header and
the TLS server name (SNI, and the name the certificate must match) set to the URL's
host, so certificate checks still concern the name while DNS is asked only once (DNS
rebinding cannot slip a private address in between the check and the connection).
Proxies from the environment are ignored (they would connect by name), redirects are
not followed (one could point inside), and the answer's body is never read.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

import httpx

from cloud.notify.webhooks import IPAddress, WebhookTarget

__all__ = [
    "HttpxWebhookClient",
    "Resolver",
    "WebhookClient",
    "WebhookConnectError",
    "WebhookResponse",
    "system_resolver",
]

#: Resolves a host name (or an IP literal) and port to addresses, blocking; raises
#: ``OSError`` when it cannot.
Resolver = Callable[[str, int], Sequence[IPAddress]]


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The system's resolver (``getaddrinfo``), each address once, in its order."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class WebhookConnectError(Exception):
    """No answer: the connection failed, timed out or broke (worth retrying)."""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    #: The receiver's ``Retry-After`` in seconds, when it gave one.
    retry_after_s: float | None = None


class WebhookClient(Protocol):
    async def post(
        self,
        target: WebhookTarget,
        address: IPAddress,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WebhookResponse: ...


class HttpxWebhookClient:
    """The httpx client; ``async with`` owns its connection pool. ``timeout_s`` bounds
    connect, write and read each; ``ca_file`` replaces the system's CAs (tests)."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        ca_file: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._client = httpx.AsyncClient(
            verify=context,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
            headers={"User-Agent": "PoTR-Webhooks/1"},
        )
        self._clock = clock

    async def __aenter__(self) -> HttpxWebhookClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self,
        target: WebhookTarget,
        address: IPAddress,
        body: bytes,
        headers: Mapping[str, str],
    ) -> WebhookResponse:
        url = httpx.URL(
            scheme=target.scheme,
            host=str(address),
            port=target.port,
            raw_path=target.target.encode("ascii"),
        )
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "POST",
            url,
            content=body,
            headers={**headers, "Host": target.authority, "Content-Type": "application/json"},
            extensions=extensions,
        )
        try:
            response = await self._client.send(request, stream=True)
            await response.aclose()
        except httpx.TimeoutException:
            raise WebhookConnectError("timed out") from None
        except httpx.HTTPError as exc:
            raise WebhookConnectError(f"{type(exc).__name__}: {exc}"[:300]) from None
        return WebhookResponse(
            response.status_code, _retry_after(response.headers.get("Retry-After"), self._clock())
        )


def _retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())
