"""What the notify service takes and gives: notifications, recipients, preferences,
deliveries, inbox entries, webhook endpoints.

Every field is bounded: ids by pattern, text by length and free of control characters
(a title or subject becomes a mail header), links are portal paths (never another site,
never ``javascript:``), time zones are IANA names, local times whole minutes.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.calendars import is_iana_zone
from contracts.topics import Region

USER_ID_PATTERN = r"^usr_[0-9a-f]{32}$"
ACCOUNT_ID_PATTERN = r"^acc_[0-9a-f]{32}$"
ENDPOINT_ID_PATTERN = r"^whk_[0-9a-f]{32}$"
#: A template's name (``templates/<language>.yaml`` holds one entry per kind).
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: No control characters (NUL, newlines, escapes) in one-line text.
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
#: Multi-line text: newlines and tabs only.
_TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
#: A path inside the portal: one leading slash (``//host`` would leave the site).
_PORTAL_PATH = r"^/([^/\\\x00-\x20\x7f][^\x00-\x20\x7f]{0,498})?$"
MAX_TITLE = 200
MAX_BODY = 4000
MAX_PARAMS = 32


class Category(StrEnum):
    """What a notification is about; preferences choose channels per category."""

    #: A danger at the site (a DC isolator open in daylight): may be urgent.
    SAFETY = "safety"
    #: An alarm raised or cleared (operators, and customers for their sites).
    ALARM = "alarm"
    #: Anything else the customer should know (maintenance, a visit, a changed setting).
    NOTICE = "notice"
    #: Offers and plan notices sent to a chosen set of customers: opt-in by e-mail.
    OFFER = "offer"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    #: Needs action now; an urgent *safety* notice ignores quiet hours.
    URGENT = "urgent"


class Channel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"
    WEBHOOK = "webhook"


Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = ("en", "es")


def _iana(name: str) -> str:
    if not is_iana_zone(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone")
    return name


def _whole_minute(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time carries no offset")
    if value.second or value.microsecond:
        raise ValueError("whole minutes only")
    return value


UserId = Annotated[str, Field(pattern=USER_ID_PATTERN, description="identity's user (opaque)")]
AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
EndpointId = Annotated[str, Field(pattern=ENDPOINT_ID_PATTERN)]
TimeZone = Annotated[
    str, Field(min_length=1, max_length=64, examples=["Europe/Madrid"]), AfterValidator(_iana)
]
LocalTime = Annotated[time, AfterValidator(_whole_minute)]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE, pattern=_ONE_LINE)]
Body = Annotated[str, Field(max_length=MAX_BODY, pattern=_TEXT)]
PortalPath = Annotated[str, Field(pattern=_PORTAL_PATH, examples=["/au/sites/41"])]
Email = Annotated[str, Field(pattern=r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]{1,189}$", max_length=254)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LocalText(_Model):
    """Free text written in each language (an offer's wording): the reader's language,
    else English."""

    en: Body
    es: Body | None = None

    def in_language(self, language: Language) -> str:
        return self.es if language == "es" and self.es is not None else self.en


#: A template parameter: text as is, numbers and moments formatted for the reader
#: (Babel: their language; moments in their time zone), :class:`LocalText` in their
#: language.
ParamValue = LocalText | AwareDatetime | date | int | Decimal | float | Body


class Attachment(_Model):
    """A file a notification's e-mail carries, named rather than stored: ``kind`` picks
    the source the delivery worker was given for it (the composition root's), ``key``
    which file (a month and region). The worker asks the source when it builds the mail,
    so notify's tables hold a few dozen bytes and a retry makes the file again."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="the attachment source")
    key: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$", description="which file of that source"
    )


class Notification(_Model):
    """Something to tell people. ``id`` makes delivery idempotent: the same id posted
    again reaches nobody twice (derive it from the event it answers)."""

    id: UUID
    kind: str = Field(pattern=KIND_PATTERN, description="the template (templates/<lang>.yaml)")
    category: Category
    severity: Severity = Severity.INFO
    region: Region
    account_id: AccountId | None = Field(default=None, description="the account it concerns")
    link: PortalPath | None = Field(default=None, description="where the portal shows more")
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ParamValue] = Field(
        default_factory=dict, max_length=MAX_PARAMS
    )
    created_at: AwareDatetime
    attachment: Attachment | None = Field(
        default=None, description="a file the e-mail carries (not the inbox or a webhook)"
    )

    @property
    def ignores_quiet_hours(self) -> bool:
        """Urgent safety notices go out at once, whatever the hour."""
        return self.category is Category.SAFETY and self.severity is Severity.URGENT


class Recipient(_Model):
    """Someone to notify, as the caller knows them (identity, customers). ``language``
    and ``time_zone`` are hints used while the person has saved no preferences (the
    site's zone, the account's language)."""

    user_id: UserId
    email: Email | None = None
    language: Language | None = None
    time_zone: TimeZone | None = None


