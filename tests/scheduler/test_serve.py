"""``stagelink serve`` as a real process: web and scheduler together, graceful SIGTERM."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.common.faults import FaultKind
from stagelink.storage import JobRun, JobStatus
from tests.scheduler.conftest import job_runs, wait_for
from tests.scheduler.serving import start_serve, write_serve_config
from tests.sync.conftest import SF, World


def test_serve_runs_the_schedule_and_stops_at_a_checkpoint_on_sigterm(
    world: World, tmp_path: Path, sqlite_database_url: str
) -> None:
    config = write_serve_config(
        world, tmp_path / "serve.yaml", database_url=sqlite_database_url, sync="1s"
    )
    node = start_serve(config, node_id="node-a", log_dir=tmp_path)
    try:
        with node.client() as client:
            assert client.get("/healthz").json() == {"status": "ok"}
        # Both connections sync on their interval, recorded as this node's runs.
        wait_for(lambda: len({name for name, _ in _finished(world)}) == 2)

        # Now every Salesforce request takes 0.3 s: the next sync is still running when
        # SIGTERM arrives.
        world.sf.faults.inject(FaultKind.SLOW, count=10_000, delay_seconds=0.3)
        done = max(run.id for _, run in _finished(world))
        wait_for(lambda: _running(world, SF, after=done))
        started = time.monotonic()
        code = node.terminate()
        stopping = time.monotonic() - started
    finally:
        node.stop()
    assert code == 0, node.log()
    assert "stagelink stopped" in node.log()
    assert stopping < 10, node.log()
    runs = job_runs(world.storage, "sync")
    assert {run.node_id for _, run in runs} == {"node-a"}
    # Nothing left "running": the sync in progress stopped at its next checkpoint.
    assert all(run.status is not JobStatus.RUNNING for _, run in runs)
    last = [run for name, run in runs if name == SF][-1]
    assert last.status is JobStatus.INTERRUPTED, node.log()


def _finished(world: World) -> list[tuple[str, JobRun]]:
    return [(name, run) for name, run in job_runs(world.storage, "sync") if run.finished_at]


def _running(world: World, connection: str, *, after: int) -> bool:
    return any(
        name == connection and run.status is JobStatus.RUNNING and run.id > after
        for name, run in job_runs(world.storage, "sync")
    )
