"""Configuration problems, reported all at once with their key path and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.core.errors import ConfigurationError


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration."""

    path: str  # e.g. "connections[1].auth.private_key_file"; "" for the whole file
    message: str
    line: int | None = None
    #: The file the problem is in when it is not the configuration (a content catalog).
    file: Path | None = None

    def render(self, source: Path | None = None) -> str:
        """``file:line: path: message``, leaving out what is unknown."""
        source = self.file or source
        where = str(source) if source else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        return f"{': '.join(parts)}: {self.message}" if parts else self.message


class ConfigError(ConfigurationError):
    """The configuration file is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[ConfigProblem], source: Path | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        """Every problem, one per line."""
        count = len(self.problems)
        header = f"{self.source or 'configuration'}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([header, *(f"  {p.render(self.source)}" for p in self.problems)])
