"""``stagelink jobs [list|show ID]``: what sync, backfill and write-back jobs did."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from stagelink.cli.common import ConfigOption, JsonOption, console, fail, load, print_json
from stagelink.storage import Connection, JobRun, QuarantinedRecord, StorageError
from stagelink.sync import open_storage

app = typer.Typer(help="Job runs: status, counts and errors.", no_args_is_help=False)


def _row(job: JobRun, connection: str | None) -> dict[str, Any]:
    return {
        "id": job.id,
        "connection": connection,
        "kind": job.kind.value,
        "status": job.status.value,
        "started_at": job.started_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "node": job.node_id,
        "params": job.params,
        "counts": job.counts,
        "error": job.error,
    }


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context, config: ConfigOption = None) -> None:
    """List recent jobs (same as ``jobs list``)."""
    if ctx.invoked_subcommand is None:
        list_jobs(config=config)


@app.command("list")
def list_jobs(
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only this connection.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many jobs, newest first.")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest job runs with their status and counts."""
    settings = load(config)
    try:
        with open_storage(settings) as storage, storage.sessions() as session:
            query = (
                select(JobRun, Connection.name)
                .outerjoin(Connection, JobRun.connection_id == Connection.id)
                .order_by(JobRun.id.desc())
                .limit(limit)
            )
            if connection:
                query = query.where(Connection.name == connection)
            rows = [_row(job, name) for job, name in session.execute(query)]
    except StorageError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    table = Table(title="jobs", title_justify="left")
    columns = (
        "id",
        "connection",
        "kind",
        "status",
        "started",
        "read",
        "changed",
        "quarantined",
        "dead",
    )
    for column in columns:
        table.add_column(column)
    for row in rows:
        counts = row["counts"] or {}
        # Write-back runs count claimed/written/dead instead of read/inserted/quarantined.
        changed = sum(int(counts.get(k, 0)) for k in ("inserted", "updated", "deleted", "written"))
        table.add_row(
            str(row["id"]),
            row["connection"] or "-",
            row["kind"],
            row["status"],
            row["started_at"][:19].replace("T", " "),
            f"{int(counts.get('read', counts.get('claimed', 0))):,}",
            f"{changed:,}",
            f"{int(counts.get('quarantined', 0)):,}",
            f"{int(counts.get('dead', 0)):,}",
        )
    console.print(table)


@app.command("show")
def show_job(
    job_id: Annotated[int, typer.Argument(help="Job id from `stagelink jobs list`.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One job in full: parameters, counts per stream, error, quarantined records."""
    settings = load(config)
    try:
        with open_storage(settings) as storage, storage.sessions() as session:
            found = session.execute(
                select(JobRun, Connection.name)
                .outerjoin(Connection, JobRun.connection_id == Connection.id)
                .where(JobRun.id == job_id)
            ).one_or_none()
            if found is None:
                fail(f"no job with id {job_id}")
            job, name = found
            row = _row(job, name)
            quarantined = session.execute(
                select(
                    QuarantinedRecord.object_type,
                    QuarantinedRecord.crm_id,
                    QuarantinedRecord.reason,
                )
                .where(QuarantinedRecord.job_run_id == job_id)
                .order_by(QuarantinedRecord.id)
                .limit(50)
            ).all()
            total_quarantined = session.scalar(
                select(func.count()).where(QuarantinedRecord.job_run_id == job_id)
            )
    except StorageError as exc:
        fail(str(exc))
    row["quarantined"] = [
        {"object_type": q.object_type, "crm_id": q.crm_id, "reason": q.reason} for q in quarantined
    ]
    if as_json:
        print_json(row)
        return
    console.print(
        f"[bold]job {row['id']}[/] {row['kind']} of {row['connection']}: {row['status']}\n"
        f"  started {row['started_at']}, finished {row['finished_at'] or '-'} on {row['node']}\n"
        f"  params {row['params']}",
        highlight=False,
    )
    counts = dict(row["counts"] or {})
    streams = counts.pop("streams", {})
    dead_errors = counts.pop("dead_errors", [])
    console.print(f"  counts {counts}", highlight=False)
    for stream, stream_counts in streams.items():
        console.print(f"    {stream}: {stream_counts}", highlight=False)
    if row["error"]:
        console.print(f"  error: {row['error']}", markup=False, highlight=False)
    if dead_errors:
        console.print(f"  dead-lettered events ({counts.get('dead', 0)}), first errors:")
        for dead in dead_errors:
            line = f"    {dead.get('marker')}: {dead.get('error')}"
            console.print(line, markup=False, highlight=False)
    if quarantined:
        console.print(f"  quarantined records ({total_quarantined}):")
        for q in quarantined:
            line = f"    {q.object_type} {q.crm_id}: {q.reason}"
            console.print(line, markup=False, highlight=False)
