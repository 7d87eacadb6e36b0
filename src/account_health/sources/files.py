"""Stream CSV and Parquet exports as batches of strings, with row numbers and byte progress.

A CSV file whose name ends in .gz (`tickets.csv.gz`) is decompressed while it is read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from account_health.config import SourceConfig
from account_health.errors import SourceError

BATCH_BYTES = 8 << 20
# Block size of the second read of a CSV file that has a record too long for BATCH_BYTES blocks.
LONG_RECORD_BLOCK_BYTES = 64 << 20
# Share of NUL characters in the first 64 KiB above which a file reads as UTF-16 decoded with the wrong codec.
_UTF16_NUL_SHARE = 0.1
BOM = "\ufeff"
# Excel's delimiter line, such as sep=; as the first line of a CSV file, optionally quoted.
_SEP_LINE = re.compile('"?sep=(.)"?', re.IGNORECASE)
# A number with comma thousands separators, such as 1,234.5, which splits into fields when unquoted.
_COMMA_THOUSANDS = re.compile(r"(?<![0-9.])[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?(?![0-9])")


@dataclass
class RejectedRow:
    """A CSV record the parser could not split into the header's columns."""

    row_number: int
    text: str
    reason: str


@dataclass
class Batch:
    """Rows of one file as string columns, with the 1-based data row number of each row."""

    table: pa.Table
    row_numbers: np.ndarray
    bytes_done: int
    bytes_total: int
    rejected: list[RejectedRow] = field(default_factory=list)


def expand_files(patterns: list[str], base: Path, source: str) -> list[Path]:
    """Resolve file patterns against `base`; a pattern that matches nothing, or a folder, is an error.

    Files come in pattern order, and the files of one pattern in natural order, with digit runs
    compared as numbers (tickets-9.csv before tickets-10.csv). A file that several patterns match, or
    that two paths name (exports/../exports/usage.csv), is listed once, where it first appears.
    """
    if not patterns:
        raise SourceError(
            f"source {source!r} names no file; set [sources.{source}] files or ACCOUNT_HEALTH_SOURCE_{source.upper()}_FILES"
        )
    files: list[Path] = []
    for pattern in patterns:
        candidate = Path(pattern).expanduser()
        if not candidate.is_absolute():
            candidate = base / candidate
        matches = sorted((Path(match) for match in glob(str(candidate))), key=natural_key)
        if not matches:
            raise SourceError(
                f"source {source!r}: no file matches {str(candidate)!r}; fix [sources.{source}] files "
                f"or set ACCOUNT_HEALTH_SOURCE_{source.upper()}_FILES"
            )
        folders = [match for match in matches if match.is_dir()]
        if folders:
            raise SourceError(
                f"source {source!r}: {str(folders[0])!r} is a folder; name files, or a glob such as "
                f"{str(folders[0] / '*.csv')!r}"
            )
        files.extend(matches)
    return _distinct_files(files)


def natural_key(path: Path) -> list[Any]:
    """Sort key that compares the digit runs of a path as numbers, so file-2 sorts before file-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _distinct_files(paths: list[Path]) -> list[Path]:
    """Return `paths` without the later entries that name a file already listed (by its resolved path)."""
    seen: set[Path] = set()
    distinct = []
    for path in paths:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            distinct.append(path)
    return distinct


def file_format(path: Path, config: SourceConfig) -> str:
    if config.format != "auto":
        return config.format
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    return "csv"


def is_gzipped(path: Path) -> bool:
    """Return whether the file's name marks it as gzipped (ends in .gz)."""
    return path.suffix.lower() == ".gz"


