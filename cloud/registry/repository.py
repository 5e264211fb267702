"""Registry SQL (schema ``registry``); every function takes a connection in a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cloud.adapters.postgres import Connection, dict_row
from cloud.regional_ids import next_id_sql
from cloud.registry.models import Device, Gateway, GatewayIn, Site, SiteIn, SiteMatch
from cloud.scope import Scope, site_condition
from cloud.search import SearchQuery

_SITE_COLS = "id, name, region, time_zone, utility, latitude, longitude, account_id, created_at"
_SITE_COLUMNS = tuple(c.strip() for c in _SITE_COLS.split(","))
_GW_COLS = "id, site_id, region, enabled, created_at"
_DEV_COLS = (
    "id, gateway_id, local_id, kind, manufacturer, model, serial, firmware, models,"
    " first_seen, last_birth"
)
#: What internal callers (events, the CLI) reach: everything. Routes pass the caller's.
_ALL = Scope.everything()
#: A gateway's site, for scoping gateways and devices by their site's region and account.
_GW_SITE = "JOIN registry.sites s ON s.id = g.site_id"


def insert_site(conn: Connection[Any], site: SiteIn) -> Site:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO registry.sites (id, name, region, time_zone, utility, latitude,"
            f" longitude) VALUES ({next_id_sql('registry.sites_id_seq')}, %s, %s, %s, %s, %s,"
            f" %s) RETURNING {_SITE_COLS}",
            (
                site.region.value,
                site.name,
                site.region.value,
                site.time_zone,
                site.utility,
                site.latitude,
                site.longitude,
            ),
        )
        .fetchone()
    )
    assert row is not None
    return Site.model_validate(row)


def get_site(
    conn: Connection[Any], site_id: int, *, share_lock: bool = False, scope: Scope = _ALL
) -> Site | None:
    """``share_lock``: hold the site until commit (a concurrent change of it waits);
    None for a site outside ``scope`` as for one that does not exist."""
    lock = " FOR SHARE" if share_lock else ""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_SITE_COLS} FROM registry.sites s"
            f" WHERE id = %(site)s AND {site_condition('s')}{lock}",
            {"site": site_id, **scope.sql_params()},
        )
        .fetchone()
    )
    return Site.model_validate(row) if row else None


def list_sites(conn: Connection[Any], scope: Scope, limit: int, offset: int) -> list[Site]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_SITE_COLS} FROM registry.sites s WHERE {site_condition('s')}"
            " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
            {"limit": limit, "offset": offset, **scope.sql_params()},
        )
        .fetchall()
    )
    return [Site.model_validate(r) for r in rows]


#: Every way a search text can hit a site, ranked by field (an exact id first, a device's
#: serial before its local id before the site's name). ``ILIKE`` substrings, escaped by
#: :func:`cloud.search.contains_pattern` (why not pg_trgm: :mod:`cloud.search`).
_SITE_HITS = (
    "SELECT s.id AS site_id, 'site_id' AS matched, s.id::text AS value,"
    " NULL::int AS device_id, 0 AS field_rank FROM registry.sites s WHERE s.id = %(number)s"
    " UNION ALL SELECT g.site_id, 'device_serial', d.serial, d.id, 1"
    " FROM registry.devices d JOIN registry.gateways g ON g.id = d.gateway_id"
    " WHERE d.serial ILIKE %(pattern)s ESCAPE '\\'"
    " UNION ALL SELECT g.site_id, 'device_local_id', d.local_id, d.id, 2"
    " FROM registry.devices d JOIN registry.gateways g ON g.id = d.gateway_id"
    " WHERE d.local_id ILIKE %(pattern)s ESCAPE '\\'"
    " UNION ALL SELECT s.id, 'site_name', s.name, NULL, 3"
    " FROM registry.sites s WHERE s.name ILIKE %(pattern)s ESCAPE '\\'"
)


def find_sites(conn: Connection[Any], scope: Scope, query: SearchQuery) -> list[SiteMatch]:
    """Sites in ``scope`` that ``query`` hits, one row each with its best hit (an exact
    value over a substring, then by field rank); exact hits first, then by field rank
    and site id."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"WITH hits AS ({_SITE_HITS}),"
            " best AS (SELECT DISTINCT ON (site_id) site_id, matched, value, device_id,"
            " field_rank, lower(value) = lower(%(text)s) AS exact FROM hits"
            " ORDER BY site_id, exact DESC, field_rank, value, device_id)"
            f" SELECT {_site_cols('s')}, b.matched, b.value, b.device_id"
            f" FROM best b JOIN registry.sites s ON s.id = b.site_id WHERE {site_condition('s')}"
            " ORDER BY b.exact DESC, b.field_rank, s.id LIMIT %(limit)s",
            {
                "number": query.number,
                "pattern": query.pattern,
                "text": query.text,
                "limit": query.limit,
                **scope.sql_params(),
            },
        )
        .fetchall()
    )
    return [
        SiteMatch(
            site=Site.model_validate({k: r[k] for k in _SITE_COLUMNS}),
            matched=r["matched"],
            value=r["value"],
            device_id=r["device_id"],
        )
        for r in rows
    ]


def _site_cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in _SITE_COLUMNS)


def update_site_time_zone(conn: Connection[Any], site_id: int, time_zone: str) -> Site | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"UPDATE registry.sites SET time_zone = %s WHERE id = %s RETURNING {_SITE_COLS}",
            (time_zone, site_id),
        )
        .fetchone()
    )
    return Site.model_validate(row) if row else None