class QuietHours(_Model):
    """Local wall-clock times between which mail waits (``start`` included, ``end``
    excluded); ``start`` after ``end`` spans midnight (22:00-07:00)."""

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self

    def contains(self, wall: time) -> bool:
        """Whether a local wall-clock time is inside the quiet hours."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


#: E-mail by default: everything but offers (those need the person's consent).
DEFAULT_EMAIL = frozenset({Category.SAFETY, Category.ALARM, Category.NOTICE})


class PreferencesIn(_Model):
    """What a person chooses: their language and zone, quiet hours, and which
    categories reach them by e-mail and by their webhooks (the inbox gets everything)."""

    language: Language = "en"
    time_zone: TimeZone = "UTC"
    quiet_hours: QuietHours | None = None
    email: frozenset[Category] = DEFAULT_EMAIL
    webhook: frozenset[Category] = frozenset()


class Preferences(PreferencesIn):
    """A person's preferences and their active webhook endpoints (the service fills
    ``webhooks`` from its table). ``saved`` is False for the defaults of someone who
    never chose."""

    user_id: UserId
    webhooks: tuple[EndpointId, ...] = ()
    saved: bool = False


class Delivery(_Model):
    """One way one notification reaches one person. ``destination``: the user id
    (inbox), the e-mail address, or the webhook endpoint id. ``send_after`` (UTC) is the
    end of their quiet hours when the notification waits for it, else ``now``."""

    user_id: UserId
    channel: Channel
    destination: str
    send_after: AwareDatetime
    language: Language
    time_zone: TimeZone


class InboxEntryIn(_Model):
    """What :meth:`cloud.notify.InboxService.post` files in one person's inbox."""

    notification_id: UUID
    region: Region
    account_id: AccountId | None = None
    kind: str = Field(pattern=KIND_PATTERN)
    category: Category
    severity: Severity = Severity.INFO
    title: Title
    body: Body = ""
    link: PortalPath | None = None
    created_at: AwareDatetime


class InboxEntry(InboxEntryIn):
    id: UUID
    user_id: UserId
    read_at: AwareDatetime | None = None


class InboxPage(_Model):
    """Newest first; ``next_cursor`` fetches the following (older) page, None at the end."""

    entries: tuple[InboxEntry, ...]
    next_cursor: str | None = None


class InboxChanges(_Model):
    """What changed in one inbox after a cursor: entries posted or marked read since
    (oldest change first) and the cursor to ask with next time. ``unread``: the unread
    count, None when nothing changed. ``more``: ask again at once. ``reload``: entries of
    one large change (mark all read) were left out; reload the list."""

    cursor: str
    entries: tuple[InboxEntry, ...]
    unread: int | None = None
    more: bool = False
    reload: bool = False


class WebhookEndpointIn(_Model):
    url: str = Field(min_length=8, max_length=2048)
    description: Annotated[str, Field(max_length=200, pattern=_ONE_LINE)] = ""


class WebhookEndpoint(_Model):
    id: EndpointId
    user_id: UserId
    region: Region
    url: str
    description: str
    created_at: AwareDatetime
    disabled_at: AwareDatetime | None = None
    disabled_reason: str | None = None


class WebhookCreated(_Model):
    """An endpoint and its signing secret, shown this once (keep it to verify)."""

    endpoint: WebhookEndpoint
    secret: str


DeliveryStatus = Literal["pending", "sent", "failed"]


class DeliveryRecord(_Model):
    """A queued e-mail or webhook delivery as the outbox holds it."""

    id: UUID
    notification_id: UUID
    user_id: UserId
    channel: Channel
    destination: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: AwareDatetime
    last_error: str | None = None
    finished_at: AwareDatetime | None = None


class NotifyResult(_Model):
    """What :meth:`cloud.notify.NotificationService.notify` did: the deliveries planned
    and how many were new (a notification posted again adds nothing)."""

    deliveries: tuple[Delivery, ...]
    inbox_posted: int
    queued: int


#: The kinds a notice to chosen customers may be (templates of the same names).
NoticeKind = Literal["notice", "offer", "plan_change"]


class NoticeIn(_Model):
    """A notice, an offer or a plan change for a chosen set of a region's customers:
    ``account_ids`` (None: every active account of the region), narrowed to those on
    ``plan_code`` when given. ``campaign_id`` names the sending: sent again with the same
    id, it reaches nobody twice (each account's notification id derives from it)."""

    kind: NoticeKind
    region: Region
    account_ids: tuple[AccountId, ...] | None = Field(default=None, max_length=5000)
    plan_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ParamValue] = Field(
        default_factory=dict, max_length=MAX_PARAMS
    )
    link: PortalPath | None = None
    campaign_id: UUID


class NoticeResult(_Model):
    """What :meth:`cloud.notify.NotificationService.send_notice` did: accounts chosen,
    accounts told (an offer skips those whose users never opted in; an account without
    users is skipped), inbox entries posted and deliveries queued this time."""

    campaign_id: UUID
    chosen: int
    notified: int
    inbox_posted: int
    queued: int
