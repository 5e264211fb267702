"""Employees SQL (schema ``employees``); every function takes a connection in a transaction."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from cloud.adapters.postgres import Connection, dict_row
from cloud.employees.models import (
    Absence,
    AbsenceIn,
    BaseLocation,
    Employee,
    EmployeeIn,
    Licence,
    LicenceIn,
    Skill,
    WorkingHours,
)
from cloud.employees.photos import BadgePhoto
from cloud.regional_ids import next_id_sql
from contracts.topics import Region

_EMP_COLS = (
    "employee_no, user_id, name, region, jurisdiction, base_latitude, base_longitude,"
    " base_address, time_zone, active, created_at, updated_at"
)
_LIC_COLS = "id, employee_no, kind, jurisdiction, number, valid_from, expires_on"
_ABS_COLS = "id, employee_no, starts_on, ends_on, kind, note"
#: Columns ``update_employee`` may set (the patch's names, base split in three).
UPDATABLE = frozenset(
    {
        "user_id",
        "name",
        "jurisdiction",
        "base_latitude",
        "base_longitude",
        "base_address",
        "time_zone",
        "active",
    }
)


def insert_employee(conn: Connection[Any], emp: EmployeeIn) -> None:
    conn.execute(
        "INSERT INTO employees.employees (employee_no, user_id, name, region, jurisdiction,"
        " base_latitude, base_longitude, base_address, time_zone, active)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            emp.employee_no,
            emp.user_id,
            emp.name,
            emp.region.value,
            emp.jurisdiction,
            emp.base.latitude,
            emp.base.longitude,
            emp.base.address,
            emp.time_zone,
            emp.active,
        ),
    )


#: The home-region condition: ``%(region)s`` None matches every region.
_IN_REGION = "(%(region)s::text IS NULL OR region = %(region)s)"


def _region(region: Region | None) -> str | None:
    return region.value if region is not None else None


def lock_employee(
    conn: Connection[Any], employee_no: str, region: Region | None = None
) -> dict[str, Any] | None:
    """The record's row, locked until commit (changes to one employee go one at a time);
    None when unknown or at home outside ``region`` (None: any)."""
    row: dict[str, Any] | None = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_EMP_COLS} FROM employees.employees"
            f" WHERE employee_no = %(no)s AND {_IN_REGION} FOR UPDATE",
            {"no": employee_no, "region": _region(region)},
        )
        .fetchone()
    )
    return row


def employee_exists(conn: Connection[Any], employee_no: str, region: Region | None = None) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM employees.employees WHERE employee_no = %(no)s AND {_IN_REGION}",
        {"no": employee_no, "region": _region(region)},
    ).fetchone()
    return row is not None


def update_employee(conn: Connection[Any], employee_no: str, values: Mapping[str, Any]) -> None:
    unknown = set(values) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    # Each assignment ends in ", ": a patch of skills or hours only sets updated_at.
    assignments = "".join(f"{column} = %({column})s, " for column in sorted(values))
    conn.execute(
        f"UPDATE employees.employees SET {assignments}updated_at = now()"
        " WHERE employee_no = %(employee_no)s",
        {**values, "employee_no": employee_no},
    )


def touch(conn: Connection[Any], employee_no: str) -> None:
    conn.execute(
        "UPDATE employees.employees SET updated_at = now() WHERE employee_no = %s", (employee_no,)
    )


def replace_skills(conn: Connection[Any], employee_no: str, skills: Sequence[Skill]) -> None:
    conn.execute("DELETE FROM employees.skills WHERE employee_no = %s", (employee_no,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO employees.skills (employee_no, code, jurisdiction, expires_on)"
            " VALUES (%s, %s, %s, %s)",
            [(employee_no, s.code, s.jurisdiction, s.expires_on) for s in skills],
        )


def replace_hours(conn: Connection[Any], employee_no: str, hours: Sequence[WorkingHours]) -> None:
    conn.execute("DELETE FROM employees.working_hours WHERE employee_no = %s", (employee_no,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO employees.working_hours (employee_no, weekday, starts, ends)"
            " VALUES (%s, %s, %s, %s)",
            [(employee_no, h.weekday, h.starts, h.ends) for h in hours],
        )


def insert_licence(conn: Connection[Any], employee_no: str, lic: LicenceIn) -> Licence:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO employees.licences (id, employee_no, kind, jurisdiction, number,"
            " valid_from, expires_on)"
            f" SELECT {next_id_sql('employees.licences_id_seq', 'e.region')}, e.employee_no,"
            " %s, %s, %s, %s, %s FROM employees.employees e"
            f" WHERE e.employee_no = %s RETURNING {_LIC_COLS}",
            (lic.kind, lic.jurisdiction, lic.number, lic.valid_from, lic.expires_on, employee_no),
        )
        .fetchone()
    )
    assert row is not None
    return _licence(row)


def delete_licence(conn: Connection[Any], employee_no: str, licence_id: int) -> bool:
    cur = conn.execute(
        "DELETE FROM employees.licences WHERE employee_no = %s AND id = %s",
        (employee_no, licence_id),
    )
    return cur.rowcount == 1


def overlapping_absence(conn: Connection[Any], employee_no: str, absence: AbsenceIn) -> int | None:
    """The id of an absence of the employee sharing a day with ``absence``, if any."""
    row = conn.execute(
        "SELECT id FROM employees.absences WHERE employee_no = %s"
        " AND starts_on <= %s AND ends_on >= %s ORDER BY id LIMIT 1",
        (employee_no, absence.ends_on, absence.starts_on),
    ).fetchone()
    return int(row[0]) if row else None


def insert_absence(conn: Connection[Any], employee_no: str, absence: AbsenceIn) -> Absence:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO employees.absences (id, employee_no, starts_on, ends_on, kind, note)"
            f" SELECT {next_id_sql('employees.absences_id_seq', 'e.region')}, e.employee_no,"
            " %s, %s, %s, %s FROM employees.employees e WHERE e.employee_no = %s"
            f" RETURNING {_ABS_COLS}",
            (
                absence.starts_on,
                absence.ends_on,
                absence.kind.value,
                absence.note,
                employee_no,
            ),
        )
        .fetchone()
    )
    assert row is not None
    return _absence(row)


def delete_absence(conn: Connection[Any], employee_no: str, absence_id: int) -> bool:
    cur = conn.execute(
        "DELETE FROM employees.absences WHERE employee_no = %s AND id = %s",
        (employee_no, absence_id),
    )
    return cur.rowcount == 1


def list_absences(
    conn: Connection[Any], employee_no: str, first: date, last: date, limit: int, offset: int
) -> list[Absence]:
    """Absences sharing a day with ``first``..``last``, by first day."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_ABS_COLS} FROM employees.absences WHERE employee_no = %s"
            " AND starts_on <= %s AND ends_on >= %s ORDER BY starts_on, id LIMIT %s OFFSET %s",
            (employee_no, last, first, limit, offset),
        )
        .fetchall()
    )
    return [_absence(r) for r in rows]


