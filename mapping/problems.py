"""Problems found in the mapping setup (catalog files, rules), all reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from connectors.core.errors import ConfigurationError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class MappingProblem:
    """One thing wrong (``error``) or suspicious (``warning``) in the mapping setup.

    A problem in the configuration file has a key ``path`` (the loader adds the line); a
    problem in a catalog file has that ``file``, a ``line`` in it and ``where`` inside it
    (``items[3].url``, ``row 4, url``).
    """

    message: str
    path: PathKey = ()
    file: Path | None = None
    line: int | None = None
    where: str = ""
    severity: Literal["error", "warning"] = "error"

    def render(self) -> str:
        """``file:line: where: message`` or ``path: message``."""
        if self.file is not None:
            location = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
            parts = [location, self.where]
        else:
            parts = [dotted(self.path)]
        prefix = ": ".join(p for p in parts if p)
        return f"{prefix}: {self.message}" if prefix else self.message


class MappingError(ConfigurationError):
    """The catalog or rules are invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = [f"{count} mapping problem{'s' if count != 1 else ''}"]
        lines += [f"  {problem.render()}" for problem in problems]
        super().__init__("\n".join(lines))


def dotted(path: PathKey) -> str:
    """``("rules", 2, "when", "stages")`` → ``rules[2].when.stages``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