def open_bytes(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing it when its name ends in .gz."""
    if is_gzipped(path):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def decompress_error(path: Path, exc: Exception) -> SourceError:
    """Return the error for a compressed file that cannot be decompressed, naming the file and the fix."""
    return SourceError(
        f"{path}: cannot be decompressed ({type(exc).__name__}: {exc}); the file is cut short or is not "
        "what its name says: download or export it again, or rename it to its real format"
    )


@contextmanager
def _decompressing(path: Path) -> Iterator[None]:
    """Raise a decompression failure of a .gz file as an error that names the file."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        if not is_gzipped(path):
            raise
        raise decompress_error(path, exc) from None


def read_header(path: Path, config: SourceConfig) -> list[str]:
    """Return the file's column names, with a UTF-8 byte-order mark removed from the first.

    A column with an empty header is named `unnamed_N`, N being its place from 1.
    """
    if file_format(path, config) == "parquet":
        names = _parquet_file(path).schema_arrow.names
    else:
        with _decompressing(path):
            _check_text(path, config.csv.encoding)
            names = _csv_names(path, config)
    cleaned = _clean_names(names)
    repeated = [name for name, count in Counter(cleaned).items() if count > 1]
    if repeated:
        raise SourceError(
            f"{path}: column {repeated[0]!r} appears more than once in the header; rename one of them"
        )
    return cleaned


def _clean_names(names: list[str]) -> list[str]:
    """Return header names without a byte-order mark or surrounding spaces, an empty one as `unnamed_N`.

    Excel writes empty headers above columns that once held data; naming each by its place keeps
    several of them from being one name repeated.
    """
    cleaned = [name.removeprefix(BOM).strip() for name in names]
    return [name or f"unnamed_{index}" for index, name in enumerate(cleaned, start=1)]


def _csv_names(path: Path, config: SourceConfig) -> list[str]:
    """Return the column names as pyarrow reads them, with larger blocks when a first record is too long."""
    for block_size in (BATCH_BYTES, LONG_RECORD_BLOCK_BYTES):
        try:
            with open_bytes(path) as handle:
                return list(_csv_reader(handle, config, None, path, block_size=block_size).schema.names)
        except _RecordTooLong:
            continue
        except _HeaderWithoutNewline:
            return _header_names(path, config)
    raise _record_too_long(path)


class _HeaderWithoutNewline(Exception):
    """The file is a header line without a line break, which pyarrow's CSV reader cannot open."""


def _header_names(path: Path, config: SourceConfig) -> list[str]:
    """Return the names of a header-only file's one line, split by Python's csv module."""
    with open_bytes(path) as handle:
        text = handle.read().decode(config.csv.encoding, errors="replace")
    lines = text.removeprefix(BOM).splitlines()
    declared = declared_delimiter(path, config.csv.encoding)
    if declared is not None:
        lines = lines[1:]
    rows = list(csv.reader(lines[:1], delimiter=declared or config.csv.delimiter))
    return rows[0] if rows else []


def _check_text(path: Path, encoding: str) -> None:
    """Reject a file whose first bytes cannot be text in `encoding`, before the CSV parser meets them."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise SourceError(
            f"{path}: unknown encoding {encoding!r} in the source's csv.encoding; use a Python codec name "
            "such as utf-8, latin-1 or utf-16"
        ) from None
    with open_bytes(path) as handle:
        head = handle.read(64 * 1024)
    decoder = codec.incrementaldecoder("strict")
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: is not {encoding} text ({exc.reason} at byte {exc.start}); set the source's "
            "csv.encoding (utf-16 and latin-1 are common), or check that the file is a CSV export"
        ) from None
    # Read as a single-byte or UTF-8 codec, UTF-16 text has a NUL beside most ASCII characters. A few
    # NULs are bad cells instead, which the quarantine checks reject row by row.
    if text.count("\x00") > len(text) * _UTF16_NUL_SHARE:
        raise SourceError(
            f"{path}: contains NUL characters, so it is not {encoding} CSV text; set the source's csv.encoding "
            "(UTF-16 files look like this), or check that the file is a CSV export"
        )


def iter_batches(path: Path, config: SourceConfig) -> Iterator[Batch]:
    """Yield the file's rows as string columns, a few megabytes at a time."""
    total = path.stat().st_size
    if file_format(path, config) == "parquet":
        yield from _parquet_batches(path, total)
        return
    with _decompressing(path):
        yield from _csv_batches(path, config, total)


def _csv_batches(path: Path, config: SourceConfig, total: int) -> Iterator[Batch]:
    names = read_header(path, config)
    declared = declared_delimiter(path, config.csv.encoding)
    delimiter = declared or config.csv.delimiter
    # pyarrow numbers records from 1 including the header and a skipped sep= line.
    first_data_record = 3 if declared is not None else 2
    line = unclosed_quote_line(path, config.csv.encoding, delimiter)
    if line is not None:
        raise SourceError(
            f"{path}: the quoted field that opens on line {line} never closes, so every later line would be "
            "read into that one value; close the quote in the export, or export the file again"
        )
    raw_names = _csv_names(path, config)
    rejected: list[RejectedRow] = []

    def reject(row: Any) -> str:
        number = int(row.number) - first_data_record + 1 if row.number is not None else -1
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}; fix the quoting or delimiter"
        if (
            row.actual_columns > row.expected_columns
            and delimiter == ","
            and _COMMA_THOUSANDS.search(row.text)
        ):
            reason += (
                "; if a number has ',' as a thousands separator (as in 1,234.5), export it without "
                "thousands separators, because unquoted each comma splits the number into two fields"
            )
        rejected.append(RejectedRow(number, row.text, reason))
        return "skip"

    # A record longer than a block stops pyarrow's reader. The file is then read again with larger
    # blocks, and the rows already handed out are skipped: the good rows up to the last one handed
    # out, and the rejected rows by number. pyarrow can reject a record of the next block before the
    # good rows ahead of it come out, so a rejected row's number is no bound on the rows handed out.
    handed_through = 0
    handed_rejects: set[int] = set()
    for block_size in (BATCH_BYTES, LONG_RECORD_BLOCK_BYTES):
        try:
            for batch in _csv_pass(path, config, names, raw_names, reject, rejected, block_size, total):
                kept = batch.row_numbers > handed_through
                batch.rejected = [
                    row
                    for row in batch.rejected
                    if row.row_number not in handed_rejects or row.row_number < 0
                ]
                if not kept.all():
                    batch.table = batch.table.filter(pa.array(kept))
                    batch.row_numbers = batch.row_numbers[kept]
                if len(batch.row_numbers):
                    handed_through = max(handed_through, int(batch.row_numbers[-1]))
                handed_rejects.update(row.row_number for row in batch.rejected)
                yield batch
            return
        except _RecordTooLong:
            rejected.clear()
    raise _record_too_long(path)


