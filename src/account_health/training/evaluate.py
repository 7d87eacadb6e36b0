"""Hold-out evaluation: discrimination and calibration with intervals resampled by account.

Bootstrap samples draw accounts with replacement and weight each row by how often its account was
drawn, which equals resampling whole accounts and keeps the rows of one account together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from account_health.config import TierSettings

TIER_NAMES = ("Red", "Orange", "Yellow", "Green", "Dark-Green")
# The share of the base rate's log-loss that a model must save, at the low end of its interval, to
# count as beating the base rate. Without a floor, a model regularised to near-constant probabilities
# passed by a millionth of a nat while putting every account in one tier.
MIN_LOG_LOSS_GAIN_SHARE = 0.001


def tier_of(probability: np.ndarray, tiers: TierSettings) -> np.ndarray:
    """Tier names for churn probabilities; each cut-off is the inclusive lower bound of its tier."""
    bounds = [tiers.red, tiers.orange, tiers.yellow, tiers.green]
    result = np.full(len(probability), TIER_NAMES[-1], dtype=object)
    for name, bound in reversed(list(zip(TIER_NAMES[:-1], bounds, strict=True))):
        result[probability >= bound] = name
    return result


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def account_weights(accounts: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Return (samples, rows) weights: how often each row's account was drawn in each bootstrap sample."""
    codes, index = np.unique(accounts, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)), size=samples)
    return draws[:, index].astype("float64")


