"""Timestamps the way HubSpot writes them, and the emulator's clock.

HubSpot emits datetimes as ISO 8601 with milliseconds and ``Z``
(``2026-11-01T00:00:00.000Z``) and takes epoch-millisecond strings in search filters.
Everything inside the emulator is epoch milliseconds (UTC).
"""

from __future__ import annotations

import datetime as dt
import time

# Seeded data is anchored here, never on the wall clock, so the same seed gives the same rows.
ANCHOR = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ANCHOR_MS = int(ANCHOR.timestamp() * 1000)
DAY_MS = 86_400_000


def iso_from_ms(ms: int) -> str:
    """``1793577600000`` -> ``"2026-11-01T00:00:00.000Z"``."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def datetime_from_ms(ms: int) -> dt.datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def parse_datetime_ms(value: str) -> int:
    """Parse an epoch-ms string or an ISO 8601 date/datetime into epoch ms (UTC).

    Raises ``ValueError`` for anything else. Naive ISO values are taken as UTC, as HubSpot does.
    """
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


class Clock:
    """The emulator's notion of "now", in epoch ms.

    Real time, but never earlier than just after the seed anchor: if the machine's clock is
    behind the anchor, records written through the API would otherwise look older than the
    seeded ones and an incremental sync would never see them.
    """

    def __init__(self) -> None:
        wall = int(time.time() * 1000)
        self._offset = max(0, ANCHOR_MS + 60_000 - wall)

    def now_ms(self) -> int:
        """Current emulator time in epoch milliseconds."""
        return int(time.time() * 1000) + self._offset
