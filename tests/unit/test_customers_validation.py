"""The customers service's bounds and rules, pure: fields (ranges, lengths, patterns,
dates, no NUL), NaN/Infinity refused in every spelling, exact decimals, and the rules
across fields and against the stored state."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from cloud.customers import (
    Account,
    AccountIn,
    AccountPatch,
    AccountStatus,
    ConflictError,
    ContactIn,
    Installation,
    InstallationIn,
    MeterReplacementIn,
    RefusedError,
    WarrantyIn,
    new_account_id,
)
from cloud.customers.validation import (
    MAX_CONTACTS,
    check_account_patch,
    check_contact_count,
    check_installation,
    check_meter_replacement,
    check_site_owner,
)
from contracts.topics import Region

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _installation(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pv_kwp": "6.6",
        "tilt_deg": 22.5,
        "azimuth_deg": 0,
        "battery_kwh": "13.5",
        "network_operator": "Ausgrid",
        "tariff_zone": "NSW",
        "installed_on": "2025-11-03",
        "warranty_until": "2035-11-03",
        "billing_meter": "MTR-0001",
    }
    return fields | changes


def _stored(**changes: Any) -> Installation:
    given = InstallationIn.model_validate(_installation(**changes))
    return Installation(region=Region.AU, site_id=7, updated_at=NOW, **given.model_dump())


def _swap(**changes: Any) -> MeterReplacementIn:
    fields: dict[str, Any] = {
        "old_serial": "MTR-0001",
        "new_serial": "MTR-0002",
        "replaced_at": "2026-02-10T09:30:00+11:00",
        "old_register_kwh": "48213.457",
        "new_register_kwh": "0.012",
    }
    return MeterReplacementIn.model_validate(fields | changes)


def _account(**changes: Any) -> Account:
    fields: dict[str, Any] = {
        "id": new_account_id(),
        "region": "au",
        "name": "Jo Citizen",
        "email": "jo@example.com.au",
        "plan_code": None,
        "status": "active",
        "user_id": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Account.model_validate(fields | changes)


def _refused_field(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


# -- field bounds ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pv_kwp", 0),  # no panels is no installation
        ("pv_kwp", "10000.001"),
        ("pv_kwp", "-1"),
        ("tilt_deg", "90.1"),
        ("tilt_deg", -0.1),
        ("azimuth_deg", "360.1"),
        ("azimuth_deg", -1),
        ("battery_kwh", "-0.001"),
        ("battery_kwh", 10001),
        ("network_operator", ""),
        ("network_operator", "x" * 101),
        ("network_operator", "Aus\x00grid"),
        ("network_operator", "Aus\ngrid"),
        ("network_operator", "Aus\ud800grid"),  # a lone surrogate: not UTF-8
        ("installed_on", "1989-12-31"),
        ("warranty_until", "2101-01-01"),
        ("billing_meter", "../etc"),
        ("billing_meter", "M" * 65),
        ("billing_meter", "MTR 1"),
        ("grid_meter", "../etc"),
        ("grid_meter", "G" * 65),
        ("grid_meter", ""),
    ],
)
def test_an_installation_field_out_of_bounds_is_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        InstallationIn.model_validate(_installation(**{field: value}))
    assert _refused_field(refused.value) == {field}


@pytest.mark.parametrize("field", ["pv_kwp", "tilt_deg", "azimuth_deg", "battery_kwh"])
@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), "NaN", "nan", "sNaN", "Infinity", "-inf"]
)
def test_nan_and_infinity_are_refused_in_every_quantity(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        InstallationIn.model_validate(_installation(**{field: value}))
    assert _refused_field(refused.value) == {field}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_json_tokens_are_refused_in_a_register(token: str) -> None:
    body = (
        '{"old_serial": "A1", "new_serial": "B2", "replaced_at": "2026-01-01T00:00:00Z",'
        f' "old_register_kwh": {token}, "new_register_kwh": 0}}'
    )
    with pytest.raises(ValidationError) as refused:
        MeterReplacementIn.model_validate_json(body)
    assert _refused_field(refused.value) == {"old_register_kwh"}
    # Python's json (what the web framework parses bodies with) takes the tokens: refused too.
    with pytest.raises(ValidationError):
        MeterReplacementIn.model_validate(json.loads(body))


def test_quantities_are_exact_decimals_never_binary_floats() -> None:
    given = _swap(old_register_kwh="123456789.123", new_register_kwh=0.1)
    assert given.old_register_kwh == Decimal("123456789.123")
    # A JSON number 0.1 is the decimal 0.1, not 0.1000000000000000055511151231257827.
    assert given.new_register_kwh == Decimal("0.1")
    assert json.loads(given.model_dump_json())["old_register_kwh"] == "123456789.123"
    installation = InstallationIn.model_validate_json(json.dumps(_installation(pv_kwp=6.645)))
    assert installation.pv_kwp == Decimal("6.645")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("old_register_kwh", "0.0001"),  # finer than a watt-hour: refused, never rounded
        ("old_register_kwh", "1000000000"),  # past 9 digits of kWh
        ("new_register_kwh", "-0.001"),
        ("replaced_at", "2026-02-10T09:30:00"),  # no offset: which instant?
        ("new_serial", ""),
    ],
)
def test_a_meter_replacement_field_out_of_bounds_is_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        _swap(**{field: value})
    assert _refused_field(refused.value) == {field}


def test_account_text_is_bounded_trimmed_and_the_email_lower_case() -> None:
    account = AccountIn(name="  Jo Citizen ", email=" Jo@Example.COM.au ")
    assert (account.name, account.email) == ("Jo Citizen", "jo@example.com.au")
    for bad in [
        {"name": "x" * 201},
        {"name": "   "},
        {"name": "Jo\x00"},
        {"email": "jo@localhost"},
        {"email": "jo@" + "a" * 250 + ".com"},
        {"email": "no-at.example.com"},
        {"plan_code": "Gold Plan"},
        {"user_id": "usr_" + "g" * 32},
        {"user_id": "acc_" + "0" * 32},
    ]:
        with pytest.raises(ValidationError):
            AccountIn.model_validate({"name": "Jo", "email": "jo@example.com"} | bad)
    with pytest.raises(ValidationError):
        AccountIn.model_validate({"name": "Jo", "email": "jo@example.com", "region": "au"})


def test_a_contact_needs_an_email_or_an_e164_phone() -> None:
    assert ContactIn(name="Jo", phone="+61290000000").email is None
    for bad in [
        {},
        {"phone": "02 9000 0000"},
        {"phone": "+0290000000"},
        {"phone": "+1" + "2" * 15},
    ]:
        with pytest.raises(ValidationError):
            ContactIn.model_validate({"name": "Jo"} | bad)


def test_a_patch_cannot_null_a_required_field() -> None:
    assert AccountPatch.model_validate({"plan_code": None}).model_fields_set == {"plan_code"}
    with pytest.raises(ValidationError):
        AccountPatch.model_validate({"name": None})


def test_a_warranty_date_is_bounded() -> None:
    assert WarrantyIn(kind="inverter", warranty_until=date(2036, 1, 1)).kind == "inverter"
    with pytest.raises(ValidationError):
        WarrantyIn.model_validate({"kind": "inverter", "warranty_until": "2101-01-01"})
    with pytest.raises(ValidationError):
        WarrantyIn.model_validate({"kind": "toaster", "warranty_until": "2030-01-01"})


# -- rules across fields and state ----------------------------------------------------------
def test_the_tariff_zone_must_be_one_of_the_regions_and_is_spelt_as_it_spells_it() -> None:
    given = InstallationIn.model_validate(_installation(tariff_zone="nsw"))
    assert check_installation(Region.AU, given, None).tariff_zone == "NSW"
    hawaii = InstallationIn.model_validate(_installation(tariff_zone="HI"))
    assert check_installation(Region.US, hawaii, None).tariff_zone == "HI"
    canarias = InstallationIn.model_validate(_installation(tariff_zone="Canarias"))
    assert check_installation(Region.ES, canarias, None).tariff_zone == "canarias"
    with pytest.raises(RefusedError) as refused:
        check_installation(Region.AU, hawaii, None)
    assert refused.value.field == "tariff_zone"
    assert "NSW" in refused.value.limit


def test_a_warranty_cannot_end_before_the_installation() -> None:
    given = InstallationIn.model_validate(_installation(warranty_until="2025-11-02"))
    with pytest.raises(RefusedError) as refused:
        check_installation(Region.AU, given, None)
    assert refused.value.field == "warranty_until"


def test_the_billing_meter_of_a_record_changes_only_by_a_replacement() -> None:
    stored = _stored()
    same_meter = InstallationIn.model_validate(_installation(pv_kwp="8.2"))
    assert check_installation(Region.AU, same_meter, stored).pv_kwp == Decimal("8.2")
    other_meter = InstallationIn.model_validate(_installation(billing_meter="MTR-0009"))
    with pytest.raises(ConflictError, match="meter replacement"):
        check_installation(Region.AU, other_meter, stored)


def test_the_grid_meter_is_optional_and_another_meter_than_the_billing_meter() -> None:
    us_site = InstallationIn.model_validate(_installation(tariff_zone="CA"))
    assert check_installation(Region.US, us_site, None).grid_meter is None
    same = InstallationIn.model_validate(_installation(grid_meter="MTR-0001"))
    with pytest.raises(RefusedError) as refused:
        check_installation(Region.AU, same, None)
    assert refused.value.field == "grid_meter"
    # It changes by a plain update: no registers to chain.
    moved = InstallationIn.model_validate(_installation(grid_meter="GRID-0002"))
    stored = _stored(grid_meter="GRID-0001")
    assert check_installation(Region.AU, moved, stored).grid_meter == "GRID-0002"


def test_a_meter_replacement_cannot_make_the_grid_meter_the_billing_meter() -> None:
    stored = _stored(grid_meter="GRID-0001")
    with pytest.raises(ConflictError, match="grid meter"):
        check_meter_replacement(stored, _swap(new_serial="GRID-0001"), None, NOW)
    check_meter_replacement(stored, _swap(), None, NOW)


def test_a_meter_replacement_swaps_the_meter_in_place_after_the_last_swap() -> None:
    stored = _stored()
    check_meter_replacement(stored, _swap(), None, NOW)  # accepted
    with pytest.raises(ConflictError, match="MTR-0001"):
        check_meter_replacement(stored, _swap(old_serial="MTR-0005"), None, NOW)
    with pytest.raises(RefusedError) as same:
        check_meter_replacement(stored, _swap(new_serial="MTR-0001"), None, NOW)
    assert same.value.field == "new_serial"
    ahead = (NOW + timedelta(minutes=6)).isoformat()
    with pytest.raises(RefusedError) as future:
        check_meter_replacement(stored, _swap(replaced_at=ahead), None, NOW)
    assert future.value.field == "replaced_at"
    earlier = datetime(2026, 2, 9, 22, 30, tzinfo=UTC)  # the swap's own instant: 09:30+11
    with pytest.raises(RefusedError, match="previous meter replacement"):
        check_meter_replacement(stored, _swap(), earlier, NOW)
    check_meter_replacement(stored, _swap(), earlier - timedelta(seconds=1), NOW)


def test_a_closed_account_stays_closed() -> None:
    closed = _account(status="closed")
    check_account_patch(closed, AccountPatch(status=AccountStatus.CLOSED))
    with pytest.raises(ConflictError, match="reopened"):
        check_account_patch(closed, AccountPatch(status=AccountStatus.ACTIVE))
    with pytest.raises(ConflictError, match="closed"):
        check_account_patch(closed, AccountPatch(plan_code="gold"))
    check_account_patch(_account(), AccountPatch(status=AccountStatus.SUSPENDED))


def test_an_account_owns_sites_of_its_own_region_only_and_not_once_closed() -> None:
    check_site_owner(_account(), Region.AU)
    with pytest.raises(ConflictError, match="region"):
        check_site_owner(_account(), Region.ES)
    with pytest.raises(ConflictError, match="closed"):
        check_site_owner(_account(status="closed"), Region.AU)


def test_contacts_per_account_are_bounded() -> None:
    check_contact_count("acc_x", MAX_CONTACTS - 1)
    with pytest.raises(ConflictError):
        check_contact_count("acc_x", MAX_CONTACTS)


def test_account_ids_are_acc_and_a_uuid4_hex() -> None:
    first, second = new_account_id(), new_account_id()
    assert first != second
    assert first.startswith("acc_")
    assert len(first) == 36
    assert set(first[4:]) <= set("0123456789abcdef")
