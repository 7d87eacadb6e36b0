"""A generated company whose usage weight doubles halfway, trained before the change and scored since.

With the same seed, every snapshot before the change matches a company where nothing changed, so a
report as of the change date reads unchanged data and a model trained up to that date.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime

import pytest

from account_health.config import Workspace, load_workspace
from account_health.errors import AccountHealthWarning
from account_health.scoring.score import score
from account_health.sources.ingest import ingest
from account_health.synthetic import WeightChange, generate_company
from account_health.training.train import train
from account_health.workspace import open_stores

ACCOUNTS = 600
MONTHS = 24
SEED = 3
CHANGED_FEATURE = "usage_trend"
# The truth snapshots of a 24-month company ending 2026-11-30 are 2025-06-09, 2025-09-07, 2025-12-06,
# 2026-03-06, 2026-06-04 and 2026-09-02; the weight doubles from the fourth (the middle) on.
CHANGE_DATE = datetime(2026, 3, 6)
DATA_END = datetime(2026, 12, 1)
SCORING_DATES = (datetime(2025, 12, 6), CHANGE_DATE, datetime(2026, 6, 4), datetime(2026, 9, 2), DATA_END)


@dataclass(frozen=True)
class MonitoredCompany:
    workspace: Workspace
    model_version: str


@pytest.fixture(scope="session")
def monitored_company(tmp_path_factory: pytest.TempPathFactory) -> MonitoredCompany:
    """Generate, ingest, train up to the change date and score five dates around it."""
    folder = tmp_path_factory.mktemp("monitored")
    company = generate_company(
        folder, accounts=ACCOUNTS, months=MONTHS, seed=SEED, weight_change=WeightChange(CHANGED_FEATURE)
    )
    assert company.snapshots[3] == CHANGE_DATE
    config = company.config_path.read_text(encoding="utf-8")
    # Nine months before the change date contain exactly the three truth snapshots before it.
    config = config.replace("window_months = 18", "window_months = 9")
    config += "min_churn_events = 20\nbootstrap_samples = 100\n"
    # One horizon of this small company has 38 to 40 churn events for 8 compared columns, below the
    # default of 10 per column, so the weight test is allowed to run on 4 per column here.
    config += "\n[monitor]\nweight_min_events_per_column = 4\n"
    company.config_path.write_text(config, encoding="utf-8")

    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine), warnings.catch_warnings():
        warnings.simplefilter("ignore", AccountHealthWarning)
        ingest(workspace, store)
        result = train(workspace, store, engine, end=CHANGE_DATE)
        for moment in SCORING_DATES:
            score(workspace, store, engine, moment)
    return MonitoredCompany(workspace, result.artifact["model_version"])
