"""``stagelink sandbox``: run the Salesforce and HubSpot emulators with seeded demo data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stagelink.cli.common import console, wait_until_interrupted


def _size(value: str) -> str | int:
    if value in {"small", "medium", "large"}:
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise typer.BadParameter("expected small, medium, large or a number of opportunities")


def sandbox(
    salesforce_port: Annotated[int, typer.Option(help="Port of the Salesforce emulator.")] = 8443,
    hubspot_port: Annotated[int, typer.Option(help="Port of the HubSpot emulator.")] = 8444,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 1,
    size: Annotated[
        str, typer.Option(help="small, medium, large or a number of opportunities.")
    ] = "small",
    only: Annotated[str | None, typer.Option(help="Start only 'salesforce' or 'hubspot'.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where seeded databases are cached.")
    ] = Path("var/sandbox"),
    write_config: Annotated[
        Path | None,
        typer.Option(help="Write a stagelink config that points at the sandboxes to this file."),
    ] = None,
) -> None:
    """Start the sandbox CRMs on 127.0.0.1 and serve until Ctrl-C.

    The Salesforce emulator speaks HTTPS with its own CA (simple-salesforce always uses
    https); point clients at the printed CA bundle. Both print the demo credentials they accept.
    """
    # Imported here: the emulators cost every other command's start-up.
    from stagelink.demo.sandboxes import running_sandboxes, sandbox_config_yaml

    if only not in (None, "salesforce", "hubspot"):
        raise typer.BadParameter("expected 'salesforce' or 'hubspot'", param_hint="--only")
    parsed_size = _size(size)
    with running_sandboxes(
        seed=seed,
        size=parsed_size,
        data_dir=data_dir,
        salesforce_port=salesforce_port,
        hubspot_port=hubspot_port,
        salesforce=only in (None, "salesforce"),
        hubspot=only in (None, "hubspot"),
    ) as running:
        table = Table(title="sandbox CRMs", title_justify="left", show_lines=True)
        table.add_column("CRM")
        table.add_column("URL")
        table.add_column("credentials")
        if running.salesforce is not None:
            sf = running.salesforce
            c = sf.credentials
            table.add_row(
                "Salesforce",
                f"{sf.url}\nCA bundle: {sf.ca_bundle}",
                f"username {c.username}\npassword {c.password}\nsecurity token {c.security_token}\n"
                f"consumer key {c.consumer_key}\nconsumer secret {c.consumer_secret}\n"
                f"refresh token {c.refresh_token}\nJWT key {c.jwt_private_key_path}",
            )
        if running.hubspot is not None:
            hs = running.hubspot
            h = hs.credentials
            table.add_row(
                "HubSpot",
                hs.url,
                f"private app token {h.private_app_token}\nclient id {h.client_id}\n"
                f"client secret {h.client_secret}\nrefresh token {h.refresh_token}\n"
                f"portal {h.portal_id}",
            )
        console.print(table)
        if write_config is not None:
            write_config.parent.mkdir(parents=True, exist_ok=True)
            db_path = (data_dir or Path("var")).resolve() / "stagelink.db"
            write_config.write_text(
                sandbox_config_yaml(running, database_url=f"sqlite:///{db_path}"),
                encoding="utf-8",
            )
            console.print(f"config for these sandboxes written to [bold]{write_config}[/]")
        console.print("serving; press Ctrl-C to stop")
        wait_until_interrupted()
