"""Choose the L2 strength C by log loss on time-ordered validation folds grouped by account.

Fold k validates on the k-th later block of snapshots, for a group of accounts held out of its
training rows, and trains on earlier snapshots whose label window ends before the block starts. So a
fold never learns from the future or from the accounts it is scored on.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from account_health.training.model import ChurnModel

DEFAULT_CANDIDATES = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
FALLBACK_C = 1.0


def account_group(account_id: str, groups: int) -> int:
    """Return a stable group number for an account, the same on every run and machine."""
    digest = hashlib.sha256(account_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % groups


def time_folds(frame: pd.DataFrame, folds: int, horizon_days: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training mask, validation mask) pairs; folds that lack rows or a class are left out."""
    snapshots = sorted(frame["as_of"].unique())
    blocks = [block for block in np.array_split(np.array(snapshots), folds + 1) if len(block)]
    groups = frame["account_id"].map(lambda account: account_group(str(account), folds)).to_numpy()
    labels = frame["label"].to_numpy()
    pairs = []
    for number, block in enumerate(blocks[1:]):
        first = pd.Timestamp(block[0])
        held_out_group = number % folds
        validation = frame["as_of"].isin(block).to_numpy() & (groups == held_out_group)
        training = (frame["as_of"] + timedelta(days=horizon_days) <= first).to_numpy() & (
            groups != held_out_group
        )
        if len(np.unique(labels[training])) == 2 and len(np.unique(labels[validation])) == 2:
            pairs.append((training, validation))
    return pairs


def choose_c(
    frame: pd.DataFrame,
    features: list[str],
    horizon_days: int,
    folds: int = 3,
    candidates: tuple[float, ...] = DEFAULT_CANDIDATES,
    class_weight: str = "none",
) -> tuple[float, list[dict[str, float | None]]]:
    """Return the candidate C with the lowest validation log loss, and each candidate's mean log loss.

    Falls back to C = 1.0 when no fold has both classes in its training and validation rows.
    """
    pairs = time_folds(frame, folds, horizon_days)
    if not pairs:
        return FALLBACK_C, [{"C": c, "log_loss": None} for c in candidates]
    labels = frame["label"].to_numpy()
    table: list[dict[str, float | None]] = []
    for c in candidates:
        losses, weights = [], []
        for training, validation in pairs:
            model = ChurnModel(features, C=c, class_weight=class_weight).fit(
                frame[training], labels[training]
            )
            probability = np.clip(model.predict_proba(frame[validation]), 1e-12, 1 - 1e-12)
            losses.append(log_loss(labels[validation], probability, labels=[0, 1]))
            weights.append(validation.sum())
        table.append({"C": c, "log_loss": float(np.average(losses, weights=weights))})
    best = min(table, key=lambda entry: (entry["log_loss"], -float(entry["C"] or 0)))
    return float(best["C"] or FALLBACK_C), table
