"""The simulators' model data (model_values.yaml) names only real SunSpec points."""

from __future__ import annotations

import pytest

from device_profiles.sunspec_codec import model_def
from simulators.renderers import model_values


@pytest.mark.parametrize("section", ["fixed", "settings"])
def test_every_constant_names_a_top_level_point_of_its_model(section: str) -> None:
    data = getattr(model_values(), section)
    unknown = [
        f"{model_id}.{name}"
        for model_id, values in data.items()
        for name in values
        if model_def(model_id).root.point(name) is None
    ]
    assert unknown == []


def test_curves_ascend_in_voltage() -> None:
    data = model_values()
    for curve in (*data.volt_var, *data.volt_watt):
        volts = [v for v, _ in curve]
        assert volts == sorted(volts)
