"""Resolve ``${ENV_VAR}`` and ``${file:/path}`` references in raw config data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.core.secrets import ResolvedRef

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PathKey = tuple[str | int, ...]


def resolve_references(
    data: Any,
    *,
    environ: Mapping[str, str],
    base_dir: Path,
    problems: list[tuple[PathKey, str]],
    path: PathKey = (),
) -> Any:
    """Return ``data`` with every reference replaced; record unresolvable ones in ``problems``."""
    if isinstance(data, dict):
        return {
            key: resolve_references(
                value, environ=environ, base_dir=base_dir, problems=problems, path=(*path, key)
            )
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [
            resolve_references(
                item, environ=environ, base_dir=base_dir, problems=problems, path=(*path, index)
            )
            for index, item in enumerate(data)
        ]
    if not isinstance(data, str) or "${" not in data:
        return data
    sources: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        value, source, error = _lookup(match.group(1).strip(), environ, base_dir)
        if error:
            problems.append((path, error))
            return ""
        sources.append(source)
        return value

    resolved = _REFERENCE.sub(substitute, data)
    return ResolvedRef(resolved, ", ".join(sources)) if sources else resolved


def _lookup(reference: str, environ: Mapping[str, str], base_dir: Path) -> tuple[str, str, str]:
    """(value, source, error) for one reference body such as ``NAME`` or ``file:/x``."""
    if reference.startswith("file:"):
        raw_path = reference.removeprefix("file:").strip()
        file_path = Path(raw_path).expanduser()
        if not file_path.is_absolute():
            file_path = base_dir / file_path
        try:
            # Secret files usually end with a newline that is not part of the secret.
            return file_path.read_text(encoding="utf-8").rstrip("\r\n"), f"file:{raw_path}", ""
        except FileNotFoundError:
            return "", "", f"secret file {raw_path!r} does not exist"
        except OSError as exc:
            return "", "", f"secret file {raw_path!r} is not readable: {exc.strerror}"
        except UnicodeDecodeError:
            return "", "", f"secret file {raw_path!r} is not UTF-8 text"
    if not _ENV_NAME.match(reference):
        return (
            "",
            "",
            f"'${{{reference}}}' is not a valid reference: use ${{ENV_VAR}} or ${{file:/path}}",
        )
    if reference not in environ:
        return "", "", f"environment variable {reference} is not set"
    return environ[reference], f"env:{reference}", ""
