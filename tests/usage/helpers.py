"""What usage tests share: a small catalog, tokens, events shaped like a client's, row counts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mapping import Catalog, CatalogItem
from stagelink.storage import TokenKind, UsageEvent, WritebackOutbox
from stagelink.sync.runner import Storage
from stagelink.usage import notify
from stagelink.usage.tokens import TokenInfo, create_token

CONTENT = ("roi-calculator", "banking-case-study", "pricing-2026")


def catalog(*ids: str) -> Catalog:
    """A catalog holding ``ids`` (default :data:`CONTENT`)."""
    return Catalog(
        CatalogItem(
            id=content_id,
            title=content_id.replace("-", " ").title(),
            url=f"https://content.example.com/{content_id}",
            type="deck",
            stages=("discover",),
        )
        for content_id in ids or CONTENT
    )


def make_token(
    storage: Storage,
    name: str,
    *,
    rep: str | None = None,
    expires_in: timedelta | None = None,
    scopes: tuple[str, ...] = ("usage:write",),
) -> tuple[TokenInfo, str]:
    """A rep token (with ``rep``) or an integration token, committed."""
    kind = TokenKind.REP if rep else TokenKind.INTEGRATION
    with storage.sessions.begin() as session:
        return create_token(
            session, name, kind=kind, rep_email=rep, scopes=scopes, expires_in=expires_in
        )


def event(
    connection: str,
    opportunity_id: str | None = None,
    *,
    rep: str | None = "ana@example.com",
    content_id: str = CONTENT[0],
    action: str = "presented",
    occurred_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One event as a client sends it (JSON-ready)."""
    moment = occurred_at or datetime.now(UTC) - timedelta(minutes=3)
    data: dict[str, Any] = {
        "client_event_id": str(uuid.uuid4()),
        "connection": connection,
        "content_id": content_id,
        "action": action,
        "occurred_at": moment.isoformat(),
        "duration_seconds": 42,
        "channel": "mobile_page",
    }
    if rep is not None:
        data["rep"] = rep
    if opportunity_id is not None:
        data["opportunity_id"] = opportunity_id
    data.update(fields)
    return data


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def row_counts(storage: Storage) -> tuple[int, int]:
    """(usage events, outbox rows) stored."""
    with storage.sessions() as session:
        events = session.scalar(select(func.count()).select_from(UsageEvent)) or 0
        outbox = session.scalar(select(func.count()).select_from(WritebackOutbox)) or 0
    return events, outbox


def stored_events(storage: Storage) -> dict[str, UsageEvent]:
    """client event id → stored event (with its outbox row loaded)."""
    with storage.sessions() as session:
        rows = session.scalars(select(UsageEvent)).all()
        for row in rows:
            _ = row.outbox  # load while the session is open
    return {str(row.client_event_id): row for row in rows}


class Notifications:
    """Records :func:`stagelink.usage.notify.notify_accepted` calls while registered."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, connection: str) -> None:
        with self._lock:
            self.calls.append(connection)

    def count(self) -> int:
        with self._lock:
            return len(self.calls)


@contextmanager
def notifications() -> Iterator[Notifications]:
    recorder = Notifications()
    notify.on_accepted(recorder)
    try:
        yield recorder
    finally:
        notify.remove_callback(recorder)
