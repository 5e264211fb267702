"""Files an e-mail carries, made when the mail is built.

A :class:`~cloud.notify.models.Notification` may name an
:class:`~cloud.notify.models.Attachment` (a source ``kind`` and a ``key``); the e-mail
delivery stores only that name in its payload. The :class:`~cloud.notify.DeliveryWorker`
is given the sources by the composition root (``kind`` → :data:`AttachmentSource`) and
asks the named one, in the recipient's language, each time it builds the mail. So
nothing big sits in notify's tables, notify knows no service that makes files, and a
retry makes the file again. A missing source, a source that raises, or a file that is
not acceptable (:func:`checked`) is a transient failure: the mail is retried with the
usual back-off and, when its attempts are used up, fails with the reason — never sent
without its file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "AttachmentSource",
    "AttachmentUnavailable",
    "MailAttachment",
    "checked",
]

#: Largest file a mail carries (relays commonly refuse messages over 10-25 MB, and the
#: base64 encoding adds a third).
MAX_ATTACHMENT_BYTES = 8 * 1024 * 1024
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]{1,64}$")


class AttachmentUnavailable(Exception):
    """The file cannot be made now (a source may raise this or anything else)."""


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """A made file: its name in the mail, its MIME type, its bytes."""

    filename: str
    mime_type: str
    content: bytes


#: ``source(key, language) -> MailAttachment``: makes the file ``key`` names, in the
#: recipient's language (``en``, ``es``). Blocking: the worker calls it in a thread.
AttachmentSource = Callable[[str, str], MailAttachment]


def checked(made: MailAttachment) -> MailAttachment:
    """``made`` if a mail may carry it: a plain file name, a MIME type, 1 byte to
    :data:`MAX_ATTACHMENT_BYTES`; else :class:`AttachmentUnavailable`."""
    if _FILENAME.fullmatch(made.filename) is None:
        raise AttachmentUnavailable(f"unusable file name {made.filename[:100]!r}")
    if _MIME.fullmatch(made.mime_type) is None:
        raise AttachmentUnavailable(f"unusable MIME type {made.mime_type[:100]!r}")
    if not 0 < len(made.content) <= MAX_ATTACHMENT_BYTES:
        raise AttachmentUnavailable(f"{len(made.content)} bytes (1 to {MAX_ATTACHMENT_BYTES})")
    return made
