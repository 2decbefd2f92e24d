"""Usage activities written back to a CRM timeline, and what the CRM answered.

The write-back engine turns each accepted usage event into an :class:`Activity` (content,
rep, deal, owner already resolved) and hands batches to
:meth:`~connectors.core.connector.Connector.write_activities`. The connector answers one
:class:`WriteResult` per activity, keyed by the activity's ``marker``:

============ ===================================================================
``written``  the CRM holds the activity (``crm_id``); created now or before
``retry``    the CRM did not apply it and may accept it later (lock, rate limit)
``failed``   the CRM refused this record for good (validation, deleted deal)
``unknown``  it may or may not have been applied (the answer was lost): the engine
             must look for it (:meth:`Connector.find_activities`) before resending
============ ===================================================================

The ``marker`` (``sl-<client event id>``) is the idempotency key: a connector writes it into
the activity — as an external-id value where the CRM has one, else in the text — so a
crashed or ambiguous batch can be found again with
:meth:`~connectors.core.connector.Connector.find_activities`.

A connector raises only for the whole request: :class:`~connectors.core.errors.
BudgetExhaustedError` and :class:`~connectors.core.errors.ConfigurationError` mean nothing
was applied; a :class:`~connectors.core.errors.RecordError` or
:class:`~connectors.core.errors.FatalError` (a 4xx for the request) too; any other error
(a dropped connection, a 5xx, a cut answer) leaves every activity of the batch ``unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "Activity",
    "FoundActivity",
    "OwnerSource",
    "WriteResult",
    "WriteStatus",
    "clip",
    "format_duration",
    "marker_token",
]

#: How each usage action reads at the start of a subject line.
ACTION_VERBS = {
    "viewed": "Viewed",
    "shared": "Shared",
    "presented": "Presented",
    "downloaded": "Downloaded",
    "opened": "Opened",
}
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def marker_token(marker: str) -> str:
    """The marker as one alphanumeric word (``sl-1b4e…`` → ``sl1b4e…``).

    CRMs that only offer full-text search split words at punctuation; a single word is
    what their token search can find exactly.
    """
    return _NOT_ALNUM.sub("", marker)


class OwnerSource(StrEnum):
    """Whom the activity was assigned to, and why."""

    REP = "rep"  # the rep's own CRM user
    OPPORTUNITY_OWNER = "opportunity_owner"  # the rep has no CRM user: the deal's owner
    INTEGRATION_USER = "integration_user"  # no deal owner either: the configured user
    DEFAULT = "default"  # nobody known: the CRM's default (the API user, or no owner)


@dataclass(frozen=True, slots=True)
class Activity:
    """One usage event as a CRM timeline activity."""

    #: Idempotency key, unique per usage event (``sl-<client event id>``).
    marker: str
    opportunity_crm_id: str
    #: viewed, shared, presented, downloaded (the usage action's value).
    action: str
    occurred_at: datetime
    content_id: str
    content_title: str
    rep_email: str
    content_url: str | None = None
    #: The deal's account/company, when known (HubSpot associates the note with it too).
    account_crm_id: str | None = None
    #: The CRM user the activity is assigned to (``None``: the CRM's default).
    owner_crm_id: str | None = None
    owner_source: OwnerSource = OwnerSource.REP
    #: A sentence saying why the owner is not the rep (shown in the activity).
    attribution_note: str | None = None
    duration_seconds: int | None = None
    channel: str | None = None

    @property
    def verb(self) -> str:
        """``Presented``, ``Viewed``... (the action, capitalised)."""
        return ACTION_VERBS.get(self.action, self.action.replace("_", " ").capitalize())

    def subject(self, limit: int = 255) -> str:
        """``Presented: <content title>``, at most ``limit`` characters."""
        return clip(f"{self.verb}: {self.content_title}", limit)

    def without_owner(self, reason: str) -> Activity:
        """This activity left to the CRM's default owner, saying why (the CRM refused the
        chosen one: deactivated since the last sync, for example)."""
        note = f"{self.attribution_note} {reason}" if self.attribution_note else reason
        return replace(
            self, owner_crm_id=None, owner_source=OwnerSource.DEFAULT, attribution_note=note
        )

    def details(self) -> list[tuple[str, str]]:
        """The facts of the activity as ``(label, value)`` lines, marker last."""
        lines = [("Content", self.content_title)]
        if self.content_url:
            lines.append(("Link", self.content_url))
        lines.append(("Action", self.action))
        if self.duration_seconds is not None:
            lines.append(("Duration", format_duration(self.duration_seconds)))
        if self.channel:
            lines.append(("Channel", self.channel))
        lines.append(("Rep", self.rep_email))
        lines.append(("When", self.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
        if self.attribution_note:
            lines.append(("Note", self.attribution_note))
        lines.append(("stagelink event", self.marker))
        return lines

    def text_body(self, limit: int | None = None) -> str:
        """The details as plain text lines; the marker line is never cut off."""
        lines = [f"{label}: {value}" for label, value in self.details()]
        body = "\n".join(lines)
        if limit is None or len(body) <= limit:
            return body
        tail = "\n" + lines[-1]
        return clip("\n".join(lines[:-1]), limit - len(tail)) + tail


def format_duration(seconds: int) -> str:
    """``95`` → ``1 min 35 s``; ``3600`` → ``60 min``."""
    minutes, rest = divmod(max(seconds, 0), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


class WriteStatus(StrEnum):
    """What became of one activity (see the module docstring)."""

    WRITTEN = "written"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The CRM's answer for one activity."""

    marker: str
    status: WriteStatus
    crm_id: str | None = None
    #: Task, Event, note, task... as written.
    crm_object_type: str | None = None
    #: The CRM's own error (code and message) for ``retry``/``failed``/``unknown``.
    error: str | None = None
    retry_after: timedelta | None = None


@dataclass(frozen=True, slots=True)
class FoundActivity:
    """An activity found in the CRM by its marker (reconciliation after a crash)."""

    marker: str
    crm_id: str
    crm_object_type: str
