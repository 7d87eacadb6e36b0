"""NPS and survey exports, call sentiment, and job-change feeds, ingested into DuckDB."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from account_health.signals import compute_signals
from vendor_workspace import assert_balanced, counts, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\nglobex,Globex\n"
CONTACTS = "contact_id,account_id,email,title,is_champion\nc1,acme,ana@acme.com,VP,true\nc2,globex,bo@globex.com,CTO,true\n"
BASE = (
    '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
    '[sources.contacts]\ntable = "contacts"\nfiles = ["contacts.csv"]\n\n'
)


def test_nps_answer_label_not_position(tmp_path: Path) -> None:
    answers = [
        {
            "id": "r1",
            "email": "ana@acme.com",
            "created_at": "2024-03-01T10:00:00Z",
            "answer": {"label": "9", "position": 10},
        },
        {
            "id": "r2",
            "email": "bo@globex.com",
            "created_at": "2024-03-02T10:00:00Z",
            "answer": "3 - Unlikely",
        },
        {"id": "r3", "email": "BO@globex.com", "created_at": "2024-03-03T10:00:00Z", "answer": None},
        {
            "id": "r4",
            "email": "cy@globex.com",
            "created_at": "2024-03-04T10:00:00Z",
            "answer": "10",
            "status": "dismissed",
        },
        {
            "id": "r5",
            "email": "dee@globex.com",
            "created_at": "2024-03-05T10:00:00Z",
            "answer": "very likely",
        },
        {"id": "r6", "email": "eve@initech.com", "created_at": "2024-03-06T10:00:00Z", "answer": "7"},
    ]
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.jsonl"]\n'
        'columns = { response_id = "id", responded_at = "created_at", score = "answer" }\n'
        '[identity]\nemail_domains = { "globex.com" = "globex" }\n'
    )
    workspace = make_workspace(
        tmp_path,
        config,
        {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.jsonl": json_lines(answers)},
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store, "SELECT response_id, account_id, score, dismissed FROM sentiment_responses ORDER BY 1"
        )
        quarantined = rows(store, "SELECT row_number, reason FROM quarantine")
        signals = compute_signals(workspace, store, [datetime(2024, 4, 1)]).set_index("account_id")

    assert stored == [
        ("r1", "acme", 9.0, False),
        ("r2", "globex", 3.0, False),
        ("r3", "globex", None, True),
        ("r4", "globex", None, True),
        ("r6", None, 7.0, False),
    ]
    assert [row for row, _ in quarantined] == [5]
    assert "holds no number" in quarantined[0][1]
    nps = counts(report, "nps")
    assert (nps.read, nps.inserted, nps.quarantined, nps.dismissed, nps.unattributed) == (6, 5, 1, 2, 1)
    # Dismissed answers are neither detractors nor zeros: globex's latest NPS is its 3.
    assert signals.loc["globex", "nps_latest"] == 3.0
    assert signals.loc["acme", "nps_latest"] == 9.0
    assert_balanced(report)


def test_nps_score_counts_whatever_status(tmp_path: Path) -> None:
    """A score is a scored response unless the status is dismissed, declined or skipped."""
    cases = [
        ("r1", "closed", "9", 9.0, False),
        ("r2", "completed", "0", 0.0, False),
        ("r3", "Closed", "", None, True),
        ("r4", "unanswered", "6", 6.0, False),
        ("r5", "declined", "8", None, True),
        ("r6", "Skipped", "4", None, True),
        ("r8", "", "10", 10.0, False),
        ("r7", "dismissed", "", None, True),
    ]
    answers = "id,account,created_at,status,answer\n" + "".join(
        f"{response},acme,2024-03-0{number}T10:00:00Z,{status},{answer}\n"
        for number, (response, status, answer, _, _) in enumerate(cases, start=1)
    )
    # A score outside 0-10 is quarantined, whatever the status, rather than stored as dismissed.
    answers += "r9,acme,2024-03-09T10:00:00Z,closed,11\n"
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.csv"]\n'
        'columns = { response_id = "id", account_id = "account", responded_at = "created_at", score = "answer" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.csv": answers}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, score, dismissed FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value, reason FROM quarantine')
        signals = compute_signals(workspace, store, [datetime(2024, 4, 1)]).set_index("account_id")

    assert stored == sorted((response, score, dismissed) for response, _, _, score, dismissed in cases)
    nps = counts(report, "nps")
    assert quarantined == [(9, "score", "11", "NPS score '11' is outside 0-10")]
    assert (nps.read, nps.inserted, nps.quarantined, nps.dismissed) == (9, 8, 1, 4)
    # The latest response, r7, is dismissed, so it is not a zero: the latest NPS stays r8's 10.
    assert signals.loc["acme", "nps_latest"] == 10.0
    assert_balanced(report)


def test_survey_scale_and_csv_labels(tmp_path: Path) -> None:
    survey = (
        "Response ID,Account,Submitted,How satisfied are you?\n"
        "s1,acme,2024-03-01,4 - Satisfied\n"
        "s2,acme,2024-03-02,\n"
        "s3,globex,2024-03-03,6\n"
    )
    config = BASE + (
        '[sources.csat]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["csat.csv"]\n'
        'columns = { response_id = "Response ID", account_id = "Account", responded_at = "Submitted", '
        'score = "How satisfied are you?" }\nconstants = { kind = "survey", scale = "1-5" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "csat.csv": survey}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, score, dismissed FROM sentiment_responses ORDER BY 1")
        reasons = rows(store, "SELECT reason FROM quarantine")

    assert stored == [("s1", 4.0, False), ("s2", None, True)]
    assert reasons == [
        (
            "survey score '6' is outside its scale '1-5'; give the scale the survey used in its scale "
            "column or [sources.csat.constants] scale",
        )
    ]
    assert_balanced(report)


def test_call_sentiment_tags_and_scores(tmp_path: Path) -> None:
    calls = (
        "call_id,account_id,started_at,sentiment\n"
        "k1,acme,2024-03-01T10:00:00Z,Positive\n"
        "k2,acme,2024-03-02T10:00:00Z,-0.6\n"
        "k3,globex,2024-03-03T10:00:00Z,0.1\n"
        "k4,globex,2024-03-04T10:00:00Z,\n"
        "k5,globex,2024-03-05T10:00:00Z,furious\n"
        "k6,globex,2024-03-06T10:00:00Z,2.0\n"
        "k7,globex,2024-03-07T10:00:00Z,NaN\n"
    )
    config = (
        BASE + '[sources.calls]\ntable = "sentiment_responses"\nformat = "calls"\nfiles = ["calls.csv"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "calls.csv": calls}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, kind, tag, dismissed FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column" FROM quarantine ORDER BY row_number')
        reasons = rows(store, "SELECT reason FROM quarantine WHERE row_number > 5 ORDER BY row_number")

    assert stored == [
        ("k1", "call", "positive", False),
        ("k2", "call", "negative", False),
        ("k3", "call", "neutral", False),
        ("k4", "call", None, True),
    ]
    assert quarantined == [(5, "tag"), (6, "(whole row)"), (7, "(whole row)")]
    assert reasons == [
        (
            "call sentiment score '2.0' is outside -1 to 1; export the tool's score on that scale, "
            "or its positive, neutral or negative label",
        ),
        (
            "call sentiment score 'NaN' is outside -1 to 1; export the tool's score on that scale, "
            "or its positive, neutral or negative label",
        ),
    ]
    assert_balanced(report)


def test_job_changes_from_crm_webhook_and_bounces(tmp_path: Path) -> None:
    crm = (
        "Id,Email,UserGems__Has_Changed_Job__c,UserGems__Changed_Job_Date__c\n"
        "c1,ana@acme.com,true,2024-04-01\n"
        "c2,bo@globex.com,false,\n"
    )
    webhook = [
        {
            "event": "contact.left_company",
            "contact": {"id": "c2", "email": "bo@globex.com"},
            "occurred_at": "2024-05-01T00:00:00Z",
        },
        {"event": "promotion", "contact": {"email": "ana@acme.com"}, "occurred_at": "2024-05-02T00:00:00Z"},
    ]
    bounces = [
        {"email": "bo@globex.com", "event": "bounce", "timestamp": 1717200000},
        {"email": "bo@globex.com", "event": "delivered", "timestamp": 1717200001},
        {"email": "nobody@globex.com", "event": "bounce", "timestamp": 1717200002},
    ]
    config = BASE + (
        '[sources.usergems]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["crm.csv"]\n\n'
        '[sources.hooks]\ntable = "contact_changes"\nformat = "job_changes"\nfiles = ["hooks.json", "bounces.jsonl"]\n'
    )
    files = {
        "accounts.csv": ACCOUNTS,
        "contacts.csv": CONTACTS,
        "crm.csv": crm,
        "hooks.json": webhook,
        "bounces.jsonl": json_lines(bounces),
    }
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contact_id, change, changed_at FROM contact_changes ORDER BY changed_at")
        quarantined = rows(store, 'SELECT file, row_number, "column", value FROM quarantine')

    assert stored == [
        ("c1", "left_company", datetime(2024, 4, 1)),
        ("c2", "left_company", datetime(2024, 5, 1)),
        ("c1", "title_change", datetime(2024, 5, 2)),
        ("c2", "email_bounced", datetime(2024, 6, 1)),
    ]
    assert quarantined == [("bounces.jsonl", 3, "contact_id", "nobody@globex.com")]
    assert counts(report, "usergems").skipped == {"contact without a job change": 1}
    assert counts(report, "hooks").skipped == {"delivered event": 1}
    assert_balanced(report)


def test_responses_without_id_from_different_people_stay_apart(tmp_path: Path) -> None:
    # Two people who gave a 9 on one day share every canonical column, so only their emails differ.
    answers = "Date,Email,Score\n2025-03-01,ann@globex.com,9\n2025-03-01,bob@globex.com,9\n2025-03-01,cat@globex.com,2\n"
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.csv"]\n'
        'columns = { responded_at = "Date", score = "Score" }\nidentity = { email = "Email" }\n'
        '[identity]\nemail_domains = { "globex.com" = "globex" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.csv": answers}
    )

    report, store = run_ingest(workspace)
    with store:
        scores = rows(
            store, "SELECT score FROM sentiment_responses WHERE account_id = 'globex' ORDER BY score"
        )
    nps = counts(report, "nps")

    assert scores == [(2.0,), (9.0,), (9.0,)]
    assert (nps.inserted, nps.unchanged) == (3, 0)
    assert_balanced(report)


def test_nps_row_declaring_other_scale_quarantined(tmp_path: Path) -> None:
    """An NPS row with a scale other than 0-10 is quarantined, never rescaled or read as out of 10."""
    responses = (
        "response_id,account_id,responded_at,kind,score,scale\n"
        "r1,acme,2025-03-10T00:00:00Z,nps,4,1-5\n"
        "r2,acme,2025-03-11T00:00:00Z,nps,9,0-10\n"
        "r3,globex,2025-03-10T00:00:00Z,nps,7,\n"
        "r4,globex,2025-03-11T00:00:00Z,survey,4,1-5\n"
        "r5,globex,2025-03-12T00:00:00Z,nps,,1-5\n"
    )
    config = BASE + '[sources.responses]\ntable = "sentiment_responses"\nfiles = ["responses.csv"]\n'
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "responses.csv": responses}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, kind, score FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value, reason FROM quarantine ORDER BY 1')

    assert stored == [("r2", "nps", 9.0), ("r3", "nps", 7.0), ("r4", "survey", 4.0)]
    assert [(row, column, value) for row, column, value, _ in quarantined] == [
        (1, "scale", "1-5"),
        (5, "scale", "1-5"),
    ]
    reason = quarantined[0][3]
    assert "NPS is scored 0-10" in reason
    assert "'1-5'" in reason
    assert 'kind = "survey"' in reason
    assert_balanced(report)


def test_nps_format_scale_without_kind(tmp_path: Path) -> None:
    """The nps format's default kind is nps, so a declared scale without kind = "survey" is not applied."""
    answers = "id,account,created_at,answer\nr1,acme,2024-03-01T10:00:00Z,4\n"
    config = BASE + (
        '[sources.csat]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["csat.csv"]\n'
        'columns = { response_id = "id", account_id = "account", responded_at = "created_at", score = "answer" }\n'
        'constants = { scale = "1-5" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "csat.csv": answers}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id FROM sentiment_responses")
        quarantined = rows(store, 'SELECT "column", value, reason FROM quarantine')

    assert stored == []
    assert len(quarantined) == 1
    assert quarantined[0][:2] == ("scale", "1-5")
    assert "[sources.csat.constants]" in quarantined[0][2]
    assert_balanced(report)


def test_nps_score_whole_number_in_digits(tmp_path: Path) -> None:
    """An NPS score is a whole number 0-10 in decimal digits; 9.0 reads as 9, other forms are quarantined."""
    cases = [
        ("n1", "9 - Very likely", 9.0),
        ("n2", "10/10", 10.0),
        ("n3", "Extremely likely (10)", 10.0),
        ("n4", "9.0", 9.0),
        ("n5", "0 - Not at all likely", 0.0),
        ("n6", "1e1", None),
        ("n7", "0x9", None),
        ("n8", "9.5", None),
        ("n9", "\u0669", None),
        ("n10", "1_0", None),
        ("n11", "9pts", None),
    ]
    answers = "id,account,created_at,answer\n" + "".join(
        f"{response},acme,2025-03-01,{answer}\n" for response, answer, _ in cases
    )
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.csv"]\n'
        'columns = { response_id = "id", account_id = "account", responded_at = "created_at", score = "answer" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.csv": answers}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = dict(rows(store, "SELECT response_id, score FROM sentiment_responses"))
        quarantined = {
            row: reason for row, reason in rows(store, "SELECT row_number, reason FROM quarantine")
        }

    assert stored == {response: score for response, _, score in cases if score is not None}
    rejected = {number: answer for number, (_, answer, score) in enumerate(cases, start=1) if score is None}
    assert sorted(quarantined) == sorted(rejected)
    for number, answer in rejected.items():
        assert f"'{answer}'" in quarantined[number], (answer, quarantined[number])
    assert "whole number from 0 to 10" in quarantined[8]
    assert_balanced(report)


def test_nps_kind_column_score_whole_number(tmp_path: Path) -> None:
    """Without a vendor format, an NPS score is still read only from a whole number in decimal digits."""
    responses = (
        "response_id,account_id,responded_at,kind,score\n"
        "r1,acme,2025-03-10T00:00:00Z,nps,1e1\n"
        "r2,acme,2025-03-10T00:00:00Z,nps,9.5\n"
        "r3,acme,2025-03-10T00:00:00Z,nps, 9.0 \n"
        "r4,acme,2025-03-10T00:00:00Z,nps,11\n"
    )
    config = BASE + '[sources.responses]\ntable = "sentiment_responses"\nfiles = ["responses.csv"]\n'
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "responses.csv": responses}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, score FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value, reason FROM quarantine ORDER BY 1')

    assert stored == [("r3", 9.0)]
    assert [(row, column) for row, column, _, _ in quarantined] == [(1, "score"), (2, "score"), (4, "score")]
    assert quarantined[0][2] == "1e1"
    assert "'1e1'" in quarantined[0][3]
    assert quarantined[1][2] == "9.5"
    assert "whole number from 0 to 10" in quarantined[1][3]
    assert quarantined[2][2] == "11"
    assert quarantined[2][3] == "NPS score '11' is outside 0-10"
    assert_balanced(report)


