"""Messages in the reader's language: templates per notification kind (data, one YAML
file per language in ``templates/``), rendered with Babel's formats in the reader's
language and time zone; the e-mail built from them; and sending through SMTP.

Why per-language files and not gettext: a notification is a few whole sentences whose
word order differs between English and Spanish, so each language writes the whole
message; a reviewer reads one file per language; and a test checks that every kind
exists in every language with the same parameters. Babel still formats what varies
(dates, times, numbers). Templates are plain text with ``{name}`` fields only (no
attribute or index access, no format specs): a parameter can never reach into Python.
"""

from __future__ import annotations

import asyncio
import email.policy
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_date
from functools import cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import yaml
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_decimal
from pydantic import BaseModel, ConfigDict, Field

from cloud.adapters.smtp import SmtpError, SmtpRelay, send_message
from cloud.notify.attachments import MailAttachment
from cloud.notify.models import (
    KIND_PATTERN,
    LANGUAGES,
    MAX_BODY,
    MAX_TITLE,
    Language,
    LocalText,
    Notification,
    ParamValue,
)

__all__ = [
    "RESERVED",
    "TEMPLATES_DIR",
    "MailTransport",
    "Rendered",
    "SmtpError",
    "SmtpRelay",
    "SmtpTransport",
    "TemplateError",
    "Templates",
    "builtin_templates",
    "email_message",
]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: Headers fold at RFC 5322's 998-character limit, not at 78: Python's folding of a
#: subject with an encoded word after a space leaves that space doubled for readers.
_MAIL_POLICY = email.policy.default.clone(max_line_length=998)
#: Fields the service fills in: the detail link, the settings page, the reader's zone.
RESERVED = frozenset({"link", "settings_url", "time_zone"})


class TemplateError(ValueError):
    """A template set that cannot be used, or a notification its template cannot render."""


class _Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(min_length=1, max_length=MAX_BODY)


class _Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Language
    more: str = Field(min_length=1, max_length=500)
    footer: str = Field(min_length=1, max_length=2000)
    kinds: dict[str, _Template]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notification in one language: ``title`` (one line: the inbox title, the mail
    subject) and ``body`` (the inbox text, the mail's first part)."""

    language: Language
    title: str
    body: str


def _fields(text: str, where: str) -> frozenset[str]:
    """The ``{name}`` fields of ``text``; :class:`TemplateError` for anything else."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateError(f"{where}: field {{{name}}} must be a plain name")
        names.add(name)
    return frozenset(names)


class Templates:
    """Every kind's template in every language; built by :meth:`load`, which refuses a
    set where a language lacks a kind or a kind's fields differ between languages."""

    def __init__(self, catalogues: Mapping[Language, _Catalogue]) -> None:
        self._catalogues = dict(catalogues)
        self._fields: dict[str, frozenset[str]] = {}
        reference = self._catalogues["en"]
        for language, catalogue in self._catalogues.items():
            if set(catalogue.kinds) != set(reference.kinds):
                raise TemplateError(f"{language}: kinds differ from English")
            for where, text in (("more", catalogue.more), ("footer", catalogue.footer)):
                if not _fields(text, f"{language}/{where}") <= RESERVED:
                    raise TemplateError(f"{language}/{where}: only {sorted(RESERVED)} allowed")
            for kind, template in catalogue.kinds.items():
                if re.fullmatch(KIND_PATTERN, kind) is None:
                    raise TemplateError(f"{language}: kind {kind!r} is not a valid name")
                where = f"{language}/{kind}"
                names = _fields(template.subject, where) | _fields(template.body, where)
                if self._fields.setdefault(kind, names) != names:
                    raise TemplateError(f"{where}: fields differ from English")

    @classmethod
    def load(cls, directory: Path = TEMPLATES_DIR) -> Templates:
        catalogues: dict[Language, _Catalogue] = {}
        for language in LANGUAGES:
            path = directory / f"{language}.yaml"
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                catalogue = _Catalogue.model_validate(data)
            except (OSError, yaml.YAMLError, ValueError) as exc:
                raise TemplateError(f"{path}: {exc}") from None
            if catalogue.language != language:
                raise TemplateError(f"{path}: says language {catalogue.language}")
            catalogues[language] = catalogue
        return cls(catalogues)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._fields)

    def fields(self, kind: str) -> frozenset[str]:
        """The parameters ``kind`` needs (reserved names included)."""
        return self._fields[kind]

    def check(self, notification: Notification) -> None:
        """:class:`TemplateError` unless every language can render ``notification``."""
        fields = self._fields.get(notification.kind)
        if fields is None:
            raise TemplateError(f"no template for kind {notification.kind!r}")
        clash = RESERVED & set(notification.params)
        if clash:
            raise TemplateError(f"parameters {sorted(clash)} are filled in by the service")
        missing = fields - RESERVED - set(notification.params)
        if missing:
            raise TemplateError(f"kind {notification.kind}: parameters missing: {sorted(missing)}")

    def render(
        self, notification: Notification, language: Language, time_zone: str, *, link: str = ""
    ) -> Rendered:
        """The notification in ``language``, moments in ``time_zone``; ``link`` fills
        ``{link}`` (an absolute URL)."""
        self.check(notification)
        template = self._catalogues[language].kinds[notification.kind]
        values = _values(notification.params, language, ZoneInfo(time_zone))
        values |= {"link": link, "time_zone": time_zone, "settings_url": ""}
        title = " ".join(template.subject.format_map(values).split())
        body = template.body.format_map(values).strip()
        return Rendered(language, _cut(title, MAX_TITLE), _cut(body, MAX_BODY))

    def email_text(
        self, rendered: Rendered, *, link: str, settings_url: str, time_zone: str
    ) -> str:
        """The whole mail body: the message, the detail link if any, the footer."""
        catalogue = self._catalogues[rendered.language]
        values = {"link": link, "settings_url": settings_url, "time_zone": time_zone}
        parts = [rendered.body]
        if link:
            parts.append(catalogue.more.format_map(values))
        parts.append("-- \n" + catalogue.footer.format_map(values).strip())
        return "\n\n".join(parts) + "\n"