def update_site_account(conn: Connection[Any], site_id: int, account_id: str | None) -> Site | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"UPDATE registry.sites SET account_id = %s WHERE id = %s RETURNING {_SITE_COLS}",
            (account_id, site_id),
        )
        .fetchone()
    )
    return Site.model_validate(row) if row else None


def site_gateways(conn: Connection[Any], site_id: int) -> list[Gateway]:
    """Every gateway of a site (no paging: what an update must announce)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_GW_COLS} FROM registry.gateways WHERE site_id = %s ORDER BY id", (site_id,)
        )
        .fetchall()
    )
    return [Gateway.model_validate(r) for r in rows]


def insert_gateway(conn: Connection[Any], gateway: GatewayIn, region: str) -> Gateway:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"INSERT INTO registry.gateways (id, site_id, region) VALUES (%s, %s, %s)"
            f" RETURNING {_GW_COLS}",
            (gateway.id, gateway.site_id, region),
        )
        .fetchone()
    )
    assert row is not None
    return Gateway.model_validate(row)


def get_gateway(conn: Connection[Any], gateway_id: str, scope: Scope = _ALL) -> Gateway | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_gw_cols('g')} FROM registry.gateways g {_GW_SITE}"
            f" WHERE g.id = %(gw)s AND {site_condition('s')}",
            {"gw": gateway_id, **scope.sql_params()},
        )
        .fetchone()
    )
    return Gateway.model_validate(row) if row else None


def _gw_cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _GW_COLS.split(","))


def _dev_cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _DEV_COLS.split(","))


def gateway_ids(conn: Connection[Any], scope: Scope, limit: int) -> list[str]:
    """Ids of the gateways in ``scope`` (at most ``limit``)."""
    rows = conn.execute(
        f"SELECT g.id FROM registry.gateways g {_GW_SITE} WHERE {site_condition('s')}"
        " ORDER BY g.id LIMIT %(limit)s",
        {"limit": limit, **scope.sql_params()},
    ).fetchall()
    return [str(r[0]) for r in rows]


def update_gateway_enabled(conn: Connection[Any], gateway_id: str, enabled: bool) -> Gateway | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"UPDATE registry.gateways SET enabled = %s WHERE id = %s RETURNING {_GW_COLS}",
            (enabled, gateway_id),
        )
        .fetchone()
    )
    return Gateway.model_validate(row) if row else None


def list_gateways(
    conn: Connection[Any], site_id: int | None, limit: int, offset: int, scope: Scope = _ALL
) -> list[Gateway]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_gw_cols('g')} FROM registry.gateways g {_GW_SITE}"
            f" WHERE (%(site)s::int IS NULL OR g.site_id = %(site)s) AND {site_condition('s')}"
            " ORDER BY g.id LIMIT %(limit)s OFFSET %(offset)s",
            {"site": site_id, "limit": limit, "offset": offset, **scope.sql_params()},
        )
        .fetchall()
    )
    return [Gateway.model_validate(r) for r in rows]


def find_device_id(conn: Connection[Any], gateway_id: str, local_id: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM registry.devices WHERE gateway_id = %s AND local_id = %s",
        (gateway_id, local_id),
    ).fetchone()
    return int(row[0]) if row else None


def insert_device_if_absent(
    conn: Connection[Any], device_id: int, gateway_id: str, local_id: str
) -> bool:
    """Record a device under the key ingest gave it, unless it is known; True if new."""
    row = conn.execute(
        "INSERT INTO registry.devices (id, gateway_id, local_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (gateway_id, local_id) DO NOTHING RETURNING id",
        (device_id, gateway_id, local_id),
    ).fetchone()
    return row is not None


def upsert_birth_devices(
    conn: Connection[Any],
    gateway_id: str,
    rows: Sequence[tuple[int, str, str, str | None, str | None, str | None, str | None, list[int]]],
) -> None:
    """Rows of (device id, local_id, kind, manufacturer, model, serial, firmware, models);
    the id is ingest's key and never changes once recorded."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO registry.devices (id, gateway_id, local_id, kind, manufacturer, model,"
            " serial, firmware, models, last_birth)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (gateway_id, local_id) DO UPDATE SET kind = EXCLUDED.kind,"
            " manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model,"
            " serial = EXCLUDED.serial, firmware = EXCLUDED.firmware,"
            " models = EXCLUDED.models, last_birth = EXCLUDED.last_birth",
            [(dev, gateway_id, *rest) for dev, *rest in rows],
        )


#: A device's gateway and site, for scoping devices.
_DEV_SITE = "JOIN registry.gateways g ON g.id = d.gateway_id " + _GW_SITE


def get_device(conn: Connection[Any], device_id: int, scope: Scope = _ALL) -> Device | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_dev_cols('d')} FROM registry.devices d {_DEV_SITE}"
            f" WHERE d.id = %(dev)s AND {site_condition('s')}",
            {"dev": device_id, **scope.sql_params()},
        )
        .fetchone()
    )
    return Device.model_validate(row) if row else None


def list_devices(
    conn: Connection[Any], gateway_id: str | None, limit: int, offset: int, scope: Scope = _ALL
) -> list[Device]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_dev_cols('d')} FROM registry.devices d {_DEV_SITE}"
            f" WHERE (%(gw)s::text IS NULL OR d.gateway_id = %(gw)s) AND {site_condition('s')}"
            " ORDER BY d.id LIMIT %(limit)s OFFSET %(offset)s",
            {"gw": gateway_id, "limit": limit, "offset": offset, **scope.sql_params()},
        )
        .fetchall()
    )
    return [Device.model_validate(r) for r in rows]
