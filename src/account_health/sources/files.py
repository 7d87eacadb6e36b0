"""Stream CSV and Parquet exports as batches of strings, with row numbers and byte progress."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from account_health.config import SourceConfig
from account_health.errors import SourceError

BATCH_BYTES = 8 << 20
BOM = "\ufeff"


@dataclass
class Batch:
    """Rows of one file as a table of strings; `first_row` is the 1-based data row number of its first row."""

    table: pa.Table
    first_row: int
    bytes_done: int
    bytes_total: int


def expand_files(patterns: list[str], base: Path, source: str) -> list[Path]:
    """Resolve file patterns against `base`; a pattern that matches nothing is an error."""
    files: list[Path] = []
    for pattern in patterns:
        candidate = Path(pattern).expanduser()
        if not candidate.is_absolute():
            candidate = base / candidate
        matches = sorted(Path(match) for match in glob(str(candidate)))
        if not matches:
            raise SourceError(
                f"source {source!r}: no file matches {str(candidate)!r}; fix [sources.{source}] files "
                f"or set ACCOUNT_HEALTH_SOURCE_{source.upper()}_FILES"
            )
        files.extend(matches)
    return files


def file_format(path: Path, config: SourceConfig) -> str:
    if config.format != "auto":
        return config.format
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    return "csv"


def read_header(path: Path, config: SourceConfig) -> list[str]:
    """Return the file's column names, with a UTF-8 byte-order mark removed from the first."""
    if file_format(path, config) == "parquet":
        names = pq.ParquetFile(path).schema_arrow.names
    else:
        with path.open("rb") as handle:
            names = _csv_reader(handle, config, None).schema.names
    return [name.removeprefix(BOM).strip() for name in names]


def iter_batches(path: Path, config: SourceConfig) -> Iterator[Batch]:
    """Yield the file's rows as string columns, a few megabytes at a time."""
    total = path.stat().st_size
    if file_format(path, config) == "parquet":
        yield from _parquet_batches(path, total)
        return
    with path.open("rb") as handle:
        raw_names = _csv_reader(handle, config, None).schema.names
    names = [name.removeprefix(BOM).strip() for name in raw_names]
    with path.open("rb") as handle:
        reader = _csv_reader(handle, config, raw_names)
        row = 1
        for index, record_batch in enumerate(reader):
            table = pa.Table.from_batches([record_batch]).rename_columns(names)
            # Each batch is parsed from one block of BATCH_BYTES (pyarrow reads the file ahead, so
            # the handle's position cannot tell how far parsing got).
            yield Batch(table, row, min((index + 1) * BATCH_BYTES, total), total)
            row += table.num_rows


def _csv_reader(
    handle: BinaryIO, config: SourceConfig, string_columns: list[str] | None
) -> pacsv.CSVStreamingReader:
    read_options = pacsv.ReadOptions(block_size=BATCH_BYTES, encoding=config.csv.encoding)
    parse_options = pacsv.ParseOptions(delimiter=config.csv.delimiter, newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in string_columns or []},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    try:
        return pacsv.open_csv(handle, read_options, parse_options, convert_options)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{getattr(handle, 'name', handle)}: cannot be read as CSV ({exc}); "
            "check the source's csv.delimiter and csv.encoding"
        ) from None


def _parquet_batches(path: Path, total: int) -> Iterator[Batch]:
    parquet = pq.ParquetFile(path)
    rows_total = max(parquet.metadata.num_rows, 1)
    row = 1
    for record_batch in parquet.iter_batches(batch_size=250_000):
        table = pa.Table.from_batches([record_batch])
        columns = [_as_strings(table.column(index)) for index in range(table.num_columns)]
        names = [name.removeprefix(BOM).strip() for name in table.column_names]
        strings = pa.table(columns, names=names)
        done = int(total * min(row - 1 + strings.num_rows, rows_total) / rows_total)
        yield Batch(strings, row, done, total)
        row += strings.num_rows


def _as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    if pa.types.is_timestamp(column.type):
        # ISO text with an explicit UTC offset when the column carries a timezone.
        unit_format = "%Y-%m-%dT%H:%M:%S"
        if column.type.tz is not None:
            return pc.strftime(column, format=unit_format + "%z")
        return pc.strftime(column, format=unit_format)
    return column.cast(pa.string())
