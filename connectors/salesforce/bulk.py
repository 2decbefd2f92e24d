"""Bulk API 2.0 query jobs, one results page at a time (facts A9).

simple-salesforce's ``sf.bulk2.<Object>.query()`` runs a job and yields every page, but it
hides each page's ``Sforce-Locator`` — the one thing a killed backfill needs to resume from
the next page of the same job. So this module drives the library's job client
(``create_job``, ``get_job``, ``get_query_results``) one step at a time, each step through
:meth:`SalesforceClient.call` (re-login on 401, retries, error translation), and polls with
its own clock instead of the library's fixed sleeps.

Memory stays bounded by one page: ``maxRecords`` rows of CSV text, parsed lazily with the
``csv`` module (:func:`iter_rows`); nothing accumulates across pages.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceFatalError, SalesforceTransientError
from connectors.salesforce.queries import ident

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "BulkJobFailedError",
    "JobInfo",
    "ResultPage",
    "create_job",
    "fetch_page",
    "iter_rows",
    "wait_for_job",
]

#: Rows per results page. The API's default is 50,000 (facts A9); a smaller page keeps the
#: CSV text of one page (held while it is parsed) to a few megabytes.
DEFAULT_PAGE_SIZE = 10_000

_DONE_STATES = frozenset({"JobComplete"})
_FAILED_STATES = frozenset({"Failed", "Aborted"})


class BulkJobFailedError(SalesforceFatalError):
    """Salesforce reports the query job as Failed or Aborted."""


@dataclass(frozen=True)
class JobInfo:
    """A query job as Salesforce reports it."""

    id: str
    state: str
    records: int | None  # numberRecordsProcessed, once complete


@dataclass(frozen=True)
class ResultPage:
    """One CSV page of a job's results."""

    text: str
    number_of_records: int
    #: The locator of the page after this one, ``None`` on the last page.
    next_locator: str | None


def _jobs(sf: Any, sobject: str) -> Any:
    # The library's per-object job client; ``sf.bulk2`` is built anew on each access with the
    # current session id, so a re-login is picked up by the next call.
    return getattr(sf.bulk2, ident(sobject))._client


def _job_info(body: Any, connection: str) -> JobInfo:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise SalesforceFatalError(
            f"Salesforce bulk query for connection {connection!r} failed: the job answer has no id",
            connection=connection,
        )
    processed = body.get("numberRecordsProcessed")
    return JobInfo(
        id=body["id"],
        state=str(body.get("state", "")),
        records=int(processed) if isinstance(processed, int | float) else None,
    )


def create_job(
    client: SalesforceClient, sobject: str, soql_text: str, *, include_deleted: bool
) -> JobInfo:
    """``POST /jobs/query``: start a ``query`` (or ``queryAll``) job."""
    operation = "queryAll" if include_deleted else "query"
    body = client.call(
        lambda sf: _jobs(sf, sobject).create_job(operation, soql_text),
        action=f"bulk query of {sobject}",
        # A repeated create only leaves an unused job behind.
        idempotent=True,
    )
    return _job_info(body, client.connection)


def get_job(client: SalesforceClient, sobject: str, job_id: str) -> JobInfo:
    """``GET /jobs/query/{id}``."""
    body = client.call(
        lambda sf: _jobs(sf, sobject).get_job(job_id, True),
        action=f"bulk query of {sobject} (job status)",
        idempotent=True,
    )
    return _job_info(body, client.connection)


def wait_for_job(
    client: SalesforceClient,
    sobject: str,
    job_id: str,
    *,
    poll_interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobInfo:
    """Poll until the job is complete; the interval grows by half up to 10 s.

    Raises :class:`BulkJobFailedError` when it fails or is aborted, and a transient error
    when it is still running after ``timeout`` seconds (the next run starts over).
    """
    deadline = clock() + timeout
    interval = poll_interval
    while True:
        sleep(interval)
        info = get_job(client, sobject, job_id)
        if info.state in _DONE_STATES:
            return info
        if info.state in _FAILED_STATES:
            raise BulkJobFailedError(
                f"Salesforce bulk query of {sobject} for connection {client.connection!r} "
                f"failed: job {job_id} is {info.state}",
                connection=client.connection,
            )
        if clock() >= deadline:
            raise SalesforceTransientError(
                f"Salesforce bulk query of {sobject} for connection {client.connection!r}: "
                f"job {job_id} is still {info.state} after {timeout:.0f} s",
                connection=client.connection,
            )
        interval = min(interval * 1.5, 10.0)


def fetch_page(
    client: SalesforceClient, sobject: str, job_id: str, *, locator: str | None, max_records: int
) -> ResultPage:
    """``GET /jobs/query/{id}/results?maxRecords=&locator=``: one CSV page."""
    result = client.call(
        lambda sf: _jobs(sf, sobject).get_query_results(job_id, locator or "", max_records),
        action=f"bulk query of {sobject} (results)",
        idempotent=True,
    )
    next_locator = str(result.get("locator") or "") or None
    return ResultPage(
        text=str(result.get("records") or ""),
        number_of_records=int(result.get("number_of_records") or 0),
        next_locator=None if next_locator in (None, "null") else next_locator,
    )


def iter_rows(text: str) -> Iterator[dict[str, str]]:
    """The rows of a Bulk CSV page as dicts keyed by the header (values stay strings)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    for row in reader:
        if row:
            yield dict(zip(header, row, strict=False))