def _interval(metric, labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> Interval:  # type: ignore[no-untyped-def]
    point = float(metric(labels, scores, None))
    values = []
    for weight in weights:
        used = weight > 0
        if len(np.unique(labels[used])) < 2:
            continue
        values.append(metric(labels[used], scores[used], weight[used]))
    if not values:
        return Interval(point, float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(point, float(low), float(high))


def _auc(labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None) -> float:
    return float(roc_auc_score(labels, scores, sample_weight=weight))


def _pr_auc(labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None) -> float:
    return float(average_precision_score(labels, scores, sample_weight=weight))


def _log_loss_gain(base_rate: float):  # type: ignore[no-untyped-def]
    def gain(labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None) -> float:
        base = np.full(len(labels), base_rate)
        return float(
            log_loss(labels, base, sample_weight=weight, labels=[0, 1])
            - log_loss(labels, scores, sample_weight=weight, labels=[0, 1])
        )

    return gain


def calibration_line(labels: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """Calibration slope and intercept: a logistic fit of the label on the model's log-odds."""
    fit = calibration_fit(labels, probability)
    return fit["slope"].value, fit["intercept"].value


def calibration_fit(labels: np.ndarray, probability: np.ndarray) -> dict[str, Interval]:
    """Calibration slope and intercept with their 95 % Wald intervals, NaN where the fit fails."""
    import statsmodels.api as sm

    failed = {"slope": Interval(*[float("nan")] * 3), "intercept": Interval(*[float("nan")] * 3)}
    clipped = np.clip(probability, 1e-6, 1 - 1e-6)
    log_odds = np.log(clipped / (1 - clipped))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(labels, sm.add_constant(log_odds), family=sm.families.Binomial()).fit()
            bounds = np.asarray(fit.conf_int(alpha=0.05))
        except (ValueError, np.linalg.LinAlgError):
            return failed
    if bounds.shape != (2, 2):
        return failed
    return {
        "slope": Interval(float(fit.params[1]), float(bounds[1, 0]), float(bounds[1, 1])),
        "intercept": Interval(float(fit.params[0]), float(bounds[0, 0]), float(bounds[0, 1])),
    }


def tier_calibration(
    labels: np.ndarray, probability: np.ndarray, tiers: TierSettings
) -> list[dict[str, object]]:
    """Per tier: rows, mean predicted probability, observed churn and its Wilson interval.

    The interval's level is corrected for the number of tiers (Bonferroni), so that all tiers hold at
    once with 95 % confidence.
    """
    names = tier_of(probability, tiers)
    alpha = 0.05 / len(TIER_NAMES)
    result = []
    for name in TIER_NAMES:
        mask = names == name
        count = int(mask.sum())
        churned = int(labels[mask].sum())
        if count:
            low, high = proportion_confint(churned, count, alpha=alpha, method="wilson")
        else:
            low = high = float("nan")
        mean_predicted = float(probability[mask].mean()) if count else float("nan")
        observed = churned / count if count else float("nan")
        result.append(
            {
                "tier": name,
                "rows": count,
                "churned": churned,
                "mean_predicted": mean_predicted,
                "observed": observed,
                "observed_low": float(low),
                "observed_high": float(high),
                "consistent": bool(count == 0 or low <= mean_predicted <= high),
            }
        )
    return result


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    """Churn rate among the 10 % highest scores divided by the overall churn rate."""
    if labels.mean() == 0:
        return float("nan")
    cut = max(1, int(np.ceil(len(scores) * 0.1)))
    top = np.argsort(-scores, kind="stable")[:cut]
    return float(labels[top].mean() / labels.mean())


def calibration_curve(labels: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Observed churn against mean predicted probability in equal-count bins of the predictions."""
    order = np.argsort(probability, kind="stable")
    curve = []
    for number, chunk in enumerate(np.array_split(order, min(bins, len(order)))):
        if len(chunk):
            curve.append(
                {
                    "bin": number + 1,
                    "rows": len(chunk),
                    "mean_predicted": float(probability[chunk].mean()),
                    "observed": float(labels[chunk].mean()),
                }
            )
    return curve


def lift_curve(labels: np.ndarray, scores: np.ndarray, step: float = 0.05) -> list[dict[str, float]]:
    """Cumulative lift: churn rate among the top fraction of scores over the overall churn rate."""
    if labels.mean() == 0:
        return []
    order = np.argsort(-scores, kind="stable")
    curve = []
    for fraction in np.arange(step, 1.0 + step / 2, step):
        top = order[: max(1, round(len(order) * float(fraction)))]
        curve.append(
            {"fraction": round(float(fraction), 4), "lift": float(labels[top].mean() / labels.mean())}
        )
    return curve


def evaluate(
    frame: pd.DataFrame,
    probability: np.ndarray,
    base_rate: float,
    tiers: TierSettings,
    baselines: dict[str, np.ndarray],
    samples: int,
    seed: int,
) -> dict[str, object]:
    """Metrics of the model and its baselines on the same hold-out rows."""
    labels = frame["label"].to_numpy().astype("int64")
    weights = account_weights(frame["account_id"].to_numpy(), samples, seed)
    metrics: dict[str, object] = {"rows": len(labels), "churned": int(labels.sum()), "base_rate": base_rate}
    if len(np.unique(labels)) < 2:
        metrics["error"] = "the hold-out has only one class, so discrimination cannot be measured"
        return metrics

    auc = _interval(_auc, labels, probability, weights)
    pr_auc = _interval(_pr_auc, labels, probability, weights)
    gain = _interval(_log_loss_gain(base_rate), labels, np.clip(probability, 1e-12, 1 - 1e-12), weights)
    slope, intercept = calibration_line(labels, probability)
    metrics.update(
        {
            "roc_auc": auc.as_dict(),
            "pr_auc": pr_auc.as_dict(),
            "log_loss": float(log_loss(labels, probability, labels=[0, 1])),
            "log_loss_base_rate": float(log_loss(labels, np.full(len(labels), base_rate), labels=[0, 1])),
            "log_loss_improvement": gain.as_dict(),
            "brier": float(brier_score_loss(labels, probability)),
            "brier_base_rate": float(brier_score_loss(labels, np.full(len(labels), base_rate))),
            "top_decile_lift": top_decile_lift(labels, probability),
            "calibration_slope": slope,
            "calibration_intercept": intercept,
            "tiers": tier_calibration(labels, probability, tiers),
            "calibration_curve": calibration_curve(labels, probability),
            "lift_curve": lift_curve(labels, probability),
            "observed_rate": float(labels.mean()),
        }
    )
    metrics["baselines"] = {
        name: {"roc_auc": _interval(_auc, labels, scores, weights).as_dict()}
        for name, scores in baselines.items()
    }
    needed = MIN_LOG_LOSS_GAIN_SHARE * float(metrics["log_loss_base_rate"])  # type: ignore[arg-type]
    metrics["log_loss_improvement_needed"] = needed
    metrics["beats_base_rate"] = bool(auc.low > 0.5 and gain.low > needed)
    return metrics
