"""``kill -9`` of a real ``stagelink writeback`` process mid-batch, then a restart: exactly N.

The writer talks to the sandbox through a proxy that holds every answer for a moment
(the CRM applies each request at once), so the writer spends most of its time between
"batch marked in flight" and "answer recorded". The test waits until a batch is in flight,
kills the process at a random moment of that window — the CRM has applied the batch, the
ledger does not know — restarts it, and so on; the last restart must reconcile what the
killed writers sent and write the rest once.

Salesforce runs without an external id (the hardest case: the batch is found again by the
marker in each Task's description); HubSpot with its unique property.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from stagelink.storage import JobKind, JobRun, JobStatus, OutboxState, WritebackOutbox
from stagelink.sync import Storage
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, sync_crm, write_config
from tests.writeback.helpers import SlowAnswers, deals_and_reps, outbox_states, spread_events

ROOT = Path(__file__).resolve().parents[2]
EVENTS = {"salesforce": 450, "hubspot": 250}  # three batches each
KILLS = 3
HOLD_SECONDS = 0.4


def _writer(config_path: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stagelink.cli.main", "writeback", name, "-c", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _claimed_by(storage: Storage, writer: subprocess.Popen[str]) -> int:
    """Rows the process ``writer`` has in flight right now."""
    holder = f"{socket.gethostname()}:{writer.pid}"
    with storage.sessions() as session:
        return len(
            session.scalars(
                select(WritebackOutbox.id).where(
                    WritebackOutbox.state == OutboxState.IN_FLIGHT,
                    WritebackOutbox.claimed_by == holder,
                )
            ).all()
        )


@pytest.mark.slow
def test_a_writer_killed_mid_batch_then_restarted_writes_each_event_once(
    crm: Crm, storage: Storage, database_url: str, tmp_path: Path
) -> None:
    config = crm.config()
    sync_crm(storage, crm.connector(config), config.name)
    deals, owners = deals_and_reps(storage, config.name, 20)
    events = spread_events(deals, [owners[0][0], "no.user@example.com"], EVENTS[crm.kind])
    markers = insert_accepted_events(storage.sessions, config.name, crm.kind, events)
    proxy = SlowAnswers(crm.view.url, HOLD_SECONDS)
    slow = write_config(tmp_path / "slow.yaml", database_url, crm.block(**crm.view.via(proxy.url)))
    rng = random.Random(f"kill-{crm.kind}")

    kills = 0
    for _ in range(KILLS):
        writer = _writer(slow, config.name)
        deadline = time.monotonic() + 30
        while _claimed_by(storage, writer) == 0 and writer.poll() is None:
            assert time.monotonic() < deadline, "the writer never claimed a batch"
            time.sleep(0.02)
        # Inside the window: the batch is (or is about to be) applied, its answer held.
        time.sleep(rng.uniform(0.0, HOLD_SECONDS * 0.9))
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            kills += 1
        writer.communicate(timeout=30)
    assert kills >= 2, "the writer finished before it could be killed"
    # The last killed writer left its batch in flight: applied in the CRM, not in the ledger.
    assert OutboxState.IN_FLIGHT in set(outbox_states(storage).values())

    proxy.close()
    direct = write_config(tmp_path / "direct.yaml", database_url, crm.block())
    restart = _writer(direct, config.name)
    out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err[-2000:]

    found = crm.view.activities(markers)
    duplicates = {m: len(v) for m, v in found.items() if len(v) > 1}
    assert duplicates == {}
    assert sorted(found) == sorted(markers)
    assert set(outbox_states(storage).values()) == {OutboxState.WRITTEN}
    with storage.sessions() as session:
        runs = session.scalars(
            select(JobRun).where(JobRun.kind == JobKind.WRITEBACK).order_by(JobRun.id)
        ).all()
    # Every killed pass is on record as interrupted; the restart reconciled their batches.
    assert [r.status for r in runs].count(JobStatus.INTERRUPTED) == kills
    assert runs[-1].status is JobStatus.SUCCEEDED
    assert runs[-1].counts["reconciled"] > 0
    assert "succeeded" in out
