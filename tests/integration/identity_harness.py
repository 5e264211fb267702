"""The identity service as a process would run it, for tests: real PostgreSQL, the REST
router in a FastAPI app reached through httpx's ASGI transport (with a chosen client
address), and an aiosmtpd sink on a free loopback port that keeps every mail it gets."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_identity_api
from cloud.identity import (
    ROLE_SCOPES,
    IdentityService,
    IdentitySettings,
    Role,
    User,
    UserCreated,
    UserIn,
    create_identity_service,
    issue_access_token,
)
from cloud.keyfiles import write_key_file
from cloud.migrate import migrate
from contracts.signing import SigningKey
from potr.servers.ports import free_port

__all__ = ["IdentityStack", "MailSink", "identity_stack"]

PASSWORD = "correct horse battery staple"
#: What a reset mail's link carries the token in.
TOKEN_RE = re.compile(r"#token=(prt_[A-Za-z0-9_-]{43})")


class MailSink:
    """aiosmtpd handler: keeps each message (runs on the controller's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self._messages.append(message)
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def reset_token(self, to: str) -> str:
        """The token of the newest reset mail to ``to``."""
        bodies = [m.get_content() for m in self.messages if m["To"] == to]
        match = TOKEN_RE.search(bodies[-1])
        assert match, bodies[-1]
        return match.group(1)


@dataclass
class IdentityStack:
    service: IdentityService
    app: FastAPI
    key: SigningKey
    mails: MailSink
    pool: ConnectionPool[Connection[Any]]
    settings: IdentitySettings

    def client(self, address: str = "203.0.113.10") -> httpx.AsyncClient:
        """A client whose requests come from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 41000))
        return httpx.AsyncClient(transport=transport, base_url="http://identity")

    def add_user(self, role: Role | str = Role.CUSTOMER, **fields: Any) -> UserCreated:
        n = uuid.uuid4().hex[:10]
        data: dict[str, Any] = {
            "email": f"user{n}@potr.example",
            "display_name": f"User {n}",
            "role": Role(role),
            "home_region": "au",
            "password": PASSWORD,
        }
        return self.service.create_user(UserIn.model_validate(data | fields))

    def bearer(self, user: User) -> dict[str, str]:
        """An access token for ``user`` with all the scopes of their role."""
        token = issue_access_token(
            self.key,
            subject=user.id,
            role=user.role,
            region=user.home_region,
            scopes=ROLE_SCOPES[user.role],
        )
        return {"Authorization": f"Bearer {token}"}

    def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT name, payload FROM identity.outbox ORDER BY id").fetchall()
        return [(r[0], r[1]) for r in rows]


@contextmanager
def identity_stack(database_url: str, workdir: Path, **settings: Any) -> Iterator[IdentityStack]:
    """The service with ``settings`` (``IdentitySettings`` fields) over a migrated
    database, its router and a mail sink; everything stopped at the end."""
    migrate(database_url)
    key_file = workdir / f"identity-{free_port()}.pem"
    key = write_key_file(key_file)
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    pool = create_pool(database_url, max_size=8, name="test-identity")
    try:
        config = IdentitySettings(
            env="test",
            database_url=database_url,
            identity_signing_key_file=key_file,
            identity_pin_pepper="test-pepper-" + "x" * 32,
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            **settings,
        )
        service = create_identity_service(config, pool)
        # The app `potr identity-api` serves (its own service over the same pool).
        app = create_identity_api(config, pool)
        yield IdentityStack(service, app, key, sink, pool, config)
    finally:
        pool.close()
        controller.stop()
