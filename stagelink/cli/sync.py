"""``stagelink sync [CONNECTION] [--full]``: bring the local copy up to date with the CRM."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from connectors.core.connector import ReadMode
from connectors.core.errors import ConfigurationError
from stagelink.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
)
from stagelink.cli.outcomes import exit_code, interruptible, print_outcomes_json, print_status
from stagelink.storage import StorageError
from stagelink.sync import JobAlreadyRunning, JobOutcome, SyncOptions, open_storage, run_job

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


def report(outcomes: dict[str, JobOutcome], *, as_json: bool, title: str = "sync") -> None:
    """Print each job's outcome: counts per stream (a table), or JSON."""
    if as_json:
        print_outcomes_json(outcomes, streams=True)
        return
    table = Table(title=title, title_justify="left")
    for column in ("connection", "stream", *_COLUMNS, "requests"):
        table.add_column(column, justify="left" if column in ("connection", "stream") else "right")
    for name, outcome in outcomes.items():
        for stream, counts in outcome.streams.items():
            table.add_row(name, stream, *(f"{counts.get(c, 0):,}" for c in (*_COLUMNS, "requests")))
    console.print(table)
    for name, outcome in outcomes.items():
        print_status(name, outcome)


__all__ = ["report", "sync"]
