"""Real servers for the notify tests: an aiosmtpd sink that keeps (or refuses) mail, and
a webhook receiver — a threaded HTTP(S) server on loopback that checks each request's
signature by the documented recipe (``hmac`` here, not the code under test), can fail
the first N requests, and can hold requests to show how many arrive at once."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from potr.servers.ports import free_port
from tests.integration.api_world import migrated_database

__all__ = [
    "MailSink",
    "Received",
    "WebhookReceiver",
    "mail_sink",
    "notify_database",
    "webhook_receiver",
]


@contextmanager
def notify_database(server_url: str) -> Iterator[str]:
    """A private database with the notify schema migrated, dropped afterwards."""
    with migrated_database(server_url, "notify") as url:
        yield url


class MailSink:
    """aiosmtpd handler: keeps each message; ``refuse`` maps an address to the SMTP
    answer its RCPT gets (``550 ...`` for good, ``451 ...`` for now)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        answer = self.refuse.get(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self._messages.append(message)
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)


@contextmanager
def mail_sink() -> Iterator[tuple[MailSink, int]]:
    """A sink on a free loopback port: ``(sink, port)``."""
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def recipe(secret: str, timestamp: str, body: bytes) -> str:
    """The receiver's check from cloud/notify/webhooks.py's docstring."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int


@dataclass
class WebhookReceiver:
    """Answers ``status`` (200) once ``fail_first`` requests were answered ``fail_status``;
    with ``hold`` set, each request waits (at most ``hold_s``) for ``release``."""

    secret: str = ""
    fail_first: int = 0
    fail_status: int = 503
    status: int = 200
    hold: bool = False
    hold_s: float = 10.0
    release: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                self.release.wait(self.hold_s)
            with self._lock:
                failing = sum(1 for r in self.received if r.status == self.fail_status)
                status = self.fail_status if failing < self.fail_first else self.status
                self.received.append(
                    Received(path, headers, body, self._verified(headers, body), status)
                )
            return status
        finally:
            with self._lock:
                self.in_flight -= 1

    def _verified(self, headers: dict[str, str], body: bytes) -> bool:
        parts = [p.split("=", 1) for p in headers.get("x-potr-signature", "").split(",")]
        fields: dict[str, list[str]] = {}
        for part in parts:
            if len(part) == 2:
                fields.setdefault(part[0], []).append(part[1])
        stamps = fields.get("t", [])
        if len(stamps) != 1 or abs(time.time() - int(stamps[0])) > 300:
            return False
        expected = recipe(self.secret, stamps[0], body)
        return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.handle(self.path, headers, body)
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(
    receiver: WebhookReceiver, *, cert: tuple[Path, Path] | None = None
) -> Iterator[WebhookReceiver]:
    """Serve ``receiver`` on 127.0.0.1 (TLS with ``cert`` = (certificate, key))."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
