"""``stagelink demo``: the whole loop on the embedded default (SQLite + sandbox CRMs)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stagelink.cli.common import console, fail
from stagelink.demo.probes import ProbeResult, probe_hubspot, probe_salesforce
from stagelink.demo.sandboxes import running_sandboxes, sandbox_config_yaml
from stagelink.settings import ConfigError, load_config
from stagelink.storage import StorageError, current_revision, make_engine, upgrade


def demo(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps its database and config.")
    ] = Path("var/demo"),
    seed: Annotated[int, typer.Option(help="Seed of the sandbox data.")] = 1,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the sandboxes running after the demo.")
    ] = False,
) -> None:
    """Start the sandbox CRMs, configure stagelink for them, migrate the database and show
    what each CRM holds, read through the real client libraries."""
    started = time.monotonic()
    if workdir.exists():
        shutil.rmtree(workdir / "db", ignore_errors=True)
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(workdir / 'db' / 'stagelink.db').resolve()}"
    with running_sandboxes(seed=seed, size="small", data_dir=workdir / "sandbox") as running:
        assert running.salesforce is not None
        assert running.hubspot is not None
        console.rule("[bold]1. sandbox CRMs")
        console.print(
            f"Salesforce emulator {running.salesforce.url} (CA {running.salesforce.ca_bundle})"
        )
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

        console.rule("[bold]4. what each CRM holds (real client libraries)")
        results = [probe_salesforce(running.salesforce), probe_hubspot(running.hubspot)]
        _print_results(results)
        console.print(
            f"[green]demo finished in {time.monotonic() - started:.1f}s[/] — "
            "sync, recommendations and writeback join this loop as their issues land."
        )
        if serve:
            console.print(f"sandboxes keep running; config: {config_path}. Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


def _print_results(results: list[ProbeResult]) -> None:
    summary = Table(title="connections", title_justify="left")
    for column in ("CRM", "login", "API budget", "stages", "opportunities", "accounts"):
        summary.add_column(column)
    for r in results:
        summary.add_row(
            r.crm,
            r.login,
            r.api_budget,
            str(len(r.stages)),
            f"{r.opportunities:,}",
            f"{r.accounts:,}",
        )
    console.print(summary)
    sample = Table(title="open opportunities (sample)", title_justify="left")
    for column in ("CRM", "opportunity", "stage", "amount", "account"):
        sample.add_column(column)
    for r in results:
        for row in r.sample:
            sample.add_row(r.crm, row["name"], row["stage"], row["amount"], row["account"])
    console.print(sample)
