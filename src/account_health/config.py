"""Workspace configuration: one TOML file, validated by pydantic.

Paths in the file are relative to the file itself. Environment variables override the stores, the
models folder and each source's files (see ``ENV_*`` below), so one config can serve a laptop and a
scheduled job.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from account_health.actions.settings import ActionSettings
from account_health.errors import ConfigError, WorkspaceNotFoundError, first_line

CONFIG_FILE = "account-health.toml"
ENV_ANALYTICAL_STORE = "ACCOUNT_HEALTH_ANALYTICAL_STORE"
ENV_OPERATIONAL_STORE = "ACCOUNT_HEALTH_OPERATIONAL_STORE"
ENV_MODELS_DIR = "ACCOUNT_HEALTH_MODELS_DIR"
ENV_SPARK_PARQUET_DIR = "ACCOUNT_HEALTH_SPARK_PARQUET_DIR"
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
# The source name under which the job changes received by `POST /v1/job-changes` are stored.
RESERVED_SOURCE = "api"
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
# The largest `[signals] knowledge_lag_hours`: two days of loads after the as-of instant.
MAX_KNOWLEDGE_LAG_HOURS = 48.0
# A larger ticket weight is most likely a mistake, and this one is far from overflowing a sum of weights.
MAX_SEVERITY_WEIGHT = 1_000_000.0


def _is_number(value: Any) -> bool:
    """Return whether a TOML value is an integer or a float (true and false are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_BYTES = {"B": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_LEAST_MEMORY = 256e6


class WorkspaceSettings(_Section):
    """Locations of the two stores and the model files."""

    analytical_store: str = "data/analytical.duckdb"
    operational_store: str = "sqlite:///data/operational.sqlite"
    models_dir: str = "models"
    # DuckDB's own settings for the analytical store; None keeps DuckDB's defaults (every core, and
    # 80 % of the machine's memory).
    analytical_threads: int | None = Field(None, ge=1, le=256)
    analytical_memory_limit: str | None = None

    @field_validator("analytical_memory_limit")
    @classmethod
    def _memory_is_a_usable_size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B|%)\s*", value)
        if found is None:
            raise ValueError('give a size with its unit, such as "3GB", "512MiB" or "50%"')
        number, unit = float(found.group(1)), found.group(2)
        if unit == "%":
            if not 1 <= number <= 100:
                raise ValueError("give a share of the memory from 1% to 100%")
        elif number * _BYTES[unit[0]] < _LEAST_MEMORY:
            # DuckDB cannot run a query in less; with 0 it starts threads without end.
            raise ValueError('give at least 256MB, such as "3GB"')
        return value


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
            if "%Y" not in pattern and "%y" not in pattern:
                raise ValueError(
                    f"{pattern!r} has no year field (%Y or %y), so every value would read as a day of 1900; "
                    "write the whole date, such as %d/%m/%Y %H:%M"
                )
            # The ingest parses with DuckDB's strptime, so DuckDB decides which fields exist.
            try:
                with duckdb.connect() as connection:
                    connection.execute("SELECT try_strptime('2000-01-01', ?)", [pattern])
            except duckdb.Error as exc:
                raise ValueError(
                    f"{pattern!r} is not a format DuckDB's strptime reads ({first_line(exc)}); use its fields "
                    "such as %d, %m, %Y, %H, %M, %S"
                ) from None
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

    # Where the signal expressions run: "duckdb" (the analytical store itself) or "spark" (the tables
    # that [spark] points at; see SparkSettings).
    engine: Literal["duckdb", "spark"] = "duckdb"
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
    # The knowledge cut-off of a snapshot as of T is T plus this many hours: it reads the row versions
    # available before then, while every event-time window still ends at T.
    knowledge_lag_hours: float = 6.0

    @field_validator("knowledge_lag_hours", mode="before")
    @classmethod
    def _lag_is_a_number(cls, value: Any) -> Any:
        # pydantic reads true as 1 and "6" as 6, but a number of hours is expected, so both are rejected.
        if not _is_number(value):
            raise ValueError(
                f"{value!r} is not a number of hours: give a number without quotes from 0 to "
                f"{MAX_KNOWLEDGE_LAG_HOURS:g}, such as 6"
            )
        return value

    @field_validator("knowledge_lag_hours")
    @classmethod
    def _lag_in_range(cls, value: float) -> float:
        # NaN fails both comparisons, so it is rejected too.
        if not 0 <= value <= MAX_KNOWLEDGE_LAG_HOURS:
            raise ValueError(
                f"give hours from 0 to {MAX_KNOWLEDGE_LAG_HOURS:g}, such as 6 for a nightly run scheduled "
                "before 06:00 UTC; 0 sees only rows available before the as-of instant"
            )
        return value

    @property
    def knowledge_lag(self) -> timedelta:
        """`knowledge_lag_hours` as a duration, rounded to the microsecond."""
        return timedelta(microseconds=round(self.knowledge_lag_hours * 3_600_000_000))

    @field_validator("internal_email_domains")
    @classmethod
    def _plain_domains(cls, value: list[str]) -> list[str]:
        # A domain is compared with the end of each address, so a pattern, an address or a space in it
        # would silently match no address.
        for domain in value:
            bare = domain.removeprefix("@")
            if not bare or any(char.isspace() or char in "@<>*?" for char in bare):
                raise ValueError(
                    f'{domain!r} is not an email domain; give the part after the @, such as "ourco.com", '
                    "and list subdomains separately, since a domain matches only addresses directly under it"
                )
        return value

    @field_validator("severity_weights", mode="before")
    @classmethod
    def _weights_are_numbers(cls, value: Any) -> Any:
        # pydantic reads true as 1 and "4" as 4, but a weight must be a number, so both are rejected.
        if isinstance(value, dict):
            for name, weight in value.items():
                if not _is_number(weight):
                    # The value as TOML writes it: true, "4", 2025-01-01.
                    written = json.dumps(weight) if isinstance(weight, bool | str) else str(weight)
                    hint = (
                        "without quotes"
                        if isinstance(weight, str)
                        else f"from 0 to {MAX_SEVERITY_WEIGHT:,.0f}"
                    )
                    raise ValueError(
                        f"the weight of {name!r} is {written}, not a number; give a number {hint}, such as 4"
                    )
        return value

    @field_validator("severity_weights")
    @classmethod
    def _known_priorities(cls, value: dict[str, float]) -> dict[str, float]:
        """Check the keys against the ticket priorities, ignoring case and spaces around them.

        The ingest stores each priority in lower case whatever case the export writes it in, so the
        keys are stored trimmed and in lower case too.
        """
        from account_health.sources.canonical import PRIORITIES

        unknown = sorted(name for name in value if name.strip().lower() not in PRIORITIES)
        if unknown:
            example = json.dumps(unknown[0].strip())
            raise ValueError(
                f"{', '.join(map(repr, unknown))} is not a ticket priority; the keys are "
                f"{', '.join(PRIORITIES)}, in any case. Map an export's own names to them in the tickets "
                f'source, such as values = {{ priority = {{ {example} = "urgent" }} }}'
            )
        weights: dict[str, float] = {}
        written: dict[str, str] = {}
        for name, weight in value.items():
            priority = name.strip().lower()
            if priority in written:
                raise ValueError(
                    f"{written[priority]!r} and {name!r} name the same priority; keep one of them"
                )
            written[priority] = name
            weights[priority] = weight
        # TOML also reads nan and inf as floats. Such a weight, or one large enough to overflow a sum of
        # weighted tickets, would make the support load infinite or undefined.
        invalid = sorted(
            name
            for name, weight in value.items()
            if not (math.isfinite(weight) and 0 <= weight <= MAX_SEVERITY_WEIGHT)
        )
        if invalid:
            listed = ", ".join(f"{name!r} ({value[name]!r})" for name in invalid)
            subject = "the weight of" if len(invalid) == 1 else "the weights of"
            verb = "is" if len(invalid) == 1 else "are"
            raise ValueError(
                f"{subject} {listed} {verb} outside 0 to {MAX_SEVERITY_WEIGHT:,.0f}; use a number in that range, "
                "such as 4"
            )
        return weights

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


class SparkSettings(_Section):
    """The [spark] section: where Spark finds the canonical tables, and its session settings.

    The ingest stays on DuckDB; with the Spark engine it also writes each canonical table as
    `<parquet_dir>/<table>.parquet`, which Spark reads. With `database` set, Spark reads the tables
    `<database>.<table>` from its catalog instead.
    """

    parquet_dir: str = "data/parquet"
    database: str | None = None
    # None leaves the master to spark-submit or the pyspark default (local[*]).
    master: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)


