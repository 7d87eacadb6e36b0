"""Workspace configuration: one TOML file, validated by pydantic.

Paths in the file are relative to the file itself. Environment variables override the stores, the
models folder and each source's files (see ``ENV_*`` below), so one config can serve a laptop and a
scheduled job.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from account_health.errors import ConfigError, WorkspaceNotFoundError

CONFIG_FILE = "account-health.toml"
ENV_ANALYTICAL_STORE = "ACCOUNT_HEALTH_ANALYTICAL_STORE"
ENV_OPERATIONAL_STORE = "ACCOUNT_HEALTH_OPERATIONAL_STORE"
ENV_MODELS_DIR = "ACCOUNT_HEALTH_MODELS_DIR"
# ACCOUNT_HEALTH_SOURCE_<NAME>_FILES, with several paths separated by os.pathsep.
ENV_SOURCE_FILES = "ACCOUNT_HEALTH_SOURCE_{name}_FILES"

CANONICAL_TABLES = (
    "accounts",
    "contracts",
    "churn_events",
    "usage_events",
    "usage_daily",
    "users",
    "sentiment_responses",
    "tickets",
    "contacts",
    "contact_activity",
    "contact_changes",
    "integrations",
)
COLUMN_TYPES = ("string", "float", "int", "bool", "timestamp", "date", "epoch_s", "epoch_ms")
# Vendor formats read by the adapters in account_health.sources.vendors, besides plain CSV and Parquet.
VENDOR_FORMATS = (
    "segment",
    "zendesk",
    "fivetran_zendesk",
    "salesforce",
    "fivetran_salesforce",
    "hubspot",
    "fivetran_hubspot",
    "nps",
    "calls",
    "job_changes",
    "amplitude",
    "mixpanel",
    "intercom",
)
FILE_FORMATS = ("csv", "parquet", "auto", *VENDOR_FORMATS)

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceSettings(_Section):
    """Locations of the two stores and the model files."""

    analytical_store: str = "data/analytical.duckdb"
    operational_store: str = "sqlite:///data/operational.sqlite"
    models_dir: str = "models"


class Resolution(_Section):
    """Fill a canonical column by looking another column up in a stored canonical table."""

    from_column: str = Field(alias="from")
    table: Literal[CANONICAL_TABLES]  # type: ignore[valid-type]
    key: str
    value: str


class CsvOptions(_Section):
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    # "," reads numbers written with a decimal comma (1.234,56 or 1 234,56); a number with a decimal
    # point is then invalid rather than silently a thousand times larger.
    decimal: Literal[".", ","] = "."
    # strptime formats tried, in order, before the built-in timestamp formats ("%d/%m/%Y %H:%M").
    date_formats: list[str] = Field(default_factory=list)

    @field_validator("date_formats")
    @classmethod
    def _formats_have_fields(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if "%" not in pattern:
                raise ValueError(
                    f"{pattern!r} is not a strptime format; write it with fields such as %d/%m/%Y"
                )
        return value


class SourceIdentity(_Section):
    """How a source's vendor ids (organisation ids, external ids, email domains) become account ids."""

    # Vendor id (as the export writes it) -> account id.
    ids: dict[str, str] = Field(default_factory=dict)
    # CSV files with the columns vendor_id and account_id, for maps too long to write inline.
    ids_files: list[str] = Field(default_factory=list)
    # Look vendor ids up in accounts.crm_id (Salesforce ids match in their 15- and 18-character forms).
    crm_id: bool = False
    # A source column with another id of the account, tried after the account column.
    external_id: str | None = None
    # A source column with an email address whose domain is looked up in [identity] email_domains.
    email: str | None = None


