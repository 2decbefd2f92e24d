"""Datetime formats of the emulator: storage text, REST output, and the inputs clients send.

Storage (shared with the SOQL engine): ``YYYY-MM-DDTHH:MM:SS.fffZ``, which sorts as text.
REST output: ``2024-01-02T03:04:05.000+0000`` (facts A4). Bulk CSV output: ``…000Z``.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.UTC

_INPUT_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_INPUT_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def utc_now() -> dt.datetime:
    """The current time in UTC, truncated to milliseconds (Salesforce keeps millis)."""
    now = dt.datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_storage(value: dt.datetime) -> str:
    """``2024-01-02T03:04:05.000Z`` for an aware datetime."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; pass an aware UTC datetime")
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def from_storage(text: str) -> dt.datetime:
    """Parse the storage form back into an aware UTC datetime."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def storage_to_api(text: str) -> str:
    """Storage text → REST text (``…Z`` → ``…+0000``)."""
    return text[:-1] + "+0000" if text.endswith("Z") else text


def to_api(value: dt.datetime) -> str:
    """``2024-01-02T03:04:05.000+0000`` for an aware datetime."""
    return storage_to_api(to_storage(value))


def parse_input_datetime(text: str) -> dt.datetime | None:
    """Parse a dateTime a client sent (``Z``, ``+0000``, ``+00:00``, millis optional).

    A value without an offset is read as UTC, as the REST API does. Returns ``None`` when
    the text is not a dateTime.
    """
    match = _INPUT_DATETIME.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        value = value - sign * delta
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_input_date(text: str) -> dt.date | None:
    """Parse ``YYYY-MM-DD`` (or the date part of a dateTime), ``None`` if invalid."""
    match = _INPUT_DATE.match(text.strip())
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    parsed = parse_input_datetime(text)
    return parsed.date() if parsed else None
