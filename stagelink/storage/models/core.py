"""Connections (one row per CRM connection named in config) and their secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stagelink.storage.models.base import Base, BigIntKey, IdMixin
from stagelink.storage.types import utcnow


class Connection(IdMixin, Base):
    """A CRM connection, keyed by the name it has in config (e.g. ``acme-salesforce``).

    Every synced record, cursor, job run and usage event hangs off a connection;
    deleting one cascades to all of them.
    """

    __tablename__ = "connections"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: Connector name from the ``stagelink.connectors`` entry points: salesforce, hubspot...
    kind: Mapped[str] = mapped_column(String(50))
    #: Hash of the connection's config (endpoint, org/portal id) so a changed target is
    #: noticed instead of mixing two CRMs' records under one name.
    config_fingerprint: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    credentials: Mapped[list[Credential]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Connection(id={self.id!r}, name={self.name!r}, kind={self.kind!r})"


class Credential(IdMixin, Base):
    """One encrypted secret of a connection (access token, refresh token, instance URL...).

    ``ciphertext`` is a Fernet token (see :mod:`stagelink.storage.crypto`); the plain
    value never reaches the database. Use :class:`stagelink.storage.CredentialStore`.
    """

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("connection_id", "kind", name="uq_credentials_kind"),)

    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    #: access_token, refresh_token, instance_url, ...
    kind: Mapped[str] = mapped_column(String(50))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When the CRM says the secret stops working (None: unknown or never).
    expires_at: Mapped[datetime | None]

    connection: Mapped[Connection] = relationship(back_populates="credentials")

    def __repr__(self) -> str:
        # Never the ciphertext: reprs end up in logs.
        return f"Credential(connection_id={self.connection_id!r}, kind={self.kind!r})"
