"""``/readyz``: is this node able to do its work — the database reachable, every CRM reachable?

The database is pinged on every check (cheap). A CRM is proven by its plugin's probe (log
in, read what stagelink needs), which costs API requests, so each connection's result is
kept for ``ttl`` seconds and concurrent checks share one probe: a load balancer polling
every second costs each CRM a few requests per ``ttl``, not per poll.

"Reachable" means the probe logged in; configuration problems it reports (a missing extra
field, say) are shown but do not make the node unready — ``stagelink check`` is for those.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.core.config import ConnectionConfig
from connectors.core.probe import ProbeReport
from stagelink.probing import probe_connections
from stagelink.settings import AppConfig
from stagelink.storage import StorageUnavailable, ping
from stagelink.sync import Storage

__all__ = ["Check", "Probe", "Readiness", "ReadinessReport"]

log = structlog.get_logger(__name__)

Probe = Callable[[ConnectionConfig], ProbeReport]
"""Proves one connection (default: its plugin's probe)."""


def _plugin_probe(connection: ConnectionConfig) -> ProbeReport:
    return probe_connections([connection])[0]


@dataclass(frozen=True)
class Check:
    """One dependency's state."""

    ok: bool
    detail: str = ""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"ok": self.ok, "detail": self.detail, "checked_at": self.checked_at.isoformat()}


@dataclass(frozen=True)
class ReadinessReport:
    """The database's and each connection's state."""

    database: Check
    connections: dict[str, Check]

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return self.database.ok and all(c.ok for c in self.connections.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with an overall ``status``."""
        return {
            "status": "ready" if self.ready else "not_ready",
            "database": self.database.as_dict(),
            "connections": {name: c.as_dict() for name, c in self.connections.items()},
        }


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    check: Check | None = None
    at: float = 0.0


class Readiness:
    """Checks the database and every configured CRM, caching CRM results for ``ttl`` s."""

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        *,
        ttl: float = 30.0,
        probe: Probe = _plugin_probe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.storage = storage
        self.ttl = ttl
        self.probe = probe
        self._clock = clock
        self._entries = {c.name: _Entry() for c in config.connections}
        self.probes_run = 0

    def check(self) -> ReadinessReport:
        """Ping the database and each CRM (CRMs from cache when fresh), in parallel."""
        connections = self.config.connections
        with ThreadPoolExecutor(max(1, len(connections))) as pool:
            futures = {c.name: pool.submit(self._connection, c) for c in connections}
            database = self._database()
            return ReadinessReport(database, {name: f.result() for name, f in futures.items()})

    def _database(self) -> Check:
        try:
            ping(self.storage.engine)
        except StorageUnavailable as exc:
            return Check(False, str(exc))
        return Check(True)

    def _connection(self, connection: ConnectionConfig) -> Check:
        entry = self._entries[connection.name]
        # One probe at a time per connection: concurrent checks wait and share its result.
        with entry.lock:
            if entry.check is not None and self._clock() - entry.at < self.ttl:
                return entry.check
            entry.check = self._probe(connection)
            entry.at = self._clock()
            return entry.check

    def _probe(self, connection: ConnectionConfig) -> Check:
        self.probes_run += 1
        try:
            report = self.probe(connection)
        except Exception as exc:  # a plugin's bug must not take /readyz down
            log.warning("readiness_probe_failed", connection=connection.name, error=str(exc))
            return Check(False, f"probe failed: {type(exc).__name__}: {exc}")
        if not report.authenticated:
            return Check(False, "; ".join(report.problems) or "not logged in")
        if report.problems:
            return Check(True, f"reachable; {len(report.problems)} configuration problem(s)")
        return Check(True, report.identity)
