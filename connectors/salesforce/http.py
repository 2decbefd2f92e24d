"""The ``requests.Session`` every Salesforce call of a connection goes through.

One session carries the TLS settings, a default timeout (simple-salesforce passes none, so
a stalled server would hang a sync forever) and a response hook that reads
``Sforce-Limit-Info`` from *every* answer — simple-salesforce keeps it only for some calls
(facts A12, gotcha 9).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.core.probe import ApiBudget
from connectors.salesforce.config import SalesforceConnectionConfig

__all__ = [
    "BUDGET_WINDOW",
    "DEFAULT_TIMEOUT",
    "ResponseObserver",
    "Timeout",
    "TimeoutAdapter",
    "build_session",
    "parse_retry_after",
]

Timeout = float | tuple[float, float]

# Connect quickly or fail; reads may take a while (large query pages, describe of big objects).
DEFAULT_TIMEOUT: Timeout = (10.0, 120.0)

# Sforce-Limit-Info counts requests over a rolling 24 hours (facts A12).
BUDGET_WINDOW = "24h rolling"

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
_MAX_RETRY_AFTER = timedelta(hours=24)


class TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout when the caller gave none."""

    def __init__(self, timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` with the default timeout unless one was given."""
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date), clamped to 0..24 h."""
    if not value:
        return None
    value = value.strip()
    delay: timedelta
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delay = moment - (now or datetime.now(UTC))
    return min(max(delay, timedelta(0)), _MAX_RETRY_AFTER)


@dataclass(frozen=True)
class _Usage:
    used: int
    limit: int


class ResponseObserver:
    """A response hook: remembers the latest API usage and the caller's last ``Retry-After``.

    Usage is per org, so one value shared by threads is right; ``Retry-After`` belongs to the
    failing request, so it is kept per thread and taken once by the code that classifies it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: _Usage | None = None
        self._local = threading.local()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Hook entry point (``session.hooks["response"]``)."""
        header = response.headers.get("Sforce-Limit-Info")
        if header:
            match = _API_USAGE.search(header)
            if match:
                with self._lock:
                    self._usage = _Usage(int(match.group(1)), int(match.group(2)))
        if response.status_code >= 400:
            self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))

    def budget(self) -> ApiBudget:
        """The allocation as the latest ``Sforce-Limit-Info`` header reported it."""
        with self._lock:
            usage = self._usage
        if usage is None:
            return ApiBudget(used=None, limit=None, window=BUDGET_WINDOW)
        return ApiBudget(used=usage.used, limit=usage.limit, window=BUDGET_WINDOW)

    def take_retry_after(self) -> timedelta | None:
        """The ``Retry-After`` of this thread's last error answer, once."""
        value: timedelta | None = getattr(self._local, "retry_after", None)
        self._local.retry_after = None
        return value


def build_session(
    config: SalesforceConnectionConfig,
    *,
    session: requests.Session | None = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> requests.Session:
    """The session for ``config``: a new one, or ``session`` adjusted in place.

    With ``ca_bundle`` set, ``verify`` is that file and ``trust_env`` is off: otherwise
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` from the environment silently override
    ``session.verify`` (facts gotcha 2). Turning ``trust_env`` off also ignores proxy
    variables and ``.netrc`` for this connection — set ``session.proxies`` when a proxy is
    needed together with a private CA. A session passed in keeps its adapters (tests may mount
    their own); a new one gets :class:`TimeoutAdapter`.
    """
    if session is None:
        session = requests.Session()
        adapter = TimeoutAdapter(timeout)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    if config.ca_bundle is not None:
        session.verify = str(config.ca_bundle)
        session.trust_env = False
    return session
