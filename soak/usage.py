"""The usage stream: a mobile client posting rep activity to ``POST /api/v1/usage``.

Like the device queue of the rep page, the client keeps every batch until it gets an
answer: a refused connection (the server is down) or a cut answer (it was killed mid
request) leaves the batch queued, and it is sent again later with the same
``client_event_id`` s. Now and then an answered batch is sent again as well (an answer lost
on the way), which the API must answer ``duplicate``. About one event in ten names a deal
the mutator created moments before, which stagelink has not synced yet (``held``, then
read from the CRM by id).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from stagelink.storage import UsageAction

__all__ = ["SentEvent", "UsageStream"]

_CHANNELS = ("mobile_page", "hubspot_card", "salesforce_canvas", "app")


@dataclass
class SentEvent:
    """One event the client made, and what the API answered for it (oldest first)."""

    client_event_id: str
    connection: str
    opportunity_id: str
    #: The deal was created in the CRM moments before (stagelink had not synced it).
    fresh: bool
    answers: list[str] = field(default_factory=list)
    duplicate_answers: int = 0

    @property
    def marker(self) -> str:
        """The external marker its CRM activity carries."""
        return f"sl-{self.client_event_id}"


class UsageStream:
    """Generates and sends usage batches from a thread until stopped, then drains its queue."""

    def __init__(
        self,
        url: Callable[[], str],
        token: str,
        *,
        deals: Callable[[str], list[str]],
        reps: dict[str, list[str]],
        content_ids: list[str],
        rng: random.Random,
        every: float,
        resend_rate: float = 0.05,
        fresh_rate: float = 0.1,
    ) -> None:
        self.url = url
        self.token = token
        self.deals = deals
        self.reps = reps
        self.content_ids = content_ids
        self.rng = rng
        self.every = every
        self.resend_rate = resend_rate
        self.fresh_rate = fresh_rate
        self.events: dict[str, SentEvent] = {}
        #: Requests by outcome: answered, refused (no server), cut (no answer), error (5xx...).
        self.requests: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._queue: deque[list[dict[str, Any]]] = deque()
        #: Deals created moments ago, newest last (only the newest few are not synced yet).
        self._fresh: dict[str, deque[str]] = {name: deque(maxlen=5) for name in reps}
        self._deal_cache: dict[str, tuple[float, list[str]]] = {}
        self._generating = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="soak-usage", daemon=True)

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        self._generating.set()
        self._thread.start()

    def stop_generating(self) -> None:
        """Make no new events (queued batches are still sent)."""
        self._generating.clear()

    def drain(self, timeout: float) -> None:
        """Send until every batch has an answer, then stop the thread."""
        self.stop_generating()
        deadline = time.monotonic() + timeout
        while self.queued and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        if self.queued:
            raise RuntimeError(f"{self.queued} usage batch(es) got no answer in {timeout:.0f} s")

    def close(self) -> None:
        """Stop at once without raising (cleanup after another part failed)."""
        self._generating.clear()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def created(self, connection: str, deal_ids: list[str]) -> None:
        """Deals just created in the CRM (the mutator calls this)."""
        if connection in self._fresh:
            self._fresh[connection].extend(deal_ids)

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                while not self._stop.wait(self.rng.uniform(0.5, 1.5) * self.every):
                    if self._generating.is_set():
                        self._enqueue(self._batch())
                    self._send_queued(client)
        except BaseException as exc:
            self.error = exc

    def _enqueue(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self._queue.append(batch)

    def _send_queued(self, client: httpx.Client) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                batch = self._queue[0]
            answer = self._post(client, batch)
            if answer is None:
                return  # the server is away: keep the queue, try again next tick
            with self._lock:
                self._queue.popleft()
            self._record(answer)
            if self._generating.is_set() and self.rng.random() < self.resend_rate:
                self._enqueue(batch)  # the answer "got lost": the client sends it again

    def _post(self, client: httpx.Client, batch: list[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            response = client.post(
                f"{self.url()}/api/v1/usage",
                json={"events": batch},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.ConnectError:
            self.requests["refused"] += 1
            return None
        except httpx.TransportError:
            # Killed while the request was in progress: applied or not, we cannot tell.
            self.requests["cut"] += 1
            return None
        if response.status_code >= 500:
            self.requests["error"] += 1
            return None
        if response.status_code != 200:
            raise RuntimeError(
                f"the usage API refused a batch: {response.status_code} {response.text}"
            )
        self.requests["answered"] += 1
        body: dict[str, Any] = response.json()
        return body

    def _record(self, answer: dict[str, Any]) -> None:
        for result in answer["results"]:
            sent = self.events[result["client_event_id"]]
            sent.answers.append(result["status"])
            if result["duplicate"]:
                sent.duplicate_answers += 1

    # -- what a rep does ----------------------------------------------------------------------

    def _batch(self) -> list[dict[str, Any]]:
        return [self._event() for _ in range(self.rng.randint(1, 6))]

    def _event(self) -> dict[str, Any]:
        connection = self.rng.choice(sorted(self.reps))
        fresh = self._fresh[connection]
        is_fresh = bool(fresh) and self.rng.random() < self.fresh_rate
        if is_fresh:
            deal = fresh.pop()
        else:
            deal = self.rng.choice(self._live_deals(connection))
        event_id = str(uuid.uuid4())
        self.events[event_id] = SentEvent(event_id, connection, deal, is_fresh)
        occurred = datetime.now(UTC) - timedelta(seconds=self.rng.uniform(5, 900))
        event: dict[str, Any] = {
            "client_event_id": event_id,
            "rep": self.rng.choice(self.reps[connection]),
            "connection": connection,
            "opportunity_id": deal,
            "content_id": self.rng.choice(self.content_ids),
            "action": self.rng.choice(list(UsageAction)).value,
            "occurred_at": occurred.isoformat(),
            "channel": self.rng.choice(_CHANNELS),
        }
        if event["action"] in ("viewed", "presented"):
            event["duration_seconds"] = self.rng.randint(10, 1800)
        return event

    def _live_deals(self, connection: str) -> list[str]:
        """The CRM's live deals (what reps see), re-read every two seconds."""
        cached = self._deal_cache.get(connection)
        if cached is None or time.monotonic() - cached[0] > 2.0:
            cached = (time.monotonic(), self.deals(connection))
            self._deal_cache[connection] = cached
        return cached[1]
