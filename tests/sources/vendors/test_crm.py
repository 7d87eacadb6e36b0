"""Salesforce and HubSpot exports and Fivetran tables: accounts, contacts, contracts, champions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from account_health.sources.salesforce_ids import checksum, forms, is_salesforce_id, normalise
from vendor_workspace import assert_balanced, counts, make_workspace, rows, run_ingest


def _source(name: str, table: str, format_name: str, files: str, extra: str = "") -> str:
    return f'[sources.{name}]\ntable = "{table}"\nformat = "{format_name}"\nfiles = [{files}]\n{extra}\n'


def test_salesforce_id_forms() -> None:
    id15 = "001A0000001abcD"
    id18 = id15 + checksum(id15)

    assert is_salesforce_id(id15)
    assert is_salesforce_id(id18)
    assert normalise(id15) == id18
    assert normalise(id18.lower()) == id18
    assert normalise("001A0000001abcd") != id18
    assert forms(id15) == sorted({id15, id18})
    assert normalise("not-an-id") == "not-an-id"
    assert not is_salesforce_id(id15 + "AAA")


def test_salesforce_forms_match_and_never_collide(tmp_path: Path) -> None:
    upper, lower = "001A0000001abcD", "001A0000001abcd"
    query = {
        "totalSize": 2,
        "done": True,
        "records": [
            {"attributes": {"type": "Account", "url": "/x"}, "Id": normalise(upper), "Name": "Upper"},
            {"attributes": {"type": "Account", "url": "/y"}, "Id": normalise(lower), "Name": "Lower"},
            {"attributes": {"type": "Opportunity", "url": "/z"}, "Id": "006A0000001abcd", "Name": "Deal"},
        ],
    }
    contacts = (
        "Id,AccountId,Email,Title\n"
        f"003A0000001aaaa,{upper},a@upper.com,VP Operations\n"
        f"003A0000001aaab,{normalise(upper).lower()},b@upper.com,Analyst\n"
        f"003A0000001aaac,{lower},c@lower.com,Head of Data\n"
    )
    config = _source("sf_accounts", "accounts", "salesforce", '"accounts.json"') + _source(
        "sf_contacts",
        "contacts",
        "salesforce",
        '"contacts.csv"',
        '[sources.sf_contacts.champion]\ntitle_pattern = "^(vp|head)\\\\b"\n',
    )
    workspace = make_workspace(tmp_path, config, {"accounts.json": query, "contacts.csv": contacts})

    report, store = run_ingest(workspace)
    with store:
        accounts = dict(rows(store, "SELECT name, account_id FROM accounts"))
        stored = rows(
            store, "SELECT contact_id, account_id, is_champion, _unattributed FROM contacts ORDER BY 1"
        )

    assert accounts == {"Upper": normalise(upper), "Lower": normalise(lower)}
    assert stored == [
        (normalise("003A0000001aaaa"), normalise(upper), True, False),
        (normalise("003A0000001aaab"), normalise(upper), False, False),
        (normalise("003A0000001aaac"), normalise(lower), True, False),
    ]
    assert counts(report, "sf_accounts").skipped == {"Opportunity record": 1}
    assert_balanced(report)


def test_shared_sobject_tree_and_report(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "salesforce"
    config = (
        _source("sf_accounts", "accounts", "salesforce", f'"{folder}/Accounts.json"')
        + _source(
            "sf_contacts",
            "contacts",
            "salesforce",
            f'"{folder}/Contacts.json"',
            '[sources.sf_contacts.champion]\ntitle_pattern = "^(vp|ceo)\\\\b"\n',
        )
        + _source("report", "contacts", "salesforce", f'"{folder}/Accounts-Contacts.csv"')
    )
    workspace = make_workspace(tmp_path, config, {})

    report, store = run_ingest(workspace)
    with store:
        accounts = rows(store, "SELECT account_id, name FROM accounts ORDER BY 1")
        tree = rows(
            store,
            "SELECT account_id, email, is_champion FROM contacts WHERE _source = 'sf_contacts' ORDER BY email",
        )
        from_report = rows(
            store, "SELECT contact_id, account_id, title FROM contacts WHERE _source = 'report' ORDER BY 1"
        )

    assert accounts[0] == ("AccountRef1", "Alpha Dynamics")
    assert len(accounts) == counts(report, "sf_accounts").read
    assert ("AccountRef1", "amy@demo.net", True) in tree
    assert all(account.startswith("AccountRef") for account, _, _ in tree)
    # The report export has no id columns: contacts are keyed by email and accounts by name.
    assert ("amy@demo.net", "Alpha Dynamics", "VP of Engineering") in from_report
    assert_balanced(report)


def test_shared_fivetran_salesforce(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "fivetran_salesforce"
    config = _source(
        "accounts", "accounts", "fivetran_salesforce", f'"{folder}/sf_account_data.csv"'
    ) + _source("contacts", "contacts", "fivetran_salesforce", f'"{folder}/sf_contact_data.csv"')
    workspace = make_workspace(tmp_path, config, {})

    report, store = run_ingest(workspace)
    with store:
        accounts = rows(store, "SELECT account_id, name, crm_id FROM accounts")
        contacts = rows(store, "SELECT count(*) FROM contacts")[0][0]

    # Nine of the ten accounts are deleted in Salesforce: skipped and counted, not stored.
    assert accounts == [("0015500000Xyy06AAB", "Eric's Test", "0015500000Xyy06AAB")]
    assert counts(report, "accounts").skipped == {"deleted record": 9}
    assert contacts == 4
    assert_balanced(report)


def test_hubspot_export_and_email_domains(tmp_path: Path) -> None:
    companies = "Record ID,Company name,Company Domain Name\n101,Acme,acme.com\n102,Globex,globex.com\n"
    contacts = (
        "Record ID,First Name,Email,Job Title,Associated Company IDs\n"
        "1,Ana,ana@acme.com,Champion of Ops,101;102\n"
        "2,Bo,bo@globex.com,Analyst,\n"
        "3,Cy,cy@gmail.com,CTO,\n"
    )
    deals = "Record ID,Deal Name,Amount,Close Date,Associated Company IDs\n9,Renewal,12000,2024-02-01,102\n"
    config = (
        _source("companies", "accounts", "hubspot", '"companies.csv"')
        + _source(
            "people", "contacts", "hubspot", '"contacts.csv"', '[sources.people.identity]\nemail = "Email"\n'
        )
        + _source("deals", "contracts", "hubspot", '"deals.csv"')
        + '[identity]\nemail_domains = { "globex.com" = "102" }\n'
    )
    files = {"companies.csv": companies, "contacts.csv": contacts, "deals.csv": deals}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        people = rows(store, "SELECT contact_id, account_id FROM contacts ORDER BY 1")
        contracts = rows(store, "SELECT contract_id, account_id, start_at, arr FROM contracts")

    # Nothing maps gmail.com, a personal-mail domain.
    assert people == [("1", "101"), ("2", "102"), ("3", None)]
    assert contracts == [("9", "102", datetime(2024, 2, 1), 12000.0)]
    assert counts(report, "people").unattributed_examples == ["(no account id) with email 'cy@gmail.com'"]
    assert_balanced(report)


def test_hubspot_export_headers_any_case(tmp_path: Path) -> None:
    # Headers as HubSpot writes them today (with a BOM) in companies, and as older or
    # differently-cased exports write them in contacts and deals.
    companies = (
        "\ufeffRecord ID,Company name,Company owner,Create Date,Company Domain Name,Annual Revenue\n"
        "101,Acme,Dana Reyes,2023-05-01 10:00,acme.com,250000\n"
    )
    contacts = (
        "Contact ID,First Name,Last Name,Email Address,Job title,Associated Company,Associated Company IDs\n"
        "1,Ana,Silva,ana@acme.com,VP Ops,Acme,101\n"
    )
    deals = (
        "Deal ID,Deal Name,Deal Stage,CLOSE DATE,amount,Associated Company IDs (Primary),Associated Company IDs\n"
        "9,Renewal,Closed won,2024-02-01,12000,101,101;102\n"
    )
    config = (
        _source("companies", "accounts", "hubspot", '"companies.csv"')
        + _source("people", "contacts", "hubspot", '"contacts.csv"')
        + _source("deals", "contracts", "hubspot", '"deals.csv"')
    )
    files = {"companies.csv": companies, "contacts.csv": contacts, "deals.csv": deals}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        accounts = rows(store, "SELECT account_id, name, crm_id, owner, arr FROM accounts")
        people = rows(store, "SELECT contact_id, account_id, email, title FROM contacts")
        contracts = rows(store, "SELECT contract_id, account_id, start_at, arr FROM contracts")

    assert accounts == [("101", "Acme", "101", "Dana Reyes", 250000.0)]
    assert people == [("1", "101", "ana@acme.com", "VP Ops")]
    assert contracts == [("9", "101", datetime(2024, 2, 1), 12000.0)]
    assert sum(source.quarantined for source in report.sources) == 0
    assert_balanced(report)


def test_shared_fivetran_hubspot(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "fivetran_hubspot"
    deal_files = f'"{folder}/deal_data.csv", "mine/deal_data.csv", "mine/deal_company_data.csv"'
    config = (
        _source("companies", "accounts", "fivetran_hubspot", f'"{folder}/company_data.csv"')
        + _source("people", "contacts", "fivetran_hubspot", f'"{folder}/contact_data.csv"')
        + _source("deals", "contracts", "fivetran_hubspot", deal_files)
    )
    # The sample deals have no close date; a deal of our own, linked to a sample company, has one.
    deals = "deal_id,is_deleted,property_amount,property_closedate\n77,false,5000,2024-05-01 00:00:00\n"
    links = "company_id,deal_id,type_id,category\n2182162682,77,5,HUBSPOT_DEFINED\n"
    files = {"mine/deal_data.csv": deals, "mine/deal_company_data.csv": links}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        linked = rows(store, "SELECT contract_id, account_id, arr, _unattributed FROM contracts")
        companies = rows(store, "SELECT count(*) FROM accounts")[0][0]
        reasons = rows(store, "SELECT DISTINCT reason FROM quarantine WHERE source = 'deals'")

    assert linked == [("77", "2182162682", 5000.0, False)]
    assert counts(report, "deals").quarantined == 44
    assert reasons == [("missing required value for contracts.start_at",)]
    assert companies == counts(report, "companies").read
    assert counts(report, "deals").skipped == {"deal_company link": 1}
    assert counts(report, "people").read == 22
    assert_balanced(report)


def test_json_lines_salesforce_contacts(tmp_path: Path) -> None:
    lines = "\n".join(
        json.dumps(
            {
                "attributes": {"type": "Contact"},
                "Id": f"003A0000001aa{i:02d}",
                "AccountId": "001A0000001abcD",
                "Champion__c": i % 2 == 0,
            }
        )
        for i in range(4)
    )
    config = _source(
        "people",
        "contacts",
        "salesforce",
        '"contacts.jsonl"',
        '[sources.people.champion]\nfield = "Champion__c"\n',
    )
    workspace = make_workspace(tmp_path, config, {"contacts.jsonl": lines})

    report, store = run_ingest(workspace)
    with store:
        champions = rows(store, "SELECT count(*) FILTER (WHERE is_champion), count(*) FROM contacts")[0]

    assert champions == (2, 4)
    assert_balanced(report)


def test_shared_salesforce_activity(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "fivetran_salesforce"
    config = _source(
        "activity",
        "contact_activity",
        "fivetran_salesforce",
        f'"{folder}/sf_task_data.csv", "{folder}/sf_event_data.csv", "tasks.csv"',
    )
    tasks = "id,who_id,activity_date,task_subtype,type,is_deleted\nT1,0031G00000xOrznQAC,2019-11-11,Email,,false\n"
    workspace = make_workspace(tmp_path, config, {"tasks.csv": tasks})

    report, store = run_ingest(workspace)
    with store:
        totals = rows(store, "SELECT sum(emails), sum(meetings), count(*) FROM contact_activity")[0]
        repeated = rows(
            store, "SELECT emails, meetings FROM contact_activity WHERE contact_id = '0031G00000xOrznQAC'"
        )

    # Ten events are meetings; the sample's tasks are neither emails nor calls; our task is an email.
    assert totals[:2] == (1.0, 10.0)
    assert repeated == [(1.0, 0.0)]
    assert counts(report, "activity").read == 21
    assert_balanced(report)
