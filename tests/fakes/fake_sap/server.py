"""The fake SAP's HTTP front: mock-sap's handler with SAP's CSRF rules and fault
injection the exactly-once tests need.

- **CSRF bound to the session**: a token is valid only with the session cookie it was
  fetched with (SAP binds it to the login session those cookies carry); a write without
  both gets ``403`` + ``X-CSRF-Token: Required``.
- **Faults**, each with its own rate, drawn from one seeded generator:
  ``error_rate`` — a ``500`` before anything is done (mock-sap's own);
  ``csrf_expiry_rate`` — every token expires just before a write is checked;
  ``stall_rate`` — a write is carried out and committed, then the answer waits
  ``stall_s`` (past the client's timeout): "timed out after committing".
- ``/_fake/chaos`` (POST the rates), ``/_fake/stats`` (what was injected),
  ``/_fake/closed-periods`` (POST ``{"periods": ["2026-02"]}``),
  ``/_fake/service-orders/<number>`` (POST ``{"rejected": true, "reason": "Z1"}`` or
  ``{"completed": true}``: an SAP user's change, stamped as SAP stamps it).
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from mocksap.odata import SapError, error_payload
from mocksap.server import UNSAFE, Config, Handler, MockSap
from mocksap.service import Response

from tests.fakes.fake_sap.service_schema import set_status

__all__ = ["FakeState", "make_fake_server"]

_COOKIE = "SAP_SESSIONID_MCK_100"


@dataclass
class FakeState:
    """What the fake adds to mock-sap: sessions, fault rates and their counters."""

    seed: int = 7
    csrf_expiry_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 2.0
    closed_periods: set[str] = field(default_factory=set)
    sessions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"errors": 0, "csrf_expired": 0, "csrf_refused": 0, "stalls": 0}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def is_closed(self, period: str) -> bool:
        with self.lock:
            return period in self.closed_periods


class FakeHandler(Handler):
    fake: FakeState

    def _route(self, method, path, query, headers, body):  # type: ignore[no-untyped-def]
        self._issue_session: str | None = None
        if path.startswith("/_fake"):
            return self._fake_api(method, path, body)
        try:
            response = super()._route(method, path, query, headers, body)
        except SapError as err:
            if "injected by --error-rate" in err.message:
                self.fake.count("errors")
            raise
        if self._issue_session is not None:
            response.headers["Set-Cookie"] = f"{_COOKIE}={self._issue_session}; path=/; HttpOnly"
        if (
            method in UNSAFE
            and path.startswith("/sap/")
            and response.status < 300
            and self.fake.draw(self.fake.stall_rate)
        ):
            # Committed already: the client's timeout passes before it hears so.
            self.fake.count("stalls")
            time.sleep(self.fake.stall_s)
        return response

    def _check_csrf(self, method, path, headers):  # type: ignore[no-untyped-def]
        if not path.startswith("/sap/"):
            return None
        token = headers.get("x-csrf-token", "")
        if method in ("GET", "HEAD") and token.lower() == "fetch":
            session, issued = uuid.uuid4().hex, secrets.token_urlsafe(18)
            with self.fake.lock:
                self.fake.sessions[issued] = session
            self._issue_token, self._issue_session = issued, session
            return None
        if method not in UNSAFE:
            return None
        if self.fake.draw(self.fake.csrf_expiry_rate):
            with self.fake.lock:
                self.fake.sessions.clear()
            self.fake.count("csrf_expired")
        with self.fake.lock:
            bound = self.fake.sessions.get(token)
        if bound is None or bound != _cookie(headers.get("cookie", ""), _COOKIE):
            self.fake.count("csrf_refused")
            return Response(
                403,
                headers={"x-csrf-token": "Required"},
                body=error_payload(
                    SapError("CSRF token validation failed", 403, code="/IWFND/CM_CSRF")
                ),
            )
        return None

    def _fake_api(self, method: str, path: str, body: bytes) -> Response:
        fake = self.fake
        rest = path[len("/_fake") :].strip("/")
        payload: dict[str, Any] = json.loads(body or b"{}")
        if rest == "stats":
            with fake.lock:
                return Response(body=dict(fake.counts))
        if rest == "chaos" and method == "POST":
            with fake.lock:
                fake.csrf_expiry_rate = float(payload.get("csrf_expiry_rate", 0.0))
                fake.stall_rate = float(payload.get("stall_rate", 0.0))
                fake.stall_s = float(payload.get("stall_s", fake.stall_s))
            self.mock.config.error_rate = float(payload.get("error_rate", 0.0))
            return Response(body={"ok": True})
        if rest.startswith("service-orders/") and method == "POST":
            # An SAP user rejects or completes a service order in SAP's own app.
            with self.mock.lock:
                set_status(self.mock.conn, rest.split("/")[1], payload)
            return Response(body={"ok": True})
        if rest == "closed-periods" and method == "POST":
            with fake.lock:
                fake.closed_periods = set(payload.get("periods", []))
            return Response(body={"ok": True})
        raise SapError(f"Unknown fake endpoint '{rest}'", 404)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_fake_server(config: Config, fake: FakeState) -> ThreadingHTTPServer:
    """mock-sap's state behind :class:`FakeHandler`, bound to ``config``'s address."""
    mock = MockSap(config)

    class Bound(FakeHandler):
        pass

    Bound.mock = mock
    Bound.fake = fake
    return _Server((config.host, config.port), Bound)
