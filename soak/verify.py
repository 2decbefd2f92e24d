"""The end-of-soak checks: local storage equals each CRM, and every accepted usage event is
exactly one CRM activity.

The comparison of storage with a sandbox and the reads of activities in a sandbox are the
test suite's own (``tests.sync.conftest``, ``tests.writeback.helpers``), so the soak and
the tests judge by the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from sandbox.salesforce import SalesforceSandbox
from stagelink.storage import Connection, OutboxState, UsageEvent, UsageStatus, WritebackOutbox
from tests.sync.conftest import HS, SF, World, differences, hs_truth, sf_truth, stored
from tests.writeback.helpers import CrmView, HubSpotView, SalesforceView

from .usage import SentEvent

__all__ = ["ActivityCheck", "StorageCheck", "check_activities", "check_storage"]


@dataclass
class StorageCheck:
    """Local storage against the CRMs' live records."""

    #: Records compared (accounts and opportunities, both CRMs).
    compared: int = 0
    by_connection: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_storage(world: World) -> StorageCheck:
    """Compare every live account and opportunity of each sandbox with what stagelink stored."""
    check = StorageCheck()
    truths = {SF: sf_truth(world.sf), HS: hs_truth(world.hs)}
    for name, truth in truths.items():
        count = sum(map(len, truth.values()))
        check.by_connection[name] = count
        check.compared += count
        check.problems += [
            f"{name}: {problem}" for problem in differences(truth, stored(world, name))
        ]
    return check


@dataclass
class ActivityCheck:
    """Usage events against the activities found in the CRMs."""

    sent: int = 0
    #: Events stored with status accepted (at once, or held and then resolved).
    accepted: int = 0
    #: ... of which the API had answered ``held`` first.
    accepted_after_hold: int = 0
    rejected: int = 0
    #: The longest an event answered ``held`` waited to be settled (accepted or rejected).
    longest_hold_seconds: float = 0.0
    #: Accepted events found exactly once as a CRM activity, on their deal.
    written_once: int = 0
    #: Accepted events whose deal was deleted in the CRM before they could be written, and
    #: that the CRM refused (dead-lettered with its error): correctly not written.
    refused_deal_deleted: int = 0
    #: marker → how many activities carry it (more than one).
    duplicates: dict[str, int] = field(default_factory=dict)
    #: Accepted events with no activity (and no reason for none), with their outbox state.
    missing: list[str] = field(default_factory=list)
    #: Other contradictions: an answer lost from storage, an activity on the wrong deal,
    #: an activity for an event that was not accepted, an event still held.
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Stored:
    status: UsageStatus
    reason: str | None
    connection: str
    opportunity: str | None
    state: OutboxState | None
    last_error: str | None
    #: Seconds from its arrival to its last change (a held event: until it was settled).
    settled_after: float


