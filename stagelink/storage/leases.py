"""Named, expiring locks in the database, shared by every node (e.g. ``sync:acme-sf``).

A job takes the lease before it starts and renews it as it goes; a node that dies stops
renewing and another node may take over once the lease expires. ``generation`` grows on
every takeover, so a holder can tell (and prove, as a fencing token) that it still owns it.

Portable: the row is read ``FOR UPDATE`` on PostgreSQL; on SQLite every write transaction
is ``BEGIN IMMEDIATE`` (see ``db.py``), which serialises the same way.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stagelink.storage.models import Lease
from stagelink.storage.types import utcnow

__all__ = [
    "LeaseHeld",
    "LeaseInfo",
    "acquire_lease",
    "holder_is_dead_here",
    "release_lease",
    "renew_lease",
]


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease, until when, and its generation."""

    name: str
    holder: str
    expires_at: datetime
    generation: int


class LeaseHeld(Exception):
    """Someone else holds the lease and it has not expired."""

    def __init__(self, info: LeaseInfo) -> None:
        super().__init__(
            f"{info.name} is held by {info.holder} until {info.expires_at:%Y-%m-%d %H:%M:%S}Z"
        )
        self.info = info


def acquire_lease(
    sessions: sessionmaker[Session],
    name: str,
    holder: str,
    ttl: timedelta,
    *,
    take_over_from: str | None = None,
) -> LeaseInfo:
    """Take ``name`` for ``holder`` for ``ttl``; raises :class:`LeaseHeld` if another live
    holder has it. Taking a lease one already holds renews it. ``take_over_from`` names a
    holder known to be dead (its lease is taken even before it expires)."""
    for _attempt in range(2):
        try:
            with sessions.begin() as session:
                return _acquire(session, name, holder, ttl, take_over_from)
        except IntegrityError:
            continue  # another node inserted the row first: read it again
    with sessions.begin() as session:
        return _acquire(session, name, holder, ttl, take_over_from)


def holder_is_dead_here(holder: str) -> bool:
    """True when ``holder`` (``hostname:pid``) is a process of this host that no longer runs."""
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


def _acquire(
    session: Session, name: str, holder: str, ttl: timedelta, take_over_from: str | None
) -> LeaseInfo:
    now = utcnow()
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    if lease is None:
        lease = Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
        session.add(lease)
        session.flush()
    elif lease.holder == holder:
        lease.expires_at = now + ttl
    elif lease.expires_at > now and lease.holder != take_over_from:
        raise LeaseHeld(_info(lease))
    else:
        lease.holder = holder
        lease.acquired_at = now
        lease.expires_at = now + ttl
        lease.generation += 1
    return _info(lease)


def renew_lease(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Extend ``holder``'s lease inside ``session``; ``False`` when it was lost."""
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    if lease is None or lease.holder != holder:
        return False
    lease.expires_at = utcnow() + ttl
    return True


def release_lease(sessions: sessionmaker[Session], name: str, holder: str) -> None:
    """Give ``name`` up (only if ``holder`` still has it)."""
    with sessions.begin() as session:
        lease = session.scalars(
            select(Lease).where(Lease.name == name).with_for_update()
        ).one_or_none()
        if lease is not None and lease.holder == holder:
            lease.expires_at = utcnow()


def _info(lease: Lease) -> LeaseInfo:
    return LeaseInfo(lease.name, lease.holder, lease.expires_at, lease.generation)
