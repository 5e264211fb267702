"""Another region's finished report tables over its reports API (the HTTP adapter of
the reports across every region, when each region has its own database).

:class:`RemoteReports` asks a region's API, through the API gateway, for
``GET /api/v1/<region>/reports/<name>?month=YYYY-MM&format=parts`` — the table in exact
form (:mod:`cloud.reports.wire`), never raw data — with the caller's own bearer token
(an admin's token is valid in every region: every region verifies identity's tokens
with the same public key, and an admin's scope is every region). It never logs the
token. A region that does not answer within the timeout, or answers anything but the
exact table, raises :class:`~cloud.reports.packs.RegionUnavailable` naming the region
and why: the cross-region answer then says which region is missing instead of adding
up the others (:func:`~cloud.reports.packs.combined_report`).
"""

from __future__ import annotations

from datetime import date

import httpx
from pydantic import ValidationError

from cloud.reports.packs import RegionUnavailable
from cloud.reports.tables import ReportTable
from cloud.reports.wire import PARTS_MEDIA_TYPE, ReportParts, table_of
from cloud.scope import Scope
from contracts.topics import Region

__all__ = ["CallerTables", "RemoteReports"]

#: The most a region's exact table may weigh (1,000 rows of 32 short cells: far less).
_MAX_BYTES = 4 * 1024 * 1024


class RemoteReports:
    """Region ``region``'s tables from ``gateway_url`` (``https://api.example``; the
    gateway routes ``/api/v1/<region>/…`` to the region's processes), each request
    bounded by ``timeout_s``. Thread-safe (one ``httpx.Client``); :meth:`close` it."""

    def __init__(
        self,
        region: Region,
        gateway_url: str,
        *,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.region = region
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            base_url=gateway_url.rstrip("/"),
            timeout=timeout_s,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def for_caller(self, token: str) -> CallerTables:
        """This region's tables as ``token``'s bearer may read them."""
        return CallerTables(self, token)

    def table(self, name: str, month: date, token: str) -> ReportTable:
        """Report ``name`` of ``month`` as the region made it; raises
        :class:`RegionUnavailable` (module docstring)."""
        path = f"/api/v1/{self.region.value}/reports/{name}"
        try:
            answer = self._client.get(
                path,
                params={"month": f"{month:%Y-%m}", "format": "parts"},
                headers={"Authorization": f"Bearer {token}", "Accept": PARTS_MEDIA_TYPE},
            )
        except httpx.TimeoutException:
            raise self._missing(f"no answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise self._missing(f"unreachable ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise self._missing(f"answered {answer.status_code}")
        if not answer.headers.get("content-type", "").startswith(PARTS_MEDIA_TYPE):
            raise self._missing("answered something other than the exact table")
        if len(answer.content) > _MAX_BYTES:
            raise self._missing("answered a table too large")
        try:
            table = table_of(ReportParts.model_validate_json(answer.content))
        except (ValidationError, ValueError):
            raise self._missing("answered a table that does not hold together") from None
        if (table.name, table.month, table.region) != (name, month, self.region.value):
            raise self._missing("answered another report, month or region")
        return table

    def _missing(self, reason: str) -> RegionUnavailable:
        return RegionUnavailable(self.region, reason)


class CallerTables:
    """A :class:`~cloud.reports.packs.TableSource` over one region's API for one caller:
    the region scopes by the caller's token, so ``scope`` is not sent."""

    def __init__(self, remote: RemoteReports, token: str) -> None:
        self._remote = remote
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"CallerTables({self._remote.region.value})"

    def report(self, name: str, month: date, *, scope: Scope) -> ReportTable:
        return self._remote.table(name, month, self._token)
