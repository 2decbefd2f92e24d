"""``stagelink sync [CONNECTION] [--full]``: bring the local copy up to date with the CRM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from connectors.core.connector import ReadMode
from connectors.core.errors import ConfigurationError
from stagelink.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
    print_json,
)
from stagelink.storage import JobStatus, StorageError
from stagelink.sync import JobAlreadyRunning, JobOutcome, SyncOptions, open_storage, run_job

#: Exit code of a job that stopped early on purpose (budget spent, Ctrl-C): run it again.
EXIT_PAUSED = 3
_COLUMNS = ("read", "inserted", "updated", "unchanged", "deleted", "quarantined", "history")


def sync(
    connection: Annotated[
        str | None, typer.Argument(help="Connection name (default: every connection).")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Read everything again and mark records the CRM no longer has deleted."
        ),
    ] = False,
    stream: Annotated[
        list[str] | None,
        typer.Option("--stream", "-s", help="Only these streams (e.g. opportunities)."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sync owners, stages, accounts, opportunities and stage history from each CRM.

    Incremental by default (from the saved cursor, re-reading the configured lookback).
    Exit code 0 when every job succeeded, 1 when one failed, 3 when one paused (API budget
    or Ctrl-C; the next run resumes)."""
    settings = load(config)
    names = [connection] if connection else [c.name for c in settings.connections]
    if connection is not None:
        try:
            settings.connection(connection)
        except KeyError as exc:
            fail(str(exc.args[0]))
    if not names:
        fail("no connections are configured")
    options = SyncOptions(
        mode=ReadMode.FULL if full else ReadMode.INCREMENTAL,
        streams=stream or None,
        trigger="cli",
    )
    outcomes: dict[str, JobOutcome] = {}
    with interruptible() as stop:
        try:
            with open_storage(settings) as storage:
                for name in names:
                    if not as_json:
                        console.print(f"syncing [bold]{name}[/] ({options.mode.value})")
                    outcomes[name] = run_job(settings, storage, name, options, stop=stop)
                    if stop.is_set():
                        break
        except (JobAlreadyRunning, ConfigurationError, StorageError) as exc:
            fail(str(exc))
    report(outcomes, as_json=as_json)
    raise typer.Exit(exit_code(outcomes.values()))


def report(outcomes: dict[str, JobOutcome], *, as_json: bool) -> None:
    """Print each job's outcome (a table, or JSON)."""
    if as_json:
        print_json(
            {
                name: {
                    "job_id": o.job_id,
                    "status": o.status.value,
                    "counts": o.counts,
                    "streams": o.streams,
                    "error": o.error,
                    "seconds": round(o.seconds, 3),
                }
                for name, o in outcomes.items()
            }
        )
        return
    table = Table(title="sync", title_justify="left")
    for column in ("connection", "stream", *_COLUMNS, "requests"):
        table.add_column(column, justify="left" if column in ("connection", "stream") else "right")
    for name, outcome in outcomes.items():
        for stream, counts in outcome.streams.items():
            table.add_row(name, stream, *(f"{counts.get(c, 0):,}" for c in (*_COLUMNS, "requests")))
    console.print(table)
    for name, outcome in outcomes.items():
        colours = {JobStatus.SUCCEEDED: "green", JobStatus.FAILED: "red"}
        colour = colours.get(outcome.status, "yellow")
        line = (
            f"[bold]{name}[/]: job {outcome.job_id} [{colour}]{outcome.status.value}[/] "
            f"in {outcome.seconds:.1f} s"
        )
        console.print(line)
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


__all__ = ["EXIT_CONFIG", "EXIT_PAUSED", "exit_code", "interruptible", "report", "sync"]
