"""The adapter contract shared by every vendor format, with JSON reading and record batching.

An adapter turns a vendor's files into flat batches of string columns, each row carrying the file and
the row it came from, and names the default mapping of those columns onto each canonical table it can
fill. The ingest then types, checks, quarantines and versions the rows like any CSV export.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any, ClassVar, Generic, TypeVar, cast

import numpy as np
import orjson
import pyarrow as pa

from account_health.config import SourceConfig
from account_health.errors import SourceError
from account_health.sources import files as source_files
from account_health.sources.files import Batch, RejectedRow

# Rows per emitted batch: small enough that a batch of wide JSON records stays a few megabytes.
BATCH_ROWS = 20_000
# A JSON record longer than this is rejected rather than parsed, so one hostile line cannot exhaust memory.
MAX_RECORD_BYTES = 16 << 20
# Nested objects are flattened to dotted column names up to this depth; deeper values stay JSON text.
MAX_FLATTEN_DEPTH = 4
# Lines of a JSON lines file handed to a block reader at once (see `iter_json_blocks`).
BLOCK_LINES = BATCH_ROWS

BlockValue = TypeVar("BlockValue")


@dataclass(frozen=True)
class TableDefaults:
    """An adapter's default mapping onto one canonical table; the source's own keys override each entry."""

    columns: dict[str, str]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    duplicate_keys: str | None = None
    latest_by: str | None = None
    # The source column with an email address, for identity resolution, unless the source names one.
    identity_email: str | None = None
    # Columns filled through another canonical table: target -> (from column, table, key, value).
    resolve: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)


@dataclass
class FileBatch:
    """A batch of flat string rows from one of the source's files (an index into the source's file list)."""

    file_index: int
    batch: Batch
    # Records of other kinds that this table does not take, counted by kind ("identify message").
    skipped: Counter[str] = field(default_factory=Counter)


class Adapter:
    """A vendor format: reads the source's files and yields flat batches with provenance."""

    name: ClassVar[str]
    tables: ClassVar[dict[str, TableDefaults]]
    # Canonical columns whose `values` mapping the adapter applies to the text it reads, before it
    # interprets that text, so the ingest does not apply the mapping a second time.
    maps_values: ClassVar[tuple[str, ...]] = ()

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        """Yield the rows of `paths` that belong to `table`, as flat string batches with provenance."""
        raise NotImplementedError

    def check_table(self, table: str, source: str) -> TableDefaults:
        """Return the defaults for `table`, or raise when this format cannot fill it."""
        if table not in self.tables:
            raise SourceError(
                f"[sources.{source}] format = {self.name!r} cannot fill the table {table!r}; "
                f"it fills {', '.join(sorted(self.tables))}"
            )
        return self.tables[table]


def plain_files(config: SourceConfig) -> SourceConfig:
    """Return the source config that reads files as plain CSV or Parquet, for adapters of warehouse tables."""
    return config.model_copy(update={"format": "auto"})


def open_binary(path: Path) -> IO[bytes]:
    """Open a file, decompressing .gz, or the single member of a .zip archive."""
    members = list(_members(path))
    if len(members) != 1:
        raise SourceError(
            f"{path}: a zip export read as one file must hold exactly one file, found {len(members)}; "
            "unzip it and name the files"
        )
    return members[0][1]()


def _members(path: Path) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """Names and openers of the file's streams: the file itself (decompressed when .gz), or each member of a .zip."""
    if path.suffix.lower() == ".gz":
        yield path.name, lambda: cast(IO[bytes], gzip.open(path, "rb"))  # noqa: SIM115 (the caller closes it)
        return
    if path.suffix.lower() != ".zip":
        yield path.name, lambda: path.open("rb")
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{path}: is not a readable zip archive ({exc})") from None
    for info in sorted(
        (info for info in archive.infolist() if not info.is_dir() and not _archive_metadata(info.filename)),
        key=lambda info: info.filename,
    ):
        yield info.filename, _member_opener(archive, info)


def _archive_metadata(name: str) -> bool:
    """Return whether a zip member is metadata that macOS adds when it zips a folder, never an export."""
    base = PurePath(name).name
    return name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store"


