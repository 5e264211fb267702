"""The portal's languages: English and Spanish, from gettext catalogues (``locale/<lang>/
LC_MESSAGES/messages.po``, extracted and updated with Babel: ``babel.cfg``), and the
language of a request.

The ``.po`` files are compiled in memory when the app is built (Babel's ``write_mo``):
nothing to build before running, and no binary catalogue in the repository. English is
the source language: its catalogue is the identity.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCALE_DIR",
    "choose_language",
    "load_translations",
]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Language code → its name in itself (the language switch shows these).
LANGUAGES: Mapping[str, str] = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
#: Longest ``Accept-Language`` header looked at (anything longer is someone's fuzzing).
_MAX_ACCEPT = 512


def load_translations(locale_dir: Path = LOCALE_DIR) -> dict[str, gettext.NullTranslations]:
    """Language → its translations. A language without a catalogue (English) is the
    identity; an unreadable catalogue raises (a broken release must not start)."""
    found: dict[str, gettext.NullTranslations] = {}
    for language in LANGUAGES:
        po = locale_dir / language / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            found[language] = NullTranslations()
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=language)
        buf = BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        found[language] = Translations(buf)
    return found


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The person's choice (the ``potr_lang`` cookie) if it is one we have, else the
    browser's best match, else English."""
    if cookie is not None and cookie in LANGUAGES:
        return cookie
    wanted = _accepted(accept_language or "")
    best = negotiate_locale(wanted, list(LANGUAGES), sep="-") if wanted else None
    return best or DEFAULT_LANGUAGE


def _accepted(header: str) -> list[str]:
    """The header's languages, best first (q-values honoured; malformed parts ignored)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header[:_MAX_ACCEPT].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if q > 0:
            ranked.append((-q, i, tag.split("-")[0]))
    return [tag for _, _, tag in sorted(ranked)]
