"""``stagelink nudges run|list|preview|vapid-key``: stage-change nudges by hand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.table import Table
from sqlalchemy import select

from connectors.core.errors import ConfigurationError
from stagelink.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
    print_json,
)
from stagelink.nudges.config import load_vapid_key
from stagelink.nudges.render import deal_link, render_single
from stagelink.nudges.service import nudge_settings, run_nudges
from stagelink.recommendations import OpportunityNotFound, Recommender
from stagelink.storage import StorageError
from stagelink.storage.models.nudges import Nudge
from stagelink.surfaces.links import LinkSigner
from stagelink.surfaces.views import build_view
from stagelink.sync import open_storage

__all__ = ["app"]

app = typer.Typer(
    help="Stage-change nudges: e-mail and Web Push to deal owners.", no_args_is_help=True
)


@app.command("run")
def run(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One pass now: detect stage changes since the last pass, plan, send what is due.

    `stagelink serve` runs this after every sync and every minute; use it to send right
    away or to see what a pass decides. Exit code 0, or 2 for a configuration problem."""
    settings = load(config)
    if not nudge_settings(settings).enabled:
        fail("nudges are off: set nudges.enabled: true (and nudges.smtp / nudges.vapid)")
    try:
        with open_storage(settings) as storage:
            report = run_nudges(settings, storage)
    except (ConfigurationError, StorageError) as exc:
        fail(str(exc))
    if as_json:
        print_json(report.as_dict())
        return
    if report.busy:
        console.print("another node is running a nudge pass; nothing done")
        return
    for name in report.started:
        console.print(f"{name}: nudges start now (history stored so far is not nudged)")
    console.print(
        f"detected {report.detected}, sent {report.sent_email} e-mails and "
        f"{report.sent_push} push messages ({report.singles} nudges, {report.digests} digests)",
        highlight=False,
    )
    for label, counts in (
        ("skipped", report.skipped),
        ("deferred", report.deferred),
        ("dropped", report.dropped),
        ("failed", report.failed),
    ):
        if counts:
            listed = ", ".join(f"{reason} {n}" for reason, n in counts.most_common())
            console.print(f"  {label}: {listed}", highlight=False)
    if report.stale:
        console.print(f"  stale (older than max_age, never nudged): {report.stale}")
    if report.retrying:
        console.print(f"  {report.retrying} nudges will be retried")


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent nudges: rep, kind, state per channel, subject."""
    settings = load(config)
    try:
        with open_storage(settings) as storage, storage.sessions() as session:
            nudges = session.scalars(select(Nudge).order_by(Nudge.id.desc()).limit(limit)).all()
    except StorageError as exc:
        fail(str(exc))
    rows: list[dict[str, Any]] = [
        {
            "id": n.id,
            "rep": n.rep_email,
            "kind": n.kind.value,
            "state": n.state.value,
            "channels": {c: (n.results.get(c) or {}).get("state", "pending") for c in n.channels},
            "subject": n.subject,
            "created_at": n.created_at.isoformat(),
            "sent_at": n.sent_at.isoformat() if n.sent_at else None,
            "error": n.last_error,
        }
        for n in nudges
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Nudges", title_justify="left")
    for column in ("id", "created", "rep", "kind", "state", "channels", "subject"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["created_at"][:16].replace("T", " "),
            row["rep"],
            row["kind"],
            row["state"],
            ", ".join(f"{c} {s}" for c, s in row["channels"].items()),
            row["subject"] or "-",
        )
    console.print(table)


@app.command("preview")
def preview(
    connection: Annotated[str, typer.Argument(help="Connection name.")],
    opportunity: Annotated[str, typer.Argument(help="The deal's CRM id.")],
    rep: Annotated[
        str | None, typer.Option("--rep", help="Render for this rep (default: the owner).")
    ] = None,
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the nudge a deal's owner would get now (nothing is sent or recorded)."""
    settings = load(config)
    base_url = settings.server.public_url
    if not base_url:
        fail("server.public_url: required for nudges (links must be absolute)")
    try:
        with open_storage(settings) as storage:
            recommender = Recommender.open(settings, storage.engine)
            facts = recommender.facts(connection, opportunity)
            who = rep or (facts.owner.email if facts.owner else None)
            if not who:
                fail("the deal's owner has no e-mail; pass --rep EMAIL")
            view = build_view(
                recommender,
                LinkSigner.from_config(settings),
                connection=connection,
                opportunity_id=opportunity,
                rep=who,
                limit=nudge_settings(settings).content_items,
            )
    except (OpportunityNotFound, KeyError) as exc:
        fail(str(exc.args[0]) if exc.args else str(exc), code=EXIT_FAILED)
    except (ConfigurationError, StorageError) as exc:
        fail(str(exc))
    rendered = render_single(
        deal_link(view, base_url, items=nudge_settings(settings).content_items), rep=who
    )
    typer.echo(f"To: {who}\nSubject: {rendered.subject}\n")
    typer.echo(rendered.html if html else rendered.text)
    typer.echo(f"\nPush: {rendered.push}")


@app.command("vapid-key")
def vapid_key(
    out: Annotated[Path, typer.Option("--out", help="Write the private key (PEM) here.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Make a VAPID key pair for Web Push: the private key goes to --out (mode 600).

    Point nudges.vapid.private_key at it with ${file:PATH}. Keep it: a new key makes every
    browser subscription void (reps would have to allow notifications again)."""
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to replace it (existing subscriptions stop working)")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    load_vapid_key(pem.decode())  # what stagelink will read back
    console.print(f"wrote {out}", highlight=False)
    console.print("add to the configuration:", highlight=False)
    typer.echo(
        "nudges:\n  vapid:\n"
        f"    private_key: ${{file:{out.resolve()}}}\n"
        "    subject: mailto:you@example.com"
    )
