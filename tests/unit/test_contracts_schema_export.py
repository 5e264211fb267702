import json
from pathlib import Path

from contracts.schema_export import export_schemas

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_exported_schemas_are_current(tmp_path: Path) -> None:
    """docs/schemas must be regenerated (`potr contracts export`) when a message changes."""
    written = export_schemas(tmp_path)
    assert {p.name for p in written} == {p.name for p in DOCS.glob("*.schema.json")}
    for path in written:
        assert json.loads(path.read_text()) == json.loads((DOCS / path.name).read_text()), (
            f"{path.name} is stale: run `potr contracts export`"
        )
