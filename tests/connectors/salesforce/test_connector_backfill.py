"""Backfills of the Salesforce connector: Bulk API 2.0 against REST, windows, kill and resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.core.connector import Batch, ReadMode, ReadRequest
from connectors.core.records import Account, Deletion, Item, Opportunity, StageChange
from connectors.salesforce.connector import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig

EXTRAS = {"opportunity": ["Product_Line__c"], "account": ["Region__c"]}
SINCE = datetime(2025, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 6, 1, 12, 30, 15, 500000, tzinfo=UTC)
PAGE, BATCH = 50, 30  # Bulk rows per results page, rows per batch: two batches a page


def open_connector(make_config: MakeConfig, *, bulk: bool, **kwargs: Any) -> SalesforceConnector:
    config = make_config(extra_fields=EXTRAS, bulk_threshold=0 if bulk else 1_000_000)
    options: dict[str, Any] = {
        "batch_size": 200,
        "bulk_page_size": PAGE,
        "bulk_batch_size": BATCH,
        "bulk_poll_interval": 0.02,
    }
    return SalesforceConnector(config, retry=FAST_RETRY, **{**options, **kwargs})


def backfill(
    connector: SalesforceConnector,
    stream: str = "opportunities",
    position: dict[str, Any] | None = None,
    **window: Any,
) -> Iterator[Batch]:
    return connector.read(ReadRequest(stream, ReadMode.BACKFILL, position, **window))


def items_of(batches: list[Batch]) -> list[Item]:
    return [item for batch in batches for item in batch.items]


def keys(items: list[Item]) -> list[str]:
    """The ids of what was read, in order (records, deletions and history rows)."""
    found: list[str] = []
    for item in items:
        crm_id = (
            item.crm_id
            if isinstance(item, Account | Opportunity | Deletion | StageChange)
            else None
        )
        if crm_id is not None:
            found.append(crm_id)
    return found


def bulk_calls(org: SalesforceSandbox) -> dict[str, int]:
    snapshot = org.calls.snapshot()
    return {kind: count for kind, count in snapshot.items() if kind.startswith("bulk_")}


@pytest.mark.parametrize(
    ("stream", "window"),
    [
        ("opportunities", {}),
        ("opportunities", {"since": SINCE, "until": UNTIL}),
        ("accounts", {"until": UNTIL}),
        ("stage_history", {"since": SINCE}),
    ],
    ids=["opportunities", "opportunities-window", "accounts", "stage-history"],
)
def test_a_bulk_backfill_equals_a_rest_backfill(
    make_config: MakeConfig, sandbox: SalesforceSandbox, stream: str, window: dict[str, Any]
) -> None:
    with open_connector(make_config, bulk=False) as rest_connector:
        before = bulk_calls(sandbox)
        by_rest = list(backfill(rest_connector, stream, **window))
        assert bulk_calls(sandbox) == before  # below the threshold: REST only
    with open_connector(make_config, bulk=True) as bulk_connector:
        by_bulk = list(backfill(bulk_connector, stream, **window))
    after = bulk_calls(sandbox)

    rest_items, bulk_items = items_of(by_rest), items_of(by_bulk)
    assert len(rest_items) > PAGE  # the window is not empty, and spans several pages
    assert after.get("bulk_create", 0) == before.get("bulk_create", 0) + 1
    pages = after.get("bulk_results", 0) - before.get("bulk_results", 0)
    assert pages == -(-len(bulk_items) // PAGE)
    # Same records, same values, same order: CSV strings and JSON values convert alike.
    assert bulk_items == rest_items
    assert all(len(batch.items) <= BATCH for batch in by_bulk)
    assert by_bulk[-1].position is not None
    assert by_bulk[-1].position["complete"] is True
    assert [b.remaining for b in by_bulk][-1] == 0


def test_a_backfill_window_covers_exactly_the_records_created_in_it(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    with open_connector(make_config, bulk=True) as connector:
        items = items_of(list(backfill(connector, since=SINCE, until=UNTIL)))

    def created(row: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(row["CreatedDate"].replace("Z", "+00:00"))

    rows = sandbox.records("Opportunity", include_deleted=True)
    expected = {row["Id"] for row in rows if SINCE <= created(row) < UNTIL}
    assert set(keys(items)) == expected
    assert len(keys(items)) == len(expected)
    assert all(
        SINCE <= i.crm_created_at < UNTIL  # type: ignore[operator]
        for i in items
        if isinstance(i, Opportunity)
    )


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_a_killed_bulk_backfill_resumes_in_the_same_job(
    make_config: MakeConfig, sandbox: SalesforceSandbox, stop_after: int
) -> None:
    with open_connector(make_config, bulk=True) as connector:
        expected = keys(items_of(list(backfill(connector))))
    assert len(expected) > 2 * PAGE

    with open_connector(make_config, bulk=True) as first_run:
        delivered: list[Batch] = []
        for batch in backfill(first_run):
            delivered.append(batch)  # the engine commits it, then the process dies
            if len(delivered) == stop_after:
                break
    saved = delivered[-1].position
    assert saved is not None
    assert saved["job_id"]

    before = bulk_calls(sandbox)
    with open_connector(make_config, bulk=True) as second_run:
        resumed = list(backfill(second_run, position=saved))
    spent = {k: v - before.get(k, 0) for k, v in bulk_calls(sandbox).items()}

    assert spent.get("bulk_create", 0) == 0  # the same job, no new query
    assert keys(items_of(delivered) + items_of(resumed)) == expected  # no gap, no repeat
    assert resumed[-1].position is not None
    assert resumed[-1].position["complete"] is True
    # An odd batch ends inside a page (30 of 50 rows): that page is fetched again.
    pages_left = -(-(len(expected) - PAGE * (stop_after // 2)) // PAGE)
    assert spent["bulk_results"] == pages_left


def test_a_backfill_whose_bulk_job_is_gone_starts_a_new_job_where_it_stopped(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    with open_connector(make_config, bulk=True) as connector:
        expected = keys(items_of(list(backfill(connector))))
        batches = iter(backfill(connector))
        delivered = [next(batches), next(batches)]
    saved = delivered[-1].position
    assert saved is not None
    gone = {**saved, "job_id": "7505e0000000zzzAAA"}  # deleted, or older than 7 days

    before = bulk_calls(sandbox)
    with open_connector(make_config, bulk=True) as connector:
        resumed = list(backfill(connector, position=gone))

    assert bulk_calls(sandbox)["bulk_create"] == before["bulk_create"] + 1
    assert keys(items_of(delivered) + items_of(resumed)) == expected


def test_a_killed_rest_backfill_resumes_after_the_last_committed_record(
    make_config: MakeConfig,
) -> None:
    with open_connector(make_config, bulk=False) as connector:
        expected = keys(items_of(list(backfill(connector))))
        first = next(iter(backfill(connector)))
        assert first.position is not None
        assert first.position["via"] == "rest"
        rest = list(backfill(connector, position=first.position))

    assert keys(first.items + items_of(rest)) == expected


def test_a_finished_backfill_position_reads_nothing_more(make_config: MakeConfig) -> None:
    with open_connector(make_config, bulk=True) as connector:
        done = list(backfill(connector))[-1].position
        assert list(backfill(connector, position=done)) == []
        # Another window is another backfill: the old position does not apply to it.
        assert list(backfill(connector, position=done, since=SINCE))


def test_the_estimate_decides_between_bulk_and_rest(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    with open_connector(make_config, bulk=False) as connector:
        estimate = connector.estimate(
            ReadRequest("opportunities", ReadMode.BACKFILL, since=SINCE, until=UNTIL)
        )
    rows = sandbox.records("Opportunity")
    in_window = [
        r for r in rows if SINCE <= datetime.fromisoformat(r["CreatedDate"][:-1] + "+00:00") < UNTIL
    ]
    assert estimate == len(in_window)

    config = make_config(bulk_threshold=estimate)
    with SalesforceConnector(config, retry=FAST_RETRY, bulk_poll_interval=0.02) as connector:
        before = bulk_calls(sandbox)
        list(backfill(connector, since=SINCE, until=UNTIL))
        assert bulk_calls(sandbox) == before  # not above the threshold


def test_a_bulk_backfill_survives_an_expired_session(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    with open_connector(make_config, bulk=True) as connector:
        expected = keys(items_of(list(backfill(connector))))
    with open_connector(make_config, bulk=True) as connector:
        got: list[Item] = []
        for number, batch in enumerate(backfill(connector)):
            got.extend(batch.items)
            if number in (0, 3):
                sandbox.expire_sessions()  # also while results pages are being fetched
        assert connector.client.login_count == 3

    assert keys(got) == expected
