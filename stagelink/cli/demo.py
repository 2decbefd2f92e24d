"""``stagelink demo``: the whole loop on the embedded default (SQLite + sandbox CRMs)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stagelink.cli.check import print_reports
from stagelink.cli.common import EXIT_FAILED, console, fail, wait_until_interrupted
from stagelink.cli.sync import report
from stagelink.probing import probe_connections
from stagelink.settings import ConfigError, load_config
from stagelink.storage import StorageError, current_revision, make_engine, upgrade
from stagelink.sync import SyncOptions, open_storage, run_job


def demo(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps its database, config and sandbox data.")
    ] = Path("var/demo"),
    seed: Annotated[int, typer.Option(help="Seed of the sandbox data.")] = 1,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the sandboxes running after the demo.")
    ] = False,
) -> None:
    """Start the sandbox CRMs, configure stagelink for them, migrate the database, prove
    each connection, sync both CRMs through the real client libraries and show what was
    stored."""
    # Imported here: the emulators and CRM client libraries cost every other command ~0.4 s.
    from stagelink.demo.sandboxes import running_sandboxes, sandbox_config_yaml
    from stagelink.demo.stored import largest_open_opportunities
    from stagelink.recommendations import Recommender

    started = time.monotonic()
    shutil.rmtree(workdir / "db", ignore_errors=True)  # a fresh database every run
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(workdir / 'db' / 'stagelink.db').resolve()}"
    with running_sandboxes(seed=seed, size="small", data_dir=workdir / "sandbox") as running:
        console.rule("[bold]1. sandbox CRMs")
        if running.salesforce is not None:
            console.print(
                f"Salesforce emulator {running.salesforce.url} (CA {running.salesforce.ca_bundle})"
            )
        if running.hubspot is not None:
            console.print(f"HubSpot emulator    {running.hubspot.url}")

        console.rule("[bold]2. configuration")
        config_path = workdir / "stagelink.yaml"
        config_path.write_text(
            sandbox_config_yaml(running, database_url=database_url), encoding="utf-8"
        )
        try:
            config = load_config(config_path)
        except ConfigError as exc:  # a bug in the generator, but say it plainly
            fail(exc.render())
        console.print(
            f"{config_path}: valid — {len(config.connections)} connections, "
            f"{sum(len(c.stage_map) for c in config.connections)} stage mappings"
        )

        console.rule("[bold]3. database")
        try:
            upgrade(config.database_url)
            engine = make_engine(config.database_url)
            revision = current_revision(engine)
            engine.dispose()
        except StorageError as exc:
            fail(str(exc))
        console.print(f"{database_url}: migrated to revision {revision}")

        console.rule("[bold]4. connections (login, permissions, API budget)")
        reports = probe_connections(config.connections)
        print_reports(reports)
        if not all(report.ok for report in reports):
            fail("a sandbox connection failed its check", EXIT_FAILED)

        console.rule("[bold]5. sync (owners, stages, accounts, opportunities, stage history)")
        with open_storage(config) as storage:
            outcomes = {
                connection.name: run_job(config, storage, connection.name, SyncOptions())
                for connection in config.connections
            }
            report(outcomes, as_json=False)
            if not all(outcome.ok for outcome in outcomes.values()):
                fail("a sandbox sync did not finish", EXIT_FAILED)

            console.rule("[bold]6. what stagelink stored")
            table = Table(title="largest open opportunities", title_justify="left")
            for column in ("connection", "opportunity", "stage", "amount", "account"):
                table.add_column(column)
            with storage.sessions() as session:
                for row in largest_open_opportunities(session):
                    table.add_row(
                        row["connection"], row["name"], row["stage"], row["amount"], row["account"]
                    )
            console.print(table)

            console.rule("[bold]7. recommendations (why each item fits)")
            recommender = Recommender.open(config, storage.engine)
            with storage.sessions() as session:
                picks = largest_open_opportunities(session, limit=1)
            for pick in picks:
                console.print(
                    f"[bold]{pick['connection']}[/] {pick['name']} — {pick['stage']}",
                    highlight=False,
                )
                items = recommender.recommend(pick["connection"], pick["crm_id"], limit=3)
                for rank, item in enumerate(items, 1):
                    console.print(
                        f"  {rank}. {item.content.title} ({item.content.type}): {item.explanation}",
                        highlight=False,
                        markup=False,
                    )
                if not items:
                    console.print("  (no content for this stage)")
        console.print(
            f"[green]demo finished in {time.monotonic() - started:.1f}s[/] — "
            "usage capture and writeback join this loop as their issues land."
        )
        if serve:
            console.print(f"sandboxes keep running; config: {config_path}. Ctrl-C to stop.")
            wait_until_interrupted()
