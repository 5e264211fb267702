"""The API's input guard and its framework answers, in process (no sockets): NUL
characters, non-strict JSON and oversize bodies never reach a route; a 405 names every
method of the path; a 422 never echoes the input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from cloud.portal.errors import add_error_handlers
from cloud.portal.guard import MAX_BODY_BYTES, InputGuard


class Body(BaseModel):
    name: str
    value: float = 0.0


def _client() -> tuple[TestClient, list[Any]]:
    seen: list[Any] = []
    app = FastAPI()
    add_error_handlers(app)
    app.add_middleware(InputGuard)

    @app.get("/things/{name}")
    async def get_thing(name: str, q: str = "") -> dict[str, str]:
        seen.append((name, q))
        return {"name": name}

    @app.post("/things/{name}")
    async def post_thing(name: str, body: Body) -> dict[str, Any]:
        seen.append(body)
        return body.model_dump()

    return TestClient(app), seen


@pytest.mark.parametrize("path", ["/things/a%00b", "/things/ab?q=x%00y", "/things/ab?q%00=1"])
def test_a_nul_in_the_path_or_query_is_422_before_any_route(path: str) -> None:
    client, seen = _client()
    answer = client.get(path)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == "a NUL character is not allowed"
    assert seen == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a\\u0000b"}',
        b'{"name\\u0000": "x", "name": "y"}',
        b'{"name": "x", "value": NaN}',
        b'{"name": "x", "value": Infinity}',
        b'{"name": "x", "value": 1e999}',
        b'{"name": "\\ud800"}',
        b'{"name": "x",}',
    ],
)
def test_a_body_that_is_not_strict_json_or_holds_a_nul_is_422(body: bytes) -> None:
    client, seen = _client()
    answer = client.post("/things/a", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body"]
    assert seen == []


def test_a_body_too_large_is_413() -> None:
    client, seen = _client()
    body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    answer = client.post("/things/a", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert seen == []


def test_a_good_request_passes_unchanged() -> None:
    client, seen = _client()
    answer = client.post("/things/a", json={"name": "ok", "value": 1.5})
    assert answer.status_code == 200
    assert answer.json() == {"name": "ok", "value": 1.5}
    assert client.get("/things/b", params={"q": "z"}).status_code == 200
    assert seen == [Body(name="ok", value=1.5), ("b", "z")]


def test_a_malformed_request_is_422_naming_the_field_without_echoing_it() -> None:
    client, _ = _client()
    answer = client.post("/things/a", json={"name": "secret-value", "value": "not a number"})
    assert answer.status_code == 422
    [issue] = answer.json()["detail"]
    assert issue["loc"] == ["body", "value"]
    assert set(issue) == {"loc", "msg", "type"}
    assert "secret-value" not in answer.text


def test_an_undeclared_method_is_405_naming_every_method_of_the_path() -> None:
    client, _ = _client()
    answer = client.delete("/things/a")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert client.options("/things/a").headers["allow"] == "GET, POST"


def test_a_405_names_the_methods_of_an_included_routers_path() -> None:
    from fastapi import APIRouter

    app = FastAPI()
    add_error_handlers(app)
    router = APIRouter()

    @router.get("/things/{name}")
    async def read(name: str) -> dict[str, str]:
        return {"name": name}

    @router.patch("/things/{name}")
    async def change(name: str) -> dict[str, str]:
        return {"name": name}

    app.include_router(router, prefix="/api/v1/{region}")
    answer = TestClient(app).delete("/api/v1/au/things/a")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, PATCH"


def test_an_upload_form_passes_its_image_bytes_within_its_own_limit() -> None:
    """The web UI's image forms: multipart with NULs in the image, read up to their own
    limit (above MAX_BODY_BYTES); a form elsewhere with a NUL is still refused."""
    seen: list[int] = []
    app = FastAPI()
    add_error_handlers(app)
    limit = MAX_BODY_BYTES * 2
    app.add_middleware(InputGuard, uploads=lambda p: p == "/upload", upload_max_bytes=limit)

    @app.post("/upload")
    @app.post("/other")
    async def upload(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {}

    client = TestClient(app)
    image = {"photo": ("p.png", b"\x89PNG\x00" * (MAX_BODY_BYTES // 3), "image/png")}
    assert client.post("/upload", files=image).status_code == 200
    assert seen
    assert seen[0] > MAX_BODY_BYTES
    small = {"photo": ("p.png", b"\x89PNG\x00", "image/png")}
    assert client.post("/other", files=small).status_code == 422
    huge = {"photo": ("p.png", b"\x00" * (limit + 1), "image/png")}
    assert client.post("/upload", files=huge).status_code == 413
    assert len(seen) == 1
