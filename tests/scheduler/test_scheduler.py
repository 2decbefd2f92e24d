"""The scheduler against the sandbox CRMs: jobs on their intervals, kept in the database,
reconciled with the configuration, polite about leases, stopped at a checkpoint."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

from sandbox.common.faults import FaultKind
from scheduler.jobs import Runtime, bind, run_nudges_job, run_sync_job, unbind
from scheduler.runner import NodeScheduler, planned_jobs
from stagelink.nudges.config import NudgeSettings
from stagelink.storage import JobStatus
from stagelink.storage.leases import acquire_lease
from tests.scheduler.conftest import job_runs, reschedule, wait_for
from tests.sync.conftest import HS, SF, World, differences, sf_truth, stored


def test_each_connection_syncs_on_its_interval_without_overlapping_runs(world: World) -> None:
    config = reschedule(world.config, sync=1, writeback_enabled=False)
    scheduler = NodeScheduler(config, world.storage, node_id="node-a")
    scheduler.start()
    try:
        wait_for(lambda: len(job_runs(world.storage, "sync")) >= 6)
    finally:
        scheduler.shutdown()

    runs = job_runs(world.storage, "sync")
    for name in (SF, HS):
        mine = [run for connection, run in runs if connection == name]
        assert len(mine) >= 3, f"{name}: {len(mine)} runs"
        assert {run.params["trigger"] for run in mine} == {"schedule"}
        assert {run.node_id for run in mine} == {"node-a"}
        # Recorded start, end and counts; the first one read the whole sandbox.
        assert all(run.finished_at is not None for run in mine)
        assert mine[0].status is JobStatus.SUCCEEDED
        assert mine[0].counts["read"] > 100
        for before, after in itertools.pairwise(mine):
            assert before.finished_at is not None
            assert after.started_at >= before.finished_at, "two runs of one connection overlapped"
            # One run per interval (coalesced), not a burst.
            assert after.started_at - before.started_at >= timedelta(seconds=0.8)
    assert differences(sf_truth(world.sf), stored(world, SF)) == []


def test_jobs_are_stored_and_reconciled_with_the_configuration(world: World) -> None:
    first = reschedule(
        world.config, sync=3600, writeback=3600, resolve_held_interval=timedelta(hours=1)
    )
    scheduler = NodeScheduler(first, world.storage)
    report = scheduler.start()
    # New jobs run at once, then every hour.
    wait_for(lambda: all(job.next_run_time > soon() for job in scheduler.jobs()))
    scheduler.shutdown()
    everything = {
        f"{kind}:{name}" for kind in ("sync", "writeback", "resolve-held") for name in (SF, HS)
    }
    assert set(report.added) == everything

    # Restarting with the same configuration keeps the schedule: nothing re-added or reset.
    again = NodeScheduler(first, world.storage)
    report = again.start()
    before = {job.id: job.next_run_time for job in again.jobs()}
    again.shutdown()
    assert report.added == []
    assert report.removed == []
    assert report.rescheduled == []
    assert set(report.kept) == everything
    assert all(due > soon() for due in before.values()), "a kept job was due again at once"

    # HubSpot dropped, Salesforce syncs every 30 minutes, its writeback switched off.
    second = reschedule(first, sync=1800, writeback_enabled=False, only=[SF])
    changed = NodeScheduler(second, world.storage)
    report = changed.start()
    jobs = {job.id: job for job in changed.jobs()}
    changed.shutdown()
    assert report.added == []
    assert report.rescheduled == [f"sync:{SF}"]
    assert set(report.removed) == everything - {f"sync:{SF}"}
    assert set(jobs) == {f"sync:{SF}"}
    assert jobs[f"sync:{SF}"].trigger.interval == timedelta(minutes=30)


def test_a_job_whose_lease_another_node_holds_exits_quietly(world: World) -> None:
    runtime = Runtime(world.config, world.storage, node_id="node-b", lease_ttl=timedelta(minutes=1))
    bind(runtime)
    try:
        acquire_lease(world.storage.sessions, f"sync:{SF}", "node-a", timedelta(seconds=1))
        assert run_sync_job(SF) is None
        assert job_runs(world.storage) == [], "a skipped job must not record a run"

        time.sleep(1.1)  # node-a died without releasing: its lease expires
        outcome = run_sync_job(SF)
    finally:
        unbind(runtime)
    assert outcome is not None
    assert outcome.ok
    [(connection, run)] = job_runs(world.storage)
    assert (connection, run.node_id, run.status) == (SF, "node-b", JobStatus.SUCCEEDED)


def test_shutdown_stops_a_running_sync_at_its_next_checkpoint(world: World) -> None:
    config = reschedule(world.config, sync=3600, writeback_enabled=False, only=[SF])
    # Every Salesforce request takes 0.4 s: the first sync needs several seconds.
    world.sf.faults.inject(FaultKind.SLOW, count=1000, path_prefix="/", delay_seconds=0.4)
    scheduler = NodeScheduler(config, world.storage)
    scheduler.start()
    wait_for(lambda: any(run.counts.get("read") for _, run in job_runs(world.storage)))
    started = time.monotonic()
    scheduler.shutdown(wait=True)
    stopping = time.monotonic() - started

    [(_, run)] = job_runs(world.storage)
    assert run.status is JobStatus.INTERRUPTED
    assert run.finished_at is not None
    assert "next run resumes" in (run.error or "")
    # It waited for the batch in progress (one slow request or two), not for the whole sync.
    assert stopping < 2.0


def soon() -> datetime:
    """Later than anything due in the next 50 minutes."""
    return datetime.now(UTC) + timedelta(minutes=50)


def test_after_every_node_was_down_each_connection_syncs_once_at_start(world: World) -> None:
    config = reschedule(
        world.config,
        sync=3600,
        writeback_enabled=False,
        only=[SF],
        misfire_grace=timedelta(minutes=5),
    )
    scheduler = NodeScheduler(config, world.storage)
    scheduler.start()
    wait_for(lambda: [run for _, run in job_runs(world.storage, "sync") if run.finished_at])
    scheduler.shutdown()
    assert len(job_runs(world.storage, "sync")) == 1

    # Two hours pass with no node running: the stored run time is far past the grace.
    _move_stored_job(world, f"sync:{SF}", datetime.now(UTC) - timedelta(hours=2))

    again = NodeScheduler(config, world.storage)
    again.start()
    try:
        wait_for(lambda: len(job_runs(world.storage, "sync")) == 2, timeout=10)
    finally:
        again.shutdown()
    # Made up once, then back on the hourly schedule.
    time.sleep(0.5)
    assert len(job_runs(world.storage, "sync")) == 2


def _move_stored_job(world: World, job_id: str, when: datetime) -> None:
    """Change a stored job's next run time in the job store, with no scheduler running (a
    running one would process the job itself, and a stopped one cannot look it up)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from stagelink.storage import make_engine

    store = SQLAlchemyJobStore(engine=make_engine(world.config.database_url))
    store.start(BackgroundScheduler(timezone=UTC), "default")
    try:
        job = store.lookup_job(job_id)
        job._modify(next_run_time=when)
        store.update_job(job)
    finally:
        store.shutdown()


def test_nudges_run_every_minute_only_when_switched_on(world: World) -> None:
    """Quiet hours, digests and webhook-synced changes need a pass without a sync."""
    assert "nudges:all" not in {spec.id for spec in planned_jobs(world.config)}
    nudges = NudgeSettings.model_validate(
        {"enabled": True, "channels": ["email"], "smtp": {"host": "127.0.0.1", "port": 2525,
         "security": "none", "from_address": "stagelink <nudges@example.com>"}}
    )  # fmt: skip
    switched_on = world.config.model_copy(update={"nudges": nudges})
    specs = {spec.id: spec for spec in planned_jobs(switched_on)}
    assert specs["nudges:all"].interval == timedelta(minutes=1)
    assert specs["nudges:all"].func is run_nudges_job
