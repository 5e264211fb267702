"""The customers service's rules across fields and against what is stored: pure functions
over the models (the service reads the state under lock and passes it in).

Each field's own bounds are in :mod:`cloud.customers.models`; these answer what a field
cannot know alone, raising :class:`RefusedError` (422, naming field, limit and reason)
or :class:`ConflictError` (409: the request contradicts the stored state).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.customers.errors import ConflictError, RefusedError
from cloud.customers.models import (
    Account,
    AccountPatch,
    AccountStatus,
    Installation,
    InstallationIn,
    MeterReplacementIn,
)
from cloud.customers.zones import TARIFF_ZONES, tariff_zone
from contracts.topics import Region

__all__ = [
    "MAX_CONTACTS",
    "MAX_FUTURE",
    "check_account_patch",
    "check_contact_count",
    "check_installation",
    "check_meter_replacement",
    "check_site_owner",
]

#: Contacts per account: a household or a company's few, not an address book.
MAX_CONTACTS = 20
#: How far ahead of the service's clock a recorded swap may be (clocks differ a little;
#: a swap recorded before it happened cannot be).
MAX_FUTURE = timedelta(minutes=5)


def check_installation(
    region: Region, given: InstallationIn, current: Installation | None
) -> InstallationIn:
    """``given`` with its tariff zone spelt as the region spells it; refused when the zone
    is not the region's, the warranty ends before the installation, the grid meter is
    the billing meter (two meters, two places in the circuit), or it would change the
    billing meter of a stored record (that takes a meter replacement, which records both
    registers). The grid meter changes by a plain update: no registers are recorded for
    it (billing reads its hourly export by serial from the telemetry store)."""
    zone = tariff_zone(region, given.tariff_zone)
    if zone is None:
        raise RefusedError(
            "tariff_zone",
            ", ".join(TARIFF_ZONES[region]),
            f"{given.tariff_zone!r} is not a tariff zone of region {region.value!r}",
        )
    if given.warranty_until < given.installed_on:
        raise RefusedError(
            "warranty_until",
            f">= installed_on {given.installed_on}",
            "the warranty cannot end before the installation",
        )
    if given.grid_meter is not None and given.grid_meter == given.billing_meter:
        raise RefusedError(
            "grid_meter",
            f"!= billing_meter {given.billing_meter}",
            "the grid-connection meter is another meter than the billing meter",
        )
    if current is not None and current.billing_meter != given.billing_meter:
        raise ConflictError(
            f"site {current.site_id}'s billing meter is {current.billing_meter!r}: record a"
            " meter replacement (with both registers) to change it"
        )
    return given.model_copy(update={"tariff_zone": zone})


def check_meter_replacement(
    installation: Installation,
    given: MeterReplacementIn,
    latest: datetime | None,
    now: datetime,
) -> None:
    """A swap of the installation's billing meter: the old serial must be the meter in
    place, the new one another that is not the site's grid meter, and the time after the
    site's latest earlier swap (``latest``) and not ahead of ``now`` — the register chain
    billing follows is in time order."""
    if given.old_serial != installation.billing_meter:
        raise ConflictError(
            f"site {installation.site_id}'s billing meter is {installation.billing_meter!r},"
            f" not {given.old_serial!r}"
        )
    if given.new_serial == given.old_serial:
        raise RefusedError("new_serial", f"!= {given.old_serial}", "the new meter is the old one")
    if given.new_serial == installation.grid_meter:
        raise ConflictError(
            f"{given.new_serial!r} is site {installation.site_id}'s grid meter: the billing"
            " meter is another meter"
        )
    if given.replaced_at > now + MAX_FUTURE:
        raise RefusedError(
            "replaced_at", f"<= now + {MAX_FUTURE}", "a swap is recorded after it happens"
        )
    if latest is not None and given.replaced_at <= latest:
        raise RefusedError(
            "replaced_at",
            f"> {latest.isoformat()}",
            "must be after the site's previous meter replacement",
        )


def check_account_patch(current: Account, patch: AccountPatch) -> None:
    """A closed account stays closed (its history is billed and exported as it is)."""
    if current.status is AccountStatus.CLOSED and patch.model_fields_set - {"status"}:
        raise ConflictError(f"account {current.id} is closed")
    if (
        current.status is AccountStatus.CLOSED
        and patch.status is not None
        and patch.status is not AccountStatus.CLOSED
    ):
        raise ConflictError(f"account {current.id} is closed: it cannot be reopened")


def check_contact_count(account_id: str, count: int) -> None:
    if count >= MAX_CONTACTS:
        raise ConflictError(
            f"account {account_id} already has {count} contacts (at most {MAX_CONTACTS})"
        )


def check_site_owner(account: Account, site_region: Region) -> None:
    """An account may own a site of its own region only (the site's data stays in that
    region, and so does the account's), and a closed account no new site."""
    if account.region is not site_region:
        raise ConflictError(
            f"account {account.id} is in region {account.region.value!r}, the site in"
            f" {site_region.value!r}"
        )
    if account.status is AccountStatus.CLOSED:
        raise ConflictError(f"account {account.id} is closed")
