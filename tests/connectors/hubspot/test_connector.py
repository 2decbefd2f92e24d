"""HubSpotConnector against the sandbox over real HTTP: full, incremental, deletes, by id."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.core.connector import Batch, ReadMode, ReadRequest
from connectors.core.errors import BudgetExhaustedError, ConfigurationError
from connectors.core.records import (
    Account,
    BadRecord,
    CrmRecord,
    Deletion,
    Item,
    ObjectType,
    Opportunity,
    Owner,
    Pipeline,
    Stage,
    StageChange,
)
from connectors.core.registry import load_plugin
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.ratelimit import SlidingWindowLimiter
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox

from .conftest import FAST_RETRY, FreshSandbox, hubspot_config

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
# Searches are paced at HubSpot's 5/s by default; tests lift both sides of that limit.
FAST_SEARCH = HubSpotOptions(search_per_second=1_000)


def connector(
    hs: HubSpotSandbox, *, clock: float | None = None, **overrides: Any
) -> HubSpotConnector:
    """A connector on ``hs`` with fast retries, search unpaced, and optionally a fixed clock."""
    config = hubspot_config(hs, **overrides)
    client = HubSpotClient(
        config,
        retry=FAST_RETRY,
        search_limiter=SlidingWindowLimiter(limit=1_000, interval=1.0),
    )
    if clock is None:
        return HubSpotConnector(config, client=client)
    return HubSpotConnector(config, client=client, clock=lambda: clock)


def read(
    conn: HubSpotConnector,
    stream: str,
    mode: ReadMode = ReadMode.FULL,
    position: dict[str, Any] | None = None,
    **request: Any,
) -> list[Batch]:
    return list(conn.read(ReadRequest(stream, mode, position, **request)))


def items(batches: Iterable[Batch]) -> list[Item]:
    return [item for batch in batches for item in batch.items]


def of_type(found: Iterable[Item], kind: type[Any]) -> dict[str, Any]:
    """Records of one class by CRM id (asserting none came twice)."""
    chosen = [i for i in found if isinstance(i, kind)]
    by_id = {i.crm_id: i for i in chosen}
    assert len(by_id) == len(chosen), f"duplicate {kind.__name__} records"
    return by_id


def decimal_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def primary_company(hs: HubSpotSandbox, deal_id: str) -> str | None:
    linked = hs.associations("deals", deal_id, "companies")
    primary = [company for company, types in linked.items() if 5 in types]
    return primary[0] if primary else next(iter(linked), None)


def assert_deals_match_sandbox(hs: HubSpotSandbox, opportunities: dict[str, Opportunity]) -> None:
    expected = {deal["id"]: deal for deal in hs.objects("deals")}
    assert set(opportunities) == set(expected)
    for deal_id, opp in opportunities.items():
        props = expected[deal_id]["properties"]
        assert (opp.name, opp.stage_crm_id, opp.pipeline_crm_id) == (
            props.get("dealname"),
            props.get("dealstage"),
            props.get("pipeline"),
        )
        assert opp.amount == decimal_or_none(props.get("amount"))
        assert opp.owner_crm_id == props.get("hubspot_owner_id")
        assert opp.account_crm_id == primary_company(hs, deal_id)


def assert_companies_match_sandbox(hs: HubSpotSandbox, accounts: dict[str, Account]) -> None:
    expected = {company["id"]: company for company in hs.objects("companies")}
    assert set(accounts) == set(expected)
    for company_id, account in accounts.items():
        props = expected[company_id]["properties"]
        assert (account.name, account.industry, account.country) == (
            props.get("name"),
            props.get("industry"),
            props.get("country"),
        )
        assert account.annual_revenue == decimal_or_none(props.get("annualrevenue"))


class LocalCopy:
    """What the engine would store: records upserted by id, deletions applied."""

    def __init__(self) -> None:
        self.records: dict[tuple[ObjectType, str], CrmRecord] = {}
        self.deleted: dict[tuple[ObjectType, str], datetime | None] = {}

    def apply(self, found: Iterable[Item]) -> None:
        for item in found:
            if isinstance(item, Deletion):
                self.records.pop((item.object_type, item.crm_id), None)
                self.deleted[(item.object_type, item.crm_id)] = item.deleted_at
            elif isinstance(item, Account | Opportunity):
                self.records[(item.object_type, item.crm_id)] = item

    def of(self, object_type: ObjectType) -> dict[str, Any]:
        return {key[1]: value for key, value in self.records.items() if key[0] is object_type}


# -- streams and full reads ------------------------------------------------------------------


def test_the_plugin_opens_a_connector_with_streams_in_dependency_order(
    shared_hubspot: HubSpotSandbox,
) -> None:
    plugin = load_plugin("hubspot")
    assert plugin.open is not None
    with plugin.open(hubspot_config(shared_hubspot)) as conn:
        assert isinstance(conn, HubSpotConnector)
        assert conn.kind == "hubspot"
        assert [s.name for s in conn.streams()] == ["owners", "stages", "accounts", "opportunities"]


def test_a_full_read_equals_the_sandbox(shared_hubspot: HubSpotSandbox) -> None:
    hs = shared_hubspot
    with connector(hs, clock=T0.timestamp()) as conn:
        owners = of_type(items(read(conn, "owners")), Owner)
        metadata = items(read(conn, "stages"))
        account_batches = read(conn, "accounts")
        deal_batches = read(conn, "opportunities")
    assert len(owners) == 10
    assert [o.active for o in owners.values()].count(False) == 1  # the archived owner
    pipelines = of_type(metadata, Pipeline)
    stages = {(s.pipeline_crm_id, s.crm_id): s for s in metadata if isinstance(s, Stage)}
    assert set(pipelines) == {"default", "2871935"}
    assert stages[("default", "closedwon")].is_won
    assert stages[("2871935", "2871940")].is_won
    assert stages[("default", "presentationscheduled")].probability == 0.6

    found = items(deal_batches)
    assert not [i for i in found if isinstance(i, BadRecord)]
    opportunities = of_type(found, Opportunity)
    assert_deals_match_sandbox(hs, opportunities)
    assert_companies_match_sandbox(hs, of_type(items(account_batches), Account))

    # One stage change per stage entry date the deal carries.
    changes = Counter(c.opportunity_crm_id for c in found if isinstance(c, StageChange))
    for deal in hs.objects("deals"):
        dated = [k for k in deal["properties"] if k.startswith("hs_v2_date_entered_")]
        assert changes[deal["id"]] == len(dated)
        opp = opportunities[deal["id"]]
        entered = deal["properties"]["hs_v2_date_entered_" + deal["properties"]["dealstage"]]
        assert opp.stage_entered_at == datetime.fromisoformat(entered)

    # Only the last batch is done; its position is when the read started, with the number
    # of live records counted then (the next incremental compares with it).
    for batches, kind in ((account_batches, "companies"), (deal_batches, "deals")):
        assert [b.done for b in batches] == [False] * (len(batches) - 1) + [True]
        assert batches[-1].position == {
            "modified_ms": T0_MS,
            "archived_checked_ms": T0_MS,
            "live_total": hs.count(kind),
            "counted_ms": T0_MS,
        }
        assert all(b.position and b.position.get("started_ms") == T0_MS for b in batches[:-2])


def test_a_killed_full_read_resumes_at_the_same_page(shared_hubspot: HubSpotSandbox) -> None:
    with connector(shared_hubspot, clock=T0.timestamp()) as first:
        stream = first.read(ReadRequest("opportunities", ReadMode.FULL))
        batch = next(stream)  # the process dies after the first page was committed
    assert batch.position is not None
    assert batch.position["phase"] == "list"
    later = (T0 + timedelta(hours=1)).timestamp()
    # The engine hands the saved list position back, whatever mode it asks for.
    with connector(shared_hubspot, clock=later) as second:
        rest = read(second, "opportunities", ReadMode.INCREMENTAL, batch.position)
        assert second.requests_made() == len(rest) + 1  # pages + pipelines, nothing re-read
    first_ids = set(of_type(batch.items, Opportunity))
    rest_ids = set(of_type(items(rest), Opportunity))
    assert not first_ids & rest_ids
    assert first_ids | rest_ids == {d["id"] for d in shared_hubspot.objects("deals")}
    # The resumed read still ends at the time the *first* run started.
    assert rest[-1].position == {
        "modified_ms": T0_MS,
        "archived_checked_ms": int(later * 1000),
        "live_total": shared_hubspot.count("deals"),
        "counted_ms": T0_MS,
    }


def test_a_backfill_keeps_the_records_created_in_its_window(
    shared_hubspot: HubSpotSandbox,
) -> None:
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    request = ReadRequest("opportunities", ReadMode.BACKFILL, since=since, until=until)
    with connector(shared_hubspot) as conn:
        found = of_type(items(conn.read(request)), Opportunity)
        estimate = conn.estimate(request)
        everything = conn.estimate(ReadRequest("opportunities", ReadMode.FULL))
        assert conn.estimate(ReadRequest("owners", ReadMode.FULL)) is None
    assert everything == shared_hubspot.count("deals")
    expected = {
        deal["id"]
        for deal in shared_hubspot.objects("deals")
        if since <= datetime.fromisoformat(deal["properties"]["createdate"]) < until
    }
    assert 0 < len(found) < shared_hubspot.count("deals")
    assert set(found) == expected
    assert estimate == len(expected)


# -- incremental -----------------------------------------------------------------------------


def full_sync(conn: HubSpotConnector, copy: LocalCopy) -> dict[str, dict[str, Any] | None]:
    positions: dict[str, dict[str, Any] | None] = {}
    for stream in conn.streams():
        batches = read(conn, stream.name, ReadMode.FULL)
        copy.apply(items(batches))
        positions[stream.name] = batches[-1].position
    return positions


def incremental(
    conn: HubSpotConnector, copy: LocalCopy, positions: dict[str, dict[str, Any] | None]
) -> dict[str, list[Item]]:
    found: dict[str, list[Item]] = {}
    for stream in conn.streams():
        batches = read(conn, stream.name, ReadMode.INCREMENTAL, positions[stream.name])
        found[stream.name] = items(batches)
        copy.apply(found[stream.name])
        if batches[-1].position is not None:
            positions[stream.name] = batches[-1].position
    return found


def test_incremental_after_edits_deletes_and_creates_equals_the_sandbox(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot(options=FAST_SEARCH)
    copy = LocalCopy()
    with connector(hs, sync={"archive_check_interval": "0s"}) as conn:
        positions = full_sync(conn, copy)
        # Every change of the mutation shares one millisecond, like a bulk edit.
        summary = hs.mutate(edits=40, deletes=10, creates=10, shared_timestamp=True)
        found = incremental(conn, copy, positions)

    changed = {
        "deals": {*summary.edited["deals"], *summary.created["deals"]},
        "companies": {*summary.edited["companies"], *summary.created["companies"]},
    }
    opportunities = of_type(found["opportunities"], Opportunity)
    assert changed["deals"] <= set(opportunities)
    assert changed["companies"] <= set(of_type(found["accounts"], Account))
    for deal_id in summary.stage_changes:
        opp = opportunities[deal_id]
        assert opp.stage_entered_at == summary.timestamp
        assert any(
            isinstance(c, StageChange) and c.opportunity_crm_id == deal_id
            and c.to_stage == opp.stage_crm_id and c.changed_at == summary.timestamp
            for c in found["opportunities"]
        )  # fmt: skip
    deletions = {
        (d.object_type, d.crm_id): d.deleted_at
        for stream in ("accounts", "opportunities")
        for d in found[stream]
        if isinstance(d, Deletion)
    }
    archived = {
        *((ObjectType.OPPORTUNITY, i) for i in summary.archived["deals"]),
        *((ObjectType.ACCOUNT, i) for i in summary.archived["companies"]),
    }
    assert set(deletions) == archived
    assert set(deletions.values()) == {summary.timestamp}
    assert_deals_match_sandbox(hs, copy.of(ObjectType.OPPORTUNITY))
    assert_companies_match_sandbox(hs, copy.of(ObjectType.ACCOUNT))
    assert positions["opportunities"] is not None
    assert positions["opportunities"]["modified_ms"] == int(summary.timestamp.timestamp() * 1000)


def test_an_incremental_run_with_nothing_new_costs_at_most_two_requests_per_stream(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot(options=FAST_SEARCH)
    copy = LocalCopy()
    with connector(hs) as conn:
        positions = full_sync(conn, copy)
        quiet = {}
        for stream in conn.streams():
            hs.calls.reset()
            read(conn, stream.name, ReadMode.INCREMENTAL, positions[stream.name])
            quiet[stream.name] = hs.calls.snapshot()["total"]
        summary = hs.mutate(edits=10, deletes=5, creates=2)
        incremental(conn, copy, positions)
        # The changes are still inside the lookback: deals re-read them with their companies.
        busy = {}
        for stream in conn.streams():
            hs.calls.reset()
            before = conn.requests_made()
            batches = read(conn, stream.name, ReadMode.INCREMENTAL, positions[stream.name])
            served = hs.calls.snapshot()
            busy[stream.name] = served["total"]
            assert (
                conn.requests_made() - before == served["total"] == sum(b.requests for b in batches)
            )
            assert not [i for i in items(batches) if isinstance(i, Deletion)]
    # Nothing in the lookback: one search for changes and one live count per object stream.
    assert quiet == {"owners": 2, "stages": 1, "accounts": 2, "opportunities": 2}
    assert busy == {"owners": 2, "stages": 1, "accounts": 2, "opportunities": 3}
    # The first incremental saw the live count drop and reported the archived deals.
    assert not set(summary.archived["deals"]) & set(copy.of(ObjectType.OPPORTUNITY))


def test_archived_records_are_reported_by_the_next_incremental_run(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot(options=FAST_SEARCH)
    start = T0.timestamp()
    with connector(hs, clock=start) as conn:
        position = read(conn, "opportunities")[-1].position
    summary = hs.mutate(edits=0, deletes=5, creates=0)
    # Half an hour later the hourly check is not due, but the live count dropped by five.
    with connector(hs, clock=start + 1800) as conn:
        batches = read(conn, "opportunities", ReadMode.INCREMENTAL, position)
    deleted = {i.crm_id for i in items(batches) if isinstance(i, Deletion)}
    assert deleted == set(summary.archived["deals"])
    settled = batches[-1].position
    assert settled is not None
    assert settled["archived_checked_ms"] == int((start + 1800) * 1000)
    # With the count unchanged and the check not due, the archive is not listed again...
    with connector(hs, clock=start + 2400) as conn:
        hs.calls.reset()
        quiet = read(conn, "opportunities", ReadMode.INCREMENTAL, settled)
        # A new connector reads the pipelines; then one search and one live count.
        assert hs.calls.snapshot() == {"pipelines": 1, "search": 2, "total": 3}
    assert not [i for i in items(quiet) if isinstance(i, Deletion)]
    # ...until the hourly safety net is due (archived since the last check: none).
    with connector(hs, clock=start + 7200) as conn:
        later = read(conn, "opportunities", ReadMode.INCREMENTAL, quiet[-1].position)
    assert later[-1].position is not None
    assert later[-1].position["archived_checked_ms"] == int((start + 7200) * 1000)


def test_creations_alone_do_not_trigger_an_archive_listing(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot(options=FAST_SEARCH)
    with connector(hs) as conn:
        position = read(conn, "opportunities")[-1].position
        hs.mutate(edits=0, deletes=0, creates=5)
        hs.calls.reset()
        batches = read(conn, "opportunities", ReadMode.INCREMENTAL, position)
        served = hs.calls.snapshot()
    assert len(of_type(items(batches), Opportunity)) >= 4
    assert served.get("list", 0) == 0  # no archived listing: the count added up


def test_records_hidden_by_the_search_lag_come_with_the_next_run(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot(options=FAST_SEARCH)
    with connector(hs) as conn:
        position = read(conn, "accounts")[-1].position
        summary = hs.mutate(edits=10, deletes=0, creates=0)
        hs.set_search_lag(3600)
        hidden = read(conn, "accounts", ReadMode.INCREMENTAL, position)
        hs.set_search_lag(0)
        later = read(conn, "accounts", ReadMode.INCREMENTAL, hidden[-1].position)
    assert not set(summary.edited["companies"]) & set(of_type(items(hidden), Account))
    assert set(summary.edited["companies"]) <= set(of_type(items(later), Account))


# -- bad records, by id, budgets -------------------------------------------------------------


def create_deal(hs: HubSpotSandbox, properties: dict[str, str]) -> str:
    answer = httpx.post(
        f"{hs.url}/crm/v3/objects/deals",
        json={"properties": properties},
        headers={"Authorization": f"Bearer {hs.credentials.private_app_token}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_deal_with_no_stage_is_quarantined_and_the_page_goes_on(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    stageless = create_deal(hs, {"dealname": "Ünïcødé 東京 – no stage", "pipeline": "default"})
    with connector(hs) as conn:
        found = items(read(conn, "opportunities"))
    bad = [b for b in found if isinstance(b, BadRecord)]
    assert [(b.object_type, b.crm_id) for b in bad] == [(ObjectType.OPPORTUNITY, stageless)]
    assert "field 'dealstage'" in bad[0].reason
    assert bad[0].raw is not None
    assert bad[0].raw["properties"]["dealname"] == "Ünïcødé 東京 – no stage"
    # Every other deal of that page (and the rest) was read.
    assert len(of_type(found, Opportunity)) == hs.count("deals") - 1


def test_read_ids_returns_current_records_and_deletions(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    summary = hs.mutate(edits=0, deletes=5, creates=0)
    gone = summary.archived["deals"][0]
    deals = [d["id"] for d in hs.objects("deals")]
    alone = next(d for d in deals if not hs.associations("deals", d, "companies"))
    live = [*deals[:3], alone]  # one without a company: HubSpot answers 207 for it
    with connector(hs) as conn:
        batch = conn.read_ids(ObjectType.OPPORTUNITY, [*live, gone, "39999999999"])
        hs.calls.reset()
        fetched = conn.fetch_opportunity(live[0])
        served = hs.calls.snapshot()["total"]
        companies = conn.read_ids(ObjectType.ACCOUNT, [summary.archived["companies"][0]])
    assert batch.position is None
    opportunities = of_type(batch.items, Opportunity)
    assert set(opportunities) == set(live)
    for deal_id in live:
        assert opportunities[deal_id].account_crm_id == primary_company(hs, deal_id)
    assert opportunities[alone].account_crm_id is None
    assert {(d.object_type, d.crm_id) for d in batch.items if isinstance(d, Deletion)} == {
        (ObjectType.OPPORTUNITY, gone),
        (ObjectType.OPPORTUNITY, "39999999999"),
    }
    assert batch.requests == 3  # pipelines, batch read, associations
    assert fetched == opportunities[live[0]]
    assert served == 2  # pipelines are cached
    assert [type(i) for i in companies.items] == [Deletion]


def test_read_ids_takes_more_than_a_hundred_ids(shared_hubspot: HubSpotSandbox) -> None:
    ids = [d["id"] for d in shared_hubspot.objects("deals")[:150]]
    with connector(shared_hubspot) as conn:
        batch = conn.read_ids(ObjectType.OPPORTUNITY, ids)
    assert set(of_type(batch.items, Opportunity)) == set(ids)
    assert batch.requests == 1 + 2 * 2  # pipelines, then batch read + associations per 100


def test_requests_and_budgets_are_reported(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    with connector(hs) as conn:
        assert conn.api_budget() == []
        batches = read(conn, "accounts")
        served = hs.calls.snapshot()["total"]
        assert conn.requests_made() == served == sum(b.requests for b in batches)
        windows = {b.window: b for b in conn.api_budget()}
    assert windows["10s"].limit == 190
    # The live count is a search: searches have their own limit, not the ten-second one.
    assert windows["10s"].used == served - 1
    assert windows["daily"].limit == 1_000_000


def test_a_spent_daily_budget_stops_the_read_with_a_budget_error(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    hs.set_rate_limits(daily=3)
    done: list[Batch] = []
    with connector(hs) as conn, pytest.raises(BudgetExhaustedError):
        done.extend(conn.read(ReadRequest("opportunities", ReadMode.FULL)))
    # Pipelines, the live count and one page went through; the next page found it spent.
    assert len(done) == 1
    assert all(b.position and b.position["phase"] == "list" for b in done)


def test_association_reads_follow_each_records_paging(fresh_hubspot: FreshSandbox) -> None:
    # Two deals per answer and company: companies with more deals page, each on its own.
    hs = fresh_hubspot(options=HubSpotOptions(association_page_size=2))
    companies = [c["id"] for c in hs.objects("companies")[:20]]
    with HubSpotClient(hubspot_config(hs), retry=FAST_RETRY) as client:
        linked = client.associations("companies", "deals", companies)
        requests = client.requests_sent
    expected = {c: set(hs.associations("companies", c, "deals")) for c in companies}
    assert {c: {a.id for a in linked.get(c, [])} for c in companies} == expected
    most = max(len(deals) for deals in expected.values())
    assert most > 2
    assert requests == (most + 1) // 2  # one request per round of pages, not per company


def test_a_configured_property_the_portal_lacks_is_refused_by_name(
    shared_hubspot: HubSpotSandbox,
) -> None:
    with (
        connector(
            shared_hubspot, extra_properties={"deals": ["description", "prodct_line"]}
        ) as conn,
        pytest.raises(ConfigurationError, match=r"extra_properties.deals names 'prodct_line'"),
    ):
        read(conn, "opportunities")


def test_configured_extra_properties_arrive_as_custom_fields(
    shared_hubspot: HubSpotSandbox,
) -> None:
    with connector(shared_hubspot, extra_properties={"deals": ["description"]}) as conn:
        deals = of_type(items(read(conn, "opportunities")), Opportunity)
    described = {
        d["id"]: d["properties"].get("description") for d in shared_hubspot.objects("deals")
    }
    assert {k: v.custom_fields.get("description") for k, v in deals.items()} == described
