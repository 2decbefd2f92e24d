"""Salesforce Canvas signed requests, verified and read as pure functions.

When a Canvas app uses *signed request* access, Salesforce POSTs the form field
``signed_request`` to the Canvas URL: ``<signature>.<envelope>``, where ``envelope`` is the
Base64 of the CanvasRequest JSON and ``signature`` the Base64 of HMAC-SHA256 over the
*encoded* envelope, keyed with the connected app's consumer secret (Canvas Developer Guide,
"Verifying and Decoding a Signed Request"; the SDK's ``canvas/SignedRequest.java``)::

    {"algorithm": "HMACSHA256", "issuedAt": null, "userId": "005...",
     "client": {"instanceUrl": "https://...", "oauthToken": "00D...!AR...", "targetOrigin": "..."},
     "context": {"user": {"email": "...", "fullName": "...", "userId": "005..."},
                 "organization": {"organizationId": "00D..."},
                 "environment": {"displayLocation": "PageLayout", "subLocation": "...",
                                 "record": {"attributes": {"type": "Opportunity"}, "Id": "006..."},
                                 "parameters": {...}}}}

The signature is checked before the envelope is decoded, in constant time. The SDK decodes
both Base64 alphabets (commons-codec, URL-safe mode), so does this. ``issuedAt`` is
documented as "for internal use only" (older guides: when the OAuth token was issued) and
is ``null`` in every published example, so it is no request timestamp: a freshness limit
is available (``max_age``) but off by default — a limit on the token's age would refuse
reps whose Salesforce session is simply older than the limit.

The envelope carries the user's Salesforce session token (``client.oauthToken``); nothing
here keeps, returns or logs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.core.errors import StagelinkError

__all__ = [
    "ALGORITHM",
    "MAX_SIGNED_REQUEST",
    "CanvasContext",
    "CanvasError",
    "read_context",
    "to_18",
    "verify_signed_request",
]

#: The only algorithm Salesforce signs Canvas requests with.
ALGORITHM = "HMACSHA256"
#: A signed request is a few KB (context + tokens); refuse absurd ones before hashing.
MAX_SIGNED_REQUEST = 256_000

_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_SALESFORCE_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class CanvasError(StagelinkError):
    """A signed request that proves nothing, or lacks what we need; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CanvasContext:
    """What stagelink uses of a verified Canvas request (no tokens)."""

    #: The Salesforce user's id (``005...``).
    user_id: str
    user_email: str | None
    user_name: str | None
    organization_id: str | None
    #: The record the app is shown on (18 characters), from ``environment.record.Id`` or the
    #: ``recordId`` Canvas parameter; ``None`` when the app is not on a record page.
    record_id: str | None
    #: ``environment.record.attributes.type`` (``Opportunity``...), when Salesforce sent it.
    record_type: str | None
    display_location: str | None
    sub_location: str | None


def verify_signed_request(
    signed_request: str,
    consumer_secret: str,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> dict[str, Any]:
    """The envelope of a Canvas ``signed_request`` signed with ``consumer_secret``.

    Raises :class:`CanvasError` for a malformed, forged or tampered request, another
    algorithm than HMAC-SHA256, or (with ``max_age``) an ``issuedAt`` older than that.
    """
    if not consumer_secret:
        raise CanvasError("no consumer secret to verify with")
    text = signed_request.strip()
    if not text:
        raise CanvasError("empty signed_request")
    if len(text) > MAX_SIGNED_REQUEST:
        raise CanvasError(f"signed_request longer than {MAX_SIGNED_REQUEST} characters")
    encoded_signature, dot, encoded_envelope = text.partition(".")
    if not dot or not encoded_signature or not encoded_envelope:
        raise CanvasError("signed_request is not '<signature>.<envelope>'")
    signature = _b64decode(encoded_signature, "signature")
    # The MAC covers the envelope exactly as sent, still Base64-encoded.
    expected = hmac.new(
        consumer_secret.encode(), encoded_envelope.encode("ascii", "replace"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, signature):
        raise CanvasError("signature does not match (tampered, or another consumer secret)")
    try:
        envelope = json.loads(_b64decode(encoded_envelope, "envelope"))
    except (ValueError, UnicodeDecodeError):
        raise CanvasError("signed envelope is not JSON") from None
    if not isinstance(envelope, dict):
        raise CanvasError(f"signed envelope is a JSON {type(envelope).__name__}, not an object")
    algorithm = envelope.get("algorithm")
    if not isinstance(algorithm, str) or algorithm.upper() != ALGORITHM:
        shown = algorithm[:20] if isinstance(algorithm, str) else algorithm
        raise CanvasError(f"algorithm is {shown!r}, expected {ALGORITHM!r}")
    if max_age is not None:
        _check_age(envelope.get("issuedAt"), now or datetime.now(UTC), max_age)
    return envelope


def read_context(envelope: Mapping[str, Any]) -> CanvasContext:
    """The user and record of a verified envelope; :class:`CanvasError` when the user is
    missing or the record id is not a Salesforce id."""
    context = _object(envelope.get("context"))
    user = _object(context.get("user"))
    environment = _object(context.get("environment"))
    record = _object(environment.get("record"))
    parameters = _object(environment.get("parameters"))
    user_id = _string(envelope.get("userId")) or _string(user.get("userId"))
    if user_id is None:
        raise CanvasError("no userId in the signed request")
    raw_record = _string(record.get("Id")) or _string(parameters.get("recordId"))
    record_id = None
    if raw_record is not None:
        if not _SALESFORCE_ID.match(raw_record):
            raise CanvasError(f"record id {raw_record[:40]!r} is not a Salesforce id")
        record_id = to_18(raw_record)
    email = _string(user.get("email"))
    return CanvasContext(
        user_id=user_id,
        user_email=email.lower() if email else None,
        user_name=_string(user.get("fullName")),
        organization_id=_string(_object(context.get("organization")).get("organizationId")),
        record_id=record_id,
        record_type=_string(_object(record.get("attributes")).get("type")),
        display_location=_string(environment.get("displayLocation")),
        sub_location=_string(environment.get("subLocation")),
    )


def to_18(record_id: str) -> str:
    """The 18-character, case-insensitive form of a Salesforce id (15 → 18; 18 unchanged).

    Each suffix character encodes which of five id characters are upper case; APIs return
    18-character ids, which is how synced records are stored.
    """
    if len(record_id) == 18:
        return record_id
    if len(record_id) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, not {len(record_id)}")
    suffix = ""
    for start in range(0, 15, 5):
        chunk = record_id[start : start + 5]
        bits = sum(1 << index for index, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _ID_SUFFIX[bits]
    return record_id + suffix


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.match(text):
        raise CanvasError(f"{what} is not Base64")
    # Salesforce sends standard Base64; accept the URL-safe alphabet and lost padding too.
    normalized = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(normalized + "=" * (-len(normalized) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CanvasError(f"{what} is not Base64") from None


def _check_age(issued: Any, now: datetime, max_age: timedelta) -> None:
    if issued is None:
        return  # Salesforce usually sends null: nothing to check
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise CanvasError("issuedAt is not a number")
    # Epoch milliseconds (Java's habit) or seconds; 1e11 s is the year 5138.
    seconds = issued / 1000 if issued > 1e11 else float(issued)
    moment = datetime.fromtimestamp(seconds, UTC)
    age = now - moment
    if age > max_age:
        raise CanvasError(f"issuedAt is {age.total_seconds():.0f} s old")
    if -age > timedelta(minutes=5):
        raise CanvasError(f"issuedAt is {-age.total_seconds():.0f} s in the future")


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
