"""SQL fragments for the ingest: quoting, parsing strings into canonical types, and row checks.

Values read from files never enter SQL text; they are only ever column data. Names and values from the
config are quoted with `identifier` and `literal`.
"""

from __future__ import annotations

from dataclasses import dataclass

from account_health.config import Resolution, SourceConfig
from account_health.sources.canonical import TableSpec

# Accepted instants: years 1900 to 2199. Anything outside is a unit or format mistake, not history.
EARLIEST = "TIMESTAMP '1900-01-01 00:00:00'"
LATEST = "TIMESTAMP '2200-01-01 00:00:00'"
# Numbers beyond this magnitude are rejected as corrupt; no count or amount in these tables gets near it.
MAX_NUMBER = "1e15"

_TYPE_HINTS = {
    "timestamp": "invalid timestamp: expected ISO 8601 such as 2024-03-20T19:26:08Z, with an optional UTC offset, "
    "epoch seconds or YYYYMMDD, between the years 1900 and 2199; declare another format in [sources.{source}.types]",
    "epoch_s": "invalid epoch seconds: expected seconds since 1970-01-01 UTC, up to the year 2199",
    "epoch_ms": "invalid epoch milliseconds: expected milliseconds since 1970-01-01 UTC, up to the year 2199",
    "date": "invalid date: expected YYYY-MM-DD between the years 1900 and 2199",
    "float": "invalid number: expected a finite number below 1e15 in magnitude",
    "int": "invalid whole number: expected a whole number below 1e15 in magnitude",
    "bool": "invalid boolean: expected true/false, yes/no, 1/0 or t/f",
    "string": "invalid text",
}


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


def identifier(name: str) -> str:
    """Quote a column or table name for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """Quote a string constant for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


def parse_expression(
    raw: str,
    declared: str,
    canonical: str,
    decimal_comma: bool = False,
    date_formats: tuple[str, ...] = (),
) -> str:
    """SQL that parses the string column `raw` as `declared` and yields the `canonical` type (NULL if invalid).

    With `decimal_comma`, numbers are read as 1.234,56. `date_formats` (strptime patterns) are tried
    before the built-in timestamp formats, so a declared local format wins over a guessed one.
    """
    if decimal_comma and declared in ("float", "int"):
        raw = _decimal_comma(raw)
    if date_formats and declared in ("timestamp", "date"):
        local = _local_instant(raw, date_formats)
        builtin = parse_expression(raw, declared, "timestamp")
        parsed = f"coalesce({_within_range(local)}, {builtin})"
        return f"CAST({parsed} AS DATE)" if canonical == "date" else parsed
    if declared in ("timestamp", "epoch_s", "epoch_ms"):
        parsed = _timestamp(raw, declared)
        return f"CAST({parsed} AS DATE)" if canonical == "date" else parsed
    if declared == "date":
        parsed = f"CAST({_within_range(f'coalesce(CAST(TRY_CAST({raw} AS DATE) AS TIMESTAMP), CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP))')} AS DATE)"
        return f"CAST({parsed} AS TIMESTAMP)" if canonical == "timestamp" else parsed
    if declared == "float":
        number = f"TRY_CAST({raw} AS DOUBLE)"
        parsed = f"CASE WHEN isfinite({number}) AND abs({number}) < {MAX_NUMBER} THEN {number} END"
        return f"CAST({parsed} AS BIGINT)" if canonical == "int" else parsed
    if declared == "int":
        number = f"TRY_CAST({raw} AS DOUBLE)"
        whole = (
            f"CASE WHEN {number} = floor({number}) AND abs({number}) < 9e18 THEN CAST({number} AS BIGINT) END"
        )
        return f"CAST({whole} AS DOUBLE)" if canonical == "float" else whole
    if declared == "bool":
        return (
            f"CASE WHEN lower({raw}) IN ('true', 't', '1', 'yes', 'y') THEN TRUE "
            f"WHEN lower({raw}) IN ('false', 'f', '0', 'no', 'n') THEN FALSE END"
        )
    return raw


_THOUSANDS = "[. \u00a0]"
_DECIMAL_COMMA_NUMBER = f"[-+]?[0-9]{{1,3}}({_THOUSANDS}[0-9]{{3}})+(,[0-9]+)?|[-+]?[0-9]+(,[0-9]+)?"


def _decimal_comma(raw: str) -> str:
    """Rewrite 1.234,56 (or 1 234,56) as 1234.56; text of another shape becomes NULL, so it is quarantined."""
    return (
        f"CASE WHEN regexp_full_match({raw}, {literal(_DECIMAL_COMMA_NUMBER)}) "
        f"THEN replace(regexp_replace({raw}, {literal(_THOUSANDS)}, '', 'g'), ',', '.') END"
    )


def _local_instant(raw: str, formats: tuple[str, ...]) -> str:
    attempts = ", ".join(f"CAST(TRY_STRPTIME({raw}, {literal(pattern)}) AS TIMESTAMP)" for pattern in formats)
    return f"coalesce({attempts})" if len(formats) > 1 else attempts


