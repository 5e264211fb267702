"""Notify: how notifications reach people — the in-portal inbox with a live feed,
e-mail (templates in English and Spanish, SMTP), signed webhooks with retries, per-user
preferences and quiet hours. The delivery side of alerts: the core knows no alert or
rule; a caller builds a :class:`Notification`, resolves who receives it
(:class:`Recipient`) and calls :meth:`NotificationService.notify`; a
:class:`DeliveryWorker` sends what that queued. Its own callers are its event handlers
(:mod:`cloud.notify.handlers`: ``alert.*`` events, and dispatch's ``workorder.*`` planned
in :mod:`cloud.notify.workorders`, with recipients from notify's own tables fed by
``user.*`` and ``customer.*``, :mod:`cloud.notify.recipients`) and
:meth:`NotificationService.send_notice` (offers and plan notices to chosen customers).

Published interface: :class:`NotificationService`, :class:`InboxService` (and
:class:`InboxWakeups` for server-sent events), :class:`DeliveryWorker`, their models and
errors, :class:`NotifySettings`, the pure rules (:func:`deliveries`, :func:`quiet_until`),
the webhook signature helpers receivers and tests use (:func:`verify_signature`), the
templates, notices to chosen customers (:meth:`NotificationService.send_notice`), and
the event handlers (:class:`NotifyHandlers`, :func:`event_subscriptions`): people and
accounts from ``user.*`` / ``customer.*``, notifications from ``alert.*`` and
``workorder.*`` (:func:`plan_workorder_notices`); files an e-mail carries, named by a
notification (:class:`Attachment`) and made when the mail is built by the sources the
worker is given (:data:`AttachmentSource`, :mod:`cloud.notify.attachments`). Other
services import nothing else from here.
"""

from cloud.notify.attachments import (
    AttachmentSource,
    AttachmentUnavailable,
    MailAttachment,
)
from cloud.notify.handlers import NotifyHandlers, event_subscriptions, plan_alarm_notices
from cloud.notify.inbox import INBOX_CHANNEL, InboxService, InboxWakeups, InvalidCursorError
from cloud.notify.mail import TemplateError, Templates, builtin_templates
from cloud.notify.models import (
    DEFAULT_EMAIL,
    Attachment,
    Category,
    Channel,
    Delivery,
    DeliveryRecord,
    InboxChanges,
    InboxEntry,
    InboxEntryIn,
    InboxPage,
    Language,
    LocalText,
    NoticeIn,
    NoticeResult,
    Notification,
    NotifyResult,
    Preferences,
    PreferencesIn,
    QuietHours,
    Recipient,
    Severity,
    WebhookCreated,
    WebhookEndpoint,
    WebhookEndpointIn,
)
from cloud.notify.preferences import deliveries, effective_preferences, quiet_until
from cloud.notify.service import (
    SCHEMA,
    InvalidError,
    NotFoundError,
    NotificationService,
    NotifyError,
    PreferencesReader,
)
from cloud.notify.settings import NotifySettings
from cloud.notify.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    sign,
    signature_header,
    verify_signature,
)
from cloud.notify.worker import DeliveryReport, DeliveryWorker
from cloud.notify.workorders import WorkOrderNotice, plan_workorder_notices

__all__ = [
    "DEFAULT_EMAIL",
    "DELIVERY_HEADER",
    "INBOX_CHANNEL",
    "SCHEMA",
    "SIGNATURE_HEADER",
    "Attachment",
    "AttachmentSource",
    "AttachmentUnavailable",
    "Category",
    "Channel",
    "Delivery",
    "DeliveryRecord",
    "DeliveryReport",
    "DeliveryWorker",
    "InboxChanges",
    "InboxEntry",
    "InboxEntryIn",
    "InboxPage",
    "InboxService",
    "InboxWakeups",
    "InvalidCursorError",
    "InvalidError",
    "Language",
    "LocalText",
    "MailAttachment",
    "NotFoundError",
    "NoticeIn",
    "NoticeResult",
    "Notification",
    "NotificationService",
    "NotifyError",
    "NotifyHandlers",
    "NotifyResult",
    "NotifySettings",
    "Preferences",
    "PreferencesIn",
    "PreferencesReader",
    "QuietHours",
    "Recipient",
    "RetryPolicy",
    "Severity",
    "TemplateError",
    "Templates",
    "WebhookCreated",
    "WebhookEndpoint",
    "WebhookEndpointIn",
    "WorkOrderNotice",
    "builtin_templates",
    "deliveries",
    "effective_preferences",
    "event_subscriptions",
    "plan_alarm_notices",
    "plan_workorder_notices",
    "quiet_until",
    "sign",
    "signature_header",
    "verify_signature",
]
