"""The Salesforce client: one logged-in simple-salesforce instance behind a safe edge.

:class:`SalesforceClient` is the only place simple-salesforce is called. Each call it makes

* logs in lazily and again when Salesforce answers 401 (simple-salesforce's direct mode
  has no re-login, facts A3), at most :attr:`SalesforceClient.MAX_RELOGINS_PER_CALL` times
  per request, then fails with :class:`SessionKeepsExpiringError` — never a
  ``RecursionError`` (facts gotcha 7);
* translates every vendor exception through ``errors.classify`` (one table);
* retries reads under the one :class:`RetryPolicy`; writes (``call(..., idempotent=False)``)
  are never retried here;
* leaves the ``Sforce-Limit-Info`` header of every response to the session's response hook,
  which :meth:`SalesforceClient.api_budget` reports.

Query pages are followed here (not with ``query_all``) so a re-login or a retry in the middle
continues from the same ``nextRecordsUrl``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from connectors.core.probe import ApiBudget
from connectors.core.telemetry import report_response
from connectors.salesforce.auth import LoginResult, login
from connectors.salesforce.config import RefreshTokenLogin, SalesforceConnectionConfig
from connectors.salesforce.errors import (
    VENDOR_ERRORS,
    SalesforceFatalError,
    SessionExpiredError,
    SessionKeepsExpiringError,
    classify,
)
from connectors.salesforce.http import (
    DEFAULT_TIMEOUT,
    ResponseObserver,
    Timeout,
    build_session,
)
from connectors.salesforce.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["QueryPage", "SalesforceClient", "soql"]

T = TypeVar("T")

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Sforce-Query-Options batchSize bounds (facts A4).
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 200, 2000


def soql(template: str, *args: Any, **kwargs: Any) -> str:
    """SOQL with every value quoted and escaped by ``simple_salesforce.format_soql``.

    ``soql("SELECT Id FROM Account WHERE Name = {} AND SystemModstamp > {}", name, since)``.
    Naive datetimes are refused: ``format_soql`` would read them as local time (gotcha 12).
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("SOQL datetimes must be timezone-aware (UTC), got a naive datetime")
    return format_soql(template, *args, **kwargs)


@dataclass(frozen=True)
class QueryPage:
    """One batch of a SOQL result."""

    records: list[dict[str, Any]]
    total_size: int  # of the whole result, not of this page
    next_records_url: str | None  # relative; None on the last page

    @property
    def done(self) -> bool:
        """True on the last page."""
        return self.next_records_url is None