def employee_no_of_user(conn: Connection[Any], user_id: str) -> str | None:
    row = conn.execute(
        "SELECT employee_no FROM employees.employees WHERE user_id = %s", (user_id,)
    ).fetchone()
    return str(row[0]) if row else None


def list_employee_nos(
    conn: Connection[Any],
    *,
    active: bool | None,
    jurisdiction: str | None,
    skill: str | None,
    limit: int,
    offset: int,
    region: Region | None = None,
) -> list[str]:
    rows = conn.execute(
        "SELECT e.employee_no FROM employees.employees e"
        " WHERE (%(active)s::boolean IS NULL OR e.active = %(active)s)"
        " AND (%(region)s::text IS NULL OR e.region = %(region)s)"
        " AND (%(jur)s::text IS NULL OR e.jurisdiction = %(jur)s)"
        " AND (%(skill)s::text IS NULL OR EXISTS (SELECT 1 FROM employees.skills s"
        "      WHERE s.employee_no = e.employee_no AND s.code = %(skill)s))"
        " ORDER BY e.employee_no LIMIT %(limit)s OFFSET %(offset)s",
        {
            "active": active,
            "jur": jurisdiction,
            "skill": skill,
            "region": _region(region),
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    return [str(r[0]) for r in rows]


def load_employees(
    conn: Connection[Any], employee_nos: Sequence[str], absences_since: date
) -> list[Employee]:
    """Whole records of ``employee_nos`` (in that order; unknown ones left out), with the
    absences that end on or after ``absences_since``."""
    if not employee_nos:
        return []
    nos = list(employee_nos)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        f"SELECT {_EMP_COLS} FROM employees.employees WHERE employee_no = ANY(%s)", (nos,)
    ).fetchall()
    skills = _grouped(
        cur.execute(
            "SELECT employee_no, code, jurisdiction, expires_on FROM employees.skills"
            " WHERE employee_no = ANY(%s) ORDER BY code",
            (nos,),
        ).fetchall()
    )
    licences = _grouped(
        cur.execute(
            f"SELECT {_LIC_COLS} FROM employees.licences WHERE employee_no = ANY(%s) ORDER BY id",
            (nos,),
        ).fetchall()
    )
    hours = _grouped(
        cur.execute(
            "SELECT employee_no, weekday, starts, ends FROM employees.working_hours"
            " WHERE employee_no = ANY(%s) ORDER BY weekday, starts",
            (nos,),
        ).fetchall()
    )
    absences = _grouped(
        cur.execute(
            f"SELECT {_ABS_COLS} FROM employees.absences WHERE employee_no = ANY(%s)"
            " AND ends_on >= %s ORDER BY starts_on, id",
            (nos, absences_since),
        ).fetchall()
    )
    by_no = {
        row["employee_no"]: Employee(
            employee_no=row["employee_no"],
            user_id=row["user_id"],
            name=row["name"],
            region=row["region"],
            jurisdiction=row["jurisdiction"],
            base=BaseLocation(
                latitude=row["base_latitude"],
                longitude=row["base_longitude"],
                address=row["base_address"],
            ),
            time_zone=row["time_zone"],
            active=row["active"],
            skills=[Skill.model_validate(s) for s in skills[row["employee_no"]]],
            licences=[_licence(x) for x in licences[row["employee_no"]]],
            hours=[WorkingHours.model_validate(h) for h in hours[row["employee_no"]]],
            absences=[_absence(a) for a in absences[row["employee_no"]]],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        for row in rows
    }
    return [by_no[no] for no in nos if no in by_no]


def _grouped(rows: list[dict[str, Any]]) -> defaultdict[str, list[dict[str, Any]]]:
    """Rows by ``employee_no``, which each row loses (the models do not carry it)."""
    grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.pop("employee_no")].append(row)
    return grouped


def _licence(row: dict[str, Any]) -> Licence:
    return Licence.model_validate({k: v for k, v in row.items() if k != "employee_no"})


def _absence(row: dict[str, Any]) -> Absence:
    return Absence.model_validate({k: v for k, v in row.items() if k != "employee_no"})


# -- the location notice ---------------------------------------------------------------------
def insert_notice_ack(
    conn: Connection[Any], employee_no: str, version: int, action: str, at: datetime
) -> None:
    conn.execute(
        "INSERT INTO employees.location_notice_acks (employee_no, version, action, at)"
        " VALUES (%s, %s, %s, %s)",
        (employee_no, version, action, at),
    )


def latest_notice_ack(conn: Connection[Any], employee_no: str) -> tuple[int, str, datetime] | None:
    """The employee's newest acknowledgement or withdrawal: (version, action, at)."""
    row = conn.execute(
        "SELECT version, action, at FROM employees.location_notice_acks"
        " WHERE employee_no = %s ORDER BY id DESC LIMIT 1",
        (employee_no,),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), row[2])