def _member_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        inner = archive.open(info)
        if info.filename.lower().endswith(".gz"):
            return cast(IO[bytes], gzip.GzipFile(fileobj=inner, mode="rb"))
        return inner

    return opener


def is_tabular(path: Path) -> bool:
    """True for CSV and Parquet files, which adapters of warehouse tables read through the CSV reader."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    return any(suffix in (".csv", ".parquet", ".pq", ".tsv") for suffix in suffixes)


@dataclass(slots=True)
class JsonRecord:
    """One JSON value read from a file, with the data row number it came from, or why it could not be read."""

    row_number: int
    value: Any = None
    error: str | None = None
    text: str = ""


def iter_json_records(
    path: Path, array_keys: tuple[str, ...] = (), line_filter: Callable[[bytes], bool] | None = None
) -> Iterator[JsonRecord]:
    """Yield the records of a JSON lines file, a JSON array, or one JSON document.

    An object holding one of `array_keys` (such as "batch" or "tickets"), as a whole document or as one
    line, yields that array's items. Row numbers count records from 1 in file order, as CSV rows count
    data records: an item of such an array is one record, a line that is not valid JSON is one record
    (returned with its error), and blank lines do not count. The members of a .zip archive (each
    possibly gzipped, as Amplitude exports are) are read in name order and numbered as one file.

    In a JSON lines file, a line for which `line_filter` returns False is dropped unparsed, so a pass
    that needs only some messages skips the cost of parsing the rest. Row numbers then count only the
    records kept, so such a pass must not report them. The filter is first given chunks of many lines
    and drops a chunk whole when it returns False, so it must return True for any text that contains
    a line it keeps (as a substring test does).
    """
    records: Iterator[JsonRecord | JsonBlock[None]] = iter_json_blocks(path, array_keys, line_filter)
    for record in records:
        # Without a block reader every item is a record.
        yield cast(JsonRecord, record)


@dataclass(slots=True)
class JsonBlock(Generic[BlockValue]):
    """Consecutive lines of a JSON lines file that a block reader read at once, as records
    `first_row` to `first_row + rows - 1`, each line one record."""

    first_row: int
    rows: int
    value: BlockValue


def iter_json_blocks(
    path: Path,
    array_keys: tuple[str, ...] = (),
    line_filter: Callable[[bytes], bool] | None = None,
    read_block: Callable[[list[bytes]], BlockValue | None] | None = None,
) -> Iterator[JsonRecord | JsonBlock[BlockValue]]:
    """Yield the records of a JSON file as `iter_json_records` does, with blocks of lines read at once.

    In a JSON lines file, the non-blank lines go to `read_block` in lists of up to `BLOCK_LINES`
    (stripped, without their line ends). When it returns a value, that value stands for the block's
    lines, one record each, and is yielded as a `JsonBlock`. When it returns None, each line of the
    block is parsed and yielded as a record, exactly as without a block reader. So a block reader only
    has to recognise the blocks it reads the same way, and it can leave every unusual one to this path.
    """
    try:
        yield from _records_of_members(path, array_keys, line_filter, read_block)
    except (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile) as exc:
        raise source_files.decompress_error(path, exc) from None


def _records_of_members(
    path: Path,
    array_keys: tuple[str, ...],
    line_filter: Callable[[bytes], bool] | None,
    read_block: Callable[[list[bytes]], BlockValue | None] | None,
) -> Iterator[JsonRecord | JsonBlock[BlockValue]]:
    numbered = 0
    for name, opener in _members(path):
        # Errors name the member of a zip archive, so that a stray file in it is found.
        where = str(path) if name == path.name else f"{path}, member {name}"
        try:
            with opener() as handle:
                head = handle.read(4096)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise source_files.decompress_error(Path(where), exc) from None
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not stripped:
            continue
        first_line = stripped.split(b"\n", 1)[0]
        records: Iterator[JsonRecord | JsonBlock[BlockValue]]
        # A file named as JSON lines is read line by line even when its first line is broken, so that
        # line is quarantined like any other instead of stopping the ingest.
        if _named_json_lines(name) or (stripped.startswith(b"{") and _complete_json(first_line)):
            records = _json_lines(opener, array_keys, line_filter, read_block)
        else:
            records = _json_document(opener, where, array_keys)
        last = numbered
        for record in records:
            if isinstance(record, JsonBlock):
                record.first_row += numbered
                last = record.first_row + record.rows - 1
            else:
                record.row_number += numbered
                last = record.row_number
            yield record
        numbered = last


def _named_json_lines(name: str) -> bool:
    """Return whether a file or archive member's name marks it as JSON lines (.jsonl, .ndjson, gzipped or not)."""
    suffixes = [suffix.lower() for suffix in PurePath(name).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson")


def _complete_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _json_lines(
    opener: Callable[[], IO[bytes]],
    array_keys: tuple[str, ...],
    line_filter: Callable[[bytes], bool] | None = None,
    read_block: Callable[[list[bytes]], BlockValue | None] | None = None,
) -> Iterator[JsonRecord | JsonBlock[BlockValue]]:
    number = 0
    size = BLOCK_LINES if read_block is not None else 1
    for lines, error in _line_blocks(opener, size, line_filter):
        if error is not None:
            number += 1
            yield JsonRecord(number, error=error)
            continue
        value = read_block(lines) if read_block is not None else None
        if value is not None:
            yield JsonBlock(number + 1, len(lines), value)
            number += len(lines)
            continue
        for line in lines:
            if line_filter is not None and not line_filter(line):
                continue
            for record in _line_records(line, array_keys):
                number += 1
                record.row_number = number
                yield record


def _line_records(line: bytes, array_keys: tuple[str, ...]) -> list[JsonRecord]:
    """Parse one JSON line into its records (one, the items of an array under `array_keys`, or none
    for a blank line), leaving their row numbers to the caller."""
    text = line.decode("utf-8", errors="replace")
    try:
        value = _parse_json(line, text)
    except _BlankLine:
        return []
    except ValueError as exc:
        return [JsonRecord(0, error=f"invalid JSON: {exc}", text=text)]
    return [
        JsonRecord(0, item, text=text if item is value else _snippet(item))
        for item in _items(value, array_keys)
    ]


# Any integer of up to 18 digits fits in 64 bits, which orjson reads exactly. A line has a run of 19
# digits when its bytes, with digits mapped to "0" and everything else to a space, contain 19 zeros.
# On Segment track calls, translate and a substring search took a third of the time of a regex.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


class _BlankLine(Exception):
    """A line of Unicode whitespace only, which counts as blank."""


def _parse_json(line: bytes, text: str) -> Any:
    """Parse one line with orjson, or with the standard library where orjson rejects it.

    `text` is `line` decoded with invalid UTF-8 replaced. orjson rejects some lines that the standard
    library accepts or repairs: NaN, infinite numbers, lone surrogates, invalid UTF-8 and non-ASCII
    whitespace around the value. orjson 3.x also reads an integer outside 64 bits as a float, so a line
    with 19 digits in a row skips it. Those lines go to `json.loads`, so every line parses as it did
    before orjson, and a line that both reject raises the standard library's error.
    """
    if _LONG_DIGIT_RUN not in line.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    stripped = text.strip()
    if not stripped:
        raise _BlankLine
    value = json.loads(stripped)
    if "\\u" in stripped:
        # The standard library decodes an escaped lone surrogate (\ud800) to a string no column can hold.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "a \\u escape stands for half of a UTF-16 pair (a lone surrogate), which is not text"
            ) from None
    return value