def check_activities(world: World, sent: Iterable[SentEvent]) -> ActivityCheck:
    """Every accepted event exactly once in its CRM; the API's answers all kept."""
    events = {e.client_event_id: e for e in sent}
    check = ActivityCheck(sent=len(events))
    rows = _stored_events(world)
    check.problems += _answers_kept(events, rows)
    check.longest_hold_seconds = max(
        (
            row.settled_after
            for cid, row in rows.items()
            if cid in events and events[cid].answers[:1] == [UsageStatus.HELD.value]
        ),
        default=0.0,
    )
    views: dict[str, CrmView] = {SF: SalesforceView(world.sf), HS: HubSpotView(world.hs)}
    live = {
        SF: {str(r["Id"]) for r in world.sf.records("Opportunity")},
        HS: {str(d["id"]) for d in world.hs.objects("deals")},
    }
    recycled = {SF: _recycled_markers(world.sf), HS: Counter[str]()}
    for name, view in views.items():
        mine = {f"sl-{cid}": row for cid, row in rows.items() if row.connection == name}
        found = view.activities(list(mine))
        for marker, row in sorted(mine.items()):
            visible = found.get(marker, [])
            total = len(visible) + recycled[name][marker]
            if row.status is not UsageStatus.ACCEPTED:
                if total:
                    check.problems.append(
                        f"{name} {marker}: {row.status} event has {total} activities"
                    )
                if row.status is UsageStatus.REJECTED:
                    check.rejected += 1
                else:
                    check.problems.append(f"{name} {marker}: still {row.status} after the drain")
                continue
            check.accepted += 1
            first = events[marker[3:]].answers[:1] if marker[3:] in events else []
            if first == [UsageStatus.HELD.value]:
                check.accepted_after_hold += 1
            if total > 1:
                check.duplicates[marker] = total
            elif total == 1:
                check.written_once += 1
                if visible and visible[0].opportunity != row.opportunity:
                    check.problems.append(
                        f"{name} {marker}: written on {visible[0].opportunity}, "
                        f"not on {row.opportunity}"
                    )
            elif row.opportunity not in live[name] and row.state is OutboxState.DEAD:
                check.refused_deal_deleted += 1
            else:
                check.missing.append(
                    f"{name} {marker} (deal {row.opportunity}"
                    f"{'' if row.opportunity in live[name] else ', deleted in the CRM'}): "
                    f"outbox {row.state}, {row.last_error or 'no error'}"
                )
    return check


def _stored_events(world: World) -> dict[str, _Stored]:
    """Every stored usage event with its outbox row, by client event id."""
    with world.storage.sessions() as session:
        query = (
            select(
                UsageEvent.client_event_id,
                UsageEvent.status,
                UsageEvent.reason,
                Connection.name,
                UsageEvent.opportunity_crm_id,
                WritebackOutbox.state,
                WritebackOutbox.last_error,
                UsageEvent.received_at,
                UsageEvent.updated_at,
            )
            .join(Connection, Connection.id == UsageEvent.connection_id)
            .outerjoin(WritebackOutbox, WritebackOutbox.usage_event_id == UsageEvent.id)
        )
        stored_events: dict[str, _Stored] = {}
        for cid, status, reason, name, deal, state, error, received, changed in session.execute(
            query
        ):
            settled = (changed - received).total_seconds()
            stored_events[str(cid)] = _Stored(status, reason, name, deal, state, error, settled)
        return stored_events


def _answers_kept(events: dict[str, SentEvent], rows: dict[str, _Stored]) -> list[str]:
    """What the API answered must be what storage holds: an accepted (or held) event is
    stored, stays accepted, and nothing is stored that the client did not send."""
    problems: list[str] = []
    for cid, event in events.items():
        row = rows.get(cid)
        answered = set(event.answers)
        if row is None:
            if answered & {UsageStatus.ACCEPTED.value, UsageStatus.HELD.value}:
                problems.append(f"{event.marker}: answered {event.answers} but not stored")
            elif not event.answers:
                problems.append(f"{event.marker}: never answered")
            continue
        if UsageStatus.ACCEPTED.value in answered and row.status is not UsageStatus.ACCEPTED:
            problems.append(f"{event.marker}: answered accepted, stored {row.status}")
        if row.status is UsageStatus.ACCEPTED and row.state is None:
            problems.append(f"{event.marker}: accepted without an outbox row")
    problems += [f"sl-{cid}: stored but never sent" for cid in set(rows) - set(events)]
    return problems


def _recycled_markers(org: SalesforceSandbox) -> Counter[str]:
    """Markers of activities in Salesforce's recycle bin: deleting an opportunity takes its
    Tasks and Events along, so an event written before its deal was deleted lies there."""
    counts: Counter[str] = Counter()
    condition = '"IsDeleted" = 1 AND "Description" LIKE \'%stagelink event: sl-%\''
    for sobject in ("Task", "Event"):
        for row in org.records(sobject, condition, include_deleted=True):
            marker = str(row["Description"]).rsplit("stagelink event: ", 1)[1].strip()
            counts[marker] += 1
    return counts
