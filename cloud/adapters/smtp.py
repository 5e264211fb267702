"""The SMTP adapter: the only cloud module meant to import ``smtplib`` (blocking: callers
on an event loop run :func:`send_message` in a thread).

Failures come out as one exception, :class:`SmtpError`, whose ``permanent`` says whether
trying again can help: a 5xx answer (unknown mailbox, refused content) is permanent; a
4xx answer, a refused or dropped connection, a timeout are not.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

__all__ = ["SmtpError", "SmtpRelay", "send_message"]


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """Where mail goes: a relay, STARTTLS and login when configured; ``timeout_s``
    bounds each network operation (connect, each command)."""

    host: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    #: A CA file to verify the relay's certificate with (else the system's CAs).
    ca_file: str | None = None


class SmtpError(Exception):
    """A message not sent. ``code``: the relay's answer when it gave one."""

    def __init__(self, reason: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.code = code


def send_message(relay: SmtpRelay, message: EmailMessage) -> None:
    """Send ``message`` to its ``To`` through ``relay``, or raise :class:`SmtpError`."""
    try:
        with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_s) as smtp:
            if relay.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=relay.ca_file))
            if relay.username and relay.password:
                smtp.login(relay.username, relay.password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise _answered("recipient refused", min(codes) if codes else None) from None
    except smtplib.SMTPResponseException as exc:
        raise _answered(_text(exc.smtp_error), exc.smtp_code) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SmtpError(f"{type(exc).__name__}: {exc}"[:300], permanent=False) from None
    if refused:  # some recipients refused, others taken: only one recipient here
        code = min(c for c, _ in refused.values())
        raise _answered("recipient refused", code)


def _answered(reason: str, code: int | None) -> SmtpError:
    text = f"{code} {reason}" if code is not None else reason
    return SmtpError(text[:300], permanent=code is not None and 500 <= code < 600, code=code)


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