class _RecordTooLong(Exception):
    """pyarrow's CSV reader met a record that does not fit in its blocks."""


def _csv_pass(
    path: Path,
    config: SourceConfig,
    names: list[str],
    raw_names: list[str],
    reject: Any,
    rejected: list[RejectedRow],
    block_size: int,
    total: int,
) -> Iterator[Batch]:
    """Read the file once with pyarrow blocks of `block_size`, numbering rows from the first."""
    next_row = 1
    # A record longer than a block can be rejected while pyarrow parses the batch before its own, so
    # rejected numbers stay here until the numbering has passed them.
    skipped: set[int] = set()
    compressed = is_gzipped(path)
    with path.open("rb") as raw:
        handle = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        try:
            reader = _csv_reader(handle, config, raw_names, path, reject, block_size)
        except _HeaderWithoutNewline:
            return
        for index, record_batch in enumerate(_guarded(reader, path)):
            table = pa.Table.from_batches([record_batch]).rename_columns(names)
            skipped.update(row.row_number for row in rejected)
            numbers = _row_numbers(next_row, table.num_rows, skipped)
            next_row = int(numbers[-1]) + 1 if len(numbers) else next_row
            skipped = {number for number in skipped if number >= next_row}
            # Each batch is parsed from one block; pyarrow reads the file ahead, so the handle's
            # position cannot tell how far parsing got. Of a gzipped file, the compressed bytes read
            # so far are the estimate, a little ahead of parsing.
            done = raw.tell() if compressed else (index + 1) * block_size
            yield Batch(
                table,
                np.array(numbers, dtype="int64"),
                min(done, total),
                total,
                list(rejected),
            )
            rejected.clear()
    if rejected:
        yield Batch(
            pa.table({name: pa.array([], pa.string()) for name in names}),
            np.array([], "int64"),
            total,
            total,
            list(rejected),
        )
        rejected.clear()


def csv_delimiter(path: Path, config: SourceConfig) -> str:
    """Return the file's delimiter: the one its sep= first line declares, else the source's csv.delimiter."""
    if file_format(path, config) == "parquet":
        return config.csv.delimiter
    return declared_delimiter(path, config.csv.encoding) or config.csv.delimiter


def declared_delimiter(path: Path, encoding: str) -> str | None:
    """Return the delimiter that Excel's first line `sep=X` declares, or None when the file has no such line."""
    with _decompressing(path), open_bytes(path) as handle:
        head = handle.read(256)
    text = codecs.lookup(encoding).incrementaldecoder("replace").decode(head)
    first_line = text.removeprefix(BOM).split("\n", 1)[0].removesuffix("\r")
    found = _SEP_LINE.fullmatch(first_line)
    return found.group(1) if found else None


