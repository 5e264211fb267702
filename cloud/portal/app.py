"""The portal's app factory: REST API under ``/api/v1`` plus ``/healthz``.

Authorisation (for now): every ``/api/v1`` route needs a bearer token; admin, operator,
support and mosie read the fleet (sites, gateways, devices, readings); admin and operator
create sites and gateways and alone reach the config service (commands, configs);
customer gets 403 on these fleet-wide routes until customer
scoping arrives. Domain errors become HTTP answers in one place (:mod:`cloud.portal.errors`).
"""

# No ``from __future__ import annotations``: ``Writer`` is local to ``create_app`` and
# FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, FastAPI, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cloud.config import ConfigService
from cloud.config import create_router as config_router
from cloud.identity import TokenClaims
from cloud.ingest import CompletenessReader
from cloud.ingest import create_router as ingest_router
from cloud.portal.auth import FLEET_READERS, FLEET_WRITERS, require_roles
from cloud.portal.errors import add_error_handlers
from cloud.portal.settings import ApiSettings
from cloud.registry import RegistryService
from cloud.registry import create_router as registry_router
from cloud.telemetry import TelemetryReader
from cloud.telemetry import create_router as telemetry_router

API_PREFIX = "/api/v1"


class Health(BaseModel):
    status: str
    checks: dict[str, str]


def create_app(
    settings: ApiSettings,
    registry: RegistryService,
    telemetry_reader: TelemetryReader,
    *,
    health_checks: Mapping[str, Callable[[], None]] | None = None,
    completeness: CompletenessReader | None = None,
    config: ConfigService | None = None,
) -> FastAPI:
    """Wire the routers to the given services; no connections are opened here (a process
    builds it with :func:`cloud.bootstrap.create_api`)."""
    app = FastAPI(
        title="PoTR portal API",
        version="1.0.0",
        description="Fleet registry and telemetry of Power on the Roof. Every `/api/v1` "
        "route needs `Authorization: Bearer <JWT>`; SI units throughout.",
    )
    secret = settings.jwt_secret.get_secret_value()
    read = require_roles(secret, FLEET_READERS)
    write = require_roles(secret, FLEET_WRITERS)
    checks = dict(health_checks or {"database": registry.ping})
    add_error_handlers(app)

    app.include_router(registry_router(registry, read=read, write=write), prefix=API_PREFIX)
    app.include_router(
        telemetry_router(telemetry_reader, read=read, device_exists=telemetry_reader.device_exists),
        prefix=API_PREFIX,
    )
    if completeness is not None:
        app.include_router(ingest_router(completeness, read=read), prefix=API_PREFIX)
    if config is not None:
        # Commands and configs write to devices: operators and admins only, reads included.
        Writer = Annotated[TokenClaims, Depends(write)]

        def actor(claims: Writer) -> str:
            return claims.sub

        app.include_router(config_router(config, actor=actor), prefix=API_PREFIX)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["ops"],
        summary="Liveness and database",
        responses={503: {"model": Health, "description": "a dependency is down"}},
    )
    async def healthz(response: Response) -> Health:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await run_in_threadpool(check)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}"
        ok = all(v == "ok" for v in results.values())
        if not ok:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="ok" if ok else "degraded", checks=results)

    return app