def _line_blocks(
    opener: Callable[[], IO[bytes]], size: int, chunk_filter: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[list[bytes], str | None]]:
    """Yield the non-blank lines of a stream, stripped, in lists of up to `size` lines, or an error with
    no lines for a line too long to read. Lines and errors come in file order."""
    block: list[bytes] = []
    for lines, error in _chunk_lines(opener, chunk_filter):
        if error is not None:
            if block:
                yield block, None
                block = []
            yield [], error
            continue
        block.extend(lines)
        if len(block) >= size:
            full = len(block) - len(block) % size
            for start in range(0, full, size):
                yield block[start : start + size], None
            block = block[full:]
    if block:
        yield block, None


def _chunk_lines(
    opener: Callable[[], IO[bytes]], chunk_filter: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[list[bytes], str | None]]:
    """Yield the non-blank lines of each chunk of a stream, stripped, or an error for a line too long.
    A chunk of lines for which `chunk_filter` returns False is dropped.

    Splitting a chunk of a megabyte into lines in one call costs far less per line than `readline`.
    """
    with opener() as raw:
        reader = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(Any, raw))
        partial = b""
        while True:
            chunk = reader.read(_CHUNK_BYTES)
            data = partial + chunk
            # Up to the last line end; at the end of the stream, everything.
            end = data.rfind(b"\n") + 1 if chunk else len(data)
            if end == 0 and len(data) > MAX_RECORD_BYTES:
                # Skip the rest of the oversized line without holding it in memory.
                while chunk and b"\n" not in chunk:
                    chunk = reader.read(_CHUNK_BYTES)
                partial = chunk[chunk.find(b"\n") + 1 :]
                yield [], _TOO_LONG
                continue
            partial = data[end:]
            text = data[:end]
            if chunk_filter is not None and not chunk_filter(text):
                pass
            elif len(text) > MAX_RECORD_BYTES and any(
                len(line) > MAX_RECORD_BYTES for line in text.split(b"\n")
            ):
                # A line that began in an earlier chunk ended longer than a record may be.
                for line in text.split(b"\n"):
                    yield ([], _TOO_LONG) if len(line) > MAX_RECORD_BYTES else (_split_lines(line), None)
            else:
                yield _split_lines(text), None
            if not chunk:
                return


