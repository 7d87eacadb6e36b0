"""A model that weighs the champion signal, for the job-change re-score tests.

The test company's churn does not depend on its champions, so its trained model gives the champion
features a weight of about zero and a departure would move no account. This copies the trained
model with two coefficients set by hand: losing the last champion adds CHAMPION_LOG_ODDS to the
log-odds, and a departure d days ago adds DAYS_LOG_ODDS * (d - 365), so a recent one counts more.
"""

from __future__ import annotations

import copy
import json

import sqlalchemy as sa

from account_health.config import Workspace
from account_health.store import operational
from account_health.training.artifact import write_artifact

CHAMPION_LOG_ODDS = 1.2
DAYS_LOG_ODDS = 0.002
SUFFIX = "-champion"


def register_champion_model(workspace: Workspace, engine: sa.Engine) -> str:
    """Register a copy of the newest model with the champion weights above; return its version.

    The champion features do not vary in the test company's training snapshots, so their mean is
    the in-seat value (1 champion in seat, 365 days since a departure) and their scale 1.
    """
    row = operational.latest_model_row(engine)
    assert row is not None
    artifact = copy.deepcopy(json.loads(row["artifact"]))
    artifact["model_version"] = f"{row['model_version']}{SUFFIX}"
    for feature in artifact["model"]["features"]:
        if feature["source"] == "champion_in_seat" and feature["kind"] == "value":
            assert (feature["mean"], feature["scale"]) == (1.0, 1.0), feature
            feature["coefficient"] = -CHAMPION_LOG_ODDS
        if feature["source"] == "days_since_champion_departure" and feature["kind"] == "value":
            assert (feature["mean"], feature["scale"]) == (365.0, 1.0), feature
            feature["coefficient"] = -DAYS_LOG_ODDS
    path, text, sha256 = write_artifact(artifact, workspace.models_dir)
    operational.register_model(
        engine,
        artifact["model_version"],
        operational.model_row(engine, row["model_version"])["training_end"],
        bool(artifact["validated"]),
        path,
        sha256,
        text,
    )
    return str(artifact["model_version"])
