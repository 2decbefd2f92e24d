"""``stagelink writeback [CONNECTION] [--retry-dead]``: write accepted usage to the CRMs now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from connectors.core.errors import ConfigurationError
from stagelink.cli.common import ConfigOption, JsonOption, console, fail, load
from stagelink.cli.outcomes import exit_code, interruptible, print_outcomes_json, print_status
from stagelink.storage import StorageError
from stagelink.sync import JobAlreadyRunning, JobOutcome, open_storage
from stagelink.writeback import WritebackOptions, run_writeback

__all__ = ["writeback"]

_COLUMNS = ("claimed", "written", "reconciled", "retried", "dead", "pending_left", "requests")


def writeback(
    connection: Annotated[
        str | None,
        typer.Argument(help="Connection name (default: every connection with writeback on)."),
    ] = None,
    retry_dead: Annotated[
        bool,
        typer.Option(
            "--retry-dead", help="Put dead-lettered events back in the queue and try them again."
        ),
    ] = False,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Write at most this many events.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write accepted usage events to the CRM timelines now (one pass per connection).

    Each event becomes exactly one activity: batches that a crash or a lost answer left
    unconfirmed are looked up in the CRM before anything is sent again. Events the CRM keeps
    refusing are dead-lettered with its error (see `stagelink jobs show ID`).
    Exit code 0 when every pass succeeded, 1 when one failed, 3 when one paused (API budget
    or Ctrl-C; run it again)."""
    settings = load(config)
    if connection is not None:
        try:
            settings.connection(connection)
        except KeyError as exc:
            fail(str(exc.args[0]))
        names = [connection]
    else:
        names = [c.name for c in settings.connections if c.writeback.enabled]
    if not names:
        fail("no connection has writeback enabled")
    options = WritebackOptions(trigger="cli")
    outcomes: dict[str, JobOutcome] = {}
    with interruptible() as stop:
        try:
            with open_storage(settings) as storage:
                for name in names:
                    outcomes[name] = run_writeback(
                        settings,
                        storage,
                        name,
                        retry_dead=retry_dead,
                        stop=stop,
                        max_events=max_events,
                        options=options,
                    )
                    if stop.is_set():
                        break
        except (JobAlreadyRunning, ConfigurationError, StorageError) as exc:
            fail(str(exc))
    report(outcomes, as_json=as_json)
    raise typer.Exit(exit_code(outcomes.values()))


def report(outcomes: dict[str, JobOutcome], *, as_json: bool) -> None:
    """Each pass's counts (a table, or JSON)."""
    if as_json:
        print_outcomes_json(outcomes)
        return
    table = Table(title="writeback", title_justify="left")
    table.add_column("connection")
    for column in _COLUMNS:
        table.add_column(column.replace("_left", " left"), justify="right")
    for name, outcome in outcomes.items():
        table.add_row(name, *(f"{outcome.counts.get(c, 0):,}" for c in _COLUMNS))
    console.print(table)
    for name, outcome in outcomes.items():
        dead = outcome.counts.get("dead_total", 0)
        extra = (
            f"{dead:,} dead-lettered event(s): `stagelink jobs show {outcome.job_id}` "
            "lists errors, `stagelink writeback --retry-dead` retries them"
            if dead
            else None
        )
        print_status(name, outcome, extra=extra)
