"""The API's input guard (ASGI middleware): what no route may ever see.

* a NUL character anywhere — path, query, a JSON body's keys and values or a form's
  fields (the web UI's): PostgreSQL cannot store one in ``text`` or ``jsonb`` and would
  answer with an error, not a row;
* a JSON body that is not strict JSON (RFC 8259): ``NaN``, ``Infinity``, numbers beyond
  a double, lone surrogates (Python's ``json`` accepts the first two; nothing
  downstream can store or sign them);
* a body above :data:`MAX_BODY_BYTES` (413).

Paths given as ``streamed`` (a photo upload: a raw image, larger than any JSON body) are
passed through unread: their route bounds the body itself as it streams in (413). Paths
given as ``uploads`` (the web UI's forms with an image: multipart, whose image bytes
hold NULs) are read up to ``upload_max_bytes`` and skip the NUL check of the body only:
their routes accept no free text but pattern-bound fields and check the rest.

Each is answered here, before routing, in the shape of the framework's own validation
answer (:class:`cloud.apitypes.Problem`), so the routes document them as their 422/413.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "InputGuard"]

#: Largest request body accepted (the biggest, a config of many devices, is a few kB).
MAX_BODY_BYTES = 1 << 20
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _has_nul(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_json(content_type: bytes | None) -> bool:
    """FastAPI reads a body as JSON without a content type or with a JSON one."""
    if not content_type:
        return True
    kind = content_type.split(b";")[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


def _has_nul_in_form(content_type: bytes | None, body: bytes) -> bool:
    """A form (the web UI's) with a NUL in a field: percent-encoded in a URL-encoded
    form, raw in a multipart one."""
    kind = (content_type or b"").split(b";")[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        return b"\x00" in unquote_to_bytes(body.replace(b"+", b" "))
    return kind == b"multipart/form-data" and b"\x00" in body


class InputGuard:
    """``streamed(path)``: whether a POST to ``path`` carries a raw body its route bounds
    (None: none does)."""

    def __init__(
        self,
        app: ASGIApp,
        streamed: Callable[[str], object] | None = None,
        *,
        uploads: Callable[[str], object] | None = None,
        upload_max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.streamed = streamed
        self.uploads = uploads
        self.upload_max_bytes = upload_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(raw_path):
            await _refuse(send, 422, [_issue(["path"], "a NUL character is not allowed")])
            return
        if b"\x00" in unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" ")):
            await _refuse(send, 422, [_issue(["query"], "a NUL character is not allowed")])
            return
        if scope["method"] not in _BODY_METHODS or (
            scope["method"] == "POST" and self.streamed is not None and self.streamed(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        upload = (
            scope["method"] == "POST" and self.uploads is not None and self.uploads(scope["path"])
        )
        limit = self.upload_max_bytes if upload else MAX_BODY_BYTES
        body, too_large = await _read_body(receive, limit)
        if body is None:  # the client went away
            return
        if too_large:
            await _refuse(send, 413, f"body larger than {limit} bytes")
            return
        headers = dict(scope.get("headers") or [])
        if body and _is_json(headers.get(b"content-type")):
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await _refuse(
                    send, 422, [_issue(["body"], f"not strict JSON: {exc}", "json_invalid")]
                )
                return
            if _has_nul(value):
                await _refuse(send, 422, [_issue(["body"], "a NUL character is not allowed")])
                return
        # An upload's image holds NULs: its route checks the form's other fields.
        elif body and not upload and _has_nul_in_form(headers.get(b"content-type"), body):
            await _refuse(send, 422, [_issue(["body"], "a NUL character is not allowed")])
            return
        await self.app(scope, _replay(body, receive), send)


def _issue(loc: list[str], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The whole body, and whether it was larger than ``limit`` (None: the client went
    away)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read, then the connection's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: object) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
