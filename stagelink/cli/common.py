"""Options and helpers every command shares."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from connectors.core.errors import ConfigurationError
from stagelink.logs import configure_logging
from stagelink.settings import AppConfig, ConfigError, default_config_path, load_config

# Exit codes: 0 ok, 1 the job failed, 2 the configuration or environment is wrong.
EXIT_FAILED = 1
EXIT_CONFIG = 2

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default: $STAGELINK_CONFIG or ./stagelink.yaml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``: no traceback for expected errors."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(config_path: Path | None) -> AppConfig:
    """Load and validate the configuration, or exit 2 listing every problem."""
    path = config_path or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        err_console.print(exc.render(), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except ConfigurationError as exc:
        fail(str(exc))
    configure_logging(config.logging.level, config.logging.format)
    return config


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (no Rich markup, so scripts can parse it)."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def wait_until_interrupted() -> None:
    """Block until Ctrl-C (SIGINT); servers started by the caller keep running meanwhile."""
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
