"""Load exports into the canonical tables: map, type, quarantine, version and account for every row.

One call of `ingest` is one DuckDB transaction over every source it loads, so a crash leaves the store
as it was. Each row read ends up in exactly one of four counts. It is inserted when its key was never
seen, a new version when its content differs from the version before it, and unchanged when it repeats
that version (see `_classify`). Otherwise it is quarantined: stored in the quarantine table with file,
row, column, value and reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from account_health.config import Resolution, SourceConfig, Workspace
from account_health.errors import SourceError
from account_health.sources import files as source_files
from account_health.sources import identity, references
from account_health.sources.canonical import TABLES, TableSpec
from account_health.sources.checks import quarantine_checks
from account_health.sources.sql import identifier, literal, parse_expression
from account_health.sources.vendors import Adapter, adapter_for
from account_health.sources.vendors.base import TableDefaults
from account_health.sources.vendors.database import DatabaseAdapter, database_label
from account_health.store.analytical import LOADS_TABLE, QUARANTINE_TABLE, AnalyticalStore
from account_health.store.operational import now

log = logging.getLogger(__name__)
# Prefix of the folder of an ingest's spill file. The process id follows it, so that a later ingest
# can find and remove the folder of a killed ingest.
STAGE_PREFIX = "account-health-stage-"

# Sources load in this table order, so that ids resolve against tables loaded earlier in the same run.
_TABLE_ORDER = (
    "accounts",
    "contracts",
    "users",
    "contacts",
    "churn_events",
    "usage_events",
    "usage_daily",
    "sentiment_responses",
    "tickets",
    "contact_changes",
    "contact_activity",
    "integrations",
)
_EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"
# Canonical columns containing email addresses, which resolutions compare ignoring case and spaces.
_EMAIL_COLUMNS = ("email",)
# Maximum number of matched values that the quarantine reason of an ambiguous resolution lists.
_MATCHES_SHOWN = 5
# The quarantine's column name for a CSV record that could not be split into the header's columns.
WHOLE_ROW = "(whole row)"
# Tables whose signals count each key in its first stored version, not its newest: an event id counts
# once. Their rows are kept as a set of distinct contents per key rather than as a sequence of states.
_FIRST_VERSION_TABLES = ("usage_events",)

ProgressCallback = Callable[[str, str, int, int], None]


@dataclass
class SourceCounts:
    """Outcome of one source's load, for every row it read."""

    source: str
    table: str
    files: list[str]
    backfill: bool
    read: int = 0
    inserted: int = 0
    new_version: int = 0
    unchanged: int = 0
    quarantined: int = 0
    unattributed: int = 0
    # Up to a few account ids (or emails) of unattributed rows, to show what failed to match.
    unattributed_examples: list[str] = field(default_factory=list)
    # Records of other kinds in a vendor export that this source's table does not take, by kind.
    skipped: dict[str, int] = field(default_factory=dict)
    # Sentiment responses stored as dismissed or blank (no score), counted among the rows stored.
    dismissed: int = 0

    @property
    def totals(self) -> tuple[int, int, int, int, int, int]:
        """(read, inserted, new_version, unchanged, quarantined, unattributed), the order logs and the load log use."""
        return (
            self.read,
            self.inserted,
            self.new_version,
            self.unchanged,
            self.quarantined,
            self.unattributed,
        )

    @property
    def balanced(self) -> bool:
        return self.read == self.inserted + self.new_version + self.unchanged + self.quarantined


@dataclass
class IngestReport:
    load_id: int
    ingested_at: datetime
    sources: list[SourceCounts] = field(default_factory=list)
    # Rows stored unattributed by earlier loads whose account this load made known.
    attributed: int = 0


@dataclass
class _Plan:
    name: str
    config: SourceConfig
    spec: TableSpec
    files: list[Path]
    # canonical column -> source column name, for the columns the files provide
    mapped: dict[str, str]
    adapter: Adapter | None = None
    # How each file (or the database table) is named in provenance; None means the files' paths.
    displays: list[str] | None = None
    # The staged identity columns (identity.EXTERNAL, identity.EMAIL) whose source column some batch had.
    identity_found: set[str] = field(default_factory=set)


