"""Large syncs into a SQLite file are written by a writer process: the same promises hold.

The engine hands batches to a child process (``SyncEngine(writer_process_min_records=...)``,
here ``0`` so that every batch goes there) so reading and writing use two cores. These
tests run the engine's promises through that process against a real SQLite file: same rows
and counts as writing in-process, position committed with each batch, quarantine, stop and
budget pauses at a checkpoint, a failed write fails the job, and a ``kill -9`` of the
parent leaves nothing half-done (the child stops too). PostgreSQL never uses the process.
The connector is the scripted fake of ``test_engine.py`` (a seam stagelink owns).
"""

from __future__ import annotations

import gc
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.connector import ReadMode
from connectors.core.probe import ApiBudget
from connectors.core.records import BadRecord, Deletion, ObjectType, StageChange
from stagelink.storage import (
    CrmOpportunity,
    CrmStageHistory,
    JobRun,
    JobStatus,
    QuarantinedRecord,
    SyncCursor,
    make_engine,
    session_factory,
)
from stagelink.sync import Progress, SyncEngine, SyncOptions
from stagelink.sync.prefetch import HelperProcess, HelperSetupError, fewer_collections
from tests.sync.test_engine import T0, ScriptedConnector, opportunity, stored
from tests.sync.test_engine import make_engine as engine_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sessions(sqlite_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_database_url)
    yield session_factory(engine)
    engine.dispose()


def script(batches: int, size: int, first: int = 0) -> list[list[Any]]:
    return [[opportunity(first + k * size + n) for n in range(size)] for k in range(batches)]


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def without_ms(counts: dict[str, Any]) -> dict[str, Any]:
    streams = {k: {c: n for c, n in v.items() if c != "ms"} for k, v in counts["streams"].items()}
    return {**counts, "streams": streams}