class TrainingSettings(_Section):
    """Snapshot grid, horizon, hold-out and guards of `account-health train`."""

    window_months: int = Field(18, ge=1, le=120)
    snapshot_every_days: int = Field(30, ge=1, le=365)
    horizon_days: int = Field(90, ge=1, le=730)
    # The years 1900 to 2199, as for --end and every ingested timestamp.
    end: Annotated[date, Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))] | None = None
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    min_churn_events: int = Field(100, ge=1)
    bootstrap_samples: int = Field(500, ge=50, le=10000)
    # "auto" chooses C by log loss on time-ordered folds grouped by account; a number fixes it.
    regularisation_c: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | Literal["auto"] = "auto"
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


class RetrySettings(_Section):
    """Time-out, retries and back-off of one notification destination."""

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError(f"base_url {value!r} is not an http(s) URL; write it as https://host/path")
        return value

    timeout_seconds: float = Field(10.0, gt=0)
    # Every failed request counts, rate limits included; after this many the message stays in the
    # outbox with its error until the next delivery.
    max_attempts: int = Field(6, ge=1, le=100)
    # Back-off after a 5xx or a time-out: backoff_seconds doubled per attempt, up to max_backoff_seconds.
    backoff_seconds: float = Field(1.0, ge=0)
    max_backoff_seconds: float = Field(60.0, ge=0)
    # A Retry-After longer than this ends the destination's delivery; its messages wait for the next one.
    max_retry_after_seconds: float = Field(300.0, ge=0)


