"""Counts of API calls an emulator served, by kind, so tests and benchmarks can assert on them."""

from __future__ import annotations

import threading
from collections import Counter


class CallLog:
    """Thread-safe counter of served requests keyed by a short kind such as ``"query"``."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, kind: str) -> None:
        """Count one request of ``kind``."""
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        """Current counts, plus ``"total"``."""
        with self._lock:
            counts = dict(self._counts)
        counts["total"] = sum(counts.values())
        return counts

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()