class ChampionRule(_Section):
    """Set contacts.is_champion from a CRM field or from the contact's title."""

    # A source column that is true for champions (such as a Salesforce checkbox Champion__c).
    field: str | None = None
    # A regular expression (case-insensitive) matched against the title column.
    title_pattern: str | None = None

    @field_validator("title_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        import re

        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
        return value


class DatabaseSource(_Section):
    """A table in the company's own PostgreSQL database, read through Ibis instead of files."""

    # The environment variable holding the database URL (postgresql://user:password@host/db), so the
    # password never sits in the config file.
    url_env: str
    table: str
    schema_name: str | None = Field(None, alias="schema")


class SourceConfig(_Section):
    """One export (one or more files of the same layout, or a database table) mapped onto one canonical table."""

    table: Literal[CANONICAL_TABLES]  # type: ignore[valid-type]
    files: list[str] = Field(default_factory=list)
    database: DatabaseSource | None = None
    format: Literal[FILE_FORMATS] = "auto"  # type: ignore[valid-type]
    columns: dict[str, str] = Field(default_factory=dict)
    types: dict[str, Literal[COLUMN_TYPES]] = Field(default_factory=dict)  # type: ignore[valid-type]
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    resolve: dict[str, Resolution] = Field(default_factory=dict)
    loaded_at: str | None = None
    # How rows sharing a key within one load are stored. "versions" keeps each different row as a new
    # version. "sum" adds up their numeric columns first, for feeds split finer than the canonical key,
    # such as usage per feature and day.
    # "latest" keeps, of the rows sharing a key, the one with the greatest `latest_by` value (a
    # timestamp column of the source), as when a ticket appears on two pages of an incremental export.
    duplicate_keys: Literal["versions", "sum", "latest"] = "versions"
    latest_by: str | None = None
    csv: CsvOptions = CsvOptions()
    identity: SourceIdentity = SourceIdentity()
    champion: ChampionRule | None = None

    @model_validator(mode="after")
    def _files_or_database(self) -> SourceConfig:
        if not self.files and self.database is None:
            raise ValueError("a source needs files (a list of paths or globs) or a database table")
        if self.files and self.database is not None:
            raise ValueError("a source reads files or a database table, not both; split it into two sources")
        return self

    @model_validator(mode="after")
    def _latest_needs_column(self) -> SourceConfig:
        if self.duplicate_keys == "latest" and self.latest_by is None and self.format not in VENDOR_FORMATS:
            raise ValueError(
                'duplicate_keys = "latest" needs latest_by, the source column whose greatest value wins'
            )
        return self


class SignalSettings(_Section):
    """Windows, weights and exclusions of the five signals."""

    default_timezone: str = "UTC"
    usage_window_days: int = Field(28, ge=7, le=90)
    internal_user_patterns: list[str] = Field(default_factory=list)
    internal_email_domains: list[str] = Field(default_factory=list)
    sentiment_half_life_days: float = Field(90.0, gt=0)
    sentiment_lookback_days: int = Field(365, ge=1)
    support_window_days: int = Field(90, ge=1)
    support_normalisation: Literal["absolute", "per_active_user"] = "absolute"
    severity_weights: dict[str, float] = Field(
        default_factory=lambda: {"urgent": 4.0, "high": 2.0, "normal": 1.0, "low": 0.5}
    )
    champion_departure_cap_days: int = Field(365, ge=1)
    integrations_change_days: int = Field(90, ge=1)

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA timezone name such as 'UTC' or 'Europe/Berlin'"
            ) from None
        return value


class TrainingSettings(_Section):
    """Snapshot grid, horizon, hold-out and guards of `account-health train`."""

    window_months: int = Field(18, ge=1, le=120)
    snapshot_every_days: int = Field(30, ge=1, le=365)
    horizon_days: int = Field(90, ge=1, le=730)
    end: date | None = None
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    min_churn_events: int = Field(100, ge=1)
    bootstrap_samples: int = Field(500, ge=50, le=10000)
    # "auto" chooses C by log loss on time-ordered folds grouped by account; a number fixes it.
    regularisation_c: Annotated[float, Field(gt=0.0)] | Literal["auto"] = "auto"
    cv_folds: int = Field(3, ge=2, le=10)
    # "balanced" re-weights the classes and then corrects the intercept, so probabilities stay calibrated.
    class_weight: Literal["none", "balanced"] = "none"
    seed: int = 0
    max_model_age_days: int = Field(90, ge=1)


