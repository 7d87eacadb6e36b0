"""CRM rows and identity rules: per-row HubSpot companies, deleted Salesforce records, report rows of
accounts without contacts, group order, job-change labels, id maps, email cells and domains, headers."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from account_health.cli.render_sources import source_notes
from account_health.errors import ConfigError
from account_health.sources.status import source_status
from vendor_workspace import assert_balanced, counts, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\nglobex,Globex\n"
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'


def _source(name: str, table: str, format_name: str, files: str, extra: str = "") -> str:
    return f'[sources.{name}]\ntable = "{table}"\nformat = "{format_name}"\nfiles = [{files}]\n{extra}\n'


def test_hubspot_company_column_chosen_per_row(tmp_path: Path) -> None:
    companies = "Record ID,Company name\n111,Acme\n222,Globex\n"
    contacts = (
        "Record ID,Email,Job Title,Associated Company IDs (Primary),Associated Company IDs\n"
        "1,a@acme.com,VP,111,\n"
        "2,b@globex.com,Engineer,,222;111\n"
        "3,c@globex.com,Head of Ops, 222 ,111\n"
        "4,d@nowhere.com,CEO,,\n"
    )
    config = _source("companies", "accounts", "hubspot", '"companies.csv"') + _source(
        "people", "contacts", "hubspot", '"contacts.csv"'
    )
    workspace = make_workspace(tmp_path, config, {"companies.csv": companies, "contacts.csv": contacts})

    report, store = run_ingest(workspace)
    with store:
        people = rows(store, "SELECT contact_id, account_id FROM contacts ORDER BY 1")

    # Contact 2 has no primary company, so the first of its other company ids is its account.
    assert people == [("1", "111"), ("2", "222"), ("3", "222"), ("4", None)]
    assert counts(report, "people").unattributed == 1
    assert_balanced(report)


def test_salesforce_deleted_records_skipped(tmp_path: Path) -> None:
    accounts = "Id,Name\n001A000001abcDE,Upper\n"
    contacts_csv = (
        "Id,AccountId,Email,Title,Champion__c,IsDeleted\n"
        "003A000000000AA,001A000001abcDE,x@upper.com,VP,true,false\n"
        "003A000000000DA,001A000001abcDE,w@upper.com,CTO,1,true\n"
        "003A000000000EA,001A000001abcDE,v@upper.com,CTO,Yes,\n"
    )
    contacts_json = {
        "totalSize": 2,
        "done": True,
        "records": [
            {"attributes": {"type": "Contact"}, "Id": "003A000000000FA", "AccountId": "001A000001abcDE",
             "Email": "u@upper.com", "Champion__c": True, "IsDeleted": True},
            {"attributes": {"type": "Contact"}, "Id": "003A000000000GA", "AccountId": "001A000001abcDE",
             "Email": "t@upper.com", "Champion__c": False, "IsDeleted": False},
        ],
    }  # fmt: skip
    champion = 'champion = { field = "Champion__c" }\n'
    config = (
        _source("acc", "accounts", "salesforce", '"Account.csv"')
        + _source("bulk", "contacts", "salesforce", '"Contact.csv"', champion)
        + _source("rest", "contacts", "salesforce", '"contacts.json"', champion)
    )
    files = {"Account.csv": accounts, "Contact.csv": contacts_csv, "contacts.json": contacts_json}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT email, is_champion FROM contacts ORDER BY 1")

    # The deleted champion w@ (CSV) and u@ (JSON) count neither as contacts nor as champions.
    assert stored == [("t@upper.com", False), ("v@upper.com", True), ("x@upper.com", True)]
    assert counts(report, "bulk").skipped == {"deleted record": 1}
    assert counts(report, "rest").skipped == {"deleted record": 1}
    assert_balanced(report)


def test_salesforce_report_account_only_rows(tmp_path: Path) -> None:
    report_csv = (
        "\ufeffAccount: Account Name,Account: Type,Contact: Title,Contact: Email\n"
        "Alpha,Partner,VP of Engineering,amy@demo.net\n"
        "Burlington,Customer\n"
        "GenePoint,Customer,,\n"
        "Broken,Customer,CEO,x@demo.net,extra\n"
    )
    config = _source("rep_accounts", "accounts", "salesforce", '"report.csv"') + _source(
        "rep_contacts", "contacts", "salesforce", '"report.csv"'
    )
    workspace = make_workspace(tmp_path, config, {"report.csv": report_csv})

    report, store = run_ingest(workspace)
    with store:
        accounts = rows(store, "SELECT account_id FROM accounts ORDER BY 1")
        contacts = rows(store, "SELECT contact_id, account_id, title FROM contacts")
        quarantined = rows(store, "SELECT source, row_number, reason FROM quarantine ORDER BY 1")

    # Burlington's row ends after the account columns and GenePoint's contact columns are empty:
    # accounts without contacts. A row with too many fields is still quarantined.
    assert accounts == [("Alpha",), ("Burlington",), ("GenePoint",)]
    assert contacts == [("amy@demo.net", "Alpha", "VP of Engineering")]
    assert counts(report, "rep_contacts").skipped == {"account-only report row": 2}
    assert [(source, row) for source, row, _ in quarantined] == [("rep_accounts", 4), ("rep_contacts", 4)]
    assert "expected 4 fields, found 5" in quarantined[0][2]
    assert_balanced(report)


def _amplitude_zip(events: list[dict[str, object]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("1/1_2024-03-01_0#0.json.gz", gzip.compress(json_lines(events).encode()))
    return buffer.getvalue()


def test_amplitude_group_record_order(tmp_path: Path) -> None:
    events = [
        {"uuid": "g-1", "event_type": "Open", "user_id": "ana", "event_time": "2024-03-01 00:10:00",
         "groups": {"team": "globex", "billing": "acme"}},
        {"uuid": "g-2", "event_type": "Open", "user_id": "bo", "event_time": "2024-03-01 00:20:00",
         "groups": {"billing": "acme", "team": "globex"}},
        {"uuid": "g-3", "event_type": "Open", "user_id": "cy", "event_time": "2024-03-01 00:30:00",
         "groups": {"team": "globex", "company": "acme"}},
    ]  # fmt: skip
    config = ACCOUNTS_SOURCE + _source("amp", "usage_events", "amplitude", '"export.zip"')
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.zip": _amplitude_zip(events)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id, account_id FROM usage_events ORDER BY 1")

    # Without a preferred type the record's first group type wins; company wins wherever it is.
    assert stored == [("g-1", "globex"), ("g-2", "acme"), ("g-3", "acme")]
    assert_balanced(report)


def test_job_change_label_spelling(tmp_path: Path) -> None:
    contacts = "contact_id,account_id,email\nc1,acme,ana@acme.com\n"
    changes = (
        "contact_id,event,date\n"
        "c1,Left Company,2025-03-02\n"
        "c1,left-company,2025-03-03\n"
        "c1,LEFT,2025-03-04\n"
        "c1,Hard Bounce,2025-03-05\n"
        "c1,not left,2025-03-06\n"
    )
    config = (
        ACCOUNTS_SOURCE
        + '[sources.contacts]\ntable = "contacts"\nfiles = ["contacts.csv"]\n\n'
        + _source(
            "jc", "contact_changes", "job_changes", '"changes.csv"', 'columns = { changed_at = "date" }\n'
        )
    )
    files = {"accounts.csv": ACCOUNTS, "contacts.csv": contacts, "changes.csv": changes}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT change, changed_at FROM contact_changes ORDER BY 2")
        quarantined = rows(store, "SELECT row_number, reason FROM quarantine")

    assert stored == [
        ("left_company", datetime(2025, 3, 2)),
        ("left_company", datetime(2025, 3, 3)),
        ("left_company", datetime(2025, 3, 4)),
        ("email_bounced", datetime(2025, 3, 5)),
    ]
    assert [row for row, _ in quarantined] == [5]
    assert "change 'not left' is not a known job change" in quarantined[0][1]
    assert_balanced(report)


def test_id_map_wins_over_account_id(tmp_path: Path) -> None:
    accounts = "account_id,name\n111,Acme (HubSpot 111)\n222,Globex (HubSpot 222)\n"
    tickets = "ticket_id,org,created_at,priority,status\nt1,222,2025-03-01,urgent,open\nt2,111,2025-03-01,low,open\n"
    config = (
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
        '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\ncolumns = { account_id = "org" }\n\n'
        '[sources.tickets.identity]\nids = { "222" = "111" }\n'
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": accounts, "tickets.csv": tickets})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, account_id FROM tickets ORDER BY 1")

    # Zendesk organisation 222 is the HubSpot company 111, as the map states, though 222 is an account id too.
    assert stored == [("t1", "111"), ("t2", "111")]
    assert_balanced(report)


def test_email_names_and_subdomains(tmp_path: Path) -> None:
    accounts = "account_id,name\nacme,Acme\nacme-eu,Acme EU\nglobex,Globex\n"
    contacts = "contact_id,account_id,email\nk1,globex,Boss@Acme.com\n"
    tickets = (
        "ticket_id,org,created_at,priority,status,requester_email\n"
        "t1,org-9,2025-03-01,high,open,Jane Doe <jane@acme.com>\n"
        "t2,org-9,2025-03-01,high,open,j@support.acme.com\n"
        "t3,org-9,2025-03-01,high,open,k@eu.acme.com\n"
        "t4,org-9,2025-03-01,high,open,m@mail.eu.acme.com\n"
        't5,org-9,2025-03-01,high,open,"""The Boss"" <boss@acme.com>"\n'
        "t6,org-9,2025-03-01,high,open,x@notacme.com\n"
        "t7,org-9,2025-03-01,high,open,x@mail.gmail.com\n"
    )
    config = (
        '[identity]\nemail_domains = { "acme.com" = "acme", "eu.acme.com" = "acme-eu" }\n\n'
        + ACCOUNTS_SOURCE
        + '[sources.contacts]\ntable = "contacts"\nfiles = ["contacts.csv"]\n\n'
        '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\ncolumns = { account_id = "org" }\n\n'
        '[sources.tickets.identity]\nemail = "requester_email"\n'
    )
    files = {"accounts.csv": accounts, "contacts.csv": contacts, "tickets.csv": tickets}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, account_id FROM tickets ORDER BY 1")

    # The nearest mapped parent domain wins; notacme.com is not a subdomain of acme.com; the boss
    # is a known contact of globex.
    assert stored == [
        ("t1", "acme"),
        ("t2", "acme"),
        ("t3", "acme-eu"),
        ("t4", "acme-eu"),
        ("t5", "globex"),
        ("t6", "org-9"),
        ("t7", "org-9"),
    ]
    assert counts(report, "tickets").unattributed == 2
    assert_balanced(report)