def _timestamp(raw: str, declared: str) -> str:
    return _within_range(_parse_timestamp(raw, declared))


def _within_range(parsed: str) -> str:
    """NULL (so the row is quarantined) for instants outside the years the product accepts."""
    return f"CASE WHEN {parsed} >= {EARLIEST} AND {parsed} < {LATEST} THEN {parsed} END"


# A UTC offset after a time that no place uses, which DuckDB would still apply: hours past 14 (+25:00)
# or minutes past 59 (+05:75).
_IMPOSSIBLE_OFFSET = (
    "[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? *[+-]((1[5-9]|[2-9][0-9])(:?[0-9]{2})?|[0-9]{2}:?[6-9][0-9])$"
)


def _parse_timestamp(raw: str, declared: str) -> str:
    seconds = f"TRY_CAST({raw} AS DOUBLE)"
    from_seconds = f"make_timestamp(CAST(round({seconds} * 1000000) AS BIGINT))"
    from_millis = f"make_timestamp(CAST(round({seconds} * 1000) AS BIGINT))"
    if declared == "epoch_s":
        return f"CASE WHEN abs({seconds}) < 1e11 THEN {from_seconds} END"
    if declared == "epoch_ms":
        return f"CASE WHEN abs({seconds}) < 1e14 THEN {from_millis} END"
    # Nine to eleven digits are epoch seconds and twelve or thirteen are epoch milliseconds. Eight are a
    # compact date (20240320). Other bare digits are rejected rather than guessed.
    return (
        f"CASE WHEN regexp_full_match({raw}, '[0-9]{{9,11}}(\\.[0-9]+)?') THEN {from_seconds} "
        f"WHEN regexp_full_match({raw}, '[0-9]{{12,13}}') THEN {from_millis} "
        f"WHEN regexp_full_match({raw}, '[0-9]{{8}}') THEN CAST(TRY_STRPTIME({raw}, '%Y%m%d') AS TIMESTAMP) "
        f"WHEN regexp_full_match({raw}, '-?[0-9]+(\\.[0-9]+)?') THEN NULL "
        f"WHEN regexp_matches({raw}, {literal(_IMPOSSIBLE_OFFSET)}) THEN NULL "
        f"ELSE CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP) END"
    )


@dataclass(frozen=True)
class Check:
    """One reason to quarantine a staged row: the SQL condition, the offending value and the reason text."""

    column: str
    condition: str
    value: str
    reason: str


def quarantine_checks(source: str, spec: TableSpec, config: SourceConfig) -> list[Check]:
    """Every check a staged row of this source must pass to be stored."""
    checks: list[Check] = []
    for column in spec.columns:
        name = identifier(column.name)
        raw = identifier("_raw_" + column.name)
        declared = config.types.get(column.name, column.type)
        hint = _TYPE_HINTS[declared].format(source=source)
        reason = literal(hint)
        if declared in ("timestamp", "epoch_s", "epoch_ms", "date"):
            reason = _instant_reason(spec.name, column.name, raw, reason)
        checks.append(Check(column.name, f"{raw} IS NOT NULL AND {name} IS NULL", raw, reason))
        # PostgreSQL text cannot hold NUL, so such a value would fail every nightly run that copies it
        # to a PostgreSQL operational store.
        checks.append(Check(column.name, f"contains({raw}, chr(0))", raw, literal(_NUL_REASON)))

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
            reason = (
                f"not one of {', '.join(column.allowed)}; map it in [sources.{source}.values.{column.name}]"
            )
            checks.append(
                Check(column.name, f"{name} IS NOT NULL AND {name} NOT IN ({allowed})", name, literal(reason))
            )

    checks.extend(_table_checks(source, spec, config))
    if config.loaded_at is not None:
        checks.append(
            Check(
                config.loaded_at,
                "_loaded_raw IS NOT NULL AND _loaded_at IS NULL",
                "_loaded_raw",
                literal(_TYPE_HINTS["timestamp"].format(source=source)),
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
            Check("arr", "arr < 0", "CAST(arr AS VARCHAR)", literal("negative ARR; ARR is 0 or more"))
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
                Check(column, f"{column} < 0", f"CAST({column} AS VARCHAR)", literal("negative count"))
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
            "CAST(score AS VARCHAR)",
            literal("NPS score outside 0-10"),
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
            f"kind = 'survey' AND score IS NOT NULL AND regexp_full_match(scale, {scale_pattern}) "
            f"AND (score < {scale_min} OR score > {scale_max})",
            "CAST(score AS VARCHAR)",
            literal("survey score outside its scale"),
        ),
        Check(
            "tag",
            "kind = 'call' AND tag IS NULL AND NOT coalesce(dismissed, FALSE)",
            "tag",
            literal("call sentiment needs a tag: positive, neutral or negative"),
        ),
    ]
