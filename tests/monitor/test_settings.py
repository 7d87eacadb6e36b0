from __future__ import annotations

import tomllib

import pytest

from account_health.config import BusinessBands, Config, TierSettings, parse_config
from account_health.errors import ConfigError
from account_health.monitor.calibration import band_conflicts
from account_health.workspace import template_text


def test_template_monitor_section_matches_defaults():
    config = parse_config(tomllib.loads(template_text()))
    assert config.monitor == Config().monitor
    for key in Config().monitor.model_dump():
        assert key in template_text(), f"[monitor] {key} is not in the template"


def test_monitor_rejects_warning_above_alert():
    with pytest.raises(ConfigError, match=r"psi_warning = 0\.3 is above psi_alert = 0\.25"):
        parse_config({"monitor": {"psi_warning": 0.3}})


def test_monitor_rejects_slope_bounds_without_one():
    with pytest.raises(
        ConfigError, match=r"calibration_slope_bounds must be \[low, high\] with 0 < low < 1 < high"
    ):
        parse_config({"monitor": {"calibration_slope_bounds": [1.1, 1.5]}})


def test_monitor_rejects_inverted_band():
    with pytest.raises(ConfigError, match=r"monitor\.business_bands\.red"):
        parse_config({"monitor": {"business_bands": {"red": [0.6, 0.4]}}})


def test_default_cutoffs_conflict_with_business_bands():
    conflicts = band_conflicts(TierSettings(), BusinessBands())
    assert len(conflicts) == 3
    assert conflicts[0].startswith("a calibrated Red tier churns at 60% or more")
    assert conflicts[1].startswith("a calibrated Orange tier churns at 40% or more")
    assert conflicts[2].startswith("a calibrated Green tier churns at 8% or more")


def test_low_cutoffs_meet_business_bands():
    cutoffs = TierSettings(red=0.45, orange=0.18, yellow=0.06, green=0.008)
    assert band_conflicts(cutoffs, BusinessBands()) == []
