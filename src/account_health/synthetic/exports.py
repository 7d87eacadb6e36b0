"""Turn the generator's frames into the export files a company would hand over, and the config mapping them.

Instants are written as ISO 8601 UTC strings with a `Z` suffix, whole seconds; a missing instant is an
empty cell. Usage events go to Parquet, every other table to CSV.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from account_health.synthetic.activity import INTEGRATIONS, MISSING, USAGE_EVENTS
from account_health.synthetic.customers import OPEN_END
from account_health.synthetic.population import SERVICE_EMAIL_DOMAIN, STAFF_EMAIL_DOMAIN, Population

# Source name -> (canonical table, export file inside the output folder).
EXPORT_FILES = {
    "accounts": ("accounts", "exports/accounts.csv"),
    "users": ("users", "exports/users.csv"),
    "contacts": ("contacts", "exports/contacts.csv"),
    "contracts": ("contracts", "exports/contracts.csv"),
    "churn_events": ("churn_events", "exports/churn_events.csv"),
    "usage_events": ("usage_events", "exports/usage_events.parquet"),
    "sentiment_responses": ("sentiment_responses", "exports/sentiment_responses.csv"),
    "tickets": ("tickets", "exports/tickets.csv"),
    "contact_changes": ("contact_changes", "exports/contact_changes.csv"),
    "integrations": ("integrations", "exports/integrations.csv"),
}
# Sources the signal engine reads; contracts and churn events only feed the training labels.
SIGNAL_SOURCES = (
    "accounts", "users", "contacts", "usage_events", "sentiment_responses", "tickets", "contact_changes",
    "integrations",
)  # fmt: skip
STATIC_SOURCES = ("accounts", "users", "contacts")


def iso_instants(ns: np.ndarray) -> pa.Array:
    """ISO 8601 UTC strings (2026-03-29T01:30:00Z) for int64 nanosecond instants; MISSING and OPEN_END become nulls."""
    ns = np.asarray(ns, dtype=np.int64)
    missing = (ns == MISSING) | (ns == OPEN_END)
    seconds = np.where(missing, 0, ns // 10**9)
    # Arrow's cast writes "2026-03-29 01:30:00"; it is about five times faster than pc.strftime.
    text = pa.array(seconds, type=pa.timestamp("s")).cast(pa.string())
    text = pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)


def accounts_frame(population: Population) -> pd.DataFrame:
    columns = ["account_id", "name", "arr", "currency", "segment", "owner", "timezone"]
    return population.accounts[columns]


def users_frame(population: Population) -> pd.DataFrame:
    users = population.users
    return pd.DataFrame(
        {
            "user_id": users["user_id"],
            "account_id": users["account_id"],
            "email": users["email"],
            "is_internal": _bool_text(users["is_internal"]),
        }
    )


def contacts_frame(population: Population) -> pd.DataFrame:
    contacts = population.contacts
    frame = contacts[["contact_id", "account_id", "email", "title"]].copy()
    frame["is_champion"] = _bool_text(contacts["is_champion"])
    return frame


def usage_table(usage: pd.DataFrame, population: Population) -> pa.Table:
    number = pa.array(usage["event_number"].to_numpy()).cast(pa.string())
    user_index = pa.array(usage["user_index"].to_numpy())
    users = population.users
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise("ev-", number, ""),
            "account_id": pa.array(users["account_id"].to_numpy(), pa.string()).take(user_index),
            "user_id": pa.array(users["user_id"].to_numpy(), pa.string()).take(user_index),
            "occurred_at": iso_instants(usage["at"].to_numpy()),
            "event": pa.array(USAGE_EVENTS, pa.string()).take(pa.array(usage["event"].to_numpy())),
            "synced_at": iso_instants(usage["synced_at"].to_numpy()),
        }
    )


def tickets_frame(tickets: pd.DataFrame, population: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": [f"t-{i + 1:06d}" for i in tickets.index],
            "account_id": _account_ids(tickets, population),
            "created_at": iso_instants(tickets["at"].to_numpy()).to_pandas(),
            "updated_at": iso_instants(tickets["updated_at"].to_numpy()).to_pandas(),
            "solved_at": iso_instants(tickets["solved_at"].to_numpy()).to_pandas(),
            "priority": tickets["priority"].to_numpy(),
            "status": tickets["status"].to_numpy(),
        }
    )


def responses_frame(responses: pd.DataFrame, population: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": [f"r-{i + 1:06d}" for i in responses.index],
            "account_id": _account_ids(responses, population),
            "responded_at": iso_instants(responses["at"].to_numpy()).to_pandas(),
            "kind": responses["kind"].to_numpy(),
            "score": pd.array(responses["score"].to_numpy(), dtype="Int64"),
            "tag": responses["tag"].to_numpy(),
            "dismissed": _bool_text(responses["dismissed"]).to_numpy(),
        }
    )


def integrations_frame(integrations: pd.DataFrame, population: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": _account_ids(integrations, population),
            "integration": np.asarray(INTEGRATIONS)[integrations["integration_index"].to_numpy()],
            "connected_at": iso_instants(integrations["at"].to_numpy()).to_pandas(),
            "disconnected_at": iso_instants(integrations["disconnected_at"].to_numpy()).to_pandas(),
        }
    )


def contact_changes_frame(changes: pd.DataFrame, population: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": population.contacts["contact_id"].to_numpy()[changes["contact_index"].to_numpy()],
            "changed_at": iso_instants(changes["at"].to_numpy()).to_pandas(),
            "change": changes["change"].to_numpy(),
        }
    )


def contracts_frame(contracts: pd.DataFrame) -> pd.DataFrame:
    frame = contracts.copy()
    frame["start_at"] = iso_instants(contracts["start_at"].to_numpy()).to_pandas()
    frame["end_at"] = iso_instants(contracts["end_at"].to_numpy()).to_pandas()
    frame["auto_renew"] = _bool_text(contracts["auto_renew"])
    frame["locked"] = _bool_text(contracts["locked"])
    return frame


def churn_events_frame(churns: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": churns["account_id"].to_numpy(),
            "churned_at": iso_instants(churns["churned_at"].to_numpy()).to_pandas(),
            "reason": churns["reason"].to_numpy(),
        }
    )


def write_table(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    """Write a CSV, or a Parquet file when `path` ends in .parquet; the bytes depend only on the content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, path, compression="zstd")
    else:
        assert isinstance(frame, pd.DataFrame)
        frame.to_csv(path, index=False, lineterminator="\n")


