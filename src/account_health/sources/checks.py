"""The checks a staged row must pass to be stored, each with the SQL of its quarantine reason."""

from __future__ import annotations

from dataclasses import dataclass

from account_health.config import Resolution, SourceConfig
from account_health.sources import reasons
from account_health.sources.canonical import TableSpec
from account_health.sources.sql import identifier, literal

_INFINITE_REASON = "infinite timestamp: expected an instant between the years 1900 and 2199"
# Columns where an empty value (NULL) means the period has not ended, which a database may store as
# 'infinity' instead. Each maps to a description of such a row, for the quarantine reason.
_OPEN_ENDS = {
    ("integrations", "disconnected_at"): "an integration that is still connected",
    ("contracts", "end_at"): "a contract with no end date",
}
_NUL_REASON = (
    "contains a NUL character, which no text column can store; fix the export, or check its csv.encoding"
)
# Maximum size, in UTF-8 bytes, of a value that a column may store: 16 MiB, the record limit of JSON exports.
MAX_VALUE_BYTES = 16 << 20
# Characters of an over-long value that its quarantine row keeps.
_LONG_VALUE_SHOWN = 40


# The text of an NPS score: a whole number in decimal digits, with an optional decimal part of zeros.
_NPS_DIGITS = "[0-9]+([.,]0+)?"
_NPS_DIGITS_HELP = (
    ": expected a whole number from 0 to 10 in decimal digits, such as 9 (9.0 reads as 9); "
    'export the score in digits, or for a score with a fraction set kind = "survey" and its scale'
)


def _nps_scale_help(source: str) -> str:
    return (
        f'; for answers on another scale set kind = "survey" in [sources.{source}.constants] or the kind '
        "column, or leave scale empty for NPS answers"
    )


@dataclass(frozen=True)
class Check:
    """One reason to quarantine a staged row: SQL for the condition, the offending value and the reason."""

    column: str
    condition: str
    value: str
    reason: str


def _text_check(column: str, raw: str) -> Check:
    """Check that rejects a value containing NUL, or longer than MAX_VALUE_BYTES (quarantined with its start only).

    One check covers both, because each check is a pass over the staged rows.
    """
    too_long = f"strlen({raw}) > {MAX_VALUE_BYTES}"
    size = f"round(strlen({raw}) / {1 << 20}, 1)"
    long_reason = (
        f"'value is ' || {size} || ' MB long, longer than the {MAX_VALUE_BYTES >> 20} MB a column may store; "
        "shorten or remove it in the export'"
    )
    value = f"CASE WHEN {too_long} THEN left({raw}, {_LONG_VALUE_SHOWN}) || '...' ELSE {raw} END"
    reason = f"CASE WHEN {too_long} THEN {long_reason} ELSE {literal(_NUL_REASON)} END"
    return Check(column, f"contains({raw}, chr(0)) OR {too_long}", value, reason)


def quarantine_checks(source: str, spec: TableSpec, config: SourceConfig) -> list[Check]:
    """Every check a staged row of this source must pass to be stored."""
    checks: list[Check] = []
    for column in spec.columns:
        name = identifier(column.name)
        raw = identifier("_raw_" + column.name)
        declared = config.types.get(column.name, column.type)
        reason = reasons.invalid_value(declared, raw, source, column.name, config)
        if declared in ("timestamp", "epoch_s", "epoch_ms", "date"):
            reason = _instant_reason(spec.name, column.name, raw, reason)
        checks.append(Check(column.name, f"{raw} IS NOT NULL AND {name} IS NULL", raw, reason))
        # PostgreSQL text cannot hold NUL, so such a value would fail every nightly run that copies it
        # to a PostgreSQL operational store.
        checks.append(_text_check(column.name, raw))

        is_account_link = column.name == spec.account_column
        if column.name in config.resolve:
            checks.append(_ambiguous_check(column.name, config.resolve[column.name]))
        if column.name in config.resolve and not is_account_link:
            resolution = config.resolve[column.name]
            source_value = identifier("_from_" + column.name)
            reason = (
                f"{resolution.from_column} not found in {resolution.table}.{resolution.key}; "
                f"ingest {resolution.table} first or fix the id"
            )
            matches = identifier("_matches_" + column.name)
            checks.append(
                Check(column.name, f"{name} IS NULL AND {matches} IS NULL", source_value, literal(reason))
            )
        elif column.required and not is_account_link and column.name not in spec.derived:
            reason = f"missing required value for {spec.name}.{column.name}"
            checks.append(Check(column.name, f"{name} IS NULL AND {raw} IS NULL", "NULL", literal(reason)))

        if column.allowed:
            allowed = ", ".join(literal(value) for value in column.allowed)
            checks.append(
                Check(
                    column.name,
                    f"{name} IS NOT NULL AND {name} NOT IN ({allowed})",
                    name,
                    reasons.not_allowed(column, name, source),
                )
            )

    checks.extend(_table_checks(source, spec, config))
    if config.loaded_at is not None:
        checks.append(
            Check(
                config.loaded_at,
                "_loaded_raw IS NOT NULL AND _loaded_at IS NULL",
                "_loaded_raw",
                reasons.invalid_value("timestamp", "_loaded_raw", source, config.loaded_at, config),
            )
        )
    return checks


def _ambiguous_check(target: str, resolution: Resolution) -> Check:
    """Build the check for a value that matched several rows of the resolution's table (see ingest `_resolve`)."""
    source_value = identifier("_from_" + target)
    matches = identifier("_matches_" + target)
    table, key = resolution.table, resolution.key
    reason = (
        f"{literal(resolution.from_column + ' ')} || {source_value} || "
        f"{literal(f' matches several rows of {table} by {key} ({resolution.value} ')} || {matches} || "
        f"{literal(f'); give the row its {target}, or keep that {key} on one row of {table} only')}"
    )
    return Check(target, f"{matches} IS NOT NULL", source_value, reason)


