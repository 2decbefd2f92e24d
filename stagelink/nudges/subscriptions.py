"""Reps' Web Push subscriptions: validated, stored per rep, one row per browser endpoint.

A browser's ``PushSubscription.toJSON()`` is ``{"endpoint", "expirationTime", "keys":
{"p256dh", "auth"}}``. The keys are checked to be what RFC 8291 needs (a P-256 point and a
16-byte secret) and the endpoint to be a known push service — stagelink POSTs to it, so
an arbitrary URL would let anyone with a page session make the server call it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from connectors.core.errors import StagelinkError
from stagelink.nudges.config import VapidSettings
from stagelink.nudges.webpush import endpoint_problem
from stagelink.storage.models.nudges import PushSubscription

__all__ = [
    "MAX_PER_REP",
    "PushKeysIn",
    "PushSubscriptionIn",
    "SubscriptionError",
    "delete_subscription",
    "endpoint_hash",
    "save_subscription",
    "subscriptions_for",
]

#: A rep's browsers beyond this many: the least recently updated one is dropped.
MAX_PER_REP = 10


class SubscriptionError(StagelinkError):
    """A subscription that cannot be used; ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PushKeysIn(BaseModel):
    """The browser's encryption keys, base64url."""

    model_config = ConfigDict(extra="ignore")

    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    endpoint: str = Field(min_length=1, max_length=2000)
    expiration_time: int | None = Field(default=None, alias="expirationTime")
    keys: PushKeysIn


@dataclass(frozen=True)
class Saved:
    """The stored subscription and whether it is new."""

    subscription: PushSubscription
    created: bool


def endpoint_hash(endpoint: str) -> str:
    """The key a subscription is stored under."""
    return hashlib.sha256(endpoint.encode()).hexdigest()


def validate(data: PushSubscriptionIn, settings: VapidSettings) -> None:
    """Raise :class:`SubscriptionError` unless ``data`` can receive nudges."""
    problem = endpoint_problem(data.endpoint, settings)
    if problem is not None:
        raise SubscriptionError("endpoint", problem)
    point = _b64url(data.keys.p256dh, "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise SubscriptionError(
            "keys.p256dh", "expected the browser's P-256 public key (65 bytes, uncompressed)"
        ) from None
    if len(point) != 65:
        raise SubscriptionError("keys.p256dh", "expected an uncompressed point (65 bytes)")
    if len(_b64url(data.keys.auth, "keys.auth")) != 16:
        raise SubscriptionError("keys.auth", "expected a 16-byte authentication secret")


def save_subscription(
    session: Session,
    data: PushSubscriptionIn,
    *,
    rep: str,
    connection: str | None,
    user_agent: str | None,
    now: datetime,
) -> Saved:
    """Store ``data`` for ``rep`` (the same endpoint again updates it, also from another rep:
    the browser now belongs to whoever subscribed last)."""
    key = endpoint_hash(data.endpoint)
    row = session.scalar(select(PushSubscription).where(PushSubscription.endpoint_hash == key))
    created = row is None
    if row is None:
        row = PushSubscription(endpoint_hash=key, endpoint=data.endpoint, created_at=now)
        session.add(row)
    row.rep_email = rep.lower()
    row.p256dh = data.keys.p256dh
    row.auth = data.keys.auth
    row.user_agent = (user_agent or "")[:500] or None
    row.connection_name = connection
    row.failures = 0
    row.updated_at = now
    session.flush()
    count = (
        session.scalar(select(func.count()).where(PushSubscription.rep_email == rep.lower())) or 0
    )
    if count > MAX_PER_REP:
        oldest = session.scalars(
            select(PushSubscription.id)
            .where(PushSubscription.rep_email == rep.lower(), PushSubscription.id != row.id)
            .order_by(PushSubscription.updated_at, PushSubscription.id)
            .limit(count - MAX_PER_REP)
        ).all()
        session.execute(delete(PushSubscription).where(PushSubscription.id.in_(oldest)))
    return Saved(row, created)


def delete_subscription(session: Session, *, rep: str, endpoint: str) -> bool:
    """Remove ``rep``'s subscription for ``endpoint``; False when there is none."""
    result = session.execute(
        delete(PushSubscription).where(
            PushSubscription.endpoint_hash == endpoint_hash(endpoint),
            PushSubscription.rep_email == rep.lower(),
        )
    )
    return bool(getattr(result, "rowcount", 0))


def subscriptions_for(session: Session, rep: str) -> Sequence[PushSubscription]:
    """``rep``'s subscriptions, oldest first."""
    return session.scalars(
        select(PushSubscription)
        .where(PushSubscription.rep_email == rep.lower())
        .order_by(PushSubscription.id)
    ).all()


def _b64url(value: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise SubscriptionError(field, "expected base64url text") from None
