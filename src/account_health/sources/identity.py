"""Identity resolution: turn vendor organisation ids, external ids and email domains into account ids.

It runs on the staged rows of one source, after typing and before the quarantine checks. An entry of
the source's id map (`[sources.NAME.identity] ids` and `ids_files`) always applies, even to an id that
is also a known account id. Otherwise a row's account column keeps its value when that is already a
known account id, and these are tried in order, each only for rows still unmatched: the account's
crm_id in all its Salesforce forms (when `crm_id = true`), then the external id column (as an account
id, then through the map), then the email column: the account of the contact or product user with
that address (case-insensitive; `Name <address>` is read as the address), then the address's domain,
or its nearest parent domain, through `[identity] email_domains`. A row no rule matches keeps the
vendor's id; the ingest stores it flagged unattributed and reports examples.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

from account_health.config import SourceConfig, Workspace
from account_health.errors import SourceError
from account_health.sources.canonical import TableSpec
from account_health.sources.salesforce_ids import forms
from account_health.sources.sql import identifier, literal
from account_health.sources.vendors.base import TRUE_WORDS
from account_health.store.analytical import AnalyticalStore

# Staged columns that carry identity and champion inputs from the source's files.
EXTERNAL = "_identity_external"
EMAIL = "_identity_email"
CHAMPION = "_champion_raw"
EXTRA_COLUMNS = (EXTERNAL, EMAIL, CHAMPION)
NOTES_TABLE = "load_notes"
EXAMPLES = 5
_TRUE_TEXT = f"({', '.join(literal(word) for word in TRUE_WORDS)})"
# The address in an email cell, in lower case: the part in angle brackets of `Jane Doe <jane@acme.com>`,
# else the whole cell.
_ADDRESS = (
    "lower(trim(CASE WHEN {column} LIKE '%<%@%>%' THEN regexp_extract({column}, '<([^<>]*)>', 1) "
    "ELSE {column} END))"
)


def email_address_sql(column: str) -> str:
    """Return SQL for the address in the email cell `column` (an SQL expression), in lower case."""
    return _ADDRESS.format(column=column)


def extra_columns(config: SourceConfig, spec: TableSpec) -> list[str]:
    """Return the identity and champion columns this source stages besides the canonical ones."""
    columns = []
    if spec.account_column is not None and config.identity.external_id is not None:
        columns.append(EXTERNAL)
    if spec.account_column is not None and config.identity.email is not None:
        columns.append(EMAIL)
    if spec.name == "contacts" and config.champion is not None and config.champion.field is not None:
        columns.append(CHAMPION)
    return columns


def extra_source(config: SourceConfig, column: str) -> str | None:
    """Return the source column that fills one of the staged identity or champion columns."""
    if column == EXTERNAL:
        return config.identity.external_id
    if column == EMAIL:
        return config.identity.email
    return config.champion.field if config.champion is not None else None


def rewrites_accounts(config: SourceConfig) -> bool:
    """Return whether the source's identity rules may replace the ids in its account column."""
    rules = config.identity
    return bool(rules.ids or rules.ids_files or rules.crm_id or rules.external_id or rules.email)


