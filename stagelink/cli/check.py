"""``stagelink check``: validate the configuration and reach the database."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from connectors.core.config import ConnectionConfig
from stagelink.cli.common import EXIT_CONFIG, ConfigOption, JsonOption, console, load, print_json
from stagelink.storage import StorageError, current_revision, make_engine, ping, redact_url


def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate the configuration (every problem at once, with its key path and line)
    and check that the database is reachable. Exit code 2 when something is wrong."""
    settings = load(config)
    database: dict[str, Any] = {"url": redact_url(settings.database_url)}
    engine = None
    try:
        engine = make_engine(settings.database_url)
        ping(engine)
        database["reachable"] = True
        database["revision"] = current_revision(engine)
    except StorageError as exc:
        database["reachable"] = False
        database["error"] = str(exc)
    finally:
        if engine is not None:
            engine.dispose()
    connections = [_describe(connection) for connection in settings.connections]
    ok = bool(database["reachable"])
    if as_json:
        print_json(
            {
                "ok": ok,
                "database": database,
                "canonical_stages": settings.canonical_stages,
                "connections": connections,
                "rules": len(settings.rules),
                "content_catalogs": [str(p) for p in settings.content.catalogs],
            }
        )
    else:
        table = Table(title="connections", title_justify="left")
        for column in ("name", "kind", "login", "endpoint", "mapped stages"):
            table.add_column(column)
        for item in connections:
            table.add_row(
                item["name"], item["kind"], item["login"], item["endpoint"], str(item["stages"])
            )
        console.print(table)
        console.print(f"canonical stages: {', '.join(settings.canonical_stages)}")
        console.print(
            f"rules: {len(settings.rules)}; content catalogs: {len(settings.content.catalogs)}"
        )
        if ok:
            revision = database["revision"] or "empty (run `stagelink db upgrade`)"
            console.print(f"database: [green]reachable[/] {database['url']} — revision {revision}")
        else:
            console.print(f"database: [red]unreachable[/] — {database['error']}", soft_wrap=True)
        console.print("[green]configuration is valid[/]" if ok else "[red]check failed[/]")
    if not ok:
        raise typer.Exit(EXIT_CONFIG)


def _describe(connection: ConnectionConfig) -> dict[str, Any]:
    auth = getattr(connection, "auth", None)
    endpoint = (
        getattr(connection, "instance_url", None)
        or getattr(connection, "login_url", None)
        or getattr(connection, "base_url", None)
        or ""
    )
    return {
        "name": connection.name,
        "kind": connection.kind,
        "login": getattr(auth, "method", "-"),
        "endpoint": endpoint,
        "stages": len(connection.stage_map),
    }