@cache
def builtin_templates() -> Templates:
    """The shipped templates (``templates/``), loaded once per process."""
    return Templates.load()


def email_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    language: Language,
    message_id: str,
    sent_at: datetime,
    settings_url: str,
    attachments: Sequence[MailAttachment] = (),
) -> EmailMessage:
    """A plain-text mail (UTF-8, quoted-printable: any relay carries it), with
    ``attachments`` after the text (``multipart/mixed``, base64). ``message_id`` is the
    delivery's, the same on every attempt; ``Auto-Submitted`` keeps auto-responders
    quiet (RFC 3834)."""
    message = EmailMessage(policy=_MAIL_POLICY)
    message.set_content(text, cte="quoted-printable")  # first: it replaces Content-* headers
    for file in attachments:
        maintype, subtype = file.mime_type.split("/", 1)
        message.add_attachment(
            file.content, maintype=maintype, subtype=subtype, filename=file.filename
        )
    message["From"] = sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # never a header break
    message["Date"] = rfc2822_date(sent_at)
    message["Message-ID"] = message_id
    message["Content-Language"] = language
    message["Auto-Submitted"] = "auto-generated"
    if settings_url:
        message["List-Unsubscribe"] = f"<{settings_url}>"
    return message


class MailTransport(Protocol):
    """Sends one message or raises :class:`SmtpError` (``permanent`` when the relay
    refused it for good)."""

    async def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """Sends through an SMTP relay, in a worker thread (``smtplib`` blocks)."""

    def __init__(self, relay: SmtpRelay) -> None:
        self._relay = relay

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(send_message, self._relay, message)


def _values(params: Mapping[str, ParamValue], language: Language, zone: ZoneInfo) -> dict[str, str]:
    return {name: _format(value, language, zone) for name, value in params.items()}


def _format(value: ParamValue, language: Language, zone: ZoneInfo) -> str:
    if isinstance(value, LocalText):
        return value.in_language(language)
    if isinstance(value, datetime):
        local = value.astimezone(zone)
        day = format_date(local, "medium", locale=language)
        clock = format_time(local, "short", tzinfo=zone, locale=language)
        return str(get_datetime_format("medium", locale=language)).format(clock, day)
    if isinstance(value, date):
        return format_date(value, "medium", locale=language)
    if isinstance(value, int | float | Decimal):
        return format_decimal(value, locale=language)
    return value


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
