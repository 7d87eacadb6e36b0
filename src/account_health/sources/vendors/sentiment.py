"""Survey and call-sentiment exports: NPS answers, surveys on a declared scale, call sentiment tags.

An answer is read from its label, never from its position in the list of options: "9", "9 - Likely"
and {"label": "9", "position": 10} (a JSON object, or its JSON text in a CSV cell) are all a 9, so a
9 stays a promoter however the export numbers its choices. The number in a label is written in
decimal digits, so "1e1", "0x9" and "9pts" are rejected rather than read as 1, 0 or 9. A response
with a score is scored whatever its status (closed, completed), unless the status is dismissed,
declined or skipped. A blank answer, or one of those statuses, is stored as dismissed with no
score: it is neither a detractor nor a zero, and the ingest counts it apart.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    RecordAdapter,
    Reject,
    Skip,
    TableDefaults,
    first_present,
    scalar_text,
)

# Statuses that mean the person gave no answer, so a score beside them is not theirs. Other statuses,
# such as closed or completed, describe the survey, and a score beside them is an answer.
DISMISSED_STATUSES = ("dismissed", "skipped", "declined")
STATUS_COLUMNS = ("status", "state", "response_status")
# Keys of an answer object that hold its label, and keys that hold only its place among the options.
LABEL_KEYS = ("label", "value", "text", "answer", "score")
# A number in decimal digits, with no letter, digit, point or comma touching it. So "1e1", "0x9" and
# "9pts" contain no number, rather than 1, 0 and 9.
_NUMBER = re.compile(r"(?<![\w.,])-?[0-9]+(?:[.,][0-9]+)?(?![\w.,])")

SURVEY_COLUMNS = {
    "response_id": "response_id",
    "account_id": "account_id",
    "responded_at": "responded_at",
    "score": "score",
    "dismissed": "dismissed",
}


class NpsAdapter(RecordAdapter):
    """NPS and other survey answers (CSV, JSON lines or a JSON array), one response per record."""

    name = "nps"
    array_keys = ("responses", "results", "data")
    tables: ClassVar[dict[str, TableDefaults]] = {
        "sentiment_responses": TableDefaults(
            columns=SURVEY_COLUMNS, constants={"kind": "nps"}, identity_email="email"
        ),
    }

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        source = config.columns.get("score", "score")
        status = (first_present(flat, STATUS_COLUMNS) or "").strip().lower()
        answer = None if status in DISMISSED_STATUSES else _answer(flat, source)
        if isinstance(answer, Reject):
            return answer
        dismissed = answer is None
        score = None if answer is None else _label_number(answer)
        if not dismissed and score is None:
            return Reject(
                f"answer {answer!r} in {source!r} holds no number in decimal digits, such as 9 or "
                "'9 - Very likely'; if it is not the answer column, map score to that column in [sources] columns"
            )
        flat[source] = score
        flat[config.columns.get("dismissed", "dismissed")] = "true" if dismissed else "false"
        return flat


def _answer(flat: dict[str, str | None], source: str) -> str | Reject | None:
    """Return the answer's label: the column itself, or the label of an answer object, never its position.

    An answer object is either flattened from JSON (`score.label`) or written as JSON text in one cell.
    An object without a label is rejected, because its position alone cannot give the score.
    """
    value = flat.get(source)
    if value is not None and value.strip():
        return _cell_label(value, source)
    nested = {key[len(source) + 1 :]: item for key, item in flat.items() if key.startswith(source + ".")}
    return _object_label(nested, source, original=json.dumps(nested))


def _cell_label(value: str, source: str) -> str | Reject | None:
    """Return the label of a cell, reading a JSON object in the cell as an answer object."""
    text = value.strip()
    if not text.startswith("{"):
        return value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return value
    if not isinstance(parsed, dict):
        return value
    return _object_label({str(key): scalar_text(item) for key, item in parsed.items()}, source, original=text)


def _object_label(fields: dict[str, str | None], source: str, original: str) -> str | Reject | None:
    for key in LABEL_KEYS:
        label = fields.get(key)
        if label is not None and label.strip():
            return label
    if any(item is not None and item.strip() for item in fields.values()):
        return Reject(
            f"answer {original!r} in {source!r} has no label (no key {', '.join(LABEL_KEYS)}); the score is "
            "read from an answer's label, never from its position among the options, so export the label"
        )
    return None


def _label_number(label: str) -> str | None:
    """Return the number a label starts with ("9 - Likely" is 9), or its only number, else None.

    Only a number that no letter, digit, point or comma touches counts (see `_NUMBER`).
    """
    text = label.strip()
    leading = _NUMBER.match(text)
    if leading:
        return leading.group(0).replace(",", ".")
    numbers = _NUMBER.findall(text)
    return numbers[0].replace(",", ".") if len(numbers) == 1 else None


class CallsAdapter(RecordAdapter):
    """Call-sentiment exports (conversation intelligence tools): a tag or a score in [-1, 1] per call."""

    name = "calls"
    array_keys = ("calls", "records", "data")
    # Scores in [-1, 1] beyond these bounds are positive or negative; between them, neutral.
    POSITIVE_ABOVE: ClassVar[float] = 0.25
    NEGATIVE_BELOW: ClassVar[float] = -0.25
    tables: ClassVar[dict[str, TableDefaults]] = {
        "sentiment_responses": TableDefaults(
            columns={
                "response_id": "call_id",
                "account_id": "account_id",
                "responded_at": "started_at",
                "tag": "sentiment",
            },
            constants={"kind": "call"},
            identity_email="email",
        ),
    }

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        source = config.columns.get("tag", "sentiment")
        value = flat.get(source)
        dismissed = config.columns.get("dismissed", "dismissed")
        if value is None or not value.strip():
            flat[dismissed] = "true"
            return flat
        # A call with a sentiment is an answer, as an NPS response with a score is: not dismissed.
        flat[dismissed] = "false"
        tag = self._tag(value.strip())
        if isinstance(tag, Reject):
            return tag
        flat[source] = tag
        return flat

    def _tag(self, value: str) -> str | Reject:
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            word = value.lower()
            for tag, prefixes in (
                ("positive", ("pos",)),
                ("negative", ("neg",)),
                ("neutral", ("neu", "mixed")),
            ):
                if word.startswith(prefixes):
                    return tag
            return value
        if not -1.0 <= number <= 1.0:
            return Reject(
                f"call sentiment score {value!r} is outside -1 to 1; export the tool's score on that scale, "
                "or its positive, neutral or negative label"
            )
        if number > self.POSITIVE_ABOVE:
            return "positive"
        if number < self.NEGATIVE_BELOW:
            return "negative"
        return "neutral"
