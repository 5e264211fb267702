"""Identity's REST routes under ``/api/v1/auth``: logins, sessions, password reset, the
caller's own record, and (admins) users, API keys and the audit log.

Every failed login answers 401 with one message; a throttled or locked identifier or
address answers 429 with ``Retry-After`` (seconds). Answers holding a token carry
``Cache-Control: no-store``. Admin routes take an access token with role ``admin`` and
scope ``admin``, verified with the service's own public key.
"""

# No ``from __future__ import annotations``: the dependencies' types are local to
# ``create_router`` and FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cloud.identity.mail import Mailer, reset_message, send_quietly
from cloud.identity.models import (
    AccessToken,
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyLogin,
    AuditEntry,
    LoginIn,
    LogoutIn,
    PasswordResetConfirm,
    PasswordResetRequest,
    PinLoginIn,
    PinReset,
    RefreshIn,
    TokenPair,
    User,
    UserCreated,
    UserId,
    UserIn,
    UserPatch,
)
from cloud.identity.roles import Role
from cloud.identity.service import (
    ConflictError,
    IdentityService,
    InvalidCredentials,
    NotFoundError,
    RefusedError,
    Throttled,
)
from cloud.identity.tokens import Principal, TokenError, verify_access_token
from contracts.topics import Region

__all__ = ["AUTH_PREFIX", "create_router"]

AUTH_PREFIX = "/api/v1/auth"
T = TypeVar("T")


class Problem(BaseModel):
    detail: str


class Accepted(BaseModel):
    status: str = "accepted"


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "refused by the rules (weak password, spent token, scope beyond the role)",
        401: "invalid credentials or token (one message for every cause)",
        403: "the token's role or scopes do not allow this",
        404: "no such user or key",
        409: "e-mail address, employee number or broker username in use",
        429: "too many attempts for this identifier or address; see Retry-After (s)",
    }
    return {c: {"model": Problem, "description": text[c]} for c in codes}


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a service call in the thread pool; its refusals become HTTP answers."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except Throttled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except InvalidCredentials as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except RefusedError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


