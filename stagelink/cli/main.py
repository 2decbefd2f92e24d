"""Entry point: ``stagelink COMMAND``. Each command lives in its own module beside this one."""

from __future__ import annotations

import typer

from stagelink import __version__
from stagelink.cli import (
    backfill,
    check,
    db,
    demo,
    jobs,
    mapping_commands,
    nudges,
    sandbox,
    serve,
    sync,
    tokens,
    writeback,
)

app = typer.Typer(
    name="stagelink",
    help="CRM-integration middleware for mobile sales enablement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("check")(check.check)
app.add_typer(db.app, name="db")
app.command("sandbox")(sandbox.sandbox)
app.command("demo")(demo.demo)
app.add_typer(nudges.app, name="nudges")
app.command("sync")(sync.sync)
app.command("backfill")(backfill.backfill)
app.add_typer(jobs.app, name="jobs")
app.command("serve")(serve.serve)
app.command("recommend")(mapping_commands.recommend)
app.command("coverage")(mapping_commands.coverage)
app.add_typer(mapping_commands.report_app, name="report")
app.add_typer(tokens.app, name="tokens")
app.command("writeback")(writeback.writeback)


@app.command("version")
def version() -> None:
    """Print the stagelink version."""
    typer.echo(f"stagelink {__version__}")


if __name__ == "__main__":
    app()