def _split_lines(text: bytes) -> list[bytes]:
    """Split text into its lines without surrounding whitespace and byte order marks, leaving out blank ones."""
    lines = [line.strip() for line in text.split(b"\n")]
    if _UTF8_BOM in text:
        lines = [line.removeprefix(_UTF8_BOM) for line in lines]
    return [line for line in lines if line]


# Bytes read from a stream at a time when splitting it into lines.
_CHUNK_BYTES = 1 << 20
_TOO_LONG = f"record longer than {MAX_RECORD_BYTES:,} bytes"
_UTF8_BOM = "\ufeff".encode()


def _items(value: Any, array_keys: tuple[str, ...]) -> list[Any]:
    if isinstance(value, dict):
        for key in array_keys:
            if isinstance(value.get(key), list):
                return list(value[key])
    return [value]


def _snippet(value: Any) -> str:
    return json.dumps(value, default=str)[:1000]


def _json_document(
    opener: Callable[[], IO[bytes]], path: str, array_keys: tuple[str, ...]
) -> Iterator[JsonRecord]:
    with opener() as handle:
        data = handle.read()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path}: is not valid JSON or JSON lines ({exc}); check that the file is a complete export"
        ) from None
    items = document if isinstance(document, list) else _items(document, array_keys)
    for number, item in enumerate(items, start=1):
        yield JsonRecord(number, item, text=_snippet(item))


def flatten(
    value: Any, prefix: str = "", depth: int = 0, into: dict[str, str | None] | None = None
) -> dict[str, str | None]:
    """Flatten a JSON object to dotted names with string values; lists and deep objects stay JSON text."""
    out: dict[str, str | None] = {} if into is None else into
    if isinstance(value, dict) and depth < MAX_FLATTEN_DEPTH:
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flatten(item, name, depth + 1, out)
        return out
    out[prefix] = scalar_text(value)
    return out