def _account_ids(frame: pd.DataFrame, population: Population) -> np.ndarray:
    return population.accounts["account_id"].to_numpy()[frame["account_index"].to_numpy(dtype=np.int64)]


def _bool_text(values: pd.Series) -> pd.Series:
    return values.map({True: "true", False: "false"})


def config_document(files: dict[str, list[str]], training_end: date, window_months: int) -> dict[str, Any]:
    """Build the workspace config as a dict, with `files` giving each source's files relative to the config."""
    sources: dict[str, Any] = {}
    for name, paths in files.items():
        table, _ = EXPORT_FILES[name]
        source: dict[str, Any] = {"table": table, "files": paths}
        if name == "usage_events":
            source["format"] = "parquet"
            source["loaded_at"] = "synced_at"
        sources[name] = source
    return {
        "workspace": {
            "analytical_store": "data/analytical.duckdb",
            "operational_store": "sqlite:///data/operational.sqlite",
            "models_dir": "models",
        },
        "sources": sources,
        "signals": {
            "internal_user_patterns": ["bot-*"],
            "internal_email_domains": [STAFF_EMAIL_DOMAIN, SERVICE_EMAIL_DOMAIN],
        },
        "training": {
            "end": training_end,
            "window_months": window_months,
            "snapshot_every_days": 90,
            "horizon_days": 90,
        },
    }


def render_toml(document: dict[str, Any], header: str) -> str:
    """Render the config dict as TOML: scalars and lists of strings in tables nested to any depth."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _render_table(document, [], lines)
    return "\n".join(lines).strip() + "\n"


def _render_table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {key: value for key, value in table.items() if not isinstance(value, dict)}
    if path and scalars:
        lines.extend(["", f"[{'.'.join(path)}]"])
    for key, value in scalars.items():
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _render_table(value, [*path, key], lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")
