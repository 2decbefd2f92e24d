"""Connector plugins, discovered through the ``stagelink.connectors`` entry-point group.

Built-in connectors register through the same entry points as third-party ones (see
``pyproject.toml``), so a package that adds, say, Pipedrive only needs::

    [project.entry-points."stagelink.connectors"]
    pipedrive = "stagelink_pipedrive:PLUGIN"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import ConfigurationError
from connectors.core.probe import ProbeReport

ENTRY_POINT_GROUP = "stagelink.connectors"


@dataclass(frozen=True)
class ConnectorPlugin:
    """What a connector package exports under the entry point."""

    kind: str
    description: str
    config_model: type[ConnectionConfig]
    # Proves a connection (login, object permissions, API budget) for `stagelink check`.
    # Takes the plugin's own config model; never raises for an expected failure.
    probe: Callable[[Any], ProbeReport] | None = None
    # Builds the connector that reads streams and writes activities (see connector.py).
    # Takes the plugin's own config model.
    open: Callable[[Any], Connector] | None = None


class PluginNotFoundError(ConfigurationError):
    """No installed plugin has the requested kind."""


class InvalidPluginError(ConfigurationError):
    """An entry point does not point at a :class:`ConnectorPlugin`."""


@cache
def available_plugins() -> dict[str, ConnectorPlugin]:
    """Every installed connector plugin by kind, loaded and type-checked once."""
    plugins: dict[str, ConnectorPlugin] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        plugin = entry.load()
        if not isinstance(plugin, ConnectorPlugin):
            raise InvalidPluginError(
                f"entry point {entry.name!r} ({entry.value}) in group {ENTRY_POINT_GROUP!r} "
                f"is a {type(plugin).__name__}, expected a ConnectorPlugin"
            )
        if plugin.kind != entry.name:
            raise InvalidPluginError(
                f"entry point {entry.name!r} exports a plugin of kind {plugin.kind!r}; "
                "the two names must match"
            )
        if not issubclass(plugin.config_model, ConnectionConfig):
            raise InvalidPluginError(
                f"plugin {plugin.kind!r}: config_model must subclass ConnectionConfig"
            )
        plugins[plugin.kind] = plugin
    return plugins


def load_plugin(kind: str) -> ConnectorPlugin:
    """The plugin for ``kind``, or an error that lists the installed kinds."""
    plugins = available_plugins()
    try:
        return plugins[kind]
    except KeyError:
        known = ", ".join(sorted(plugins)) or "none"
        raise PluginNotFoundError(
            f"no connector plugin of kind {kind!r} is installed (installed: {known})"
        ) from None
