"""95 % intervals of the standardised coefficients, with errors clustered by account.

The intervals come from an unpenalised logistic regression (statsmodels GLM) on the same
standardised columns as the model, with a cluster-robust covariance, because rows of one account at
different snapshots are not independent. With the default C the L2 penalty moves coefficients little,
so the refit's estimate is reported beside the interval.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from account_health.training.model import ChurnModel

Z_95 = 1.959963984540054


def coefficient_intervals(
    model: ChurnModel, frame: pd.DataFrame
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Return {column: {signal, value, low, high, spans_zero}} and the caveats met on the way."""
    design = model.standardised(frame)
    labels = frame["label"].to_numpy()
    groups = pd.factorize(frame["account_id"])[0]
    varying = design.std(axis=0) > 0
    empty = {"value": None, "low": None, "high": None, "spans_zero": None}
    intervals: dict[str, dict[str, Any]] = {
        spec.name: {"signal": spec.signal, **empty} for spec in model.specs_
    }
    if not varying.any():
        return intervals, ["no model column varies, so no coefficient interval could be computed"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(
                labels, sm.add_constant(design[:, varying], has_constant="add"), family=sm.families.Binomial()
            ).fit(cov_type="cluster", cov_kwds={"groups": groups})
            estimates, errors = np.asarray(fit.params)[1:], np.asarray(fit.bse)[1:]
        except (ValueError, np.linalg.LinAlgError, sm.tools.sm_exceptions.PerfectSeparationError) as exc:
            return intervals, [
                f"coefficient intervals could not be computed ({exc}); the weights are point estimates"
            ]
    if not np.all(np.isfinite(errors)):
        return intervals, [
            "coefficient intervals are unbounded (separation or collinearity); the weights are point estimates"
        ]

    names = [spec.name for spec, keep in zip(model.specs_, varying, strict=True) if keep]
    for name, estimate, error in zip(names, estimates, errors, strict=True):
        low, high = float(estimate - Z_95 * error), float(estimate + Z_95 * error)
        intervals[name].update(value=float(estimate), low=low, high=high, spans_zero=bool(low <= 0.0 <= high))
    return intervals, []


def flagged_signals(intervals: dict[str, dict[str, Any]]) -> list[str]:
    """Signals every one of whose columns has an interval spanning zero."""
    by_signal: dict[str, list[bool | None]] = {}
    for entry in intervals.values():
        by_signal.setdefault(entry["signal"], []).append(entry["spans_zero"])
    return [signal for signal, spans in by_signal.items() if spans and all(span is True for span in spans)]
