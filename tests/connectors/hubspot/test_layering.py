"""The HubSpot connector's import rules: layering, and the vendor library in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import connectors.hubspot

PACKAGE = Path(connectors.hubspot.__file__).parent
FORBIDDEN = {"stagelink", "sandbox", "mapping", "scheduler"}


def imported_roots(path: Path) -> dict[str, str]:
    """Top-level package -> the full module name, for every import in ``path``."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found[node.module.split(".")[0]] = node.module
    return found


def test_connector_modules_import_no_application_layer() -> None:
    offenders = {
        path.name: sorted(set(imported_roots(path)) & FORBIDDEN)
        for path in PACKAGE.glob("*.py")
        if set(imported_roots(path)) & FORBIDDEN
    }
    assert offenders == {}


def test_only_the_client_module_uses_hubspot_api_client() -> None:
    users = sorted(p.name for p in PACKAGE.glob("*.py") if "hubspot" in imported_roots(p))
    assert users == ["client.py"]