def ingest(
    workspace: Workspace,
    store: AnalyticalStore,
    sources: Sequence[str] | None = None,
    backfill: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Load the configured sources (all, or those named) into the analytical store in one transaction.

    A source's first load, or any load with `backfill=True`, makes each row available at its own event
    time. Later loads make rows available at max(event time, ingest time). A source that maps a
    `loaded_at` column uses max(event time, loaded_at) instead, in every load.
    """
    names = _ordered_sources(workspace, sources)
    plans = [_plan(workspace, name) for name in names]

    connection = store.connection
    load_id = _next_load_id(store)
    ingested_at = now()
    report = IngestReport(load_id, ingested_at)
    connection.execute("BEGIN TRANSACTION")
    try:
        for plan in plans:
            counts = _load_source(store, workspace, plan, load_id, ingested_at, backfill, progress)
            report.sources.append(counts)
        report.attributed = _attribute_known_accounts(store)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    for counts in report.sources:
        log.info(
            "ingested %s: read %d, inserted %d, new version %d, unchanged %d, quarantined %d, unattributed %d",
            counts.source,
            *counts.totals,
        )
    return report


def _attribute_known_accounts(store: AnalyticalStore) -> int:
    """Clear the unattributed flag of stored rows whose account is now in the accounts table."""
    total = 0
    for spec in TABLES.values():
        if spec.account_column is None or spec.name == "accounts":
            continue
        column = identifier(spec.account_column)
        rows = store.connection.execute(
            f"""UPDATE {identifier(spec.name)} SET _unattributed = FALSE
                WHERE _unattributed AND {column} IN (SELECT account_id FROM accounts WHERE account_id IS NOT NULL)"""
        ).fetchall()
        total += int(rows[0][0]) if rows else 0
    return total


def _ordered_sources(workspace: Workspace, requested: Sequence[str] | None) -> list[str]:
    configured = workspace.config.sources
    if not configured:
        raise SourceError(
            f"{workspace.config_path} configures no sources; add a [sources.NAME] section per export"
        )
    # A source named twice loads once.
    names = list(dict.fromkeys(requested)) if requested else list(configured)
    unknown = [name for name in names if name not in configured]
    if unknown:
        raise SourceError(
            f"unknown source {unknown[0]!r}; configured sources: {', '.join(sorted(configured))}"
        )

    def rank(name: str) -> tuple[int, int]:
        config = configured[name]
        depends_later = max((_TABLE_ORDER.index(r.table) for r in config.resolve.values()), default=-1)
        return (max(_TABLE_ORDER.index(config.table), depends_later + 1), names.index(name))

    return sorted(names, key=rank)


def _plan(workspace: Workspace, name: str) -> _Plan:
    """Check a source's files and mapping before anything is written."""
    config = workspace.config.sources[name]
    spec = TABLES[config.table]
    if config.database is not None:
        return _database_plan(name, config, spec)
    paths = source_files.expand_files(workspace.source_files(name), workspace.root, name)
    adapter = adapter_for(config.format)
    if adapter is not None:
        config = _with_defaults(config, adapter.check_table(config.table, name))
    if config.duplicate_keys == "latest" and config.latest_by is None:
        raise SourceError(
            f'[sources.{name}] duplicate_keys = "latest" needs latest_by, the source column whose greatest value wins'
        )
    for named in list(config.columns) + list(config.types) + list(config.values) + list(config.constants):
        if named not in spec.column_names:
            raise SourceError(
                f"[sources.{name}] names column {named!r}, which {spec.name} does not have; "
                f"its columns are {', '.join(spec.column_names)}"
            )
    for typed_column, declared in config.types.items():
        _check_declared_type(name, spec, typed_column, declared)

    if adapter is not None:
        # Vendor records may hold any field; a column absent from a record reads as empty, so a missing
        # required value is quarantined row by row instead of failing the whole source.
        adapter_mapping = {
            column.name: config.columns.get(column.name, column.name)
            for column in spec.columns
            if column.name not in config.constants
        }
        return _Plan(name, config, spec, paths, adapter_mapping, adapter)
    mapped: dict[str, str] = {}
    for path in paths:
        header = source_files.read_header(path, config)
        for column in spec.columns:
            if column.name in config.constants:
                continue
            source_column = config.columns.get(column.name, column.name)
            if source_column in header:
                mapped[column.name] = source_column
                continue
            explicitly_mapped = column.name in config.columns
            resolved = column.name in config.resolve
            derived = column.name in spec.derived
            if explicitly_mapped or (column.required and not resolved and not derived):
                raise SourceError(
                    f"{path}: required column {source_column!r} is missing (canonical {spec.name}.{column.name}); "
                    f'set [sources.{name}.columns] {column.name} = "<column in your file>" '
                    f"(the file has: {', '.join(header)})"
                    + _delimiter_hint(name, source_files.csv_delimiter(path, config), header)
                )
        for target, resolution in config.resolve.items():
            if resolution.from_column not in header:
                raise SourceError(
                    f"{path}: column {resolution.from_column!r} named in [sources.{name}.resolve.{target}] "
                    f"is missing (the file has: {', '.join(header)})"
                )
        named_columns = {
            "latest_by": config.latest_by,
            "identity.external_id": config.identity.external_id,
            "identity.email": config.identity.email,
            "champion.field": config.champion.field if config.champion is not None else None,
        }
        for key, named_column in named_columns.items():
            if key.startswith(("identity.", "champion.")):
                named_column = _named_column(header, named_column)
            if named_column is not None and named_column not in header:
                raise SourceError(
                    f"{path}: column {named_column!r} named by [sources.{name}] {key} is missing "
                    f"(the file has: {', '.join(header)})"
                )
        if config.loaded_at is not None and config.loaded_at not in header:
            raise SourceError(
                f"{path}: column {config.loaded_at!r} named by [sources.{name}] loaded_at is missing "
                f"(the file has: {', '.join(header)})"
            )
    return _Plan(name, config, spec, paths, mapped, adapter)


# Common CSV separators and how each is written in TOML, in the order a one-column header is checked for them.
_OTHER_DELIMITERS = {";": ";", "\t": "\\t", "|": "|", ",": ","}


def _delimiter_hint(name: str, read_with: str, header: list[str]) -> str:
    """Suggest csv.delimiter when the header, split at `read_with`, is one column that contains another separator."""
    if len(header) != 1:
        return ""
    for delimiter, written in _OTHER_DELIMITERS.items():
        if delimiter != read_with and delimiter in header[0]:
            return (
                f"; the header reads as one column, so the file is probably separated by {delimiter!r}: "
                f'set [sources.{name}] csv = {{ delimiter = "{written}" }}'
            )
    return ""


def _database_plan(name: str, config: SourceConfig, spec: TableSpec) -> _Plan:
    """Plan a source read from a database table, whose columns map like a CSV's."""
    assert config.database is not None
    if config.format not in ("auto", "csv"):
        raise SourceError(
            f"[sources.{name}] reads a database table, so format = {config.format!r} does not apply; remove it"
        )
    mapped = {
        column.name: config.columns.get(column.name, column.name)
        for column in spec.columns
        if column.name not in config.constants
    }
    label = database_label(config.database, name)
    return _Plan(name, config, spec, [], mapped, DatabaseAdapter(), [label])


def _with_defaults(config: SourceConfig, defaults: TableDefaults) -> SourceConfig:
    """The source's config with the adapter's default mapping under the source's own keys."""
    update: dict[str, object] = {
        "columns": {**defaults.columns, **config.columns},
        "values": {**defaults.values, **config.values},
        "constants": {**defaults.constants, **config.constants},
        "types": {**defaults.types, **config.types},
    }
    resolve = {
        target: Resolution.model_validate({"from": source, "table": table, "key": key, "value": value})
        for target, (source, table, key, value) in defaults.resolve.items()
    }
    update["resolve"] = {**resolve, **config.resolve}
    if config.identity.email is None and defaults.identity_email is not None:
        update["identity"] = config.identity.model_copy(update={"email": defaults.identity_email})
    if "duplicate_keys" not in config.model_fields_set and defaults.duplicate_keys is not None:
        update["duplicate_keys"] = defaults.duplicate_keys
    if config.latest_by is None and defaults.latest_by is not None:
        update["latest_by"] = defaults.latest_by
    return config.model_copy(update=update)


def _check_declared_type(source: str, spec: TableSpec, column: str, declared: str) -> None:
    canonical = spec.column(column).type
    compatible = {
        "timestamp": {"timestamp", "epoch_s", "epoch_ms", "date"},
        "date": {"date", "timestamp", "epoch_s", "epoch_ms"},
        "float": {"float", "int"},
        "int": {"int", "float"},
        "bool": {"bool"},
        "string": {"string"},
    }[canonical]
    if declared not in compatible:
        raise SourceError(
            f"[sources.{source}.types] {column} = {declared!r} cannot fill the {canonical} column "
            f"{spec.name}.{column}; use one of {', '.join(sorted(compatible))}"
        )


def _next_load_id(store: AnalyticalStore) -> int:
    row = store.connection.execute(f"SELECT coalesce(max(load_id), 0) + 1 FROM {LOADS_TABLE}").fetchall()[0]
    return int(row[0]) if row else 1


def _load_source(
    store: AnalyticalStore,
    workspace: Workspace,
    plan: _Plan,
    load_id: int,
    ingested_at: datetime,
    backfill: bool,
    progress: ProgressCallback | None,
) -> SourceCounts:
    connection = store.connection
    first_load = not _source_has_rows(store, plan)
    counts = SourceCounts(
        plan.name,
        plan.spec.name,
        _displays(plan, workspace.root),
        backfill=backfill or first_load,
    )
    started_at = now()

    with tempfile.TemporaryDirectory(
        prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=_stage_parent(store)
    ) as scratch:
        folder = Path(scratch)
        counts.skipped = _stage(store, plan, workspace.root, folder, progress)
        counts.read = _count(store, "_stage") + _count(store, "_rejected")
        _resolve(store, plan)
        references.match_id_forms(store, plan.spec)
        identity.identify_accounts(store, workspace, plan.name, plan.config, plan.spec)
        identity.apply_champion_rule(store, plan.config, plan.spec)
        counts.quarantined = _quarantine(store, plan, load_id)
        _classify(
            store, plan, folder, _hashed_sql(plan, _merged_sql(plan), ingested_at, counts.backfill), load_id
        )
        _count_classified(store, plan, counts)
        _write(store, plan, load_id, ingested_at)
        _drop_staged(store, plan)
    notes = {**counts.skipped, **({"dismissed": counts.dismissed} if counts.dismissed else {})}
    identity.record_notes(store, load_id, counts.source, counts.unattributed_examples, notes)

    if not counts.balanced:
        raise AssertionError(f"ingest of {plan.name} lost rows: {counts}")
    connection.execute(
        f"INSERT INTO {LOADS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            plan.name,
            plan.spec.name,
            "\n".join(counts.files),
            counts.backfill,
            started_at,
            now(),
            *counts.totals,
        ],
    )
    return counts


