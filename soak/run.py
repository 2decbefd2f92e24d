"""``python -m soak.run``: the reliability soak of the whole loop.

Both sandbox CRMs answer with ``--fault-rate`` of mixed faults (429 with rate-limit
headers, 5xx, connection resets, expired sessions); their mutator edits, deletes and
creates records; a usage stream posts rep activity to ``POST /api/v1/usage`` (retrying
batches with the same event ids, naming deals not synced yet); and ``stagelink serve``
(web + scheduler, short intervals) is killed with SIGKILL at random moments and restarted.

After ``--duration`` the mutator, the stream and the faults stop, stagelink runs a final
clean sync and writeback on its own schedule, and the soak checks that local storage
equals each CRM and that every accepted usage event is exactly one CRM activity. It prints
the figures and exits 0 only when there is no mismatch, duplicate or missing activity.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markdown import Markdown
from sqlalchemy import func, select

from mapping.validation import load_source_catalog
from sandbox.common.faults import FaultKind
from stagelink.demo.sandboxes import (
    RunningSandboxes,
    hubspot_block,
    running_sandboxes,
    sandbox_config_yaml,
)
from stagelink.demo.stored import owned_deals
from stagelink.settings import load_config
from stagelink.storage import (
    Connection,
    JobKind,
    JobRun,
    JobStatus,
    OutboxState,
    TokenKind,
    UsageEvent,
    UsageStatus,
    WritebackOutbox,
    redact_url,
    utcnow,
)
from stagelink.sync import Storage, open_storage
from stagelink.usage.tokens import create_token
from tests.scheduler.serving import write_serve_config
from tests.sync.conftest import HS, SF, World

from .mutator import MutatorLoop
from .report import SoakReport
from .serve import ServeNode
from .settings import SoakSettings, parse_duration
from .usage import UsageStream
from .verify import check_activities, check_storage

__all__ = ["SoakError", "main", "run_soak"]

FAULT_KINDS = [
    FaultKind.RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.DROP,
    FaultKind.SESSION_EXPIRY,
]


class SoakError(RuntimeError):
    """The soak could not run to its checks (a part did not start, a wait timed out)."""


def run_soak(settings: SoakSettings, *, console: Console | None = None) -> SoakReport:
    """Run one soak and return its figures (:attr:`SoakReport.ok` is the verdict)."""
    say = console or Console(stderr=True)
    started = time.monotonic()

    def note(text: str) -> None:
        say.print(f"[dim]{time.monotonic() - started:6.1f} s[/dim]  soak: {text}")

    with ExitStack() as stack:
        workdir = settings.workdir
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        workdir.mkdir(parents=True, exist_ok=True)
        database_url = settings.database_url or f"sqlite:///{workdir / 'soak.db'}"
        sandboxes = stack.enter_context(running_sandboxes(seed=settings.seed, size=settings.size))
        config_path = _write_config(sandboxes, workdir / "stagelink.yaml", database_url)
        config = load_config(config_path)
        storage = stack.enter_context(open_storage(config))
        _require_empty(storage, database_url)
        world = World(sandboxes, config, config_path, storage)
        report = SoakReport(
            database=redact_url(database_url),
            seed=settings.seed,
            fault_rate=settings.fault_rate,
            kill_every=settings.kill_every,
        )
        plans = {SF: world.sf.faults, HS: world.hs.faults}
        for offset, plan in enumerate(plans.values()):
            plan.configure(rate=settings.fault_rate, seed=settings.seed + offset, kinds=FAULT_KINDS)

        serve_config = write_serve_config(
            world,
            workdir / "serve.yaml",
            database_url=database_url,
            sync=settings.sync_interval,
            writeback=settings.writeback_interval,
            scheduler={"resolve_held_interval": "3s", "misfire_grace": "30s"},
        )
        rng = random.Random(f"soak-{settings.seed}")
        node = ServeNode(
            serve_config,
            workdir,
            kill_every=settings.kill_every,
            rng=random.Random(rng.random()),
        )
        stack.callback(node.kill)
        note(f"sandboxes up, {settings.fault_rate:.0%} faults; starting stagelink serve")
        node.start()
        # The first full sync of each CRM (under faults already) gives the stream its reps.
        _wait(
            lambda: _synced_since(storage, None),
            timeout=300,
            what="the first successful sync of both CRMs",
        )
        note("both CRMs synced once")
        with storage.sessions.begin() as session:
            _, token = create_token(session, "soak-usage-stream", kind=TokenKind.INTEGRATION)
        stream = UsageStream(
            lambda: node.url,
            token,
            deals=lambda name: _live_deals(world, name),
            reps={name: _rep_emails(storage, name) for name in (SF, HS)},
            content_ids=[item.id for item in load_source_catalog(config).items],
            rng=random.Random(rng.random()),
            every=settings.usage_every,
            resend_rate=settings.resend_rate,
        )
        mutator = MutatorLoop(
            sandboxes,
            rng=random.Random(rng.random()),
            every=settings.mutate_every,
            on_created=stream.created,
        )
        stack.callback(stream.close)
        stack.callback(mutator.close)

        note(f"chaos for {settings.duration:.0f} s (kill -9 every ~{settings.kill_every:g} s)")
        chaos_started = time.monotonic()
        node.start_chaos()
        mutator.start()
        stream.start()
        _chaos(settings.duration, node, mutator, stream, note)
        stream.stop_generating()
        mutator.stop()
        node.stop_chaos()
        report.chaos_seconds = time.monotonic() - chaos_started

        note("mutator and kills stopped; the client sends what it still queues")
        drain_started = time.monotonic()
        stream.drain(timeout=120)
        for name, plan in plans.items():
            report.faults.update(plan.injected)
            report.faults_by_crm[name] = sum(plan.injected.values())
            plan.clear()
        quiet = utcnow()
        note("faults off; waiting for stagelink's final clean sync and writeback")
        report.drain_complete = _wait_drained(storage, quiet, settings.drain_timeout, note)
        if not report.drain_complete:
            report.backlog = _backlog(storage)
        report.drain_seconds = time.monotonic() - drain_started
        report.final_exit_code = node.terminate()

        note("comparing storage with the CRMs and usage with their activities")
        report.storage = check_storage(world)
        report.activities = check_activities(world, stream.events.values())
        report.requests = Counter(stream.requests)
        report.answers = _first_answers(stream)
        report.kills, report.restarts, report.crashes = node.kills, node.restarts, node.crashed
        report.mutator_rounds, report.mutations = mutator.rounds, mutator.changes
        report.job_runs, report.writeback_counts = _job_figures(storage)
        report.max_attempts = _max_attempts(storage)
    report.total_seconds = time.monotonic() - started
    return report


# -- phases ---------------------------------------------------------------------------------


def _chaos(
    duration: float,
    node: ServeNode,
    mutator: MutatorLoop,
    stream: UsageStream,
    note: Callable[[str], None],
) -> None:
    """Let the chaos run for ``duration`` seconds; stop early when a part failed."""
    deadline = time.monotonic() + duration
    next_note = time.monotonic() + 60
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        for part, error in (
            ("serve", node.error),
            ("mutator", mutator.error),
            ("usage", stream.error),
        ):
            if error is not None:
                raise SoakError(f"the {part} loop failed: {error}") from error
        if time.monotonic() >= next_note:
            next_note += 60
            note(
                f"{deadline - time.monotonic():.0f} s left; {len(stream.events):,} events, "
                f"{node.kills} kills, {mutator.rounds} mutator rounds"
            )


def _write_config(sandboxes: RunningSandboxes, path: Path, database_url: str) -> Path:
    """The demo's configuration for the sandboxes, HubSpot through OAuth: its access tokens
    expire (and the sandbox's "session expiry" fault expires them early), so the soak
    drives the refresh a production portal uses. A private-app token cannot be refreshed:
    a 401 for it is a credentials problem, which fails the run by design."""
    data = yaml.safe_load(sandbox_config_yaml(sandboxes, database_url=database_url))
    assert sandboxes.hubspot is not None
    oauth = hubspot_block(sandboxes.hubspot, oauth=True)["auth"]
    for connection in data["connections"]:
        if connection["kind"] == "hubspot":
            connection["auth"] = oauth
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _require_empty(storage: Storage, database_url: str) -> None:
    with storage.sessions() as session:
        used = session.scalar(select(func.count()).select_from(Connection)) or 0
    if used:
        raise SoakError(
            f"--database-url {redact_url(database_url)}: the soak needs an empty database "
            f"(it compares every stored record with fresh sandboxes), this one has data"
        )


def _synced_since(storage: Storage, since: datetime | None) -> bool:
    """Both CRMs have a successful sync that started after ``since`` (any, when None)."""
    with storage.sessions() as session:
        query = (
            select(Connection.name)
            .join(JobRun, JobRun.connection_id == Connection.id)
            .where(JobRun.kind == JobKind.SYNC, JobRun.status == JobStatus.SUCCEEDED)
        )
        if since is not None:
            query = query.where(JobRun.started_at >= since)
        names = set(session.scalars(query))
    return {SF, HS} <= names


def _wait_drained(
    storage: Storage, quiet: datetime, timeout: float, note: Callable[[str], None]
) -> bool:
    """Wait for :func:`_drained`, noting the backlog every 30 s; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    next_note = time.monotonic() + 30
    while not _drained(storage, quiet):
        if time.monotonic() > deadline:
            return False
        if time.monotonic() >= next_note:
            next_note += 30
            note(f"still waiting: {_backlog(storage)}")
        time.sleep(0.5)
    return True


def _backlog(storage: Storage) -> str:
    """What the final sync and writeback still have to do, in words."""
    with storage.sessions() as session:
        counts = select(WritebackOutbox.state, func.count()).group_by(WritebackOutbox.state)
        states: dict[OutboxState, int] = dict(session.execute(counts).all())
        last_due = session.scalar(
            select(func.max(WritebackOutbox.next_attempt_at)).where(
                WritebackOutbox.state == OutboxState.PENDING
            )
        )
        held = session.scalar(select(func.count()).where(UsageEvent.status == UsageStatus.HELD))
    pending = states.get(OutboxState.PENDING, 0)
    due = ""
    if pending and last_due is not None:
        due = f" (the last due in {max(0.0, (last_due - utcnow()).total_seconds()):.0f} s)"
    return (
        f"{pending} event(s) waiting for a retry{due}, "
        f"{states.get(OutboxState.IN_FLIGHT, 0)} in flight, {held} held"
    )


def _drained(storage: Storage, quiet: datetime) -> bool:
    """A clean sync of each CRM started after the quiet point, nothing held, nothing left to
    write (rows in backoff are waited for: stagelink writes them when they are due)."""
    if not _synced_since(storage, quiet):
        return False
    with storage.sessions() as session:
        held = session.scalar(select(func.count()).where(UsageEvent.status == UsageStatus.HELD))
        open_rows = session.scalar(
            select(func.count()).where(
                WritebackOutbox.state.in_([OutboxState.PENDING, OutboxState.IN_FLIGHT])
            )
        )
    return held == 0 and open_rows == 0


def _job_figures(storage: Storage) -> tuple[dict[str, Counter[str]], Counter[str]]:
    runs: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    with storage.sessions() as session:
        for kind, status, counts in session.execute(
            select(JobRun.kind, JobRun.status, JobRun.counts)
        ):
            runs.setdefault(kind.value, Counter())[status.value] += 1
            if kind is JobKind.WRITEBACK:
                totals.update({k: v for k, v in (counts or {}).items() if isinstance(v, int)})
    return runs, totals


def _max_attempts(storage: Storage) -> int:
    """The most attempts one event's activity took."""
    with storage.sessions() as session:
        return session.scalar(select(func.max(WritebackOutbox.attempts))) or 0


def _first_answers(stream: UsageStream) -> Counter[str]:
    """Each event's first answer, plus the duplicate answers to resent batches."""
    answers = Counter(e.answers[0] for e in stream.events.values() if e.answers)
    answers["duplicate (resent)"] = sum(e.duplicate_answers for e in stream.events.values())
    return answers


def _rep_emails(storage: Storage, name: str) -> list[str]:
    """E-mails of the active CRM users who own deals (synced by now): the reps."""
    with storage.sessions() as session:
        deals = owned_deals(session, name, active_owners=True)
    return sorted({deal.owner_email for deal in deals})


def _live_deals(world: World, name: str) -> list[str]:
    """The CRM's live deal ids (what a rep can open)."""
    if name == SF:
        return [str(row["Id"]) for row in world.sf.records("Opportunity")]
    return [str(deal["id"]) for deal in world.hs.objects("deals")]


def _wait(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    detail: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            extra = f" ({detail()})" if detail is not None else ""
            raise SoakError(f"{what} did not happen within {timeout:.0f} s{extra}")
        time.sleep(0.5)


# -- command line ---------------------------------------------------------------------------


def main(
    duration: Annotated[
        str, typer.Option(help="How long the chaos lasts (the final sync comes after).")
    ] = "10m",
    database_url: Annotated[
        str | None,
        typer.Option(help="An empty database (default: a SQLite file in the work directory)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds faults, kills, mutator and usage.")] = 1,
    fault_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of CRM API requests that fail.")
    ] = 0.2,
    kill_every: Annotated[
        str, typer.Option(help="Mean time between two SIGKILLs of stagelink serve.")
    ] = "20s",
    drain_timeout: Annotated[
        str, typer.Option(help="How long the final sync and writeback may take.")
    ] = "20m",
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep config, serve logs and SQLite file here (default: temporary)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the Markdown summary to this file.")
    ] = None,
) -> None:
    """Soak stagelink under CRM faults, CRM changes, usage and kill -9; exit 0 only when
    storage equals the CRMs and every accepted usage event is exactly one CRM activity."""
    console = Console()
    try:
        settings = SoakSettings(
            duration=parse_duration(duration, option="--duration"),
            database_url=database_url,
            seed=seed,
            fault_rate=fault_rate,
            kill_every=parse_duration(kill_every, option="--kill-every"),
            drain_timeout=parse_duration(drain_timeout, option="--drain-timeout"),
            workdir=workdir,
        )
        result = run_soak(settings, console=console)
    except (ValueError, SoakError) as exc:
        console.print(f"[red]soak: {exc}[/red]")
        raise typer.Exit(2) from None
    text = result.markdown()
    console.print(Markdown(text))
    if report is not None:
        report.write_text(text, encoding="utf-8")
    raise typer.Exit(0 if result.ok else 1)


if __name__ == "__main__":
    typer.run(main)
