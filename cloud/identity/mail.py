"""Mail out of identity: the password-reset message and an SMTP sender (``smtplib``,
blocking: the API sends from a background task, after the answer has gone, so the time
of the answer says nothing about whether a mail was sent)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from cloud.identity.service import ResetMail
from cloud.identity.settings import SmtpSettings

__all__ = ["Mailer", "SmtpMailer", "reset_message", "send_quietly"]

log = logging.getLogger(__name__)


class Mailer(Protocol):
    """Sends one message or raises."""

    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Sends through the settings' SMTP relay (STARTTLS and login when configured)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    @property
    def sender(self) -> str:
        return self._settings.smtp_from

    def send(self, message: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


def reset_message(mail: ResetMail, *, sender: str, reset_url: str) -> EmailMessage:
    """The reset mail: the link (``reset_url`` + token) and the token itself, its expiry."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = "Reset your Power on the Roof password"
    until = f"{mail.expires_at:%Y-%m-%d %H:%M} UTC"
    message.set_content(
        f"Hello {mail.display_name},\n\n"
        "someone (we hope you) asked to reset your Power on the Roof password.\n"
        f"Open this link to choose a new one:\n\n  {reset_url}{mail.token}\n\n"
        f"or give this code to the app: {mail.token}\n\n"
        f"It works once, until {until}. If you did not ask, ignore this mail:\n"
        "your password stays as it is.\n"
    )
    return message


def send_quietly(mailer: Mailer, message: EmailMessage) -> None:
    """Send, logging a failure without the message (it holds a token)."""
    try:
        mailer.send(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("identity: reset mail not sent: %s", type(exc).__name__)
