"""Which routes the portal serves, recorded as its routers are included.

FastAPI 0.165 keeps an included router as one opaque entry of ``app.routes`` (no longer
its routes, flattened), so walking ``app.routes`` finds no ``APIRoute`` and a check that
walked it would pass vacuously. Each router is recorded here as it is included instead;
the policy check at start (:func:`cloud.portal.app.create_app`) and the authorisation
tests read this record.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

__all__ = ["ServedRoute", "record_routes", "served_routes"]


@dataclass(frozen=True)
class ServedRoute:
    path: str
    methods: frozenset[str]
    #: The route's ``operationId``: its key in the policy table.
    key: str | None


def record_routes(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Note ``router``'s routes (to be included under ``prefix``) as served by ``app``."""
    served: list[ServedRoute] = getattr(app.state, "portal_routes", [])
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only plain API routes are recorded")
        served.append(
            ServedRoute(prefix + route.path, frozenset(route.methods or ()), route.operation_id)
        )
    app.state.portal_routes = served


def served_routes(app: FastAPI) -> list[ServedRoute]:
    return list(getattr(app.state, "portal_routes", []))
