"""How the portal's sign-in form reaches the identity service: one small interface,
:class:`IdentityGate`, with two adapters.

* :class:`HttpIdentityGate` — production: identity's own REST routes (``/api/v1/auth``)
  over HTTP(S) with ``httpx``, through the API gateway or directly. The browser's address
  travels in ``X-Forwarded-For`` so identity's per-address throttle counts the person,
  not this process (identity trusts that header only from the proxies its uvicorn lists
  in ``forwarded_allow_ips``: the portal processes belong there).
* :class:`LocalIdentityGate` — the one-process demo and the tests that run identity in
  the same process: the service's methods, off the event loop.

Both answer a :class:`cloud.identity.TokenPair`, raise :class:`SignInRefused` for any
refusal (one message, whatever failed) and :class:`SignInThrottled` with the seconds to
wait; the identity service stays the only place that knows a password or a PIN.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from starlette.concurrency import run_in_threadpool

from cloud.identity import IdentityService, InvalidCredentials, Throttled, TokenPair

__all__ = [
    "HttpIdentityGate",
    "IdentityGate",
    "IdentityUnavailable",
    "LocalIdentityGate",
    "SignInRefused",
    "SignInThrottled",
]


class SignInRefused(Exception):
    """Wrong credentials, a locked or disabled user, a spent refresh token."""


class SignInThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class IdentityUnavailable(Exception):
    """The identity service did not answer (down, timeout, an unexpected status)."""


class IdentityGate(Protocol):
    async def login(self, email: str, password: str, address: str | None) -> TokenPair: ...
    async def pin_login(self, employee_no: str, pin: str, address: str | None) -> TokenPair: ...
    async def refresh(self, refresh_token: str) -> TokenPair: ...
    async def logout(self, refresh_token: str) -> None: ...


class LocalIdentityGate:
    """Identity in this process."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def login(self, email: str, password: str, address: str | None) -> TokenPair:
        return await self._call(self._service.login, email, password, address)

    async def pin_login(self, employee_no: str, pin: str, address: str | None) -> TokenPair:
        return await self._call(self._service.pin_login, employee_no, pin, address)

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await self._call(self._service.refresh, refresh_token)

    async def logout(self, refresh_token: str) -> None:
        await run_in_threadpool(self._service.logout, refresh_token)

    @staticmethod
    async def _call(method: Any, *args: Any) -> TokenPair:
        try:
            pair: TokenPair = await run_in_threadpool(method, *args)
        except InvalidCredentials:
            raise SignInRefused() from None
        except Throttled as exc:
            raise SignInThrottled(exc.retry_after_s) from None
        return pair


class HttpIdentityGate:
    """Identity over HTTP. ``base_url``: where ``/api/v1/auth/...`` answers."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def login(self, email: str, password: str, address: str | None) -> TokenPair:
        body = {"email": email, "password": password}
        return await self._pair("/api/v1/auth/login", body, address)

    async def pin_login(self, employee_no: str, pin: str, address: str | None) -> TokenPair:
        body = {"employee_no": employee_no, "pin": pin}
        return await self._pair("/api/v1/auth/pin-login", body, address)

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await self._pair("/api/v1/auth/refresh", {"refresh_token": refresh_token}, None)

    async def logout(self, refresh_token: str) -> None:
        await self._post("/api/v1/auth/logout", {"refresh_token": refresh_token}, None)

    async def _pair(self, path: str, body: dict[str, str], address: str | None) -> TokenPair:
        answer = await self._post(path, body, address)
        if answer.status_code == 200:
            return TokenPair.model_validate_json(answer.content)
        if answer.status_code == 429:
            raise SignInThrottled(_seconds(answer.headers.get("retry-after")))
        if answer.status_code in (400, 401, 422):
            raise SignInRefused()
        raise IdentityUnavailable(f"identity answered {answer.status_code} to {path}")

    async def _post(self, path: str, body: dict[str, str], address: str | None) -> httpx.Response:
        headers = {"X-Forwarded-For": address} if address else {}
        try:
            return await self._client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"identity unreachable: {type(exc).__name__}") from None


def _seconds(value: str | None) -> int:
    try:
        return max(1, int(value or "60"))
    except ValueError:
        return 60
