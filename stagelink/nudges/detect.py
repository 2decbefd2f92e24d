"""Detection: new ``crm_stage_history`` rows → ledger rows in ``nudge_transitions``.

A history row becomes a *waiting* transition when the deal entered a new canonical stage
(its previous stage maps to another one) and, as stored now, is still in it, open, not
deleted, and the change is younger than ``max_age``; its owner's e-mail names the rep.
Rows that can never qualify are written to the ledger as *skipped* with the reason;
rows that may qualify once the rest of a sync lands (the deal not stored yet, or not yet
in that stage) are left for the next run.

Where a connection's detection stands is its :class:`NudgeCursor`. The first time a
connection is seen after a successful sync, everything already stored is taken as the
past: turning nudges on (or the first sync of years of history) never sends a storm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from mapping import CrmStageRef
from mapping.stages import StageMapper
from stagelink.nudges.config import NudgeSettings
from stagelink.storage import (
    Connection,
    CrmOpportunity,
    CrmOwner,
    CrmStage,
    CrmStageHistory,
    JobKind,
    JobRun,
    JobStatus,
)
from stagelink.storage.models.nudges import NudgeCursor, NudgeTransition, TransitionStatus

__all__ = ["SETTLE_LAG", "Detection", "detect_connection"]

#: History rows synced longer ago than this are final: no open transaction can still add
#: rows with smaller ids (sync batches commit in seconds). Younger ones are looked at again.
SETTLE_LAG = timedelta(minutes=10)
#: History rows examined per connection and run; the rest wait for the next run.
BATCH_LIMIT = 20_000
_CHUNK = 900


@dataclass
class Detection:
    """What one detection pass over one connection found."""

    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    #: Rows left for the next run, by reason (e.g. the deal row not synced yet).
    later: Counter[str] = field(default_factory=Counter)
    #: New history rows older than ``max_age`` (backfills): never nudged.
    stale: int = 0
    #: The connection's cursor was created now (nothing before it is nudged).
    started: bool = False


@dataclass(frozen=True)
class _Verdict:
    status: TransitionStatus | None  # None: look again next run
    reason: str | None
    canonical: str | None = None
    previous: str | None = None
    rep: str | None = None


def detect_connection(
    session: Session,
    *,
    connection: str,
    settings: NudgeSettings,
    mapper: Callable[[], StageMapper | None],
    now: datetime,
) -> Detection:
    """Examine ``connection``'s new history rows inside ``session`` (the caller commits).

    ``mapper`` gives the connection's stage mapper, called only when there are rows to
    judge; None means "not now": the rows stay for the next pass."""
    result = Detection()
    connection_id = session.scalar(select(Connection.id).where(Connection.name == connection))
    if connection_id is None:
        return result
    cursor = session.scalar(
        select(NudgeCursor).where(NudgeCursor.connection_id == connection_id).with_for_update()
    )
    history = CrmStageHistory
    top = session.scalar(select(func.max(history.id)).where(history.connection_id == connection_id))
    if cursor is None:
        if not _synced_once(session, connection_id):
            return result  # the first full sync is history, not news: wait for it to finish
        session.add(
            NudgeCursor(
                connection_id=connection_id,
                settled_id=top or 0,
                seen_id=top or 0,
                started_at=now,
                updated_at=now,
            )
        )
        result.started = True
        return result

    cutoff = now - settings.max_age
    result.stale = (
        session.scalar(
            select(func.count()).where(
                history.connection_id == connection_id,
                history.id > cursor.seen_id,
                history.changed_at < cutoff,
            )
        )
        or 0
    )
    already = exists().where(NudgeTransition.history_id == history.id)
    rows = session.scalars(
        select(history)
        .where(
            history.connection_id == connection_id,
            history.id > cursor.settled_id,
            history.changed_at >= cutoff,
            ~already,
        )
        .order_by(history.id)
        .limit(BATCH_LIMIT)
    ).all()
    if rows:
        stage_mapper = mapper()
        if stage_mapper is None:
            result.later["not_ready"] += len(rows)
            return result
        _judge_rows(session, connection_id, rows, settings, stage_mapper, now, cutoff, result)

    settled = session.scalar(
        select(func.max(history.id)).where(
            history.connection_id == connection_id,
            history.id > cursor.settled_id,
            history.synced_at < now - SETTLE_LAG,
        )
    )
    if settled is not None:
        if len(rows) == BATCH_LIMIT:
            settled = min(settled, rows[-1].id)  # never settle past rows not examined yet
        cursor.settled_id = max(cursor.settled_id, settled)
    cursor.seen_id = max(cursor.seen_id, top or 0)
    cursor.updated_at = now
    return result


def _synced_once(session: Session, connection_id: int) -> bool:
    return (
        session.scalar(
            select(JobRun.id)
            .where(
                JobRun.connection_id == connection_id,
                JobRun.kind == JobKind.SYNC,
                JobRun.status == JobStatus.SUCCEEDED,
            )
            .limit(1)
        )
        is not None
    )


def _judge_rows(
    session: Session,
    connection_id: int,
    rows: Sequence[CrmStageHistory],
    settings: NudgeSettings,
    mapper: StageMapper,
    now: datetime,
    cutoff: datetime,
    result: Detection,
) -> None:
    opportunity_ids = sorted({row.opportunity_crm_id for row in rows})
    deals = {
        deal.crm_id: deal
        for chunk in _chunks(opportunity_ids)
        for deal in session.scalars(
            select(CrmOpportunity).where(
                CrmOpportunity.connection_id == connection_id,
                CrmOpportunity.crm_id.in_(chunk),
            )
        )
    }
    timelines: dict[str, list[tuple[datetime, int, str, str | None]]] = {}
    for chunk in _chunks(opportunity_ids):
        for opp_id, changed_at, row_id, to_stage, from_stage in session.execute(
            select(
                CrmStageHistory.opportunity_crm_id,
                CrmStageHistory.changed_at,
                CrmStageHistory.id,
                CrmStageHistory.to_stage,
                CrmStageHistory.from_stage,
            ).where(
                CrmStageHistory.connection_id == connection_id,
                CrmStageHistory.opportunity_crm_id.in_(chunk),
            )
        ):
            timelines.setdefault(opp_id, []).append((changed_at, row_id, to_stage, from_stage))
    for timeline in timelines.values():
        timeline.sort()
    recent: set[tuple[str, str | None]] = set()
    for chunk in _chunks(opportunity_ids):
        found = session.execute(
            select(NudgeTransition.opportunity_crm_id, NudgeTransition.canonical_stage).where(
                NudgeTransition.connection_id == connection_id,
                NudgeTransition.opportunity_crm_id.in_(chunk),
                NudgeTransition.status.in_([TransitionStatus.WAITING, TransitionStatus.NUDGED]),
                NudgeTransition.changed_at >= cutoff,
            )
        )
        recent.update((opportunity, stage) for opportunity, stage in found)
    stages = {
        (stage.pipeline_crm_id, stage.crm_id): stage
        for stage in session.scalars(
            select(CrmStage).where(CrmStage.connection_id == connection_id)
        )
    }
    owner_ids = sorted({d.owner_crm_id for d in deals.values() if d.owner_crm_id})
    owners = {
        owner.crm_id: owner
        for chunk in _chunks(owner_ids)
        for owner in session.scalars(
            select(CrmOwner).where(
                CrmOwner.connection_id == connection_id, CrmOwner.crm_id.in_(chunk)
            )
        )
    }

    def canonical(pipeline: str | None, stage_id: str | None) -> str | None:
        meta = stages.get((pipeline or "default", stage_id or ""))
        ref = (
            CrmStageRef(pipeline, stage_id)
            if meta is None
            else CrmStageRef(
                pipeline,
                stage_id,
                meta.label,
                meta.probability,
                bool(meta.is_closed),
                bool(meta.is_won),
            )
        )
        return mapper.resolve(ref).canonical

    def closed(deal: CrmOpportunity) -> bool:
        meta = stages.get((deal.pipeline_crm_id or "default", deal.stage_crm_id or ""))
        return bool(deal.is_closed) or bool(meta is not None and meta.is_closed)

    new_rows: list[dict[str, Any]] = []
    for row in rows:
        verdict = _judge(
            row,
            deals.get(row.opportunity_crm_id),
            timelines.get(row.opportunity_crm_id, []),
            canonical=canonical,
            closed=closed,
            owners=owners,
            recent=recent,
            settings=settings,
        )
        if verdict.status is None:
            result.later[verdict.reason or "later"] += 1
            continue
        if verdict.status is TransitionStatus.WAITING:
            result.queued += 1
            recent.add((row.opportunity_crm_id, verdict.canonical))
        else:
            result.skipped[verdict.reason or "skipped"] += 1
        new_rows.append(
            {
                "connection_id": connection_id,
                "history_id": row.id,
                "opportunity_crm_id": row.opportunity_crm_id,
                "to_stage": row.to_stage,
                "canonical_stage": verdict.canonical,
                "previous_canonical_stage": verdict.previous,
                "changed_at": row.changed_at,
                "rep_email": verdict.rep,
                "status": verdict.status,
                "reason": verdict.reason,
                "detected_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(new_rows), 500):
        session.add_all(NudgeTransition(**values) for values in new_rows[start : start + 500])
        session.flush()


def _judge(
    row: CrmStageHistory,
    deal: CrmOpportunity | None,
    timeline: Sequence[tuple[datetime, int, str, str | None]],
    *,
    canonical: Callable[[str | None, str | None], str | None],
    closed: Callable[[CrmOpportunity], bool],
    owners: dict[str, CrmOwner],
    recent: set[tuple[str, str | None]],
    settings: NudgeSettings,
) -> _Verdict:
    skip = TransitionStatus.SKIPPED
    if deal is None:
        return _Verdict(None, "deal_not_synced_yet")
    if deal.deleted_at is not None:
        return _Verdict(skip, "deleted")
    if closed(deal):
        return _Verdict(skip, "closed")
    stage = canonical(deal.pipeline_crm_id, row.to_stage)
    if stage is None:
        return _Verdict(skip, "unmapped_stage")
    key = (row.changed_at, row.id)
    if any((moment, row_id) > key for moment, row_id, _to, _from in timeline):
        return _Verdict(skip, "superseded", stage)
    before = [entry for entry in timeline if (entry[0], entry[1]) < key]
    previous_stage = before[-1][2] if before else row.from_stage
    if previous_stage is None:
        return _Verdict(skip, "new_deal", stage)
    previous = canonical(deal.pipeline_crm_id, previous_stage)
    if previous == stage:
        return _Verdict(skip, "same_canonical_stage", stage, previous)
    if canonical(deal.pipeline_crm_id, deal.stage_crm_id) != stage:
        # The deal row lags its history (streams sync one after the other): look again.
        return _Verdict(None, "deal_not_in_stage_yet")
    if (row.opportunity_crm_id, stage) in recent:
        return _Verdict(skip, "duplicate", stage, previous)
    owner = owners.get(deal.owner_crm_id or "")
    email = owner.email if owner is not None else None
    if not email:
        return _Verdict(skip, "no_owner_email", stage, previous)
    if not settings.channels_for(email):
        return _Verdict(skip, "rep_opted_out", stage, previous, email)
    return _Verdict(TransitionStatus.WAITING, None, stage, previous, email)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
