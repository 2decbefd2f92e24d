"""Configuration and result types of the Salesforce sandbox."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SalesforceOptions:
    """Behaviour switches of the emulated org.

    Defaults follow crm-api-facts.md Part A; values it marks [unconfirmed] are switchable.
    """

    # Daily API request allocation reported in Sforce-Limit-Info and /limits (facts A12).
    api_daily_limit: int = 100_000
    # Status of an upsert that updated an existing record: 200 + created:false (API ≥46) or
    # 204 without body (facts A5: unconfirmed which one a given org/version answers).
    upsert_existing_status: int = 200
    # Lifetime of an access token; the org's session timeout (facts A3: often 2 h).
    access_token_ttl_seconds: float = 7200
    # Get Updated / Get Deleted answer EXCEEDED_ID_LIMIT above this many ids (facts A7).
    updated_deleted_id_limit: int = 600_000
    # Password flows need password + security token appended (facts A2).
    require_security_token: bool = True
    # REST query batch size when no Sforce-Query-Options header is sent (facts A4).
    default_batch_size: int = 2000
    # Open query cursors per user; opening one more drops the oldest, whose next page then
    # fails with INVALID_QUERY_LOCATOR (Salesforce knowledge article 000004410).
    max_open_query_cursors: int = 10
    # A query locator stays usable this long after the query ran (article 000004410: two days).
    query_locator_ttl_seconds: int = 2 * 24 * 3600
    # Real Salesforce may tie a query locator to the session that opened it, so a re-login
    # mid-pagination cannot resume it [unconfirmed; reported by connector authors]. Off by
    # default because facts A3 expects the library to re-login and finish.
    query_locator_bound_to_session: bool = False
    # Seconds a Bulk API 2.0 query job spends in UploadComplete/InProgress before JobComplete.
    bulk_job_seconds: float = 0.2
    # Page size of Bulk 2.0 results when the client sends no maxRecords (server's choice).
    bulk_default_max_records: int = 50_000


@dataclass(frozen=True)
class SalesforceCredentials:
    """Everything a client needs to log in to the sandbox org with any supported flow."""

    username: str
    password: str
    security_token: str
    consumer_key: str
    consumer_secret: str
    refresh_token: str
    jwt_private_key_path: Path
    organization_id: str
    user_id: str


@dataclass
class MutationSummary:
    """What :meth:`SalesforceSandbox.mutate` changed, so tests can assert on a sync."""

    edited: dict[str, list[str]] = field(default_factory=dict)  # sObject → ids
    deleted: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, list[str]] = field(default_factory=dict)
    stage_changes: list[str] = field(default_factory=list)  # opportunity ids
    timestamps: list[dt.datetime] = field(default_factory=list)  # distinct SystemModstamps used

    @property
    def all_ids(self) -> set[str]:
        """Every id touched (edited, deleted or created)."""
        ids: set[str] = set()
        for group in (self.edited, self.deleted, self.created):
            for values in group.values():
                ids.update(values)
        return ids
