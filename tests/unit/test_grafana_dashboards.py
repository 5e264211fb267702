"""The provisioned Grafana files parse and hang together, without Grafana or a database:
every panel has the provisioned datasource and a raw SQL target, every ``$variable``
used is defined (before the variables whose queries use it), uids and panel ids are
unique, and the region's compose service mounts the files where the provisioning names
them and sets every ``${NAME}`` the datasource reads. Each query's SQL runs against a
migrated schema in ``tests/integration/test_grafana_sql.py``."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.grafana import (
    BUILTIN,
    DASHBOARD_NAMES,
    DASHBOARDS,
    DATASOURCES,
    GRAFANA,
    PROVIDERS,
    READER_SQL,
    dashboard,
    expand,
    names_used,
    panels,
    queries,
    variables,
    yaml_file,
)
from tests.unit.test_deploy_compose import REGIONS, SECRETS_EXAMPLE, compose, env_file_names

PANEL_TYPES = {"timeseries", "stat", "table"}
COMPOSE_DIR = GRAFANA.parent / "compose"


def datasource() -> dict[str, Any]:
    [ds] = yaml_file(DATASOURCES)["datasources"]
    assert isinstance(ds, dict)
    return ds


def test_the_dashboards_directory_holds_exactly_the_three_dashboards() -> None:
    assert sorted(p.stem for p in DASHBOARDS.glob("*.json")) == sorted(DASHBOARD_NAMES)


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_panel_queries_the_provisioned_datasource_in_raw_sql(name: str) -> None:
    board = dashboard(name)
    ds = datasource()
    assert board["schemaVersion"] >= 36  # datasource references by uid
    assert board["uid"]
    assert len(board["uid"]) <= 40
    found = list(panels(board))
    assert found, "no panel"
    for panel in found:
        title = panel["title"]
        assert panel["type"] in PANEL_TYPES, title
        assert panel["datasource"] == {"type": ds["type"], "uid": ds["uid"]}, title
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), title
        targets = panel["targets"]
        assert targets, f"{title}: no target"
        refs = [t["refId"] for t in targets]
        assert len(set(refs)) == len(refs), f"{title}: refIds {refs}"
        for target in targets:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], title
            assert target["rawQuery"] is True, title
            assert target["editorMode"] == "code", title
            assert target["rawSql"].strip(), title
            expected = "time_series" if panel["type"] == "timeseries" else "table"
            assert target["format"] == expected, title


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_variable_used_is_defined_before_what_uses_it(name: str) -> None:
    board = dashboard(name)
    ds = datasource()
    defined: list[str] = []
    for var in variables(board):
        assert var["type"] == "query", var["name"]
        assert var["datasource"]["uid"] == ds["uid"], var["name"]
        used = names_used(var["query"]) - BUILTIN
        assert used <= set(defined), f"variable {var['name']} uses {used - set(defined)}"
        defined.append(var["name"])
    assert len(set(defined)) == len(defined), defined
    for query in queries(name):
        used = names_used(query.sql) - BUILTIN
        assert used <= set(defined), f"{query.id} uses undefined {used - set(defined)}"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_defined_variable_is_used(name: str) -> None:
    used = set().union(*(names_used(q.sql) for q in queries(name)))
    unused = [v["name"] for v in variables(dashboard(name)) if v["name"] not in used]
    assert not unused, f"variables no query reads: {unused}"


def test_uids_and_titles_are_unique_and_panel_ids_and_titles_per_dashboard() -> None:
    boards = [dashboard(n) for n in DASHBOARD_NAMES]
    uids = [b["uid"] for b in boards]
    titles = [b["title"] for b in boards]
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles
    assert datasource()["uid"] not in uids
    for board in boards:
        ids = [p["id"] for p in panels(board)]
        assert len(set(ids)) == len(ids), f"{board['uid']}: panel ids {ids}"
        # Titles name the panels in test ids and failures.
        names = [p["title"] for p in panels(board)]
        assert len(set(names)) == len(names), f"{board['uid']}: panel titles {names}"


def test_the_expander_writes_what_grafana_sends() -> None:
    from datetime import UTC, datetime

    sql = "SELECT 1 WHERE $__timeFilter(date_trunc('day', ts)) AND t < $__timeTo()"
    sql += " AND s IN ($site) AND r IN (${region}) AND '$__interval'::interval > $__timeFrom()"
    out = expand(
        sql,
        start=datetime(2024, 3, 4, tzinfo=UTC),
        end=datetime(2024, 3, 4, 2, tzinfo=UTC),
        interval="1m",
        values={"site": ["10"], "region": ["au", "o'x"]},
        multi={"region": True},
    )
    assert out == (
        "SELECT 1 WHERE date_trunc('day', ts) BETWEEN '2024-03-04T00:00:00Z'"
        " AND '2024-03-04T02:00:00Z' AND t < '2024-03-04T02:00:00Z' AND s IN (10)"
        " AND r IN ('au','o''x') AND '1m'::interval > '2024-03-04T00:00:00Z'"
    )
    with pytest.raises(AssertionError, match="nor a variable"):
        expand("SELECT $nope", start=datetime.now(UTC), end=datetime.now(UTC))


def test_the_datasource_holds_no_secret_and_reads_its_settings_from_the_environment() -> None:
    ds = datasource()
    assert ds["type"] == "grafana-postgresql-datasource"
    assert ds["access"] == "proxy"
    for key, value in ds["secureJsonData"].items():
        assert re.fullmatch(r"\$\{[A-Z_]+\}", value), f"secureJsonData.{key} is a literal"
    for key in ("url", "user"):
        assert re.fullmatch(r"\$\{[A-Z_]+\}", ds[key]), key
    timescale = ds["jsonData"]["timescaledb"]
    assert re.fullmatch(r"\$\{[A-Z_]+\}", timescale), "TimescaleDB on or off by environment"


def _datasource_names() -> set[str]:
    return set(re.findall(r"\$\{([A-Z_]+)\}", DATASOURCES.read_text(encoding="utf-8")))


@pytest.mark.parametrize("region", REGIONS)
def test_the_region_runs_grafana_with_these_files_and_the_variables_they_read(
    region: str,
) -> None:
    grafana = compose(region)["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode)
    provisioning = (COMPOSE_DIR / mounts["/etc/grafana/provisioning"][0]).resolve()
    assert provisioning == GRAFANA / "provisioning"
    [provider] = yaml_file(PROVIDERS)["providers"]
    path = provider["options"]["path"]
    source, mode = mounts[path]
    assert (COMPOSE_DIR / source).resolve() == DASHBOARDS, f"{path} is not the dashboards"
    assert mode == ["ro"]
    assert mounts["/etc/grafana/provisioning"][1] == ["ro"]
    assert PurePosixPath(path).is_relative_to("/var/lib/grafana")
    env = set(grafana["environment"])
    env_file = Path(grafana["env_file"])
    assert env_file.parent == Path(f"/srv/potr/{region}/secrets")
    secret = set(env_file_names(SECRETS_EXAMPLE / env_file.name))
    missing = _datasource_names() - env - secret
    assert not missing, f"the datasource reads {missing}, the grafana service sets none"
    assert not [n for n in env if "PASSWORD" in n], "a password in the compose file"
    assert grafana["environment"]["GRAFANA_DB_USER"] != "potr", "Grafana reads, never owns"
    # Grafana's UI is plain HTTP: never published beyond the host's loopback.
    assert all(p.startswith("127.0.0.1:") for p in grafana["ports"]), grafana["ports"]


def test_the_reader_role_grants_only_select() -> None:
    text = READER_SQL.read_text(encoding="utf-8").upper()
    grants = re.findall(r"^GRANT (\w+)", text, re.M)
    assert grants, "no grant"
    assert set(grants) <= {"USAGE", "SELECT"}, grants
    assert "TELEMETRY.READINGS" not in text, "curves come from the rollups, never raw rows"
