"""Salesforce record ids: 15-character case-sensitive ids plus the 3-character checksum.

The REST API always returns 18-character ids and accepts 15 or 18 on input (facts A11).
The emulator issues ids as ``<key prefix><instance "5e"><"0"><9 base-62 digits>``; the
base-62 alphabet is ASCII-ordered, so ids of one sObject sort in creation order like real ids
roughly do.
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
_INSTANCE = "5e0"
_SEQUENCE_DIGITS = 9

# Key prefixes of the sObjects the emulator stores, plus the ones it names in errors/ids.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "OpportunityFieldHistory": "017",
    "OpportunityStage": "01J",
    "Task": "00T",
    "Event": "00U",
    "Lead": "00Q",
    "Organization": "00D",
    "AsyncApexJob": "707",
    "Job": "750",
    "QueryLocator": "01g",
}
PREFIX_TO_SOBJECT: dict[str, str] = {prefix: name for name, prefix in KEY_PREFIXES.items()}


# Upper-case letters → "1", everything else → "0": the checksum bits of a 5-character chunk.
_UPPER_BITS = str.maketrans(
    dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "1")
    | dict.fromkeys("0123456789abcdefghijklmnopqrstuvwxyz", "0")
)


def checksum(id15: str) -> str:
    """The three characters that make a 15-character id case-insensitive.

    Each 5-character chunk gives one character: bit ``i`` is set when character ``i`` is an
    upper-case letter, and the 5-bit number indexes ``A…Z0…5``.
    """
    bits = id15.translate(_UPPER_BITS)
    return (
        _CHECKSUM_ALPHABET[int(bits[4::-1], 2)]
        + _CHECKSUM_ALPHABET[int(bits[9:4:-1], 2)]
        + _CHECKSUM_ALPHABET[int(bits[14:9:-1], 2)]
    )


def to_18(id15: str) -> str:
    """Extend a 15-character id with its checksum (an 18-character id is returned as is)."""
    return id15 if len(id15) == 18 else id15 + checksum(id15)


def make_id(prefix: str, sequence: int) -> str:
    """The 18-character id number ``sequence`` of the sObject with key ``prefix``."""
    if len(prefix) != 3:
        raise ValueError(f"key prefix must have 3 characters, got {prefix!r}")
    digits = []
    value = sequence
    while value:
        value, digit = divmod(value, 62)
        digits.append(_BASE62[digit])
    body = "".join(reversed(digits)).rjust(_SEQUENCE_DIGITS, "0")
    if len(body) > _SEQUENCE_DIGITS:
        raise ValueError(f"sequence {sequence} does not fit an id")
    return to_18(prefix + _INSTANCE + body)


def normalize_id(value: str) -> str | None:
    """The canonical 18-character form of ``value``, or ``None`` if it is not a valid id.

    An 18-character id is case-insensitive: its last three characters encode which of the
    first fifteen are upper case, so ``001…aaa`` typed in lower case still names the same
    record. A suffix that contradicts the characters (an upper-case bit on a digit) is invalid.
    """
    if not _ID_SHAPE.match(value):
        return None
    if len(value) == 15:
        return to_18(value)
    suffix = value[15:].upper()
    restored = []
    for chunk, code in enumerate(suffix):
        index = _CHECKSUM_ALPHABET.find(code)
        if index < 0:
            return None
        for position, char in enumerate(value[chunk * 5 : chunk * 5 + 5]):
            upper = bool(index & (1 << position))
            if char.isdigit():
                if upper:
                    return None
                restored.append(char)
            else:
                restored.append(char.upper() if upper else char.lower())
    return to_18("".join(restored))


def key_prefix(record_id: str) -> str:
    """The first three characters of an id: they name its sObject type."""
    return record_id[:3]
