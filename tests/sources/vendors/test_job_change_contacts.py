"""Job-change feeds matched to their contacts: emails, Salesforce id forms, checkbox flags, mapped labels."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path

from account_health.config import CONFIG_FILE, load_workspace
from vendor_workspace import assert_balanced, counts, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\n"
CONTACTS = (
    "contact_id,account_id,email,title,is_champion\n"
    "c1,acme,jane@acme.com,VP,true\n"
    "c3,acme,team@acme.com,CTO,true\n"
    "c4,acme,Team@Acme.com ,CFO,false\n"
)
BASE = (
    '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
    '[sources.contacts]\ntable = "contacts"\nfiles = ["contacts.csv"]\n\n'
)
CHANGES = '[sources.changes]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["changes.jsonl"]\n'


def _workspace(tmp_path: Path, changes: list[dict[str, object]], extra: str = "", contacts: str = CONTACTS):
    files = {"accounts.csv": ACCOUNTS, "contacts.csv": contacts, "changes.jsonl": json_lines(changes)}
    return make_workspace(tmp_path, BASE + CHANGES + extra, files)


def test_email_matches_contact_whatever_its_case(tmp_path: Path) -> None:
    changes = [{"email": "  Jane@Acme.COM ", "event": "bounce", "timestamp": "2024-06-01T00:00:00Z"}]
    report, store = run_ingest(_workspace(tmp_path, changes))
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes")
        quarantined = rows(store, "SELECT value, reason FROM quarantine")

    assert stored == [("c1", "email_bounced")]
    assert quarantined == []
    assert_balanced(report)


def test_email_matches_with_display_name(tmp_path: Path) -> None:
    contacts = CONTACTS + "c5,acme,Joe Bloggs <joe@acme.com>,CEO,true\n"
    changes = [
        {"email": "joe@acme.com", "event": "left", "timestamp": "2024-06-01T00:00:00Z"},
        {"email": "J Doe <JANE@acme.com>", "event": "bounce", "timestamp": "2024-06-02T00:00:00Z"},
    ]
    report, store = run_ingest(_workspace(tmp_path, changes, contacts=contacts))
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes ORDER BY 1")
        quarantined = rows(store, "SELECT value, reason FROM quarantine")

    assert stored == [("c1", "email_bounced"), ("c5", "left_company")]
    assert quarantined == []
    assert_balanced(report)


def test_shared_email_is_quarantined_with_ids(tmp_path: Path) -> None:
    changes = [
        {"email": "team@acme.com", "event": "bounce", "timestamp": "2024-06-01T00:00:00Z"},
        {"contact_id": "c3", "email": "team@acme.com", "event": "left", "timestamp": "2024-06-02T00:00:00Z"},
    ]
    workspace = _workspace(tmp_path, changes)

    first, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes")
        quarantined = rows(store, 'SELECT row_number, "column", value, reason FROM quarantine')
    second, store = run_ingest(workspace)
    with store:
        stored_again = rows(store, "SELECT count(*) FROM contact_changes")
        quarantined_again = rows(store, "SELECT count(*) FROM quarantine")

    assert stored == [("c3", "left_company")]
    assert len(quarantined) == 1
    row_number, column, value, reason = quarantined[0]
    assert (row_number, column, value) == (1, "contact_id", "team@acme.com")
    assert "team@acme.com" in reason
    assert "c3, c4" in reason
    assert "contact_id" in reason
    assert (counts(first, "changes").inserted, counts(first, "changes").quarantined) == (1, 1)
    second_counts = counts(second, "changes")
    assert (second_counts.read, second_counts.inserted, second_counts.new_version) == (2, 0, 0)
    assert (second_counts.unchanged, second_counts.quarantined) == (1, 1)
    assert stored_again == [(1,)]
    assert quarantined_again == [(1,)]
    assert_balanced(first)
    assert_balanced(second)


SALESFORCE_CONTACTS = "Id,AccountId,Email,Title\n003Dn00000ABCdeIAH,acme,jane@acme.com,VP\n"


def test_salesforce_id_takes_the_contacts_form(tmp_path: Path) -> None:
    # Contacts loaded by the Salesforce adapter keep 18-character ids. A report export of UserGems
    # fields gives the 15-character form. A 15-digit number names no stored contact in any form.
    crm = (
        "Contact ID,UserGems__Has_Changed_Job__c,UserGems__Changed_Job_Date__c\n"
        "003Dn00000ABCde,true,2024-04-01\n"
        "003dn00000abcdeiah,true,2024-04-02\n"
        "123456789012345,true,2024-04-03\n"
    )
    config = (
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
        '[sources.contacts]\ntable = "contacts"\nformat = "salesforce"\nfiles = ["contacts.csv"]\n\n'
        '[sources.usergems]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["crm.csv"]\n'
    )
    files = {"accounts.csv": ACCOUNTS, "contacts.csv": SALESFORCE_CONTACTS, "crm.csv": crm}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contact_id, changed_at FROM contact_changes ORDER BY changed_at")
    again, store = run_ingest(workspace)
    with store:
        stored_again = rows(store, "SELECT count(*) FROM contact_changes")

    assert stored == [
        ("003Dn00000ABCdeIAH", datetime(2024, 4, 1)),
        ("003Dn00000ABCdeIAH", datetime(2024, 4, 2)),
        ("123456789012345", datetime(2024, 4, 3)),
    ]
    assert stored_again == [(3,)]
    assert counts(again, "usergems").unchanged == 3
    assert_balanced(report)
    assert_balanced(again)


def test_salesforce_id_keeps_15_character_contacts(tmp_path: Path) -> None:
    contacts = "contact_id,account_id,email,title,is_champion\n003Dn00000ABCde,acme,jane@acme.com,VP,true\n"
    changes = [{"contact_id": "003Dn00000ABCdeIAH", "event": "left", "timestamp": "2024-06-01T00:00:00Z"}]
    report, store = run_ingest(_workspace(tmp_path, changes, contacts=contacts))
    with store:
        stored = rows(store, "SELECT contact_id FROM contact_changes")

    assert stored == [("003Dn00000ABCde",)]
    assert_balanced(report)


def test_flag_reads_checkbox_exports(tmp_path: Path) -> None:
    crm = (
        "Id,UserGems__Has_Changed_Job__c,UserGems__Changed_Job_Date__c\n"
        "c1,x,2024-04-01\n"
        "c3,Checked,2024-04-02\n"
        "c4,X,2024-04-03\n"
        "c1,,2024-04-04\n"
        "c3,unchecked,2024-04-05\n"
        "c4,0,2024-04-06\n"
        "c1,maybe,2024-04-07\n"
    )
    config = (
        BASE + '[sources.usergems]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["crm.csv"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "crm.csv": crm}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes ORDER BY changed_at")
        quarantined = rows(store, 'SELECT row_number, "column", reason FROM quarantine')

    assert stored == [("c1", "left_company"), ("c3", "left_company"), ("c4", "left_company")]
    assert counts(report, "usergems").skipped == {"contact without a job change": 3}
    assert len(quarantined) == 1
    assert quarantined[0][:2] == (7, "(whole row)")
    assert "'maybe'" in quarantined[0][2]
    assert_balanced(report)


def test_unknown_change_reason_gives_working_toml(tmp_path: Path) -> None:
    changes = [
        {"contact_id": "c1", "event": "quit", "timestamp": "2024-06-01T00:00:00Z"},
        {"contact_id": "c3", "event": "departed", "timestamp": "2024-06-02T00:00:00Z"},
    ]
    workspace = _workspace(tmp_path, changes)

    first, store = run_ingest(workspace)
    with store:
        reasons = rows(store, "SELECT reason FROM quarantine")
    assert counts(first, "changes").quarantined == 1
    suggested = re.search(r"values\.change = \{[^}]*\}", reasons[0][0])
    assert suggested is not None
    line = suggested.group(0)
    assert line == 'values.change = { "quit" = "left_company" }'

    # The suggested line, written under the source's header as the reason suggests, makes the row load.
    config_path = workspace.root / CONFIG_FILE
    config_path.write_text(config_path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    assert tomllib.loads(config_path.read_text(encoding="utf-8"))["sources"]["changes"]["values"] == {
        "change": {"quit": "left_company"}
    }
    second, store = run_ingest(load_workspace(workspace.root))
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes ORDER BY changed_at")

    assert stored == [("c1", "left_company"), ("c3", "left_company")]
    second_counts = counts(second, "changes")
    assert (second_counts.inserted, second_counts.unchanged, second_counts.quarantined) == (1, 1, 0)
    assert_balanced(first)
    assert_balanced(second)


def test_values_override_a_known_word(tmp_path: Path) -> None:
    # The mapping applies to the label as read, before the built-in words, and only once: "departed"
    # becomes a title change, and the label "title_change" that results is not mapped again.
    changes = [
        {"contact_id": "c1", "event": "departed", "timestamp": "2024-06-01T00:00:00Z"},
        {"contact_id": "c3", "event": "left", "timestamp": "2024-06-02T00:00:00Z"},
        {"contact_id": "c4", "event": "Quit ", "timestamp": "2024-06-03T00:00:00Z"},
    ]
    extra = (
        'values.change = { "departed" = "title_change", "title_change" = "left_company", "Quit" = "left" }\n'
    )
    report, store = run_ingest(_workspace(tmp_path, changes, extra))
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes ORDER BY changed_at")

    assert stored == [("c1", "title_change"), ("c3", "left_company"), ("c4", "left_company")]
    assert_balanced(report)


def test_mapped_label_still_unknown_is_quarantined(tmp_path: Path) -> None:
    changes = [{"contact_id": "c1", "event": "quit", "timestamp": "2024-06-01T00:00:00Z"}]
    extra = 'values.change = { "quit" = "gone" }\n'
    report, store = run_ingest(_workspace(tmp_path, changes, extra))
    with store:
        reasons = rows(store, "SELECT reason FROM quarantine")

    assert len(reasons) == 1
    assert "'quit'" in reasons[0][0]
    assert "'gone'" in reasons[0][0]
    assert_balanced(report)


def test_unknown_change_toml_escapes_label(tmp_path: Path) -> None:
    label = 'said "bye"\\\tnow'
    changes = [{"contact_id": "c1", "event": label, "timestamp": "2024-06-01T00:00:00Z"}]
    report, store = run_ingest(_workspace(tmp_path, changes))
    with store:
        reasons = rows(store, "SELECT reason FROM quarantine")

    suggested = re.search(r"values\.change = \{.*\}", reasons[0][0])
    assert suggested is not None
    assert tomllib.loads(suggested.group(0)) == {"values": {"change": {label: "left_company"}}}
    assert_balanced(report)


def test_flag_row_ignores_its_type_column(tmp_path: Path) -> None:
    # A Salesforce contact export has a Type field (Customer, Partner) beside the UserGems flag.
    crm = "Id,Type,UserGems__Has_Changed_Job__c,UserGems__Changed_Job_Date__c\nc1,Customer,,\nc3,Partner,true,2024-04-02\n"
    config = (
        BASE + '[sources.usergems]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["crm.csv"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "crm.csv": crm}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contact_id, change FROM contact_changes")
        quarantined = rows(store, "SELECT count(*) FROM quarantine")

    assert stored == [("c3", "left_company")]
    assert quarantined == [(0,)]
    assert counts(report, "usergems").skipped == {"contact without a job change": 1}
    assert_balanced(report)
