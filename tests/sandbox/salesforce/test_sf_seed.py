"""The seeded org: determinism, realism, isolation, the mutator and the CLI."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.schema import SCHEMA
from sandbox.salesforce.seed import plan_for

REPO = Path(__file__).resolve().parents[3]


def _snapshot(sandbox: SalesforceSandbox) -> dict[str, list[dict[str, Any]]]:
    return {name: sandbox.records(name, include_deleted=True) for name in SCHEMA}


def test_same_seed_gives_identical_records_and_another_seed_does_not(tmp_path: Path) -> None:
    first = SalesforceSandbox(seed=7, size=120, data_dir=tmp_path / "a")
    second = SalesforceSandbox(seed=7, size=120, data_dir=tmp_path / "b")
    other = SalesforceSandbox(seed=8, size=120, data_dir=tmp_path / "c")
    try:
        assert _snapshot(first) == _snapshot(second)
        stable = ("username", "password", "security_token", "consumer_key", "refresh_token")
        for name in (*stable, "consumer_secret", "organization_id", "user_id"):
            assert getattr(first.credentials, name) == getattr(second.credentials, name)
        assert _snapshot(first)["Opportunity"] != _snapshot(other)["Opportunity"]
    finally:
        for sandbox in (first, second, other):
            sandbox.stop()


def test_size_plans() -> None:
    assert (
        plan_for("small").users,
        plan_for("small").accounts,
        plan_for("small").opportunities,
    ) == (
        10,
        60,
        300,
    )
    assert plan_for("large").opportunities == 100_000
    assert (plan_for(1_000_000).accounts, plan_for(1_000_000).users) == (200_000, 2000)
    assert plan_for(1000).users == 5
    with pytest.raises(ValueError, match="unknown seed size"):
        plan_for("huge")


def test_the_small_org_looks_like_a_real_one(fresh_org: SalesforceSandbox) -> None:
    counts = {name: fresh_org.count(name) for name in ("User", "Account", "Task", "Event")}
    assert counts["User"] == 10
    assert counts["Account"] == 60
    assert counts["Task"] >= 20
    assert counts["Event"] >= 5
    assert fresh_org.count("Opportunity", include_deleted=True) == 300
    opportunities = fresh_org.records("Opportunity", include_deleted=True)
    assert {o["CurrencyIsoCode"] for o in opportunities} == {"USD", "EUR", "GBP", "JPY"}
    stages = collections.Counter(o["StageName"] for o in opportunities)
    assert stages["Closed Won"] > 0
    assert stages["Closed Lost"] > 0
    assert len(stages) >= 8
    assert any(o["Amount"] is None for o in opportunities)
    assert all(o["IsWon"] == (o["StageName"] == "Closed Won") for o in opportunities)
    names = {a["Name"] for a in fresh_org.records("Account")}
    assert {"Müller GmbH", "株式会社サンプル", "O'Brien & Sons"} <= names
    accounts = fresh_org.records("Account")
    assert any(a["Industry"] is None for a in accounts)
    assert any(a["Website"] is None for a in accounts)
    history = fresh_org.count("OpportunityHistory") + fresh_org.count("OpportunityFieldHistory")
    assert history >= 3 * fresh_org.count("Opportunity")
    changes = fresh_org.records("OpportunityFieldHistory", "\"Field\" = 'StageName'")
    assert changes
    assert all(c["OldValue"] != c["NewValue"] for c in changes)
    stamps = collections.Counter(o["SystemModstamp"] for o in opportunities)
    assert max(stamps.values()) >= 3  # mass updates share one SystemModstamp
    assert fresh_org.count("User") > len(fresh_org.records("User", '"IsActive" = 1'))


def test_instances_are_isolated_and_the_seed_is_cached(sandbox_dir: Path) -> None:
    seeds = list((sandbox_dir / "seeds").glob("*.sqlite"))
    stamps = {p: p.stat().st_mtime_ns for p in seeds}
    copies = set((sandbox_dir / "instances").glob("sf-*.sqlite"))
    with (
        SalesforceSandbox(seed=1, data_dir=sandbox_dir) as one,
        SalesforceSandbox(seed=1, data_dir=sandbox_dir) as two,
    ):
        before = two.count("Opportunity")
        one.mutate(edits=0, deletes=2, creates=0)
        assert one.count("Opportunity") == before - 2
        assert two.count("Opportunity") == before
        assert len(set((sandbox_dir / "instances").glob("sf-*.sqlite")) - copies) == 2
    assert {p: p.stat().st_mtime_ns for p in seeds} == stamps  # reused, not rebuilt
    assert set((sandbox_dir / "instances").glob("sf-*.sqlite")) == copies  # copies removed


def test_mutate_shares_timestamps_and_writes_history(fresh_org: SalesforceSandbox) -> None:
    history_before = fresh_org.count("OpportunityFieldHistory")
    summary = fresh_org.mutate(edits=9, deletes=3, creates=3, shared_timestamp=True)
    assert len(summary.timestamps) == 1
    stamp = summary.timestamps[0].strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{summary.timestamps[0].microsecond // 1000:03d}Z"
    )
    touched = [
        row
        for name in ("Account", "Opportunity")
        for row in fresh_org.records(name, include_deleted=True)
        if row["Id"] in summary.all_ids
    ]
    assert len(touched) == len(summary.all_ids) >= 12
    assert {row["SystemModstamp"] for row in touched} == {stamp}
    assert all(
        row["IsDeleted"] == 1
        for row in touched
        if row["Id"] in summary.deleted.get("Opportunity", [])
    )
    if summary.stage_changes:
        new_rows = fresh_org.records(
            "OpportunityFieldHistory", f"\"Field\" = 'StageName' AND \"CreatedDate\" = '{stamp}'"
        )
        assert {r["OpportunityId"] for r in new_rows} == set(summary.stage_changes)
    assert fresh_org.count("OpportunityFieldHistory") >= history_before + len(summary.stage_changes)

    separate = fresh_org.mutate(edits=4, deletes=0, creates=0, shared_timestamp=False)
    assert len(separate.timestamps) == 4


def test_cli_runs_a_sandbox_in_the_foreground(sandbox_dir: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.salesforce",
            "--port",
            "0",
            "--seed",
            "1",
            "--data-dir",
            str(sandbox_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(12)]
        url = banner[0].split(" at ")[1].strip()
        ca = next(line for line in banner if "CA bundle" in line).split(":", 1)[1].strip()
        assert any("security token:" in line for line in banner)
        with requests.Session() as session:
            session.trust_env = False
            session.verify = ca
            versions = session.get(f"{url}/services/data/", timeout=5).json()
        assert {"59.0", "62.0"} <= {v["version"] for v in versions}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Generous: on a loaded 2-core machine the shutdown has taken over 10 s.
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            if process.stdout is not None:
                process.stdout.close()
    assert code == 0
