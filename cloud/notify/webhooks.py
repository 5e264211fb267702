"""Webhooks, the pure part: signatures, the destination guard, the retry schedule, what an
HTTP answer means. The HTTP client is :mod:`cloud.notify.webhook_http`.

**Signature** (``X-PoTR-Signature: t=<unix seconds>,v1=<hex>``): HMAC-SHA256 keyed with
the endpoint's secret (its UTF-8 bytes, ``whsec_…`` as shown once at creation) over
``<t>.`` followed by the exact request body. While a secret is being rotated the header
carries one ``v1=`` per valid secret. A receiver verifies it so:

1. split the header on ``,``; take ``t`` and every ``v1``;
2. refuse when ``|now - t|`` exceeds its tolerance (5 minutes here) — a replay;
3. compute ``hex(HMAC_SHA256(secret, f"{t}." + raw_body))`` and compare it with each
   ``v1`` in constant time (``hmac.compare_digest``); accept when one matches;
4. deduplicate on ``X-PoTR-Delivery`` (the same delivery may arrive twice: delivery is
   at least once) and answer 2xx quickly; 408, 425, 429 and 5xx are retried, any other
   status is final (410 also disables the endpoint), and redirects are not followed.

**Destinations**: an address that is loopback, private, link-local, multicast,
unspecified or otherwise not global is refused unless a network in the settings' allow
list holds it (IPv4 inside IPv6 — mapped, 6to4, Teredo, NAT64 — is judged as the IPv4
address). Every resolved address must pass, and the request then goes to the first of
them (resolve once, connect to that IP: DNS rebinding cannot swap it after the check).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_S",
    "Attempt",
    "IPAddress",
    "IPNetwork",
    "RetryPolicy",
    "WebhookRefused",
    "WebhookTarget",
    "address_refusal",
    "classify_status",
    "parse_networks",
    "parse_webhook_url",
    "pinned_address",
    "sign",
    "signature_header",
    "verify_signature",
    "webhook_body",
]

SIGNATURE_HEADER = "X-PoTR-Signature"
#: The delivery's id: the same on every retry, so receivers can deduplicate.
DELIVERY_HEADER = "X-PoTR-Delivery"
#: How far a receiver should accept ``t`` from its own clock (replays beyond are refused).
SIGNATURE_TOLERANCE_S = 300

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Attempt = Literal["sent", "retry", "failed"]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_MAX_HEADER = 2048


class WebhookRefused(ValueError):
    """A destination that will not be called; ``str()`` says why (fit for an API answer)."""


# -- signatures -------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``'s UTF-8 bytes."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<sig>[,v1=<sig>…]``: one signature per secret (rotation)."""
    if not secrets:
        raise ValueError("no secret to sign with")
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify_signature(
    header: str, body: bytes, secret: str, now: int, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """A receiver's check (see the module): a ``v1`` matches and ``t`` is within
    ``tolerance_s`` of ``now`` (unix seconds)."""
    if len(header) > _MAX_HEADER:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


# -- destinations ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL split for the call: ``host`` is what DNS resolves (and what the
    Host header and TLS name carry), ``target`` the path and query."""

    url: str
    scheme: Literal["http", "https"]
    host: str
    port: int
    target: str

    @property
    def authority(self) -> str:
        """``host[:port]`` as the Host header carries it (default ports omitted)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def destination_key(self) -> str:
        """What concurrency is bounded by: one host and port."""
        return f"{self.host}:{self.port}"


