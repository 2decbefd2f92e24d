"""A complete third-party connector in one file: what the README's "Writing a connector"
section walks through. It serves deals from an in-memory "CRM" so the test can prove that a
package installed beside stagelink is discovered through the ``stagelink.connectors`` entry
point, configured from YAML with its own model, and synced by the shared engine.

A real plugin would call its CRM's API in ``read``; everything else stays the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Batch, Connector, ReadRequest, StreamInfo
from connectors.core.normalize import FieldError, to_datetime, to_decimal
from connectors.core.probe import ProbeReport
from connectors.core.records import BadRecord, ObjectType, Opportunity
from connectors.core.registry import ConnectorPlugin

#: The "CRM": deals as its API would return them, ordered by modification time.
DEALS: list[dict[str, Any]] = [
    {
        "id": "1",
        "title": "Hafen AG rollout",
        "value": "1200.00",
        "stage": "Demo",
        "updated": "2026-01-01T10:00:00Z",
    },
    {
        "id": "2",
        "title": "Café Lumière",
        "value": "99.90",
        "stage": "Proposal",
        "updated": "2026-01-01T11:00:00Z",
    },
    {
        "id": "3",
        "title": "broken",
        "value": "lots",
        "stage": "Demo",
        "updated": "2026-01-01T12:00:00Z",
    },
]


class ExampleCrmConfig(ConnectionConfig):
    """Settings of an example-crm connection (validated strictly, like the built-ins)."""

    kind: Literal["example-crm"]
    page_size: int = 2


class ExampleCrmConnector(Connector):
    """Reads ``DEALS`` page by page; the position is the index of the next deal."""

    kind = "example-crm"

    def __init__(self, config: ExampleCrmConfig) -> None:
        self.config = config
        self.requests = 0

    def streams(self) -> Sequence[StreamInfo]:
        return [StreamInfo("opportunities", "deals")]

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        start = int((request.position or {}).get("next", 0))
        size = self.config.page_size
        for offset in range(start, len(DEALS), size):
            self.requests += 1
            page = DEALS[offset : offset + size]
            yield Batch(
                items=[_convert(deal) for deal in page],
                position={"next": offset + len(page)},
                done=offset + size >= len(DEALS),
                requests=1,
            )

    def requests_made(self) -> int:
        return self.requests


def _convert(deal: dict[str, Any]) -> Opportunity | BadRecord:
    try:
        return Opportunity(
            crm_id=deal["id"],
            name=deal["title"],
            pipeline_crm_id="default",
            stage_crm_id=deal["stage"],
            stage_label=deal["stage"],
            amount=to_decimal(deal["value"], "value") or Decimal(0),
            currency="EUR",
            crm_modified_at=to_datetime(deal["updated"], "updated"),
            raw=deal,
        )
    except FieldError as exc:
        return BadRecord(ObjectType.OPPORTUNITY, deal.get("id"), str(exc), deal)


def _probe(config: ExampleCrmConfig) -> ProbeReport:
    return ProbeReport(config.name, config.kind, authenticated=True, identity="example")


PLUGIN = ConnectorPlugin(
    kind="example-crm",
    description="Example third-party connector (tests and docs)",
    config_model=ExampleCrmConfig,
    probe=_probe,
    open=ExampleCrmConnector,
)
