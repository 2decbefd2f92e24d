"""The sync engine against a scripted connector, on SQLite and PostgreSQL.

The connector here is a fake at a seam stagelink owns (the ``Connector`` ABC), so these
tests pin the engine's own promises — idempotence, position committed with its batch,
quarantine, budget pauses, deletion reconciliation, leases — independent of any CRM. The
same engine runs against the real client libraries and the sandbox CRMs in
``test_sync_salesforce.py`` and ``test_sync_hubspot.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.connector import Batch, Connector, ReadMode, ReadRequest, StreamInfo
from connectors.core.errors import BudgetExhaustedError
from connectors.core.probe import ApiBudget
from connectors.core.records import (
    Account,
    BadRecord,
    Deletion,
    Item,
    ObjectType,
    Opportunity,
    StageChange,
)
from stagelink.storage import (
    Checkpoint,
    CrmAccount,
    CrmOpportunity,
    CrmStageHistory,
    JobKind,
    JobRun,
    JobStatus,
    QuarantinedRecord,
    SyncCursor,
    session_factory,
)
from stagelink.storage.leases import acquire_lease
from stagelink.sync import JobAlreadyRunning, SyncEngine, SyncOptions

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def opportunity(n: int, **changes: Any) -> Opportunity:
    values: dict[str, Any] = {
        "crm_id": f"006{n:06d}",
        "name": f"Deal {n} — Zürich 東京",
        "account_crm_id": f"001{n % 7:05d}",
        "stage_crm_id": "Prospecting",
        "amount": Decimal("1000.50") + n,
        "currency": "EUR",
        "crm_modified_at": T0 + timedelta(seconds=n),
        "raw": {"Id": f"006{n:06d}", "Description": "x" * 10},
    }
    values.update(changes)
    return Opportunity(**values)


class ScriptedConnector(Connector):
    """Yields pre-set batches per stream, resuming from the position it is handed.

    A position is ``{"next": k}``: the index of the next batch. ``fail_after`` raises an
    error after that many batches were yielded in this read (a crash mid-run).
    """

    kind = "scripted"

    def __init__(self, batches: dict[str, list[list[Item]]]) -> None:
        self.batches = batches
        self.fail_after: int | None = None
        self.failure: Exception = RuntimeError("connection dropped")
        self.budget: list[ApiBudget] = []
        self.requests = 0
        self.positions_seen: list[dict[str, Any] | None] = []
        self.on_batch: Callable[[int], None] | None = None

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo(name) for name in self.batches]

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        self.positions_seen.append(request.position)
        start = int((request.position or {}).get("next", 0))
        script = self.batches[request.stream]
        for index in range(start, len(script)):
            if self.fail_after is not None and index - start >= self.fail_after:
                raise self.failure
            self.requests += 1
            if self.on_batch:
                self.on_batch(index)
            yield Batch(
                items=list(script[index]),
                position={"next": index + 1},
                done=index == len(script) - 1,
                requests=1,
                remaining=sum(len(b) for b in script[index + 1 :]),
            )

    def read_ids(self, object_type: ObjectType, crm_ids: Sequence[str]) -> Batch:
        found = {
            item.crm_id: item
            for batches in self.batches.values()
            for batch in batches
            for item in batch
            if isinstance(item, Opportunity)
        }
        items: list[Item] = [found[i] if i in found else Deletion(object_type, i) for i in crm_ids]
        return Batch(items=items)

    def api_budget(self) -> list[ApiBudget]:
        return self.budget

    def requests_made(self) -> int:
        return self.requests


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def make_engine(sessions: sessionmaker[Session], connector: Connector, **kw: Any) -> SyncEngine:
    return SyncEngine(sessions, connector, connection_name="acme", **kw)


def stored(sessions: sessionmaker[Session]) -> dict[str, tuple[Any, ...]]:
    with sessions() as session:
        rows = session.execute(
            select(
                CrmOpportunity.crm_id,
                CrmOpportunity.name,
                CrmOpportunity.amount,
                CrmOpportunity.stage_crm_id,
                CrmOpportunity.deleted_at,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_full_sync_stores_every_record_and_a_second_run_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    batches = [[opportunity(n) for n in range(k, k + 50)] for k in range(0, 200, 50)]
    connector = ScriptedConnector({"opportunities": batches})

    first = make_engine(sessions, connector).run()
    second = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    assert first.status is JobStatus.SUCCEEDED
    assert first.counts["inserted"] == 200
    assert second.counts == {**second.counts, "inserted": 0, "updated": 0, "deleted": 0}
    assert second.counts["unchanged"] == 200
    rows = stored(sessions)
    assert len(rows) == 200
    assert rows["006000007"][0] == "Deal 7 — Zürich 東京"
    assert rows["006000007"][1] == Decimal("1007.50")


def test_updates_are_counted_only_when_a_value_changed(sessions: sessionmaker[Session]) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(1), opportunity(2)]]})
    make_engine(sessions, connector).run()
    connector.batches["opportunities"] = [
        [
            opportunity(1, stage_crm_id="Negotiation", crm_modified_at=T0 + timedelta(hours=1)),
            opportunity(2),
        ]
    ]

    outcome = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    assert (outcome.counts["updated"], outcome.counts["unchanged"]) == (1, 1)
    assert stored(sessions)["006000001"][2] == "Negotiation"


def test_an_older_read_never_overwrites_a_newer_one(sessions: sessionmaker[Session]) -> None:
    newer = opportunity(1, stage_crm_id="Closed Won", crm_modified_at=T0 + timedelta(hours=2))
    connector = ScriptedConnector({"opportunities": [[newer]]})
    make_engine(sessions, connector).run()
    connector.batches["opportunities"] = [[opportunity(1, stage_crm_id="Prospecting")]]

    outcome = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    assert outcome.counts["updated"] == 0
    assert stored(sessions)["006000001"][2] == "Closed Won"


def test_position_is_saved_with_its_batch_so_a_crash_resumes_without_gaps_or_duplicates(
    sessions: sessionmaker[Session],
) -> None:
    batches = [[opportunity(n) for n in range(k, k + 10)] for k in range(0, 100, 10)]
    connector = ScriptedConnector({"opportunities": batches})
    connector.fail_after = 4

    crashed = make_engine(sessions, connector).run()

    assert crashed.status is JobStatus.FAILED
    assert "connection dropped" in (crashed.error or "")
    assert len(stored(sessions)) == 40
    connector.fail_after = None
    resumed = make_engine(sessions, connector).run()
    assert resumed.status is JobStatus.SUCCEEDED
    assert connector.positions_seen[-1] == {"next": 4}
    assert resumed.counts["inserted"] == 60
    assert len(stored(sessions)) == 100
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(CrmOpportunity)) == 100


def test_bad_records_are_quarantined_with_their_reason_and_the_rest_is_stored(
    sessions: sessionmaker[Session],
) -> None:
    too_big = opportunity(3, amount=Decimal("1e20"))
    nul = opportunity(4, name="bad\x00name", raw={"Description": "a\x00b"})
    connector = ScriptedConnector(
        {
            "opportunities": [
                [
                    opportunity(1),
                    BadRecord(ObjectType.OPPORTUNITY, "006X", "field 'CloseDate': bad", {"a": 1}),
                    too_big,
                    nul,
                    opportunity(2),
                ]
            ]
        }
    )

    outcome = make_engine(sessions, connector).run()
    again = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    assert outcome.status is JobStatus.SUCCEEDED
    assert outcome.counts["quarantined"] == 2
    assert set(stored(sessions)) == {"006000001", "006000002", "006000004"}
    assert stored(sessions)["006000004"][0] == "badname"
    with sessions() as session:
        rows = {q.crm_id: q for q in session.scalars(select(QuarantinedRecord))}
    assert set(rows) == {"006X", "006000003"}
    assert rows["006X"].reason == "field 'CloseDate': bad"
    assert rows["006X"].raw == {"a": 1}
    assert "14 digits" in rows["006000003"].reason
    assert rows["006X"].occurrences == 2  # seen again by the second run, still one row
    assert again.counts["quarantined"] == 2


def test_a_quarantined_record_that_arrives_good_is_resolved(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector(
        {"opportunities": [[BadRecord(ObjectType.OPPORTUNITY, "006000001", "no stage")]]}
    )
    make_engine(sessions, connector).run()
    connector.batches["opportunities"] = [[opportunity(1)]]

    make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    with sessions() as session:
        row = session.scalars(select(QuarantinedRecord)).one()
    assert row.resolved_at is not None


def test_deletions_and_full_reconciliation_mark_records_deleted(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(n) for n in range(5)]]})
    make_engine(sessions, connector).run()

    connector.batches["opportunities"] = [[Deletion(ObjectType.OPPORTUNITY, "006000000", T0)]]
    deleted = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))
    assert deleted.counts["deleted"] == 1 + 4  # one explicit, four no longer returned

    connector.batches["opportunities"] = [[opportunity(1), opportunity(2)]]
    revived = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))
    rows = stored(sessions)
    assert revived.counts["updated"] == 2
    assert {k for k, v in rows.items() if v[3] is None} == {"006000001", "006000002"}
    assert rows["006000000"][3] == T0


def test_a_resumed_full_read_does_not_reconcile_by_absence(
    sessions: sessionmaker[Session],
) -> None:
    batches = [[opportunity(n) for n in range(k, k + 10)] for k in range(0, 30, 10)]
    connector = ScriptedConnector({"opportunities": batches})
    make_engine(sessions, connector).run()
    connector.fail_after = 1
    make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))
    connector.fail_after = None

    resumed = make_engine(sessions, connector).run()

    assert resumed.counts["deleted"] == 0
    assert all(v[3] is None for v in stored(sessions).values())


def test_stage_history_is_stored_once_per_transition(sessions: sessionmaker[Session]) -> None:
    change = StageChange("006000001", "Qualification", T0, "Prospecting", "field_history", "017A")
    connector = ScriptedConnector({"opportunities": [[opportunity(1), change, change]]})

    first = make_engine(sessions, connector).run()
    second = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    assert (first.counts["history"], second.counts["history"]) == (1, 0)
    with sessions() as session:
        row = session.scalars(select(CrmStageHistory)).one()
    assert (row.from_stage, row.to_stage, row.changed_at) == ("Prospecting", "Qualification", T0)


def test_budget_pauses_at_a_checkpoint_and_the_next_run_resumes(
    sessions: sessionmaker[Session],
) -> None:
    batches = [[opportunity(n) for n in range(k, k + 10)] for k in range(0, 50, 10)]
    connector = ScriptedConnector({"opportunities": batches})

    def spend(index: int) -> None:
        connector.budget = [ApiBudget(used=4_000 + 500 * index, limit=10_000, window="24h rolling")]

    connector.on_batch = spend
    paused = make_engine(sessions, connector, budget_fraction=0.5).run()

    assert paused.status is JobStatus.PAUSED_BUDGET
    assert "of 10,000 daily requests used" in (paused.error or "")
    # The read runs a batch ahead of the writes, so the pause lands on the batch committed
    # when the crossing became visible; the saved position matches what was stored.
    committed = len(stored(sessions))
    assert committed in (10, 20, 30)
    with sessions() as session:
        assert session.scalars(select(SyncCursor)).one().cursor == {"next": committed // 10}
    connector.on_batch = None
    connector.budget = [ApiBudget(used=100, limit=10_000, window="24h rolling")]
    resumed = make_engine(sessions, connector, budget_fraction=0.5).run()
    assert resumed.status is JobStatus.SUCCEEDED
    assert len(stored(sessions)) == 50


def test_the_crms_own_limit_pauses_the_job(sessions: sessionmaker[Session]) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(1)], [opportunity(2)]]})
    connector.fail_after = 1
    connector.failure = BudgetExhaustedError("REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded")

    outcome = make_engine(sessions, connector).run()

    assert outcome.status is JobStatus.PAUSED_BUDGET
    assert "REQUEST_LIMIT_EXCEEDED" in (outcome.error or "")


def test_stop_request_interrupts_after_the_current_batch(sessions: sessionmaker[Session]) -> None:
    stop = threading.Event()
    connector = ScriptedConnector({"opportunities": [[opportunity(n)] for n in range(5)]})
    connector.on_batch = lambda index: stop.set() if index == 1 else None

    outcome = make_engine(sessions, connector, stop=stop).run()

    assert outcome.status is JobStatus.INTERRUPTED
    committed = len(stored(sessions))
    assert 1 <= committed <= 2  # stops after the batch being written when the stop came
    with sessions() as session:
        cursor = session.scalars(select(SyncCursor)).one()
    assert cursor.cursor == {"next": committed}


def test_a_second_node_cannot_run_the_same_job_while_the_lease_is_live(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(1)]]})
    acquire_lease(sessions, "sync:acme", "other-node:42", timedelta(minutes=5))

    with pytest.raises(JobAlreadyRunning, match="other-node:42"):
        make_engine(sessions, connector).run()


def test_a_job_left_running_by_a_dead_node_is_marked_interrupted(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(1)]]})
    engine = make_engine(sessions, connector)
    with sessions.begin() as session:
        session.add(JobRun(connection_id=engine.connection_id, kind=JobKind.SYNC))

    outcome = engine.run()

    with sessions() as session:
        statuses = [j.status for j in session.scalars(select(JobRun).order_by(JobRun.id))]
    assert statuses == [JobStatus.INTERRUPTED, JobStatus.SUCCEEDED]
    assert outcome.ok


def test_backfill_checkpoint_resumes_and_is_removed_when_done(
    sessions: sessionmaker[Session],
) -> None:
    batches = [[opportunity(n)] for n in range(6)]
    connector = ScriptedConnector({"opportunities": batches})
    connector.fail_after = 3
    options = SyncOptions(kind=JobKind.BACKFILL, mode=ReadMode.BACKFILL, since=T0)

    make_engine(sessions, connector).run(options)
    with sessions() as session:
        checkpoint = session.scalars(select(Checkpoint)).one()
    assert checkpoint.state["position"] == {"next": 3}
    assert checkpoint.job_key == "backfill:acme:opportunities:2026-01-05..*"

    connector.fail_after = None
    done = make_engine(sessions, connector).run(options)

    assert done.ok
    assert connector.positions_seen[-1] == {"next": 3}
    assert len(stored(sessions)) == 6
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 0
        assert session.scalar(select(func.count()).select_from(SyncCursor)) == 0


def test_apply_ids_stores_fetched_records_and_deletes_unknown_ones(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector({"opportunities": [[opportunity(1), opportunity(2)]]})
    engine = make_engine(sessions, connector)
    engine.run()
    connector.batches["opportunities"] = [[opportunity(1, name="Renamed")]]

    outcome = engine.apply_ids(ObjectType.OPPORTUNITY, ["006000001", "006000002"], trigger="test")

    assert outcome.ok
    rows = stored(sessions)
    assert rows["006000001"][0] == "Renamed"
    assert rows["006000002"][3] is not None


def test_accounts_and_opportunities_in_one_batch(sessions: sessionmaker[Session]) -> None:
    account = Account(crm_id="001A", name="Ünïcødé GmbH", industry="Banking", raw={"Id": "001A"})
    connector = ScriptedConnector({"records": [[account, opportunity(1)]]})

    outcome = make_engine(sessions, connector).run()

    assert outcome.counts["inserted"] == 2
    with sessions() as session:
        assert session.scalars(select(CrmAccount.name)).one() == "Ünïcødé GmbH"


def test_a_lease_left_by_a_killed_process_of_this_host_is_taken_over_at_once(
    sessions: sessionmaker[Session],
) -> None:
    import socket
    import subprocess
    import sys

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_holder = f"{socket.gethostname()}:{finished.stdout.strip()}"
    acquire_lease(sessions, "sync:acme", dead_holder, timedelta(minutes=5))
    connector = ScriptedConnector({"opportunities": [[opportunity(1)]]})

    outcome = make_engine(sessions, connector).run()

    assert outcome.ok
    assert len(stored(sessions)) == 1


def test_stage_entry_is_derived_from_history_when_the_crm_gives_none(
    sessions: sessionmaker[Session],
) -> None:
    created = T0 - timedelta(days=30)
    moved = StageChange("006000001", "Negotiation", T0, "Prospecting", "field_history", "017A")
    connector = ScriptedConnector(
        {
            "opportunities": [
                [
                    opportunity(1, stage_crm_id="Negotiation", crm_created_at=created),
                    opportunity(2, crm_created_at=created),
                    opportunity(3, stage_entered_at=T0 - timedelta(days=2)),
                ]
            ],
            "stage_history": [[moved]],
        }
    )

    make_engine(sessions, connector).run()
    again = make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    with sessions() as session:
        rows = session.execute(select(CrmOpportunity.crm_id, CrmOpportunity.stage_entered_at))
        entered = {str(row[0]): row[1] for row in rows}
    assert entered == {
        "006000001": T0,  # from the change into its current stage
        "006000002": created,  # never moved: in its stage since creation
        "006000003": T0 - timedelta(days=2),  # the CRM said so
    }
    assert (again.counts["updated"], again.counts["unchanged"]) == (0, 3)


def test_a_stage_move_re_derives_the_entry_time(sessions: sessionmaker[Session]) -> None:
    created = T0 - timedelta(days=30)
    connector = ScriptedConnector(
        {"opportunities": [[opportunity(1, crm_created_at=created)]], "stage_history": [[]]}
    )
    make_engine(sessions, connector).run()
    later = T0 + timedelta(days=3)
    connector.batches = {
        "opportunities": [
            [
                opportunity(
                    1, stage_crm_id="Negotiation", crm_created_at=created, crm_modified_at=later
                )
            ]
        ],
        "stage_history": [[StageChange("006000001", "Negotiation", later, "Prospecting")]],
    }

    make_engine(sessions, connector).run(SyncOptions(mode=ReadMode.FULL))

    with sessions() as session:
        entered = session.scalars(select(CrmOpportunity.stage_entered_at)).one()
    assert entered == later
