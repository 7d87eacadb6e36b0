"""95 % intervals of the model's standardised coefficients, with errors clustered by account.

The covariance is the cluster-robust sandwich H^-1 B H^-1 at the fitted, L2-penalised coefficients.
H is the penalised Hessian of the log loss. B sums the outer products of each account's summed score
contributions, because rows of one account at different snapshots are not independent. The intervals
therefore surround the coefficients the model uses. They measure variance only: the penalty's pull
towards zero is not in them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from account_health.training.model import ChurnModel

Z_95 = 1.959963984540054


def coefficient_intervals(
    model: ChurnModel, frame: pd.DataFrame
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Return {column: {signal, value, low, high, spans_zero}} and the caveats met on the way."""
    design = np.column_stack([np.ones(len(frame)), model.standardised(frame)])
    labels = frame["label"].to_numpy().astype("float64")
    probability = model.predict_proba(frame)
    coefficients = model.coef_
    intervals: dict[str, dict[str, Any]] = {
        spec.name: {
            "signal": spec.signal,
            "value": float(coef),
            "low": None,
            "high": None,
            "spans_zero": None,
        }
        for spec, coef in zip(model.specs_, coefficients, strict=True)
    }

    # The penalty 1 / (2C) * ||w||^2 leaves the intercept (column 0) unpenalised.
    penalty = np.full(design.shape[1], 1.0 / model.C)
    penalty[0] = 0.0
    hessian = design.T @ (design * (probability * (1 - probability))[:, None]) + np.diag(penalty)
    scores = design * (labels - probability)[:, None]
    accounts = pd.factorize(frame["account_id"])[0]
    cluster_scores = np.zeros((accounts.max() + 1, design.shape[1]))
    np.add.at(cluster_scores, accounts, scores)
    clusters = len(cluster_scores)
    if clusters < 2:
        return intervals, ["coefficient intervals need rows from at least two accounts"]
    meat = cluster_scores.T @ cluster_scores * clusters / (clusters - 1)
    try:
        bread = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return intervals, [
            "coefficient intervals could not be computed (singular Hessian); the weights are point estimates"
        ]
    errors = np.sqrt(np.clip(np.diag(bread @ meat @ bread), 0.0, None))[1:]

    for spec, coef, error in zip(model.specs_, coefficients, errors, strict=True):
        low, high = float(coef - Z_95 * error), float(coef + Z_95 * error)
        intervals[spec.name].update(low=low, high=high, spans_zero=bool(low <= 0.0 <= high))
    return intervals, []


def flagged_signals(intervals: dict[str, dict[str, Any]]) -> list[str]:
    """Signals every one of whose columns has an interval spanning zero."""
    by_signal: dict[str, list[bool | None]] = {}
    for entry in intervals.values():
        by_signal.setdefault(entry["signal"], []).append(entry["spans_zero"])
    return [signal for signal, spans in by_signal.items() if spans and all(span is True for span in spans)]
