import json
from pathlib import Path

from contracts.events import EventType
from contracts.schema_export import export_schemas

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_exported_schemas_are_current(tmp_path: Path) -> None:
    """docs/schemas must be regenerated (`potr contracts export`) when a message or an
    event's detail changes."""
    written = {p.relative_to(tmp_path).as_posix(): p for p in export_schemas(tmp_path)}
    assert set(written) == {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.schema.json")}
    for name, path in written.items():
        assert json.loads(path.read_text()) == json.loads((DOCS / name).read_text()), (
            f"{name} is stale: run `potr contracts export`"
        )


def test_every_catalogued_event_has_a_detail_schema(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    assert {p.name for p in (tmp_path / "events").glob("*.schema.json")} == {
        f"{t.value}.schema.json" for t in EventType
    }
