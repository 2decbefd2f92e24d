"""Recommendations, coverage and effectiveness over the synced data.

The pure engine (:mod:`mapping`) knows nothing of storage; :class:`Recommender` loads a
deal, its account, owner and stage metadata from the database and asks the engine. The
CLI, the web layer and the scheduler all go through it::

    recommender = Recommender.open(config, storage_engine)
    for rec in recommender.recommend("salesforce-prod", "006..."):
        rec.content.title, rec.score, rec.explanation
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from connectors.core.errors import StagelinkError
from connectors.core.records import Account, Opportunity, Owner, Stage
from mapping import (
    CatalogItem,
    CoverageReport,
    CrmStageRef,
    Effect,
    Evaluation,
    ObservedStage,
    OpportunityFacts,
    Outcome,
    Recommendation,
    RecommendationEngine,
    Touch,
    build_engine,
    compute_effectiveness,
    coverage_report,
)
from stagelink.settings import AppConfig
from stagelink.storage import (
    Connection,
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmStage,
    CrmStageHistory,
    UsageEvent,
    UsageStatus,
    session_factory,
)

__all__ = ["OpportunityNotFound", "Recommender"]

_R = TypeVar("_R", Opportunity, Account, Owner, Stage)


class OpportunityNotFound(StagelinkError, LookupError):
    """No synced (and not deleted) opportunity with that id in that connection."""


class Recommender:
    """The engine built from the configuration, plus the database it reads deals from.

    ``recommend`` is safe to call from many threads; ``refresh_effectiveness`` swaps in a
    new engine atomically.
    """

    def __init__(
        self,
        config: AppConfig,
        sessions: sessionmaker[Session],
        *,
        engine: RecommendationEngine | None = None,
        strict: bool = True,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.engine = engine or build_engine(config, strict=strict)

    @classmethod
    def open(cls, config: AppConfig, storage: Engine, *, effectiveness: bool = True) -> Recommender:
        """Build from ``config`` (raises ``MappingError`` for a bad catalog or rules); with
        ``effectiveness`` and a non-zero blend, rank with the current win-rate lift."""
        recommender = cls(config, session_factory(storage))
        if effectiveness and config.mapping.effectiveness.blend > 0:
            recommender.refresh_effectiveness()
        return recommender

    # --- one deal -----------------------------------------------------------------------

    def facts(self, connection: str, opportunity_crm_id: str) -> OpportunityFacts:
        """The deal and what surrounds it, from storage.

        Raises ``KeyError`` for a connection that is not configured and
        :class:`OpportunityNotFound` for a deal that is not synced or was deleted.
        """
        self.config.connection(connection)  # KeyError naming the configured ones
        with self.sessions() as session:
            connection_id = session.scalar(
                select(Connection.id).where(Connection.name == connection)
            )
            row = None
            if connection_id is not None:
                row = session.scalar(
                    select(CrmOpportunity).where(
                        CrmOpportunity.connection_id == connection_id,
                        CrmOpportunity.crm_id == opportunity_crm_id,
                    )
                )
            if row is None or row.deleted_at is not None:
                state = "was deleted in the CRM" if row is not None else "is not synced"
                raise OpportunityNotFound(
                    f"opportunity {opportunity_crm_id!r} of connection {connection!r} {state}"
                )
            account = owner = stage = None
            if row.account_crm_id:
                account = session.scalar(
                    select(CrmAccount).where(
                        CrmAccount.connection_id == connection_id,
                        CrmAccount.crm_id == row.account_crm_id,
                    )
                )
            if row.owner_crm_id:
                owner = session.scalar(
                    select(CrmOwner).where(
                        CrmOwner.connection_id == connection_id,
                        CrmOwner.crm_id == row.owner_crm_id,
                    )
                )
            if row.stage_crm_id:
                stage = session.scalar(
                    select(CrmStage).where(
                        CrmStage.connection_id == connection_id,
                        CrmStage.crm_id == row.stage_crm_id,
                        CrmStage.pipeline_crm_id == (row.pipeline_crm_id or "default"),
                    )
                )
            return _facts(connection, row, account, owner, stage)

    def recommend(
        self,
        connection: str,
        opportunity_crm_id: str,
        *,
        mobile: bool = False,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Recommendation]:
        """The top content for one synced deal, best first, each with its explanation."""
        facts = self.facts(connection, opportunity_crm_id)
        return self.engine.recommend_for(facts, now=now, mobile=mobile, limit=limit)

    def recommend_for(
        self,
        facts: OpportunityFacts,
        *,
        mobile: bool = False,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Recommendation]:
        """The top content for a deal the caller already has (no database access)."""
        return self.engine.recommend_for(facts, now=now, mobile=mobile, limit=limit)

    def content(self, content_id: str) -> CatalogItem | None:
        """A catalog item by id (tracked links resolve their target with it)."""
        return self.engine.catalog.get(content_id)

    def evaluate(
        self,
        connection: str,
        opportunity_crm_id: str,
        *,
        mobile: bool = False,
        limit: int | None = None,
        now: datetime | None = None,
        explain: bool = False,
    ) -> tuple[OpportunityFacts, Evaluation]:
        """The deal's facts and everything the engine decided for it."""
        facts = self.facts(connection, opportunity_crm_id)
        evaluation = self.engine.evaluate(
            facts, now=now, mobile=mobile, limit=limit, explain=explain
        )
        return facts, evaluation

    # --- effectiveness ------------------------------------------------------------------

    def effectiveness(self) -> list[Effect]:
        """Per content item and canonical stage: uses, deals touched, smoothed win rates."""
        touches: list[Touch] = []
        outcomes: list[Outcome] = []
        with self.sessions() as session:
            names = _connection_names(session)
            stages = _stage_metadata(session)
            history: dict[tuple[int, str], list[tuple[datetime, str | None, str]]] = {}
            for conn_id, opp_id, from_stage, to_stage, changed_at in session.execute(
                select(
                    CrmStageHistory.connection_id,
                    CrmStageHistory.opportunity_crm_id,
                    CrmStageHistory.from_stage,
                    CrmStageHistory.to_stage,
                    CrmStageHistory.changed_at,
                ).order_by(CrmStageHistory.changed_at, CrmStageHistory.id)
            ):
                history.setdefault((conn_id, opp_id), []).append((changed_at, from_stage, to_stage))
            deals: dict[tuple[int, str], Any] = {}
            for deal in session.execute(
                select(
                    CrmOpportunity.connection_id,
                    CrmOpportunity.crm_id,
                    CrmOpportunity.pipeline_crm_id,
                    CrmOpportunity.stage_crm_id,
                    CrmOpportunity.stage_label,
                    CrmOpportunity.probability,
                    CrmOpportunity.is_closed,
                    CrmOpportunity.is_won,
                ).where(CrmOpportunity.deleted_at.is_(None))
            ):
                deals[(deal.connection_id, deal.crm_id)] = deal
            events = session.execute(
                select(
                    UsageEvent.connection_id,
                    UsageEvent.opportunity_crm_id,
                    UsageEvent.content_id,
                    UsageEvent.occurred_at,
                ).where(
                    UsageEvent.opportunity_crm_id.is_not(None),
                    UsageEvent.status != UsageStatus.REJECTED,
                )
            ).all()

        def canonical(conn_id: int, pipeline: str | None, stage_id: str | None) -> str | None:
            meta = stages.get((conn_id, pipeline or "default", stage_id or ""))
            ref = _ref(pipeline, stage_id, meta)
            mapper = self.engine.mappers.get(names.get(conn_id, ""), self.engine.default_mapper)
            return mapper.resolve(ref).canonical

        for key, deal in deals.items():
            reached = {canonical(key[0], deal.pipeline_crm_id, deal.stage_crm_id)}
            for _, from_stage, to_stage in history.get(key, ()):
                reached.add(canonical(key[0], deal.pipeline_crm_id, to_stage))
                if from_stage:
                    reached.add(canonical(key[0], deal.pipeline_crm_id, from_stage))
            reached.discard(None)
            won = bool(deal.is_won) if deal.is_closed else None
            outcomes.append(Outcome(key, frozenset(s for s in reached if s), won))
        for conn_id, used_opp_id, content_id, occurred_at in events:
            if used_opp_id is None:
                continue
            used_on = deals.get((conn_id, used_opp_id))
            if used_on is None:
                continue  # not synced (yet) or deleted: no stage to attribute it to
            history_key = (conn_id, used_opp_id)
            stage_then = _stage_at(history.get(history_key, []), occurred_at)
            stage = canonical(conn_id, used_on.pipeline_crm_id, stage_then or used_on.stage_crm_id)
            if stage is not None:
                touches.append(Touch(history_key, content_id, stage))
        return compute_effectiveness(
            touches,
            outcomes,
            prior_strength=self.config.mapping.effectiveness.prior_strength,
            stage_order=self.engine.canonical_stages,
        )

    def refresh_effectiveness(self) -> list[Effect]:
        """Recompute effectiveness and rank with it from now on."""
        effects = self.effectiveness()
        self.engine = self.engine.with_effects(effects)
        return effects

    # --- coverage -----------------------------------------------------------------------

    def observed_stages(self) -> dict[str, list[ObservedStage]]:
        """Per configured connection: CRM stages from stage metadata and from deals."""
        out: dict[str, list[ObservedStage]] = {c.name: [] for c in self.config.connections}
        with self.sessions() as session:
            names = _connection_names(session)
            for row in session.scalars(select(CrmStage).where(CrmStage.deleted_at.is_(None))):
                name = names.get(row.connection_id)
                if name in out:
                    out[name].append(ObservedStage(_ref(row.pipeline_crm_id, row.crm_id, row)))
            open_count = func.sum(case((CrmOpportunity.is_closed.is_(False), 1), else_=0))
            query = (
                select(
                    CrmOpportunity.connection_id,
                    CrmOpportunity.pipeline_crm_id,
                    CrmOpportunity.stage_crm_id,
                    func.max(CrmOpportunity.stage_label),
                    func.count(),
                    open_count,
                )
                .where(CrmOpportunity.deleted_at.is_(None))
                .group_by(
                    CrmOpportunity.connection_id,
                    CrmOpportunity.pipeline_crm_id,
                    CrmOpportunity.stage_crm_id,
                )
            )
            for conn_id, pipeline, stage_id, label, count, open_deals in session.execute(query):
                name = names.get(conn_id)
                if name in out:
                    ref = CrmStageRef(pipeline, stage_id, label)
                    out[name].append(ObservedStage(ref, int(count), int(open_deals or 0)))
        return out

    def deals(self, *, limit: int | None = None) -> Iterator[OpportunityFacts]:
        """Every synced, not deleted deal with account and owner (streamed)."""
        account = aliased(CrmAccount)
        owner = aliased(CrmOwner)
        query = (
            select(Connection.name, CrmOpportunity, account, owner)
            .join(Connection, Connection.id == CrmOpportunity.connection_id)
            .outerjoin(
                account,
                and_(
                    account.connection_id == CrmOpportunity.connection_id,
                    account.crm_id == CrmOpportunity.account_crm_id,
                ),
            )
            .outerjoin(
                owner,
                and_(
                    owner.connection_id == CrmOpportunity.connection_id,
                    owner.crm_id == CrmOpportunity.owner_crm_id,
                ),
            )
            .where(CrmOpportunity.deleted_at.is_(None))
            .order_by(CrmOpportunity.id)
            .limit(limit)
            .execution_options(yield_per=1000)
        )
        with self.sessions() as session:
            stages = _stage_metadata(session)
            for name, opp, acc, own in session.execute(query):
                meta = stages.get(
                    (opp.connection_id, opp.pipeline_crm_id or "default", opp.stage_crm_id or "")
                )
                yield _facts(name, opp, acc, own, meta)

    def coverage(
        self, *, max_deals: int | None = None, now: datetime | None = None
    ) -> CoverageReport:
        """Stages without content, CRM stages without mapping, idle rules, unreached content."""
        return coverage_report(
            self.engine,
            observed=self.observed_stages(),
            deals=self.deals(limit=max_deals),
            now=now or datetime.now(UTC),
        )


