"""Pure converters from CRM payload values to the types of ``records.py``.

Every converter takes the raw value and the field name, accepts the forms the CRMs really
send (JSON numbers, strings from HubSpot properties and Bulk API CSV, ``""`` for empty) and
raises :class:`FieldError` naming the field when a value cannot be read; a connector turns
that into a :class:`~connectors.core.records.BadRecord` so one bad row never stops a sync.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.core.errors import RecordError

__all__ = [
    "MAX_RAW_STRING",
    "MAX_TEXT",
    "FieldError",
    "clip_raw",
    "clip_text",
    "to_bool",
    "to_date",
    "to_datetime",
    "to_decimal",
    "to_fraction",
    "to_text",
]

#: Longest normalized text column value (names, labels); longer values are cut, not refused.
MAX_TEXT = 1_000
#: Longest string kept in a stored raw payload; a 10 MB description must not bloat every row.
MAX_RAW_STRING = 32_768
_CLIPPED = "…[clipped {} characters]"


class FieldError(RecordError):
    """A field of a CRM record holds a value that cannot be read as its type."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"field {field!r}: expected {expected}, got {shown}")
        self.field = field


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def to_text(value: Any, field: str, *, limit: int = MAX_TEXT) -> str | None:
    """A string (numbers are written out), clipped to ``limit``; empty becomes ``None``."""
    if _empty(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return clip_text(str(value), limit)
    raise FieldError(field, value, "text")


def clip_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit]


def to_decimal(value: Any, field: str) -> Decimal | None:
    """Money and numbers as exact ``Decimal`` (``"1000.50"``, ``1000.5``, ``""``)."""
    if _empty(value):
        return None
    if isinstance(value, bool):
        raise FieldError(field, value, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(field, value, "a finite number")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise FieldError(field, value, "a number")
    return number


def to_fraction(value: Any, field: str, *, percent: bool) -> float | None:
    """A probability as 0..1; ``percent`` values (Salesforce's 0..100) are divided by 100."""
    number = to_decimal(value, field)
    if number is None:
        return None
    fraction = float(number / 100 if percent else number)
    if not 0.0 <= fraction <= 1.0:
        raise FieldError(field, value, "a probability between 0 and 100%")
    return fraction


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def to_bool(value: Any, field: str, *, default: bool = False) -> bool:
    """JSON booleans, ``"true"``/``"false"`` (HubSpot, CSV) and 0/1; empty is ``default``."""
    if _empty(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise FieldError(field, value, "true or false")


def to_datetime(value: Any, field: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (any offset, ``Z``, ``+0000``) or epoch ms.

    A value without an offset is refused rather than guessed: CRMs always send one, and
    reading it as local time is the classic timezone slip.
    """
    if _empty(value):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _from_epoch_ms(value, field)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            parsed = _from_epoch_ms(int(text), field)
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(field, value, "an ISO 8601 timestamp") from None
    else:
        raise FieldError(field, value, "a timestamp")
    if parsed.tzinfo is None:
        raise FieldError(field, value, "a timestamp with a UTC offset")
    return parsed.astimezone(UTC)


def _from_epoch_ms(value: float, field: str) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldError(field, value, "epoch milliseconds") from None


def to_date(value: Any, field: str) -> date | None:
    """A calendar date from ``2024-01-31``; a timestamp (HubSpot's ``closedate``) gives its UTC
    date."""
    if _empty(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(field, value, "a date such as 2024-01-31") from None
    moment = to_datetime(value, field)
    return moment.date() if moment is not None else None


def clip_raw(raw: dict[str, Any], limit: int = MAX_RAW_STRING) -> dict[str, Any]:
    """``raw`` with over-long strings clipped (and marked), so it can be stored as JSON.

    Also removes NUL characters and replaces values JSON cannot hold by their ``repr``.
    """
    return {str(key): _clip_value(value, limit) for key, value in raw.items()}


def _clip_value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL's text and JSONB refuse NUL characters
            value = value.replace("\x00", "")
        if len(value) <= limit:
            return value
        return value[:limit] + _CLIPPED.format(len(value) - limit)
    if isinstance(value, dict):
        return clip_raw(value, limit)
    if isinstance(value, list | tuple):
        return [_clip_value(v, limit) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
