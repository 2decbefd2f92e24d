"""The declarative base shared by every table, with deterministic constraint names.

Constraint and index names follow one convention so that Alembic migrations name the
same objects on SQLite and PostgreSQL (and batch mode on SQLite can find them again).
Multi-column constraints and indexes get explicit short names because PostgreSQL caps
identifiers at 63 characters.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stagelink.storage.types import JSONType, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit keys on PostgreSQL; on SQLite only ``INTEGER PRIMARY KEY`` auto-increments.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Base class of all stagelink tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Plain annotations get the portable types: aware UTC datetimes, JSON(B), exact money.
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[Any]: JSONType,
        dict[str, list[str]]: JSONType,
        Decimal: Money,
    }


class IdMixin:
    """A surrogate 64-bit primary key ``id``."""

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, sort_order=-100)
