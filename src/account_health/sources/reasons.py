"""SQL for the reasons of quarantined values, each naming the value and the config key that fixes it.

A reason is an SQL expression that runs only on rejected rows. So it can quote the value and work out
the setting that would read it: the `csv.date_formats` entry for a date in a local format, or
`csv.decimal` for a number written with a decimal comma.
"""

from __future__ import annotations

from account_health.config import SourceConfig
from account_health.sources.canonical import Column
from account_health.sources.sql import EARLIEST, LATEST, literal

# Maximum characters of a value quoted in a reason. The quarantine's value column keeps the whole value.
QUOTED_CHARS = 40

TIMESTAMP_FORMATS = (
    "ISO 8601 such as 2024-03-20T19:26:08Z (with an optional UTC offset), epoch seconds or "
    "milliseconds, or YYYYMMDD, in the years 1900 to 2199"
)
DATE_FORMATS = "YYYY-MM-DD or an ISO 8601 timestamp, in the years 1900 to 2199"
BOOLEAN_WORDS = "true/false, t/f, yes/no, y/n or 1/0 in any case"

# The label and the expected form of each epoch type.
_EPOCHS = {
    "epoch_s": ("invalid epoch seconds", "expected seconds since 1970-01-01 UTC, up to the year 2199"),
    "epoch_ms": (
        "invalid epoch milliseconds",
        "expected milliseconds since 1970-01-01 UTC, up to the year 2199",
    ),
}

# Local day-month-year shapes and the time parts that may follow them, as (regular expression,
# strptime fields). Each shape is tried day first and month first.
_SEPARATORS = ("/", ".", "-")
_YEARS = (("[0-9]{4}", "%Y"), ("[0-9]{2}", "%y"))
_TIMES = (
    ("", ""),
    (" [0-9]{1,2}:[0-9]{2}", " %H:%M"),
    (" [0-9]{1,2}:[0-9]{2}:[0-9]{2}", " %H:%M:%S"),
)

# Number shapes, matched against the whole trimmed value.
_COMMA_THOUSANDS_POINT = r"[-+]?[0-9]{1,3}(,[0-9]{3})+\.[0-9]+"
_COMMA_THOUSANDS = r"[-+]?[0-9]{1,3}(,[0-9]{3})+"
_SPACE_THOUSANDS = "[-+]?[0-9]{1,3}([ \u00a0][0-9]{3})+(\\.[0-9]+)?"
_DECIMAL_COMMA = "[-+]?[0-9]{1,3}([. \u00a0][0-9]{3})+(,[0-9]+)?|[-+]?[0-9]+,[0-9]+"
_DECIMAL_POINT = r"[-+]?[0-9]*\.[0-9]+"


def quoted(value: str) -> str:
    """SQL for the value in single quotes, cut to QUOTED_CHARS characters with '...' after."""
    return (
        f"'''' || CASE WHEN length({value}) > {QUOTED_CHARS} THEN left({value}, {QUOTED_CHARS}) || '...' "
        f"ELSE {value} END || ''''"
    )


def toml_key(value: str) -> str:
    """SQL for the value as a quoted TOML key, or "WORD" when the value is too long to repeat."""
    escaped = f"replace(replace({value}, '\\', '\\\\'), '\"', '\\\"')"
    return f"""'"' || CASE WHEN length({value}) > {QUOTED_CHARS} THEN 'WORD' ELSE {escaped} END || '"'"""


def invalid_value(declared: str, value: str, source: str, column: str, config: SourceConfig) -> str:
    """SQL for the reason a non-empty `value` did not parse as the `declared` type.

    `column` is the canonical column the value fills, named in the `values` example for booleans.
    """
    if declared in ("timestamp", "date"):
        return _instant(declared, value, source, tuple(config.csv.date_formats))
    if declared in _EPOCHS:
        label, expected = _EPOCHS[declared]
        return f"{literal(label + ' ')} || {quoted(value)} || {literal(': ' + expected)}"
    if declared in ("float", "int"):
        return _number(declared, value, source, config.csv.decimal == ",")
    if declared == "bool":
        expected = f": expected {BOOLEAN_WORDS}; map other words in [sources.{source}.values] {column} = {{ "
        return (
            f"'invalid boolean ' || {quoted(value)} || {literal(expected)} || {toml_key(value)} "
            f"""|| {literal(' = "true" } (or "false")')}"""
        )
    return f"'invalid text ' || {quoted(value)}"


def not_allowed(column: Column, value: str, source: str) -> str:
    """SQL for the reason `value` is not one of the column's enumerated values."""
    allowed = ", ".join(column.allowed)
    head = f": not one of {allowed} (compared ignoring case); map it to one of them in [sources.{source}.values] {column.name} = {{ "
    tail = f' = "{column.allowed[0]}" }}'
    return (
        f"{literal(f'invalid {column.name} ')} || {quoted(value)} || {literal(head)} "
        f"|| {toml_key(value)} || {literal(tail)}"
    )


