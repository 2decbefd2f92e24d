"""Column types that behave the same on SQLite and PostgreSQL.

- :class:`UTCDateTime` stores UTC and always returns timezone-aware UTC datetimes; SQLite
  has no timezone support, so without it rows read back naive (and comparisons across
  offsets silently break).
- :class:`LowercaseString` normalizes e-mail addresses on the way in, also in WHERE
  clauses, so ``Rep@Example.com`` and ``rep@example.com`` are one rep.
- :data:`JSONType` is JSONB on PostgreSQL (indexable, compact) and JSON text on SQLite.
- :data:`Money` is an exact decimal (SQLite keeps it as REAL; amounts round-trip exactly
  to 4 decimals up to ~1e11).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` that only accepts aware datetimes and returns UTC.

    Naive datetimes are refused at bind time: guessing their zone is how timezone slips
    get into a sync cursor.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; stagelink stores only "
                "timezone-aware datetimes (use datetime.now(UTC) or .replace(tzinfo=UTC))"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME text has no offset; everything stored there is UTC.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class LowercaseString(TypeDecorator[str]):
    """A string stored trimmed and lower-cased (e-mail addresses)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return value.strip().lower()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value


def email_type() -> LowercaseString:
    """The column type for e-mail addresses (RFC 5321 caps them at 320 characters)."""
    return LowercaseString(320)


#: JSON document column: JSONB on PostgreSQL, JSON text on SQLite. Python ``None`` is SQL
#: NULL. Assign a new dict/list to change a value; in-place mutation is not tracked.
JSONType: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

#: Money and other exact amounts: 18 digits, 4 of them after the point (Salesforce
#: currency fields allow 18 digits in total).
Money = Numeric(18, 4)
