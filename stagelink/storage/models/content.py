"""The content catalog as last loaded from its YAML/CSV files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stagelink.storage.models.base import Base, IdMixin
from stagelink.storage.types import utcnow


class ContentItem(IdMixin, Base):
    """One piece of sales content, keyed by the stable id it has in the catalog."""

    __tablename__ = "content_items"

    content_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    #: deck, case_study, battlecard, one_pager, video, pricing, demo, ...
    type: Mapped[str] = mapped_column(String(50))
    #: Canonical stage names, e.g. ``["proposal", "negotiate"]``.
    stages: Mapped[list[str]] = mapped_column(default=list)
    #: Tags by facet, e.g. ``{"industries": ["banking"], "languages": ["de"]}``.
    tags: Mapped[dict[str, list[str]]] = mapped_column(default=dict)
    mobile_ready: Mapped[bool] = mapped_column(Boolean, default=True)
    owner: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    #: Catalog file the item came from (for error messages and coverage).
    source_file: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: SHA-256 of the item's normalized definition, to skip unchanged rows on reload.
    checksum: Mapped[str | None] = mapped_column(String(64))