def scalar_text(value: Any) -> str | None:
    """Return the text of a JSON value in a string column: booleans as true/false, containers as JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, default=str)


class BatchBuilder:
    """Collect flat rows with their row numbers and rejected records, and emit them as Arrow batches.

    Rows come one at a time as dictionaries (`add`) or many at once as a table of string columns
    (`add_table`). A batch contains both in the order they came, with null where a row lacks a column.
    """

    def __init__(self, file_index: int, bytes_total: int) -> None:
        self.file_index = file_index
        self.bytes_total = bytes_total
        self.rows: list[dict[str, str | None]] = []
        self.numbers: list[int] = []
        self.tables: list[tuple[pa.Table, np.ndarray]] = []
        self.table_rows = 0
        self.rejected: list[RejectedRow] = []
        self.skipped: Counter[str] = Counter()

    def add(self, row_number: int, row: dict[str, str | None]) -> None:
        self.rows.append(row)
        self.numbers.append(row_number)

    def add_table(self, row_numbers: np.ndarray, table: pa.Table) -> None:
        """Add rows already built as string columns, with their row numbers."""
        self._keep_rows_as_table()
        self.tables.append((table, row_numbers))
        self.table_rows += table.num_rows

    def reject(self, row_number: int, text: str, reason: str) -> None:
        self.rejected.append(RejectedRow(row_number, text[:1000], reason))

    def skip(self, kind: str, count: int = 1) -> None:
        self.skipped[kind] += count

    @property
    def full(self) -> bool:
        return len(self.rows) + self.table_rows + len(self.rejected) >= BATCH_ROWS

    def emit(self, final: bool = False) -> Iterator[FileBatch]:
        if not (self.rows or self.tables or self.rejected or (final and self.skipped)):
            return
        self._keep_rows_as_table()
        if self.tables:
            table = pa.concat_tables([part for part, _ in self.tables], promote_options="default")
            table = table.select(sorted(table.column_names))
            numbers = np.concatenate([numbers for _, numbers in self.tables])
        else:
            table = _rows_table([])
            numbers = np.array([], "int64")
        done = self.bytes_total if final else 0
        batch = Batch(table, numbers, done, self.bytes_total, list(self.rejected))
        yield FileBatch(self.file_index, batch, Counter(self.skipped))
        self.tables.clear()
        self.table_rows = 0
        self.rejected.clear()
        self.skipped.clear()

    def _keep_rows_as_table(self) -> None:
        """Move the rows added one at a time into the list of tables, keeping the order rows came in."""
        if self.rows:
            self.tables.append((_rows_table(self.rows), np.array(self.numbers, "int64")))
            self.table_rows += len(self.rows)
            self.rows = []
            self.numbers = []


def _rows_table(rows: list[dict[str, str | None]]) -> pa.Table:
    """Return a table of string columns, named in sorted order, from flat rows."""
    names = sorted(set().union(*rows))
    if not names:
        # Records with no fields at all still need their rows, so the ingest can account for them.
        return pa.table({"_empty": pa.nulls(len(rows), pa.string())})
    # Arrow converts the dictionaries to a struct array in one call, a missing key becoming null,
    # which is many times faster than building each column from a Python list.
    struct = pa.array(rows, pa.struct([(name, pa.string()) for name in names]))
    return pa.Table.from_struct_array(struct)


def records_from_tables(path: Path, config: SourceConfig) -> Iterable[JsonRecord]:
    """Yield a CSV or Parquet file's rows as records, with rejected CSV rows as errors."""
    for batch in source_files.iter_batches(path, plain_files(config)):
        for rejected in batch.rejected:
            yield JsonRecord(rejected.row_number, error=rejected.reason, text=rejected.text)
        for number, row in zip(batch.row_numbers.tolist(), batch.table.to_pylist(), strict=True):
            yield JsonRecord(int(number), row)


# Text that reads as true in a flag column. "x" and "checked" are how spreadsheet and CRM report
# exports write a ticked checkbox.
TRUE_WORDS = ("true", "t", "1", "yes", "y", "x", "checked")
# Text that reads as false. An empty cell is false too.
FALSE_WORDS = ("false", "f", "0", "no", "n", "unchecked")


class TabularAdapter(Adapter):
    """An adapter over CSV or Parquet tables (warehouse syncs, CRM report exports): stream and transform."""

    # Soft-delete flag columns; a row with any of them true is skipped and counted as a deleted record.
    deleted_flags: ClassVar[tuple[str, ...]] = ()

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        import pyarrow.compute as pc

        for index, path in enumerate(paths):
            for batch in source_files.iter_batches(path, plain_files(config)):
                skipped: Counter[str] = Counter()
                deleted = self.deleted_rows(batch.table, table)
                if deleted is not None:
                    removed = int(pc.sum(deleted).as_py() or 0)
                    if removed:
                        keep = pc.invert(deleted)
                        batch.table = batch.table.filter(keep)
                        batch.row_numbers = batch.row_numbers[
                            np.asarray(keep.to_numpy(zero_copy_only=False), bool)
                        ]
                        skipped["deleted record"] = removed
                batch.table = self.transform(batch.table, table, path)
                yield FileBatch(index, batch, skipped)

    def deleted_rows(self, rows: pa.Table, table: str) -> pa.Array | None:
        """Return a mask of the soft-deleted rows to skip, or None when no `deleted_flags` column is present."""
        import pyarrow.compute as pc

        present = [flag for flag in self.deleted_flags if flag in rows.column_names]
        if not present:
            return None
        mask = is_true(rows.column(present[0]))
        for flag in present[1:]:
            mask = pc.or_(mask, is_true(rows.column(flag)))
        return (
            pa.chunked_array([mask]).combine_chunks() if isinstance(mask, pa.Array) else mask.combine_chunks()
        )

    def transform(self, rows: pa.Table, table: str, path: Path) -> pa.Table:
        """Add or rewrite columns of one batch; the default keeps the batch as read."""
        return rows