def unclosed_quote_line(path: Path, encoding: str, delimiter: str) -> int | None:
    """Return the line on which a quoted field opens that is still open at the end of the file, or None.

    The CSV parser reads such a field to the end of the file, which would merge every later record
    into one value. The scan follows the parser's rules: a field is quoted when it starts with a quote,
    `""` inside it is a quote, and a quote elsewhere is text. A file whose quoted fields all close, and
    that has no quote as text, has an even number of quote characters. So only a file with an odd
    number is scanned, and most checks cost one counting pass. NOTE: an open field goes unnoticed
    when the file also has an odd number of quotes as text.
    """
    if _quote_count(path, encoding) % 2 == 0:
        return None
    opening = re.compile(f'[{re.escape(delimiter)}\\n]"')
    line = 1  # the line of text[position]
    open_since: int | None = None  # the line the open quoted field started on
    carry = ""
    first = True
    for chunk in _text_chunks(path, encoding):
        text = carry + chunk
        carry = ""
        position = 0
        if first:
            text = text.removeprefix(BOM)
        while True:
            if open_since is None:
                if first and position == 0 and text.startswith('"'):
                    quote = 0
                else:
                    found = opening.search(text, position)
                    if found is None:
                        # Keep the last character: with the next chunk it may open a quoted field.
                        keep = max(position, len(text) - 1)
                        line += text.count("\n", position, keep)
                        carry = text[keep:]
                        break
                    quote = found.end() - 1
                line += text.count("\n", position, quote)
                open_since = line
                position = quote + 1
                continue
            quote = text.find('"', position)
            if quote < 0 or quote == len(text) - 1:
                # Either no quote yet, or one whose next character (in the next chunk) decides.
                end = len(text) if quote < 0 else quote
                line += text.count("\n", position, end)
                carry = text[end:]
                break
            line += text.count("\n", position, quote)
            if text[quote + 1] == '"':
                position = quote + 2
            else:
                position = quote + 1
                open_since = None
        first = False
    # A quote as the file's last character closes the field it is in.
    return None if carry == '"' else open_since


def _quote_count(path: Path, encoding: str) -> int:
    if '"'.encode(encoding, errors="ignore") == b'"':
        total = 0
        with open_bytes(path) as handle:
            while block := handle.read(BATCH_BYTES):
                total += block.count(b'"')
        return total
    return sum(chunk.count('"') for chunk in _text_chunks(path, encoding))


def _text_chunks(path: Path, encoding: str) -> Iterator[str]:
    decoder = codecs.lookup(encoding).incrementaldecoder("replace")
    with open_bytes(path) as handle:
        while block := handle.read(BATCH_BYTES):
            yield decoder.decode(block)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _row_numbers(start: int, count: int, skipped: set[int]) -> np.ndarray:
    """Return `count` data row numbers from `start` on, leaving out the rejected ones."""
    if not skipped:
        return np.arange(start, start + count, dtype="int64")
    candidates = np.arange(start, start + count + len(skipped), dtype="int64")
    kept = candidates[~np.isin(candidates, np.fromiter(skipped, dtype="int64"))]
    return kept[:count]


def _guarded(reader: pacsv.CSVStreamingReader, path: Path) -> Iterator[pa.RecordBatch]:
    iterator = iter(reader)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if "straddl" in str(exc):
                raise _RecordTooLong() from None
            raise SourceError(
                f"{path}: cannot be read as CSV ({exc}); check the source's csv.encoding"
            ) from None


def _record_too_long(path: Path) -> SourceError:
    """Return the error for a record longer than pyarrow's CSV reader takes, naming its line when one is that long.

    pyarrow raises "straddling object straddles two block boundaries" when a record does not fit in
    two of its blocks. Measured with pyarrow 26.0.1 and 8 MB blocks: 9 MB records loaded wherever
    they started, 12 and 15 MB ones only at some offsets, and 17 MB ones at none.
    """
    line, size = _first_long_line(path, LONG_RECORD_BLOCK_BYTES)
    where = f"the record on line {line} is {size / (1 << 20):.1f} MB long" if line else "a record is too long"
    return SourceError(
        f"{path}: cannot be read as CSV because {where}, and the CSV reader takes records of up to "
        f"{LONG_RECORD_BLOCK_BYTES >> 20} MB; shorten or remove that value in the export"
    )