def test_nps_answer_object_in_csv_cell(tmp_path: Path) -> None:
    """An answer object written as JSON text in a CSV cell is read from its label, never its position."""
    answers = [
        ("r1", '{"label": "7", "position": 8}'),
        ("r2", '{"label": "9 - Very likely", "position": 10}'),
        ("r3", '{"position": 8}'),
        ("r4", '{"label": "Very likely", "position": 10}'),
    ]
    text = "id,account,created_at,answer\n" + "".join(
        '{},acme,2025-03-01,"{}"\n'.format(response, answer.replace('"', '""'))
        for response, answer in answers
    )
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.csv"]\n'
        'columns = { response_id = "id", account_id = "account", responded_at = "created_at", score = "answer" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.csv": text}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, score FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, "SELECT row_number, reason FROM quarantine ORDER BY 1")

    assert stored == [("r1", 7.0), ("r2", 9.0)]
    assert [row for row, _ in quarantined] == [3, 4]
    assert "no label" in quarantined[0][1]
    assert "position" in quarantined[0][1]
    assert "holds no number" in quarantined[1][1]
    assert_balanced(report)


def test_nps_json_object_without_label(tmp_path: Path) -> None:
    """A JSON answer object with only a position is an answer that cannot be read, not a dismissed response."""
    answers = [
        {"id": "r1", "account": "acme", "created_at": "2025-03-01", "answer": {"position": 8}},
        {"id": "r2", "account": "acme", "created_at": "2025-03-02", "answer": {"label": "7", "position": 8}},
    ]
    config = BASE + (
        '[sources.nps]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["nps.jsonl"]\n'
        'columns = { response_id = "id", account_id = "account", responded_at = "created_at", score = "answer" }\n'
    )
    workspace = make_workspace(
        tmp_path,
        config,
        {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "nps.jsonl": json_lines(answers)},
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT response_id, score, dismissed FROM sentiment_responses ORDER BY 1")
        quarantined = rows(store, "SELECT row_number, reason FROM quarantine")

    assert stored == [("r2", 7.0, False)]
    assert [row for row, _ in quarantined] == [1]
    assert "no label" in quarantined[0][1]
    assert_balanced(report)


def test_reversed_survey_scale_has_one_reason(tmp_path: Path) -> None:
    survey = "Response ID,Account,Submitted,Score\ns1,acme,2024-03-01,3\n"
    config = BASE + (
        '[sources.csat]\ntable = "sentiment_responses"\nformat = "nps"\nfiles = ["csat.csv"]\n'
        'columns = { response_id = "Response ID", account_id = "Account", responded_at = "Submitted", '
        'score = "Score" }\nconstants = { kind = "survey", scale = "5-1" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "contacts.csv": CONTACTS, "csat.csv": survey}
    )

    report, store = run_ingest(workspace)
    with store:
        reasons = rows(store, "SELECT reason FROM quarantine")

    # The score lies within 1 to 5, so only the scale is reported, not the score as outside it.
    assert reasons == [("survey scale minimum is not below its maximum",)]
    assert_balanced(report)
