"""The configuration contract every connector plugin follows.

A plugin owns a pydantic model derived from :class:`ConnectionConfig`; the application picks
the model by the connection's ``kind`` and validates the block with it, so a third-party
plugin's settings are checked as strictly as the built-in ones.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _parse_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    raise ValueError("expected a duration such as 30s, 15m, 2h or 1d (or a number of seconds)")


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
"""A duration written as ``30s``, ``15m``, ``2h``, ``1d`` or seconds."""


def _resolve(path: Path, info: ValidationInfo) -> Path:
    # Relative paths are relative to the config file, not to wherever the CLI was started.
    expanded = path.expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not expanded.is_absolute() and base_dir is not None:
        expanded = Path(base_dir) / expanded
    return expanded


def _readable_file(path: Path, info: ValidationInfo) -> Path:
    expanded = _resolve(path, info)
    if expanded.is_dir():
        raise ValueError(f"{str(path)!r} is a directory, expected a file")
    if not expanded.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    try:
        with expanded.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"file {str(path)!r} is not readable: {exc.strerror}") from None
    return expanded


ReadableFile = Annotated[Path, AfterValidator(_readable_file)]
"""A path that must name an existing, readable file when the config is loaded."""


def _existing_path(path: Path, info: ValidationInfo) -> Path:
    expanded = _resolve(path, info)
    if not expanded.exists():
        raise ValueError(f"{str(path)!r} does not exist")
    return expanded


ExistingPath = Annotated[Path, AfterValidator(_existing_path)]
"""A file or directory that must exist (relative to the config file)."""


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("expected an http(s) URL such as https://example.com")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL, stored without a trailing slash (client libraries append paths verbatim)."""


class SyncSettings(StrictModel):
    """How often and how carefully a connection is synced."""

    interval: Duration = Field(
        default=timedelta(minutes=15), description="Incremental sync period."
    )
    lookback: Duration = Field(
        default=timedelta(minutes=5),
        description="Re-read this much before the cursor: late-visible records are never missed.",
    )


class WritebackSettings(StrictModel):
    """How often usage is written back to the CRM timeline."""

    interval: Duration = Field(default=timedelta(minutes=5))
    enabled: bool = True


class BudgetSettings(StrictModel):
    """The share of the CRM's API allowance stagelink may use (sync, backfill, writeback)."""

    max_daily_fraction: float = Field(default=0.5, gt=0, le=1)


class ConnectionConfig(StrictModel):
    """Settings every connection has; plugins subclass this with their own fields."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Unique connection name.")
    kind: str
    ca_bundle: ReadableFile | None = Field(
        default=None, description="PEM bundle of a private CA (the sandbox's, for example)."
    )
    allow_plaintext_secrets: bool = Field(
        default=False,
        description="Accept secrets written in the YAML. Only for the sandbox's demo credentials.",
    )
    stage_map: dict[str, str] = Field(
        default_factory=dict, description="CRM stage (id or label) to canonical stage."
    )
    sync: SyncSettings = SyncSettings()
    writeback: WritebackSettings = WritebackSettings()
    budget: BudgetSettings = BudgetSettings()