class SlackSettings(RetrySettings):
    """The [notify.slack] section: where tier changes are posted and how."""

    enabled: bool = False
    method: Literal["web_api", "webhook"] = "web_api"
    base_url: str = "https://slack.com/api"
    # Names of the environment variables holding the secrets; the values never appear in the config.
    token_env: str = "ACCOUNT_HEALTH_SLACK_TOKEN"
    channel_env: str = "ACCOUNT_HEALTH_SLACK_CHANNEL"
    webhook_url_env: str = "ACCOUNT_HEALTH_SLACK_WEBHOOK_URL"
    # Changes into these tiers get a message each; every other change goes into one digest per run.
    immediate_tiers: list[str] = Field(default_factory=lambda: ["Red", "Orange"])
    digest: bool = True
    # How far before a lost attempt the Web API path searches the channel's history for its message,
    # to allow for a difference between this machine's clock and Slack's.
    history_margin_seconds: float = Field(600.0, ge=0)

    @field_validator("immediate_tiers")
    @classmethod
    def _known_tiers(cls, value: list[str]) -> list[str]:
        # The tier names of training.evaluate.TIER_NAMES, which this module cannot import cheaply.
        names = ("Red", "Orange", "Yellow", "Green", "Dark-Green")
        unknown = [tier for tier in value if tier not in names]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a tier; use some of {', '.join(names)}")
        return value


CRM_FIELDS = (
    "tier",
    "previous_tier",
    "probability",
    "top_signals",
    "action",
    "due_date",
    "owner",
    "renewal_stage",
    "watch_reason",
    "as_of",
)


def _crm_field_keys(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - set(CRM_FIELDS))
    if unknown:
        raise ValueError(f"unknown health field {unknown[0]!r}; the fields are {', '.join(CRM_FIELDS)}")
    return value


CrmFields = Annotated[dict[str, str], AfterValidator(_crm_field_keys)]


class HubSpotSettings(RetrySettings):
    """The [notify.hubspot] section: health fields written to HubSpot companies."""

    enabled: bool = False
    base_url: str = "https://api.hubapi.com"
    token_env: str = "ACCOUNT_HEALTH_HUBSPOT_TOKEN"
    batch_size: int = Field(100, ge=1, le=100)
    # None addresses companies by the account's crm_id; a unique company property (holding the
    # account id) addresses them by that property instead.
    id_property: str | None = None
    fields: CrmFields = Field(
        default_factory=lambda: {
            "tier": "account_health_tier",
            "previous_tier": "account_health_previous_tier",
            "probability": "account_health_churn_probability",
            "top_signals": "account_health_top_signals",
            "action": "account_health_action",
            "due_date": "account_health_action_due_date",
            "watch_reason": "account_health_watch_reason",
            "as_of": "account_health_as_of",
        }
    )


class SalesforceSettings(RetrySettings):
    """The [notify.salesforce] section: health fields written to Salesforce accounts."""

    enabled: bool = False
    # The org's instance URL, such as https://example.my.salesforce.com.
    base_url: str | None = None
    api_version: str = Field("v62.0", pattern=r"^v\d+\.\d$")
    token_env: str = "ACCOUNT_HEALTH_SALESFORCE_TOKEN"
    sobject: str = "Account"
    batch_size: int = Field(200, ge=1, le=200)
    fields: CrmFields = Field(
        default_factory=lambda: {
            "tier": "Health_Tier__c",
            "previous_tier": "Health_Previous_Tier__c",
            "probability": "Churn_Probability__c",
            "top_signals": "Health_Top_Signals__c",
            "action": "Health_Action__c",
            "due_date": "Health_Action_Due_Date__c",
            "watch_reason": "Health_Watch_Reason__c",
            "as_of": "Health_As_Of__c",
        }
    )

    @model_validator(mode="after")
    def _instance_url_when_enabled(self) -> SalesforceSettings:
        if self.enabled and not self.base_url:
            raise ValueError(
                "base_url is required when Salesforce is enabled; set it to the org's instance URL, "
                "such as https://example.my.salesforce.com"
            )
        return self


