"""SQL fragments for the ingest: quoting, and parsing strings into canonical types.

Values read from files never enter SQL text; they are only ever column data. Names and values from the
config are quoted with `identifier` and `literal`.
"""

from __future__ import annotations

# Accepted instants: years 1900 to 2199. Anything outside is a unit or format mistake, not history.
EARLIEST = "TIMESTAMP '1900-01-01 00:00:00'"
LATEST = "TIMESTAMP '2200-01-01 00:00:00'"
# Numbers beyond this magnitude are rejected as corrupt; no count or amount in these tables gets near it.
MAX_NUMBER = "1e15"


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