def test_mapped_ignored_domain_rejected(tmp_path: Path) -> None:
    config = (
        '[identity]\nemail_domains = { "acme.com" = "acme", "Gmail.com" = "globex" }\n\n' + ACCOUNTS_SOURCE
    )
    with pytest.raises(ConfigError) as error:
        make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS})

    message = str(error.value)
    assert "email_domains maps 'Gmail.com' to 'globex', but ignored_domains lists 'Gmail.com'" in message
    assert "set ignored_domains to a list without it" in message


def test_own_ignored_domains_allow_webmail(tmp_path: Path) -> None:
    tickets = "ticket_id,org,created_at,priority,status,email\nt1,org-9,2025-03-01,high,open,x@gmail.com\n"
    config = (
        '[identity]\nemail_domains = { "gmail.com" = "globex" }\nignored_domains = ["outlook.com"]\n\n'
        + ACCOUNTS_SOURCE
        + '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\ncolumns = { account_id = "org" }\n\n'
        '[sources.tickets.identity]\nemail = "email"\n'
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    report, store = run_ingest(workspace)
    with store:
        assert rows(store, "SELECT account_id FROM tickets") == [("globex",)]
    assert_balanced(report)


def test_survey_email_header_in_any_case(tmp_path: Path) -> None:
    upper = "Response ID,Date,EMAIL,Score\ns1,2025-03-01,b@globex.com,5\ns2,2025-03-01,a@ACME.com,4\n"
    config = (
        '[identity]\nemail_domains = { "acme.com" = "acme", "globex.com" = "globex" }\n\n'
        + ACCOUNTS_SOURCE
        + _source(
            "survey",
            "sentiment_responses",
            "nps",
            '"survey.csv"',
            'columns = { response_id = "Response ID", responded_at = "Date", score = "Score" }\n'
            'constants = { kind = "survey", scale = "1-5" }\n',
        )
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "survey.csv": upper})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, account_id FROM sentiment_responses ORDER BY 1")

    assert stored == [("s1", "globex"), ("s2", "acme")]
    assert counts(report, "survey").unattributed == 0
    assert_balanced(report)