def _count_classified(store: AnalyticalStore, plan: _Plan, counts: SourceCounts) -> None:
    """Fill the status, unattributed and dismissed counts from _classified."""
    connection = store.connection
    _count_statuses(store, counts)
    unattributed = connection.execute(
        "SELECT coalesce(sum(_rows - _repeats), 0) FROM _classified WHERE _status <> 'unchanged' AND _unattributed"
    ).fetchall()
    counts.unattributed = int(unattributed[0][0])
    if counts.unattributed:
        missing = [
            name
            for name in identity.extra_columns(plan.config, plan.spec)
            if name in (identity.EXTERNAL, identity.EMAIL) and name not in plan.identity_found
        ]
        counts.unattributed_examples = identity.unattributed_examples(
            store, plan.spec, identity.missing_columns_note(plan.name, plan.config, missing)
        )
    if plan.spec.name == "sentiment_responses":
        dismissed = connection.execute(
            "SELECT coalesce(sum(_rows - _repeats), 0) FROM _classified WHERE _status <> 'unchanged' AND dismissed"
        ).fetchall()
        counts.dismissed = int(dismissed[0][0])


def _drop_staged(store: AnalyticalStore, plan: _Plan) -> None:
    """Drop the source's temporary tables and views, before the files that the views read are deleted."""
    connection = store.connection
    for view in ("_classified", "_valid"):
        connection.execute(f"DROP VIEW IF EXISTS {view}")
    connection.execute(f"DROP {'TABLE' if _stage_is_table(plan) else 'VIEW'} IF EXISTS _stage")
    for table in ("_quarantined", "_rejected", "_files"):
        connection.execute(f"DROP TABLE IF EXISTS {table}")


def _count_statuses(store: AnalyticalStore, counts: SourceCounts) -> None:
    """Count the rows read as inserted, new version or unchanged, including those merged into others.

    A staged row counts for `_rows` rows read, more than one when `duplicate_keys = "sum"` or
    "latest", or the same-instant merge, merged rows of one key. Only the first row of a key never
    seen before is inserted. The others merged into it count as new versions of it, as they would if
    each were stored, except its `_repeats` (same content), which are unchanged. Rows merged into an
    unchanged row are unchanged, so loading the same export twice still changes nothing.
    """
    row = store.connection.execute(
        """SELECT coalesce(sum(CASE WHEN _status = 'inserted' THEN 1 ELSE 0 END), 0),
                  coalesce(sum(CASE WHEN _status = 'inserted' THEN _rows - 1 - _repeats
                                    WHEN _status = 'new_version' THEN _rows - _repeats ELSE 0 END), 0),
                  coalesce(sum(CASE WHEN _status = 'unchanged' THEN _rows ELSE _repeats END), 0)
           FROM _classified"""
    ).fetchall()[0]
    counts.inserted, counts.new_version, counts.unchanged = (int(value) for value in row)


def _source_has_rows(store: AnalyticalStore, plan: _Plan) -> bool:
    row = store.connection.execute(
        f"SELECT count(*) FROM {identifier(plan.spec.name)} WHERE _source = ?", [plan.name]
    ).fetchall()[0]
    return bool(row and row[0])


def _displays(plan: _Plan, root: Path) -> list[str]:
    return plan.displays if plan.displays is not None else [_display_path(path, root) for path in plan.files]


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path.resolve())


