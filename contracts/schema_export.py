"""Write the JSON Schema of every wire message into a folder (``docs/schemas/``)."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.messages import json_schemas


def export_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in sorted(json_schemas().items()):
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
