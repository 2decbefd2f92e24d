"""`stagelink demo` end to end: sandboxes up, config valid, database migrated, both CRMs proven,
synced, and recommendations explained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

STAGELINK = Path(sys.executable).parent / "stagelink"


def test_demo_runs_the_loop_on_the_embedded_default(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINK_")}
    environ["COLUMNS"] = "200"
    result = subprocess.run(
        [str(STAGELINK), "demo", "--workdir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sandbox-salesforce (salesforce) ok: logged in as" in out
    assert "sandbox-hubspot (hubspot) ok: logged in as portal" in out
    assert "migrated to revision" in out
    assert "Opportunity: read" in out
    assert "Task: read, write" in out
    # Both CRMs synced through the engine, and recommendations say why.
    assert "sandbox-salesforce: job 1 succeeded" in out
    assert "sandbox-hubspot: job 2 succeeded" in out
    assert "largest open opportunities" in out
    assert "matched rule" in out
    # The generated config points at the sandboxes and is what the demo validated.
    config = yaml.safe_load((tmp_path / "demo" / "stagelink.yaml").read_text(encoding="utf-8"))
    assert [c["kind"] for c in config["connections"]] == ["salesforce", "hubspot"]
    assert (tmp_path / "demo" / "db" / "stagelink.db").exists()
