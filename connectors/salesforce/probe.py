"""``stagelink check`` for a Salesforce connection: log in, read limits, describe what we need.

:func:`probe` collects every problem it finds instead of stopping at the first, and never
raises for what a person can fix (wrong credentials, an unreachable or untrusted host, a
missing permission or field): those become ``authenticated=False`` or ``problems`` lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from connectors.core.errors import StagelinkError
from connectors.core.probe import ApiBudget, ObjectAccess, ProbeReport
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.errors import (
    PermissionDeniedError,
    SalesforceConnectionError,
    SalesforceRecordError,
    SchemaMismatchError,
)
from connectors.salesforce.http import BUDGET_WINDOW
from connectors.salesforce.retry import RetryPolicy

__all__ = ["PROBE_RETRY", "REQUIRED_OBJECTS", "probe"]

# A check should answer within seconds: one quick retry, then report.
PROBE_RETRY = RetryPolicy(attempts=2, max_total_seconds=10.0, initial_wait=0.2, max_wait=1.0)


@dataclass(frozen=True)
class _Need:
    name: str
    write: bool = False  # Task: write-back creates activities


REQUIRED_OBJECTS: Sequence[_Need] = (
    _Need("Account"),
    _Need("Opportunity"),
    _Need("User"),
    _Need("OpportunityStage"),
    _Need("Task", write=True),
)
"""What the sync reads (and, for Task, what write-back creates)."""


def probe(
    config: SalesforceConnectionConfig,
    *,
    session: requests.Session | None = None,
    retry: RetryPolicy = PROBE_RETRY,
) -> ProbeReport:
    """Check that ``config`` can log in and read and write what stagelink needs."""
    report = ProbeReport(
        connection=config.name,
        kind="salesforce",
        authenticated=False,
        endpoint=config.instance_url or config.login_url,
    )
    with SalesforceClient(config, session=session, retry=retry) as client:
        try:
            result = client.login()
        except StagelinkError as error:
            report.problems.append(_login_problem(config, error))
            return report
        report.authenticated = True
        report.endpoint = result.instance_url
        try:
            report.identity = client.identity()
        except StagelinkError as error:
            report.identity = result.username or ""
            report.problems.append(str(error))
        _check_limits(client, report)
        fields = _check_objects(client, config, report)
        _check_extra_fields(config, fields, report)
        _check_external_id(config, fields, report)
        if not report.budgets:
            # /limits failed: fall back to what the response headers said.
            header_budget = client.api_budget()
            if header_budget.limit is not None:
                report.budgets.append(header_budget)
    return report


def _login_problem(config: SalesforceConnectionConfig, error: StagelinkError) -> str:
    if isinstance(error, SalesforceConnectionError):
        return f"cannot reach {config.login_url}: {error.detail} (check login_url and the network)"
    return str(error)


def _check_limits(client: SalesforceClient, report: ProbeReport) -> None:
    try:
        limits = client.limits()
    except StagelinkError as error:
        report.problems.append(str(error))
        return
    daily = limits.get("DailyApiRequests")
    if not isinstance(daily, dict) or "Max" not in daily:
        report.problems.append("Salesforce /limits has no DailyApiRequests entry")
        return
    limit = int(daily["Max"])
    remaining = int(daily.get("Remaining", limit))
    report.budgets.append(ApiBudget(used=limit - remaining, limit=limit, window=BUDGET_WINDOW))
    if remaining <= 0:
        report.problems.append(
            f"the org's daily API allocation is spent (0 of {limit} requests left in the "
            "rolling 24 h window); sync and write-back will wait until requests free up"
        )


def _flag(describe: dict[str, Any], name: str) -> bool:
    return bool(describe.get(name, False))


def _check_objects(
    client: SalesforceClient, config: SalesforceConnectionConfig, report: ProbeReport
) -> dict[str, dict[str, dict[str, Any]]]:
    """Describe each required object; returns its fields by lower-case name, per object."""
    fields: dict[str, dict[str, dict[str, Any]]] = {}
    for need in REQUIRED_OBJECTS:
        write_needed = need.write and config.writeback.enabled
        try:
            described = client.describe(need.name)
        except StagelinkError as error:
            detail = _describe_problem(need.name, error)
            report.objects.append(
                ObjectAccess(
                    need.name, readable=False, writable=False if need.write else None, detail=detail
                )
            )
            report.problems.append(detail)
            continue
        readable = _flag(described, "queryable") and _flag(described, "retrieveable")
        writable = _flag(described, "createable") if need.write else None
        raw_fields = described.get("fields") or []
        fields[need.name] = {
            str(f["name"]).lower(): f for f in raw_fields if isinstance(f, dict) and "name" in f
        }
        report.objects.append(
            ObjectAccess(need.name, readable, writable, detail=f"{len(fields[need.name])} fields")
        )
        if not readable:
            report.problems.append(
                f"the integration user cannot read {need.name} (queryable/retrieveable is "
                "false); grant Read on it in a profile or permission set"
            )
        if write_needed and not writable:
            report.problems.append(
                f"the integration user cannot create {need.name} records (createable is "
                "false); write-back needs Create on it"
            )
    return fields


def _describe_problem(name: str, error: StagelinkError) -> str:
    if isinstance(error, PermissionDeniedError):
        return f"the integration user may not describe {name}: {error}"
    if isinstance(error, SalesforceRecordError | SchemaMismatchError):
        return f"{name} is not available to the integration user: {error}"
    return str(error)


def _suggest(name: str, fields: dict[str, dict[str, Any]]) -> str:
    real = {key: str(value["name"]) for key, value in fields.items()}
    close = difflib.get_close_matches(name.lower(), list(real), n=1, cutoff=0.75)
    return f" (did you mean {real[close[0]]}?)" if close else ""


def _check_extra_fields(
    config: SalesforceConnectionConfig,
    fields: dict[str, dict[str, dict[str, Any]]],
    report: ProbeReport,
) -> None:
    wanted = (
        ("Account", config.extra_fields.account),
        ("Opportunity", config.extra_fields.opportunity),
    )
    for sobject, names in wanted:
        known = fields.get(sobject)
        if known is None:
            continue  # already reported: the object could not be described
        for name in names:
            # API names are case-insensitive in SOQL, so Product_line__c is fine.
            if name.lower() not in known:
                report.problems.append(
                    f"{sobject} has no field {name}{_suggest(name, known)} "
                    f"(extra_fields.{sobject.lower()})"
                )


def _check_external_id(
    config: SalesforceConnectionConfig,
    fields: dict[str, dict[str, dict[str, Any]]],
    report: ProbeReport,
) -> None:
    name = config.writeback.external_id_field
    known = fields.get("Task")
    if name is None or known is None:
        return
    field = known.get(name.lower())
    if field is None:
        report.problems.append(
            f"Task has no field {name}{_suggest(name, known)} (writeback.external_id_field); "
            "create it as a Text field marked External ID"
        )
    elif not (field.get("externalId") or field.get("idLookup")):
        report.problems.append(
            f"Task field {field['name']} is not marked External ID, so write-back cannot "
            "upsert by it (writeback.external_id_field)"
        )
