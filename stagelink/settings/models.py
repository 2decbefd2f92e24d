"""The application's configuration model (one YAML file)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.core.config import ConnectionConfig, StrictModel
from connectors.core.secrets import Secret
from mapping.config import (
    DEFAULT_CANONICAL_STAGES,
    ContentSettings,
    MappingSettings,
    Rule,
    Slug,
)

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

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called ``name``."""
        for connection in self.connections:
            if connection.name == name:
                return connection
        known = ", ".join(c.name for c in self.connections) or "none"
        raise KeyError(f"no connection named {name!r} (configured: {known})")