def test_missing_email_column_named(tmp_path: Path) -> None:
    survey = "Response ID,Date,Mail,Score\ns1,2025-03-01,b@globex.com,5\n"
    config = (
        '[identity]\nemail_domains = { "globex.com" = "globex" }\n\n'
        + ACCOUNTS_SOURCE
        + _source(
            "survey",
            "sentiment_responses",
            "nps",
            '"survey.csv"',
            'columns = { response_id = "Response ID", responded_at = "Date", score = "Score" }\n',
        )
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "survey.csv": survey})

    report, store = run_ingest(workspace)
    with store:
        notes = source_notes(source_status(workspace, store))

    note = (
        "(no account id) (no row has a column headed 'email' (in any case), which the identity rules read, "
        "so those rules were not tried; set [sources.survey.identity] email to the header of the column "
        "of email addresses in your files)"
    )
    assert counts(report, "survey").unattributed_examples == [note]
    assert f"survey: unattributed rows include account ids {note}" in notes
    assert_balanced(report)


def test_identity_email_header_any_case(tmp_path: Path) -> None:
    tickets = (
        "ticket_id,org,created_at,priority,status,Requester Email\nt1,org-9,2025-03-01,high,open,x@acme.com\n"
    )
    config = (
        '[identity]\nemail_domains = { "acme.com" = "acme" }\n\n'
        + ACCOUNTS_SOURCE
        + '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\ncolumns = { account_id = "org" }\n\n'
        '[sources.tickets.identity]\nemail = "requester email"\n'
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    report, store = run_ingest(workspace)
    with store:
        assert rows(store, "SELECT account_id FROM tickets") == [("acme",)]
    assert_balanced(report)


def test_excel_empty_trailing_headers(tmp_path: Path) -> None:
    excel = "account_id,name,timezone,,\nX1,Excel Co,UTC,,\nX2,Excel Two,UTC,,note\n"
    config = '[sources.excel]\ntable = "accounts"\nfiles = ["excel.csv"]\n'
    workspace = make_workspace(tmp_path, config, {"excel.csv": excel})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, name, timezone FROM accounts ORDER BY 1")

    assert stored == [("X1", "Excel Co", "UTC"), ("X2", "Excel Two", "UTC")]
    assert counts(report, "excel").quarantined == 0
    assert_balanced(report)


def test_unnamed_column_mapped_by_place(tmp_path: Path) -> None:
    excel = "account_id,,timezone\nX1,Excel Co,UTC\n"
    config = '[sources.excel]\ntable = "accounts"\nfiles = ["excel.csv"]\ncolumns = { name = "unnamed_2" }\n'
    workspace = make_workspace(tmp_path, config, {"excel.csv": excel})

    report, store = run_ingest(workspace)
    with store:
        assert rows(store, "SELECT account_id, name FROM accounts") == [("X1", "Excel Co")]
    assert_balanced(report)