def put_badge_photo(
    conn: Connection[Any], employee_no: str, photo: BadgePhoto, by: str, at: datetime
) -> None:
    """Store (replace) the employee's badge photo."""
    conn.execute(
        "INSERT INTO employees.badge_photos"
        " (employee_no, content_type, content, sha256, by_actor, at)"
        " VALUES (%(no)s, %(type)s, %(content)s, %(sha)s, %(by)s, %(at)s)"
        " ON CONFLICT (employee_no) DO UPDATE SET content_type = EXCLUDED.content_type,"
        " content = EXCLUDED.content, sha256 = EXCLUDED.sha256, by_actor = EXCLUDED.by_actor,"
        " at = EXCLUDED.at",
        {
            "no": employee_no,
            "type": photo.content_type,
            "content": photo.content,
            "sha": hashlib.sha256(photo.content).hexdigest(),
            "by": by,
            "at": at,
        },
    )


def badge_photo(
    conn: Connection[Any], employee_no: str, region: Region | None = None
) -> BadgePhoto | None:
    """The badge photo of an employee at home in ``region`` (None: any), or None."""
    row = conn.execute(
        "SELECT p.content_type, p.content FROM employees.badge_photos p"
        " JOIN employees.employees e USING (employee_no)"
        " WHERE p.employee_no = %(no)s"
        " AND (%(region)s::text IS NULL OR e.region = %(region)s)",
        {"no": employee_no, "region": _region(region)},
    ).fetchone()
    return None if row is None else BadgePhoto(row[0], bytes(row[1]))


def has_badge_photo(conn: Connection[Any], employee_no: str, region: Region | None = None) -> bool:
    row = conn.execute(
        "SELECT 1 FROM employees.badge_photos p JOIN employees.employees e USING (employee_no)"
        " WHERE p.employee_no = %(no)s AND (%(region)s::text IS NULL OR e.region = %(region)s)",
        {"no": employee_no, "region": _region(region)},
    ).fetchone()
    return row is not None