def _instant_reason(table: str, column: str, raw: str, otherwise: str) -> str:
    """SQL for the reason an instant is invalid: infinity (as PostgreSQL writes it) apart from other text."""
    infinite = literal(_INFINITE_REASON)
    open_end = _OPEN_ENDS.get((table, column))
    if open_end is None:
        return f"CASE WHEN lower({raw}) IN ('infinity', '+infinity', '-infinity') THEN {infinite} ELSE {otherwise} END"
    still_open = literal(f"{_INFINITE_REASON}; leave {column} empty (NULL) for {open_end}")
    return (
        f"CASE WHEN lower({raw}) IN ('infinity', '+infinity') THEN {still_open} "
        f"WHEN lower({raw}) = '-infinity' THEN {infinite} ELSE {otherwise} END"
    )


def _table_checks(source: str, spec: TableSpec, config: SourceConfig) -> list[Check]:
    checks: list[Check] = []
    if spec.name == "accounts":
        checks.append(
            Check(
                "timezone",
                "timezone IS NOT NULL AND timezone NOT IN (SELECT name FROM pg_timezone_names())",
                "timezone",
                literal("unknown IANA timezone; use a name such as UTC, America/New_York or Europe/Berlin"),
            )
        )
    if spec.name in ("accounts", "contracts"):
        checks.append(
            Check(
                "arr",
                "arr < 0",
                "_raw_arr",
                f"'negative ARR ' || {reasons.quoted('trim(_raw_arr)')} || '; ARR is 0 or more'",
            )
        )
    if spec.name == "contracts":
        checks.append(
            Check(
                "end_at",
                "end_at IS NOT NULL AND start_at IS NOT NULL AND end_at < start_at",
                "CAST(end_at AS VARCHAR)",
                literal("contract ends before it starts"),
            )
        )
    if spec.name == "usage_daily":
        checks.append(
            Check(
                "active_users",
                "active_users IS NULL AND event_count IS NULL",
                "NULL",
                literal("a daily usage row needs active_users or event_count"),
            )
        )
        for column in ("active_users", "event_count"):
            checks.append(
                Check(
                    column,
                    f"{column} < 0",
                    f"_raw_{column}",
                    f"'negative {column} ' || {reasons.quoted(f'trim(_raw_{column})')} || '; a count is 0 or more'",
                )
            )
    if spec.name == "sentiment_responses":
        checks.extend(_sentiment_checks(source))
    return checks


def _sentiment_checks(source: str) -> list[Check]:
    scale_pattern = "'[0-9]+(\\.[0-9]+)?-[0-9]+(\\.[0-9]+)?'"
    scale_min = "TRY_CAST(split_part(scale, '-', 1) AS DOUBLE)"
    scale_max = "TRY_CAST(split_part(scale, '-', 2) AS DOUBLE)"
    return [
        Check(
            "score",
            "kind = 'nps' AND score IS NOT NULL AND (score < 0 OR score > 10)",
            "_raw_score",
            f"'NPS score ' || {reasons.quoted('trim(_raw_score)')} || ' is outside 0-10'",
        ),
        # An NPS answer is one of the whole numbers 0 to 10, so a fraction (9.5) or another notation
        # (1e1, which DuckDB reads as 10) means the column is not an NPS answer. A decimal part of zeros
        # (9.0, as a float column often writes 9) is the same number and is read.
        Check(
            "score",
            f"kind = 'nps' AND score >= 0 AND score <= 10 AND NOT regexp_full_match(trim(_raw_score), {literal(_NPS_DIGITS)})",
            "_raw_score",
            f"'invalid NPS score ' || {reasons.quoted('_raw_score')} || {literal(_NPS_DIGITS_HELP)}",
        ),
        # Rescaling such a row as a survey would silently change the number its source calls an NPS, so
        # it is quarantined until the source declares which kind it is.
        Check(
            "scale",
            f"kind = 'nps' AND scale IS NOT NULL AND NOT (regexp_full_match(scale, {scale_pattern}) "
            f"AND {scale_min} = 0 AND {scale_max} = 10)",
            "scale",
            f"'NPS is scored 0-10, but the row declares scale ' || {reasons.quoted('scale')} || "
            f"{literal(_nps_scale_help(source))}",
        ),
        Check(
            "scale",
            f"kind = 'survey' AND score IS NOT NULL AND (scale IS NULL OR NOT regexp_full_match(scale, {scale_pattern}))",
            "scale",
            literal(
                f"survey scale missing or not written as MIN-MAX such as 1-5; set [sources.{source}.constants] scale"
            ),
        ),
        Check(
            "scale",
            f"kind = 'survey' AND regexp_full_match(scale, {scale_pattern}) AND {scale_min} >= {scale_max}",
            "scale",
            literal("survey scale minimum is not below its maximum"),
        ),
        Check(
            "score",
            # A reversed scale already has its own reason above, so its scores are not checked against it.
            f"kind = 'survey' AND score IS NOT NULL AND regexp_full_match(scale, {scale_pattern}) "
            f"AND {scale_min} < {scale_max} AND (score < {scale_min} OR score > {scale_max})",
            "_raw_score",
            f"'survey score ' || {reasons.quoted('trim(_raw_score)')} || ' is outside its scale ' || {reasons.quoted('scale')} || "
            f"{literal(f'; give the scale the survey used in its scale column or [sources.{source}.constants] scale')}",
        ),
        Check(
            "tag",
            "kind = 'call' AND tag IS NULL AND NOT coalesce(dismissed, FALSE)",
            "tag",
            literal("call sentiment needs a tag: positive, neutral or negative"),
        ),
    ]
