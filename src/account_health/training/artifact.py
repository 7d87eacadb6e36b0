"""The model artifact: one JSON file, validated on load, from which no code can run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from account_health.config import TierSettings
from account_health.errors import ModelArtifactError
from account_health.signals.registry import FEATURES, signal_of

FORMAT = "account-health-model"
FORMAT_VERSION = 1
MAX_COEFFICIENT = 1000.0


class _Strict(BaseModel):
    # NaN and infinities cannot come from training, so a file carrying them was damaged or edited.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class FeatureEntry(_Strict):
    name: str
    signal: str
    kind: str = Field(pattern="^(value|missing_indicator)$")
    source: str
    impute: float
    mean: float
    scale: float = Field(gt=0.0)
    # Standardised coefficients beyond this are no fit of churn data; the file was damaged or edited.
    coefficient: float = Field(ge=-MAX_COEFFICIENT, le=MAX_COEFFICIENT)

    @model_validator(mode="after")
    def _known_feature(self) -> FeatureEntry:
        if self.source not in FEATURES:
            raise ValueError(f"unknown feature {self.source!r}; known features: {', '.join(FEATURES)}")
        if signal_of(self.source).name != self.signal:
            raise ValueError(
                f"feature {self.source!r} belongs to signal {signal_of(self.source).name!r}, not {self.signal!r}"
            )
        return self


class ModelSection(_Strict):
    C: float = Field(gt=0.0)
    intercept: float = Field(ge=-MAX_COEFFICIENT, le=MAX_COEFFICIENT)
    features: list[FeatureEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_columns(self) -> ModelSection:
        names = [feature.name for feature in self.features]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"model column {repeated[0]!r} appears more than once")
        return self


class Artifact(_Strict):
    """Required content of a model file. Other keys (metrics, report details) are kept as they are."""

    format: str = Field(pattern=f"^{FORMAT}$")
    format_version: int
    model_version: str = Field(pattern=r"^[0-9A-Za-z._-]{1,64}$")
    created_at: str
    training_end: datetime
    horizon_days: int = Field(gt=0)
    validated: StrictBool
    tiers: TierSettings
    model: ModelSection
    signals_used: list[str]


def _shown_value(value: Any) -> str:
    """` = value` for a scalar in an error message; nothing for a whole section, which would flood it."""
    if isinstance(value, dict | list):
        return ""
    return f" = {value!r}"[:80]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "account-health",
        "scikit-learn",
        "numpy",
        "pandas",
        "ibis-framework",
        "duckdb",
        "statsmodels",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (an empty tier's mean, say) with None, which JSON can carry."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps(artifact: dict[str, Any]) -> str:
    return json.dumps(_finite(artifact), indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"


def write_artifact(artifact: dict[str, Any], folder: Path) -> tuple[Path, str, str]:
    """Write the artifact atomically as `<model_version>.json`; return its path, text and SHA-256."""
    Artifact.model_validate(artifact)
    folder.mkdir(parents=True, exist_ok=True)
    text = dumps(artifact)
    path = folder / f"{artifact['model_version']}.json"
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return path, text, hashlib.sha256(text.encode()).hexdigest()


def parse_artifact(text: str, origin: str) -> dict[str, Any]:
    """Parse and validate model JSON; plain data only, so loading cannot execute code."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelArtifactError(
            f"{origin} is not valid JSON ({exc}); retrain with `account-health train`"
        ) from None
    if not isinstance(data, dict):
        raise ModelArtifactError(
            f"{origin} is not an account-health model; retrain with `account-health train`"
        )
    try:
        Artifact.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ModelArtifactError(
            f"{origin} is not a valid account-health model: {key}{_shown_value(first.get('input'))}: {first['msg']}; "
            "retrain with `account-health train`"
        ) from None
    if data["format_version"] > FORMAT_VERSION:
        raise ModelArtifactError(
            f"{origin} has format version {data['format_version']}, newer than this release reads "
            f"({FORMAT_VERSION}); upgrade account-health"
        )
    return dict(data)


def load_artifact(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelArtifactError(f"cannot read model file {path}: {exc.strerror}") from None
    return parse_artifact(text, str(path))
