"""``stagelink serve``: the web application (uvicorn) and the scheduler, in one process.

Shutdown on SIGTERM or Ctrl-C, in this order:

1. uvicorn stops accepting connections and finishes the requests in progress (usage
   accepted by then is committed), then flushes the webhook debouncer;
2. scheduled sync and writeback jobs are told to stop at their next checkpoint (their
   ``stop`` event) and no new one starts;
3. the debounced writebacks still pending run (accepted usage reaches the CRM);
4. the scheduler stops, after waiting for the running jobs.

A second signal during steps 2 to 4 exits at once (every job resumes from its last
checkpoint on the next run, and the writeback outbox never writes an event twice).
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Annotated, Any

import typer

from stagelink.cli.common import ConfigOption, console, fail, load
from stagelink.settings import AppConfig
from stagelink.storage import StorageError
from stagelink.sync import Storage


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: server.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
    node_id: Annotated[
        str | None,
        typer.Option(
            "--node-id",
            envvar="STAGELINK_NODE_ID",
            help="Name of this node in leases and job runs (default: scheduler.node_id, "
            "else hostname:pid).",
        ),
    ] = None,
    scheduler: Annotated[
        bool | None,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Run the scheduled sync and writeback jobs (default: scheduler.enabled).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the web application (usage API, webhooks, /healthz, /readyz, /metrics) and the
    scheduler (sync and writeback of every connection on their intervals).

    Several nodes may share one PostgreSQL database: a connection's job runs on one node at
    a time. SIGTERM or Ctrl-C stops gracefully: requests in progress finish, accepted usage
    is written back, running jobs stop at their next checkpoint; a second signal exits at
    once."""
    import uvicorn

    from stagelink.sync import open_storage

    settings = load(config)
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    run_scheduler = settings.scheduler.enabled if scheduler is None else scheduler
    try:
        with open_storage(settings) as storage:
            node = _Node(settings, storage, node_id=node_id, run_scheduler=run_scheduler)
            server = uvicorn.Server(
                uvicorn.Config(node.app, host=bind_host, port=bind_port, log_level="warning")
            )
            signals = _Signals()
            with signals:
                node.start()
                try:
                    what = "web + scheduler" if run_scheduler else "web only"
                    console.print(
                        f"stagelink listening on http://{bind_host}:{bind_port} "
                        f"({what}, node {node.node_id})"
                    )
                    server.run()
                finally:
                    signals.stopping = True
                    node.stop()
    except StorageError as exc:
        fail(str(exc))


class _Node:
    """The scheduler, the debounced writeback trigger and the metrics of this process."""

    def __init__(
        self, config: AppConfig, storage: Storage, *, node_id: str | None, run_scheduler: bool
    ) -> None:
        from scheduler.runner import NodeScheduler
        from scheduler.trigger import WritebackTrigger
        from stagelink.ops import OpsMetrics
        from stagelink.web.app import create_app

        self.metrics = OpsMetrics(storage)
        self.scheduler = NodeScheduler(
            config, storage, node_id=node_id, observe=self.metrics.observe_job
        )
        self.trigger: WritebackTrigger | None = None
        if run_scheduler:
            self.trigger = WritebackTrigger(
                self.scheduler.runtime,
                window=config.scheduler.writeback_debounce.total_seconds(),
                max_wait=config.scheduler.writeback_max_wait.total_seconds(),
            )
        self.run_scheduler = run_scheduler
        self.app = create_app(config, storage, metrics=self.metrics)

    @property
    def node_id(self) -> str:
        return self.scheduler.node_id

    def start(self) -> None:
        self.metrics.attach()
        if self.run_scheduler:
            self.scheduler.start()
            assert self.trigger is not None
            self.trigger.install()

    def stop(self) -> None:
        try:
            # Running jobs stop at their next checkpoint and no new one starts, while the
            # debounced writebacks (their own stop event) still write what was accepted.
            self.scheduler.runtime.stop.set()
            if self.trigger is not None:
                self.trigger.close()
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
        finally:
            self.metrics.detach()
        console.print("stagelink stopped")


class _Signals:
    """SIGTERM/SIGINT while the scheduler shuts down.

    uvicorn handles both while it serves and, once stopped, raises the signal again for the
    handler it found: this one, which lets the shutdown go on — unless the shutdown has
    already begun, when a further signal means "stop waiting".
    """

    def __init__(self) -> None:
        self.stopping = False
        self._previous: dict[signal.Signals, Any] = {}

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            console.print("second signal: exiting without waiting for running jobs")
            os._exit(128 + signum)

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