class DistributionBands(_Section):
    """Healthy share of scored accounts in each tier, as [low, high]; Red and Orange count together."""

    red_orange: ChurnBand = (0.05, 0.10)
    yellow: ChurnBand = (0.20, 0.30)
    green: ChurnBand = (0.50, 0.60)
    dark_green: ChurnBand = (0.10, 0.20)


class BusinessBands(TierBands):
    """Observed churn within the horizon that customer-success practice expects of each tier.

    Yellow has no rule of thumb, so its default band is the whole range [0, 1].
    """

    red: ChurnBand = (0.40, 0.60)
    orange: ChurnBand = (0.15, 0.25)
    yellow: ChurnBand = (0.00, 1.00)
    green: ChurnBand = (0.00, 0.05)
    dark_green: ChurnBand = (0.00, 0.01)


class MonitorSettings(_Section):
    """The [monitor] section: bands and thresholds of `account-health report`."""

    # The Red + Orange share of the latest scoring date above which the team cannot act on every account.
    red_orange_alert_share: float = Field(0.15, gt=0.0, le=1.0)
    distribution_bands: DistributionBands = DistributionBands()
    business_bands: BusinessBands = BusinessBands()
    # Business bands are only reported unless this turns each miss into an alert.
    business_alerts: bool = False
    # Closed scoring dates from this many days before the as-of date are pooled for the business bands.
    business_period_days: int = Field(365, ge=1)
    # A calibration slope outside these bounds, with a 95 % interval that excludes 1, calls for a retrain.
    calibration_slope_bounds: tuple[float, float] = (0.8, 1.25)
    # Population stability index: at or above `psi_warning` a signal has moved, at or above `psi_alert`
    # it calls for a retrain.
    psi_warning: float = Field(0.10, gt=0.0)
    psi_alert: float = Field(0.25, gt=0.0)
    psi_bins: int = Field(10, ge=2, le=100)
    # The weight refit uses the snapshots of the last closed horizon, this many days apart; unset, it
    # uses [training] snapshot_every_days.
    refit_every_days: int | None = Field(None, ge=1, le=365)
    # Significance level of a weight change, split over the model's columns (Bonferroni).
    weight_alpha: float = Field(0.05, gt=0.0, lt=1.0)
    # Below this many churn events per compared column the refit is shown but not tested, because its
    # interval would be too narrow to trust (10 events per variable is the usual rule of thumb).
    weight_min_events_per_column: int = Field(10, ge=1)
    # Days of churn before the as-of date whose ARR the "caught in Red or Orange" figure counts.
    caught_window_days: int = Field(90, ge=1)
    # Unset, the retrain age limit is [training] max_model_age_days.
    max_model_age_days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> MonitorSettings:
        low, high = self.calibration_slope_bounds
        if not 0.0 < low < 1.0 < high:
            raise ValueError(
                f"calibration_slope_bounds must be [low, high] with 0 < low < 1 < high, got [{low}, {high}]"
            )
        if self.psi_warning > self.psi_alert:
            raise ValueError(
                f"psi_warning = {self.psi_warning} is above psi_alert = {self.psi_alert}; the warning level must be the lower one"
            )
        return self


class CrmFileSettings(_Section):
    """The [notify.crm_file] section: a CSV of each run's CRM updates, for teams that import by file."""

    enabled: bool = False
    # Relative to the config file; {as_of} becomes the as-of date (YYYY-MM-DD).
    path: str = "exports/crm-updates-{as_of}.csv"

    @field_validator("path")
    @classmethod
    def _only_as_of_placeholder(cls, value: str) -> str:
        try:
            value.format(as_of="2025-01-31")
        except (AttributeError, IndexError, KeyError, ValueError):
            raise ValueError(
                "the only placeholder is {as_of}; write a literal brace as {{ or }}, "
                'such as "exports/crm-updates-{as_of}.csv"'
            ) from None
        return value


