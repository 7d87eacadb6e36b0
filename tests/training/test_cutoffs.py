from __future__ import annotations

import json
from datetime import datetime
from itertools import pairwise

import numpy as np
import pytest

from account_health.config import TierConfig, TierSettings, load_workspace, parse_config
from account_health.errors import ConfigError
from account_health.scoring.score import score
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.training.cutoffs import BAND_KEYS, fit_tier_cutoffs
from account_health.training.evaluate import TIER_NAMES, tier_of
from account_health.training.train import train
from account_health.workspace import open_stores
from company import trained_company, write_company


def _calibrated(rows: int, seed: int, low: float = 0.0, high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions spread like a churn model's (mostly low), and labels drawn with exactly that probability."""
    rng = np.random.default_rng(seed)
    probability = low + (high - low) * rng.beta(0.6, 4.0, rows)
    labels = (rng.random(rows) < probability).astype("int64")
    return labels, probability


def _observed(labels: np.ndarray, probability: np.ndarray, tiers: TierSettings) -> dict[str, float]:
    names = tier_of(probability, tiers)
    return {name: float(labels[names == name].mean()) for name in TIER_NAMES}


def _assert_descending_and_apart(tiers: TierSettings, margin: float) -> None:
    cutoffs = [1.0, tiers.red, tiers.orange, tiers.yellow, tiers.green, 0.0]
    for higher, lower in pairwise(cutoffs):
        assert higher - lower > margin, cutoffs


def test_fitted_cutoffs_hit_every_band():
    labels, probability = _calibrated(40_000, seed=5)
    settings = TierConfig()
    fit = fit_tier_cutoffs(labels, probability, settings)

    assert fit.missed == []
    assert fit.total_miss == 0.0
    _assert_descending_and_apart(fit.tiers, settings.hysteresis_margin)
    observed = _observed(labels, probability, fit.tiers)
    for name, key in zip(TIER_NAMES, BAND_KEYS, strict=True):
        low, high = getattr(settings.bands, key)
        assert low <= observed[name] <= high, (name, observed[name], low, high)
    assert [entry["observed"] for entry in fit.per_tier] == pytest.approx(
        [observed[name] for name in TIER_NAMES]
    )


def test_configured_cutoffs_that_meet_the_bands_are_kept():
    labels, probability = _calibrated(40_000, seed=6)
    bands = {
        "red": [0.60, 1.00],
        "orange": [0.40, 0.60],
        "yellow": [0.20, 0.40],
        "green": [0.08, 0.20],
        "dark_green": [0.00, 0.08],
    }
    settings = parse_config({"tiers": {"bands": bands}}).tiers
    fit = fit_tier_cutoffs(labels, probability, settings)
    assert fit.missed == []
    assert fit.tiers.cutoffs() == TierSettings().cutoffs()


def test_unreachable_bands_are_reported():
    # Every prediction is at least 0.30, so no tier can churn below 1 % (Dark-Green) or 5 % (Green).
    labels, probability = _calibrated(20_000, seed=7, low=0.30, high=0.95)
    settings = TierConfig()
    fit = fit_tier_cutoffs(labels, probability, settings)

    assert "Dark-Green" in fit.missed
    assert "Green" in fit.missed
    assert fit.total_miss > 0
    _assert_descending_and_apart(fit.tiers, settings.hysteresis_margin)
    caveats = fit.caveats()
    assert len(caveats) == len(fit.missed)
    assert any("Dark-Green band (0% to 1%)" in caveat for caveat in caveats), caveats
    described = fit.as_dict()
    assert described["all_bands_met"] is False
    assert described["missed"] == fit.missed
    assert described["cutoffs"] == fit.tiers.cutoffs()


def test_tier_with_too_few_rows_misses_its_band():
    labels, probability = _calibrated(300, seed=8)
    settings = parse_config({"tiers": {"fit_min_rows": 100}}).tiers
    fit = fit_tier_cutoffs(labels, probability, settings)
    small = [entry for entry in fit.per_tier if not entry["enough_rows"]]
    assert small, fit.per_tier
    assert {entry["tier"] for entry in small} <= set(fit.missed)
    assert any("fewer than [tiers] fit_min_rows" in caveat for caveat in fit.caveats())


def test_fitted_tiers_stay_wider_than_a_large_margin():
    labels, probability = _calibrated(20_000, seed=9)
    settings = parse_config({"tiers": {"hysteresis_margin": 0.07}}).tiers
    fit = fit_tier_cutoffs(labels, probability, settings)
    _assert_descending_and_apart(fit.tiers, 0.07)


def test_invalid_bands_are_rejected():
    with pytest.raises(ConfigError, match=r"tiers\.bands\.orange"):
        parse_config({"tiers": {"bands": {"orange": [0.4, 0.15]}}})
    with pytest.raises(ConfigError, match=r"tiers\.bands\.red"):
        parse_config({"tiers": {"bands": {"red": [0.4, 1.2]}}})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    return trained_company(tmp_path_factory.mktemp("company"), fit_cutoffs=True)


def test_train_stores_the_fitted_cutoffs_in_the_artifact(fitted):
    _workspace, result = fitted
    artifact = result.artifact
    described = artifact["tiers_fitted"]
    assert artifact["tiers"] == described["cutoffs"]
    assert described["configured"] == TierSettings().cutoffs()
    assert described["rows"] == len(result.frame)
    _assert_descending_and_apart(TierSettings(**artifact["tiers"]), 0.02)
    in_report = [entry["rows"] for entry in artifact["metrics"]["tiers"]]
    assert in_report == [entry["rows"] for entry in described["tiers"]]
    saved = json.loads(result.path.read_text(encoding="utf-8"))
    assert saved["tiers"] == artifact["tiers"]
    for caveat_tier in described["missed"]:
        assert any(f"miss the {caveat_tier} band" in caveat for caveat in artifact["caveats"])


def test_scoring_uses_the_fitted_cutoffs(fitted):
    workspace, result = fitted
    with open_stores(workspace) as (store, engine):
        scored = score(workspace, store, engine, datetime(2025, 12, 31))
        stored = operational.read_scores(engine, scored.as_of)
    cutoffs = TierSettings(**result.artifact["tiers"])
    probabilities = np.array([row["probability"] for row in stored])
    assert [row["raw_tier"] for row in stored] == list(tier_of(probabilities, cutoffs))


def test_train_without_the_flag_records_no_fit(tmp_path):
    folder = write_company(tmp_path, accounts=400)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        result = train(workspace, store, engine)
    assert result.artifact["tiers"] == TierSettings().cutoffs()
    assert result.artifact["tiers_fitted"] is None


def test_training_report_prints_the_fitted_cutoffs(fitted):
    from rich.console import Console

    from account_health.cli.render import training_report

    _workspace, result = fitted
    console = Console(record=True, width=200)
    training_report(console, result.artifact)
    text = console.export_text()
    assert "tier cut-offs fitted to [tiers.bands]" in text
    assert f"red {result.artifact['tiers']['red']:.4g}" in text
