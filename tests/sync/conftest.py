"""Sandbox CRMs plus a stagelink configuration that points at them, on each database backend.

Everything here is real: the emulators serve HTTP(S), the connectors drive
``simple-salesforce`` and ``hubspot-api-client``, the engine writes to SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml
from stagelink.settings import AppConfig, load_config
from stagelink.storage import Connection, CrmAccount, CrmOpportunity
from stagelink.sync import Storage, open_storage

SF = "sandbox-salesforce"
HS = "sandbox-hubspot"


@dataclass
class World:
    """Running sandboxes, the config for them and the migrated storage."""

    sandboxes: RunningSandboxes
    config: AppConfig
    config_path: Path
    storage: Storage

    @property
    def sf(self) -> SalesforceSandbox:
        assert self.sandboxes.salesforce is not None
        return self.sandboxes.salesforce

    @property
    def hs(self) -> HubSpotSandbox:
        assert self.sandboxes.hubspot is not None
        return self.sandboxes.hubspot


def start_world(
    tmp_path: Path, database_url: str, *, size: str | int = "small", **overrides: Any
) -> Iterator[World]:
    """Fresh sandboxes (their own data copy) and a config.

    ``overrides`` maps a connection kind to field values replaced in its config model, e.g.
    ``salesforce={"bulk_threshold": 10}``.
    """
    sf = SalesforceSandbox(seed=3, size=size, data_dir=tmp_path / "sandbox")
    sf.start()
    hs = HubSpotSandbox(seed=3, size=size, data_dir=tmp_path / "sandbox").start()
    try:
        running = RunningSandboxes(salesforce=sf, hubspot=hs)
        text = sandbox_config_yaml(running, database_url=database_url)
        path = tmp_path / "stagelink.yaml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path)
        if overrides:
            connections = [
                c.model_copy(update=overrides.get(c.kind, {})) for c in config.connections
            ]
            config = config.model_copy(update={"connections": connections})
        with open_storage(config) as storage:
            yield World(running, config, path, storage)
    finally:
        hs.stop()
        sf.stop()


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from start_world(tmp_path, database_url)


# -- what the CRM holds vs what stagelink stored ----------------------------------------------


def _money(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value)).normalize()


def sf_truth(sf: SalesforceSandbox) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Live Salesforce accounts and opportunities: id → (fields compared)."""
    return {
        "accounts": {r["Id"]: (r["Name"], r["OwnerId"]) for r in sf.records("Account")},
        "opportunities": {
            r["Id"]: (r["StageName"], _money(r["Amount"]), r["AccountId"], r["OwnerId"])
            for r in sf.records("Opportunity")
        },
    }


def hs_truth(hs: HubSpotSandbox) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Live HubSpot companies and deals: id → (fields compared)."""
    deals: dict[str, tuple[Any, ...]] = {}
    for deal in hs.objects("deals"):
        props = deal["properties"]
        linked = hs.associations("deals", deal["id"], "companies")
        primary = [c for c, types in linked.items() if 5 in types]
        company = primary[0] if primary else (sorted(linked)[0] if linked else None)
        deals[deal["id"]] = (
            props.get("dealstage"),
            _money(props.get("amount")),
            company,
            props.get("hubspot_owner_id") or None,
        )
    companies = {
        c["id"]: (c["properties"].get("name"), c["properties"].get("hubspot_owner_id") or None)
        for c in hs.objects("companies")
    }
    return {"accounts": companies, "opportunities": deals}


def stored(world: World, connection: str) -> dict[str, dict[str, tuple[Any, ...]]]:
    """What stagelink holds for ``connection`` (deleted rows left out)."""
    with world.storage.sessions() as session:
        connection_id = session.scalars(
            select(Connection.id).where(Connection.name == connection)
        ).one()
        opportunities = {
            row.crm_id: (row.stage_crm_id, _money(row.amount), row.account_crm_id, row.owner_crm_id)
            for row in session.execute(
                select(CrmOpportunity).where(
                    CrmOpportunity.connection_id == connection_id,
                    CrmOpportunity.deleted_at.is_(None),
                )
            ).scalars()
        }
        accounts = {
            row.crm_id: (row.name, row.owner_crm_id)
            for row in session.execute(
                select(CrmAccount).where(
                    CrmAccount.connection_id == connection_id, CrmAccount.deleted_at.is_(None)
                )
            ).scalars()
        }
    return {"accounts": accounts, "opportunities": opportunities}


def differences(
    truth: dict[str, dict[str, tuple[Any, ...]]], local: dict[str, dict[str, tuple[Any, ...]]]
) -> list[str]:
    """Human-readable mismatches (empty when equal)."""
    problems: list[str] = []
    for kind, expected in truth.items():
        actual = local[kind]
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        wrong = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
        if missing:
            problems.append(f"{kind}: {len(missing)} missing, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{kind}: {len(extra)} not deleted, e.g. {extra[:3]}")
        for key in wrong[:3]:
            problems.append(f"{kind} {key}: CRM {expected[key]} != stored {actual[key]}")
        if len(wrong) > 3:
            problems.append(f"{kind}: {len(wrong)} differ in all")
    return problems
