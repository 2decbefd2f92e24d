"""``stagelink serve``: the web application (webhooks, health) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from stagelink.cli.common import ConfigOption, console, fail, load
from stagelink.storage import StorageError


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: server.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Run the web application: HubSpot webhooks (near-real-time sync) and /healthz.

    SIGTERM or Ctrl-C stops it gracefully: webhook changes already acknowledged are stored
    before the process exits."""
    import uvicorn

    from stagelink.sync import open_storage
    from stagelink.web.app import create_app

    settings = load(config)
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    try:
        with open_storage(settings) as storage:
            app = create_app(settings, storage)
            console.print(f"stagelink listening on http://{bind_host}:{bind_port}")
            uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning")
    except StorageError as exc:
        fail(str(exc))
