"""Usage write-back: every accepted usage event becomes exactly one CRM timeline activity.

::

    from stagelink.sync import open_storage
    from stagelink.writeback import run_writeback

    with open_storage(config) as storage:
        outcome = run_writeback(config, storage, "acme-salesforce")

See :mod:`stagelink.writeback.engine` for the exactly-once protocol.
"""

from __future__ import annotations

import threading
from pathlib import Path

from connectors.core.connector import Connector
from mapping.validation import load_source_catalog
from stagelink.settings import AppConfig
from stagelink.sync.engine import JobOutcome
from stagelink.sync.runner import Storage, connector_for
from stagelink.writeback.attribution import Attribution, OwnerDirectory
from stagelink.writeback.engine import (
    ContentInfo,
    ContentLookup,
    WritebackEngine,
    WritebackOptions,
)

__all__ = [
    "Attribution",
    "ContentInfo",
    "ContentLookup",
    "OwnerDirectory",
    "WritebackEngine",
    "WritebackOptions",
    "content_lookup",
    "run_writeback",
]

_catalog_lock = threading.Lock()
_catalog_cache: dict[tuple[tuple[str, int], ...], dict[str, ContentInfo]] = {}


def content_lookup(config: AppConfig) -> ContentLookup:
    """Titles and links of the configured catalog (re-read only when its files change)."""
    key = tuple(sorted(_stamps(config.content.catalogs)))
    with _catalog_lock:
        cached = _catalog_cache.get(key)
    if cached is None:
        catalog = load_source_catalog(config)
        cached = {item.id: ContentInfo(item.title, item.url or None) for item in catalog.items}
        with _catalog_lock:
            _catalog_cache.clear()  # one configuration per process, in practice
            _catalog_cache[key] = cached
    return ContentLookup(cached)


def _stamps(paths: list[Path]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                found.append((str(file), file.stat().st_mtime_ns))
            except OSError:
                found.append((str(file), -1))
    return found


def run_writeback(
    config: AppConfig,
    storage: Storage,
    connection_name: str,
    *,
    retry_dead: bool = False,
    stop: threading.Event | None = None,
    max_events: int | None = None,
    connector: Connector | None = None,
    options: WritebackOptions | None = None,
    node_id: str | None = None,
) -> JobOutcome:
    """One write-back pass of ``connection_name`` (a ``writeback`` job run).

    Takes the lease ``writeback:{connection}`` (raises
    :class:`~stagelink.sync.JobAlreadyRunning` when a live process holds it). With
    ``retry_dead``, dead rows go back to pending first. ``max_events`` bounds the rows
    claimed; ``stop`` ends the pass after the current batch. ``connector`` and ``options``
    are for tests and benchmarks (the connection's own connector and defaults otherwise);
    ``node_id`` names the process in the lease and job run (default ``hostname:pid``).
    """
    connection = config.connection(connection_name)
    with connector_for(connection, connector) as active:
        engine = WritebackEngine(
            storage.sessions,
            active,
            connection,
            content=content_lookup(config),
            options=options or WritebackOptions(),
            stop=stop,
            node_id=node_id,
        )
        return engine.run(retry_dead=retry_dead, max_events=max_events)
