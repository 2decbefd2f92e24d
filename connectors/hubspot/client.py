"""The only place hubspot-api-client is used: requests, pacing, retries and translation.

:class:`HubSpotClient` drives the real library (``hubspot.HubSpot(host=base_url, ...)``) and
adds what it lacks:

* the Bearer token per request (``_request_auth``), so an OAuth refresh takes effect at once
  and is thread-safe (see ``auth.py``);
* raw answers (``_preload_content=False``): the client sees every answer's rate-limit headers
  and parses the JSON itself into the typed shapes of ``wire.py`` — a truncated body is a
  transient error instead of a half-built model;
* pacing from the ``X-HubSpot-RateLimit-*`` headers and a separate 5 requests/second limiter
  for search (``ratelimit.py``);
* one retry policy for reads (``retry.py``); writes are never retried here;
* translation of every ``ApiException`` and urllib3 error through one table
  (``errors.py``): nothing from the vendor escapes this module.

The library's own urllib3 retries are switched off (``retry=False``) so there is exactly one
retry layer, the one that knows HubSpot's rate limits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import hubspot
import hubspot.crm.associations.v4.exceptions as associations_exceptions
import hubspot.crm.objects.exceptions as objects_exceptions
import hubspot.crm.owners.exceptions as owners_exceptions
import hubspot.crm.pipelines.exceptions as pipelines_exceptions
import hubspot.crm.properties.exceptions as properties_exceptions
import hubspot.oauth.exceptions as oauth_exceptions
import urllib3.exceptions

from connectors.core.errors import StagelinkError
from connectors.core.probe import ApiBudget
from connectors.core.telemetry import report_response
from connectors.hubspot.auth import OAuthTokens, StaticToken, TokenSource
from connectors.hubspot.config import HubSpotConnectionConfig, OAuthLogin
from connectors.hubspot.errors import (
    Classified,
    HubSpotFatalError,
    HubSpotTransientError,
    Outcome,
    RateLimitedError,
    Scope,
    classify_http,
    classify_transport,
    record_errors,
    redact,
)
from connectors.hubspot.ratelimit import (
    Clock,
    RateHeaders,
    Sleep,
    SlidingWindowLimiter,
    budgets_from,
)
from connectors.hubspot.retry import DEFAULT_RETRY, RetryPolicy
from connectors.hubspot.wire import (
    AssociatedId,
    BatchRead,
    CrmObject,
    Owner,
    Page,
    Pipeline,
    PropertyInfo,
    SearchPage,
    TokenGrant,
    TokenInfo,
    associations_from_v4,
    paging_after,
)

__all__ = ["SEARCH_REQUESTS_PER_SECOND", "HubSpotClient", "Timeouts"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Search endpoints allow 5 requests per second per account and send no rate headers
# (https://developers.hubspot.com/docs/api/crm/search#limitations; facts B3).
SEARCH_REQUESTS_PER_SECOND = 5
LIST_LIMIT_MAX = 100  # objects per list page (facts B2)
BATCH_MAX = 100  # inputs per batch request (facts B2)
OWNERS_PAGE = 500  # owners per page
# v4 association batch reads take up to 1,000 inputs (HubSpot changelog, Feb 2025; facts B5).
ASSOCIATION_BATCH_MAX = 1_000
_NONE = "OBJECT_NOT_FOUND"  # what a v4 association read says for an id without associations

# Each API package raises its own exception classes (facts B1); they share attributes only.
_API_EXCEPTIONS: tuple[type[Exception], ...] = (
    associations_exceptions.ApiException,
    objects_exceptions.ApiException,
    owners_exceptions.ApiException,
    pipelines_exceptions.ApiException,
    properties_exceptions.ApiException,
    oauth_exceptions.ApiException,
)
# Client-side validation errors of the generated code: always a bug in our call.
_CLIENT_SIDE_ERRORS: tuple[type[Exception], ...] = (
    associations_exceptions.OpenApiException,
    objects_exceptions.OpenApiException,
    owners_exceptions.OpenApiException,
    pipelines_exceptions.OpenApiException,
    properties_exceptions.OpenApiException,
    oauth_exceptions.OpenApiException,
)
# A refused connection never reached HubSpot: it does not count against the rate limit.
_NOT_SENT = urllib3.exceptions.ConnectTimeoutError


@dataclass(frozen=True)
class Timeouts:
    """Socket timeouts in seconds: establishing the connection, and waiting for the answer."""

    connect: float = 10.0
    read: float = 60.0


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    headers: dict[str, str]


class HubSpotClient:
    """A HubSpot portal, through hubspot-api-client, with pacing, retries and typed answers.

    Thread-safe: the token holder and both limiters lock; the library's API objects are built
    once and share nothing mutable per request. Use as a context manager or call
    :meth:`close` to release the connection pools.
    """

    def __init__(
        self,
        config: HubSpotConnectionConfig,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = Timeouts(),
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        pacer: SlidingWindowLimiter | None = None,
        search_limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        self.config = config
        self._retry = retry
        self._timeouts = timeouts
        self._sleep = sleep
        parts = urlsplit(config.base_url)
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        # The ten-second limit is learned from the first answer's headers.
        self.pacer = pacer or SlidingWindowLimiter(
            limit=None, interval=10.0, clock=clock, sleep=sleep
        )
        self.search_limiter = search_limiter or SlidingWindowLimiter(
            limit=SEARCH_REQUESTS_PER_SECOND, interval=1.0, clock=clock, sleep=sleep
        )
        options: dict[str, Any] = {"host": config.base_url, "retry": False}
        if config.ca_bundle is not None:
            # The library uses urllib3 directly and ignores REQUESTS_CA_BUNDLE (gotcha 1).
            options["ssl_ca_cert"] = str(config.ca_bundle)
        login = config.auth
        tokens: TokenSource
        if isinstance(login, OAuthLogin):
            self._hub = hubspot.HubSpot(**options)
            tokens = OAuthTokens(
                login.refresh_token.reveal(),
                self._exchange_refresh_token,
                client_secret=login.client_secret.reveal(),
                clock=clock,
            )
        else:
            self._hub = hubspot.HubSpot(access_token=login.token.reveal(), **options)
            tokens = StaticToken(login.token.reveal())
        self.tokens = tokens
        # Every ``client.crm.x.y_api`` access builds a new ApiClient and connection pool;
        # build each once so connections are reused.
        crm = self._hub.crm
        self._objects_api = crm.objects.basic_api
        self._batch_api = crm.objects.batch_api
        self._search_api = crm.objects.search_api
        self._pipelines_api = crm.pipelines.pipelines_api
        self._owners_api = crm.owners.owners_api
        self._properties_api = crm.properties.core_api
        self._associations_api = crm.associations.v4.batch_api
        self._tokens_api = self._hub.oauth.tokens_api
        self._access_tokens_api = self._hub.oauth.access_tokens_api
        self._sent = 0
        self._sent_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection pool."""
        for api in (
            self._objects_api,
            self._batch_api,
            self._search_api,
            self._pipelines_api,
            self._owners_api,
            self._properties_api,
            self._associations_api,
            self._tokens_api,
            self._access_tokens_api,
        ):
            api.api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """Requests that reached HubSpot so far (retries and 429s included)."""
        with self._sent_lock:
            return self._sent

    # -- typed helpers ---------------------------------------------------------------------

    def get_page(
        self,
        object_type: str,
        *,
        properties: Sequence[str] = (),
        after: str | None = None,
        limit: int = LIST_LIMIT_MAX,
        archived: bool = False,
        associations: Sequence[str] = (),
    ) -> Page:
        """One page of ``GET /crm/v3/objects/{object_type}`` (``limit`` ≤ 100).

        ``after`` is the opaque cursor from the previous page's ``next_after``; ``archived``
        lists only archived (deleted) objects. Empty ``properties`` means HubSpot's defaults.
        ``associations`` (e.g. ``["companies"]``) adds each object's associated ids.
        """
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {LIST_LIMIT_MAX}")
        return self._read(
            f"list of {object_type}",
            lambda kw: self._objects_api.get_page(
                object_type,
                limit=limit,
                after=after,
                properties=list(properties) or None,
                associations=list(associations) or None,
                archived=archived,
                **kw,
            ),
            Page.from_json,
        )

    def associations(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> dict[str, list[AssociatedId]]:
        """Associated ``to_type`` records of each id: ``POST /crm/v4/associations/{from}/{to}/
        batch/read`` (up to 1,000 ids), following per-id paging. Ids with none are absent."""
        if not 1 <= len(ids) <= ASSOCIATION_BATCH_MAX:
            raise ValueError(f"between 1 and {ASSOCIATION_BATCH_MAX} ids per association read")
        action = f"association read of {from_type} to {to_type}"
        found: dict[str, list[AssociatedId]] = {}
        inputs: list[dict[str, str]] = [{"id": str(i)} for i in dict.fromkeys(ids)]

        def request(body: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
            return lambda kw: self._associations_api.get_page(from_type, to_type, body, **kw)

        def parse(data: Any) -> tuple[dict[str, list[AssociatedId]], dict[str, str]]:
            # A 207 names the ids without associations (OBJECT_NOT_FOUND, facts B5); any
            # other per-input failure would silently drop a link, so the read is repeated.
            failed = [e for e in record_errors(data, action=action) if e.category != _NONE]
            if failed:
                raise HubSpotTransientError(str(failed[0]), status=207)
            return associations_from_v4(data)

        while inputs:
            page, more = self._read(action, request({"inputs": inputs}), parse)
            for source, targets in page.items():
                found.setdefault(source, []).extend(targets)
            # Only the ids with more targets go again, each from its own cursor.
            inputs = [{"id": source, "after": after} for source, after in more.items()]
        return found

    def search(self, object_type: str, request_body: Mapping[str, Any]) -> SearchPage:
        """``POST /crm/v3/objects/{type}/search``; unpacks as ``(results, total, next_after)``.

        Paced to 5 requests/second. The caller owns the 10,000-result window (facts B3).
        """
        body = dict(request_body)
        return self._read(
            f"search of {object_type}",
            lambda kw: self._search_api.do_search(object_type, body, **kw),
            SearchPage.from_json,
            limiter=self.search_limiter,
        )

    def batch_read(
        self,
        object_type: str,
        ids: Sequence[str],
        *,
        properties: Sequence[str] = (),
        id_property: str | None = None,
    ) -> BatchRead:
        """``POST …/batch/read`` for up to 100 ids; ids HubSpot did not find come back as
        :class:`~connectors.hubspot.errors.HubSpotRecordError` in ``errors`` (HTTP 207)."""
        if not 1 <= len(ids) <= BATCH_MAX:
            raise ValueError(f"between 1 and {BATCH_MAX} ids per batch read")
        request: dict[str, Any] = {
            "inputs": [{"id": str(i)} for i in ids],
            "properties": list(properties),
            "propertiesWithHistory": [],
        }
        if id_property:
            request["idProperty"] = id_property
        action = f"batch read of {object_type}"

        def parse(data: Any) -> BatchRead:
            results = [CrmObject.from_json(r) for r in data.get("results") or []]
            return BatchRead(results, record_errors(data, action=action))

        return self._read(
            action,
            lambda kw: self._batch_api.read(object_type, request, archived=False, **kw),
            parse,
        )

    def batch_create(self, object_type: str, inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST …/batch/create`` for up to 100 inputs; the answer's JSON (201, or 207 with
        per-input ``errors``). A write: sent once, never retried here (write-back repeats
        it after looking up what the lost attempt wrote)."""
        if not 1 <= len(inputs) <= BATCH_MAX:
            raise ValueError(f"between 1 and {BATCH_MAX} inputs per batch create")
        body = {"inputs": [dict(item) for item in inputs]}

        def parse(data: Any) -> dict[str, Any]:
            if not isinstance(data, dict):
                raise TypeError("expected a JSON object")
            return data

        return self._write(
            f"batch create of {object_type}",
            lambda kw: self._batch_api.create(object_type, body, **kw),
            parse,
        )

    def pipelines(self, object_type: str = "deals") -> list[Pipeline]:
        """Every pipeline of ``object_type`` with its stages (``GET /crm/v3/pipelines/{type}``)."""
        return self._read(
            f"pipelines of {object_type}",
            lambda kw: self._pipelines_api.get_all(object_type, **kw),
            lambda data: [Pipeline.from_json(p) for p in data["results"]],
        )

    def owners(self, *, archived: bool = False, max_pages: int | None = None) -> list[Owner]:
        """Every owner (``GET /crm/v3/owners``), following pages; ``max_pages`` stops early."""
        owners: list[Owner] = []
        after: str | None = None
        pages = 0

        def parse(data: Any) -> tuple[list[Owner], str | None]:
            return [Owner.from_json(o) for o in data["results"]], paging_after(data)

        def request(cursor: str | None) -> Callable[[dict[str, Any]], Any]:
            return lambda kw: self._owners_api.get_page(
                limit=OWNERS_PAGE, after=cursor, archived=archived, **kw
            )

        while True:
            found, after = self._read("list of owners", request(after), parse)
            owners.extend(found)
            pages += 1
            if after is None or (max_pages is not None and pages >= max_pages):
                return owners

    def properties(self, object_type: str) -> list[PropertyInfo]:
        """Every property definition of ``object_type`` (``GET /crm/v3/properties/{type}``)."""
        return self._read(
            f"properties of {object_type}",
            lambda kw: self._properties_api.get_all(object_type, archived=False, **kw),
            lambda data: [PropertyInfo.from_json(p) for p in data["results"]],
        )

    def token_info(self) -> TokenInfo | None:
        """Portal, app and scopes of the OAuth access token; ``None`` for a private app
        (HubSpot offers no introspection for those)."""
        if not isinstance(self.tokens, OAuthTokens):
            return None
        tokens = self.tokens
        return self._read(
            "OAuth token lookup",
            lambda kw: self._access_tokens_api.get(tokens.current(), **kw),
            TokenInfo.from_json,
            limiter=None,
            auth=False,
        )

    def api_budget(self) -> list[ApiBudget]:
        """Daily and ten-second budgets from the latest rate-limit headers (empty before the
        first answer that carried them)."""
        return budgets_from(self.pacer.last_headers)

    # -- the request pipeline --------------------------------------------------------------

    def _read(
        self,
        action: str,
        request: Callable[[dict[str, Any]], Any],
        parse: Callable[[Any], T],
        *,
        limiter: SlidingWindowLimiter | bool | None = True,
        scope: Scope = Scope.COLLECTION,
        auth: bool = True,
    ) -> T:
        """An idempotent call, parsed inside the retry loop (a cut body is retried too)."""
        chosen = self.pacer if limiter is True else (limiter or None)

        def once() -> T:
            answer = self._attempt(action, request, limiter=chosen, scope=scope, auth=auth)
            return self._parse(answer, parse, action)

        return self._retry.call(once, sleep=self._sleep)

    def _write(
        self,
        action: str,
        request: Callable[[dict[str, Any]], Any],
        parse: Callable[[Any], T],
        *,
        scope: Scope = Scope.RECORD,
    ) -> T:
        """A call that changes data: sent once (after at most one token refresh), never
        retried here — write-back repeats it with an idempotency key."""
        answer = self._attempt(action, request, limiter=self.pacer, scope=scope, auth=True)
        return self._parse(answer, parse, action)

    def _attempt(
        self,
        action: str,
        request: Callable[[dict[str, Any]], Any],
        *,
        limiter: SlidingWindowLimiter | None,
        scope: Scope,
        auth: bool,
    ) -> _Answer:
        token = self.tokens.current() if auth else None
        for refreshed in (False, True):
            outcome = self._send(action, request, token=token, limiter=limiter, scope=scope)
            if isinstance(outcome, _Answer):
                return outcome
            if outcome.outcome is Outcome.REFRESH and not refreshed and token is not None:
                # HubSpot said expired before we expected: refresh once and resend.
                replacement = self.tokens.after_expired(token)
                if replacement is not None:
                    log.info("hubspot: access token expired early; refreshed (%s)", action)
                    token = replacement
                    continue
            raise outcome.error
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        action: str,
        request: Callable[[dict[str, Any]], Any],
        *,
        token: str | None,
        limiter: SlidingWindowLimiter | None,
        scope: Scope,
    ) -> _Answer | Classified:
        """Send once; an ``_Answer`` on 2xx, else the classification (never a vendor error)."""
        kwargs: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": (self._timeouts.connect, self._timeouts.read),
        }
        if token is not None:
            kwargs["_request_auth"] = {
                "in": "header",
                "key": "Authorization",
                "value": f"Bearer {token}",
                "type": "oauth2",
            }
        with self._paced(limiter) as track:
            try:
                response = request(kwargs)
                track.sent = True
                track.status = int(response.status)
                track.headers = {str(k): str(v) for k, v in response.headers.items()}
                data = response.data
                response.release_conn()
            except _API_EXCEPTIONS as exc:
                return self._classify_api_exception(exc, action, scope, limiter, track)
            except AttributeError as exc:
                # hubspot-api-client 12.0 turns urllib3's SSLError into ApiException(status=0,
                # body=None), then crashes decoding that body: the ApiException is the context.
                flattened = exc.__context__
                if isinstance(flattened, _API_EXCEPTIONS) and not getattr(flattened, "status", 0):
                    raise self._flattened_transport_error(flattened, action) from None
                raise
            except _CLIENT_SIDE_ERRORS as exc:
                raise HubSpotFatalError(
                    f"HubSpot {action}: the request was rejected by the client library "
                    f"({type(exc).__name__})"
                ) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                track.sent = not _never_sent(exc)
                raise classify_transport(exc, action=action, endpoint=self.endpoint) from None
        return _Answer(int(response.status), data, track.headers)

    def _classify_api_exception(
        self,
        exc: Exception,
        action: str,
        scope: Scope,
        limiter: SlidingWindowLimiter | None,
        track: _Track,
    ) -> Classified:
        status = int(getattr(exc, "status", 0) or 0)
        if status == 0:
            raise self._flattened_transport_error(exc, action) from None
        track.sent = True
        track.status = status
        raw_headers = getattr(exc, "headers", None) or {}
        headers = {str(k): str(v) for k, v in dict(raw_headers).items()}
        explicit_wait = status == 429 and any(k.lower() == "retry-after" for k in headers)
        # A 429 that says how long to wait is obeyed as is; otherwise its rate headers
        # (Remaining: 0) let the pacer work out when the window frees up.
        track.headers = None if explicit_wait else headers
        classified = classify_http(
            action=action,
            status=status,
            headers=headers,
            body=getattr(exc, "body", None),
            scope=scope,
            secrets=self.tokens.secrets(),
        )
        if isinstance(classified.error, RateLimitedError) and limiter is not None:
            self._hold_after_429(classified.error, limiter, track)
        return classified

    def _flattened_transport_error(self, exc: Exception, action: str) -> StagelinkError:
        """An ``ApiException(status=0)``: the library's wrapping of a urllib3 ``SSLError``, or
        its refusal to build a request (a bug of ours)."""
        reason = str(getattr(exc, "reason", "") or "")
        if not reason.startswith("SSLError"):
            return HubSpotFatalError(f"HubSpot {action}: the client library refused the request")
        return classify_transport(
            _LibraryTransportError(reason), action=action, endpoint=self.endpoint
        )

    def _hold_after_429(
        self, error: RateLimitedError, limiter: SlidingWindowLimiter, track: _Track
    ) -> None:
        """Make every caller of this limiter wait out the 429, and tell the retry policy how
        long: ``Retry-After`` if sent, else what the headers imply, else a whole interval."""
        if error.retry_after is None:
            # Release first so the limiter has seen the 429's headers (Remaining: 0).
            track.release_now()
            implied = limiter.delay()
            fallback = 1.0 if error.policy == "SECONDLY" else limiter.interval
            error.retry_after = timedelta(seconds=implied if implied > 0 else fallback)
        limiter.block_for(error.retry_after.total_seconds())
        log.warning("hubspot: 429 %s; holding requests for %s", error.policy, error.retry_after)

    @contextmanager
    def _paced(self, limiter: SlidingWindowLimiter | None) -> Iterator[_Track]:
        track = _Track(limiter)
        if limiter is not None:
            limiter.acquire()
        try:
            yield track
        finally:
            if track.sent:
                with self._sent_lock:
                    self._sent += 1
                report_response(
                    self.config.name, track.status or 0, rate_limited=track.status == 429
                )
            track.release_now()

    def _parse(self, answer: _Answer, parse: Callable[[Any], T], action: str) -> T:
        try:
            text = answer.body.decode("utf-8") if isinstance(answer.body, bytes) else answer.body
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError, TypeError):
            # A cut or garbled body (a proxy, a dropped connection): the same read may work.
            raise HubSpotTransientError(
                f"HubSpot {action}: the answer was not valid JSON (HTTP {answer.status})",
                status=answer.status,
            ) from None
        try:
            return parse(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HubSpotFatalError(
                redact(f"HubSpot {action}: unexpected answer shape ({exc})", self.tokens.secrets()),
                status=answer.status,
            ) from None

    # -- OAuth -----------------------------------------------------------------------------

    def _exchange_refresh_token(self, refresh_token: str) -> TokenGrant:
        """``POST /oauth/v1/token`` with the refresh-token grant (form-encoded, facts B1)."""
        login = self.config.auth
        assert isinstance(login, OAuthLogin)
        action = "OAuth token refresh"
        outcome = self._send(
            action,
            lambda kw: self._tokens_api.create(
                grant_type="refresh_token",
                client_id=login.client_id,
                client_secret=login.client_secret.reveal(),
                refresh_token=refresh_token,
                **kw,
            ),
            token=None,
            limiter=None,
            scope=Scope.COLLECTION,
        )
        if not isinstance(outcome, _Answer):
            raise outcome.error
        return self._parse(outcome, TokenGrant.from_json, action)


class _Track:
    """Bookkeeping of one paced request: was it sent, which headers came back."""

    def __init__(self, limiter: SlidingWindowLimiter | None) -> None:
        self.limiter = limiter
        self.sent = False
        self.status: int | None = None  # None: sent, but no HTTP answer (dropped)
        self.headers: dict[str, str] | None = None
        self._released = limiter is None

    def release_now(self) -> None:
        if self._released or self.limiter is None:
            return
        self._released = True
        self.limiter.release(sent=self.sent, headers=RateHeaders.parse(self.headers))


class _LibraryTransportError(urllib3.exceptions.HTTPError):
    """Stands in for the urllib3 error the library flattened into ``ApiException(status=0)``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached HubSpot (so it used no rate-limit slot)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return isinstance(exc, _NOT_SENT | ConnectionRefusedError)
