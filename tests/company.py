"""A small seeded company written as CSV exports, for tests of training, scoring and the CLI.

Churn depends on a latent risk that also drives NPS and ticket volume, so a model trained on it has
something to find. The full synthetic generator lives in account_health.synthetic; this one is tiny
and fast on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from account_health.config import Workspace, load_workspace
from account_health.sources.ingest import ingest
from account_health.training.train import TrainingResult, train
from account_health.workspace import open_stores

START = pd.Timestamp("2024-01-01")
DAYS = 730

CONFIG = """
[sources.accounts]
table = "accounts"
files = ["exports/accounts.csv"]

[sources.contracts]
table = "contracts"
files = ["exports/contracts.csv"]

[sources.tickets]
table = "tickets"
files = ["exports/tickets.csv"]

[sources.churn]
table = "churn_events"
files = ["exports/churn.csv"]

[sources.nps]
table = "sentiment_responses"
files = ["exports/nps.csv"]

[training]
min_churn_events = {min_churn_events}
bootstrap_samples = 100
"""


def write_company(folder: Path, accounts: int = 400, seed: int = 1, min_churn_events: int = 50) -> Path:
    """Write exports and an account-health.toml into `folder`; return the folder."""
    rng = np.random.default_rng(seed)
    exports = folder / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    ids = [f"A{i:04d}" for i in range(accounts)]
    risk = rng.normal(size=accounts)
    zones = rng.choice(["UTC", "America/New_York", "Europe/Berlin"], accounts)
    pd.DataFrame(
        {"account_id": ids, "name": [f"Company {i}" for i in range(accounts)], "timezone": zones}
    ).to_csv(exports / "accounts.csv", index=False)

    tickets, churns, contracts, responses = [], [], [], []
    for index, account in enumerate(ids):
        for number in range(rng.poisson(3 + 3 * np.exp(risk[index]))):
            created = START + pd.Timedelta(days=int(rng.integers(0, DAYS)))
            priority = rng.choice(["urgent", "high", "normal", "low"])
            tickets.append((f"T{index}-{number}", account, created.isoformat(), priority))
        for number in range(8):
            answered = START + pd.Timedelta(days=int(rng.integers(0, DAYS)), hours=int(rng.integers(0, 24)))
            score = int(np.clip(round(7 - 2 * risk[index] + rng.normal()), 0, 10))
            responses.append((f"R{index}-{number}", account, answered.isoformat(), "nps", score))
        churned = rng.random() < 1 / (1 + np.exp(-(1.5 * risk[index] - 0.5)))
        end = START + pd.Timedelta(days=int(rng.integers(200, DAYS - 10))) if churned else None
        contracts.append(
            (f"C{index}", account, START.isoformat(), end.isoformat() if end is not None else "")
        )
        if end is not None:
            churns.append((account, end.isoformat()))

    pd.DataFrame(tickets, columns=["ticket_id", "account_id", "created_at", "priority"]).to_csv(
        exports / "tickets.csv", index=False
    )
    pd.DataFrame(churns, columns=["account_id", "churned_at"]).to_csv(exports / "churn.csv", index=False)
    pd.DataFrame(contracts, columns=["contract_id", "account_id", "start_at", "end_at"]).to_csv(
        exports / "contracts.csv", index=False
    )
    pd.DataFrame(responses, columns=["response_id", "account_id", "responded_at", "kind", "score"]).to_csv(
        exports / "nps.csv", index=False
    )
    (folder / "account-health.toml").write_text(
        CONFIG.format(min_churn_events=min_churn_events), encoding="utf-8"
    )
    return folder


def trained_company(folder: Path, **train_options: Any) -> tuple[Workspace, TrainingResult]:
    """Write a company into `folder`, ingest it and train on it; return the workspace and the result."""
    write_company(folder)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        result = train(workspace, store, engine, **train_options)
    return workspace, result