def _first_long_line(path: Path, limit: int) -> tuple[int | None, int]:
    """Return the 1-based number and byte length of the file's first line longer than `limit` bytes, or (None, 0)."""
    line = 1
    length = 0
    with open_bytes(path) as handle:
        while block := handle.read(BATCH_BYTES):
            start = 0
            while (end := block.find(b"\n", start)) >= 0:
                length += end - start
                if length > limit:
                    return line, length
                line += 1
                length = 0
                start = end + 1
            length += len(block) - start
    return (line, length) if length > limit else (None, 0)


def _csv_reader(
    handle: BinaryIO,
    config: SourceConfig,
    string_columns: list[str] | None,
    path: Path,
    invalid_row_handler: Any = None,
    block_size: int = BATCH_BYTES,
) -> pacsv.CSVStreamingReader:
    try:
        codecs.lookup(config.csv.encoding)
    except LookupError:
        raise SourceError(
            f"{path}: unknown encoding {config.csv.encoding!r} in the source's csv.encoding; use a Python codec "
            "name such as utf-8, latin-1 or utf-16"
        ) from None
    if path.is_file() and path.stat().st_size == 0:
        raise SourceError(
            f"{path}: is empty (0 bytes), so it has not even a header row; export it again, or take it out "
            "of the source's files"
        )
    # A sep= first line sets the delimiter and is skipped, so the header is the line after it.
    declared = declared_delimiter(path, config.csv.encoding)
    read_options = pacsv.ReadOptions(
        block_size=block_size,
        encoding=config.csv.encoding,
        use_threads=False,
        skip_rows=1 if declared is not None else 0,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=declared or config.csv.delimiter,
        newlines_in_values=True,
        # Reading only the header skips malformed records; iter_batches passes a handler that keeps them.
        invalid_row_handler=invalid_row_handler or (lambda _row: "skip"),
    )
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in string_columns or []},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    try:
        return pacsv.open_csv(handle, read_options, parse_options, convert_options)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "straddl" in str(exc):
            raise _RecordTooLong() from None
        if "Empty CSV file" in str(exc):
            raise _HeaderWithoutNewline() from None
        raise SourceError(
            f"{path}: cannot be read as CSV ({exc}); check the source's csv.delimiter and csv.encoding"
        ) from None


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(
            f"{path}: cannot be read as Parquet ({exc}); check the file or its format"
        ) from None


def _parquet_batches(path: Path, total: int) -> Iterator[Batch]:
    parquet = _parquet_file(path)
    rows_total = max(parquet.metadata.num_rows, 1)
    row = 1
    for record_batch in parquet.iter_batches(batch_size=250_000):
        table = pa.Table.from_batches([record_batch])
        names = _clean_names(table.column_names)
        columns = [_as_strings(table.column(index), path, names[index]) for index in range(table.num_columns)]
        strings = pa.table(columns, names=names)
        done = int(total * min(row - 1 + strings.num_rows, rows_total) / rows_total)
        yield Batch(strings, np.arange(row, row + strings.num_rows, dtype="int64"), done, total)
        row += strings.num_rows


def _as_strings(column: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    if pa.types.is_timestamp(column.type):
        # ISO text with an explicit UTC offset when the column carries a timezone.
        unit_format = "%Y-%m-%dT%H:%M:%S"
        if column.type.tz is not None:
            return pc.strftime(column, format=unit_format + "%z")
        return pc.strftime(column, format=unit_format)
    if pa.types.is_dictionary(column.type):
        return _as_strings(column.cast(column.type.value_type), path, name)
    if pa.types.is_floating(column.type):
        # Ids that pandas wrote as floats (an integer column with a null) must read as the integers they
        # are: Arrow writes 370295712714.0 as "3.70295712714e+11", which matches no id.
        exact = pc.and_(pc.is_finite(column), pc.less(pc.abs(column), 2.0**53))
        whole = pc.and_(exact, pc.equal(pc.floor(column), column))
        as_integers = pc.if_else(whole, column, 0.0).cast(pa.int64()).cast(pa.string())
        return pc.if_else(whole, as_integers, column.cast(pa.string()))
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(
            f"{path}: column {name!r} of type {column.type} cannot be read as text ({exc}); export it as a "
            "plain string, number or timestamp column"
        ) from None