class TierSettings(_Section):
    """Lower bounds (inclusive) of churn probability for each tier; Dark-Green is below `green`."""

    red: Probability = 0.60
    orange: Probability = 0.40
    yellow: Probability = 0.20
    green: Probability = 0.08

    @model_validator(mode="after")
    def _descending(self) -> TierSettings:
        if not self.red > self.orange > self.yellow > self.green:
            raise ValueError(
                f"cut-offs must fall from red to green, got red={self.red}, orange={self.orange}, "
                f"yellow={self.yellow}, green={self.green}"
            )
        return self

    def cutoffs(self) -> dict[str, float]:
        """Return the four cut-offs alone, the form a model artifact stores under "tiers"."""
        return {"red": self.red, "orange": self.orange, "yellow": self.yellow, "green": self.green}


def cutoff_gaps(tiers: TierSettings) -> dict[str, float]:
    """Return the width of each tier's probability range, from Red (up to 1) to Dark-Green (down to 0)."""
    return {
        "red": 1.0 - tiers.red,
        "orange": tiers.red - tiers.orange,
        "yellow": tiers.orange - tiers.yellow,
        "green": tiers.yellow - tiers.green,
        "dark_green": tiers.green,
    }


# At low cut-offs a fixed margin would swamp the tier (0.02 around a 0.02 cut-off), so the margin at
# each cut-off is at most this share of the cut-off itself.
RELATIVE_MARGIN_CAP = 0.25


def effective_margin(margin: float, cutoff: float) -> float:
    """Return the hysteresis margin applied at `cutoff`: `margin`, capped at a quarter of the cut-off."""
    return min(margin, cutoff * RELATIVE_MARGIN_CAP)


def hysteresis_margin_problem(tiers: TierSettings, margin: float) -> str | None:
    """Describe why `margin` cannot be used with these cut-offs, or return None when it can.

    A tier narrower than the margin at its cut-off could never be entered or left by crossing the
    cut-off by the margin. So every range must be wider than the margin that applies to it, counting
    Red's range up to 1 and Dark-Green's down to 0.
    """
    if margin < 0:
        return f"hysteresis_margin = {margin} is negative; use 0 to turn hysteresis off"
    bounding = {
        "red": tiers.red,
        "orange": tiers.orange,
        "yellow": tiers.yellow,
        "green": tiers.green,
        "dark_green": tiers.green,
    }
    for tier, width in cutoff_gaps(tiers).items():
        applied = effective_margin(margin, bounding[tier])
        if applied >= width:
            return (
                f"hysteresis_margin = {margin} is not smaller than the {tier} tier's probability range "
                f"({width:.4g} wide with red={tiers.red}, orange={tiers.orange}, yellow={tiers.yellow}, "
                f"green={tiers.green}); lower the margin or widen the cut-offs"
            )
    return None


def _churn_band(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"a band is [low, high] with 0 <= low <= high <= 1, got [{low}, {high}]")
    return value


ChurnBand = Annotated[tuple[float, float], AfterValidator(_churn_band)]


class TierBands(_Section):
    """Observed churn within the horizon that each tier should show on held-out data, as [low, high]."""

    red: ChurnBand = (0.40, 1.00)
    orange: ChurnBand = (0.15, 0.40)
    yellow: ChurnBand = (0.05, 0.15)
    green: ChurnBand = (0.01, 0.05)
    dark_green: ChurnBand = (0.00, 0.01)


class TierConfig(TierSettings):
    """The [tiers] section: cut-offs, the hysteresis margin and the bands that fitted cut-offs aim for."""

    hysteresis_margin: float = Field(0.02, ge=0.0)
    fit_min_rows: int = Field(20, ge=1)
    bands: TierBands = TierBands()

    @model_validator(mode="after")
    def _margin_fits_cutoffs(self) -> TierConfig:
        problem = hysteresis_margin_problem(self, self.hysteresis_margin)
        if problem is not None:
            raise ValueError(problem)
        return self


