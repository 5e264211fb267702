"""Access tokens for API tests: the one place tests mint them, and the settings an app
built for tests verifies them with.

Tokens are identity's (EdDSA, :func:`cloud.identity.issue_access_token`), signed with
the test deployment's key; an app built with :func:`api_settings` verifies them with its
public half, written once per test process to a private temporary directory.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from cloud.identity import AUDIENCE, ROLE_SCOPES, Role, issue_access_token
from cloud.portal import ApiSettings
from contracts.signing import SigningKey
from contracts.topics import Region

#: The test deployment's identity key (a forged token: ``key=SigningKey.generate()``).
KEY = SigningKey.generate()


@cache
def public_key_file() -> Path:
    """:data:`KEY`'s public half as a PEM file (what ``POTR_IDENTITY_PUBLIC_KEY_FILE``
    names), removed when the test process exits."""
    directory = Path(tempfile.mkdtemp(prefix="potr-test-identity-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "identity.pub"
    path.write_bytes(KEY.public_pem())
    return path


def mint_token(
    role: Role | str,
    *,
    region: Region | str = Region.AU,
    account_id: str | None = None,
    employee_no: str | None = None,
    subject: str | None = None,
    scopes: Iterable[str] | None = None,
    ttl_s: int = 300,
    now: datetime | None = None,
    key: SigningKey = KEY,
    audience: str = AUDIENCE,
) -> str:
    """An access token for ``role`` in ``region`` (a customer's names its
    ``account_id``, staff signed in by PIN their ``employee_no``) with every scope of
    the role unless ``scopes``; ``now``/``ttl_s`` to make an expired one, ``key`` a
    forged one, ``audience`` another service's."""
    return issue_access_token(
        key,
        subject=subject or f"usr_{uuid.uuid4().hex}",
        role=role,
        region=region,
        scopes=ROLE_SCOPES[Role(role)] if scopes is None else scopes,
        account_id=account_id,
        employee_no=employee_no,
        ttl_s=ttl_s,
        now=now,
        audience=audience,
    )


def bearer(role: Role | str, **kwargs: Any) -> dict[str, str]:
    """``Authorization`` header with :func:`mint_token`'s token."""
    return {"Authorization": f"Bearer {mint_token(role, **kwargs)}"}


def api_settings(database_url: str, **kwargs: Any) -> ApiSettings:
    """Settings of an API that accepts :func:`mint_token`'s tokens."""
    return ApiSettings(
        env="test",
        identity_public_key_file=public_key_file(),
        database_url=database_url,
        **kwargs,
    )
