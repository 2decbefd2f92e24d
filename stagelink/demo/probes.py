"""What the demo shows of each CRM until sync takes over: a few open opportunities, read
through the connectors' clients (and so through the real client libraries)."""

from __future__ import annotations

from typing import Any

from connectors.core.config import ConnectionConfig
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.salesforce.client import SalesforceClient, soql
from connectors.salesforce.config import SalesforceConnectionConfig


def sample_open_opportunities(connection: ConnectionConfig, limit: int = 3) -> list[dict[str, Any]]:
    """The largest open opportunities of a connection, as rows for a table."""
    if isinstance(connection, SalesforceConnectionConfig):
        return _salesforce_sample(connection, limit)
    if isinstance(connection, HubSpotConnectionConfig):
        return _hubspot_sample(connection, limit)
    return []


def _salesforce_sample(config: SalesforceConnectionConfig, limit: int) -> list[dict[str, Any]]:
    with SalesforceClient(config) as client:
        page = client.query(
            soql(
                "SELECT Name, StageName, Amount, CurrencyIsoCode, Account.Name FROM Opportunity "
                "WHERE IsClosed = {} ORDER BY Amount DESC NULLS LAST LIMIT {}",
                False,
                limit,
            )
        )
    return [
        {
            "name": r["Name"],
            "stage": r["StageName"],
            "amount": f"{r['Amount']:,.0f} {r['CurrencyIsoCode']}" if r["Amount"] else "—",
            "account": (r["Account"] or {}).get("Name", "—"),
        }
        for r in page.records
    ]


def _hubspot_sample(config: HubSpotConnectionConfig, limit: int) -> list[dict[str, Any]]:
    with HubSpotClient(config) as client:
        page = client.search(
            "deals",
            {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"}
                        ]
                    }
                ],
                "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
                "properties": ["dealname", "dealstage", "pipeline", "amount", "deal_currency_code"],
                "limit": limit,
            },
        )
    rows = []
    for deal in page.results:
        props = deal.properties
        amount = props.get("amount")
        rows.append(
            {
                "name": props.get("dealname") or "—",
                "stage": f"{props.get('pipeline')}/{props.get('dealstage')}",
                "amount": f"{float(amount):,.0f} {props.get('deal_currency_code') or ''}".strip()
                if amount
                else "—",
                "account": "—",
            }
        )
    return rows
