"""Write the JSON Schema of every wire message into a folder (``docs/schemas/``), and of
every event's ``detail`` into its ``events/`` subfolder (:mod:`contracts.events`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.events import detail_schemas
from contracts.messages import json_schemas

EVENTS_FOLDER = "events"


def _write(folder: Path, schemas: dict[str, dict[str, Any]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(schemas.items()):
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def export_schemas(folder: Path) -> list[Path]:
    """Write every schema; return the files written (messages first, then event details)."""
    return _write(folder, json_schemas()) + _write(folder / EVENTS_FOLDER, detail_schemas())
