"""``potr employee add|list``: staff records in the region's database (cloud/employees)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole()
employee_app = typer.Typer(help="Staff records: add, list", no_args_is_help=True)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def register(app: typer.Typer) -> None:
    app.add_typer(employee_app, name="employee")


@contextmanager
def _service() -> Iterator[Any]:
    from cloud.bootstrap import open_pool
    from cloud.employees import EmployeeService
    from cloud.settings import DatabaseSettings

    pool = open_pool(load_settings(DatabaseSettings, console), "cli")
    try:
        yield EmployeeService(pool)
    finally:
        pool.close()


def parse_hours(text: str) -> list[dict[str, Any]]:
    """``"mon-fri 07:00-15:30"`` or ``"sat 08:00-12:00"`` → working-hours entries (ISO
    weekdays); ``ValueError`` names what is wrong."""
    days, _, span = text.strip().partition(" ")
    first, _, last = days.lower().partition("-")
    starts, _, ends = span.strip().partition("-")
    if first not in _WEEKDAYS or (last and last not in _WEEKDAYS) or not ends:
        raise ValueError(f"{text!r}: expected e.g. 'mon-fri 07:00-15:30'")
    a, b = _WEEKDAYS.index(first), _WEEKDAYS.index(last or first)
    if b < a:
        raise ValueError(f"{text!r}: {first} comes after {last}")
    return [{"weekday": d + 1, "starts": starts, "ends": ends} for d in range(a, b + 1)]


def parse_licence(text: str) -> dict[str, Any]:
    """``KIND:JURISDICTION:NUMBER:VALID_FROM[:EXPIRES_ON]`` → a licence's fields."""
    parts = text.split(":")
    if len(parts) not in (4, 5):
        raise ValueError(f"{text!r}: expected KIND:JURISDICTION:NUMBER:FROM[:TO]")
    names = ("kind", "jurisdiction", "number", "valid_from", "expires_on")[: len(parts)]
    return dict(zip(names, parts, strict=True))


@employee_app.command("add")
def employee_add(
    employee_no: str = typer.Option(..., "--no", help="employee number, e.g. E00042"),
    name: str = typer.Option(...),
    region: str = typer.Option(..., help="au, us or es"),
    jurisdiction: str = typer.Option(..., help="home state/community, e.g. AU-NSW, ES-CN"),
    time_zone: str = typer.Option(..., help="IANA zone, e.g. Australia/Sydney"),
    latitude: float = typer.Option(..., "--lat", help="base location, degrees"),
    longitude: float = typer.Option(..., "--lon", help="base location, degrees"),
    address: str | None = typer.Option(None, help="base address"),
    user_id: str | None = typer.Option(None, "--user", help="identity user id (usr_…)"),
    skill: list[str] = typer.Option([], help="skill code (repeat)"),
    licence: list[str] = typer.Option(
        [],
        help="KIND:JURISDICTION:NUMBER:FROM[:TO] (repeat), e.g."
        " au-electrical:AU-NSW:123456C:2024-07-01:2027-06-30",
    ),
    hours: list[str] = typer.Option([], help="e.g. 'mon-fri 07:00-15:30' (repeat)"),
) -> None:
    """Add an employee with skills, licences and working hours."""
    from pydantic import ValidationError

    from cloud.employees import EmployeeIn, EmployeesError

    try:
        record = EmployeeIn.model_validate(
            {
                "employee_no": employee_no,
                "user_id": user_id,
                "name": name,
                "region": region,
                "jurisdiction": jurisdiction,
                "base": {"latitude": latitude, "longitude": longitude, "address": address},
                "time_zone": time_zone,
                "skills": [{"code": code} for code in skill],
                "licences": [parse_licence(text) for text in licence],
                "hours": [entry for text in hours for entry in parse_hours(text)],
            }
        )
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    with _service() as service:
        try:
            added = service.add(record)
        except EmployeesError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    console.print(f"employee {added.employee_no} added: {added.name} ({added.jurisdiction})")


@employee_app.command("list")
def employee_list(
    show_all: bool = typer.Option(False, "--all", help="inactive staff too"),
    jurisdiction: str | None = typer.Option(None, help="home jurisdiction, e.g. AU-NSW"),
    skill: str | None = typer.Option(None, help="holders of this skill only"),
    limit: int = typer.Option(100, min=1, max=500),
    offset: int = typer.Option(0, min=0),
) -> None:
    """List employees by number."""
    with _service() as service:
        rows = service.list_employees(
            active=None if show_all else True,
            jurisdiction=jurisdiction,
            skill=skill,
            limit=limit,
            offset=offset,
        )
    table = Table("no", "name", "jurisdiction", "time zone", "active", "skills", "licences")
    for e in rows:
        table.add_row(
            e.employee_no,
            e.name,
            e.jurisdiction,
            e.time_zone,
            "yes" if e.active else "no",
            " ".join(s.code for s in e.skills),
            " ".join(
                f"{x.kind}:{x.jurisdiction}" + (f"≤{x.expires_on}" if x.expires_on else "")
                for x in e.licences
            ),
        )
    console.print(table)
