"""Headers every web UI answer carries (ASGI middleware; the JSON API is left alone).

The Content Security Policy allows scripts and styles from the portal's own origin only
— no inline script, no ``eval`` (htmx is configured without it), no CDN — so an injected
``<script>`` cannot run; no site may frame the portal (clickjacking); no referrer leaves
it. ``Cache-Control: no-store`` on pages: they hold a person's data."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "NOT_PAGES", "SecurityHeaders"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


#: Not the web UI's: the JSON API, its health check and FastAPI's API docs (whose page
#: loads Swagger UI from a CDN, which the UI's policy would block).
NOT_PAGES = ("/api/", "/healthz", "/docs", "/redoc", "/openapi.json")


class SecurityHeaders:
    """Adds :data:`CSP` and friends to every answer of the web UI."""

    def __init__(self, app: ASGIApp, not_pages: tuple[str, ...] = NOT_PAGES) -> None:
        self.app = app
        self.not_pages = not_pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.not_pages):
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _PAGE_HEADERS.items():
                    headers.setdefault(name, value)
                if not is_static:
                    headers["cache-control"] = "no-store"
                    headers.append("vary", "Cookie")
            await send(message)

        await self.app(scope, receive, send_with_headers)