def _instant(declared: str, value: str, source: str, formats: tuple[str, ...]) -> str:
    """SQL for why a timestamp or date did not parse, with the date_formats entry that would read it."""
    kind = "date" if declared == "date" else "timestamp"
    builtin = DATE_FORMATS if declared == "date" else TIMESTAMP_FORMATS
    key = f"[sources.{source}.csv] date_formats"
    head = f"'invalid {kind} ' || {quoted(value)} || ': '"
    single: tuple[str, ...]
    if formats:
        declared_list = ", ".join(f'"{pattern}"' for pattern in formats)
        head += f" || {literal(f'it matches neither {key} ({declared_list}) nor the built-in formats ({builtin})')}"
        single = ("; add ", f" to {key}")
        double = ("; add ", f" to {key} if the day comes first, or ", " if the month comes first")
        fallback = f"; add its strptime format to {key}"
    else:
        head += f" || {literal(f'expected {builtin}')}"
        single = ("; it reads as ", f", so set {key} = [", "]")
        double = (f"; set {key} = [", "] if the day comes first, or [", "] if the month comes first")
        fallback = f'; for another format set {key} to a list of strptime formats, such as ["%d.%m.%Y %H:%M"]'
    return f"{head} || coalesce({_local_format_hint(value, single, double, formats)}, {literal(fallback)})"


def _local_format_hint(
    value: str, single: tuple[str, ...], double: tuple[str, str, str], declared: tuple[str, ...]
) -> str:
    """SQL for the sentence proposing the strptime format(s) that read `value`, or NULL when none does.

    A format that alone reads the value is written between the parts of `single`, once or twice.
    `double` frames the day-first and the month-first format of a value that either could read.
    """
    cases = []
    for separator in _SEPARATORS:
        for year_pattern, year in _YEARS:
            for time_pattern, time in _TIMES:
                day = "[0-9]{1,2}"
                between = "\\." if separator == "." else separator
                pattern = f"{day}{between}{day}{between}{year_pattern}{time_pattern}"
                day_first = f"%d{separator}%m{separator}{year}{time}"
                month_first = f"%m{separator}%d{separator}{year}{time}"
                choices = [fmt for fmt in (day_first, month_first) if fmt not in declared]
                if choices:
                    inner = _format_choice(value, choices, single, double)
                    cases.append(f"WHEN regexp_full_match({value}, {literal(pattern)}) THEN {inner}")
    return f"CASE {' '.join(cases)} END" if cases else "NULL"


def _format_choice(
    value: str, choices: list[str], single: tuple[str, ...], double: tuple[str, str, str]
) -> str:
    """SQL for the sentence naming those of `choices` that read `value` within 1900 to 2199, or NULL."""
    reads = {}
    for fmt in choices:
        parsed = f"try_strptime({value}, {literal(fmt)})"
        reads[fmt] = f"{parsed} >= {EARLIEST} AND {parsed} < {LATEST}"
    options = []
    if len(choices) == 2:
        first, second = choices
        text = f'{double[0]}"{first}"{double[1]}"{second}"{double[2]}'
        options.append(f"WHEN {reads[first]} AND {reads[second]} THEN {literal(text)}")
    for fmt in choices:
        text = f'"{fmt}"'.join(single)
        options.append(f"WHEN {reads[fmt]} THEN {literal(text)}")
    return f"CASE {' '.join(options)} END"


def _number(declared: str, value: str, source: str, decimal_comma: bool) -> str:
    """SQL for why a number did not parse, naming thousands separators and csv.decimal where they are the cause."""
    kind = "invalid whole number " if declared == "int" else "invalid number "
    key = f"[sources.{source}.csv] decimal"
    if declared == "int":
        example = "1234"
    elif decimal_comma:
        example = "1234,5"
    else:
        example = "1234.5"
    generic = f"expected a {'whole' if declared == 'int' else 'finite'} number below 1e15 in magnitude, such as {example}"
    without_commas = f"replace({value}, ',', '')"
    if decimal_comma:
        cases = [
            (
                _COMMA_THOUSANDS_POINT,
                literal(
                    f"is written with a decimal point and ',' as a thousands separator, but {key} = \",\" "
                    "reads ',' as the decimal mark; if the export uses decimal points, remove that setting "
                    "and export the column without thousands separators"
                ),
            ),
            (
                _DECIMAL_POINT,
                literal(
                    f"has a decimal point, but {key} = \",\" reads ',' as the decimal mark and '.' only as "
                    "a thousands separator (1.234,5); if the export uses decimal points, remove that setting"
                ),
            ),
        ]
    else:
        cases = [
            (
                _COMMA_THOUSANDS_POINT,
                "'uses '','' as a thousands separator, which the ingest does not read; export the column "
                f"without thousands separators, as ' || {without_commas}",
            ),
            (
                _COMMA_THOUSANDS,
                literal(
                    f'has a comma: if it is a decimal comma, set {key} = ","; if it is a thousands separator, '
                    "export the column without thousands separators, as "
                )
                + f" || {without_commas}",
            ),
            (
                _SPACE_THOUSANDS,
                literal(
                    f'uses spaces as thousands separators, which the ingest reads only with {key} = "," '
                    "(as in 1 234,5); with a decimal point, export the column without them, as "
                )
                + f" || regexp_replace({value}, '[ \u00a0]', '', 'g')",
            ),
            (
                _DECIMAL_COMMA,
                literal(
                    "is written with a decimal comma or with '.' as a thousands separator (as in 1.234,5); "
                    f'set {key} = ","'
                ),
            ),
        ]
    branches = " ".join(
        f"WHEN regexp_full_match({value}, {literal(pattern)}) THEN {text}" for pattern, text in cases
    )
    return f"{literal(kind)} || {quoted(value)} || ': ' || CASE {branches} ELSE {literal(generic)} END"
