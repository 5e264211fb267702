"""A grid-code profile as a rollout's content (cloud.config.grid_content): the settings
per device profile, its unverified values with it, and a production rollout refusing
them without an override — before anything is resolved or signed."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.config.errors import RefusedError
from cloud.config.grid_content import GridCodeContent
from cloud.config.rollout_models import RolloutIn
from cloud.config.rollout_service import RolloutService
from contracts.messages import ProfileRef
from device_profiles import builtin_grid_codes, builtin_profiles

CONTENT = GridCodeContent(builtin_grid_codes(), builtin_profiles())
AU_A = ProfileRef.model_validate({"id": "au-a-2020", "region": "au", "version": 1})


def test_a_grid_code_profile_becomes_settings_for_the_devices_that_take_it() -> None:
    content = CONTENT(AU_A)
    assert content is not None
    der = content.settings["sim-der-inverter"]
    # AS/NZS 4777.2:2020 region A volt-var (grid-codes.md §1): 207/+44, 220/0, 240/0,
    # 258/-60, V in % of 230 V, Q in % of rated VA (705 DeptRef 3)
    assert der["volt_var_q_pct"] == [44, 0, 0, -60]
    assert der["volt_var_v_pct"] == pytest.approx([90.0, 95.652, 104.348, 112.174], abs=1e-3)
    assert der["volt_var_dept_ref"] == 3
    assert "sim-meter-203" not in content.settings  # a meter takes no grid code
    assert content.unverified  # the profile holds values not checked against the standard


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ({"id": "au-a-2020", "region": "us", "version": 1}, "profile.region"),
        ({"id": "au-a-2020", "region": "au", "version": 9}, "profile.version"),
    ],
)
def test_a_profile_named_with_the_wrong_region_or_version_is_refused(
    ref: dict[str, Any], field: str
) -> None:
    with pytest.raises(RefusedError) as refused:
        CONTENT(ProfileRef.model_validate(ref))
    assert refused.value.field == field


def test_a_label_that_is_no_grid_code_carries_no_content() -> None:
    assert (
        CONTENT(ProfileRef.model_validate({"id": "site-tune", "region": "au", "version": 1}))
        is None
    )


def test_production_refuses_unverified_values_without_an_override() -> None:
    # No pool, no config service: the refusal comes before the target is resolved.
    service = RolloutService(None, None, content=CONTENT, production=True)  # type: ignore[arg-type]
    request = RolloutIn.model_validate(
        {"profile": AU_A.model_dump(), "target": {}, "canary": 1, "reason": "A"}
    )
    with pytest.raises(RefusedError) as refused:
        service.create("au", request, "operator:ana")
    assert refused.value.field == "override_unverified"
    assert "unverified" in refused.value.reason
