"""The portal answers every service's refusal the same way, whatever route raised it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud import config, registry
from cloud.portal.errors import add_error_handlers


def _client_raising(error: Exception) -> TestClient:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (registry.NotFoundError("site 7 not found"), 404),
        (registry.ConflictError("gateway gw-1 already exists"), 409),
        (config.NotFoundError("unknown gateway gw-9"), 404),
        (config.ConflictError("nothing to roll back to"), 409),
        (config.ConfigError("anything else the service refuses"), 400),
    ],
)
def test_a_refusal_is_answered_with_its_status_and_message(error: Exception, status: int) -> None:
    answer = _client_raising(error).get("/boom")
    assert answer.status_code == status
    assert answer.json() == {"detail": str(error)}


def test_a_refused_value_names_field_limit_and_reason() -> None:
    answer = _client_raising(config.RefusedError("args.pct", "100", "above the maximum")).get(
        "/boom"
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": {
            "field": "args.pct",
            "limit": "100",
            "reason": "above the maximum",
            "message": "args.pct: above the maximum (limit 100)",
        }
    }


def test_an_unexpected_error_is_still_a_500() -> None:
    assert _client_raising(RuntimeError("bug")).get("/boom").status_code == 500
