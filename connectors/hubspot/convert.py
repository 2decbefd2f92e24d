"""Pure conversion of HubSpot payloads (``wire.py`` shapes) into stagelink's records.

Nothing here talks to HubSpot: every function takes what the client returned and gives back
records, or a :class:`~connectors.core.records.BadRecord` naming the field that could not be
read, so one malformed deal never stops a page (facts B2, B4, B5).

Stage history comes from the calculated ``hs_v2_date_entered_<stage id>`` (and the older
``hs_date_entered_<stage id>``) properties: each one present is one :class:`StageChange`, in
time order. Re-entering a stage overwrites its property, so only the latest entry per stage
survives — HubSpot keeps no more than that in these properties.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.core.normalize import (
    MAX_TEXT,
    FieldError,
    clip_raw,
    clip_text,
    to_bool,
    to_date,
    to_datetime,
    to_decimal,
    to_fraction,
    to_text,
)
from connectors.core.records import (
    Account,
    BadRecord,
    ObjectType,
    Opportunity,
    Owner,
    Pipeline,
    Stage,
    StageChange,
)
from connectors.hubspot import wire

__all__ = [
    "COMPANY_CURRENCY_PROPERTY",
    "COMPANY_PROPERTIES",
    "DEAL_PROPERTIES",
    "PRIMARY_COMPANY_TYPE",
    "PRIMARY_COMPANY_TYPE_ID",
    "StageCatalog",
    "company_properties",
    "company_to_account",
    "deal_properties",
    "deal_to_records",
    "owner_to_record",
    "pipeline_to_records",
    "primary_company",
]

# facts B4: the standard properties each record needs (plus the configured extra ones).
COMPANY_PROPERTIES: tuple[str, ...] = (
    "name",
    "industry",
    "country",
    "type",
    "hubspot_owner_id",
    "annualrevenue",
    "createdate",
    "hs_lastmodifieddate",
)
DEAL_PROPERTIES: tuple[str, ...] = (
    "dealname",
    "pipeline",
    "dealstage",
    "amount",
    "deal_currency_code",
    "closedate",
    "hs_deal_stage_probability",
    "hs_is_closed",
    "hs_is_closed_won",
    "dealtype",
    "hubspot_owner_id",
    "createdate",
    "hs_lastmodifieddate",
)
#: HubSpot has no standard currency property on companies (``annualrevenue`` is in the
#: portal's currency); a portal that keeps one can add it to ``extra_properties.companies``.
COMPANY_CURRENCY_PROPERTY = "currency"
#: The region is no standard property either: read only when configured as an extra one.
COMPANY_REGION_PROPERTY = "region"
# facts B5: deal → company "Primary" association (type id 5; v3 lists it as deal_to_company).
PRIMARY_COMPANY_TYPE_ID = 5
PRIMARY_COMPANY_TYPE = "deal_to_company"
_DATE_ENTERED_PREFIXES = ("hs_v2_date_entered_", "hs_date_entered_")


class StageCatalog:
    """The deal pipelines of a portal, to label stages and know their metadata."""

    def __init__(self, pipelines: Iterable[wire.Pipeline]) -> None:
        self.pipelines: tuple[wire.Pipeline, ...] = tuple(pipelines)
        self._stages = {(p.id, s.id): s for p in self.pipelines for s in p.stages}
        # Stage ids are unique in a portal (custom ones are numeric), so one lookup serves
        # the history properties, which name the stage but not its pipeline.
        self._by_stage = {s.id: s for p in self.pipelines for s in p.stages}
        self._pipeline_ids = {p.id for p in self.pipelines}

    def has_pipeline(self, pipeline_id: str) -> bool:
        """Whether the portal has this pipeline."""
        return pipeline_id in self._pipeline_ids

    def stage(self, pipeline_id: str, stage_id: str) -> wire.PipelineStage | None:
        """The stage ``stage_id`` of pipeline ``pipeline_id``, if it exists."""
        return self._stages.get((pipeline_id, stage_id))

    def any_stage(self, stage_id: str) -> wire.PipelineStage | None:
        """The stage with this id in any pipeline."""
        return self._by_stage.get(stage_id)

    def date_entered_properties(self) -> list[str]:
        """``hs_v2_date_entered_<id>`` and ``hs_date_entered_<id>`` of every known stage."""
        return [
            prefix + stage.id
            for pipeline in self.pipelines
            for stage in pipeline.stages
            for prefix in _DATE_ENTERED_PREFIXES
        ]


def deal_properties(catalog: StageCatalog, extra: Sequence[str]) -> list[str]:
    """Every property a deal read asks for: standard, configured, stage entry dates."""
    return list(dict.fromkeys([*DEAL_PROPERTIES, *extra, *catalog.date_entered_properties()]))


def company_properties(extra: Sequence[str]) -> list[str]:
    """Every property a company read asks for: standard and configured."""
    return list(dict.fromkeys([*COMPANY_PROPERTIES, *extra]))


# -- metadata --------------------------------------------------------------------------------


def owner_to_record(owner: wire.Owner) -> Owner:
    """A HubSpot owner; archived owners stay as inactive (deals may still name them)."""
    parts = [p.strip() for p in (owner.first_name, owner.last_name) if p and p.strip()]
    return Owner(
        crm_id=owner.id,
        email=to_text(owner.email, "email"),
        name=clip_text(" ".join(parts), MAX_TEXT) if parts else None,
        active=not owner.archived,
        raw=clip_raw(dataclasses.asdict(owner)),
    )


def pipeline_to_records(pipeline: wire.Pipeline) -> list[Pipeline | Stage]:
    """A pipeline and its stages (probability from the string metadata, facts B4)."""
    records: list[Pipeline | Stage] = [
        Pipeline(
            crm_id=pipeline.id,
            label=clip_text(pipeline.label),
            display_order=pipeline.display_order,
            active=not pipeline.archived,
            raw=clip_raw({k: v for k, v in dataclasses.asdict(pipeline).items() if k != "stages"}),
        )
    ]
    for stage in pipeline.stages:
        records.append(
            Stage(
                pipeline_crm_id=pipeline.id,
                crm_id=stage.id,
                label=clip_text(stage.label),
                display_order=stage.display_order,
                probability=stage.probability,
                is_closed=stage.is_closed,
                is_won=_stage_is_won(stage),
                active=not stage.archived,
                raw=clip_raw(dataclasses.asdict(stage)),
            )
        )
    return records


def _stage_is_won(stage: wire.PipelineStage) -> bool:
    # HubSpot's own rule for hs_is_closed_won: a closed stage at probability 1.0.
    return stage.is_closed and (stage.probability == 1.0 or stage.id == "closedwon")


# -- companies -------------------------------------------------------------------------------


def company_to_account(obj: wire.CrmObject, extra: Sequence[str] = ()) -> Account | BadRecord:
    """A company as an :class:`Account`, or a :class:`BadRecord` naming the bad field."""
    props = obj.properties
    try:
        return Account(
            crm_id=obj.id,
            name=to_text(props.get("name"), "name"),
            industry=to_text(props.get("industry"), "industry"),
            country=to_text(props.get("country"), "country"),
            region=(
                to_text(props.get(COMPANY_REGION_PROPERTY), COMPANY_REGION_PROPERTY)
                if COMPANY_REGION_PROPERTY in extra
                else None
            ),
            type=to_text(props.get("type"), "type"),
            owner_crm_id=to_text(props.get("hubspot_owner_id"), "hubspot_owner_id"),
            currency=to_text(props.get(COMPANY_CURRENCY_PROPERTY), COMPANY_CURRENCY_PROPERTY),
            annual_revenue=to_decimal(props.get("annualrevenue"), "annualrevenue"),
            custom_fields=_custom_fields(props, extra),
            crm_created_at=_moment(props, "createdate", obj.created_at),
            crm_modified_at=_moment(props, "hs_lastmodifieddate", obj.updated_at),
            raw=clip_raw(obj.to_json()),
        )
    except FieldError as exc:
        return _bad(ObjectType.ACCOUNT, obj, str(exc))


# -- deals -----------------------------------------------------------------------------------


def primary_company(links: Iterable[wire.AssociatedId]) -> str | None:
    """The primary associated company (type 5 / ``deal_to_company``), else the first one."""
    first: str | None = None
    for link in links:
        if PRIMARY_COMPANY_TYPE_ID in link.type_ids or PRIMARY_COMPANY_TYPE in link.types:
            return link.id
        if first is None:
            first = link.id
    return first


def deal_to_records(
    obj: wire.CrmObject, catalog: StageCatalog, extra: Sequence[str] = ()
) -> list[Opportunity | StageChange] | BadRecord:
    """A deal as an :class:`Opportunity` plus one :class:`StageChange` per stage entry date;
    a :class:`BadRecord` when the deal has no stage, an unknown pipeline or stage, or a value
    that cannot be read."""
    props = obj.properties
    pipeline_id = props.get("pipeline")
    stage_id = props.get("dealstage")
    if not pipeline_id:
        return _bad(ObjectType.OPPORTUNITY, obj, "field 'pipeline': the deal has no pipeline")
    if not stage_id:
        return _bad(ObjectType.OPPORTUNITY, obj, "field 'dealstage': the deal has no stage")
    if not catalog.has_pipeline(pipeline_id):
        return _bad(
            ObjectType.OPPORTUNITY, obj, f"field 'pipeline': unknown pipeline {pipeline_id!r}"
        )
    stage = catalog.stage(pipeline_id, stage_id)
    if stage is None:
        return _bad(
            ObjectType.OPPORTUNITY,
            obj,
            f"field 'dealstage': unknown stage {stage_id!r} of pipeline {pipeline_id!r}",
        )
    try:
        history = _stage_history(obj, catalog)
        entered = {change.to_stage: change.changed_at for change in history}
        probability = to_fraction(
            props.get("hs_deal_stage_probability"), "hs_deal_stage_probability", percent=False
        )
        is_closed = to_bool(props.get("hs_is_closed"), "hs_is_closed", default=stage.is_closed)
        opportunity = Opportunity(
            crm_id=obj.id,
            name=to_text(props.get("dealname"), "dealname"),
            account_crm_id=primary_company(obj.associations.get("companies", ())),
            pipeline_crm_id=pipeline_id,
            stage_crm_id=stage_id,
            stage_label=clip_text(stage.label),
            amount=to_decimal(props.get("amount"), "amount"),
            currency=to_text(props.get("deal_currency_code"), "deal_currency_code"),
            close_date=to_date(props.get("closedate"), "closedate"),
            probability=probability if probability is not None else stage.probability,
            is_closed=is_closed,
            is_won=to_bool(
                props.get("hs_is_closed_won"), "hs_is_closed_won", default=_stage_is_won(stage)
            ),
            type=to_text(props.get("dealtype"), "dealtype"),
            owner_crm_id=to_text(props.get("hubspot_owner_id"), "hubspot_owner_id"),
            custom_fields=_custom_fields(props, extra),
            crm_created_at=_moment(props, "createdate", obj.created_at),
            crm_modified_at=_moment(props, "hs_lastmodifieddate", obj.updated_at),
            stage_entered_at=entered.get(stage_id),
            raw=clip_raw(obj.to_json()),
        )
    except FieldError as exc:
        return _bad(ObjectType.OPPORTUNITY, obj, str(exc))
    return [opportunity, *history]


def _stage_history(obj: wire.CrmObject, catalog: StageCatalog) -> list[StageChange]:
    """One change per stage with an entry date, oldest first; ``from_stage`` is the stage
    entered just before (ties keep the pipeline's display order)."""
    # The v2 property wins over the old one (both normally hold the same time).
    chosen: dict[str, str] = {}
    for prefix in reversed(_DATE_ENTERED_PREFIXES):
        for name, value in obj.properties.items():
            if value and name.startswith(prefix):
                chosen[name[len(prefix) :]] = name
    entries: list[tuple[datetime, int, str]] = []
    for stage_id, name in chosen.items():
        moment = to_datetime(obj.properties[name], name)
        known = catalog.any_stage(stage_id)
        if moment is not None:
            entries.append((moment, known.display_order if known else 0, stage_id))
    entries.sort()
    changes: list[StageChange] = []
    previous: str | None = None
    for moment, _, stage_id in entries:
        changes.append(
            StageChange(
                opportunity_crm_id=obj.id,
                to_stage=stage_id,
                changed_at=moment,
                from_stage=previous,
                source="date_entered",
            )
        )
        previous = stage_id
    return changes


# -- helpers ---------------------------------------------------------------------------------


def _moment(
    props: Mapping[str, str | None], name: str, fallback: datetime | None
) -> datetime | None:
    value = to_datetime(props.get(name), name)
    return value if value is not None else fallback


def _custom_fields(props: Mapping[str, str | None], extra: Sequence[str]) -> dict[str, Any]:
    # Values stay HubSpot's strings (clipped): mapping rules compare them as configured.
    return {name: to_text(props.get(name), name) for name in extra}


def _bad(object_type: ObjectType, obj: wire.CrmObject, reason: str) -> BadRecord:
    return BadRecord(object_type, obj.id, reason, clip_raw(obj.to_json()))
