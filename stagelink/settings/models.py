"""The application's configuration model (one YAML file)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from connectors.core.config import ConnectionConfig, Duration, StrictModel
from connectors.core.secrets import Secret
from mapping.config import (
    DEFAULT_CANONICAL_STAGES,
    ContentSettings,
    MappingSettings,
    Rule,
    Slug,
)
from stagelink.nudges.config import NudgeSettings
from stagelink.surfaces.config import SurfaceSettings

DEFAULT_DATABASE_URL = "sqlite:///var/stagelink.db"


class LoggingSettings(StrictModel):
    """Log level and format (``console`` for people, ``json`` for log shippers)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class ServerSettings(StrictModel):
    """Where ``stagelink serve`` listens and how rep-facing links are built."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Base URL reps' phones reach."
    )


class SchedulerSettings(StrictModel):
    """The scheduler ``stagelink serve`` runs: sync and writeback per connection, on every node."""

    enabled: bool = Field(default=True, description="Run scheduled jobs in `stagelink serve`.")
    node_id: str | None = Field(
        default=None,
        max_length=200,
        description="Names this node in leases and job runs (default hostname:pid).",
    )
    lease_ttl: Duration = Field(
        default=timedelta(minutes=5),
        description="A dead node's job lease expires after this; another node then takes over.",
    )
    misfire_grace: Duration = Field(
        default=timedelta(minutes=5),
        description="A run later than this (node down, workers busy) is skipped to the next.",
    )
    resolve_held_interval: Duration = Field(
        default=timedelta(minutes=1),
        description="How often held usage events are retried against the CRM.",
    )
    writeback_debounce: Duration = Field(
        default=timedelta(seconds=1),
        description="Accepted usage is written back after this much quiet...",
    )
    writeback_max_wait: Duration = Field(
        default=timedelta(seconds=3),
        description="...or at the latest this long after the first event of a burst.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SchedulerSettings:
        if self.lease_ttl < timedelta(seconds=1):
            raise ValueError("lease_ttl must be at least 1s")
        if self.writeback_max_wait < self.writeback_debounce:
            raise ValueError("writeback_max_wait must not be shorter than writeback_debounce")
        return self


class AppConfig(StrictModel):
    """The whole configuration. Connection blocks are validated by their plugin's model."""

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLite file (default) or postgresql://... for several nodes.",
    )
    secret_key: Secret | None = Field(
        default=None,
        description="Fernet key(s), comma-separated, newest first: encrypts stored CRM tokens.",
    )
    canonical_stages: list[Slug] = Field(default_factory=lambda: list(DEFAULT_CANONICAL_STAGES))
    connections: list[ConnectionConfig] = Field(default_factory=list)
    content: ContentSettings = ContentSettings()
    rules: list[Rule] = Field(default_factory=list)
    mapping: MappingSettings = MappingSettings()
    logging: LoggingSettings = LoggingSettings()
    server: ServerSettings = ServerSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    surfaces: SurfaceSettings = SurfaceSettings()
    nudges: NudgeSettings = NudgeSettings()

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called ``name``."""
        for connection in self.connections:
            if connection.name == name:
                return connection
        known = ", ".join(c.name for c in self.connections) or "none"
        raise KeyError(f"no connection named {name!r} (configured: {known})")