def identify_accounts(
    store: AnalyticalStore, workspace: Workspace, source: str, config: SourceConfig, spec: TableSpec
) -> None:
    """Replace vendor ids in the staged account column by account ids, by the rules in the module doc."""
    if spec.account_column is None:
        return
    rules = config.identity
    domains = workspace.config.identity.email_domains
    if not rewrites_accounts(config):
        return
    connection = store.connection
    column = f"_stage.{identifier(spec.account_column)}"
    known = "(SELECT account_id FROM accounts WHERE account_id IS NOT NULL)"
    unmatched = f"({column} IS NULL OR {column} NOT IN {known})"

    _register_map(store, workspace, source, config)
    # An entry of the source's own id map always applies: a vendor's id can equal another vendor's
    # account id (numeric ids collide), and the entry states which account the user means.
    connection.execute(
        f"""UPDATE _stage SET {identifier(spec.account_column)} = m.account_id FROM _identity_map m
            WHERE (m.explicit OR {unmatched}) AND {column} = m.vendor_id"""
    )
    if rules.external_id is not None:
        connection.execute(
            f"UPDATE _stage SET {identifier(spec.account_column)} = {EXTERNAL} WHERE {unmatched} AND {EXTERNAL} IN {known}"
        )
        connection.execute(
            f"""UPDATE _stage SET {identifier(spec.account_column)} = m.account_id FROM _identity_map m
                WHERE {unmatched} AND _stage.{EXTERNAL} = m.vendor_id"""
        )
    address = _ADDRESS.format(column=f"_stage.{EMAIL}")
    if rules.email is not None:
        # An email that belongs to a known contact or product user names that person's account.
        for table in ("contacts", "users"):
            connection.execute(
                f"""UPDATE _stage SET {identifier(spec.account_column)} = people.account_id
                    FROM (SELECT lower(email) AS email, arg_max(account_id, _available_at) AS account_id
                          FROM {table} WHERE email IS NOT NULL AND account_id IS NOT NULL GROUP BY lower(email)) people
                    WHERE {unmatched} AND {address} = people.email"""
            )
    if rules.email is not None and domains:
        ignored = {domain.lower().lstrip("@") for domain in workspace.config.identity.ignored_domains}
        rows = [(domain.lower().lstrip("@"), account) for domain, account in domains.items()]
        rows = [(domain, account) for domain, account in rows if domain not in ignored]
        table = pa.table(
            {
                "domain": pa.array([domain for domain, _ in rows], pa.string()),
                "account_id": pa.array([account for _, account in rows], pa.string()),
            }
        )
        connection.register("_identity_domains", table)
        # The longest mapped domain that is the address's domain or a parent of it wins, so that
        # support.acme.com matches acme.com unless support.acme.com has an entry of its own.
        host = f"split_part({address}, '@', -1)"
        connection.execute(
            f"""UPDATE _stage SET {identifier(spec.account_column)} = d.account_id
                FROM (SELECT s.host, arg_max(m.account_id, length(m.domain)) AS account_id
                      FROM (SELECT DISTINCT {host} AS host FROM _stage WHERE {address} LIKE '%@%') s
                      JOIN _identity_domains m ON s.host = m.domain OR ends_with(s.host, '.' || m.domain)
                      GROUP BY s.host) d
                WHERE {unmatched} AND {address} LIKE '%@%' AND {host} = d.host"""
        )
        connection.unregister("_identity_domains")
    connection.execute("DROP TABLE IF EXISTS _identity_map")


def _register_map(store: AnalyticalStore, workspace: Workspace, source: str, config: SourceConfig) -> None:
    """Create the temp table _identity_map (vendor_id, account_id, explicit) from the source's identity rules.

    `explicit` is true for the entries of `ids` and `ids_files`, and false for the accounts' crm ids.
    """
    pairs: dict[str, str] = {}
    for pattern in config.identity.ids_files:
        for vendor_id, account_id in _read_map_file(workspace, source, pattern):
            pairs[vendor_id] = account_id
    pairs.update(config.identity.ids)
    explicit = set(pairs)
    if config.identity.crm_id:
        for account_id, crm_id in store.connection.execute(
            "SELECT account_id, crm_id FROM accounts WHERE crm_id IS NOT NULL QUALIFY row_number() OVER "
            "(PARTITION BY account_id ORDER BY _available_at DESC, _load_id DESC, _row_number DESC) = 1"
        ).fetchall():
            for form in forms(str(crm_id)):
                pairs.setdefault(form, str(account_id))
    table = pa.table(
        {
            "vendor_id": pa.array(list(pairs), pa.string()),
            "account_id": pa.array(list(pairs.values()), pa.string()),
            "explicit": pa.array([vendor_id in explicit for vendor_id in pairs], pa.bool_()),
        }
    )
    store.connection.register("_identity_map_arrow", table)
    store.connection.execute(
        "CREATE OR REPLACE TEMP TABLE _identity_map AS SELECT * FROM _identity_map_arrow"
    )
    store.connection.unregister("_identity_map_arrow")


