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
from stagelink.logs import configure_logging
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
        bool,
        typer.Option(
            "--serve", help="Keep stagelink's web app and the sandboxes running after the demo."
        ),
    ] = False,
) -> None:
    """The whole loop on sandbox CRMs: configure, migrate, prove each connection, sync
    both CRMs, recommend, serve the rep pages and the HubSpot card, record usage through
    the usage API and tracked links, write it back, read it back from each CRM, and show
    coverage and effectiveness."""
    # Imported here: the emulators and CRM client libraries cost every other command ~0.4 s.
    import httpx

    from stagelink.cli.mapping_commands import print_coverage, print_effectiveness
    from stagelink.demo.loop import (
        card_json,
        demo_deals,
        free_port,
        post_usage,
        short_json,
        web_server,
    )
    from stagelink.demo.readback import read_back
    from stagelink.demo.sandboxes import running_sandboxes, sandbox_config_yaml
    from stagelink.demo.stored import largest_open_opportunities
    from stagelink.recommendations import Recommender
    from stagelink.surfaces.links import LinkSigner, absolute
    from stagelink.surfaces.views import build_view
    from stagelink.writeback import run_writeback

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
        # The tables below tell the story; job logs would interleave with them.
        configure_logging("warning", config.logging.format)
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

            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            config = config.model_copy(
                update={"server": config.server.model_copy(update={"public_url": base_url})}
            )
            with web_server(config, storage, port), httpx.Client(timeout=30) as client:
                console.rule("[bold]8. rep surfaces (mobile page, HubSpot card)")
                signer = LinkSigner.from_config(config)
                deals = demo_deals(storage)
                # The recommender of step 7 serves: the views need no public URL.
                views = [
                    build_view(
                        recommender,
                        signer,
                        connection=deal.connection,
                        opportunity_id=deal.crm_id,
                        rep=deal.rep,
                    )
                    for deal in deals
                ]
                page_url = ""
                for view in views:
                    url = absolute(base_url, view.page_path)
                    page = client.get(url)
                    page_url = page_url or url
                    console.print(
                        f"{view.connection} {view.name}: page for {view.rep} — HTTP "
                        f"{page.status_code}, {len(page.content):,} bytes, {len(view.cards)} cards",
                        highlight=False,
                    )
                console.print(f"open on a phone: {page_url}", soft_wrap=True, highlight=False)
                hubspot_deal = next((d for d in deals if d.connection == "sandbox-hubspot"), None)
                if hubspot_deal is not None and running.hubspot is not None:
                    creds = running.hubspot.credentials
                    card = card_json(
                        client,
                        base_url,
                        hubspot_deal,
                        client_secret=creds.client_secret,
                        portal_id=creds.portal_id,
                    )
                    console.print("HubSpot card JSON (v3-signed request, like hubspot.fetch):")
                    console.print_json(short_json(card))

                console.rule("[bold]9. usage (usage API + tracked links)")
                usage = post_usage(client, base_url, storage, views)
                console.print(
                    f"sent {usage.sent} events: "
                    + ", ".join(f"{n} {status}" for status, n in usage.statuses.items() if n)
                    + f"; the same batch again: {usage.duplicates_on_retry} duplicates, 0 new",
                    highlight=False,
                )
                for content_id, status, location in usage.tracked_opened:
                    console.print(
                        f"tracked link to {content_id}: HTTP {status} → {location}",
                        highlight=False,
                    )

                console.rule("[bold]10. writeback, then read back from each CRM")
                table = Table(title="activities", title_justify="left")
                for column in ("connection", "written", "found in the CRM", "for example"):
                    table.add_column(column)
                for connection in config.connections:
                    outcome = run_writeback(config, storage, connection.name)
                    if not outcome.ok:
                        fail(f"writeback of {connection.name} did not finish", EXIT_FAILED)
                    landed = read_back(config, storage, connection.name)
                    table.add_row(
                        connection.name,
                        str(landed.written),
                        str(landed.found),
                        ", ".join(landed.examples),
                    )
                    if landed.found != landed.written:
                        fail(f"{connection.name}: written activities missing in the CRM")
                console.print(table)

                console.rule("[bold]11. coverage and effectiveness")
                fresh = Recommender.open(config, storage.engine, effectiveness=False)
                print_coverage(fresh.coverage(max_deals=2_000))
                print_effectiveness(
                    fresh.effectiveness(),
                    prior_strength=config.mapping.effectiveness.prior_strength,
                )
                console.print(f"[green]demo finished in {time.monotonic() - started:.1f}s[/]")
                if serve:
                    console.rule("[bold]serving")
                    console.print(f"mobile page:  {page_url}", soft_wrap=True, highlight=False)
                    console.print(f"metrics:      {base_url}/metrics")
                    console.print(f"config:       {config_path}")
                    console.print("stagelink and the sandboxes keep running. Ctrl-C to stop.")
                    wait_until_interrupted()
