"""Run every benchmark at one size profile, then regenerate ``bench/RESULTS.md``.

Run: ``.venv/bin/python bench/run.py [--profile quick|standard|full] [--only a,b] [--skip c]``
(``make bench`` runs ``standard``; ``make bench BENCH_PROFILE=quick`` or ``=full`` another).

Profiles:

* ``standard`` (the default): every script at the sizes its issue names (1M-opportunity
  seed and backfill, 100k-record syncs, 10,000-event writebacks, 50 clients on the
  surfaces), except the recommendation latency, measured over 20,000 of the 100,000 deals
  (p99 still rests on 200 samples; the time for all 100k is extrapolated from deals/s).
  Estimated at 12 minutes on this 2-core machine, seeds included (they are cached in
  ``var/bench-cache`` for the next run);
* ``full``: ``standard`` plus all 100,000 deals through the recommender, about two and a
  half minutes more: over the 15-minute budget when the machine is busy;
* ``quick``: small sizes to check the machinery in about two minutes; its numbers are not
  the issues' and several targets are not judged at that size.

Each script runs in its own process with its output passed through; a failing script is
reported and the others still run. The previous results are cleared first, so the report
shows this run only. ``var/bench-results/run.json`` keeps each script's wall time, options
and exit code for the report. Exit code: 0 when every script succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import DEFAULT_OUTPUT, MANIFEST, write_report
from results import RESULTS_DIR

BENCH = Path(__file__).resolve().parent
Plan = list[tuple[str, list[str]]]

PROFILES: dict[str, tuple[str, Plan]] = {
    "full": (
        "every script at its issue's sizes.",
        [
            ("bench_sandbox_salesforce", []),
            ("bench_sandbox_hubspot", []),
            ("bench_sync", []),
            ("bench_recommend", []),
            ("bench_writeback", []),
            ("bench_usage_ingest", []),
            ("bench_e2e_latency", []),
            ("bench_surfaces", []),
        ],
    ),
    "standard": (
        "the issues' sizes, except the recommendation latency, measured over 20,000 of the "
        "100,000 deals (the time for all of them is extrapolated).",
        [
            ("bench_sandbox_salesforce", []),
            ("bench_sandbox_hubspot", []),
            ("bench_sync", []),
            ("bench_recommend", ["--deals", "20000"]),
            ("bench_writeback", []),
            ("bench_usage_ingest", []),
            ("bench_e2e_latency", []),
            ("bench_surfaces", []),
        ],
    ),
    "quick": (
        "small sizes to check the machinery; not the issues' sizes, so these numbers are not "
        "the project's.",
        [
            ("bench_sandbox_salesforce", ["--opportunities", "20000", "--list", "10000"]),
            ("bench_sandbox_hubspot", ["--deals", "10000"]),
            (
                "bench_sync",
                [
                    "--opportunities",
                    "5000",
                    "--backfill",
                    "20000",
                    "--naive-salesforce",
                    "500",
                    "--naive-hubspot",
                    "191",
                ],
            ),
            ("bench_recommend", ["--items", "2000", "--rules", "200", "--deals", "2000"]),
            ("bench_writeback", ["--events", "1000", "--naive", "100"]),
            ("bench_usage_ingest", ["--events", "1000"]),
            ("bench_e2e_latency", ["--seconds", "4", "--rates", "2,20"]),
            ("bench_surfaces", ["--seconds", "3"]),
        ],
    ),
}


def save_manifest(manifest: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def clear_previous() -> None:
    """Forget the last run's files so a script that fails now cannot show stale numbers."""
    if RESULTS_DIR.is_dir():
        for path in RESULTS_DIR.glob("*.json"):
            path.unlink()


def names(text: str, known: set[str], option: str) -> set[str]:
    """Script names from a comma-separated option; an unknown name is an error."""
    wanted = {n.strip().removesuffix(".py") for n in text.split(",") if n.strip()}
    if wanted - known:
        raise SystemExit(
            f"{option}: unknown script(s) {', '.join(sorted(wanted - known))}; "
            f"known: {', '.join(sorted(known))}"
        )
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="standard")
    parser.add_argument("--only", default="", help="comma-separated script names to run")
    parser.add_argument("--skip", default="", help="comma-separated script names to leave out")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    note, plan = PROFILES[args.profile]
    known = {script for script, _ in plan}
    only, skip = names(args.only, known, "--only"), names(args.skip, known, "--skip")
    plan = [(s, o) for s, o in plan if (not only or s in only) and s not in skip]

    clear_previous()
    started = time.perf_counter()
    manifest: dict[str, Any] = {
        "profile": args.profile,
        "profile_note": note,
        "started_at": datetime.now(UTC).isoformat(),
        "seconds": None,
        "scripts": [],
    }
    failed: list[str] = []
    for script, options in plan:
        command = [sys.executable, str(BENCH / f"{script}.py"), *options]
        print(f"\n## {script} {' '.join(options)}\n", flush=True)
        began = time.perf_counter()
        code = subprocess.run(command, check=False).returncode
        seconds = time.perf_counter() - began
        print(f"\n({script}: {seconds:.0f} s, exit {code})", file=sys.stderr, flush=True)
        if code != 0:
            failed.append(script)
        manifest["scripts"].append(
            {"script": script, "args": options, "seconds": round(seconds, 2), "exit_code": code}
        )
        save_manifest(manifest)  # after each script, so an interrupted run still reports
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    save_manifest(manifest)
    write_report(RESULTS_DIR, args.output)
    print(f"\nwhole run: {manifest['seconds'] / 60:.1f} min", file=sys.stderr)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
