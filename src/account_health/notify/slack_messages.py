"""Slack messages for tier changes: Block Kit blocks plus a plain-text fallback, within Slack's limits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from account_health.notify.notice import TierChangeNotice

# Block Kit limits (Slack's reference for blocks and messages): a section's text holds at most
# 3,000 characters, a field 2,000, a section 10 fields, and a message 50 blocks.
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FIELDS_PER_SECTION = 10
BLOCKS_PER_MESSAGE = 50
# Account names, owners and other data are cut to this many characters inside a message.
VALUE_LIMIT = 200

TIER_EMOJI = {
    "Red": ":red_circle:",
    "Orange": ":large_orange_circle:",
    "Yellow": ":large_yellow_circle:",
    "Green": ":large_green_circle:",
    "Dark-Green": ":green_heart:",
}
NOT_VALIDATED = ":warning: NOT VALIDATED: the model could not be shown to beat the base rate."


@dataclass(frozen=True)
class SlackMessage:
    """One message to post: its deduplication key, the text fallback, the blocks and the changes it covers."""

    dedupe_key: str
    kind: str
    text: str
    blocks: list[dict[str, Any]]
    change_ids: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks, "items": list(self.change_ids)}


def escape(value: object, limit: int = VALUE_LIMIT) -> str:
    """Escape Slack's mrkdwn control characters (&, <, >) in a value, cut to `limit` characters first."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def tier_change_message(notice: TierChangeNotice) -> SlackMessage:
    """Build the message of one tier change: account, old → new tier, probability, reasons and action."""
    headline = _headline(notice)
    fields = _fields(notice)
    origin = f"run {notice.run_id}" if notice.provisional_cause is None else "provisional re-score"
    context = f"as of {notice.as_of:%Y-%m-%d} · {origin} · account id {escape(notice.account_id)}"

    blocks: list[dict[str, Any]] = []
    if not notice.validated:
        blocks.append(_section(NOT_VALIDATED))
    blocks.append(_section(headline))
    blocks.append({"type": "section", "fields": [_mrkdwn(field) for field in fields[:FIELDS_PER_SECTION]]})
    blocks.append({"type": "context", "elements": [_mrkdwn(context)]})

    text_lines = ([NOT_VALIDATED] if not notice.validated else []) + [headline, *fields]
    return SlackMessage(
        dedupe_key=f"slack:tier-change:{notice.change_id}",
        kind="tier_change",
        text="\n".join(line.replace("\n", " ") for line in text_lines),
        blocks=blocks,
        change_ids=(notice.change_id,),
    )


def digest_messages(notices: Sequence[TierChangeNotice]) -> list[SlackMessage]:
    """Build one digest of `notices` (one as-of date), split across messages that stay inside Slack's limits.

    Each line is one change. Lines are packed into sections of at most 3,000 characters and the
    sections into messages of at most 50 blocks, so a digest of any length posts as several parts.
    """
    if not notices:
        return []
    ordered = sorted(notices, key=lambda notice: (-notice.probability, notice.account_id))
    as_of = ordered[0].as_of
    run_id = ordered[0].run_id
    lines = [(_digest_line(notice), notice.change_id) for notice in ordered]

    sections = _pack_sections(lines)
    # Two blocks of each part are its title and, when needed, the NOT VALIDATED warning.
    per_message = BLOCKS_PER_MESSAGE - 2
    parts = [sections[start : start + per_message] for start in range(0, len(sections), per_message)]
    change_ids = sorted(notice.change_id for notice in ordered)
    digest_id = hashlib.sha256("\n".join(change_ids).encode()).hexdigest()[:16]
    validated = all(notice.validated for notice in ordered)

    messages = []
    for number, part in enumerate(parts, start=1):
        of = f" (part {number} of {len(parts)})" if len(parts) > 1 else ""
        title = f"*Tier changes as of {as_of:%Y-%m-%d}*, run {run_id}: {len(ordered):,} accounts{of}"
        if ordered[0].horizon_days:
            title += f" (churn probability within {ordered[0].horizon_days} days)"
        blocks = ([_section(NOT_VALIDATED)] if not validated else []) + [_section(title)]
        blocks += [_section(text) for text, _ids in part]
        covered = tuple(change_id for _text, ids in part for change_id in ids)
        messages.append(
            SlackMessage(
                dedupe_key=f"slack:digest:{as_of:%Y-%m-%dT%H:%M:%S}:{digest_id}:{number}/{len(parts)}",
                kind="digest",
                text="\n".join([title, *(text for text, _ids in part)]),
                blocks=blocks,
                change_ids=covered,
            )
        )
    return messages


