"""search.py against the sandbox: keyset walks past the 10,000-result cap and through
blocks of records sharing one millisecond, each record exactly once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from connectors.core.connector import ReadMode, ReadRequest
from connectors.core.records import Opportunity
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.ratelimit import SlidingWindowLimiter
from connectors.hubspot.search import ModifiedSince, SearchStep, modified_ms
from connectors.hubspot.wire import SearchPage
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox

from .conftest import FAST_RETRY, FreshSandbox, hubspot_config


class CountingSearch:
    """``client.search`` that also keeps every request body (to check what was asked)."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, object_type: str, body: Mapping[str, Any]) -> SearchPage:
        self.bodies.append(dict(body))
        return self.client.search(object_type, body)


@pytest.fixture
def fast_client() -> Iterator[Any]:
    """Factory of clients whose search pacing is lifted (the sandbox's is lifted too)."""
    made: list[HubSpotClient] = []

    def make(hs: HubSpotSandbox) -> HubSpotClient:
        limiter = SlidingWindowLimiter(limit=10_000, interval=1.0)
        client = HubSpotClient(hubspot_config(hs), retry=FAST_RETRY, search_limiter=limiter)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def walk(
    search: CountingSearch, object_type: str, since_ms: int, page_size: int
) -> list[SearchStep]:
    steps = ModifiedSince(
        search, object_type, since_ms=since_ms, properties=["dealname"], page_size=page_size
    )
    return list(steps)


def ids(steps: list[SearchStep]) -> list[str]:
    return [obj.id for step in steps for obj in step.results]


def test_a_walk_returns_every_record_once_in_modification_order(
    fresh_hubspot: FreshSandbox, fast_client: Any
) -> None:
    # The seed has a bulk import: dozens of deals share one modification millisecond, so
    # ties cross page boundaries. A cap of 60 would break any walk that follows ``after``.
    hs = fresh_hubspot(options=HubSpotOptions(search_per_second=10_000, search_result_cap=60))
    search = CountingSearch(fast_client(hs))
    steps = walk(search, "deals", 0, page_size=25)
    found = ids(steps)
    assert sorted(found) == sorted(d["id"] for d in hs.objects("deals"))
    times = [modified_ms(obj) or 0 for step in steps for obj in step.results]
    assert times == sorted(times)
    assert [s.done for s in steps] == [False] * (len(steps) - 1) + [True]
    assert steps[-1].modified_ms == max(times)
    assert all("after" not in body for body in search.bodies)
    # Keyset paging wastes little: each page repeats at most the records at its lower bound.
    assert len(search.bodies) <= len(found) // 25 + 6


def test_a_block_larger_than_a_page_and_the_cap_is_sliced_by_id(
    fresh_hubspot: FreshSandbox, fast_client: Any
) -> None:
    hs = fresh_hubspot(options=HubSpotOptions(search_per_second=10_000, search_result_cap=50))
    summary = hs.mutate(edits=100, deletes=0, creates=50, shared_timestamp=True)
    block = {*summary.edited["deals"], *summary.created["deals"]}
    assert len(block) == 120  # more than the cap, all in one millisecond
    stamp = int(summary.timestamp.timestamp() * 1000)
    search = CountingSearch(fast_client(hs))
    steps = walk(search, "deals", stamp, page_size=20)
    found = ids(steps)
    assert sorted(found) == sorted(block)
    # One window page, then the millisecond by id (six pages of 20, the last one says there is
    # no more), then the window after it.
    filters = [[f["operator"] for f in b["filterGroups"][0]["filters"]] for b in search.bodies]
    assert filters == [["GTE"], ["EQ"]] + [["EQ", "GT"]] * 5 + [["GT"]]
    assert steps[-1].modified_ms == stamp
    assert steps[-1].done


def test_a_walk_resumes_from_any_step(fresh_hubspot: FreshSandbox, fast_client: Any) -> None:
    hs = fresh_hubspot(options=HubSpotOptions(search_per_second=10_000))
    search = CountingSearch(fast_client(hs))
    everything = walk(search, "companies", 0, page_size=10)
    middle = everything[2]
    assert middle.modified_ms is not None
    rest = walk(search, "companies", middle.modified_ms, page_size=10)
    before = ids(everything[:3])
    assert set(before) | set(ids(rest)) == set(ids(everything))
    # Only the records of the resumed millisecond are read twice.
    assert set(before) & set(ids(rest)) <= {
        obj.id for obj in middle.results if modified_ms(obj) == middle.modified_ms
    }


# -- HubSpot's real cap ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_hubspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSpotSandbox]:
    """12,000 deals (seeded once, about 1.5 s), search limits lifted (the 5/s pacing is
    tested with the client; here it would only add 13 s)."""
    options = HubSpotOptions(search_per_second=10_000, ten_second_limit=100_000)
    data_dir = Path(tmp_path_factory.getbasetemp()) / "hubspot-big-seed"
    with HubSpotSandbox(seed=2, size=12_000, data_dir=data_dir, options=options) as hs:
        yield hs


def big_connector(hs: HubSpotSandbox) -> HubSpotConnector:
    config = hubspot_config(hs)
    limiter = SlidingWindowLimiter(limit=10_000, interval=1.0)
    client = HubSpotClient(config, retry=FAST_RETRY, search_limiter=limiter)
    return HubSpotConnector(config, client=client)


def test_more_than_ten_thousand_deals_modified_in_one_window_sync_completely(
    big_hubspot: HubSpotSandbox,
) -> None:
    request = ReadRequest("opportunities", ReadMode.INCREMENTAL, {"modified_ms": 0})
    with big_connector(big_hubspot) as conn:
        found = [
            i.crm_id for b in conn.read(request) for i in b.items if isinstance(i, Opportunity)
        ]
    assert len(found) == len(set(found)) == big_hubspot.count("deals") == 12_000


def test_more_than_ten_thousand_deals_sharing_one_millisecond_sync_completely(
    big_hubspot: HubSpotSandbox,
) -> None:
    summary = big_hubspot.mutate(edits=13_000, deletes=0, creates=0, shared_timestamp=True)
    assert len(summary.edited["deals"]) == 10_400
    stamp = int(summary.timestamp.timestamp() * 1000)
    request = ReadRequest("opportunities", ReadMode.INCREMENTAL, {"modified_ms": stamp})
    with big_connector(big_hubspot) as conn:
        batches = list(conn.read(request))
    found = [i.crm_id for b in batches for i in b.items if isinstance(i, Opportunity)]
    assert len(found) == len(set(found))
    assert set(summary.edited["deals"]) <= set(found)
    assert batches[-1].position is not None
    assert batches[-1].position["modified_ms"] == stamp