class SalesforceClient:
    """A connection's session with Salesforce: login, re-login, retries, translation, budget.

    ``session`` may be given (tests, proxies); it is adjusted for ``ca_bundle`` and gets a
    response hook, and is not closed by :meth:`close`. One client may be shared by threads.
    """

    MAX_RELOGINS_PER_CALL = 2

    def __init__(
        self,
        config: SalesforceConnectionConfig,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.config = config
        self._owns_session = session is None
        self.session = build_session(config, session=session, timeout=timeout)
        self._observer = ResponseObserver()
        self._requests = 0
        self._count_lock = threading.Lock()  # not self._lock: logins run under that one
        self.session.hooks.setdefault("response", []).extend([self._observer, self._count])
        self._retry = retry
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        self._login: LoginResult | None = None
        self._rotated_refresh_token: str | None = None
        self._login_count = 0
        self._identity: str | None = None

    # -- session --------------------------------------------------------------------------------

    @property
    def connection(self) -> str:
        """The connection's name."""
        return self.config.name

    @property
    def login_count(self) -> int:
        """How many logins this client made (the first one included)."""
        return self._login_count

    @property
    def last_login(self) -> LoginResult | None:
        """The current session, once logged in."""
        return self._login

    def login(self) -> LoginResult:
        """Log in now (retrying transient failures); later calls use this session."""
        with self._lock:
            token = self._sf.session_id if self._sf is not None else None
        self._retry.call(partial(self._relogin, token))
        assert self._login is not None
        return self._login

    def _current(self) -> Salesforce:
        sf = self._sf
        if sf is None:
            self._relogin(None)
            sf = self._sf
            assert sf is not None
        return sf

    def _relogin(self, stale_token: str | None) -> None:
        """Replace the session whose token was ``stale_token`` (unless a thread already did)."""
        with self._lock:
            if self._sf is not None and self._sf.session_id != stale_token:
                return
            result = login(
                self.config,
                self.session,
                timeout=self._timeout,
                refresh_token=self._rotated_refresh_token,
            )
            self._login_count += 1
            if result.refresh_token and isinstance(self.config.auth, RefreshTokenLogin):
                # The org rotates refresh tokens: the next login needs the new one. Persisting
                # it across restarts is the caller's business.
                self._rotated_refresh_token = result.refresh_token
            sf = self._sf
            if sf is not None and self._login and self._login.instance_url == result.instance_url:
                # facts A3: SFType objects read session_id from their parent on each call.
                sf.session_id = result.access_token
                sf._generate_headers()
            else:
                self._sf = Salesforce(
                    instance_url=result.instance_url,
                    session_id=result.access_token,
                    session=self.session,
                    version=self.config.api_version,
                    object_pairs_hook=dict,
                )
            self._login = result

    # -- the edge -------------------------------------------------------------------------------

    def call(self, operation: Callable[[Salesforce], T], *, action: str, idempotent: bool) -> T:
        """Run ``operation`` against the logged-in instance, with re-login and translation.

        ``idempotent`` calls (reads) are retried on transient errors; others run once.
        Both log in again on 401: a refused session means the request was not carried out.
        ``action`` names the call in error messages ("query", "describe Account").
        """
        attempt = partial(self._once, operation, action)
        return self._retry.call(attempt) if idempotent else attempt()

    def _once(self, operation: Callable[[Salesforce], T], action: str) -> T:
        relogins = 0
        while True:
            sf = self._current()
            token = sf.session_id
            self._observer.take_retry_after()
            try:
                return operation(sf)
            except VENDOR_ERRORS as exc:
                error = classify(
                    exc,
                    connection=self.connection,
                    action=action,
                    retry_after=self._observer.take_retry_after(),
                )
                if not isinstance(error, SessionExpiredError):
                    raise error from exc
                if relogins >= self.MAX_RELOGINS_PER_CALL:
                    raise SessionKeepsExpiringError(
                        f"Salesforce {action} for connection {self.connection!r} failed: the "
                        f"session keeps expiring — Salesforce refused {relogins + 1} sessions "
                        f"in a row, {relogins} of them fresh (check the connected app's session "
                        "policy, IP restrictions and the user's status)",
                        connection=self.connection,
                        status=error.status,
                        error_code=error.error_code,
                    ) from exc
            relogins += 1
            self._relogin(token)

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # A response hook: every answer (logins, retries and Bulk API calls included) is one
        # request this client made. ``+=`` on an int is not atomic; the lock keeps threads honest.
        with self._count_lock:
            self._requests += 1
        report_response(self.connection, response.status_code, rate_limited=_rate_limited(response))

    @property
    def requests_made(self) -> int:
        """HTTP requests this client sent that got an answer (logins and retries included)."""
        return self._requests

    # -- API ------------------------------------------------------------------------------------

    def api_budget(self) -> ApiBudget:
        """Requests used and allowed over 24 h, from the latest ``Sforce-Limit-Info`` header."""
        return self._observer.budget()

    def identity(self) -> str:
        """Who the session belongs to: the username (queried for refresh-token logins)."""
        result = self._login or self.login()
        if result.username:
            return result.username
        if self._identity is None:
            user_id = result.user_id
            self._identity = user_id or ""
            if user_id:
                page = self.query(soql("SELECT Username FROM User WHERE Id = {}", user_id))
                if page.records:
                    self._identity = str(page.records[0].get("Username") or user_id)
        return self._identity

    def limits(self) -> dict[str, Any]:
        """``GET /limits/``: the org's allocations (``DailyApiRequests`` and friends)."""
        body = self.call(
            lambda sf: sf.limits(timeout=self._timeout), action="limits", idempotent=True
        )
        return _require_dict(body, "limits", self.connection)

    def describe(self, sobject: str) -> dict[str, Any]:
        """``GET /sobjects/{sobject}/describe``: fields, flags (queryable, createable, ...)."""
        if not _API_NAME.match(sobject):
            raise ValueError(f"not an sObject API name: {sobject!r}")
        action = f"describe {sobject}"
        body = self.call(
            lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=self._timeout),
            action=action,
            idempotent=True,
        )
        return _require_dict(body, action, self.connection)

    def query(
        self, soql_text: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> QueryPage:
        """The first page of a SOQL query (``queryAll`` with ``include_deleted``).

        Build ``soql_text`` with :func:`soql` whenever it contains values.
        """
        headers = _query_headers(batch_size)
        body = self.call(
            lambda sf: sf.query(
                soql_text, include_deleted=include_deleted, headers=headers, timeout=self._timeout
            ),
            action="query",
            idempotent=True,
        )
        return _page(body, self.connection)

    def query_pages(
        self,
        soql_text: str,
        batch_size: int | None = None,
        *,
        include_deleted: bool = False,
    ) -> Iterator[QueryPage]:
        """Every page of a query, following ``nextRecordsUrl``; resumes after a re-login."""
        page = self.query(soql_text, include_deleted=include_deleted, batch_size=batch_size)
        yield page
        headers = _query_headers(batch_size)
        while page.next_records_url is not None:
            page = self._next_page(page.next_records_url, headers)
            yield page

    def query_all_iter(
        self, soql_text: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a query, page after page (never the whole result in memory)."""
        for page in self.query_pages(soql_text, batch_size, include_deleted=include_deleted):
            yield from page.records

    def deleted(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Get Deleted: ``GET /sobjects/{sobject}/deleted/?start=&end=`` (facts A7).

        Salesforce truncates both ends to the minute, refuses a start more than 30 days back
        (``INVALID_REPLICATION_DATE``) and reports ``earliestDateAvailable``, the point before
        which the delete log has been purged.
        """
        if not _API_NAME.match(sobject):
            raise ValueError(f"not an sObject API name: {sobject!r}")
        for value in (start, end):
            if value.tzinfo is None:
                raise ValueError("Get Deleted needs timezone-aware (UTC) datetimes")
        params = {"start": _iso_utc(start), "end": _iso_utc(end)}
        action = f"get deleted {sobject}"
        body = self.call(
            lambda sf: sf.restful(
                f"sobjects/{sobject}/deleted/", params=params, timeout=self._timeout
            ),
            action=action,
            idempotent=True,
        )
        return _require_dict(body, action, self.connection)

    def count(self, soql_text: str) -> int:
        """``totalSize`` of a query: the count of ``SELECT COUNT() FROM ...``."""
        return self.query(soql_text).total_size

    def _next_page(self, next_records_url: str, headers: dict[str, str]) -> QueryPage:
        # simple-salesforce prefixes https://{instance}: the locator must be a relative path
        # (facts gotcha 5), so an absolute one is cut down to its path.
        parts = urlsplit(next_records_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = self.call(
            lambda sf: sf.query_more(
                path, identifier_is_url=True, headers=headers, timeout=self._timeout
            ),
            action="query (next page)",
            idempotent=True,
        )
        return _page(body, self.connection)

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Forget the session; close the HTTP session if this client created it."""
        hooks = self.session.hooks.get("response", [])
        for hook in (self._observer, self._count):
            if hook in hooks:
                hooks.remove(hook)
        if self._owns_session:
            self.session.close()
        self._sf = None

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _query_headers(batch_size: int | None) -> dict[str, str]:
    if batch_size is None:
        return {}
    if not MIN_BATCH_SIZE <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"batch_size must be between {MIN_BATCH_SIZE} and {MAX_BATCH_SIZE}, got {batch_size}"
        )
    return {"Sforce-Query-Options": f"batchSize={batch_size}"}


def _require_dict(body: Any, action: str, connection: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SalesforceFatalError(
            f"Salesforce {action} for connection {connection!r} failed: expected a JSON object, "
            f"got {type(body).__name__}",
            connection=connection,
        )
    return body


def _page(body: Any, connection: str) -> QueryPage:
    data = _require_dict(body, "query", connection)
    records = data.get("records")
    if not isinstance(records, list):
        raise SalesforceFatalError(
            f"Salesforce query for connection {connection!r} failed: the answer has no records",
            connection=connection,
        )
    next_url = data.get("nextRecordsUrl") if not data.get("done", True) else None
    return QueryPage(
        records=records,
        total_size=int(data.get("totalSize", len(records))),
        next_records_url=str(next_url) if next_url else None,
    )


def _rate_limited(response: requests.Response) -> bool:
    """Salesforce refuses for its API limits with 403 ``REQUEST_LIMIT_EXCEEDED`` (a 429 only
    from a proxy in front of it); error bodies are small, so reading one here is cheap."""
    if response.status_code == 429:
        return True
    return response.status_code == 403 and b"REQUEST_LIMIT_EXCEEDED" in response.content[:2000]
