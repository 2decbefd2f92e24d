"""``stagelink check``: validate the configuration and reach the database."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from connectors.core.config import ConnectionConfig
from connectors.core.errors import ConfigurationError
from connectors.core.probe import ProbeReport
from stagelink.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    load,
    print_json,
)
from stagelink.cli.mapping_commands import mapping_summary, print_mapping_summary
from stagelink.probing import probe_connections
from stagelink.settings import AppConfig
from stagelink.storage import StorageError, current_revision, make_engine, ping, redact_url
from stagelink.surfaces.links import signing_key_for


def check(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    connections: Annotated[
        bool,
        typer.Option(
            "--connections",
            "-C",
            help="Also log in to each CRM and check object permissions and API budget.",
        ),
    ] = False,
) -> None:
    """Validate the configuration (every problem at once, with its key path and line)
    and check that the database is reachable; with --connections, prove each CRM connection.

    Exit code 2 when the configuration or database is wrong, 1 when a connection fails."""
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
    described = [_describe(connection) for connection in settings.connections]
    reports = probe_connections(settings.connections) if connections else []
    mapping = mapping_summary(settings, database_ok=bool(database.get("revision")))
    surfaces = _surfaces(settings)
    ok = bool(database["reachable"]) and surfaces["links"] == "ok"
    connections_ok = all(report.ok for report in reports)
    if as_json:
        print_json(
            {
                "ok": ok,
                "database": database,
                "canonical_stages": settings.canonical_stages,
                "connections": described,
                "rules": len(settings.rules),
                "content_catalogs": [str(p) for p in settings.content.catalogs],
                "mapping": mapping,
                "surfaces": surfaces,
                "probes": [_report_json(report) for report in reports],
            }
        )
    else:
        table = Table(title="connections", title_justify="left")
        for column in ("name", "kind", "login", "endpoint", "mapped stages"):
            table.add_column(column)
        for item in described:
            table.add_row(
                item["name"], item["kind"], item["login"], item["endpoint"], str(item["stages"])
            )
        console.print(table)
        console.print(f"canonical stages: {', '.join(settings.canonical_stages)}")
        console.print(
            f"rules: {len(settings.rules)}; content catalogs: {len(settings.content.catalogs)}"
        )
        print_mapping_summary(mapping)
        _print_surfaces(surfaces)
        if database["reachable"]:
            revision = database["revision"] or "empty (run `stagelink db upgrade`)"
            console.print(f"database: [green]reachable[/] {database['url']} — revision {revision}")
        else:
            console.print(f"database: [red]unreachable[/] — {database['error']}", soft_wrap=True)
        print_reports(reports)
        console.print("[green]configuration is valid[/]" if ok else "[red]check failed[/]")
        if reports:
            verdict = (
                "[green]all connections ok[/]" if connections_ok else "[red]a connection failed[/]"
            )
            console.print(verdict)
    if not ok:
        raise typer.Exit(EXIT_CONFIG)
    if not connections_ok:
        raise typer.Exit(EXIT_FAILED)


def _surfaces(settings: AppConfig) -> dict[str, Any]:
    """Can rep links be signed, and where do reps' phones reach this server?"""
    try:
        signing_key_for(settings)
        links = "ok"
    except ConfigurationError as exc:
        links = str(exc)
    return {"links": links, "public_url": settings.server.public_url}


def _print_surfaces(surfaces: dict[str, Any]) -> None:
    if surfaces["links"] != "ok":
        console.print(f"rep links: [red]{surfaces['links']}[/]", soft_wrap=True, highlight=False)
    else:
        console.print("rep links: [green]signing key ok[/]")
    if surfaces["public_url"] is None:
        console.print(
            "rep links: [yellow]server.public_url is not set[/] — links in cards, e-mails and "
            "push messages will use the address each request came in on",
            soft_wrap=True,
        )


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


def _report_json(report: ProbeReport) -> dict[str, Any]:
    return {
        "connection": report.connection,
        "kind": report.kind,
        "ok": report.ok,
        "authenticated": report.authenticated,
        "identity": report.identity,
        "endpoint": report.endpoint,
        "budgets": [
            {"window": b.window, "used": b.used, "limit": b.limit, "remaining": b.remaining}
            for b in report.budgets
        ],
        "objects": [
            {"name": o.name, "readable": o.readable, "writable": o.writable, "detail": o.detail}
            for o in report.objects
        ],
        "problems": report.problems,
    }


def print_reports(reports: list[ProbeReport]) -> None:
    for report in reports:
        status = "[green]ok[/]" if report.ok else "[red]problems[/]"
        who = f" as {report.identity}" if report.identity else ""
        console.print(
            f"[bold]{report.connection}[/] ({report.kind}) {status}: "
            f"{'logged in' if report.authenticated else 'not logged in'}{who}",
            soft_wrap=True,
        )
        for budget in report.budgets:
            remaining = "?" if budget.remaining is None else f"{budget.remaining:,}"
            limit = "?" if budget.limit is None else f"{budget.limit:,}"
            console.print(f"  API budget ({budget.window}): {remaining} of {limit} left")
        for access in report.objects:
            rights = "read" if access.readable else "no read"
            if access.writable is not None:
                rights += ", write" if access.writable else ", no write"
            console.print(
                f"  {access.name}: {rights}{' — ' + access.detail if access.detail else ''}"
            )
        for problem in report.problems:
            console.print(f"  [red]✗[/] {problem}", soft_wrap=True, highlight=False)