def test_a_sync_through_the_writer_process_equals_one_written_here(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    history = StageChange("006000003", "Negotiation", T0, "Prospecting", "field_history", "017A")
    bad = BadRecord(ObjectType.OPPORTUNITY, "006BAD", "field 'Amount': expected a number")
    gone = Deletion(ObjectType.OPPORTUNITY, "006000001")
    batches = [*script(3, 40), [opportunity(500), history, bad, gone]]
    template = Path(str(make_url(sqlite_database_url).database))
    results = {}
    for name, threshold in (("here", None), ("process", 0)):
        database = tmp_path / f"{name}.db"
        shutil.copyfile(template, database)
        engine = make_engine(f"sqlite:///{database}")
        sessions = session_factory(engine)
        seen: list[Progress] = []
        connector = ScriptedConnector({"opportunities": batches})
        first = engine_for(
            sessions, connector, writer_process_min_records=threshold, progress=seen.append
        ).run()
        again = engine_for(sessions, connector, writer_process_min_records=threshold).run(
            SyncOptions(mode=ReadMode.FULL)
        )
        with sessions() as session:
            history_rows = session.scalar(select(func.count()).select_from(CrmStageHistory))
            quarantined = session.scalars(select(QuarantinedRecord.reason)).all()
            cursor = session.scalars(select(SyncCursor.cursor)).one()
            jobs = [
                without_ms(j.counts) for j in session.scalars(select(JobRun).order_by(JobRun.id))
            ]
        results[name] = (
            first.counts,
            again.counts,
            {k: (*v[:3], v[3] is not None) for k, v in stored(sessions).items()},
            history_rows,
            quarantined,
            cursor,
            [(p.read, p.remaining) for p in seen],
            jobs,
        )
        engine.dispose()

    assert results["process"] == results["here"]
    counts = results["process"][0]
    assert (counts["inserted"], counts["deleted"], counts["quarantined"]) == (121, 1, 1)
    assert results["process"][1]["unchanged"] == 120  # the second run rewrote nothing


def test_each_batch_is_committed_with_its_position_and_a_failure_stops_there(
    sessions: sessionmaker[Session],
) -> None:
    # A naive time cannot be stored: the writer process fails on the third batch.
    naive = StageChange("006000001", "Negotiation", T0.replace(tzinfo=None), "Prospecting")
    batches = [*script(2, 30), [naive], *script(2, 30, first=100)]
    connector = ScriptedConnector({"opportunities": batches})

    outcome = engine_for(sessions, connector, writer_process_min_records=0).run()

    assert outcome.status is JobStatus.FAILED
    assert "naive datetime" in (outcome.error or "")
    assert len(stored(sessions)) == 60
    with sessions() as session:
        assert session.scalars(select(SyncCursor.cursor)).one() == {"next": 2}
    connector.batches["opportunities"][2] = []
    resumed = engine_for(sessions, connector, writer_process_min_records=0).run()
    assert resumed.ok
    assert len(stored(sessions)) == 120


def test_a_stop_request_ends_with_every_read_batch_committed(
    sessions: sessionmaker[Session],
) -> None:
    stop = threading.Event()
    connector = ScriptedConnector({"opportunities": script(20, 20)})
    connector.on_batch = lambda index: stop.set() if index == 3 else None

    outcome = engine_for(sessions, connector, stop=stop, writer_process_min_records=0).run()

    assert outcome.status is JobStatus.INTERRUPTED
    committed = len(stored(sessions))
    assert committed in (60, 80)  # the batch being read when the stop came, or the one before
    with sessions() as session:
        assert session.scalars(select(SyncCursor.cursor)).one() == {"next": committed // 20}
        job = session.scalars(select(JobRun)).one()
    assert job.counts["inserted"] == committed == outcome.counts["inserted"]


def test_a_spent_budget_pauses_at_the_last_committed_batch(
    sessions: sessionmaker[Session],
) -> None:
    connector = ScriptedConnector({"opportunities": script(10, 20)})

    def spend(index: int) -> None:
        connector.budget = [ApiBudget(used=4_000 + 500 * index, limit=10_000, window="24h rolling")]

    connector.on_batch = spend
    paused = engine_for(
        sessions, connector, budget_fraction=0.5, writer_process_min_records=0
    ).run()

    assert paused.status is JobStatus.PAUSED_BUDGET
    committed = len(stored(sessions))
    assert committed in (20, 40, 60)
    with sessions() as session:
        assert session.scalars(select(SyncCursor.cursor)).one() == {"next": committed // 20}


def test_killing_the_sync_stops_its_writer_process_and_a_rerun_completes(
    sqlite_database_url: str,
) -> None:
    """``kill -9`` of the process running the sync: the writer process commits nothing more
    (at most the batch it was writing, with its position) and exits; a rerun resumes from the
    saved position and ends with every record once."""
    runner = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from stagelink.storage import make_engine, session_factory
        from tests.sync.test_engine import ScriptedConnector, make_engine as engine_for
        from tests.sync.test_writer_process import script
        connector = ScriptedConnector({{"opportunities": script(60, 50)}})
        connector.on_batch = lambda index: time.sleep(0.05)
        sessions = session_factory(make_engine(sys.argv[1]))
        engine_for(sessions, connector, writer_process_min_records=0).run()
        """
    )
    sync = subprocess.Popen([sys.executable, "-c", runner, sqlite_database_url])
    engine = make_engine(sqlite_database_url)
    sessions = session_factory(engine)
    try:
        deadline = time.monotonic() + 60
        while len(stored(sessions)) < 1000:
            assert sync.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        writers = children_of(sync.pid)
        assert writers, "the sync has a writer process"
        sync.send_signal(signal.SIGKILL)
        sync.wait()
        for pid in writers:
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
                if state == "Z":
                    break  # exited; its parent is gone, so nobody reaps it yet
                time.sleep(0.05)
            assert not Path(f"/proc/{pid}").exists() or state == "Z"
        settled = len(stored(sessions))
        time.sleep(0.5)
        assert len(stored(sessions)) == settled  # nothing written after the kill settled
        with sessions() as session:
            assert session.scalars(select(SyncCursor.cursor)).one() == {"next": settled // 50}

        connector = ScriptedConnector({"opportunities": script(60, 50)})
        rerun = engine_for(sessions, connector, writer_process_min_records=0).run()

        assert rerun.ok
        assert rerun.counts["inserted"] == 3000 - settled
        with sessions() as session:
            rows = session.scalar(select(func.count()).select_from(CrmOpportunity))
        assert rows == 3000
    finally:
        if sync.poll() is None:
            sync.kill()
        engine.dispose()


# -- the helper process itself ----------------------------------------------------------------


def _setup(offset: int) -> dict[str, int]:
    if offset < 0:
        raise ValueError("no such offset")
    return {"offset": offset}


def _step(state: dict[str, int], work: int) -> int:
    if work < 0:
        raise ValueError(f"refused {work}")
    return work + state["offset"]


def test_a_helper_process_returns_results_in_order_and_raises_its_errors() -> None:
    process: HelperProcess[int, int] = HelperProcess(_setup, 100, _step, depth=2)
    results: list[int] = []
    try:
        assert process.ready()
        for work in range(6):
            process.submit(work, results.append)
        process.drain()
        assert results == [100, 101, 102, 103, 104, 105]

        process.submit(-1, results.append)
        with pytest.raises(ValueError, match="refused -1"):
            process.drain()
    finally:
        process.kill()


def test_a_helper_process_that_cannot_start_says_why() -> None:
    process: HelperProcess[int, int] = HelperProcess(_setup, -1, _step)
    try:
        assert not process.ready()
        assert "no such offset" in str(process.setup_error)
    finally:
        process.kill()
    # Work submitted before it is known: the first wait for a result says it never ran.
    process = HelperProcess(_setup, -1, _step)
    try:
        process.submit(1, lambda result: pytest.fail("nothing runs"))
        with pytest.raises(HelperSetupError, match="no such offset"):
            process.drain()
    finally:
        process.kill()


def test_when_the_writer_process_cannot_start_the_sync_writes_here(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken environment, made real: the writer process is pointed at a database it
    cannot create (the one patch here), so its setup fails; the sync writes in-process."""
    monkeypatch.setattr(
        SyncEngine, "_writer_process_url", lambda self: "sqlite:////proc/nowhere/x.db"
    )
    connector = ScriptedConnector({"opportunities": script(3, 20)})

    outcome = engine_for(sessions, connector, writer_process_min_records=0).run()

    assert outcome.ok
    assert len(stored(sessions)) == 60


def test_the_collector_threshold_is_raised_only_while_a_sync_runs() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        with fewer_collections():
            assert gc.get_threshold()[0] >= 50_000
        assert gc.get_threshold()[0] >= 50_000
    assert gc.get_threshold() == before
