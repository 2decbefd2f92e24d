"""Two real ``stagelink serve`` nodes on one PostgreSQL database.

Asserted from the job-run records: the two nodes never run one connection's job at the same
time, and when the node running a job is killed (``kill -9``) the other one takes the job
over once the dead node's lease has expired. Node ids are configured names (not
``hostname:pid``), so the survivor cannot tell the victim died and has to wait for the
lease: the path a node on another machine takes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.common.faults import FaultKind
from stagelink.storage import JobRun, JobStatus, Lease
from tests.scheduler.conftest import job_runs, wait_for
from tests.scheduler.serving import start_serve, write_serve_config
from tests.sync.conftest import SF, World, start_world

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_world(tmp_path: Path, postgresql_database_url: str) -> Iterator[World]:
    yield from start_world(tmp_path, postgresql_database_url)


def test_two_nodes_share_the_schedule_and_one_takes_over_when_the_other_is_killed(
    pg_world: World, tmp_path: Path, postgresql_database_url: str
) -> None:
    world = pg_world
    config = write_serve_config(
        world,
        tmp_path / "serve.yaml",
        database_url=postgresql_database_url,
        sync="1s",
        writeback="1s",
        scheduler={"lease_ttl": "3s"},
    )
    # Salesforce answers slowly, so a sync lasts seconds and both nodes want it meanwhile.
    world.sf.faults.inject(FaultKind.SLOW, count=100_000, delay_seconds=0.3)
    nodes = {
        name: start_serve(config, node_id=name, log_dir=tmp_path) for name in ("node-a", "node-b")
    }
    try:
        wait_for(lambda: len(_finished(world, SF)) >= 3, timeout=40)

        # Kill -9 the node at the start of a Salesforce sync (seconds of work left): it
        # holds the lease.
        running, lease = _wait_for_fresh_run(world, SF)
        victim = nodes[running.node_id]
        survivor = next(node for node in nodes.values() if node is not victim)
        victim.kill()
        killed_at = datetime.now(UTC)

        takeover = _wait_for_run_by(world, SF, survivor.node_id, after=killed_at)
        code = survivor.terminate()
    finally:
        for node in nodes.values():
            node.stop()
    assert code == 0, survivor.log()

    # The dead node's lease was honoured until it expired; then the survivor took over.
    assert takeover.started_at >= lease.expires_at, (takeover.started_at, lease.expires_at)
    assert (takeover.started_at - killed_at).total_seconds() < 3 + 5
    killed = _run(world, running.id)
    assert killed.status is JobStatus.INTERRUPTED
    assert "stopped without finishing" in (killed.error or "")

    # From the job-run records: no two runs of one connection and kind ever overlapped.
    runs = job_runs(world.storage)
    for (name, kind), group in itertools.groupby(
        sorted(runs, key=lambda r: (r[0], r[1].kind, r[1].started_at)),
        key=lambda r: (r[0], r[1].kind),
    ):
        ordered = [run for _, run in group]
        for before, after in itertools.pairwise(ordered):
            assert before.finished_at is not None, (name, kind, before.id)
            assert after.started_at >= before.finished_at, (
                f"{kind} of {name}: run {after.id} ({after.node_id}) started before run "
                f"{before.id} ({before.node_id}) finished"
            )
    # Both nodes ran the shared schedule.
    assert {run.node_id for _, run in runs} == {"node-a", "node-b"}


def _finished(world: World, connection: str) -> list[JobRun]:
    return [
        run
        for name, run in job_runs(world.storage, "sync")
        if name == connection and run.finished_at is not None
    ]


def _wait_for_fresh_run(world: World, connection: str) -> tuple[JobRun, Lease]:
    """A sync of ``connection`` that has not committed a batch yet, and its lease."""
    found: list[tuple[JobRun, Lease]] = []

    def fresh() -> bool:
        for name, run in job_runs(world.storage, "sync"):
            if name == connection and run.status is JobStatus.RUNNING and not run.counts:
                lease = _lease(world, f"sync:{connection}")
                if lease.holder == run.node_id:
                    found.append((run, lease))
                    return True
        return False

    wait_for(fresh, timeout=20, step=0.02)
    return found[-1]


def _wait_for_run_by(world: World, connection: str, node_id: str, *, after: datetime) -> JobRun:
    found: list[JobRun] = []

    def started() -> bool:
        found[:] = [
            run
            for name, run in job_runs(world.storage, "sync")
            if name == connection and run.node_id == node_id and run.started_at > after
        ]
        return bool(found)

    wait_for(started, timeout=30)
    return found[0]


def _lease(world: World, name: str) -> Lease:
    with world.storage.sessions() as session:
        return session.scalars(select(Lease).where(Lease.name == name)).one()


def _run(world: World, job_id: int) -> JobRun:
    with world.storage.sessions() as session:
        run = session.get(JobRun, job_id)
        assert run is not None
        return run
