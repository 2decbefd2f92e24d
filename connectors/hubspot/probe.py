"""``stagelink check`` for a HubSpot connection: log in, read what the sync needs, report.

:func:`probe` never raises for a failure a person can fix (wrong token, unreachable host,
missing scope, misspelled property): each becomes a line in ``ProbeReport.problems``, and
every check that can still run does, so one run lists everything to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sized
from functools import partial
from typing import TypeVar

from connectors.core.errors import StagelinkError
from connectors.core.probe import ObjectAccess, ProbeReport
from connectors.hubspot.client import HubSpotClient, Timeouts
from connectors.hubspot.config import HubSpotConnectionConfig, OAuthLogin
from connectors.hubspot.errors import (
    AuthenticationError,
    HubSpotConnectionError,
    MissingScopesError,
    TlsVerificationError,
)
from connectors.hubspot.retry import RetryPolicy

__all__ = ["PROBE_RETRY", "PROBE_TIMEOUTS", "probe"]

T = TypeVar("T")

# A check answers in seconds or says why not: two quick tries, short timeouts.
PROBE_RETRY = RetryPolicy(attempts=2, max_total_seconds=10.0, initial_wait=0.5, max_wait=2.0)
PROBE_TIMEOUTS = Timeouts(connect=5.0, read=20.0)

_ACTIVITY_OBJECT = {"note": "notes", "task": "tasks"}


class _Stop(Exception):
    """The connection itself failed (unreachable, refused credentials): later checks are moot."""


def probe(
    config: HubSpotConnectionConfig,
    *,
    retry: RetryPolicy = PROBE_RETRY,
    timeouts: Timeouts = PROBE_TIMEOUTS,
) -> ProbeReport:
    """Check a HubSpot connection and report what works and what a person must fix.

    Checks, in order: the token (identity = the portal id), one page each of deals,
    companies and owners and the deal pipelines, that every ``extra_properties`` name exists
    (with a did-you-mean), that the write-back ``event_id_property`` exists on the activity
    object and is unique, and the API budgets from the last rate-limit headers.
    """
    report = ProbeReport(
        connection=config.name, kind="hubspot", authenticated=False, endpoint=config.base_url
    )
    with HubSpotClient(config, retry=retry, timeouts=timeouts) as client:
        try:
            _check_identity(client, config, report)
            _check_objects(client, report)
            _check_extra_properties(client, config, report)
            _check_writeback_property(client, config, report)
        except _Stop:
            pass
        report.budgets = client.api_budget()
    return report


def _stop_if_unusable(report: ProbeReport, exc: StagelinkError) -> None:
    """Unreachable host or refused credentials: record it once and skip the other checks."""
    if isinstance(exc, HubSpotConnectionError | TlsVerificationError):
        report.problems.append(f"cannot reach HubSpot at {report.endpoint}: {exc}")
        raise _Stop from None
    if isinstance(exc, AuthenticationError):
        report.authenticated = False
        report.problems.append(f"HubSpot refused the credentials: {exc}")
        raise _Stop from None


def _check(report: ProbeReport, check: Callable[[], T]) -> T | None:
    """Run one check; an expected failure becomes a problem and ``None``."""
    try:
        return check()
    except StagelinkError as exc:
        _stop_if_unusable(report, exc)
        report.problems.append(str(exc))
        return None


def _check_identity(
    client: HubSpotClient, config: HubSpotConnectionConfig, report: ProbeReport
) -> None:
    if isinstance(config.auth, OAuthLogin):
        info = _check(report, client.token_info)
        if info is None:
            return
        report.authenticated = True
        report.identity = f"portal {info.hub_id}"
        if config.portal_id is not None and config.portal_id != info.hub_id:
            report.problems.append(
                f"portal_id is {config.portal_id} but the OAuth token belongs to portal "
                f"{info.hub_id}: fix portal_id (card and webhook checks use it)"
            )
        return
    # Private-app tokens cannot be introspected: the first read below proves the token, and
    # the portal id is the configured one.
    report.identity = (
        f"portal {config.portal_id}"
        if config.portal_id is not None
        else "private app (set portal_id to name the portal)"
    )


def _check_objects(client: HubSpotClient, report: ProbeReport) -> None:
    for object_type in ("deals", "companies"):
        _record_access(report, object_type, partial(_first_page, client, object_type))
    _record_access(report, "owners", lambda: client.owners(max_pages=1))
    _record_access(report, "pipelines", lambda: client.pipelines("deals"))


def _first_page(client: HubSpotClient, object_type: str) -> Sized:
    return client.get_page(object_type, limit=1).results


def _record_access(report: ProbeReport, name: str, read: Callable[[], Sized]) -> None:
    try:
        found = read()
    except MissingScopesError as exc:
        scopes = ", ".join(exc.scopes) or "a scope HubSpot did not name"
        report.authenticated = True  # HubSpot accepted the token; it lacks a scope
        report.objects.append(ObjectAccess(name, readable=False, detail=f"missing {scopes}"))
        report.problems.append(f"cannot read {name}: the app needs the scope {scopes}")
        return
    except StagelinkError as exc:
        _stop_if_unusable(report, exc)
        report.objects.append(ObjectAccess(name, readable=False, detail=str(exc)))
        report.problems.append(f"cannot read {name}: {exc}")
        return
    report.authenticated = True
    report.objects.append(ObjectAccess(name, readable=True, detail=f"{len(found)} read"))


def _check_extra_properties(
    client: HubSpotClient, config: HubSpotConnectionConfig, report: ProbeReport
) -> None:
    wanted = {
        "companies": config.extra_properties.companies,
        "deals": config.extra_properties.deals,
    }
    for object_type, names in wanted.items():
        if not names:
            continue
        found = _check(report, partial(client.properties, object_type))
        if found is None:
            continue
        existing = {prop.name for prop in found}
        for name in names:
            if name in existing:
                continue
            close = difflib.get_close_matches(name, sorted(existing), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            report.problems.append(
                f"extra_properties.{object_type}: property {name!r} does not exist on "
                f"{object_type}{hint}"
            )


def _check_writeback_property(
    client: HubSpotClient, config: HubSpotConnectionConfig, report: ProbeReport
) -> None:
    writeback = config.writeback
    name = writeback.event_id_property
    if not writeback.enabled or name is None or writeback.timeline_event_template_id:
        return
    object_type = _ACTIVITY_OBJECT[writeback.activity]
    found = _check(report, lambda: client.properties(object_type))
    if found is None:
        return
    by_name = {prop.name: prop for prop in found}
    prop = by_name.get(name)
    fallback = "write-back will fall back to searching for its marker before each create"
    if prop is None:
        report.problems.append(
            f"writeback.event_id_property: {name!r} does not exist on {object_type}; "
            f"create it as a unique-value property, or {fallback}"
        )
    elif not prop.has_unique_value:
        report.problems.append(
            f"writeback.event_id_property: {name!r} on {object_type} is not a unique-value "
            f"property, so it cannot be used to upsert; {fallback}"
        )