# --- rows to records ----------------------------------------------------------------------


def _facts(
    connection: str, opportunity: Any, account: Any, owner: Any, stage: Any
) -> OpportunityFacts:
    """What the engine knows of one stored deal; account, owner and stage rows may be None."""
    return OpportunityFacts(
        connection=connection,
        opportunity=_record(Opportunity, opportunity),
        account=_record(Account, account) if account is not None else None,
        owner=_record(Owner, owner) if owner is not None else None,
        stage=_record(Stage, stage) if stage is not None else None,
    )


def _record(kind: type[_R], row: Any) -> _R:
    """The normalized record for a stored row (same field names; ``raw`` left out)."""
    values = {
        f.name: getattr(row, f.name)
        for f in dataclasses.fields(kind)
        if f.name != "raw" and hasattr(row, f.name)
    }
    return kind(**values)


def _connection_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(Connection.id, Connection.name))
    # Not dict(rows): a Result has .keys() (column names), so dict() would index it.
    return {conn_id: name for conn_id, name in rows}  # noqa: C416


def _stage_metadata(session: Session) -> Mapping[tuple[int, str, str], CrmStage]:
    rows = session.scalars(select(CrmStage)).all()
    return {(r.connection_id, r.pipeline_crm_id, r.crm_id): r for r in rows}


def _ref(pipeline: str | None, stage_id: str | None, meta: Any) -> CrmStageRef:
    if meta is None:
        return CrmStageRef(pipeline, stage_id)
    return CrmStageRef(
        pipeline,
        stage_id,
        meta.label,
        meta.probability,
        bool(meta.is_closed),
        bool(meta.is_won),
    )


def _stage_at(changes: list[tuple[datetime, str | None, str]], moment: datetime) -> str | None:
    """The CRM stage a deal was in at ``moment``, from its (time-ordered) stage changes."""
    if not changes:
        return None
    position = bisect.bisect_right([c[0] for c in changes], moment)
    if position == 0:
        first = changes[0]
        return first[1] or first[2]  # before the first known change: where it came from
    return changes[position - 1][2]
