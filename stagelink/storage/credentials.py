"""Reading and writing a connection's secrets, encrypted, and finding connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stagelink.storage.crypto import TokenCipher
from stagelink.storage.models import Connection, Credential
from stagelink.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A decrypted secret with its bookkeeping."""

    kind: str
    value: str
    expires_at: datetime | None
    updated_at: datetime

    def __repr__(self) -> str:
        return (
            f"StoredCredential(kind={self.kind!r}, value=<hidden>, "
            f"expires_at={self.expires_at!r}, updated_at={self.updated_at!r})"
        )

    def is_expired(self, now: datetime | None = None, *, leeway_seconds: float = 0) -> bool:
        """True when ``expires_at`` is known and is less than ``leeway_seconds`` away."""
        if self.expires_at is None:
            return False
        now = now or utcnow()
        return (self.expires_at - now).total_seconds() <= leeway_seconds


class CredentialStore:
    """Encrypted secrets per connection and kind (``access_token``, ``refresh_token``...).

    Works inside the caller's session and transaction: ``put`` and ``delete`` flush but
    do not commit.
    """

    def __init__(self, session: Session, cipher: TokenCipher) -> None:
        self._session = session
        self._cipher = cipher

    def put(
        self,
        connection: Connection,
        kind: str,
        value: str,
        expires_at: datetime | None = None,
    ) -> None:
        """Store (or replace) the ``kind`` secret of ``connection``, encrypted."""
        row = self._row(connection, kind)
        ciphertext = self._cipher.encrypt(value)
        if row is None:
            row = Credential(
                connection_id=connection.id,
                kind=kind,
                ciphertext=ciphertext,
                expires_at=expires_at,
                updated_at=utcnow(),
            )
            self._session.add(row)
        else:
            row.ciphertext = ciphertext
            row.expires_at = expires_at
            row.updated_at = utcnow()
        self._session.flush()

    def get(self, connection: Connection, kind: str) -> str | None:
        """The decrypted ``kind`` secret of ``connection``, or None if none is stored.

        Raises :class:`stagelink.storage.DecryptionError` if no configured key fits.
        """
        stored = self.load(connection, kind)
        return None if stored is None else stored.value

    def load(self, connection: Connection, kind: str) -> StoredCredential | None:
        """Like :meth:`get`, with ``expires_at`` and ``updated_at``."""
        row = self._row(connection, kind)
        if row is None:
            return None
        return StoredCredential(
            kind=row.kind,
            value=self._cipher.decrypt(row.ciphertext),
            expires_at=row.expires_at,
            updated_at=row.updated_at,
        )

    def delete(self, connection: Connection, kind: str) -> bool:
        """Forget the ``kind`` secret of ``connection``; True if there was one."""
        row = self._row(connection, kind)
        if row is None:
            return False
        self._session.delete(row)
        self._session.flush()
        return True

    def reencrypt_all(self) -> int:
        """Re-encrypt every stored secret with the primary key; returns how many.

        The last step of a key rotation, before the old key is removed.
        """
        rows = self._session.scalars(select(Credential)).all()
        for row in rows:
            row.ciphertext = self._cipher.rotate(row.ciphertext)
        self._session.flush()
        return len(rows)

    def _row(self, connection: Connection, kind: str) -> Credential | None:
        if connection.id is None:
            self._session.flush()
        return self._session.scalars(
            select(Credential).where(
                Credential.connection_id == connection.id, Credential.kind == kind
            )
        ).one_or_none()


def get_or_create_connection(
    session: Session, name: str, kind: str, *, config_fingerprint: str | None = None
) -> Connection:
    """The connection row named ``name``, created if missing (flushed, not committed).

    Raises ``ValueError`` if a connection of that name exists with another ``kind``:
    reusing a name for a different CRM would mix two CRMs' records.
    """
    connection = session.scalars(select(Connection).where(Connection.name == name)).one_or_none()
    if connection is None:
        connection = Connection(name=name, kind=kind, config_fingerprint=config_fingerprint)
        session.add(connection)
        session.flush()
        return connection
    if connection.kind != kind:
        raise ValueError(
            f"connection {name!r} is stored as a {connection.kind} connection, "
            f"not {kind}; use a new name for a different CRM"
        )
    if config_fingerprint is not None and connection.config_fingerprint != config_fingerprint:
        connection.config_fingerprint = config_fingerprint
        session.flush()
    return connection
