"""Proof for the demo that written activities landed: ask the CRM for them by marker.

The writeback engine records each activity's CRM id; this asks the CRM itself (through the
connector, so through the real client library and API) which of the written markers it
holds, the way the engine reconciles after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from connectors.core.activities import Activity
from stagelink.settings import AppConfig
from stagelink.storage import Connection, OutboxState, UsageEvent, WritebackOutbox
from stagelink.sync.runner import Storage, connector_for

__all__ = ["Landed", "read_back"]


@dataclass(frozen=True)
class Landed:
    """Of the activities stagelink wrote to one CRM, how many the CRM returns."""

    connection: str
    written: int
    found: int
    #: A few CRM ids, e.g. ``Task 00T...``, to show.
    examples: tuple[str, ...]


def read_back(config: AppConfig, storage: Storage, connection_name: str) -> Landed:
    """Look every written activity of ``connection_name`` up in the CRM by its marker."""
    with storage.sessions() as session:
        rows = session.execute(
            select(WritebackOutbox.external_marker, UsageEvent)
            .join(UsageEvent, UsageEvent.id == WritebackOutbox.usage_event_id)
            .join(Connection, Connection.id == WritebackOutbox.connection_id)
            .where(Connection.name == connection_name, WritebackOutbox.state == OutboxState.WRITTEN)
        ).all()
        activities = [
            Activity(
                marker=marker,
                opportunity_crm_id=event.opportunity_crm_id or "",
                action=event.action.value,
                occurred_at=event.occurred_at,
                content_id=event.content_id,
                content_title=event.content_id,
                rep_email=event.rep_email,
            )
            for marker, event in rows
        ]
    if not activities:
        return Landed(connection_name, 0, 0, ())
    with connector_for(config.connection(connection_name), None) as connector:
        found = connector.find_activities(activities)
    examples = tuple(f"{f.crm_object_type} {f.crm_id}" for f in found[:3])
    return Landed(connection_name, len(activities), len({f.marker for f in found}), examples)
