"""The portal's static files (its CSS and script, and the vendored htmx and uPlot) with
cache-busting URLs: ``/static/<path>?v=<digest of the file>``.

A URL whose ``v`` is the file's current digest is cached for a year as immutable; any
other answer must be revalidated. A release that changes a file changes its URL, so no
browser keeps a stale script — and nothing is built: the digests are taken once, when
the app is built."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["STATIC_DIR", "STATIC_PREFIX", "Assets", "HashedStaticFiles"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PREFIX = "/static"
_IMMUTABLE = "public, max-age=31536000, immutable"


class Assets:
    """Path under the static root → its versioned URL."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root
        self.digests: Mapping[str, str] = {
            f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            for f in sorted(root.rglob("*"))
            if f.is_file()
        }

    def url(self, path: str) -> str:
        """``KeyError`` for a file that does not exist: a template naming one is a bug."""
        return f"{STATIC_PREFIX}/{path}?v={self.digests[path]}"

    def vendor(self, package: str, file: str) -> str:
        """The URL of ``file`` of vendored ``package`` (``vendor/<package>-<version>/``),
        whatever version is vendored: upgrading one touches no template."""
        found = [
            p for p in self.digests if p.startswith(f"vendor/{package}-") and p.endswith("/" + file)
        ]
        if len(found) != 1:
            raise KeyError(f"vendored {package}/{file}: found {found or 'none'}")
        return self.url(found[0])


class HashedStaticFiles(StaticFiles):
    """Starlette's static files, with the caching the URL's digest allows."""

    def __init__(self, assets: Assets) -> None:
        super().__init__(directory=assets.root)
        self._assets = assets

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        query = scope.get("query_string", b"").decode("latin-1")
        current = self._assets.digests.get(path.replace("\\", "/"))
        fresh = current is not None and query == f"v={current}"
        response.headers["Cache-Control"] = _IMMUTABLE if fresh else "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
