"""Seed determinism and realism, the cache, and the mutation API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _hubspot_support import FreshSandbox, client_for

from sandbox.hubspot import HubSpotSandbox, plan_for
from sandbox.hubspot.seed import BULK_IMPORT_MS, WINDOW_START_MS, seed_database
from sandbox.hubspot.timeutil import DAY_MS, iso_from_ms


def dump(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows: list[tuple[object, ...]] = []
        for table in ("objects", "history", "associations", "owners", "timeline_templates"):
            rows += [(table, *row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        return rows
    finally:
        conn.close()


def test_same_seed_same_data_different_seed_different_data(tmp_path: Path) -> None:
    plan = plan_for(400)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        seed_database(tmp_path / f"{name}.sqlite", seed=seed, plan=plan, app_id=1)
    assert dump(tmp_path / "a.sqlite") == dump(tmp_path / "b.sqlite")
    assert dump(tmp_path / "a.sqlite") != dump(tmp_path / "c.sqlite")


def test_size_plans() -> None:
    small = plan_for("small")
    assert (small.owners, small.companies, small.deals) == (10, 60, 300)
    large = plan_for("large")
    assert (large.owners, large.companies, large.deals) == (200, 20_000, 100_000)
    custom = plan_for(10_500)
    assert (custom.owners, custom.companies, custom.deals) == (21, 2_100, 10_500)
    with pytest.raises(ValueError, match="unknown size"):
        plan_for("huge")


def test_seed_has_the_shapes_a_sync_must_handle(sandbox: HubSpotSandbox) -> None:
    deals = sandbox.objects("deals")
    props = [deal["properties"] for deal in deals]
    bulk = [p for p in props if p["hs_lastmodifieddate"] == iso_from_ms(BULK_IMPORT_MS)]
    assert len(bulk) == 60  # every fifth deal shares one modification timestamp
    window = [
        p for p in props
        if iso_from_ms(WINDOW_START_MS) <= p["hs_lastmodifieddate"]
        < iso_from_ms(WINDOW_START_MS + DAY_MS)
    ]  # fmt: skip
    assert len(window) >= 300 // 8 - 10
    assert {p.get("deal_currency_code") for p in props} >= {"USD", "EUR", None}
    assert any(p.get("amount") is None for p in props)
    assert any("." in (p.get("amount") or "") for p in props)
    assert {p["pipeline"] for p in props} == {"default", "2871935"}
    assert {"closedwon", "closedlost", "2871940", "2871941"} <= {p["dealstage"] for p in props}
    assert any(not p["dealname"].isascii() for p in props)
    assert any(not sandbox.associations("deals", d["id"], "companies") for d in deals)
    industries = {c["properties"].get("industry") for c in sandbox.objects("companies")}
    assert "COMPUTER_SOFTWARE" in industries or "FINANCIAL_SERVICES" in industries
    lost = next(p for p in props if p["dealstage"] == "closedlost")
    assert lost["hs_is_closed"] == "true"
    assert lost["hs_is_closed_won"] == "false"
    assert lost["closedate"] == lost["hs_date_entered_closedlost"]


def test_cached_seed_makes_private_copies(seed_cache: Path, fresh: FreshSandbox) -> None:
    one, two = fresh(), fresh()
    cached = list(seed_cache.glob("hubspot-v*-seed1-small.sqlite"))
    assert len(cached) == 1
    one.mutate(edits=0, deletes=3, creates=0)
    assert one.count("deals") == 297
    assert two.count("deals") == 300


def test_mutate_shares_one_timestamp_and_archives_keep_last_modified(
    fresh: FreshSandbox,
) -> None:
    hs = fresh()
    before = {deal["id"]: deal for deal in hs.objects("deals")}
    summary = hs.mutate(edits=10, deletes=5, creates=5)
    stamp = iso_from_ms(int(summary.timestamp.timestamp() * 1000))
    after = {deal["id"]: deal for deal in hs.objects("deals")}
    archived = {deal["id"]: deal for deal in hs.objects("deals", archived=True)}
    assert len(summary.edited["deals"]) == 8
    assert len(summary.edited["companies"]) == 2
    for deal_id in summary.edited["deals"] + summary.created["deals"]:
        assert after[deal_id]["properties"]["hs_lastmodifieddate"] == stamp
    for deal_id in summary.archived["deals"]:
        assert archived[deal_id]["updatedAt"] == before[deal_id]["updatedAt"]
        assert archived[deal_id]["archivedAt"] == stamp
    assert summary.stage_changes
    moved = after[summary.stage_changes[0]]["properties"]
    assert moved[f"hs_date_entered_{moved['dealstage']}"] == stamp
    history = (
        client_for(hs)
        .crm.deals.basic_api.get_by_id(
            summary.stage_changes[0], properties_with_history=["dealstage"]
        )
        .properties_with_history["dealstage"]
    )
    assert history[0].value == moved["dealstage"]
    assert history[0].source_type == "CRM_UI"


def test_mutate_without_shared_timestamp_spreads_them(fresh: FreshSandbox) -> None:
    hs = fresh()
    summary = hs.mutate(edits=6, deletes=0, creates=0, shared_timestamp=False)
    stamps = {
        deal["properties"]["hs_lastmodifieddate"]
        for deal in hs.objects("deals")
        if deal["id"] in summary.edited["deals"]
    }
    assert len(stamps) == len(summary.edited["deals"])
