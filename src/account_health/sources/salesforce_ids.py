"""Salesforce record ids in their 15- and 18-character forms.

A Salesforce id is 15 case-sensitive characters; the 18-character form appends three characters that
encode the case of the first 15, so case-insensitive tools can tell ids apart. Two forms name the same
record exactly when their first 15 characters are equal, compared case-sensitively.
"""

from __future__ import annotations

import re

_ID = re.compile(r"[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?")
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(id15: str) -> str:
    """Return the three characters that turn a 15-character id into its 18-character form."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def is_salesforce_id(value: str) -> bool:
    """True for a 15-character id, or an 18-character id whose suffix matches the case of its first 15."""
    if not _ID.fullmatch(value):
        return False
    return len(value) == 15 or value[15:].upper() == checksum(value[:15])


def normalise(value: str) -> str:
    """Return the 18-character form of a Salesforce id, or the value unchanged when it is not one.

    An 18-character id whose letters lost their case (in a case-insensitive tool) gets its case back
    from its suffix, when the suffix is consistent with the letters.
    """
    if not is_salesforce_id(value):
        restored = _restore_case(value)
        return restored if restored is not None else value
    return value[:15] + checksum(value[:15])


def _restore_case(value: str) -> str | None:
    if len(value) != 18 or not _ID.fullmatch(value):
        return None
    suffix = value[15:].upper()
    if any(char not in _SUFFIX_ALPHABET for char in suffix):
        return None
    chars = list(value[:15])
    for chunk, code in enumerate(suffix):
        bits = _SUFFIX_ALPHABET.index(code)
        for position in range(5):
            index = chunk * 5 + position
            upper = bool(bits & (1 << position))
            if chars[index].isalpha():
                chars[index] = chars[index].upper() if upper else chars[index].lower()
            elif upper:
                return None
    id15 = "".join(chars)
    return id15 + suffix if checksum(id15) == suffix else None


def forms(value: str) -> list[str]:
    """Every spelling of the same record: the value itself, and its 15- and 18-character forms."""
    full = normalise(value)
    if not is_salesforce_id(full):
        return [value]
    return sorted({value, full[:15], full})
