"""The usage API's payloads: what clients send and what they get back (pydantic).

Validation here is *structural* (types, formats, lengths); a batch that fails it is
refused as a whole with one error per field. What depends on the deployment (the
connection and content exist, the rep may be reported by this token, the time is
plausible) is checked per event by :mod:`stagelink.usage.ingest`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from stagelink.storage import UsageAction, UsageStatus

__all__ = [
    "AssignIn",
    "AssignResult",
    "BatchResult",
    "ErrorBody",
    "ErrorDetail",
    "EventResult",
    "UsageBatchIn",
    "UsageEventIn",
]

# Pragmatic: one "@", no spaces, a dot in the domain. Deliverability is not our concern,
# matching the rep to a CRM user is (done on write-back).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value.lower()


def _iso_text(value: Any) -> Any:
    # Pydantic would read a number as a Unix time; the contract is ISO 8601 text.
    if not isinstance(value, str | datetime):
        raise PydanticCustomError(
            "datetime_type",
            "expected an ISO 8601 date-time with an offset, e.g. 2024-05-01T09:30:00Z",
        )
    return value


Email = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=3, max_length=320),
    AfterValidator(_email),
]
Name = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100)
]
CrmId = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=255)
]
ContentId = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200)
]
Channel = Annotated[
    str,
    StringConstraints(
        strict=True, strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[\w.:-]+$"
    ),
]
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
#: A week; the column is a 32-bit integer and longer "uses" are clock or client bugs.
MAX_DURATION_SECONDS = 7 * 24 * 3600


class UsageEventIn(BaseModel):
    """One thing a rep did with a piece of content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_event_id: uuid.UUID = Field(description="UUID the client made; retries reuse it.")
    rep: Email | None = Field(
        default=None, description="The rep's e-mail; a rep token's own rep when omitted."
    )
    connection: Name = Field(description="The configured CRM connection's name.")
    opportunity_id: CrmId | None = Field(
        default=None, description="The CRM's opportunity/deal id; omit when there is none yet."
    )
    content_id: ContentId = Field(description="An id of the content catalog.")
    action: UsageAction
    occurred_at: Instant = Field(description="ISO 8601 with an offset (Z or ±hh:mm).")
    duration_seconds: Annotated[int, Field(strict=True, ge=0, le=MAX_DURATION_SECONDS)] | None = (
        None
    )
    channel: Channel | None = Field(
        default=None, description="Where it happened: mobile_page, hubspot_card, app..."
    )


class UsageBatchIn(BaseModel):
    """``POST /api/v1/usage``: a batch of events (the limit is enforced before parsing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: Annotated[list[UsageEventIn], Field(min_length=1)]


class EventResult(BaseModel):
    """What became of one event of a batch (in the batch's order)."""

    index: int
    client_event_id: str
    status: UsageStatus
    #: True when the event was received before (a retry): ``status`` is its current one.
    duplicate: bool = False
    reason: str | None = None


class BatchResult(BaseModel):
    """The answer to a batch: one result per event, and how many of each status."""

    results: list[EventResult]
    counts: dict[str, int]


class AssignIn(BaseModel):
    """``POST /api/v1/usage/{client_event_id}/assign``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opportunity_id: CrmId


class AssignResult(BaseModel):
    """An assigned event's status after resolution (``held`` while it is being fetched)."""

    client_event_id: str
    opportunity_id: str | None
    status: UsageStatus
    #: True when the event already had this opportunity (a retried assign).
    duplicate: bool = False
    reason: str | None = None


class ErrorDetail(BaseModel):
    """One problem of a refused request, pointing at the field."""

    #: Path in the body, e.g. ``["events", 3, "occurred_at"]``.
    loc: list[str | int]
    type: str
    message: str
    #: For batch errors: which event, and its id when it had a readable one.
    index: int | None = None
    client_event_id: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx of the usage API: a stable ``code``, a message, details per field."""

    code: Literal[
        "missing_token",
        "invalid_token",
        "insufficient_scope",
        "forbidden",
        "not_found",
        "conflict",
        "malformed_json",
        "invalid_request",
        "batch_too_large",
        "body_too_large",
        "unavailable",
        "internal_error",
    ]
    message: str
    errors: list[ErrorDetail] = Field(default_factory=list)
    #: For ``batch_too_large``/``body_too_large``: the limit that applies.
    limit: int | None = None
