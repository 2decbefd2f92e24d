"""Regenerate ``bench/RESULTS.md`` from the rows the benchmarks saved.

Run: ``.venv/bin/python bench/report.py [--results var/bench-results] [--output bench/RESULTS.md]``
(``make bench`` runs it last, through ``bench/run.py``).

Reads every ``<script>.json`` that :mod:`results` wrote, plus ``run.json`` when
``bench/run.py`` ran them (the size profile, each script's wall time and exit code). Writes
one Markdown table of every row (area, measure, result, target, met ✓/✗/—), the scripts'
timings, and the machine they ran on. A script that failed or never saved is listed as such,
never silently left out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from results import RESULTS_DIR

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = RESULTS_DIR
DEFAULT_OUTPUT = ROOT / "bench" / "RESULTS.md"
POSTGRES_URL = os.environ.get(
    "STAGELINK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# The order the table reads in (the order `make bench` runs them); others follow by name.
SCRIPT_ORDER = (
    "bench_sandbox_salesforce",
    "bench_sandbox_hubspot",
    "bench_sync",
    "bench_recommend",
    "bench_writeback",
    "bench_usage_ingest",
    "bench_e2e_latency",
    "bench_surfaces",
)
MANIFEST = "run.json"


@dataclass
class ScriptResult:
    """What one script saved, and what the runner saw of it."""

    script: str
    data: dict[str, Any] | None = None  # the script's own file, None when it saved nothing
    run: dict[str, Any] = field(default_factory=dict)  # the runner's entry, if any

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.data["rows"]) if self.data else []

    @property
    def seconds(self) -> float | None:
        if "seconds" in self.run:
            return float(self.run["seconds"])
        return float(self.data["seconds"]) if self.data else None

    @property
    def status(self) -> str:
        code = self.run.get("exit_code")
        if code not in (None, 0):
            return f"**failed** (exit {code})"
        if self.data is None:
            return "**no results saved**"
        return "ok"


def load(results_dir: Path) -> tuple[list[ScriptResult], dict[str, Any]]:
    """Every script's results (in table order) and the runner's manifest (or ``{}``)."""
    manifest_path = results_dir / MANIFEST
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    )
    found: dict[str, ScriptResult] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name == MANIFEST:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        script = str(data.get("script") or path.stem)
        found[script] = ScriptResult(script, data=data)
    for entry in manifest.get("scripts", []):
        script = str(entry["script"])
        found.setdefault(script, ScriptResult(script)).run = entry
    ranked = sorted(
        found.values(),
        key=lambda r: (
            SCRIPT_ORDER.index(r.script) if r.script in SCRIPT_ORDER else len(SCRIPT_ORDER),
            r.script,
        ),
    )
    return ranked, manifest


# -- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def postgres_version() -> str:
    """The server's version, asked over the wire (the benchmarks themselves run on SQLite)."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except Exception as exc:  # any failure only means the line says "not reachable"
        return f"not reachable ({type(exc).__name__})"
    return str(row[0]) if row else "unknown"


def machine() -> list[tuple[str, str]]:
    return [
        ("CPU", f"{cpu_model()}, {os.cpu_count()} cores"),
        ("memory", memory_gib()),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("SQLite (the benchmarks' database)", sqlite3.sqlite_version),
        ("PostgreSQL server", postgres_version()),
    ]


# -- rendering ------------------------------------------------------------------------------


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("✓" if met else "✗")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def options(result: ScriptResult) -> str:
    if result.run.get("args") is not None:
        args = [str(a) for a in result.run["args"]]
    elif result.data:
        args = [str(a) for a in result.data.get("argv", [])]
    else:
        args = []
    return " ".join(args) if args else "defaults"


def commits(scripts: list[ScriptResult]) -> str:
    seen = sorted({str(r.data.get("git_commit")) for r in scripts if r.data})
    if not seen:
        return "unknown"
    if len(seen) > 1:
        return "several: " + ", ".join(f"`{c}`" for c in seen)
    return f"`{seen[0]}`"


def render(scripts: list[ScriptResult], manifest: dict[str, Any], generated: datetime) -> str:
    rows = [row for result in scripts for row in result.rows]
    judged = [row for row in rows if row.get("met") is not None]
    missed = [row for row in judged if not row["met"]]
    finished = [r.data["finished_at"] for r in scripts if r.data]
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/report.py` from `var/bench-results/*.json`; do not edit by hand.",
        "Regenerate with `make bench` (runs every benchmark, then this report).",
        "",
    ]
    profile = manifest.get("profile")
    if profile:
        lines.append(
            f"Size profile **{profile}**"
            + (f": {manifest['profile_note']}" if manifest.get("profile_note") else "")
            + (
                f" Whole run: {duration(float(manifest['seconds']))}."
                if manifest.get("seconds") is not None
                else ""
            )
        )
        lines.append("")
    lines += [
        f"**{len(judged) - len(missed)} of {len(judged)} targets met.**"
        + (
            " Missed: " + "; ".join(f"{m['area']}: {m['measure']}" for m in missed) + "."
            if missed
            else ""
        ),
        "",
        "| area | measure | result | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                cell(v)
                for v in (
                    row.get("area") or "",
                    row["measure"],
                    row["result"],
                    row.get("target") or "",
                    verdict(row.get("met")),
                )
            )
            + " |"
        )
    lines += [
        "",
        "## Scripts",
        "",
        "| script | options | took | rows | load average at the end (1/5/15 min) | status |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in scripts:
        load = result.data.get("load_average") if result.data else None
        lines.append(
            f"| `{result.script}` | {cell(options(result))} | {duration(result.seconds)} "
            f"| {len(result.rows)} | {' / '.join(str(x) for x in load) if load else '—'} "
            f"| {result.status} |"
        )
    lines += [
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {name} | {cell(value)} |" for name, value in machine()),
        (
            f"| measured | {min(finished)[:16].replace('T', ' ')} – "
            f"{max(finished)[:16].replace('T', ' ')} UTC |"
            if finished
            else "| measured | — |"
        ),
        f"| report generated | {generated:%Y-%m-%d %H:%M} UTC |",
        f"| git commit | {commits(scripts)} |",
        "",
        "Each CRM benchmark runs the sandbox emulators in the benchmark's own process and the",
        "measured stagelink job in a child process, on this one machine, so the numbers include",
        "both sides' CPU. A commit ending in `+dirty` had uncommitted changes.",
        "",
    ]
    return "\n".join(lines)


def write_report(results_dir: Path = DEFAULT_RESULTS, output: Path = DEFAULT_OUTPUT) -> Path:
    """Render ``results_dir`` into ``output``; a clear error when there is nothing to render."""
    scripts, manifest = load(results_dir) if results_dir.is_dir() else ([], {})
    if not scripts:
        raise SystemExit(f"{results_dir}: no benchmark results yet (run `make bench`)")
    output.write_text(render(scripts, manifest, datetime.now(UTC)), encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    write_report(args.results, args.output)


if __name__ == "__main__":
    main()
