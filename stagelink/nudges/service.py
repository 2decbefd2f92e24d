"""``run_nudges``: detect stage changes, plan per rep, send — one node at a time.

Called after every sync job and every minute by the scheduler (deferred digests and
quiet-hour deliveries go out then). A pass holds the database lease ``nudges``, so with
several nodes only one detects and sends; on top of that the ledger's unique history id
and the ``pending → sending`` claim make every transition's nudge go out once.

A nudge found ``sending`` at the start of a pass was being sent by a process that died:
whatever it had not recorded as delivered is marked ``unknown`` and not sent again — a
missing nudge is better than a duplicate.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from typing import Any

import structlog
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from connectors.core.errors import ConfigurationError
from mapping import CrmStageRef
from mapping.stages import StageMapper
from stagelink.jobs import JobAlreadyRunning, default_node_id, take_job_lease
from stagelink.nudges.config import Channel, NudgeSettings
from stagelink.nudges.detect import Detection, detect_connection
from stagelink.nudges.mailer import DeliveryError, Mailer, build_message
from stagelink.nudges.plan import Policy, Waiting, decide
from stagelink.nudges.render import DealLink, RenderedNudge, deal_link, render_digest, render_single
from stagelink.nudges.subscriptions import subscriptions_for
from stagelink.nudges.webpush import PushSender
from stagelink.recommendations import OpportunityNotFound, Recommender
from stagelink.settings import AppConfig
from stagelink.storage import Connection, CrmOpportunity, CrmStage, CrmStageHistory, utcnow
from stagelink.storage.leases import release_lease
from stagelink.storage.models.nudges import (
    Nudge,
    NudgeCursor,
    NudgeKind,
    NudgeState,
    NudgeTransition,
    PushSubscription,
    TransitionStatus,
)
from stagelink.surfaces.links import LinkSigner
from stagelink.surfaces.views import build_view
from stagelink.sync.runner import Storage

__all__ = [
    "LEASE_NAME",
    "NudgeReport",
    "configuration_problems",
    "nudge_settings",
    "run_nudges",
]

log = structlog.get_logger(__name__)

LEASE_NAME = "nudges"
#: Subscriptions failing this many times in a row (not "gone") are dropped.
_MAX_PUSH_FAILURES = 20
_local = threading.Lock()


@dataclass
class NudgeReport:
    """What one pass did (``stagelink nudges run`` prints it; logs carry it)."""

    enabled: bool = True
    #: Another node or thread was running a pass; this one did nothing.
    busy: bool = False
    #: Connections whose detection started now (their history so far is the past).
    started: list[str] = field(default_factory=list)
    detected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    later: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    #: Waiting changes held back, by reason (quiet_hours, collecting, rate_limited).
    deferred: Counter[str] = field(default_factory=Counter)
    #: Waiting changes dropped before sending (closed, deleted, moved on, stale since).
    dropped: Counter[str] = field(default_factory=Counter)
    singles: int = 0
    digests: int = 0
    sent_email: int = 0
    sent_push: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    retrying: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "enabled": self.enabled,
            "busy": self.busy,
            "started": list(self.started),
            "detected": self.detected,
            "skipped": dict(self.skipped),
            "later": dict(self.later),
            "stale": self.stale,
            "deferred": dict(self.deferred),
            "dropped": dict(self.dropped),
            "singles": self.singles,
            "digests": self.digests,
            "sent_email": self.sent_email,
            "sent_push": self.sent_push,
            "failed": dict(self.failed),
            "retrying": self.retrying,
        }


def nudge_settings(config: AppConfig) -> NudgeSettings:
    """``config.nudges`` (defaults, i.e. off, when the configuration has none)."""
    settings = getattr(config, "nudges", None)
    return settings if isinstance(settings, NudgeSettings) else NudgeSettings()


def configuration_problems(config: AppConfig) -> list[tuple[str, str]]:
    """(key path, problem) for nudge settings only the whole configuration can judge
    (for ``stagelink check`` and the config loader's cross-checks)."""
    settings = nudge_settings(config)
    if not settings.enabled:
        return []
    problems: list[tuple[str, str]] = []
    if not config.server.public_url:
        problems.append(
            (
                "server.public_url",
                "required when nudges.enabled is true: links in e-mails and push messages "
                "must be absolute, e.g. https://stagelink.example.com",
            )
        )
    known = {connection.name for connection in config.connections}
    for index, name in enumerate(settings.connections or []):
        if name not in known:
            problems.append((f"nudges.connections[{index}]", f"no connection named {name!r}"))
    return problems


def run_nudges(
    config: AppConfig,
    storage: Storage,
    *,
    now: datetime | None = None,
    node_id: str | None = None,
    recommender: Recommender | None = None,
    signer: LinkSigner | None = None,
) -> NudgeReport:
    """One pass: detect new stage changes, plan each rep's nudges, send what is due.

    Raises ``ConfigurationError`` when nudges are on but cannot build links (no
    ``server.public_url``, no link signing key). ``recommender``/``signer``: ones the
    caller keeps (else built for this pass).
    """
    settings = nudge_settings(config)
    if not settings.enabled:
        return NudgeReport(enabled=False)
    base_url = config.server.public_url
    if not base_url:
        raise ConfigurationError(
            "server.public_url: required for nudges (links in e-mails and push messages "
            "must reach the reps' phones), e.g. https://stagelink.example.com"
        )
    moment = now or utcnow()
    holder = node_id or default_node_id()
    report = NudgeReport()
    with _exclusive(storage, holder, config.scheduler.lease_ttl) as mine:
        if not mine:
            report.busy = True
            return report
        links = signer or LinkSigner.from_config(config)
        _Pass(config, settings, storage, recommender, links, base_url, moment, holder, report).run()
    counts = report.as_dict()
    did_something = any(v for k, v in counts.items() if k not in ("enabled", "busy"))
    # Every minute on every node: only passes that did something are worth an info line.
    (log.info if did_something else log.debug)("nudges_pass", **counts)
    return report


@contextmanager
def _exclusive(storage: Storage, holder: str, ttl: timedelta) -> Iterator[bool]:
    # Threads of one process share a node id (and so the lease): a lock keeps them apart.
    if not _local.acquire(blocking=False):
        yield False
        return
    try:
        try:
            # A killed process of this host is taken over at once, not after its lease.
            take_job_lease(storage.sessions, LEASE_NAME, holder, ttl, what="a nudge pass")
        except JobAlreadyRunning as exc:
            log.info("nudges_skipped_lease_held", reason=str(exc))
            yield False
            return
        try:
            yield True
        finally:
            release_lease(storage.sessions, LEASE_NAME, holder)
    finally:
        _local.release()


@dataclass
class _Planned:
    nudge_id: int
    rep: str
    kind: NudgeKind
    channels: list[str]
    results: dict[str, Any]
    attempts: int
    transitions: list[tuple[str, str]]  # (connection name, opportunity id)


class _Pass:
    def __init__(
        self,
        config: AppConfig,
        settings: NudgeSettings,
        storage: Storage,
        recommender: Recommender | None,
        signer: LinkSigner,
        base_url: str,
        now: datetime,
        holder: str,
        report: NudgeReport,
    ) -> None:
        self.config = config
        self.settings = settings
        self.storage = storage
        self._recommender = recommender
        self.signer = signer
        self.base_url = base_url
        self.now = now
        self.holder = holder
        self.report = report
        self._mailer: Mailer | None = None
        self._pusher: PushSender | None = None

    @property
    def recommender(self) -> Recommender:
        # Built on first use: most passes (every minute) find nothing to do.
        if self._recommender is None:
            self._recommender = Recommender.open(self.config, self.storage.engine)
        return self._recommender

    def run(self) -> None:
        try:
            self._close_orphans()
            if self._work_ahead():
                # Build it now, outside any transaction: loading it reads the database, and
                # on SQLite a second session inside an open write transaction would wait.
                _ = self.recommender
            self._detect()
            self._plan()
            self._send_due()
        finally:
            if self._mailer is not None:
                self._mailer.close()
            if self._pusher is not None:
                self._pusher.close()

    # -- 0. nudges a dead process was sending ------------------------------------------------

    def _close_orphans(self) -> None:
        with self.storage.sessions.begin() as session:
            for nudge in session.scalars(select(Nudge).where(Nudge.state == NudgeState.SENDING)):
                results = dict(nudge.results)
                for channel in nudge.channels:
                    if results.get(channel, {}).get("state") not in ("sent", "failed", "skipped"):
                        results[channel] = {"state": "unknown", "at": _iso(self.now)}
                delivered = any(r.get("state") == "sent" for r in results.values())
                nudge.results = results
                nudge.state = NudgeState.SENT if delivered else NudgeState.FAILED
                nudge.last_error = (
                    f"interrupted while sending ({nudge.claimed_by}); "
                    "not sent again to avoid a duplicate"
                )
                log.warning("nudge_orphaned", nudge=nudge.id, claimed_by=nudge.claimed_by)

    def _work_ahead(self) -> bool:
        """Whether this pass has stage changes to judge, plan or send (most have none)."""
        cutoff = self.now - self.settings.max_age
        history = CrmStageHistory
        with self.storage.sessions() as session:
            waiting = select(NudgeTransition.id).where(
                NudgeTransition.status == TransitionStatus.WAITING
            )
            due = select(Nudge.id).where(
                Nudge.state == NudgeState.PENDING, Nudge.due_at <= self.now
            )
            fresh = (
                select(history.id)
                .join(NudgeCursor, NudgeCursor.connection_id == history.connection_id)
                .where(
                    history.id > NudgeCursor.settled_id,
                    history.changed_at >= cutoff,
                    ~exists().where(NudgeTransition.history_id == history.id),
                )
            )
            return any(
                session.scalar(query.limit(1)) is not None for query in (waiting, due, fresh)
            )

    # -- 1. detection --------------------------------------------------------------------------

    def _detect(self) -> None:
        names = [c.name for c in self.config.connections]
        if self.settings.connections is not None:
            names = [n for n in names if n in self.settings.connections]
        for name in names:

            def mapper(name: str = name) -> StageMapper | None:
                if self._recommender is None:
                    return None  # rows arrived after _work_ahead looked: the next pass
                engine = self._recommender.engine
                return engine.mappers.get(name, engine.default_mapper)

            with self.storage.sessions.begin() as session:
                found: Detection = detect_connection(
                    session, connection=name, settings=self.settings, mapper=mapper, now=self.now
                )
            if found.started:
                self.report.started.append(name)
            self.report.detected += found.queued
            self.report.skipped.update(found.skipped)
            self.report.later.update(found.later)
            self.report.stale += found.stale

    # -- 2. planning ---------------------------------------------------------------------------

    def _plan(self) -> None:
        with self.storage.sessions.begin() as session:
            waiting = session.execute(
                select(NudgeTransition, Connection.name)
                .join(Connection, Connection.id == NudgeTransition.connection_id)
                .where(NudgeTransition.status == TransitionStatus.WAITING)
                .order_by(NudgeTransition.id)
            ).all()
            if not waiting:
                return
            live = self._still_valid(session, [(row, name) for row, name in waiting])
            by_rep: dict[str, list[NudgeTransition]] = defaultdict(list)
            for row, _name in waiting:
                if row.id in live:
                    by_rep[row.rep_email or ""].append(row)
            with_push = set(
                session.scalars(
                    select(PushSubscription.rep_email)
                    .where(PushSubscription.rep_email.in_(sorted(by_rep)))
                    .distinct()
                )
            )
            for rep, rows in by_rep.items():
                self._plan_rep(session, rep, rows, push=rep in with_push)

    def _still_valid(
        self, session: Session, waiting: Sequence[tuple[NudgeTransition, str]]
    ) -> set[int]:
        """Ids of waiting changes still worth a nudge; the others are skipped with why."""
        keys = {(row.connection_id, row.opportunity_crm_id) for row, _ in waiting}
        deals: dict[tuple[int, str], CrmOpportunity] = {}
        for connection_id in {k[0] for k in keys}:
            ids = sorted(k[1] for k in keys if k[0] == connection_id)
            for start in range(0, len(ids), 900):
                for deal in session.scalars(
                    select(CrmOpportunity).where(
                        CrmOpportunity.connection_id == connection_id,
                        CrmOpportunity.crm_id.in_(ids[start : start + 900]),
                    )
                ):
                    deals[(connection_id, deal.crm_id)] = deal
        stages = {
            (s.connection_id, s.pipeline_crm_id, s.crm_id): s
            for s in session.scalars(
                select(CrmStage).where(CrmStage.connection_id.in_({k[0] for k in keys}))
            )
        }
        engine = self.recommender.engine
        live: set[int] = set()
        for row, name in waiting:
            found = deals.get((row.connection_id, row.opportunity_crm_id))
            reason: str | None = None
            if found is None or found.deleted_at is not None:
                reason = "deleted"
            else:
                deal = found
                meta = stages.get(
                    (row.connection_id, deal.pipeline_crm_id or "default", deal.stage_crm_id or "")
                )
                ref = CrmStageRef(deal.pipeline_crm_id, deal.stage_crm_id)
                if meta is not None:
                    ref = CrmStageRef(
                        deal.pipeline_crm_id,
                        deal.stage_crm_id,
                        meta.label,
                        meta.probability,
                        bool(meta.is_closed),
                        bool(meta.is_won),
                    )
                current = engine.mappers.get(name, engine.default_mapper).resolve(ref).canonical
                if deal.is_closed or (meta is not None and meta.is_closed):
                    reason = "closed"
                elif current != row.canonical_stage:
                    reason = "moved_on"
                elif row.changed_at < self.now - self.settings.max_age:
                    reason = "stale"
            if reason is None:
                live.add(row.id)
            else:
                row.status = TransitionStatus.SKIPPED
                row.reason = reason
                row.updated_at = self.now
                self.report.dropped[reason] += 1
        return live

    def _plan_rep(
        self, session: Session, rep: str, rows: list[NudgeTransition], *, push: bool
    ) -> None:
        channels = self._channels(rep, push=push)
        if not channels:
            reason = "no_push_subscription" if self.settings.channels_for(rep) else "rep_opted_out"
            for row in rows:
                row.status = TransitionStatus.SKIPPED
                row.reason = reason
                row.updated_at = self.now
            self.report.dropped[reason] += len(rows)
            return
        window = self.now - self.settings.rate_limit.per
        recent = session.scalars(
            select(Nudge.created_at).where(Nudge.rep_email == rep, Nudge.created_at > window)
        ).all()
        policy = Policy(
            rate_limit=self.settings.rate_limit,
            digest_threshold=self.settings.digest_threshold,
            collect_for=self.settings.collect_for,
            collect_max=self.settings.collect_max,
            quiet_hours=self.settings.quiet_hours_for(rep),
        )
        decision = decide(
            [Waiting(row.id, row.detected_at) for row in rows],
            now=self.now,
            policy=policy,
            recent=recent,
        )
        if decision.wait is not None:
            self.report.deferred[decision.wait] += len(rows)
            return
        by_id = {row.id: row for row in rows}
        groups: list[tuple[NudgeKind, tuple[int, ...]]] = [
            (NudgeKind.SINGLE, (row_id,)) for row_id in decision.singles
        ]
        if decision.digest:
            groups.append((NudgeKind.DIGEST, decision.digest))
        for kind, ids in groups:
            nudge = Nudge(
                rep_email=rep,
                kind=kind,
                state=NudgeState.PENDING,
                channels=list(channels),
                results={},
                attempts=0,
                due_at=self.now,
                created_at=self.now,
            )
            session.add(nudge)
            session.flush()
            for row_id in ids:
                row = by_id[row_id]
                row.status = TransitionStatus.NUDGED
                row.nudge_id = nudge.id
                row.updated_at = self.now
            if kind is NudgeKind.DIGEST:
                self.report.digests += 1
            else:
                self.report.singles += 1

    def _channels(self, rep: str, *, push: bool) -> list[Channel]:
        usable: list[Channel] = []
        for channel in self.settings.channels_for(rep):
            if channel == "email" and self.settings.smtp is not None:
                usable.append(channel)
            elif channel == "push" and self.settings.vapid is not None and push:
                usable.append(channel)
        return usable

    # -- 3. sending ----------------------------------------------------------------------------

    def _send_due(self) -> None:
        with self.storage.sessions() as session:
            due = session.scalars(
                select(Nudge.id)
                .where(Nudge.state == NudgeState.PENDING, Nudge.due_at <= self.now)
                .order_by(Nudge.id)
            ).all()
        for nudge_id in due:
            planned = self._claim(nudge_id)
            if planned is None:
                continue
            try:
                self._deliver(planned)
            except Exception as exc:  # one broken nudge must not hold up the others
                log.exception("nudge_failed", nudge=nudge_id)
                error = f"{type(exc).__name__}: {exc}"
                self._finish(planned, planned.results, NudgeState.FAILED, error[:2000], None)

    def _claim(self, nudge_id: int) -> _Planned | None:
        with self.storage.sessions.begin() as session:
            claimed = session.execute(
                update(Nudge)
                .where(Nudge.id == nudge_id, Nudge.state == NudgeState.PENDING)
                .values(
                    state=NudgeState.SENDING,
                    claimed_by=self.holder,
                    claimed_at=self.now,
                    attempts=Nudge.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None  # another node got it first
            nudge = session.get_one(Nudge, nudge_id)
            session.refresh(nudge)
            deals = session.execute(
                select(Connection.name, NudgeTransition.opportunity_crm_id)
                .join(Connection, Connection.id == NudgeTransition.connection_id)
                .where(NudgeTransition.nudge_id == nudge_id)
                .order_by(NudgeTransition.changed_at, NudgeTransition.id)
            ).all()
            return _Planned(
                nudge_id=nudge.id,
                rep=nudge.rep_email,
                kind=nudge.kind,
                channels=list(nudge.channels),
                results=dict(nudge.results),
                attempts=nudge.attempts,
                transitions=[(name, opp) for name, opp in deals],
            )

    def _render(self, planned: _Planned) -> RenderedNudge | None:
        single = planned.kind is NudgeKind.SINGLE
        items = self.settings.content_items if single else self.settings.digest_items
        links: list[DealLink] = []
        others: list[tuple[str, str]] = []
        for connection, opportunity in dict.fromkeys(planned.transitions):
            try:
                if len(links) >= self.settings.digest_max_deals:
                    # Past what one e-mail should carry (mail clients clip ~100 KB): named only.
                    deal = self.recommender.facts(connection, opportunity).opportunity
                    stage = deal.stage_label or deal.stage_crm_id or "a new stage"
                    others.append((deal.name or opportunity, stage))
                    continue
                view = build_view(
                    self.recommender,
                    self.signer,
                    connection=connection,
                    opportunity_id=opportunity,
                    rep=planned.rep,
                    mobile=True,
                    limit=max(items, 1),
                )
            except (OpportunityNotFound, KeyError):
                continue  # deleted since, or the connection left the configuration
            links.append(deal_link(view, self.base_url, items=items))
        if not links:
            return None
        if single and len(links) == 1:
            return render_single(links[0], rep=planned.rep)
        return render_digest(links, rep=planned.rep, others=others)

    def _deliver(self, planned: _Planned) -> None:
        results = planned.results
        rendered = self._render(planned)
        if rendered is None:
            self._finish(planned, results, NudgeState.FAILED, "the deals are gone", None)
            return
        for channel in planned.channels:
            if results.get(channel, {}).get("state") in ("sent", "failed", "skipped"):
                continue  # done on an earlier attempt
            if channel == "email":
                results["email"] = self._send_email(planned, rendered)
            elif channel == "push":
                results["push"] = self._send_push(planned, rendered, results.get("push", {}))
            self._record(planned.nudge_id, results, rendered.subject)
        retry = [c for c, r in results.items() if r.get("state") == "retry"]
        delivered = any(r.get("state") == "sent" for r in results.values())
        if retry and planned.attempts < self.settings.max_attempts:
            delay = min(timedelta(minutes=2**planned.attempts), timedelta(hours=1))
            self.report.retrying += 1
            self._finish(planned, results, NudgeState.PENDING, None, self.now + delay)
            return
        for channel in retry:
            results[channel] = {**results[channel], "state": "failed"}
        state = NudgeState.SENT if delivered else NudgeState.FAILED
        errors = [
            f"{c}: {r.get('detail')}" for c, r in results.items() if r.get("state") == "failed"
        ]
        self._finish(planned, results, state, "; ".join(errors) or None, None)

    def _send_email(self, planned: _Planned, rendered: RenderedNudge) -> dict[str, Any]:
        settings = self.settings.smtp
        if settings is None:
            return {"state": "skipped", "detail": "nudges.smtp is not configured"}
        if self._mailer is None:
            self._mailer = Mailer(settings)
        try:
            message = build_message(
                settings, to=planned.rep, rendered=rendered, nudge_id=planned.nudge_id
            )
        except (ValueError, HeaderParseError) as exc:
            self.report.failed["email"] += 1
            return {"state": "failed", "detail": f"cannot address {planned.rep!r}: {exc}"}
        try:
            self._mailer.send(message)
        except DeliveryError as exc:
            log.warning("nudge_email_failed", nudge=planned.nudge_id, error=str(exc))
            self.report.failed["email"] += 1
            return {"state": "failed" if exc.permanent else "retry", "detail": str(exc)}
        self.report.sent_email += 1
        return {"state": "sent", "at": _iso(self.now), "message_id": message["Message-ID"]}

    def _send_push(
        self, planned: _Planned, rendered: RenderedNudge, before: dict[str, Any]
    ) -> dict[str, Any]:
        vapid = self.settings.vapid
        if vapid is None:
            return {"state": "skipped", "detail": "nudges.vapid is not configured"}
        if self._pusher is None:
            self._pusher = PushSender(vapid)
        delivered: list[int] = list(before.get("delivered", []))
        with self.storage.sessions() as session:
            targets = [
                (s.id, {"endpoint": s.endpoint, "keys": {"p256dh": s.p256dh, "auth": s.auth}})
                for s in subscriptions_for(session, planned.rep)
                if s.id not in delivered
            ]
        if not targets and not delivered:
            return {"state": "skipped", "detail": "no push subscription"}
        transient: list[str] = []
        permanent: list[str] = []
        for subscription_id, info in targets:
            outcome = self._pusher.send(info, rendered.push)
            with self.storage.sessions.begin() as session:
                row = session.get(PushSubscription, subscription_id)
                if outcome.state == "sent":
                    delivered.append(subscription_id)
                    self.report.sent_push += 1
                    if row is not None:
                        row.last_sent_at = self.now
                        row.failures = 0
                elif outcome.state == "gone":
                    if row is not None:
                        session.delete(row)  # the browser unsubscribed
                    permanent.append(outcome.detail)
                else:
                    self.report.failed["push"] += 1
                    (permanent if outcome.permanent else transient).append(outcome.detail)
                    if row is not None:
                        row.failures += 1
                        if row.failures >= _MAX_PUSH_FAILURES:
                            session.delete(row)
        result: dict[str, Any] = {"delivered": delivered}
        if transient:
            return {**result, "state": "retry", "detail": "; ".join(transient)}
        if delivered:
            return {**result, "state": "sent", "at": _iso(self.now)}
        return {**result, "state": "failed", "detail": "; ".join(permanent) or "not delivered"}

    def _record(self, nudge_id: int, results: dict[str, Any], subject: str) -> None:
        # After every channel: a crash between channels leaves the sent ones recorded.
        with self.storage.sessions.begin() as session:
            session.execute(
                update(Nudge)
                .where(Nudge.id == nudge_id)
                .values(results=dict(results), subject=subject)
                .execution_options(synchronize_session=False)
            )

    def _finish(
        self,
        planned: _Planned,
        results: dict[str, Any],
        state: NudgeState,
        error: str | None,
        due_at: datetime | None,
    ) -> None:
        values: dict[str, Any] = {"results": dict(results), "state": state, "last_error": error}
        if state is NudgeState.SENT:
            values["sent_at"] = self.now
        if due_at is not None:
            values["due_at"] = due_at
        with self.storage.sessions.begin() as session:
            session.execute(
                update(Nudge)
                .where(Nudge.id == planned.nudge_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        log.info(
            "nudge_delivered" if state is NudgeState.SENT else "nudge_not_delivered",
            nudge=planned.nudge_id,
            rep=planned.rep,
            kind=planned.kind.value,
            state=state.value,
            results={c: r.get("state") for c, r in results.items()},
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat()
