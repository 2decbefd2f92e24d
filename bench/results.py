"""Machine-readable benchmark rows, shared by every script in ``bench/``.

A script keeps printing its own Markdown table and, next to it, records the rows that carry
its numbers::

    import results

    results.record("Salesforce sync rate", 9593.2, "records/s", area="sync")
    results.record("sync ÷ bare paging", 0.27, "×", target="≥ 0.5", met=False, area="sync")
    results.save("bench_sync", params=vars(args))

``save`` writes ``var/bench-results/<script>.json`` (see :func:`save` for the shape);
``bench/report.py`` turns every such file into ``bench/RESULTS.md``. The module is imported
as ``results`` because Python puts the script's own folder (``bench/``) on ``sys.path``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("STAGELINK_BENCH_RESULTS", ROOT / "var" / "bench-results"))
FORMAT_VERSION = 1

Number = int | float
_IMPORTED_AT = time.perf_counter()


@dataclass(frozen=True)
class Row:
    """One measured figure: what, how much, and how it compares with its target."""

    area: str
    measure: str
    value: Number | str | None
    unit: str
    result: str  # the value as the table shows it, with its unit and note
    target: str | None
    met: bool | None
    note: str | None


_rows: list[Row] = []


def format_value(value: Number | str | None, unit: str = "") -> str:
    """``9593.2, "records/s"`` → ``"9,593 records/s"``; precision follows the magnitude."""
    if value is None:
        return "—"
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif math.isnan(value) or math.isinf(value):
        text = str(value)
    elif value == 0:
        text = "0"
    else:
        magnitude = abs(value)
        # Two significant digits below 0.1 (0.00059, not 0.001); fewer decimals as it grows.
        small = 1 - math.floor(math.log10(magnitude)) if magnitude < 0.1 else 2
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else small
        text = f"{value:,.{digits}f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "×") else f"{text} {unit}"


def record(
    measure: str,
    value: Number | str | None,
    unit: str = "",
    *,
    target: str | None = None,
    met: bool | None = None,
    note: str | None = None,
    area: str = "",
) -> Row:
    """Add one row. ``target`` is the issue's wording (``"≥ 0.5"``); ``met`` is left ``None``
    for rows that have no target. ``note`` is shown after the value, in parentheses."""
    if met is not None and target is None:
        raise ValueError(f"{measure!r}: a verdict (met={met}) needs the target it was judged by")
    result = format_value(value, unit)
    if note:
        result = f"{result} ({note})"
    row = Row(area, measure, _plain(value), unit, result, target, met, note)
    _rows.append(row)
    return row


def rows() -> list[Row]:
    """The rows recorded so far, in order."""
    return list(_rows)


def clear() -> None:
    """Forget the rows recorded so far."""
    _rows.clear()


def save(
    script: str, params: dict[str, Any] | None = None, *, directory: Path | None = None
) -> Path:
    """Write ``<directory>/<script>.json`` (default ``var/bench-results``, or the
    ``STAGELINK_BENCH_RESULTS`` environment variable) and return its path.

    The file holds: ``format``, ``script``, ``argv``, ``params`` (the script's options),
    ``started_at``/``finished_at`` (UTC, ISO 8601), ``seconds`` (the process's wall time so
    far), ``load_average`` (1, 5 and 15 minutes, at the end: how busy the machine was),
    ``git_commit`` and ``rows`` (each a :class:`Row` as a dict).
    """
    seconds = _process_seconds()
    finished = datetime.now(UTC)
    payload = {
        "format": FORMAT_VERSION,
        "script": script,
        "argv": sys.argv[1:],
        "params": {k: _plain(v) for k, v in (params or {}).items()},
        "started_at": datetime.fromtimestamp(finished.timestamp() - seconds, UTC).isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 2),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "git_commit": git_commit(),
        "rows": [asdict(row) for row in _rows],
    }
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{script}.json"
    # Written whole then renamed, so a report never reads half a file.
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    scratch.replace(path)
    print(f"results: {len(_rows)} rows → {path}", file=sys.stderr)
    return path


def git_commit() -> str | None:
    """The checked-out commit, with ``+dirty`` when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def _process_seconds() -> float:
    """Wall time since this process started (Linux ``/proc``), else since this import."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(stat[19])  # field 22 of stat(5); fields after the name start at 3
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


def _plain(value: Any) -> Any:
    """JSON-friendly: paths and other objects become strings; NaN becomes None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
