"""What one soak run does: its length, database, seed, fault rate and kill rhythm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from connectors.core.config import Duration

__all__ = ["SoakSettings", "parse_duration"]

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


def parse_duration(text: str, *, option: str) -> float:
    """Seconds of ``text`` (``10m``, ``20s``, ``90``); a clear error naming ``option``."""
    try:
        seconds = _DURATION.validate_python(text).total_seconds()
    except ValidationError:
        raise ValueError(f"{option} {text!r}: expected a duration such as 90s, 10m or 1h") from None
    if seconds <= 0:
        raise ValueError(f"{option} {text!r}: must be longer than zero")
    return seconds


@dataclass(frozen=True)
class SoakSettings:
    """One soak run. Times are seconds."""

    #: How long the chaos lasts (faults, mutator, usage, kills); the final drain comes after.
    duration: float = 600.0
    #: ``None``: a SQLite file in ``workdir``. Otherwise an *empty* database (for example
    #: PostgreSQL): the soak compares every stored record with the sandboxes.
    database_url: str | None = None
    #: Seeds the fault plans, the kill moments, the mutator's rhythm and the usage stream.
    seed: int = 1
    #: Share of CRM API requests that fail (429 with headers, 5xx, resets, session expiry).
    fault_rate: float = 0.2
    #: Mean time between two SIGKILLs of ``stagelink serve`` (each drawn from 0.3x to 1.7x).
    kill_every: float = 20.0
    #: Where the config, logs and SQLite file go (a temporary directory when ``None``).
    workdir: Path | None = None
    #: Sandbox data size ("small": 300 deals and 60 accounts per CRM).
    size: str = "small"
    #: Mean pause between two mutator rounds (edits, deletes and creates in both CRMs).
    mutate_every: float = 2.0
    #: Mean pause between two usage batches.
    usage_every: float = 0.4
    #: Share of answered batches the client sends again (as if the answer got lost).
    resend_rate: float = 0.05
    #: Scheduler intervals of the serve process (short, so jobs are always about to run).
    sync_interval: str = "3s"
    writeback_interval: str = "4s"
    #: How long the final clean sync and writeback may take before the run fails. Events
    #: whose writes kept failing wait out their exponential backoff (30 s, 1 min, 2 min,
    #: 4 min, 8 min... after each failed attempt), so this is generous.
    drain_timeout: float = 1200.0

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError("--duration must be longer than zero")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"--fault-rate must be between 0 and 1, got {self.fault_rate}")
        if self.kill_every <= 0:
            raise ValueError("--kill-every must be longer than zero")
