"""The field pieces' pure parts: a technician's latest on-duty location fix stands for
where they are in assignment unless they are on a site; the job page's incident form
offers exactly the work-order types and priorities dispatch takes."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from cloud.dispatch.assignment import Location
from cloud.dispatch.flow import OpenOrder, with_workload
from cloud.portal.web.pages_field import INCIDENT_PRIORITIES, INCIDENT_TYPES

BASE = {"latitude": -33.0, "longitude": 151.0}
SITE = Location(latitude=-34.0, longitude=150.5)
FIX = Location(latitude=-33.87, longitude=151.21)
TEMPLATE = Path(__file__).parents[2] / "cloud/portal/web/templates/_incident_form.html"


def _record(no: str) -> dict[str, Any]:
    return {
        "employee_no": no,
        "region": "au",
        "jurisdiction": "AU-NSW",
        "time_zone": "Australia/Sydney",
        "base": BASE,
        "licences": [
            {"kind": "au-electrical", "jurisdiction": "AU-NSW", "valid_from": date(2020, 1, 1)}
        ],
        "hours": [],
    }


def test_a_fresh_fix_is_where_a_technician_is_unless_they_are_on_a_site() -> None:
    on_site = OpenOrder(id=1, assignee="E2", site=SITE, on_site=True)
    crew = with_workload(
        [_record("E1"), _record("E2"), _record("E3")], [on_site], {"E1": FIX, "E2": FIX}
    )
    where = {t.employee_no: t.current for t in crew}
    assert where == {"E1": FIX, "E2": SITE, "E3": None}


def test_the_incident_form_offers_the_types_and_priorities_dispatch_takes() -> None:
    text = TEMPLATE.read_text()
    lists = re.findall(r"{% for \w+ in \[(.*?)\] %}", text)
    offered = [tuple(re.findall(r'"([^"]+)"', found)) for found in lists]
    assert offered == [INCIDENT_TYPES, INCIDENT_PRIORITIES]
