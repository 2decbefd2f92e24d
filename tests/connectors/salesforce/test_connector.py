"""The Salesforce connector against the sandbox org: full and incremental reads, deletes,
shared timestamps, session expiry, describe caching and the stage-history fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

import pytest
import requests

from connectors.core.connector import Batch, ReadMode, ReadRequest
from connectors.core.errors import BudgetExhaustedError, ConfigurationError, TransientError
from connectors.core.records import (
    Account,
    BadRecord,
    Deletion,
    Item,
    LiveIds,
    ObjectType,
    Opportunity,
    Owner,
    Pipeline,
    Stage,
    StageChange,
)
from connectors.core.registry import load_plugin
from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.connector import SalesforceConnector, open_connector
from connectors.salesforce.http import TimeoutAdapter
from connectors.salesforce.queries import UnknownExtraFieldError
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig, auth_block

EXTRAS = {"opportunity": ["Product_Line__c"], "account": ["Region__c"]}
STREAMS = ("owners", "stages", "accounts", "opportunities", "stage_history")


def _stamp(text: str) -> datetime:
    """A sandbox storage dateTime (``…000Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_all(
    connector: SalesforceConnector,
    stream: str,
    mode: ReadMode = ReadMode.INCREMENTAL,
    position: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[Batch]:
    return list(connector.read(ReadRequest(stream, mode, position, **kwargs)))


def items_of(batches: list[Batch]) -> list[Item]:
    return [item for batch in batches for item in batch.items]


def apply(state: dict[str, Any], batches: list[Batch]) -> dict[str, Any]:
    """What the engine does with batches: upsert by id, drop deletions and the absent."""
    for batch in batches:
        for item in batch.items:
            if isinstance(item, Deletion):
                state.pop(item.crm_id, None)
            elif isinstance(item, LiveIds):
                for crm_id in set(state) - item.ids:
                    del state[crm_id]
            elif isinstance(item, Opportunity | Account | Owner):
                state[item.crm_id] = item
    return state


def assert_opportunities_equal_sandbox(state: Mapping[str, Any], org: SalesforceSandbox) -> None:
    rows = {row["Id"]: row for row in org.records("Opportunity")}
    assert set(state) == set(rows)
    for crm_id, row in rows.items():
        item = state[crm_id]
        assert isinstance(item, Opportunity)
        expected = (
            row["Name"],
            row["StageName"],
            Decimal(str(row["Amount"])) if row["Amount"] is not None else None,
            row["CurrencyIsoCode"],
            row["CloseDate"],
            bool(row["IsClosed"]),
            bool(row["IsWon"]),
            row["AccountId"],
            row["OwnerId"],
            row["Probability"] / 100 if row["Probability"] is not None else None,
            row["Product_Line__c"],
            _stamp(row["SystemModstamp"]),
        )
        assert (
            item.name,
            item.stage_crm_id,
            item.amount,
            item.currency,
            item.close_date.isoformat() if item.close_date else None,
            item.is_closed,
            item.is_won,
            item.account_crm_id,
            item.owner_crm_id,
            item.probability,
            item.custom_fields["Product_Line__c"],
            item.crm_modified_at,
        ) == expected


def assert_accounts_equal_sandbox(state: Mapping[str, Any], org: SalesforceSandbox) -> None:
    rows = {row["Id"]: row for row in org.records("Account")}
    assert set(state) == set(rows)
    for crm_id, row in rows.items():
        item = state[crm_id]
        assert isinstance(item, Account)
        assert (item.name, item.industry, item.country, item.region, item.currency) == (
            row["Name"],
            row["Industry"],
            row["BillingCountry"],
            row["Region__c"],
            row["CurrencyIsoCode"],
        )
        assert item.crm_modified_at == _stamp(row["SystemModstamp"])


def calls(org: SalesforceSandbox) -> dict[str, int]:
    return org.calls.snapshot()


def spent(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """API calls between two snapshots, logins left out (one per run, not per stream)."""
    kinds = set(before) | set(after)
    return {
        kind: after.get(kind, 0) - before.get(kind, 0)
        for kind in kinds
        if kind not in ("total", "token", "soap_login")
        and after.get(kind, 0) != before.get(kind, 0)
    }


@pytest.fixture
def connector(make_config: MakeConfig) -> Iterator[SalesforceConnector]:
    config = make_config(extra_fields=EXTRAS)
    with SalesforceConnector(config, retry=FAST_RETRY, batch_size=200) as opened:
        yield opened


# -- full reads ------------------------------------------------------------------------------


def test_the_plugin_opens_this_connector(make_config: MakeConfig) -> None:
    plugin = load_plugin("salesforce")

    assert plugin.open is not None
    with plugin.open(make_config()) as opened:
        assert isinstance(opened, SalesforceConnector)
        assert opened.kind == "salesforce"
        assert [s.name for s in opened.streams()] == list(STREAMS)
    assert isinstance(open_connector(make_config()), SalesforceConnector)


def test_a_full_read_of_every_stream_equals_the_sandbox(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    read = {stream: read_all(connector, stream, ReadMode.FULL) for stream in STREAMS}

    for stream, batches in read.items():
        assert batches[-1].done, stream
        assert not any(isinstance(i, BadRecord) for i in items_of(batches)), stream
        assert all(len(batch.items) <= 200 for batch in batches if stream != "stages")
    assert_opportunities_equal_sandbox(apply({}, read["opportunities"]), sandbox)
    assert_accounts_equal_sandbox(apply({}, read["accounts"]), sandbox)

    owners = apply({}, read["owners"])
    users = {row["Id"]: row for row in sandbox.records("User")}
    assert {k: (o.name, o.email, o.active) for k, o in owners.items()} == {
        k: (u["Name"], u["Email"], bool(u["IsActive"])) for k, u in users.items()
    }

    stage_items = items_of(read["stages"])
    assert stage_items[0] == Pipeline("default", "Opportunities")
    stages = [i for i in stage_items if isinstance(i, Stage)]
    rows = sorted(sandbox.records("OpportunityStage"), key=lambda r: r["SortOrder"])
    assert [
        (s.crm_id, s.label, s.probability, s.is_closed, s.is_won, s.active) for s in stages
    ] == [
        (
            r["ApiName"],
            r["MasterLabel"],
            r["DefaultProbability"] / 100,
            bool(r["IsClosed"]),
            bool(r["IsWon"]),
            bool(r["IsActive"]),
        )
        for r in rows
    ]

    changes = [i for i in items_of(read["stage_history"]) if isinstance(i, StageChange)]
    history = sandbox.records("OpportunityFieldHistory", "\"Field\" = 'StageName'")
    assert {c.crm_id for c in changes} == {row["Id"] for row in history}
    assert {c.source for c in changes} == {"field_history"}


def test_deleted_opportunities_in_the_recycle_bin_arrive_as_deletions(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    deleted = {
        row["Id"] for row in sandbox.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)
    }
    assert deleted, "the seed has deleted opportunities"

    items = items_of(read_all(connector, "opportunities", ReadMode.FULL))

    assert {i.crm_id for i in items if isinstance(i, Deletion)} == deleted
    assert all(i.object_type is ObjectType.OPPORTUNITY for i in items if isinstance(i, Deletion))


def test_batches_report_requests_and_what_remains(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    batches = read_all(connector, "opportunities", ReadMode.FULL)

    total = sandbox.count("Opportunity", include_deleted=True)
    assert len(batches) == -(-total // 200)
    assert [b.remaining for b in batches] == [
        max(total - 200 * (n + 1), 0) for n in range(len(batches))
    ]
    # Login + describe + the first page, then one request per further page.
    assert batches[0].requests >= 2
    assert [b.requests for b in batches[1:]] == [1] * (len(batches) - 1)
    assert connector.requests_made() == sum(b.requests for b in batches)
    [budget] = connector.api_budget()
    assert budget.limit == sandbox.api_usage[1]
    assert budget.used == sandbox.api_usage[0]


# -- incremental -----------------------------------------------------------------------------


def test_incremental_after_edits_deletes_and_creates_equals_the_sandbox(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    full_opps = read_all(connector, "opportunities", ReadMode.FULL)
    full_accounts = read_all(connector, "accounts", ReadMode.FULL)
    full_history = read_all(connector, "stage_history", ReadMode.FULL)

    summary = sandbox.mutate(edits=30, deletes=9, creates=30, shared_timestamp=True)

    opps = read_all(connector, "opportunities", position=full_opps[-1].position)
    accounts = read_all(connector, "accounts", position=full_accounts[-1].position)
    history = read_all(connector, "stage_history", position=full_history[-1].position)

    upserted = {i.crm_id for i in items_of(opps) if isinstance(i, Opportunity)}
    deleted = {i.crm_id for i in items_of(opps) if isinstance(i, Deletion)}
    assert set(summary.edited["Opportunity"]) | set(summary.created["Opportunity"]) <= upserted
    assert set(summary.deleted["Opportunity"]) <= deleted
    account_ids = {i.crm_id for i in items_of(accounts) if isinstance(i, Account)}
    assert set(summary.edited["Account"]) | set(summary.created["Account"]) <= account_ids
    assert set(summary.deleted.get("Account", [])) <= {
        i.crm_id for i in items_of(accounts) if isinstance(i, Deletion)
    }
    assert_opportunities_equal_sandbox(apply(apply({}, full_opps), opps), sandbox)
    assert_accounts_equal_sandbox(apply(apply({}, full_accounts), accounts), sandbox)

    moved = {c.opportunity_crm_id: c for c in items_of(history) if isinstance(c, StageChange)}
    current = {row["Id"]: row["StageName"] for row in sandbox.records("Opportunity")}
    for opportunity_id in summary.stage_changes:
        if opportunity_id in current:
            assert moved[opportunity_id].to_stage == current[opportunity_id]


@pytest.mark.parametrize("lookback", ["0s", "5m"])
def test_a_shared_timestamp_block_larger_than_a_page_is_never_skipped(
    make_config: MakeConfig, sandbox: SalesforceSandbox, lookback: str
) -> None:
    config = make_config(extra_fields=EXTRAS, sync={"lookback": lookback})
    with SalesforceConnector(config, retry=FAST_RETRY, batch_size=200) as connector:
        start = read_all(connector, "opportunities", ReadMode.FULL)[-1].position
        # 330 creates: 220 opportunities with one SystemModstamp, more than a 200-row page.
        summary = sandbox.mutate(edits=0, deletes=0, creates=330, shared_timestamp=True)
        created = set(summary.created["Opportunity"])
        [moment] = summary.timestamps
        assert len(created) > 200

        # Stop at the first batch that ends inside the block (a crash), then resume there.
        delivered: list[Item] = []
        for batch in connector.read(ReadRequest("opportunities", position=start)):
            delivered.extend(batch.items)
            assert batch.position is not None
            if datetime.fromisoformat(batch.position["modstamp"]) == moment:
                assert batch.remaining, "the block straddles two batches"
                break
        rest = read_all(connector, "opportunities", position=batch.position)

    got = [i.crm_id for i in delivered + items_of(rest) if isinstance(i, Opportunity)]
    assert created <= set(got)
    if lookback == "0s":
        # No lookback: rows up to the saved (modstamp, Id) are not delivered twice.
        assert len(got) == len(set(got))


def test_session_expiry_between_batches_continues_transparently(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    ids: list[str] = []
    for number, batch in enumerate(connector.read(ReadRequest("opportunities", ReadMode.FULL))):
        ids.extend(i.crm_id for i in batch.items if isinstance(i, Opportunity | Deletion))
        if number == 0:
            assert sandbox.expire_sessions() >= 1

    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity", include_deleted=True)
    assert connector.client.login_count == 2


def test_an_incremental_run_with_no_changes_costs_at_most_two_requests_per_stream(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    config = make_config(extra_fields=EXTRAS)
    with SalesforceConnector(config, retry=FAST_RETRY) as first_run:
        positions = {s: read_all(first_run, s, ReadMode.FULL)[-1].position for s in STREAMS}

    # The next run: a new connector (a new process) with only the saved positions.
    with SalesforceConnector(config, retry=FAST_RETRY) as next_run:
        next_run.client.login()
        for stream in STREAMS:
            before = calls(sandbox)
            batches = read_all(next_run, stream, position=positions[stream])
            cost = spent(before, calls(sandbox))
            assert sum(cost.values()) <= 2, (stream, cost)
            assert "describe" not in cost, stream  # the describe cache in the position
            assert sum(b.requests for b in batches) == sum(cost.values())


def test_an_unknown_extra_field_names_connection_object_and_field(
    make_config: MakeConfig,
) -> None:
    config = make_config(extra_fields={"opportunity": ["Product_Lin__c", "Region__c"]})
    with SalesforceConnector(config, retry=FAST_RETRY) as connector:
        with pytest.raises(ConfigurationError) as caught:
            read_all(connector, "opportunities")

    error = caught.value
    assert isinstance(error, UnknownExtraFieldError)
    message = str(error)
    assert "'sf-test'" in message
    assert "Opportunity" in message
    assert "Product_Lin__c (did you mean Product_Line__c?)" in message
    assert "Region__c" in message  # an Account field, not an Opportunity one
    assert error.fields == ("Product_Lin__c", "Region__c")


def test_an_extra_field_added_to_the_config_is_described_again(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    with SalesforceConnector(make_config(), retry=FAST_RETRY) as connector:
        position = read_all(connector, "opportunities", ReadMode.FULL)[-1].position
    assert position is not None
    assert position["extra_types"] == {}

    with SalesforceConnector(make_config(extra_fields=EXTRAS), retry=FAST_RETRY) as connector:
        before = calls(sandbox)
        batches = read_all(connector, "opportunities", position=position)
        assert spent(before, calls(sandbox)).get("describe") == 1

    assert batches[-1].position is not None
    assert batches[-1].position["extra_types"] == {"Product_Line__c": "picklist"}


def test_a_stale_describe_cache_is_refreshed(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    position = read_all(connector, "opportunities", ReadMode.FULL)[-1].position
    assert position is not None
    day_old = datetime.fromisoformat(position["described_at"]) - timedelta(hours=25)
    # A cached field the org no longer has: INVALID_FIELD makes the connector describe again.
    garbled = {**position, "fields": [*position["fields"], "Gone__c"]}

    fresh_connector = SalesforceConnector(connector.config, retry=FAST_RETRY)
    with fresh_connector:
        before = calls(sandbox)
        read_all(
            fresh_connector,
            "opportunities",
            position={**position, "described_at": day_old.isoformat()},
        )
        assert spent(before, calls(sandbox)).get("describe") == 1
    with SalesforceConnector(connector.config, retry=FAST_RETRY) as other:
        batches = read_all(other, "opportunities", position=garbled)
    assert batches[-1].position is not None
    assert "Gone__c" not in batches[-1].position["fields"]


# -- deletes when the Recycle Bin may have been emptied -------------------------------------


@pytest.fixture(scope="module")
def quiet_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandbox]:
    """A small org whose delete log is empty, so its first deletions start the log."""
    org = SalesforceSandbox(seed=2, size=20, data_dir=tmp_path_factory.mktemp("sf-quiet"))
    org.start()
    yield org
    org.stop()


def test_an_old_cursor_with_a_purged_delete_log_reconciles_live_ids(
    quiet_org: SalesforceSandbox,
) -> None:
    assert not quiet_org.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)
    config = SalesforceConnectionConfig.model_validate(
        {
            "name": "sf-quiet",
            "kind": "salesforce",
            "login_url": quiet_org.url,
            "instance_url": quiet_org.url,
            "ca_bundle": str(quiet_org.ca_bundle),
            "allow_plaintext_secrets": True,
            "auth": auth_block(quiet_org, "oauth-password"),
        },
        context={},
    )
    with SalesforceConnector(config, retry=FAST_RETRY) as connector:
        position = read_all(connector, "opportunities", ReadMode.FULL)[-1].position
        assert position is not None
        quiet_org.mutate(edits=0, deletes=3, creates=0)
        two_days_ago = datetime.now(UTC) - timedelta(days=2)
        old = {**position, "synced_at": two_days_ago.isoformat()}

        before = calls(quiet_org)
        batches = read_all(connector, "opportunities", position=old)

    assert spent(before, calls(quiet_org)).get("deleted") == 1
    # The delete log now starts after our last sync: deletions may have been purged.
    live = batches[0].items[0]
    assert isinstance(live, LiveIds)
    assert live.ids == {row["Id"] for row in quiet_org.records("Opportunity")}
    assert live.object_type is ObjectType.OPPORTUNITY
    assert batches[-1].position is not None
    assert datetime.fromisoformat(batches[-1].position["synced_at"]) > two_days_ago


def test_an_old_cursor_with_an_intact_delete_log_needs_no_reconciliation(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    position = read_all(connector, "opportunities", ReadMode.FULL)[-1].position
    assert position is not None
    # The sandbox org's delete log reaches back 30 days: nothing was purged since then.
    old = {**position, "synced_at": (datetime.now(UTC) - timedelta(days=2)).isoformat()}

    before = calls(sandbox)
    items = items_of(read_all(connector, "opportunities", position=old))

    assert spent(before, calls(sandbox)).get("deleted") == 1
    assert not any(isinstance(i, LiveIds) for i in items)


def test_a_cursor_beyond_the_delete_log_window_reconciles_without_asking(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    position = read_all(connector, "accounts", ReadMode.FULL)[-1].position
    assert position is not None
    old = {**position, "synced_at": (datetime.now(UTC) - timedelta(days=45)).isoformat()}

    before = calls(sandbox)
    batches = read_all(connector, "accounts", position=old)

    assert "deleted" not in spent(before, calls(sandbox))  # Get Deleted covers 30 days
    live = batches[0].items[0]
    assert isinstance(live, LiveIds)
    assert live.ids == {row["Id"] for row in sandbox.records("Account")}


def test_a_recent_sync_does_not_check_the_delete_log(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    position = read_all(connector, "opportunities", ReadMode.FULL)[-1].position

    before = calls(sandbox)
    items = items_of(read_all(connector, "opportunities", position=position))

    assert "deleted" not in spent(before, calls(sandbox))
    assert not any(isinstance(i, LiveIds) for i in items)


def test_a_killed_full_read_resumes_and_still_ends_done(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    first = next(iter(connector.read(ReadRequest("opportunities", ReadMode.FULL))))
    assert first.position is not None
    assert first.position["full"] is True
    assert not first.done

    rest = read_all(connector, "opportunities", ReadMode.FULL, first.position)

    ids = [i.crm_id for i in first.items + items_of(rest) if isinstance(i, Opportunity | Deletion)]
    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity", include_deleted=True)
    assert rest[-1].done
    assert rest[-1].position is not None
    assert "full" not in rest[-1].position


# -- stage history without OpportunityFieldHistory ------------------------------------------


class _NoFieldHistory(TimeoutAdapter):
    """A transport for an org without field history: its describe 404s, its queries 400."""

    def __init__(self, *, describe_too: bool) -> None:
        super().__init__()
        self.describe_too = describe_too

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = unquote_plus(request.url or "")
        if "OpportunityFieldHistory" in url and ("/describe" not in url or self.describe_too):
            status, code = (404, "NOT_FOUND") if "/describe" in url else (400, "INVALID_TYPE")
            response = requests.Response()
            response.status_code = status
            response.url = request.url or ""
            response.request = request
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(
                [{"message": "sObject type 'OpportunityFieldHistory' is not supported.",
                  "errorCode": code}]
            ).encode()  # fmt: skip
            return response
        return super().send(request, **kwargs)


@pytest.mark.parametrize("describe_too", [True, False], ids=["describe-fails", "query-fails"])
def test_stage_history_falls_back_to_opportunity_history(
    make_config: MakeConfig, sandbox: SalesforceSandbox, describe_too: bool
) -> None:
    session = requests.Session()
    session.mount("https://", _NoFieldHistory(describe_too=describe_too))
    with SalesforceConnector(make_config(), session=session, retry=FAST_RETRY) as connector:
        full = read_all(connector, "stage_history", ReadMode.FULL)
        summary = sandbox.mutate(edits=12, deletes=0, creates=0)
        later = read_all(connector, "stage_history", position=full[-1].position)
    session.close()

    changes = [i for i in items_of(full) if isinstance(i, StageChange)]
    assert changes
    assert {c.source for c in changes} == {"opportunity_history"}
    snapshots = {row["Id"] for row in sandbox.records("OpportunityHistory")}
    assert {c.crm_id for c in changes} <= snapshots
    assert full[-1].position is not None
    assert full[-1].position["source"] == "opportunity_history"
    moved = {
        c.opportunity_crm_id: c.to_stage for c in items_of(later) if isinstance(c, StageChange)
    }
    current = {row["Id"]: row["StageName"] for row in sandbox.records("Opportunity")}
    assert summary.stage_changes
    assert {o: moved[o] for o in summary.stage_changes} == {
        o: current[o] for o in summary.stage_changes
    }


# -- by id ------------------------------------------------------------------------------------


def test_read_ids_returns_current_records_and_deletions(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    live = [row["Id"] for row in sandbox.records("Opportunity")][:250]
    deleted = sandbox.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)[0]["Id"]
    missing = "0065e00000zzzzzAAA"

    batch = connector.read_ids(ObjectType.OPPORTUNITY, [*live, deleted, missing, "not-an-id"])

    found = {i.crm_id for i in batch.items if isinstance(i, Opportunity)}
    gone = {i.crm_id for i in batch.items if isinstance(i, Deletion)}
    bad = [i for i in batch.items if isinstance(i, BadRecord)]
    assert found == set(live)
    assert gone == {deleted, missing}
    assert [b.crm_id for b in bad] == ["not-an-id"]
    assert batch.position is None
    opportunity = connector.fetch_opportunity(live[0])
    assert opportunity is not None
    assert opportunity.crm_id == live[0]
    assert connector.fetch_opportunity(missing) is None

    accounts = connector.read_ids(ObjectType.ACCOUNT, [sandbox.records("Account")[0]["Id"]])
    assert [type(i) for i in accounts.items] == [Account]


def test_estimates_count_what_a_read_would_return(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    full = connector.estimate(ReadRequest("opportunities", ReadMode.FULL))
    stages = connector.estimate(ReadRequest("stages"))
    position = read_all(connector, "accounts", ReadMode.FULL)[-1].position
    recent = connector.estimate(ReadRequest("accounts", position=position))

    assert full == sandbox.count("Opportunity")
    assert stages == sandbox.count("OpportunityStage") + 1
    assert recent is not None
    assert recent < sandbox.count("Account")


def test_an_unknown_stream_is_a_configuration_error(connector: SalesforceConnector) -> None:
    with pytest.raises(ConfigurationError, match="streams: owners, stages"):
        connector.read(ReadRequest("contacts"))


def test_a_spent_api_budget_stops_the_read_at_a_checkpoint(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    delivered: list[Batch] = []

    def sync() -> None:
        for batch in connector.read(ReadRequest("opportunities", ReadMode.FULL)):
            delivered.append(batch)  # committed by the engine
            used, _ = sandbox.api_usage
            sandbox.set_api_limit(used)  # the org's daily allocation runs out now

    with pytest.raises(BudgetExhaustedError) as caught:
        sync()

    assert isinstance(caught.value, TransientError)  # the scheduler retries later
    assert caught.value.retry_after is not None
    # The next page is requested while a batch is converted, so the one asked for when the
    # allocation ran out may already have been answered: the read stops one page later.
    assert 1 <= len(delivered) <= 2
    checkpoint = delivered[-1]
    assert checkpoint.position is not None
    sandbox.set_api_limit(100_000)
    rest = read_all(connector, "opportunities", ReadMode.FULL, checkpoint.position)
    ids = [i.crm_id for i in items_of([*delivered, *rest]) if isinstance(i, Opportunity | Deletion)]
    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity", include_deleted=True)
