"""The provisioned Grafana files (``deploy/grafana``) for the tests: the dashboards,
their SQL (panel targets and variable queries), and an expander of Grafana's
PostgreSQL macros and template variables as Grafana applies them before a query goes
to the server.

What Grafana does (its SQL datasources' macro engine and template service):
``$__timeFilter(col)`` is ``col BETWEEN '<from>' AND '<to>'`` with RFC 3339 UTC times,
``$__timeFrom()`` / ``$__timeTo()`` are those times quoted, ``$__interval`` the panel's
interval in Grafana's short form (``5m``, ``1h``, ``30s``), and a variable that is
multi-value or has "All" becomes its values single-quoted and comma-separated (a
single-value one is put in raw).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "potr.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "potr.yaml"
READER_SQL = GRAFANA / "reader.sql"
DASHBOARD_NAMES = ("fleet-overview", "site-detail", "ingest-health")
#: Grafana's own variables and macros the dashboards may use.
BUILTIN = {"__timeFilter", "__timeFrom", "__timeTo", "__interval"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def dashboard(name: str) -> dict[str, Any]:
    data = json.loads((DASHBOARDS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def yaml_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows too."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(board.get("templating", {}).get("list", []))


@dataclass(frozen=True)
class Query:
    """One SQL text of a dashboard: a panel's target or a variable's query."""

    board: str
    where: str  # "panel <title> / <refId>" or "variable <name>"
    sql: str

    @property
    def id(self) -> str:
        return f"{self.board}: {self.where}"


def queries(name: str) -> list[Query]:
    board = dashboard(name)
    out = [Query(name, f"variable {v['name']}", v["query"]) for v in variables(board)]
    for panel in panels(board):
        for target in panel.get("targets", []):
            out.append(Query(name, f"panel {panel['title']} / {target['refId']}", target["rawSql"]))
    return out


def all_queries() -> list[Query]:
    return [q for name in DASHBOARD_NAMES for q in queries(name)]


def names_used(sql: str) -> set[str]:
    """The ``$name`` / ``${name}`` references of ``sql`` (macros included)."""
    return {a or b for a, b in _VARIABLE.findall(sql)}


# -- the expander -----------------------------------------------------------------------


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _macro_args(sql: str, at: int) -> tuple[str, int]:
    """The text between the parenthesis at ``at`` and its match, and the index after it."""
    assert sql[at] == "(", sql[at:]
    depth = 0
    for i in range(at, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if depth == 0:
            return sql[at + 1 : i], i + 1
    raise AssertionError(f"unbalanced macro call: {sql[at:]}")


def expand(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    interval: str = "5m",
    values: Mapping[str, Sequence[str]] | None = None,
    multi: Mapping[str, bool] | None = None,
) -> str:
    """``sql`` as Grafana sends it for the range ``start``..``end``: macros expanded,
    each variable ``values[name]`` (quoted and comma-separated when ``multi[name]``, else
    its one value raw). An unknown ``$name`` fails (Grafana would send it as is)."""
    values = values or {}
    multi = multi or {}
    frm, to = _quoted(_rfc3339(start)), _quoted(_rfc3339(end))
    out = []
    i = 0
    while (at := sql.find("$__time", i)) >= 0:
        out.append(sql[i:at])
        name = re.match(r"\$(__time\w+)", sql[at:])
        assert name, sql[at:]
        args, i = _macro_args(sql, at + len(name.group(0)))
        if name.group(1) == "__timeFilter":
            out.append(f"{args.strip()} BETWEEN {frm} AND {to}")
        elif name.group(1) in ("__timeFrom", "__timeTo"):
            assert not args.strip(), f"${name.group(1)}() takes no argument"
            out.append(frm if name.group(1) == "__timeFrom" else to)
        else:
            raise AssertionError(f"macro ${name.group(1)} is not expanded here")
    out.append(sql[i:])
    text = "".join(out)

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name == "__interval":
            return interval
        assert name in values, f"${name} is neither a macro nor a variable given"
        chosen = list(values[name])
        if multi.get(name, False):
            return ",".join(_quoted(v) for v in chosen)
        assert len(chosen) == 1, f"${name} is single-value"
        return chosen[0]

    return _VARIABLE.sub(variable, text)