def _read_map_file(workspace: Workspace, source: str, pattern: str) -> list[tuple[str, str]]:
    path = workspace.path(pattern)
    if not path.is_file():
        raise SourceError(
            f"[sources.{source}.identity] ids_files names {str(path)!r}, which does not exist; "
            "write a CSV with the columns vendor_id and account_id"
        )
    options = pacsv.ConvertOptions(column_types={"vendor_id": pa.string(), "account_id": pa.string()})
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: cannot be read as an identity map ({exc})") from None
    missing = [name for name in ("vendor_id", "account_id") if name not in table.column_names]
    if missing:
        raise SourceError(
            f"{path}: the identity map lacks the column {missing[0]!r}; its header must be vendor_id,account_id"
        )
    return [
        (str(vendor).strip(), str(account).strip())
        for vendor, account in zip(
            table.column("vendor_id").to_pylist(), table.column("account_id").to_pylist(), strict=True
        )
        if vendor is not None and account is not None
    ]


def apply_champion_rule(store: AnalyticalStore, config: SourceConfig, spec: TableSpec) -> None:
    """Set contacts.is_champion from the configured CRM field or title pattern."""
    rule = config.champion
    if rule is None:
        return
    if spec.name != "contacts":
        raise SourceError(
            f"[sources] champion applies to the contacts table only, not {spec.name}; remove it from this source"
        )
    parts = []
    if rule.field is not None:
        parts.append(f"coalesce(lower(trim({CHAMPION})) IN {_TRUE_TEXT}, FALSE)")
    if rule.title_pattern is not None:
        parts.append(f"coalesce(regexp_matches(title, {literal(rule.title_pattern)}, 'i'), FALSE)")
    if parts:
        store.connection.execute(f"UPDATE _stage SET is_champion = {' OR '.join(parts)}")


def missing_columns_note(source: str, config: SourceConfig, missing: list[str]) -> str | None:
    """Return why a rule was not tried when no row has the column it reads (EXTERNAL or EMAIL)."""
    if not missing:
        return None
    keys = {EXTERNAL: ("external_id", "ids"), EMAIL: ("email", "email addresses")}
    key, contents = keys[missing[0]]
    headers = " or ".join(repr(extra_source(config, name)) for name in missing)
    return (
        f"no row has a column headed {headers} (in any case), which the identity rules read, so those "
        f"rules were not tried; set [sources.{source}.identity] {key} to the header of the column of "
        f"{contents} in your files"
    )


def unattributed_examples(
    store: AnalyticalStore, spec: TableSpec, missing_note: str | None = None
) -> list[str]:
    """Return a few distinct account ids (with the email tried, if any) of this load's unattributed rows.

    `missing_note`, which names the identity columns the files lack, is added to the first example.
    """
    if spec.account_column is None:
        return []
    columns = {row[0] for row in store.connection.execute("DESCRIBE _classified").fetchall()}
    email = f"CAST({EMAIL} AS VARCHAR)" if EMAIL in columns else "NULL"
    rows = store.connection.execute(
        f"""SELECT DISTINCT CAST({identifier(spec.account_column)} AS VARCHAR), {email}
            FROM _classified WHERE _status <> 'unchanged' AND _unattributed
            ORDER BY 1 NULLS FIRST, 2 LIMIT {EXAMPLES}"""
    ).fetchall()
    examples = []
    for account, address in rows:
        text = repr(account) if account is not None else "(no account id)"
        if address:
            text += f" with email {address!r}"
        examples.append(text)
    if missing_note is not None and examples:
        examples[0] += f" ({missing_note})"
    return examples


def record_notes(
    store: AnalyticalStore, load_id: int, source: str, examples: list[str], tallies: dict[str, int]
) -> None:
    """Store a load's unattributed examples and its tallies (records skipped by kind, responses
    dismissed) beside the load log."""
    connection = store.connection
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {NOTES_TABLE} (load_id BIGINT, source VARCHAR, kind VARCHAR, detail VARCHAR, count BIGINT)"
    )
    rows: list[list[object]] = [[load_id, source, "unattributed_example", text, None] for text in examples]
    rows += [
        [load_id, source, "dismissed" if kind == "dismissed" else "skipped", kind, total]
        for kind, total in sorted(tallies.items())
    ]
    if rows:
        connection.executemany(f"INSERT INTO {NOTES_TABLE} VALUES (?, ?, ?, ?, ?)", rows)