def _client(request: Request) -> str | None:
    # Behind the API gateway, uvicorn's --proxy-headers (forwarded_allow_ips) makes this
    # the caller's address; nothing here trusts a header by itself.
    return request.client.host if request.client else None


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def create_router(
    service: IdentityService,
    *,
    mailer: Mailer,
    mail_from: str,
    reset_url: str,
) -> APIRouter:
    """The routes, prefixed ``/api/v1/auth``; reset mails go through ``mailer`` from
    ``mail_from`` with the link ``reset_url`` + token."""
    router = APIRouter(prefix=AUTH_PREFIX, tags=["identity"])
    bearer = HTTPBearer(auto_error=False, description="access token (EdDSA JWT)")

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return verify_access_token(credentials.credentials, service.public_keys)
        except TokenError as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
            ) from None

    Caller = Annotated[Principal, Depends(principal)]

    def admin(caller: Caller) -> Principal:
        if caller.role is not Role.ADMIN or "admin" not in caller.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
        return caller

    Admin = Annotated[Principal, Depends(admin)]
    UserPath = Annotated[UserId, Path(description="usr_<32 hex>")]
    KeyPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="the key's id")]

    # -- logins ---------------------------------------------------------------------------
    @router.post(
        "/login",
        response_model=TokenPair,
        summary="Log in with e-mail and password",
        responses=_doc(401, 429),
    )
    async def login(body: LoginIn, request: Request, response: Response) -> TokenPair:
        _no_store(response)
        return await _call(service.login, body.email, body.password, _client(request))

    @router.post(
        "/pin-login",
        response_model=TokenPair,
        summary="Log in with employee number and PIN (employees, MOSIEs)",
        responses=_doc(401, 429),
    )
    async def pin_login(body: PinLoginIn, request: Request, response: Response) -> TokenPair:
        _no_store(response)
        return await _call(service.pin_login, body.employee_no, body.pin, _client(request))

    @router.post(
        "/api-key-login",
        response_model=AccessToken,
        summary="An access token for a machine client's API key (no refresh token)",
        responses=_doc(401, 429),
    )
    async def api_key_login(body: ApiKeyLogin, request: Request, response: Response) -> AccessToken:
        _no_store(response)
        return await _call(service.api_key_login, body.api_key, _client(request))

    @router.post(
        "/refresh",
        response_model=TokenPair,
        summary="Exchange a refresh token for a new pair",
        description="Each refresh token works once; presenting a used one again revokes "
        "its whole session (every token descended from the same login).",
        responses=_doc(401),
    )
    async def refresh(body: RefreshIn, response: Response) -> TokenPair:
        _no_store(response)
        return await _call(service.refresh, body.refresh_token)

    @router.post(
        "/logout",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="End this session (or every session of the user)",
        description="Answers 204 whether or not the token was valid. Access tokens "
        "already issued stay valid until they expire (at most 15 minutes).",
    )
    async def logout(body: LogoutIn) -> None:
        await _call(service.logout, body.refresh_token, everywhere=body.everywhere)

    # -- password reset -------------------------------------------------------------------
    @router.post(
        "/password-reset/request",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        summary="Mail a one-time reset token (30 minutes) to the address, if it has a user",
        description="The answer is the same whether or not the address has a user.",
        responses=_doc(429),
    )
    async def request_reset(
        body: PasswordResetRequest, request: Request, background: BackgroundTasks
    ) -> Accepted:
        mail = await _call(service.request_password_reset, body.email, _client(request))
        if mail is not None:
            message = reset_message(mail, sender=mail_from, reset_url=reset_url)
            background.add_task(send_quietly, mailer, message)
        return Accepted()

    @router.post(
        "/password-reset/confirm",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Set a new password with a reset token",
        description="Spends the token, ends every session of the user and lifts their "
        "password lock-out.",
        responses=_doc(400),
    )
    async def confirm_reset(body: PasswordResetConfirm) -> None:
        await _call(service.confirm_password_reset, body.token, body.new_password)

    # -- the caller -----------------------------------------------------------------------
    @router.get(
        "/me",
        response_model=User,
        summary="The caller's own user record",
        responses=_doc(401, 404),
    )
    async def me(caller: Caller) -> User:
        user = await _call(service.get_user, caller.subject)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the token's subject is no user")
        return user

    # -- users (admins) -------------------------------------------------------------------
    @router.post(
        "/users",
        response_model=UserCreated,
        status_code=status.HTTP_201_CREATED,
        summary="Create a user (an employee number gets a first PIN, shown once)",
        responses=_doc(400, 401, 403, 409),
    )
    async def add_user(body: UserIn, caller: Admin, response: Response) -> UserCreated:
        _no_store(response)
        return await _call(service.create_user, body, actor=caller.subject)

    @router.get(
        "/users",
        response_model=list[User],
        summary="List users",
        responses=_doc(401, 403),
    )
    async def list_users(
        _: Admin,
        role: Role | None = None,
        region: Region | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[User]:
        return await _call(
            service.list_users,
            role=role,
            region=region.value if region else None,
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/users/{user_id}",
        response_model=User,
        summary="One user",
        responses=_doc(401, 403, 404),
    )
    async def get_user(user_id: UserPath, _: Admin) -> User:
        user = await _call(service.get_user, user_id)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} does not exist")
        return user

    @router.patch(
        "/users/{user_id}",
        response_model=User,
        summary="Change a user's name, role, home region or account",
        responses=_doc(400, 401, 403, 404),
    )
    async def patch_user(user_id: UserPath, body: UserPatch, caller: Admin) -> User:
        return await _call(service.update_user, user_id, body, actor=caller.subject)

    @router.post(
        "/users/{user_id}/disable",
        response_model=User,
        summary="Disable a user and end their sessions",
        description="A technician's broker identity (broker_username) is revoked at the "
        "broker by `potr user disable` or `potr broker revoke`.",
        responses=_doc(400, 401, 403, 404),
    )
    async def disable_user(user_id: UserPath, caller: Admin) -> User:
        return await _call(service.disable_user, user_id, actor=caller.subject)

    @router.post(
        "/users/{user_id}/enable",
        response_model=User,
        summary="Enable a disabled user",
        responses=_doc(401, 403, 404),
    )
    async def enable_user(user_id: UserPath, caller: Admin) -> User:
        return await _call(service.enable_user, user_id, actor=caller.subject)

    @router.post(
        "/users/{user_id}/unlock",
        response_model=User,
        summary="Lift a user's password and PIN lock-outs",
        responses=_doc(401, 403, 404),
    )
    async def unlock_user(user_id: UserPath, caller: Admin) -> User:
        return await _call(service.unlock, user_id, actor=caller.subject)

    @router.post(
        "/users/{user_id}/reset-pin",
        response_model=PinReset,
        summary="Give an employee a new random PIN (shown once)",
        responses=_doc(400, 401, 403, 404),
    )
    async def reset_pin(user_id: UserPath, caller: Admin, response: Response) -> PinReset:
        _no_store(response)
        return await _call(service.reset_pin, user_id, actor=caller.subject)

    # -- API keys (admins) ----------------------------------------------------------------
    @router.post(
        "/users/{user_id}/api-keys",
        response_model=ApiKeyCreated,
        status_code=status.HTTP_201_CREATED,
        summary="Create an API key acting as the user (the key is shown once)",
        responses=_doc(400, 401, 403, 404),
    )
    async def add_api_key(
        user_id: UserPath, body: ApiKeyIn, caller: Admin, response: Response
    ) -> ApiKeyCreated:
        _no_store(response)
        return await _call(service.create_api_key, user_id, body, actor=caller.subject)

    @router.get(
        "/users/{user_id}/api-keys",
        response_model=list[ApiKey],
        summary="A user's API keys (never the keys themselves)",
        responses=_doc(401, 403, 404),
    )
    async def list_api_keys(user_id: UserPath, _: Admin) -> list[ApiKey]:
        return await _call(service.list_api_keys, user_id)

    @router.delete(
        "/api-keys/{key_id}",
        response_model=ApiKey,
        summary="Revoke an API key",
        responses=_doc(401, 403, 404),
    )
    async def revoke_api_key(key_id: KeyPath, caller: Admin) -> ApiKey:
        return await _call(service.revoke_api_key, key_id, actor=caller.subject)

    # -- audit (admins) -------------------------------------------------------------------
    @router.get(
        "/audit",
        response_model=list[AuditEntry],
        summary="The audit log, newest first",
        responses=_doc(401, 403),
    )
    async def audit(
        _: Admin,
        user_id: Annotated[UserId | None, Query()] = None,
        action: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_.]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditEntry]:
        return await _call(service.audit_log, user_id=user_id, action=action, limit=limit)

    return router