def _raw_columns(plan: _Plan) -> list[str]:
    """Names of the staged string columns: canonical columns, resolution inputs, loaded_at."""
    columns = list(plan.spec.column_names)
    columns += [f"_from_{target}" for target in plan.config.resolve]
    if plan.config.loaded_at is not None:
        columns.append("_loaded_raw")
    if plan.config.latest_by is not None:
        columns.append("_latest_raw")
    columns += identity.extra_columns(plan.config, plan.spec)
    return columns


def _stage(
    store: AnalyticalStore, plan: _Plan, root: Path, folder: Path, progress: ProgressCallback | None
) -> dict[str, int]:
    """Stage every row of the source's files, typed, as _stage, and return the counts of records skipped by kind.

    Batches are first written as strings to a Parquet spill file in `folder`. Inside the ingest's
    transaction, DuckDB keeps the rows of many small inserts in memory until commit, while one statement
    over a file streams it, so memory stays flat as files grow. _stage is a view that types the spill
    file's rows, or a table when rules update the staged rows (see `_stage_is_table`).
    """
    connection = store.connection
    columns = _raw_columns(plan)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE _rejected (_file_order INTEGER, _row_number BIGINT, value VARCHAR, reason VARCHAR)"
    )
    connection.execute("CREATE OR REPLACE TEMP TABLE _files (_file_order INTEGER, _file VARCHAR)")
    displays = _displays(plan, root)
    for order, display in enumerate(displays):
        connection.execute("INSERT INTO _files VALUES (?, ?)", [order, display])
    skipped: dict[str, int] = {}
    spill = _Spill(folder / "stage.parquet")
    if plan.adapter is not None:
        for file_batch in plan.adapter.read(plan.files, plan.config, plan.spec.name):
            order = file_batch.file_index
            _stage_batch(store, plan, columns, order, displays[order], file_batch.batch, spill, progress)
            for kind, total in file_batch.skipped.items():
                skipped[kind] = skipped.get(kind, 0) + total
    else:
        for order, path in enumerate(plan.files):
            for batch in source_files.iter_batches(path, plan.config):
                _stage_batch(store, plan, columns, order, displays[order], batch, spill, progress)
    if spill.close():
        _stage_typed(store, plan, f"read_parquet({literal(str(spill.path))})")
        if _stage_is_table(plan):
            spill.path.unlink()
    else:
        _stage_typed(store, plan, _no_rows_sql(columns))
    return skipped


def _no_rows_sql(columns: list[str]) -> str:
    """Return a subquery with the spill file's columns and no rows, for a source whose files contain no row."""
    selects = ["NULL::VARCHAR AS _file", "NULL::INTEGER AS _file_order", "NULL::BIGINT AS _row_number"]
    selects += [f"NULL::VARCHAR AS {identifier(name)}" for name in columns]
    return f"(SELECT {', '.join(selects)} LIMIT 0)"


