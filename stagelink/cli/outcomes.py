"""How the job commands (sync, backfill, writeback) stop, report and exit, in one place."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from stagelink.cli.common import EXIT_FAILED, console, print_json
from stagelink.storage import JobStatus
from stagelink.sync import JobOutcome

__all__ = ["EXIT_PAUSED", "exit_code", "interruptible", "print_outcomes_json", "print_status"]

#: Exit code of a job that stopped early on purpose (budget spent, Ctrl-C): run it again.
EXIT_PAUSED = 3
_COLOURS = {JobStatus.SUCCEEDED: "green", JobStatus.FAILED: "red"}


def print_outcomes_json(outcomes: dict[str, JobOutcome], *, streams: bool = False) -> None:
    """Each job's id, status, counts, error and duration as JSON (per connection)."""
    result: dict[str, Any] = {}
    for name, outcome in outcomes.items():
        entry: dict[str, Any] = {
            "job_id": outcome.job_id,
            "status": outcome.status.value,
            "counts": outcome.counts,
            "error": outcome.error,
            "seconds": round(outcome.seconds, 3),
        }
        if streams:
            entry["streams"] = outcome.streams
        result[name] = entry
    print_json(result)


def print_status(name: str, outcome: JobOutcome, *, extra: str | None = None) -> None:
    """One line per job (id, status, duration), then ``extra`` and the error, if any."""
    colour = _COLOURS.get(outcome.status, "yellow")
    console.print(
        f"[bold]{name}[/]: job {outcome.job_id} [{colour}]{outcome.status.value}[/] "
        f"in {outcome.seconds:.1f} s"
    )
    if extra:
        console.print(f"  {extra}", highlight=False)
    if outcome.error:
        console.print(f"  {outcome.error}", soft_wrap=True, highlight=False, markup=False)


def exit_code(outcomes: Iterable[JobOutcome]) -> int:
    """0 all succeeded; 1 any failed; 3 any paused or interrupted."""
    statuses = {o.status for o in outcomes}
    if JobStatus.FAILED in statuses:
        return EXIT_FAILED
    if statuses & {JobStatus.PAUSED_BUDGET, JobStatus.INTERRUPTED}:
        return EXIT_PAUSED
    return 0


@contextmanager
def interruptible() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C or SIGTERM: the job stops after its current batch
    (committed, position saved). A second Ctrl-C stops at once."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print("[yellow]stopping after the current batch (Ctrl-C again to abort)[/]")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
