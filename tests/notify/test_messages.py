from __future__ import annotations

from account_health.notify.slack_messages import (
    BLOCKS_PER_MESSAGE,
    SECTION_TEXT_LIMIT,
    digest_messages,
    escape,
    tier_change_message,
)
from notify.changes import notice


def test_escape_replaces_control_characters():
    assert escape("A&B <Corp> > C") == "A&amp;B &lt;Corp&gt; &gt; C"


def test_escape_cuts_long_values():
    escaped = escape("x" * 500)
    assert len(escaped) == 200, escaped
    assert escaped.endswith("…")


def test_tier_change_message_says_everything():
    change = notice(
        1,
        account_name="Acme <script> & Co",
        old_tier="Yellow",
        new_tier="Red",
        probability=0.6412,
        watch_reason="exec sponsor left",
        renewal_stage="Window-Open",
    )
    message = tier_change_message(change)
    text = message.text
    for expected in (
        "Acme &lt;script&gt; &amp; Co",
        "*Yellow* to *Red*",
        "64.1%",
        "usage_trend: +12.5 points",
        "support_load: +4.2 points",
        "CSM intervention, due 2026-12-06",
        "dana@example.com",
        "Window-Open",
        "on the watch list: exec sponsor left",
    ):
        assert expected in text, f"{expected!r} missing from {text!r}"
    assert "<script>" not in str(message.blocks)
    assert message.dedupe_key == "slack:tier-change:2026-12-04T00:00:00:A00001:Yellow:Red"


def test_tier_change_message_marks_unvalidated_model():
    message = tier_change_message(notice(1, validated=False))
    assert "NOT VALIDATED" in message.blocks[0]["text"]["text"]


def test_digest_splits_within_block_kit_limits():
    changes = [notice(number, account_name="N" * 190, new_tier="Yellow") for number in range(3000)]
    messages = digest_messages(changes)
    assert len(messages) > 1
    covered = [change_id for message in messages for change_id in message.change_ids]
    assert sorted(covered) == sorted(change.change_id for change in changes)
    for message in messages:
        assert len(message.blocks) <= BLOCKS_PER_MESSAGE, len(message.blocks)
        longest = max(len(block["text"]["text"]) for block in message.blocks)
        assert longest <= SECTION_TEXT_LIMIT, longest
    assert messages[0].dedupe_key.endswith(f":1/{len(messages)}")


def test_digest_key_is_stable_for_the_same_changes():
    changes = [notice(number, new_tier="Yellow") for number in range(5)]
    first = [message.dedupe_key for message in digest_messages(changes)]
    again = [message.dedupe_key for message in digest_messages(list(reversed(changes)))]
    assert first == again


def test_probability_names_its_horizon():
    message = tier_change_message(notice(1, probability=0.42, horizon_days=90))
    assert "churn probability 42.0% within 90 days" in message.text
