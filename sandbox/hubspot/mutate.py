"""Simulated user activity between syncs: edits, archives and creates over companies and deals.

What a sync must survive, on purpose:

* with ``shared_timestamp=True`` every change of one call carries the same
  ``hs_lastmodifieddate`` (to the millisecond), like a bulk edit or a workflow;
* archiving (HubSpot's delete) does **not** change ``hs_lastmodifieddate`` — a sync that only
  searches by modification date never sees deletes and must list ``archived=true``;
* stage changes go through the same rules as the API: ``hs_date_entered_<stage>`` and
  ``hs_v2_date_entered_<stage>``, ``hs_is_closed*``, probability and ``dealstage`` history.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot.account import Account
from sandbox.hubspot.crm import WriteSource
from sandbox.hubspot.schema import COMPANIES, DEALS, INDUSTRIES, PIPELINES_BY_ID, ObjectTypeDef
from sandbox.hubspot.seed import PRODUCTS, company_name
from sandbox.hubspot.timeutil import datetime_from_ms, iso_from_ms


@dataclass(frozen=True)
class MutationSummary:
    """What one :meth:`HubSpotSandbox.mutate` call changed, by object type (ids as strings)."""

    timestamp: dt.datetime  # hs_lastmodifieddate of the first change (of all, if shared)
    edited: dict[str, list[str]] = field(default_factory=dict)
    archived: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, list[str]] = field(default_factory=dict)
    stage_changes: list[str] = field(default_factory=list)  # deal ids whose stage moved

    def to_json(self) -> dict[str, Any]:
        """JSON form (admin endpoint)."""
        return {
            "timestamp": iso_from_ms(int(self.timestamp.timestamp() * 1000)),
            "edited": self.edited,
            "archived": self.archived,
            "created": self.created,
            "stageChanges": self.stage_changes,
        }


def _split(count: int) -> dict[str, int]:
    companies = count // 5
    return {"deals": count - companies, "companies": companies}


def _deal_edit(rng: random.Random, props: dict[str, str]) -> dict[str, Any]:
    pipeline = PIPELINES_BY_ID.get(props.get("pipeline", "default"), PIPELINES_BY_ID["default"])
    stage = pipeline.stage(props.get("dealstage", ""))
    values: dict[str, Any] = {"amount": str(rng.randrange(5, 2_500) * 100)}
    if stage is not None and not stage.is_closed:
        ordered = list(pipeline.open_stages)
        position = ordered.index(stage)
        if position + 1 < len(ordered):
            values["dealstage"] = ordered[position + 1].id
        else:
            won = rng.random() < 0.6
            values["dealstage"] = (pipeline.won_stage if won else pipeline.lost_stage).id
    return values


def _company_edit(rng: random.Random) -> dict[str, Any]:
    return {
        "numberofemployees": str(rng.randrange(5, 20_000)),
        "annualrevenue": str(rng.randrange(100, 500_000) * 1_000),
    }


def mutate(
    account: Account,
    rng: random.Random,
    *,
    seed: int,
    edits: int,
    deletes: int,
    creates: int,
    shared_timestamp: bool = True,
) -> MutationSummary:
    """Apply random edits, archives and creates (deals get 4/5 of each, companies 1/5)."""
    if min(edits, deletes, creates) < 0:
        raise ValueError("edits, deletes and creates must not be negative")
    crm, store = account.crm, account.store
    base = account.clock.now_ms()
    tick = 0

    def stamp() -> int:
        nonlocal tick
        tick += 1
        return base if shared_timestamp else base + tick - 1

    edited: dict[str, list[str]] = {}
    archived: dict[str, list[str]] = {}
    created: dict[str, list[str]] = {}
    stage_changes: list[str] = []
    owners = sorted(store.active_owner_ids())
    user = WriteSource("CRM_UI", f"userId:{9_000_001}", 9_000_001)
    with store.transaction():
        for definition in (DEALS, COMPANIES):
            kind = definition.name
            n_edit = _split(edits)[kind]
            n_delete = _split(deletes)[kind]
            live = store.ids(kind, archived=False)
            chosen = rng.sample(live, min(len(live), n_edit + n_delete))
            for object_id in chosen[:n_edit]:
                row = store.get(kind, object_id)
                assert row is not None
                values = _deal_edit(rng, row.props) if kind == "deals" else _company_edit(rng)
                changes = crm.validate(definition, values, row)
                changed = crm.apply(definition, row, changes, source=user, now_ms=stamp())
                edited.setdefault(kind, []).append(str(object_id))
                if "dealstage" in changed:
                    stage_changes.append(str(object_id))
            for object_id in chosen[n_edit:]:
                row = store.get(kind, object_id)
                assert row is not None
                crm.archive(row, now_ms=stamp())
                archived.setdefault(kind, []).append(str(object_id))
            for _ in range(_split(creates)[kind]):
                row = _create(account, definition, rng, seed, owners, user, stamp())
                created.setdefault(kind, []).append(str(row.id))
    return MutationSummary(
        timestamp=datetime_from_ms(base),
        edited=edited,
        archived=archived,
        created=created,
        stage_changes=stage_changes,
    )


def _create(
    account: Account,
    definition: ObjectTypeDef,
    rng: random.Random,
    seed: int,
    owners: list[int],
    source: WriteSource,
    now_ms: int,
) -> Any:
    crm, store = account.crm, account.store
    owner = str(rng.choice(owners)) if owners else None
    if definition.name == "companies":
        index = store.count("companies", archived=False) + store.count("companies", archived=True)
        name = company_name(seed, index + rng.randrange(1_000))
        values: dict[str, Any] = {
            "name": f"{name} (new)",
            "industry": rng.choice(INDUSTRIES)[0],
            "country": "Germany",
            "hubspot_owner_id": owner,
        }
        return crm.create(
            definition, crm.validate(definition, values, None), source=source, now_ms=now_ms
        )
    companies = store.ids("companies", archived=False)
    company = rng.choice(companies) if companies else None
    values = {
        "dealname": f"New opportunity – {rng.choice(PRODUCTS)} #{rng.randrange(100_000)}",
        "pipeline": "default",
        "dealstage": "appointmentscheduled",
        "amount": str(rng.randrange(5, 2_500) * 100),
        "deal_currency_code": "USD",
        "hubspot_owner_id": owner,
    }
    row = crm.create(
        definition, crm.validate(definition, values, None), source=source, now_ms=now_ms
    )
    if company is not None:
        crm.associate("deals", row.id, "companies", company, 5)
    return row
