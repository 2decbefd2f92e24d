"""``stagelink backfill CONNECTION``: load a window of history, resumable, with progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from connectors.core.connector import ReadMode, ReadRequest
from connectors.core.errors import ConfigurationError, StagelinkError
from stagelink.cli.common import ConfigOption, JsonOption, console, fail, load, print_json
from stagelink.cli.outcomes import exit_code, interruptible
from stagelink.cli.sync import report
from stagelink.storage import JobKind, StorageError
from stagelink.sync import JobAlreadyRunning, SyncOptions, open_connector, open_storage, run_job
from stagelink.sync import Progress as BatchProgress


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        fail(f"{option}: expected a date such as 2024-01-31, got {value!r}")


def backfill(
    connection: Annotated[str, typer.Argument(help="Connection name.")],
    since: Annotated[
        str | None, typer.Option(help="Records created on or after this day (UTC), YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Records created before this day (UTC), YYYY-MM-DD.")
    ] = None,
    objects: Annotated[
        list[str] | None,
        typer.Option("--objects", "-o", help="Streams to load (default: all record streams)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be read; write nothing.")
    ] = False,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Ignore a saved checkpoint and start the window again."),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load history from the CRM (Salesforce Bulk API 2.0 for large volumes).

    A killed or interrupted backfill resumes from its checkpoint when run again with the
    same window (use --restart to start over). Exit 0 done, 1 failed, 3 paused."""
    settings = load(config)
    try:
        settings.connection(connection)
    except KeyError as exc:
        fail(str(exc.args[0]))
    start, end = _day(since, "--since"), _day(until, "--until")
    if start and end and start >= end:
        fail("--since must be before --until")
    options = SyncOptions(
        kind=JobKind.BACKFILL,
        mode=ReadMode.BACKFILL,
        streams=objects or None,
        since=start,
        until=end,
        restart=restart,
        trigger="cli",
    )
    if dry_run:
        _dry_run(settings.connection(connection), options, as_json=as_json)
        return
    with interruptible() as stop, _progress(disabled=as_json) as bar:
        tasks: dict[str, TaskID] = {}

        def on_batch(event: BatchProgress) -> None:
            if event.stream not in tasks:
                tasks[event.stream] = bar.add_task(event.stream, total=None)
            total = event.read + event.remaining if event.remaining is not None else None
            bar.update(tasks[event.stream], completed=event.read, total=total)

        try:
            with open_storage(settings) as storage:
                outcome = run_job(
                    settings, storage, connection, options, progress=on_batch, stop=stop
                )
        except (JobAlreadyRunning, ConfigurationError, StorageError) as exc:
            fail(str(exc))
    report({connection: outcome}, as_json=as_json, title="backfill")
    raise typer.Exit(exit_code([outcome]))


def _progress(*, disabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        disable=disabled,
        transient=False,
    )


def _dry_run(connection: object, options: SyncOptions, *, as_json: bool) -> None:
    from connectors.core.config import ConnectionConfig

    assert isinstance(connection, ConnectionConfig)
    try:
        with open_connector(connection) as connector:
            streams = [
                s
                for s in connector.streams()
                if (options.streams is None and s.backfill) or s.name in (options.streams or ())
            ]
            estimates = {
                s.name: connector.estimate(
                    ReadRequest(s.name, ReadMode.BACKFILL, since=options.since, until=options.until)
                )
                for s in streams
            }
    except StagelinkError as exc:
        fail(str(exc))
    if as_json:
        print_json({"dry_run": True, "estimates": estimates})
        return
    table = Table(title=f"backfill of {connection.name} (dry run: nothing written)")
    table.add_column("stream")
    table.add_column("records", justify="right")
    for name, estimate in estimates.items():
        table.add_row(name, "unknown" if estimate is None else f"{estimate:,}")
    console.print(table)
