"""Prove each configured connection through its plugin (used by `check` and the demo)."""

from __future__ import annotations

from connectors.core.config import ConnectionConfig
from connectors.core.probe import ProbeReport
from connectors.core.registry import load_plugin


def probe_connections(connections: list[ConnectionConfig]) -> list[ProbeReport]:
    """Probe every connection whose plugin can; a plugin without a probe is reported as such."""
    reports = []
    for connection in connections:
        plugin = load_plugin(connection.kind)
        if plugin.probe is None:
            report = ProbeReport(connection.name, connection.kind, authenticated=False)
            report.problems.append(f"the {connection.kind} plugin cannot probe connections")
        else:
            report = plugin.probe(connection)
        reports.append(report)
    return reports
