"""The contract between a CRM connector and the engines that drive it.

A connector reads **streams** (owners, stages, accounts, opportunities, stage history...):
the engine calls :meth:`Connector.read` with the stream's saved position and the connector
yields :class:`Batch` es. Each batch carries the records it read *and the position after
them*; the engine commits the records and then the position in the same transaction, so a
crash replays at most one batch (records are upserted by id, so replays change nothing).

The position is the connector's own small JSON-able dict (Salesforce keeps
``{"modstamp": ..., "last_id": ...}``, HubSpot ``{"modified_ms": ...}``): the engine stores it
and hands it back unread. ``None`` means "start from scratch".

Modes (:class:`ReadMode`):

* ``incremental`` — what changed since the position, re-reading the configured lookback so
  records that share the cursor timestamp or become visible late are never skipped;
* ``full`` — everything, to (re)build the local copy; the engine then marks records the
  stream did not return as deleted;
* ``backfill`` — a slice of history (``since``/``until``), resumable from a checkpoint, with
  the bulk paths (Salesforce Bulk API 2.0) when the volume is large.

A connector never touches the database or global settings. Writing activities (usage
write-back) goes through :meth:`Connector.write_activities`; after a crash the engine finds
what a lost batch wrote with :meth:`Connector.find_activities` (see ``activities.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from connectors.core.activities import Activity, FoundActivity, WriteResult
from connectors.core.probe import ApiBudget
from connectors.core.records import Item, ObjectType, Opportunity

__all__ = ["Batch", "Connector", "ReadMode", "ReadRequest", "StreamInfo"]

Position = dict[str, Any]


class ReadMode(StrEnum):
    """How much of a stream to read."""

    INCREMENTAL = "incremental"
    FULL = "full"
    BACKFILL = "backfill"


@dataclass(frozen=True)
class StreamInfo:
    """One stream a connector offers, in the order the engine should read them."""

    name: str  # e.g. "opportunities"
    description: str = ""
    #: Included in a backfill by default (metadata streams are cheap and always read).
    backfill: bool = True


@dataclass(frozen=True)
class ReadRequest:
    """What the engine asks of one stream."""

    stream: str
    mode: ReadMode = ReadMode.INCREMENTAL
    #: The position saved after the last committed batch (``None``: from the start).
    position: Position | None = None
    #: Backfill window on the records' creation time (either end open when ``None``).
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Batch:
    """Items read from one stream and the position after them.

    ``position`` is saved only once ``items`` are committed; ``None`` keeps the old one.
    ``done`` marks the last batch of a complete read (a full read that ends with ``done``
    lets the engine reconcile deletions by absence).
    """

    items: list[Item] = field(default_factory=list)
    position: Position | None = None
    done: bool = False
    #: Requests this batch cost the CRM API (for job counts and benchmarks).
    requests: int = 0
    #: The connector's estimate of records still to come in this read, when known.
    remaining: int | None = None


class Connector(ABC):
    """One connection to a CRM. Implementations are built by their plugin's ``open``."""

    #: The plugin kind, e.g. ``"salesforce"``.
    kind: str = ""

    @abstractmethod
    def streams(self) -> Sequence[StreamInfo]:
        """The streams this connector reads, in dependency order (stages before deals)."""

    @abstractmethod
    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """Yield batches of ``request.stream`` from ``request.position`` on.

        Must be safe to stop at any batch boundary and resume from the last position.
        Raises :class:`~connectors.core.errors.ConfigurationError` for what a person must fix
        (credentials, permissions, a configured field the CRM does not have), and
        :class:`~connectors.core.errors.BudgetExhaustedError` when the API budget is spent.
        Bad records are yielded as :class:`~connectors.core.records.BadRecord`, never raised.
        """

    def estimate(self, request: ReadRequest) -> int | None:
        """How many records ``request`` would read (for progress bars and dry runs)."""
        return None

    def read_ids(self, object_type: ObjectType, crm_ids: Sequence[str]) -> Batch:
        """The current state of a few records by id, straight from the CRM.

        Used for near-real-time updates (webhooks) and for usage on a deal not synced yet.
        Ids the CRM no longer has come back as :class:`~connectors.core.records.Deletion`;
        the batch's ``position`` is ``None`` (targeted reads never move a cursor).
        """
        raise NotImplementedError(f"{self.kind} connector cannot read records by id")

    def fetch_opportunity(self, crm_id: str) -> Opportunity | None:
        """One opportunity by id, straight from the CRM (``None`` when it does not exist)."""
        batch = self.read_ids(ObjectType.OPPORTUNITY, [crm_id])
        for item in batch.items:
            if isinstance(item, Opportunity) and item.crm_id == crm_id:
                return item
        return None

    def write_activities(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """Write usage activities to the CRM timeline: one result per activity, by marker.

        At most :meth:`activity_batch_size` activities per call. Raises only for the whole
        request (see :mod:`connectors.core.activities` for what each error means).
        """
        raise NotImplementedError(f"{self.kind} connector cannot write activities")

    def find_activities(
        self, activities: Sequence[Activity], *, sent_after: datetime | None = None
    ) -> list[FoundActivity]:
        """The activities among ``activities`` the CRM already holds, found by marker.

        Called before anything that may have been written is sent again. ``sent_after``:
        none of them was sent before this time (lets a CRM without an index on the marker
        narrow its search). Raises like a read when the CRM cannot be asked.
        """
        raise NotImplementedError(f"{self.kind} connector cannot look up activities")

    def activity_batch_size(self) -> int:
        """How many activities one :meth:`write_activities` call takes (one request's worth)."""
        return 100

    def activity_lookup_delay(self) -> timedelta:
        """How long after sending :meth:`find_activities` can be trusted to see an activity
        (a search index's lag); younger unknown rows wait for a later pass."""
        return timedelta(0)

    def api_budget(self) -> list[ApiBudget]:
        """The CRM's API allowance as last reported (daily, per-interval...)."""
        return []

    def requests_made(self) -> int:
        """CRM API requests this connector has sent so far (for job counts)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold a session
        """Release sessions and connection pools."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