class NotifySettings(_Section):
    """The [notify] section: Slack messages and CRM write-back, all sent through the outbox."""

    slack: SlackSettings = SlackSettings()
    hubspot: HubSpotSettings = HubSpotSettings()
    salesforce: SalesforceSettings = SalesforceSettings()
    crm_file: CrmFileSettings = CrmFileSettings()

    def enabled(self) -> list[str]:
        """Return the names of the enabled notifiers, in the section's order."""
        notifiers = {
            "slack": self.slack.enabled,
            "hubspot": self.hubspot.enabled,
            "salesforce": self.salesforce.enabled,
            "crm_file": self.crm_file.enabled,
        }
        return [name for name, enabled in notifiers.items() if enabled]


# Texts of the in-app prompts, keyed by the prompt keys that the tier playbook hands to the app.
DEFAULT_PROMPT_TEXTS = {
    "talk-to-your-csm": "Talk to your CSM now",
    "expansion-offer": "See what more your plan can do for your team",
    "refer-a-colleague": "Know a team that would like this? Refer a colleague",
}


class ExperienceSettings(_Section):
    """The [experience] section: texts of the in-app prompts served by the HTTP API, by prompt key."""

    prompts: dict[str, str] = Field(default_factory=dict)

    def prompt_text(self, key: str) -> str | None:
        """Return the configured text of a prompt key, else its default text, else None."""
        return self.prompts.get(key, DEFAULT_PROMPT_TEXTS.get(key))


class IdentitySettings(_Section):
    """Company-wide identity rules shared by every source."""

    # Email domain (lower case, without "@") -> account id.
    email_domains: dict[str, str] = Field(default_factory=dict)
    # Domains that never identify an account (personal mail providers, your own company).
    ignored_domains: list[str] = Field(
        default_factory=lambda: ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "yahoo.com"]
    )

    @model_validator(mode="after")
    def _mapped_domains_not_ignored(self) -> IdentitySettings:
        """Reject an email_domains entry that ignored_domains would keep from ever matching."""
        ignored = {domain.strip().lower().lstrip("@") for domain in self.ignored_domains}
        for domain, account in self.email_domains.items():
            if domain.strip().lower().lstrip("@") in ignored:
                raise ValueError(
                    f"email_domains maps {domain!r} to {account!r}, but ignored_domains lists {domain!r} "
                    "(by default it lists gmail.com, googlemail.com, outlook.com, hotmail.com and yahoo.com), "
                    "so the entry would never match. People of many companies share a webmail domain, so "
                    "remove the entry; if every address of the domain belongs to this one account, set "
                    "ignored_domains to a list without it"
                )
        return self


class Config(_Section):
    """The whole account-health.toml."""

    workspace: WorkspaceSettings = WorkspaceSettings()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    identity: IdentitySettings = IdentitySettings()
    signals: SignalSettings = SignalSettings()
    spark: SparkSettings = SparkSettings()
    training: TrainingSettings = TrainingSettings()
    tiers: TierConfig = TierConfig()
    notify: NotifySettings = NotifySettings()
    experience: ExperienceSettings = ExperienceSettings()
    actions: ActionSettings = ActionSettings()
    monitor: MonitorSettings = MonitorSettings()

    @field_validator("sources")
    @classmethod
    def _unreserved_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        if RESERVED_SOURCE in value:
            raise ValueError(
                f"the source name {RESERVED_SOURCE!r} is reserved for the job changes received by the API; "
                "rename the section, e.g. [sources.api_export]"
            )
        return value


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

    @property
    def spark_parquet_dir(self) -> str:
        """The folder of the Parquet export that Spark reads: a local path, or a URI Spark can open."""
        value = os.environ.get(ENV_SPARK_PARQUET_DIR) or self.config.spark.parquet_dir
        return value if "://" in value else str(self.path(value))

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
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; the workspace's config must be a TOML file of that name")
    if not path.is_file():
        raise WorkspaceNotFoundError(
            f"no {CONFIG_FILE} in {root.resolve()}; run `account-health init {root}` to create a workspace, "
            "or pass --workspace DIR"
        )
    try:
        # Windows editors may begin a UTF-8 file with a byte-order mark, which TOML parsers reject.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8: byte {exc.object[exc.start : exc.start + 1]!r} on line {line}; "
            "save the file as UTF-8, as TOML requires"
        ) from None
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
    message = error["msg"]
    if error["type"] == "value_error":
        # Our own validators' messages, without the "Value error, " that pydantic puts before them.
        message = str(error["ctx"]["error"])
    if isinstance(value, dict):
        # A check across a section's keys gets the whole section as its input; the message names the keys.
        return f"  {key}: {message}"
    allowed = ""
    if error["type"] == "literal_error":
        allowed = f"; allowed: {error['ctx']['expected']}"
    return f"  {key} = {value!r}: {message}{allowed}"


def _absolute_sqlite_url(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :])
    if not path.is_absolute():
        path = root / path
    return prefix + str(path)
