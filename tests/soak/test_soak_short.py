"""A short reliability soak inside the test suite (``make soak`` runs the long one).

Everything is real: both sandbox CRMs over HTTP(S) answering 20% of API requests with
faults (429 with rate-limit headers, 5xx, connection resets, expired sessions), their
mutator editing, deleting and creating records, a client posting usage to the real API
(resending batches with the same event ids, naming deals not synced yet), and a
``stagelink serve`` subprocess on SQLite killed with SIGKILL at random moments and
restarted. After the chaos stagelink's own schedule runs the final clean sync and
writeback; then storage must equal both CRMs and every accepted event must be exactly one
CRM activity.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from soak.run import run_soak
from soak.settings import SoakSettings


@pytest.mark.slow
def test_kill_9_faults_and_crm_changes_leave_storage_equal_and_usage_written_once(
    tmp_path: Path, sqlite_database_url: str
) -> None:
    settings = SoakSettings(
        duration=30,
        kill_every=8,
        fault_rate=0.2,
        seed=1,
        database_url=sqlite_database_url,
        workdir=tmp_path,
        resend_rate=0.15,
        drain_timeout=150,
    )

    report = run_soak(settings, console=Console(file=io.StringIO()))

    summary = report.markdown()
    print(summary)  # shown with -s, and on failure
    # The chaos happened: kills mid-run, faults of each kind, fresh deals, resent batches.
    assert report.kills >= 2, summary
    assert report.restarts >= report.kills
    assert {"rate_limit", "server_error", "drop"} <= set(report.faults), summary
    assert report.answers["held"] > 0, summary
    assert report.answers["duplicate (resent)"] > 0, summary
    assert report.mutations["deleted"] > 0
    # ... and left no trace: storage equals each CRM, each accepted event is one activity.
    assert report.storage.compared > 600
    assert report.storage.problems == []
    assert report.activities.problems == []
    assert report.activities.duplicates == {}
    assert report.activities.missing == []
    assert report.activities.accepted > 100
    assert (
        report.activities.written_once + report.activities.refused_deal_deleted
        == report.activities.accepted
    )
    assert report.crashes == []
    assert report.final_exit_code == 0
    assert report.ok, summary
