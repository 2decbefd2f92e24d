"""``stagelink db``: database migrations."""

from __future__ import annotations

import typer

from stagelink.cli.common import ConfigOption, console, fail, load
from stagelink.storage import StorageError, current_revision, make_engine, upgrade

app = typer.Typer(help="Database migrations (they also run automatically on start).")


@app.command("upgrade")
def upgrade_command(
    config: ConfigOption = None,
    revision: str = typer.Argument("head", help="Target revision."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = load(config)
    try:
        upgrade(settings.database_url, revision)
        engine = make_engine(settings.database_url)
        try:
            now = current_revision(engine)
        finally:
            engine.dispose()
    except StorageError as exc:
        fail(str(exc))
    console.print(f"database at revision [bold]{now}[/]")