class IdentitySettings(_Section):
    """Company-wide identity rules shared by every source."""

    # Email domain (lower case, without "@") -> account id.
    email_domains: dict[str, str] = Field(default_factory=dict)
    # Domains that never identify an account (personal mail providers, your own company).
    ignored_domains: list[str] = Field(
        default_factory=lambda: ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "yahoo.com"]
    )


class Config(_Section):
    """The whole account-health.toml."""

    workspace: WorkspaceSettings = WorkspaceSettings()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    identity: IdentitySettings = IdentitySettings()
    signals: SignalSettings = SignalSettings()
    training: TrainingSettings = TrainingSettings()
    tiers: TierConfig = TierConfig()


class Workspace:
    """A loaded configuration together with the folder its relative paths start from."""

    def __init__(self, config: Config, root: Path) -> None:
        self.config = config
        self.root = root.resolve()

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    def path(self, value: str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        candidate = Path(os.path.expanduser(value))
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def analytical_store_path(self) -> Path:
        return self.path(os.environ.get(ENV_ANALYTICAL_STORE) or self.config.workspace.analytical_store)

    @property
    def operational_store_url(self) -> str:
        url = os.environ.get(ENV_OPERATIONAL_STORE) or self.config.workspace.operational_store
        return _absolute_sqlite_url(url, self.root)

    @property
    def models_dir(self) -> Path:
        return self.path(os.environ.get(ENV_MODELS_DIR) or self.config.workspace.models_dir)

    def source_files(self, name: str) -> list[str]:
        """Return the source's file patterns, from its environment variable when that is set."""
        override = os.environ.get(ENV_SOURCE_FILES.format(name=name.upper()))
        if override:
            return [part for part in override.split(os.pathsep) if part]
        return list(self.config.sources[name].files)


def load_workspace(folder: str | Path) -> Workspace:
    """Read and validate `account-health.toml` in `folder`."""
    root = Path(folder)
    path = root / CONFIG_FILE
    if not path.is_file():
        raise WorkspaceNotFoundError(
            f"no {CONFIG_FILE} in {root.resolve()}; run `account-health init {root}` to create a workspace, "
            "or pass --workspace DIR"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    config = parse_config(raw, str(path))
    _check_source_overrides(config, path)
    return Workspace(config, root)


def _check_source_overrides(config: Config, path: Path) -> None:
    """Reject ACCOUNT_HEALTH_SOURCE_<NAME>_FILES variables that name no configured source."""
    prefix, suffix = ENV_SOURCE_FILES.split("{name}")
    known = {name.upper() for name in config.sources}
    for variable in os.environ:
        if variable.startswith(prefix) and variable.endswith(suffix):
            name = variable[len(prefix) : len(variable) - len(suffix)]
            if name not in known:
                raise ConfigError(
                    f"{variable} is set, but {path} configures no source named {name.lower()!r}; "
                    f"unset it, or use one of: {', '.join(sorted(known)) or '(no sources)'}"
                )


def parse_config(raw: dict[str, Any], origin: str = CONFIG_FILE) -> Config:
    """Validate a parsed TOML document, turning pydantic's errors into one readable message."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{origin} is invalid:"]
        lines.extend(_describe_error(error) for error in exc.errors())
        raise ConfigError("\n".join(lines)) from None


def _describe_error(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key; check its spelling against the commented template from `account-health init`"
    value = error.get("input")
    allowed = ""
    if error["type"] == "literal_error":
        allowed = f"; allowed: {error['ctx']['expected']}"
    return f"  {key} = {value!r}: {error['msg']}{allowed}"


def _absolute_sqlite_url(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :])
    if not path.is_absolute():
        path = root / path
    return prefix + str(path)