def _headline(notice: TierChangeNotice) -> str:
    name = escape(notice.account_name or notice.account_id)
    emoji = TIER_EMOJI.get(notice.new_tier, "")
    old = f"*{escape(notice.old_tier)}*" if notice.old_tier else "no previous tier"
    return (
        f"{emoji} *{name}* moved from {old} to *{escape(notice.new_tier)}*: "
        f"churn probability {notice.probability:.1%}{_within(notice)}"
    ).strip()


def _within(notice: TierChangeNotice) -> str:
    return f" within {notice.horizon_days} days" if notice.horizon_days else ""


def _fields(notice: TierChangeNotice) -> list[str]:
    signals = "\n".join(
        f"{escape(signal)}: {points:+.1f} points" for signal, points in notice.top_signals[:2]
    )
    action = escape(notice.action) if notice.action else "no action set"
    if notice.due_date is not None:
        action += f", due {notice.due_date:%Y-%m-%d}"
    watch = (
        f"on the watch list: {escape(notice.watch_reason)}"
        if notice.watch_reason
        else "not on the watch list"
    )
    fields = [
        f"*Moved most* (percentage points of churn probability)\n{signals or 'no signal contributions stored'}",
        f"*Action*\n{action}",
        f"*Owner*\n{escape(notice.owner) if notice.owner else 'no owner'}",
        f"*Renewal stage*\n{escape(notice.renewal_stage) if notice.renewal_stage else 'unknown'}",
        f"*Watch list*\n{watch}",
    ]
    if notice.arr is not None:
        fields.append(f"*ARR*\n{notice.arr:,.0f}")
    if notice.provisional_cause is not None:
        fields.insert(0, f"*Provisional*\n{escape(notice.provisional_cause, 1000)}")
    return [field[:FIELD_TEXT_LIMIT] for field in fields]


def _digest_line(notice: TierChangeNotice) -> str:
    name = escape(notice.account_name or notice.account_id)
    old = escape(notice.old_tier) if notice.old_tier else "new"
    line = f"• *{name}*: {old} → {escape(notice.new_tier)}, {notice.probability:.1%}"
    if notice.owner:
        line += f", owner {escape(notice.owner)}"
    if notice.action:
        due = f" by {notice.due_date:%Y-%m-%d}" if notice.due_date is not None else ""
        line += f", {escape(notice.action)}{due}"
    if notice.watch_reason:
        line += ", watch list"
    return line


def _pack_sections(lines: list[tuple[str, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """Join lines into section texts of at most SECTION_TEXT_LIMIT characters, keeping whole lines."""
    sections: list[tuple[str, tuple[str, ...]]] = []
    text, ids = "", ()  # type: tuple[str, tuple[str, ...]]
    for line, change_id in lines:
        line = line[:SECTION_TEXT_LIMIT]
        if text and len(text) + 1 + len(line) > SECTION_TEXT_LIMIT:
            sections.append((text, ids))
            text, ids = "", ()
        text = f"{text}\n{line}" if text else line
        ids = (*ids, change_id)
    if text:
        sections.append((text, ids))
    return sections


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:SECTION_TEXT_LIMIT])}