def is_true(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Return true where a text column contains one of `TRUE_WORDS` (in any case), else false."""
    import pyarrow.compute as pc

    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
    return pc.fill_null(pc.is_in(lowered, value_set=pa.array(TRUE_WORDS)), False)


def set_column(rows: pa.Table, name: str, values: pa.ChunkedArray | pa.Array) -> pa.Table:
    """Replace or append a string column."""
    values = values.cast(pa.string())
    if name in rows.column_names:
        return rows.set_column(rows.column_names.index(name), name, values)
    return rows.append_column(name, values)


def mark_deleted(rows: pa.Table, flags: tuple[str, ...], status: str = "status") -> pa.Table:
    """Set `status` to "deleted" where any of the soft-delete flag columns is true."""
    import pyarrow.compute as pc

    present = [flag for flag in flags if flag in rows.column_names]
    if not present:
        return rows
    deleted = is_true(rows.column(present[0]))
    for flag in present[1:]:
        deleted = pc.or_(deleted, is_true(rows.column(flag)))
    current = rows.column(status) if status in rows.column_names else pa.nulls(rows.num_rows, pa.string())
    return set_column(rows, status, pc.if_else(deleted, pa.scalar("deleted"), current.cast(pa.string())))


class Skip(str):
    """The kind of a record an adapter skips because the source's table does not take it."""


class Reject(str):
    """The reason an adapter rejects a record; the ingest quarantines it under the whole row."""


class RecordAdapter(Adapter):
    """An adapter that turns each record (a JSON object, or a CSV or Parquet row) into one flat row."""

    array_keys: ClassVar[tuple[str, ...]] = ()

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        for index, path in enumerate(paths):
            builder = BatchBuilder(index, path.stat().st_size)
            records = (
                records_from_tables(path, config)
                if is_tabular(path)
                else iter_json_records(path, self.array_keys)
            )
            for record in records:
                if record.error is not None:
                    builder.reject(record.row_number, record.text, record.error)
                elif not isinstance(record.value, dict):
                    builder.reject(
                        record.row_number,
                        record.text,
                        f"expected an object, found {type(record.value).__name__}",
                    )
                else:
                    outcome = self.row(flatten(record.value), config, table)
                    if isinstance(outcome, Skip):
                        builder.skip(str(outcome))
                    elif isinstance(outcome, Reject):
                        builder.reject(record.row_number, record.text or _snippet(record.value), str(outcome))
                    else:
                        builder.add(record.row_number, outcome)
                if builder.full:
                    yield from builder.emit()
            yield from builder.emit(final=True)

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        """Return the flat row for one record, or why it is skipped or rejected."""
        return flat


def first_present(flat: dict[str, str | None], names: Iterable[str]) -> str | None:
    """Return the value of the first of `names` (case-insensitive) that the record has and is not empty."""
    lowered = {name.lower(): value for name, value in flat.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value is not None and value.strip():
            return value
    return None


def is_true_text(value: str | None) -> bool:
    """Return whether a text value is one of `TRUE_WORDS`, in any case."""
    return value is not None and value.strip().lower() in TRUE_WORDS


def is_false_text(value: str | None) -> bool:
    """Return whether a text value is empty or one of `FALSE_WORDS`, in any case."""
    return value is None or value.strip().lower() in ("", *FALSE_WORDS)
