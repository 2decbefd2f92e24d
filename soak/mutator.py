"""The CRMs' users during the soak: the sandboxes' own mutator, round after round.

Each round edits, deletes and creates accounts and opportunities in both sandbox CRMs
(half the rounds with one shared modification timestamp, the cursor's hard case). New
opportunities are handed to the usage stream at once, so some usage names deals stagelink
has not synced yet.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

from stagelink.demo.sandboxes import RunningSandboxes
from tests.sync.conftest import HS, SF

__all__ = ["MutatorLoop"]


class MutatorLoop:
    """Mutates both sandboxes every ``every`` seconds (on average) until stopped."""

    def __init__(
        self,
        sandboxes: RunningSandboxes,
        *,
        rng: random.Random,
        every: float,
        on_created: Callable[[str, list[str]], None],
    ) -> None:
        self.sandboxes = sandboxes
        self.rng = rng
        self.every = every
        self.on_created = on_created
        self.rounds = 0
        #: Changes made, by kind: edited, deleted, created.
        self.changes: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-mutator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the round in progress and stop; raises what the loop failed with."""
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop without raising (cleanup after another part failed)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.rng.uniform(0.5, 1.5) * self.every):
                self.round()
        except BaseException as exc:
            self.error = exc

    def round(self) -> None:
        """One round in each CRM."""
        edits, deletes, creates = (
            self.rng.randint(2, 8),
            self.rng.randint(0, 2),
            self.rng.randint(1, 4),
        )
        shared = self.rng.random() < 0.5
        sf, hs = self.sandboxes.salesforce, self.sandboxes.hubspot
        if sf is not None:
            done = sf.mutate(edits=edits, deletes=deletes, creates=creates, shared_timestamp=shared)
            self._count(done.edited, done.deleted, done.created)
            self.on_created(SF, list(done.created.get("Opportunity", [])))
        if hs is not None:
            changed = hs.mutate(
                edits=edits, deletes=deletes, creates=creates, shared_timestamp=shared
            )
            self._count(changed.edited, changed.archived, changed.created)
            self.on_created(HS, list(changed.created.get("deals", [])))
        self.rounds += 1

    def _count(
        self,
        edited: dict[str, list[str]],
        deleted: dict[str, list[str]],
        created: dict[str, list[str]],
    ) -> None:
        self.changes["edited"] += sum(map(len, edited.values()))
        self.changes["deleted"] += sum(map(len, deleted.values()))
        self.changes["created"] += sum(map(len, created.values()))
