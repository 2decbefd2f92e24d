"""The benchmark results pipeline: rows saved by a script end up in ``bench/RESULTS.md``.

The end-to-end test runs the real runner on the real recommendation benchmark (at a tiny
size) in a subprocess, with the results folder and report redirected to a temporary folder.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, ModuleType]]:
    """``results`` and ``report`` imported the way the scripts import them (``bench/`` on
    the path), with no rows left over from another test."""
    monkeypatch.syspath_prepend(str(BENCH))
    results = importlib.import_module("results")
    report = importlib.import_module("report")
    results.clear()
    yield results, report
    results.clear()
    # Generic names: do not leave them importable by name for other tests.
    for name in ("results", "report"):
        sys.modules.pop(name, None)


def test_saved_rows_keep_value_unit_target_and_verdict(
    bench_modules: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    results, _ = bench_modules
    results.record("sync rate", 9593.24, "records/s", note="12.3 s", area="sync")
    results.record("ratio", 0.27, "×", target="≥ 0.5", met=False, area="sync")
    path = results.save("bench_x", params={"size": 100, "where": tmp_path}, directory=tmp_path)

    data = json.loads(path.read_text(encoding="utf-8"))
    assert path == tmp_path / "bench_x.json"
    assert data["script"] == "bench_x"
    assert data["params"] == {"size": 100, "where": str(tmp_path)}
    assert data["seconds"] > 0
    first, second = data["rows"]
    assert first["value"] == 9593.24
    assert first["result"] == "9,593 records/s (12.3 s)"
    assert (first["target"], first["met"]) == (None, None)
    assert (second["result"], second["target"], second["met"]) == ("0.27×", "≥ 0.5", False)


def test_a_verdict_without_its_target_is_refused(
    bench_modules: tuple[ModuleType, ModuleType],
) -> None:
    results, _ = bench_modules
    with pytest.raises(ValueError, match="needs the target"):
        results.record("p99", 2.6, "ms", met=True)


def test_report_marks_met_missed_and_untargeted_rows_and_a_failed_script(
    bench_modules: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    results, report = bench_modules
    results.record("p99", 2.63, "ms", target="< 5 ms", met=True, area="recommend")
    results.record("ratio", 0.27, "×", target="≥ 0.5", met=False, area="sync")
    results.record("rate | peak", 626.0, "deals/s", area="recommend")
    results.save("bench_recommend", directory=tmp_path)
    manifest = {
        "profile": "quick",
        "profile_note": "small sizes.",
        "seconds": 95.0,
        "scripts": [
            {
                "script": "bench_recommend",
                "args": ["--deals", "10"],
                "seconds": 4.2,
                "exit_code": 0,
            },
            {"script": "bench_sync", "args": [], "seconds": 61.0, "exit_code": 1},
        ],
    }
    (tmp_path / "run.json").write_text(json.dumps(manifest), encoding="utf-8")

    scripts, loaded = report.load(tmp_path)
    text = report.render(scripts, loaded, datetime(2026, 11, 26, tzinfo=UTC))

    assert "| recommend | p99 | 2.63 ms | < 5 ms | ✓ |" in text
    assert "| sync | ratio | 0.27× | ≥ 0.5 | ✗ |" in text
    assert "| recommend | rate \\| peak | 626 deals/s |  | — |" in text  # pipe escaped
    assert "**1 of 2 targets met.** Missed: sync: ratio." in text
    assert "| `bench_sync` | defaults | 1 min 01 s | 0 | — | **failed** (exit 1) |" in text
    assert "| `bench_recommend` | --deals 10 | 4.2 s | 3 | " in text
    assert "Whole run: 1 min 35 s." in text
    assert "| CPU |" in text
    assert "| SQLite (the benchmarks' database) |" in text


def test_report_without_results_says_to_run_the_benchmarks(
    bench_modules: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    _, report = bench_modules
    with pytest.raises(SystemExit, match="run `make bench`"):
        report.write_report(tmp_path / "nothing", tmp_path / "RESULTS.md")


def test_runner_runs_a_real_benchmark_and_writes_the_report(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / "bench_stale.json").write_text("{}", encoding="utf-8")  # a previous run
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--profile",
            "quick",
            "--only",
            "bench_recommend",
            "--output",
            str(output),
        ],
        env={**os.environ, "STAGELINK_BENCH_RESULTS": str(results_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| measure | value | target |" in done.stdout  # the script's own table still prints
    assert not (results_dir / "bench_stale.json").exists()
    saved = json.loads((results_dir / "bench_recommend.json").read_text(encoding="utf-8"))
    p99 = next(r for r in saved["rows"] if r["measure"].startswith("one recommendation, p99"))
    assert p99["unit"] == "ms"
    assert p99["target"] == "< 5 ms"
    text = output.read_text(encoding="utf-8")
    assert "Size profile **quick**" in text
    assert "| `bench_recommend` | --items 2000 --rules 200 --deals 2000 |" in text
    assert "one recommendation, p99" in text


def test_runner_refuses_an_unknown_script_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--only", "bench_nope"],
        env={**os.environ, "STAGELINK_BENCH_RESULTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "--only: unknown script(s) bench_nope" in done.stderr