def _stage_parent(store: AnalyticalStore) -> Path:
    """Return the folder for spill files: beside the store's file, else the system's temporary folder.

    Folders left by an ingest that was killed (its process is gone) are removed first.
    """
    parent = store.path.parent if store.path is not None else Path(tempfile.gettempdir())
    for stale in parent.glob(f"{STAGE_PREFIX}*"):
        pid = stale.name[len(STAGE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return parent


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Spill:
    """A Parquet file that staged batches are appended to, opened on the first batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def close(self) -> bool:
        """Close the file; return whether it holds any batch."""
        if self.writer is None:
            return False
        self.writer.close()
        return True


def _stage_batch(
    store: AnalyticalStore,
    plan: _Plan,
    columns: list[str],
    order: int,
    display: str,
    batch: source_files.Batch,
    spill: _Spill,
    progress: ProgressCallback | None,
) -> None:
    connection = store.connection
    staged = _map_batch(batch.table, plan, columns)
    rows = staged.num_rows
    staged = staged.add_column(0, "_row_number", pa.array(batch.row_numbers, pa.int64()))
    staged = staged.add_column(0, "_file_order", pa.array([order] * rows, pa.int32()))
    staged = staged.add_column(0, "_file", pa.array([display] * rows, pa.string()))
    if rows:
        spill.write(staged)
    if batch.rejected:
        connection.executemany(
            "INSERT INTO _rejected VALUES (?, ?, ?, ?)",
            [[order, row.row_number, row.text, row.reason] for row in batch.rejected],
        )
    if progress is not None:
        progress(plan.name, display, batch.bytes_done, batch.bytes_total)


def _map_batch(table: pa.Table, plan: _Plan, columns: list[str]) -> pa.Table:
    """Rename, trim, map values and fill constants, keeping every value a string."""
    rows = table.num_rows
    arrays = []
    for name in columns:
        # Enumerated values are lower case, and a cell or constant may write them in any case.
        allowed = plan.spec.column(name).allowed if name in plan.spec.column_names else ()
        if name == "_loaded_raw":
            source = plan.config.loaded_at
        elif name == "_latest_raw":
            source = plan.config.latest_by
        elif name in identity.EXTRA_COLUMNS:
            # Identity and champion columns are matched ignoring case, as vendor fields are: an export
            # may head the email column Email or EMAIL.
            source = _named_column(table.column_names, identity.extra_source(plan.config, name))
            if source is not None and source in table.column_names:
                plan.identity_found.add(name)
        elif name.startswith("_from_"):
            source = plan.config.resolve[name.removeprefix("_from_")].from_column
        elif name in plan.config.constants:
            text = _constant_text(plan.config.constants[name])
            if text.strip().lower() in allowed:
                text = text.strip().lower()
            arrays.append(pa.array([text] * rows, pa.string()))
            continue
        else:
            source = plan.mapped.get(name)
        if source is None or source not in table.column_names:
            arrays.append(pa.nulls(rows, pa.string()))
            continue
        column = pc.utf8_trim_whitespace(table.column(source).cast(pa.string()))
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        mapping = plan.config.values.get(name)
        if mapping and not (plan.adapter is not None and name in plan.adapter.maps_values):
            column = _map_values(column, mapping, fold_case=bool(allowed))
        if allowed:
            column = _allowed_case(column, allowed)
        arrays.append(column)
    return pa.table(arrays, names=columns)


def _named_column(names: list[str], wanted: str | None) -> str | None:
    """Return the column headed `wanted`, else one headed `wanted` in another case, else `wanted`."""
    if wanted is None or wanted in names:
        return wanted
    folded = wanted.casefold()
    return next((name for name in names if name.casefold() == folded), wanted)


def _map_values(column: pa.ChunkedArray, mapping: dict[str, str], fold_case: bool) -> pa.ChunkedArray:
    """Replace the values that `mapping` names; an empty cell maps through the key "".

    With `fold_case`, a value that matches no key exactly is looked up again ignoring case, so that
    `P1 = "urgent"` also maps p1. Among keys that differ only in case, the first in the config wins.
    """
    candidates = [_looked_up(column, mapping)]
    if fold_case:
        folded: dict[str, str] = {}
        for key, value in mapping.items():
            folded.setdefault(key.lower(), value)
        candidates.append(_looked_up(pc.utf8_lower(column), folded))
    mapped = pc.coalesce(*candidates, column)
    if "" in mapping:
        mapped = pc.fill_null(mapped, mapping[""])
    return mapped


def _looked_up(column: pa.ChunkedArray, mapping: dict[str, str]) -> pa.ChunkedArray:
    """Return each value's replacement in `mapping`, or null where it has none."""
    index = pc.index_in(column, value_set=pa.array(list(mapping), pa.string()))
    return pc.take(pa.array(list(mapping.values()), pa.string()), index)


def _allowed_case(column: pa.ChunkedArray, allowed: tuple[str, ...]) -> pa.ChunkedArray:
    """Write each value that is one of the lower-case `allowed` values in another case as that value."""
    lowered = pc.utf8_lower(column)
    return pc.if_else(pc.is_in(lowered, value_set=pa.array(list(allowed), pa.string())), lowered, column)


def _constant_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stage_typed(store: AnalyticalStore, plan: _Plan, staged: str) -> None:
    """Create _stage from the staged strings in `staged`, parsing each into its canonical type.

    The raw text is kept beside a parsed column as `_raw_<column>` for the quarantine checks, except
    where the text is the stored value itself (see `_raw_aliases`).
    """
    aliases = _raw_aliases(plan)
    date_formats = tuple(plan.config.csv.date_formats)
    selects = ["_file", "_file_order", "_row_number", "1 AS _rows"]
    for column in plan.spec.columns:
        declared = plan.config.types.get(column.name, column.type)
        raw = identifier(column.name)
        parsed = parse_expression(
            raw,
            declared,
            column.type,
            decimal_comma=plan.config.csv.decimal == ",",
            date_formats=date_formats,
        )
        selects.append(f"{parsed} AS {raw}")
        if column.name not in aliases:
            selects.append(f"{raw} AS {identifier('_raw_' + column.name)}")
    for target in plan.config.resolve:
        selects.append(identifier(f"_from_{target}"))
        selects.append(f"NULL::VARCHAR AS {identifier('_matches_' + target)}")
    if plan.config.loaded_at is not None:
        loaded_at = parse_expression("_loaded_raw", "timestamp", "timestamp", date_formats=date_formats)
        selects.append(f"{loaded_at} AS _loaded_at")
        selects.append("_loaded_raw")
    if plan.config.latest_by is not None:
        latest_at = parse_expression("_latest_raw", "timestamp", "timestamp", date_formats=date_formats)
        selects.append(f"{latest_at} AS _latest_at")
    selects += [identifier(name) for name in identity.extra_columns(plan.config, plan.spec)]
    kind = "TABLE" if _stage_is_table(plan) else "VIEW"
    store.connection.execute(
        f"CREATE OR REPLACE TEMP {kind} _stage AS SELECT {', '.join(selects)} FROM {staged}"
    )


def _stage_is_table(plan: _Plan) -> bool:
    """Return whether resolution, id-form, identity or champion rules update the staged rows, so they need a table.

    Otherwise _stage is a view over the spill file. Inside the ingest's transaction DuckDB keeps a
    temporary table until commit, so for an export larger than memory a table takes its full size in
    DuckDB's temp folder, where the view takes none.
    """
    return (
        bool(plan.config.resolve)
        or references.rewritten_column(plan.spec) is not None
        or identity.rewrites_accounts(plan.config)
        or plan.config.champion is not None
    )


def _raw_aliases(plan: _Plan) -> set[str]:
    """Return the text columns whose stored value is their raw text until the quarantine checks run.

    Such a column is staged once, and the checks read it under its `_raw_` name through the view
    _checked. Staging such text once matters for exports larger than memory, whose staged rows DuckDB
    writes to its temp folder. Columns that resolution or identity rules rewrite keep a raw copy.
    """
    rewritten = set(plan.config.resolve)
    reference = references.rewritten_column(plan.spec)
    if reference is not None:
        rewritten.add(reference)
    if plan.spec.account_column is not None and identity.rewrites_accounts(plan.config):
        rewritten.add(plan.spec.account_column)
    return {
        column.name
        for column in plan.spec.columns
        if plan.config.types.get(column.name, column.type) == "string" and column.name not in rewritten
    }


def _resolve(store: AnalyticalStore, plan: _Plan) -> None:
    """Fill columns through another canonical table, e.g. a usage row's subscription id to its account.

    A value that matches several rows of the other table with different results (an email shared by
    two contacts) fills nothing. Its `_matches_` column then lists what it matched, and the
    quarantine check names them, because picking one would be arbitrary and could change between loads.
    """
    for target, resolution in plan.config.resolve.items():
        lookup_spec = TABLES[resolution.table]
        for column in (resolution.key, resolution.value):
            if column not in lookup_spec.column_names:
                raise SourceError(
                    f"[sources.{plan.name}.resolve.{target}] names {resolution.table}.{column}, which does not exist; "
                    f"its columns are {', '.join(lookup_spec.column_names)}"
                )
        latest = _latest_versions_sql(lookup_spec)
        key = f"CAST({identifier(resolution.key)} AS VARCHAR)"
        value = identifier(resolution.value)
        source = f"_stage.{identifier('_from_' + target)}"
        if resolution.key in _EMAIL_COLUMNS:
            # Emails match by their address, whatever its case and surrounding spaces, and with or
            # without a display name (`Jane Doe <jane@acme.com>`), as the identity rules match them.
            key = identity.email_address_sql(key)
            source = identity.email_address_sql(source)
        values = "list_sort(list(DISTINCT CAST(value AS VARCHAR)))"
        store.connection.execute(
            f"""UPDATE _stage SET {identifier(target)} = CASE WHEN lookup.matches = 1 THEN lookup.value END,
                       {identifier("_matches_" + target)} = CASE WHEN lookup.matches > 1 THEN lookup.listed END
                FROM (SELECT key, min(value) AS value, count(DISTINCT value) AS matches,
                             array_to_string(list_slice({values}, 1, {_MATCHES_SHOWN}), ', ')
                             || CASE WHEN count(DISTINCT value) > {_MATCHES_SHOWN}
                                     THEN ' and ' || (count(DISTINCT value) - {_MATCHES_SHOWN}) || ' more'
                                     ELSE '' END AS listed
                      FROM (SELECT {key} AS key, {value} AS value FROM ({latest}))
                      WHERE key IS NOT NULL AND value IS NOT NULL
                      GROUP BY key) AS lookup
                WHERE _stage.{identifier(target)} IS NULL AND {source} = lookup.key"""
        )


def _quarantine(store: AnalyticalStore, plan: _Plan, load_id: int) -> int:
    """Move rows with invalid values to the quarantine table; return how many rows were quarantined."""
    connection = store.connection
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE _problems (_row_number BIGINT, _file_order INTEGER, "
        '"column" VARCHAR, value VARCHAR, reason VARCHAR)'
    )
    connection.execute(
        f"INSERT INTO _problems SELECT _row_number, _file_order, {literal(WHOLE_ROW)}, value, reason FROM _rejected"
    )
    aliases = ", ".join(
        f"{identifier(name)} AS {identifier('_raw_' + name)}" for name in sorted(_raw_aliases(plan))
    )
    connection.execute(
        f"CREATE OR REPLACE TEMP VIEW _checked AS SELECT *{', ' if aliases else ''}{aliases} FROM _stage"
    )
    for check in quarantine_checks(plan.name, plan.spec, plan.config):
        connection.execute(
            f"""INSERT INTO _problems
                SELECT _row_number, _file_order, {literal(check.column)}, {check.value}, {check.reason}
                FROM _checked WHERE {check.condition}"""
        )
    connection.execute("DROP VIEW _checked")
    # A value quarantined by an earlier load of the same file is not recorded twice. This load's id
    # goes into last_load_id instead, so `WHERE last_load_id = N` finds every value load N rejected.
    same_problem = """q.source = ? AND q.file = s._file AND q.row_number = p._row_number
        AND q."column" = p."column" AND q.value IS NOT DISTINCT FROM p.value AND q.reason = p.reason"""
    connection.execute(
        f"""UPDATE {QUARANTINE_TABLE} q SET last_load_id = ?
            FROM _problems p JOIN _files s USING (_file_order)
            WHERE {same_problem}""",
        [load_id, plan.name],
    )
    connection.execute(
        f"""INSERT INTO {QUARANTINE_TABLE}
            SELECT ?, ?, ?, s._file, p._row_number, p."column", p.value, p.reason, ?, ?
            FROM _problems p JOIN _files s USING (_file_order)
            WHERE NOT EXISTS (SELECT 1 FROM {QUARANTINE_TABLE} q WHERE {same_problem})""",
        [load_id, plan.name, plan.spec.name, now(), load_id, plan.name],
    )
    # The view _valid leaves the quarantined rows out, because DELETE cannot change _stage when it is a view.
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE _quarantined AS SELECT DISTINCT _file_order, _row_number FROM _problems"
    )
    connection.execute(
        "CREATE OR REPLACE TEMP VIEW _valid AS SELECT * FROM _stage ANTI JOIN _quarantined USING (_file_order, _row_number)"
    )
    connection.execute("DROP TABLE _problems")
    return _count(store, "_quarantined")


def _merged_sql(plan: _Plan) -> str:
    """SQL for the staged rows after merging rows that share a key, as `duplicate_keys` sets."""
    if plan.config.duplicate_keys == "sum":
        return _summed_sql(plan)
    if plan.config.duplicate_keys == "latest":
        return _latest_sql(plan)
    return "_valid"


def _summed_sql(plan: _Plan) -> str:
    """SQL that merges staged rows sharing a key into one, adding up numeric columns and counting the rows merged."""
    spec = plan.spec
    keys = [identifier(name) for name in spec.key]
    aggregates = []
    for column in spec.columns:
        if column.name in spec.key:
            continue
        name = identifier(column.name)
        if column.type in ("float", "int"):
            aggregates.append(f"sum({name}) AS {name}")
        else:
            aggregates.append(f"arg_min({name}, (_file_order, _row_number)) AS {name}")
    aggregates += [
        "arg_min(_file, (_file_order, _row_number)) AS _file",
        "min(_file_order) AS _file_order",
        "arg_min(_row_number, (_file_order, _row_number)) AS _row_number",
        "sum(_rows) AS _rows",
    ]
    if plan.config.loaded_at is not None:
        aggregates.append("max(_loaded_at) AS _loaded_at")
    if plan.config.latest_by is not None:
        aggregates.append("max(_latest_at) AS _latest_at")
    for name in identity.extra_columns(plan.config, plan.spec):
        aggregates.append(f"arg_min({identifier(name)}, (_file_order, _row_number)) AS {identifier(name)}")
    return f"(SELECT {', '.join(keys)}, {', '.join(aggregates)} FROM _valid GROUP BY {', '.join(keys)})"


def _latest_sql(plan: _Plan) -> str:
    """SQL that keeps one staged row per key, the one with the greatest `latest_by` instant (then the last read).

    The rows it replaces are counted with it, so the row accounting still covers every row read. Rows
    with an empty key column are kept apart, since an empty key identifies nothing.
    """
    keys = [identifier(name) for name in plan.spec.key]
    any_empty = " OR ".join(f"{key} IS NULL" for key in keys)
    group = f"{', '.join(keys)}, CASE WHEN {any_empty} THEN (_file_order, _row_number) END"
    return f"""(SELECT * REPLACE (sum(_rows) OVER (PARTITION BY {group}) AS _rows) FROM _valid
                QUALIFY row_number() OVER (
                    PARTITION BY {group}
                    ORDER BY _latest_at DESC NULLS LAST, _file_order DESC, _row_number DESC) = 1)"""


def _carried_columns(plan: _Plan) -> list[str]:
    """Names of the staged columns that the classified rows carry: canonical columns and row metadata."""
    columns = [*plan.spec.column_names, "_file", "_file_order", "_row_number", "_rows"]
    if plan.config.loaded_at is not None:
        columns.append("_loaded_at")
    if plan.config.latest_by is not None:
        columns.append("_latest_at")
    return columns + identity.extra_columns(plan.config, plan.spec)


def _hashed_sql(plan: _Plan, merged: str, ingested_at: datetime, backfill: bool) -> str:
    """SQL that adds the derived key, content hash, availability instant and attribution flag to each merged row."""
    spec = plan.spec
    rows = f"(SELECT {', '.join(identifier(name) for name in _carried_columns(plan))} FROM {merged})"
    # The email a row was matched by distinguishes rows whose canonical columns agree, such as two
    # people of one account who both gave a 9 on the same day.
    people = [name for name in identity.extra_columns(plan.config, spec) if name == identity.EMAIL]
    for column in spec.derived:
        content = ", ".join(
            f"coalesce(CAST({identifier(name)} AS VARCHAR), chr(0))"
            for name in [*spec.column_names, *people]
            if name != column
        )
        derived = identifier(column)
        rows = f"(SELECT * REPLACE (coalesce({derived}, md5(concat_ws(chr(31), {content}))) AS {derived}) FROM {rows})"
    hashed = ", ".join(
        f"coalesce(CAST({identifier(column)} AS VARCHAR), chr(0))" for column in spec.column_names
    )
    if spec.event_time is not None:
        event = identifier(spec.event_time)
    elif spec.event_day is not None:
        # The last instant of the day. A snapshot uses rows available strictly before its as-of instant,
        # so a snapshot at the following midnight then includes the day.
        event = f"CAST({identifier(spec.event_day)} AS TIMESTAMP) + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND"
    else:
        event = "NULL"
    # The ingest instant is this process's own clock reading, so writing it as a literal is safe.
    known = _EPOCH if backfill else f"TIMESTAMP '{ingested_at:%Y-%m-%d %H:%M:%S.%f}'"
    if plan.config.loaded_at is not None:
        available = f"CASE WHEN _loaded_at IS NOT NULL THEN greatest({event}, _loaded_at) ELSE greatest({event}, {known}) END"
    else:
        available = f"greatest({event}, {known})"
    if spec.account_column is not None:
        column = identifier(spec.account_column)
        unattributed = f"{column} IS NULL OR {column} NOT IN (SELECT account_id FROM accounts WHERE account_id IS NOT NULL)"
    else:
        unattributed = "FALSE"
    return f"""(SELECT *, md5(concat_ws(chr(31), {hashed})) AS _row_hash,
                       coalesce({available}, {_EPOCH}) AS _available_at,
                       coalesce({unattributed}, FALSE) AS _unattributed
                FROM {rows})"""


def _classify(store: AnalyticalStore, plan: _Plan, folder: Path, hashed: str, load_id: int) -> None:
    """Mark each hashed row inserted, new_version or unchanged against the stored table, as the view _classified.

    Rows of one key that become available at the same instant are merged first (see `_same_instant_sql`),
    because a snapshot could only ever see the last of them. Each remaining row is then placed in its
    key's sequence of versions, stored and incoming, ordered as snapshots order them (availability,
    then load, then row). A row is unchanged when the version before it in that sequence has the same
    content, or the version before it among those of this source does. The second rule keeps two
    sources that disagree about a key from adding a version at every load. So a value that changes
    back (A, B, then A again) is a new version, while re-reading an old export beside a newer one
    changes nothing. Rows with an empty key column identify nothing, and usage events count in their
    first version, so neither is a sequence of states: such a row is unchanged when the same content
    is already stored for its key, or read earlier in this load.

    One statement computes every step and writes the rows, in file order, to a zstd Parquet file in
    `folder` that _classified reads. A temporary table would stay in DuckDB's temp folder until the
    ingest commits, where the file is deleted with `folder` after the source's rows are written.
    """
    spec = plan.spec
    table = identifier(spec.name)
    source = literal(plan.name)
    keys = ", ".join(identifier(k) for k in spec.key)
    unsequenced = _unsequenced_sql(spec)
    key_match = " AND ".join(f"s.{identifier(k)} IS NOT DISTINCT FROM t.{identifier(k)}" for k in spec.key)
    in_order = (
        f"PARTITION BY {keys} ORDER BY _available_at, _load_id, _incoming, _row_number, _source, _file_order"
    )
    path = literal(str(folder / "classified.parquet"))
    if spec.name in _FIRST_VERSION_TABLES:
        _classify_first_versions(store, plan, hashed, path)
        return
    store.connection.execute(
        f"""COPY (
            WITH incoming AS MATERIALIZED ({_same_instant_sql(plan, hashed)}),
            stored AS (
                SELECT t.* FROM {table} t
                SEMI JOIN (SELECT DISTINCT {keys} FROM incoming) s ON {key_match}
            ),
            versions AS (
                SELECT {keys}, _available_at, _load_id, 0 AS _incoming, _row_number, _source,
                       NULL::INTEGER AS _file_order, _row_hash
                FROM stored
                UNION ALL
                SELECT {keys}, _available_at, {int(load_id)}, 1, _row_number, {source}, _file_order, _row_hash
                FROM incoming WHERE NOT ({unsequenced})
            ),
            placed AS (
                SELECT _file_order, _row_number, _incoming,
                       lag(_row_hash) OVER sequence AS _previous_hash,
                       last_value(CASE WHEN _source = {source} THEN _row_hash END IGNORE NULLS) OVER (
                           sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _previous_own_hash,
                       bool_or(_incoming = 0) OVER (PARTITION BY {keys}) AS _known
                FROM versions
                WINDOW sequence AS ({in_order})
            ),
            keyed AS (
                SELECT s.*, CASE
                    WHEN s._row_hash = p._previous_hash OR s._row_hash = p._previous_own_hash THEN 'unchanged'
                    WHEN p._known OR p._previous_hash IS NOT NULL THEN 'new_version'
                    ELSE 'inserted' END AS _status
                FROM incoming s JOIN (SELECT * FROM placed WHERE _incoming = 1) p
                    USING (_file_order, _row_number)
            ),
            unsequenced AS ({_set_status_sql(spec, f"(SELECT * FROM incoming WHERE {unsequenced})", "stored")})
            SELECT * FROM keyed
            UNION ALL BY NAME
            SELECT * FROM unsequenced
            ORDER BY _file_order, _row_number
        ) TO {path} (FORMAT parquet, COMPRESSION zstd)"""
    )
    store.connection.execute(f"CREATE OR REPLACE TEMP VIEW _classified AS SELECT * FROM read_parquet({path})")


def _classify_first_versions(store: AnalyticalStore, plan: _Plan, hashed: str, path: str) -> None:
    """Write the classified rows of a first-version table (usage events) to the Parquet file `path`.

    Every row takes the set rule of `_set_status_sql`, without the versions' windows and the
    materialised input of `_classify`, which took gigabytes of memory at millions of events.
    """
    statuses = _set_status_sql(plan.spec, hashed, identifier(plan.spec.name))
    store.connection.execute(
        f"""COPY (
            SELECT *, CAST(0 AS HUGEINT) AS _repeats FROM ({statuses})
            ORDER BY _file_order, _row_number
        ) TO {path} (FORMAT parquet, COMPRESSION zstd)"""
    )
    store.connection.execute(f"CREATE OR REPLACE TEMP VIEW _classified AS SELECT * FROM read_parquet({path})")


def _set_status_sql(spec: TableSpec, rows: str, stored: str) -> str:
    """SQL that gives each of `rows` (a parenthesised query) a `_status` by the set rule.

    A row is unchanged when `stored` (a table or CTE name) contains the same content for its key, or a
    row read earlier in this load has it. Otherwise it is a new version when its key is stored or was
    read earlier, else inserted.
    """
    keys = ", ".join(identifier(k) for k in spec.key)
    key_match = " AND ".join(f"s.{identifier(k)} IS NOT DISTINCT FROM t.{identifier(k)}" for k in spec.key)
    return f"""SELECT * EXCLUDE (_same, _known), CASE
                   WHEN _same THEN 'unchanged'
                   WHEN _known OR row_number() OVER (PARTITION BY {keys}, _same ORDER BY _file_order, _row_number) > 1
                       THEN 'new_version'
                   ELSE 'inserted' END AS _status
               FROM (
                   SELECT s.*,
                          row_number() OVER (PARTITION BY {keys}, s._row_hash ORDER BY s._file_order, s._row_number) > 1
                              OR EXISTS (SELECT 1 FROM {stored} t WHERE {key_match} AND t._row_hash = s._row_hash)
                              AS _same,
                          EXISTS (SELECT 1 FROM {stored} t WHERE {key_match}) AS _known
                   FROM {rows} s
               )"""


def _same_instant_sql(plan: _Plan, hashed: str) -> str:
    """SQL that keeps, of the hashed rows of one key that become available at the same instant, the newest.

    The newest is the one with the greatest `latest_by` instant, then the greatest `updated_at` (for
    tickets), then the last read, in file order. `_rows` counts the rows it replaces, and `_repeats`
    those among them with the same content, which count as unchanged. Rows that `_unsequenced_sql`
    selects are kept apart.
    """
    keys = ", ".join(identifier(k) for k in plan.spec.key)
    apart = f"CASE WHEN {_unsequenced_sql(plan.spec)} THEN (_file_order, _row_number) END"
    group = f"{keys}, _available_at, {apart}"
    order = []
    if plan.config.latest_by is not None:
        order.append("_latest_at DESC NULLS LAST")
    if "updated_at" in plan.spec.column_names:
        order.append("updated_at DESC NULLS LAST")
    order += ["_file_order DESC", "_row_number DESC"]
    ranked = f"""(SELECT *, row_number() OVER newest AS _rank, first_value(_row_hash) OVER newest AS _newest_hash
                  FROM {hashed} WINDOW newest AS (PARTITION BY {group} ORDER BY {", ".join(order)}))"""
    return f"""SELECT * EXCLUDE (_rank, _newest_hash) REPLACE (sum(_rows) OVER same AS _rows),
                      sum(CASE WHEN _rank > 1 AND _row_hash = _newest_hash THEN _rows ELSE 0 END) OVER same AS _repeats
               FROM {ranked}
               WINDOW same AS (PARTITION BY {group})
               QUALIFY _rank = 1"""


def _unsequenced_sql(spec: TableSpec) -> str:
    """SQL condition for the rows that are not versions of a state: an empty key column, or a first-version table."""
    if spec.name in _FIRST_VERSION_TABLES:
        return "TRUE"
    return " OR ".join(f"{identifier(k)} IS NULL" for k in spec.key)


def _write(store: AnalyticalStore, plan: _Plan, load_id: int, ingested_at: datetime) -> None:
    """Insert the rows that are not unchanged, in file order.

    The Parquet file behind _classified is sorted, and DuckDB keeps a file's row order in an INSERT
    without ORDER BY while `preserve_insertion_order` is on, its default.
    """
    columns = ", ".join(identifier(name) for name in plan.spec.column_names)
    store.connection.execute(
        f"""INSERT INTO {identifier(plan.spec.name)}
            SELECT {columns}, _available_at, CAST(? AS TIMESTAMP), ?, ?, _file, _row_number, _row_hash, _unattributed
            FROM _classified WHERE _status <> 'unchanged'""",
        [ingested_at, load_id, plan.name],
    )


def _latest_versions_sql(spec: TableSpec) -> str:
    """SQL for the newest stored version of every key of a canonical table."""
    keys = ", ".join(identifier(k) for k in spec.key)
    return (
        f"SELECT * FROM {identifier(spec.name)} QUALIFY row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY _available_at DESC, _load_id DESC, _row_number DESC) = 1"
    )


def _count(store: AnalyticalStore, table: str, condition: str = "TRUE") -> int:
    row = store.connection.execute(f"SELECT count(*) FROM {table} WHERE {condition}").fetchall()[0]
    return int(row[0]) if row else 0
