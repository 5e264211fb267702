"""The Spanish catalogue covers every message the portal's templates and code (and the
bill PDF, :mod:`cloud.billing.pdf`, which takes the portal's translations) mark for
translation — extracted here from the sources with Babel, as ``pybabel extract`` does —
with the same placeholders, so no page falls back to English and no ``%(name)s`` is lost."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "cloud" / "portal" / "web"
BILL_PDF = ROOT / "cloud" / "billing" / "pdf.py"
PO = WEB / "locale" / "es" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _marked() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    for _line, message, _comments, _context in extract_from_file(
        "python", str(BILL_PDF), keywords={"_": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_marked_message_has_a_spanish_translation_with_its_placeholders() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="es")
    translated = {m.id: m.string for m in catalog if m.id and not m.fuzzy}
    marked = _marked()
    assert len(marked) > 100  # the extraction found the templates
    missing = sorted(m for m in marked if not translated.get(m))
    assert not missing, f"no Spanish for: {missing}"
    for message in marked:
        assert set(_PLACEHOLDER.findall(translated[message])) == set(
            _PLACEHOLDER.findall(message)
        ), message
    stale = sorted(set(translated) - marked)
    assert not stale, f"in the catalogue, no longer in the sources: {stale}"