def parse_webhook_url(url: str, *, allow_http: bool = False) -> WebhookTarget:
    """The URL's parts, or :class:`WebhookRefused`: https only (http where allowed), a
    host, no credentials, no fragment, ASCII (an international name in its ``xn--``
    form)."""
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise WebhookRefused("the URL must be ASCII without spaces (IDNs in xn-- form)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_http):
        raise WebhookRefused("the URL must be https://" + ("" if allow_http else " (not http)"))
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("the URL must not carry credentials")
    if parts.fragment:
        raise WebhookRefused("the URL must not carry a fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused("the URL has no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(
        url=url,
        scheme="https" if scheme == "https" else "http",
        host=host,
        port=port or (443 if scheme == "https" else 80),
        target=target,
    )


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated networks (``127.0.0.0/8, ::1``) as the settings give them."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` (None: it may). ``allowed`` networks
    let through what would otherwise be refused (tests allow loopback)."""
    judged: IPAddress = address
    if isinstance(address, ipaddress.IPv6Address):
        judged = _embedded_ipv4(address) or address
    if any(a in net for net in allowed for a in {address, judged} if a.version == net.version):
        return None
    if judged.is_loopback:
        return "loopback"
    if judged.is_link_local:
        return "link-local"
    if judged.is_multicast:
        return "multicast"
    if judged.is_unspecified:
        return "unspecified"
    if judged.is_private:
        return "private"
    if not judged.is_global:
        return "not a public address"
    return None


def pinned_address(
    host: str, addresses: Sequence[IPAddress], allowed: Iterable[IPNetwork] = ()
) -> IPAddress:
    """The address to connect to: the first of ``addresses`` once every one has passed
    :func:`address_refusal` (one refused address refuses the host), else
    :class:`WebhookRefused`."""
    if not addresses:
        raise WebhookRefused(f"{host} resolves to no address")
    networks = tuple(allowed)
    for address in addresses:
        reason = address_refusal(address, networks)
        if reason is not None:
            raise WebhookRefused(f"{host} resolves to a {reason} address ({address})")
    return addresses[0]


# -- retries ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with bounded ("equal") jitter: after the ``n``-th failed
    attempt the next waits between half and all of ``min(cap_s, base_s * 2**(n-1))``
    seconds; after ``max_attempts`` attempts the delivery has failed for good."""

    base_s: float = 30.0
    cap_s: float = 3600.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.cap_s) or self.max_attempts < 1:
            raise ValueError("need 0 < base_s <= cap_s and max_attempts >= 1")

    def ceiling_s(self, failed: int) -> float:
        """The longest wait after ``failed`` (>= 1) failed attempts."""
        return min(self.cap_s, self.base_s * 2.0 ** min(failed - 1, 64))

    def delay(self, failed: int, jitter: float, retry_after_s: float | None = None) -> timedelta:
        """The wait after ``failed`` failed attempts; ``jitter`` in [0, 1) picks where in
        the upper half; a receiver's ``Retry-After`` lengthens it, up to ``cap_s``."""
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        ceiling = self.ceiling_s(failed)
        wait = ceiling / 2 + ceiling / 2 * jitter
        if retry_after_s is not None and retry_after_s > wait:
            wait = min(retry_after_s, self.cap_s)
        return timedelta(seconds=wait)

    def next_attempt_at(
        self, now: datetime, failed: int, jitter: float, retry_after_s: float | None = None
    ) -> datetime | None:
        """When to try again after ``failed`` failed attempts, None when they are used up."""
        if failed >= self.max_attempts:
            return None
        return now + self.delay(failed, jitter, retry_after_s)

    def schedule(self) -> list[tuple[float, float]]:
        """(shortest, longest) wait in seconds before each retry, in order."""
        return [(self.ceiling_s(n) / 2, self.ceiling_s(n)) for n in range(1, self.max_attempts)]


def classify_status(status: int) -> Attempt:
    """What an HTTP answer means: 2xx delivered; 408, 425, 429 and 5xx worth retrying;
    anything else (redirects included: never followed) final."""
    if 200 <= status < 300:
        return "sent"
    if status in (408, 425, 429) or 500 <= status < 600:
        return "retry"
    return "failed"


# -- the body ---------------------------------------------------------------------------
def webhook_body(fields: dict[str, Any]) -> bytes:
    """The request body: compact JSON with sorted keys (signed byte for byte and stored,
    so every retry sends the same bytes)."""
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
