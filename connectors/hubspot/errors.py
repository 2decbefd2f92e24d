"""HubSpot failures, translated into stagelink's error tree by one classification table.

Every hubspot-api-client ``ApiException`` (each API package has its own classes, all with
``status``/``headers``/``body``) and every ``urllib3`` error raised while talking to HubSpot
goes through :func:`classify_http` or :func:`classify_transport`, called only from
``client.py``, so no vendor exception reaches the rest of stagelink::

    StagelinkError                          (connectors.core.errors)
    ├── ConfigurationError
    │   └── HubSpotConfigurationError       status / category / correlation_id attributes
    │       ├── AuthenticationError         401 (after a refresh), BAD_REFRESH_TOKEN, ...
    │       ├── MissingScopesError          403 MISSING_SCOPES; ``scopes`` names what to grant
    │       ├── UnknownPropertyError        400 PROPERTY_DOESNT_EXIST; ``property_names``
    │       └── TlsVerificationError        certificate not trusted: set ``ca_bundle``
    ├── TransientError
    │   ├── HubSpotTransientError           5xx, 423, timeouts, resets, malformed JSON
    │   │   ├── HubSpotConnectionError      refused, DNS, dropped connection
    │   │   └── RateLimitedError            429 TEN_SECONDLY_ROLLING / SECONDLY; ``policy``
    │   └── BudgetExhaustedError            429 DAILY; never retried in the call; ``retry_after``
    ├── RecordError
    │   └── HubSpotRecordError              404 on one record, 409, per-record 207 errors; ``ids``
    └── FatalError
        └── HubSpotFatalError               any other 4xx: a bug in the request we built

HubSpot's 400 and 429 arrive as a plain ``ApiException`` with a raw-text body (facts, gotcha
5), so ``category``/``policyName``/``errors[].code`` are parsed here from the body.

Messages are for people: they name the action, HubSpot's category and message, and a hint.
They never contain credentials: every message built from server text passes through
:func:`redact` with the connection's secrets.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

import urllib3.exceptions

from connectors.core.errors import BudgetExhaustedError as CoreBudgetExhaustedError
from connectors.core.errors import (
    ConfigurationError,
    FatalError,
    RecordError,
    StagelinkError,
    TransientError,
)

__all__ = [
    "AuthenticationError",
    "BudgetExhaustedError",
    "Classified",
    "ErrorBody",
    "HubSpotConfigurationError",
    "HubSpotConnectionError",
    "HubSpotFatalError",
    "HubSpotRecordError",
    "HubSpotTransientError",
    "MissingScopesError",
    "Outcome",
    "RateLimitedError",
    "Scope",
    "TlsVerificationError",
    "UnknownPropertyError",
    "classify_http",
    "classify_transport",
    "parse_retry_after",
    "record_errors",
    "redact",
    "seconds_to_utc_midnight",
]


# -- the error classes ---------------------------------------------------------------------


class _Details(StagelinkError):
    """What every HubSpot error carries besides its message (for logs and the probe)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category
        self.correlation_id = correlation_id


class HubSpotConfigurationError(_Details, ConfigurationError):
    """Credentials, scopes, configured names, base URL or TLS settings are wrong."""


class AuthenticationError(HubSpotConfigurationError):
    """HubSpot refused the token (401 after a refresh) or the OAuth refresh itself."""


class MissingScopesError(HubSpotConfigurationError):
    """403 MISSING_SCOPES: the app needs more scopes; ``scopes`` lists those HubSpot named."""

    def __init__(self, message: str, *, scopes: list[str], **details: Any) -> None:
        super().__init__(message, **details)
        self.scopes = scopes


class UnknownPropertyError(HubSpotConfigurationError):
    """A property named in the configuration does not exist in the portal."""

    def __init__(self, message: str, *, property_names: list[str], **details: Any) -> None:
        super().__init__(message, **details)
        self.property_names = property_names


class TlsVerificationError(HubSpotConfigurationError):
    """The server certificate is not trusted; ``ca_bundle`` must name the CA that signed it."""


class HubSpotTransientError(_Details, TransientError):
    """HubSpot or the network failed for now; the same read may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: timedelta | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class HubSpotConnectionError(HubSpotTransientError):
    """No HTTP answer at all: refused, unresolvable, timed out or cut mid-response."""


class RateLimitedError(HubSpotTransientError):
    """429 for the ten-second (``TEN_SECONDLY_ROLLING``) or search (``SECONDLY``) limit."""

    def __init__(self, message: str, *, policy: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.policy = policy


class BudgetExhaustedError(_Details, CoreBudgetExhaustedError):
    """429 DAILY: the portal's daily allowance is spent; come back after ``retry_after``.

    A retry within the call cannot cure it, so the retry policy never repeats it.
    """

    def __init__(self, message: str, *, retry_after: timedelta, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class HubSpotRecordError(_Details, RecordError):
    """One record (or a few, in a batch) failed; ``ids`` names them when HubSpot did."""

    def __init__(self, message: str, *, ids: list[str] | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.ids = ids or []


class HubSpotFatalError(_Details, FatalError):
    """An answer stagelink does not expect (usually a request we built wrongly)."""


# -- secrets -----------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (tokens must never reach a message)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# -- the body HubSpot sent -------------------------------------------------------------------


_EMBEDDED_CODE = re.compile(r'"error"\s*:\s*"([A-Z_]+)"')
_EMBEDDED_NAME = re.compile(r'"name"\s*:\s*"([A-Za-z0-9_]+)"')
_QUOTED_PROPERTY = re.compile(r"""[Pp]roperty\s+['"]?([a-z][a-z0-9_]*)['"]?\s+does not exist""")


@dataclass(frozen=True)
class ErrorBody:
    """The parts of a HubSpot error body (CRM v3, 429 and OAuth v1 shapes) we classify on."""

    message: str = ""
    category: str | None = None
    sub_category: str | None = None
    policy: str | None = None  # 429 ``policyName``
    oauth_status: str | None = None  # OAuth v1 puts its code in ``status``: BAD_REFRESH_TOKEN
    correlation_id: str | None = None
    codes: frozenset[str] = frozenset()  # every code-like value found anywhere in the body
    scopes: tuple[str, ...] = ()
    property_names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: bytes | str | None) -> ErrorBody:
        """Parse a raw error body; text that is not JSON becomes the message."""
        if raw is None:
            return cls()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            data = json.loads(text)
        except ValueError:
            return cls(message=text.strip()[:300])
        if not isinstance(data, dict):
            return cls(message=text.strip()[:300])
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorBody:
        """Read an already-decoded error object (also each entry of a batch's ``errors``)."""
        message = str(data.get("message") or "")
        status = data.get("status")
        oauth_status = status if isinstance(status, str) and status.isupper() else None
        category = _str_or_none(data.get("category"))
        sub_category = _str_or_none(data.get("subCategory"))
        policy = _str_or_none(data.get("policyName"))
        codes = {c for c in (category, sub_category, policy, oauth_status) if c}
        codes.update(_EMBEDDED_CODE.findall(message))
        scopes: list[str] = []
        names: list[str] = []
        ids: list[str] = []
        contexts: list[Any] = [data.get("context")]
        for item in data.get("errors") or []:
            if isinstance(item, dict):
                codes.update(
                    c
                    for c in (_str_or_none(item.get("code")), _str_or_none(item.get("subCategory")))
                    if c
                )
                contexts.append(item.get("context"))
        for context in contexts:
            if not isinstance(context, dict):
                continue
            for key in ("requiredGranularScopes", "requiredScopes"):
                scopes.extend(str(s) for s in context.get(key) or [])
            names.extend(str(n) for n in context.get("propertyName") or [])
            for key in ("ids", "id", "fromObjectId"):
                ids.extend(str(i) for i in context.get(key) or [])
        if "PROPERTY_DOESNT_EXIST" in codes:
            names.extend(_EMBEDDED_NAME.findall(message))
        names.extend(_QUOTED_PROPERTY.findall(message))
        return cls(
            message=message,
            category=category,
            sub_category=sub_category,
            policy=policy,
            oauth_status=oauth_status,
            correlation_id=_str_or_none(data.get("correlationId")),
            codes=frozenset(codes),
            scopes=tuple(dict.fromkeys(scopes)),
            property_names=tuple(dict.fromkeys(names)),
            ids=tuple(dict.fromkeys(ids)),
        )

    @property
    def mentions_missing_property(self) -> bool:
        """HubSpot said a property does not exist (as a code, or in a search filter message)."""
        return "PROPERTY_DOESNT_EXIST" in self.codes or bool(
            self.property_names and "does not exist" in self.message
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- the classification table ---------------------------------------------------------------


class Outcome(Enum):
    """What the caller should do about one HTTP answer."""

    RETRY = "retry"  # transient: back off and try again
    RATE_LIMITED = "rate_limited"  # 429 ten-second/secondly: wait for the window, then retry
    BUDGET = "budget"  # 429 DAILY: stop until the budget resets
    REFRESH = "refresh"  # 401 EXPIRED_AUTHENTICATION: refresh the OAuth token once, retry
    AUTH = "auth"  # credentials refused
    MISSING_SCOPES = "missing_scopes"
    FORBIDDEN = "forbidden"  # 403 for another reason (portal or app setting)
    UNKNOWN_PROPERTY = "unknown_property"
    NOT_FOUND = "not_found"  # a collection endpoint answered 404: wrong base_url or type
    RECORD = "record"  # this one record is the problem
    FATAL = "fatal"


class Scope(Enum):
    """What the request addressed: 404/409 mean different things for each."""

    COLLECTION = "collection"  # list, search, pipelines, owners, properties
    RECORD = "record"  # one object by id, or a write of one object


_ANY = None
_OAUTH_REFUSALS = frozenset(
    {
        "BAD_REFRESH_TOKEN",
        "BAD_CLIENT_ID",
        "BAD_CLIENT_SECRET",
        "BAD_GRANT_TYPE",
        "BAD_AUTH_CODE",
        "BAD_REDIRECT_URI",
        "INVALID_AUTHENTICATION",
    }
)


@dataclass(frozen=True)
class HttpRule:
    """One row: an HTTP status (set), optional code and scope, and the outcome. First match wins."""

    statuses: frozenset[int]
    outcome: Outcome
    codes: frozenset[str] | None = _ANY  # any of these in ErrorBody.codes
    scope: Scope | None = _ANY
    missing_property: bool | None = _ANY
    wait_seconds: float | None = None  # default wait when the server gives none
    hint: str = ""


_5XX = frozenset(range(500, 600))
_4XX = frozenset(range(400, 500))

HTTP_RULES: tuple[HttpRule, ...] = (
    HttpRule(
        frozenset({429}),
        Outcome.BUDGET,
        codes=frozenset({"DAILY"}),
        hint="the portal's daily API allowance is spent",
    ),
    HttpRule(
        frozenset({429}), Outcome.RATE_LIMITED, codes=frozenset({"SECONDLY"}), wait_seconds=1.0
    ),
    HttpRule(frozenset({429}), Outcome.RATE_LIMITED, wait_seconds=10.0),
    HttpRule(frozenset({401}), Outcome.REFRESH, codes=frozenset({"EXPIRED_AUTHENTICATION"})),
    HttpRule(
        frozenset({401}),
        Outcome.AUTH,
        hint="check the private-app token or the OAuth app credentials",
    ),
    HttpRule(frozenset({403}), Outcome.MISSING_SCOPES, codes=frozenset({"MISSING_SCOPES"})),
    HttpRule(
        frozenset({403}), Outcome.FORBIDDEN, hint="the app is not allowed to do this in the portal"
    ),
    HttpRule(
        frozenset({400}),
        Outcome.AUTH,
        codes=_OAUTH_REFUSALS,
        hint="re-authorise the HubSpot app and update auth.refresh_token/client_secret",
    ),
    HttpRule(
        frozenset({400}),
        Outcome.UNKNOWN_PROPERTY,
        missing_property=True,
        hint="fix the property name in the configuration or create it in HubSpot",
    ),
    HttpRule(
        frozenset({404}), Outcome.RECORD, codes=frozenset({"OBJECT_NOT_FOUND"}), scope=Scope.RECORD
    ),
    HttpRule(
        frozenset({404}),
        Outcome.NOT_FOUND,
        hint="check base_url: HubSpot does not serve this path there",
    ),
    HttpRule(frozenset({409}), Outcome.RECORD, scope=Scope.RECORD),
    HttpRule(frozenset({400}), Outcome.RECORD, scope=Scope.RECORD),
    # 423 Locked: HubSpot asks to retry after about two seconds (facts B2, unconfirmed).
    HttpRule(frozenset({423}), Outcome.RETRY, wait_seconds=2.0),
    HttpRule(frozenset({408}) | _5XX, Outcome.RETRY),
    HttpRule(_4XX, Outcome.FATAL),
)


def _rule_for(status: int, body: ErrorBody, scope: Scope) -> HttpRule:
    for rule in HTTP_RULES:
        if status not in rule.statuses:
            continue
        if rule.codes is not None and not (rule.codes & body.codes):
            continue
        if rule.scope is not None and rule.scope is not scope:
            continue
        if (
            rule.missing_property is not None
            and rule.missing_property != body.mentions_missing_property
        ):
            continue
        return rule
    # Informational or redirect statuses: the library only raises for non-2xx; treat as a bug.
    return HttpRule(frozenset({status}), Outcome.FATAL)


@dataclass(frozen=True)
class Classified:
    """An HTTP failure after classification: what to do, and the exception to raise."""

    outcome: Outcome
    error: StagelinkError
    body: ErrorBody = field(default_factory=ErrorBody)


def classify_http(
    *,
    action: str,
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str | None,
    scope: Scope = Scope.COLLECTION,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> Classified:
    """Classify one non-2xx answer from HubSpot into an outcome and a stagelink error.

    ``action`` says what we were doing (``"list deals"``); ``secrets`` are scrubbed from
    every message. ``now`` (UTC) is only for the daily reset time of a 429 DAILY.
    """
    parsed = ErrorBody.parse(body)
    header_map = {k.lower(): v for k, v in (headers or {}).items()}
    rule = _rule_for(status, parsed, scope)
    correlation = parsed.correlation_id or header_map.get("x-hubspot-correlation-id")
    what = parsed.category or parsed.policy or parsed.oauth_status or f"HTTP {status}"
    said = f": {parsed.message}" if parsed.message else ""
    hint = f" ({rule.hint})" if rule.hint else ""
    message = redact(f"HubSpot {action} failed with {what}{said}{hint}", secrets)
    details: dict[str, Any] = {
        "status": status,
        "category": parsed.category or parsed.policy or parsed.oauth_status,
        "correlation_id": correlation,
    }
    error: StagelinkError
    outcome = rule.outcome
    if outcome is Outcome.BUDGET:
        retry_after = parse_retry_after(header_map.get("retry-after"), now=now)
        if retry_after is None:
            # The daily count resets at midnight in the portal's time zone (unconfirmed, facts
            # B8); without Retry-After, come back at the next UTC midnight.
            retry_after = timedelta(seconds=seconds_to_utc_midnight(now))
        error = BudgetExhaustedError(message, retry_after=retry_after, **details)
    elif outcome is Outcome.RATE_LIMITED:
        retry_after = parse_retry_after(header_map.get("retry-after"), now=now)
        error = RateLimitedError(
            message,
            policy=parsed.policy or "TEN_SECONDLY_ROLLING",
            retry_after=retry_after,
            **details,
        )
    elif outcome is Outcome.RETRY:
        retry_after = parse_retry_after(header_map.get("retry-after"), now=now)
        if retry_after is None and rule.wait_seconds is not None:
            retry_after = timedelta(seconds=rule.wait_seconds)
        error = HubSpotTransientError(message, retry_after=retry_after, **details)
    elif outcome in (Outcome.REFRESH, Outcome.AUTH):
        error = AuthenticationError(message, **details)
    elif outcome is Outcome.MISSING_SCOPES:
        scopes = list(parsed.scopes)
        named = ", ".join(scopes) if scopes else "a scope HubSpot did not name"
        error = MissingScopesError(
            redact(f"HubSpot {action} needs the scope {named}: grant it to the app", secrets),
            scopes=scopes,
            **details,
        )
    elif outcome is Outcome.UNKNOWN_PROPERTY:
        error = UnknownPropertyError(message, property_names=list(parsed.property_names), **details)
    elif outcome in (Outcome.FORBIDDEN, Outcome.NOT_FOUND):
        error = HubSpotConfigurationError(message, **details)
    elif outcome is Outcome.RECORD:
        error = HubSpotRecordError(message, ids=list(parsed.ids), **details)
    else:
        error = HubSpotFatalError(message, **details)
    return Classified(outcome, error, parsed)


def record_errors(body: Mapping[str, Any], *, action: str) -> list[HubSpotRecordError]:
    """The per-record failures of a batch answer (HTTP 207 ``errors``), one error each."""
    found: list[HubSpotRecordError] = []
    for item in body.get("errors") or []:
        if not isinstance(item, dict):
            continue
        parsed = ErrorBody.from_json(item)
        what = parsed.category or "error"
        found.append(
            HubSpotRecordError(
                f"HubSpot {action}: {what} for {', '.join(parsed.ids) or 'some inputs'}: "
                f"{parsed.message}",
                ids=list(parsed.ids),
                status=207,
                category=parsed.category,
            )
        )
    return found


# -- transport failures ----------------------------------------------------------------------


@dataclass(frozen=True)
class TransportRule:
    """An exception type (matched along its MRO) and what it means."""

    exception: type[BaseException]
    outcome: Outcome
    describe: str


# Most specific first: NewConnectionError is a ConnectTimeoutError in urllib3 2.x.
TRANSPORT_RULES: tuple[TransportRule, ...] = (
    TransportRule(urllib3.exceptions.NameResolutionError, Outcome.RETRY, "cannot resolve the host"),
    TransportRule(urllib3.exceptions.NewConnectionError, Outcome.RETRY, "cannot connect"),
    TransportRule(urllib3.exceptions.ConnectTimeoutError, Outcome.RETRY, "connect timed out"),
    TransportRule(urllib3.exceptions.ReadTimeoutError, Outcome.RETRY, "no answer in time"),
    TransportRule(urllib3.exceptions.SSLError, Outcome.RETRY, "TLS handshake failed"),
    TransportRule(urllib3.exceptions.ProtocolError, Outcome.RETRY, "connection dropped"),
    TransportRule(urllib3.exceptions.DecodeError, Outcome.RETRY, "garbled response"),
    TransportRule(urllib3.exceptions.LocationValueError, Outcome.FATAL, "bad URL"),
    TransportRule(urllib3.exceptions.HTTPError, Outcome.RETRY, "HTTP transport error"),
    TransportRule(ConnectionError, Outcome.RETRY, "connection failed"),
    TransportRule(TimeoutError, Outcome.RETRY, "timed out"),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (``MaxRetryError.reason`` included)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([current.__cause__, current.__context__])
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            pending.append(current.reason)


def _refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) for e in _causes(exc))


def _is_certificate_problem(exc: BaseException) -> bool:
    return any(
        isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)
        for e in _causes(exc)
    )


def classify_transport(exc: BaseException, *, action: str, endpoint: str) -> StagelinkError:
    """Translate a urllib3/socket failure. ``endpoint`` is scheme+host+port only (never a
    path: the OAuth introspection path carries the access token)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if _is_certificate_problem(exc):
        return TlsVerificationError(
            f"HubSpot {action}: the certificate of {endpoint} is not trusted "
            "(set ca_bundle to the CA that signed it)"
        )
    for rule in TRANSPORT_RULES:
        if isinstance(exc, rule.exception):
            describe = "connection refused" if _refused(exc) else rule.describe
            text = f"HubSpot {action}: {describe} ({endpoint}, {type(exc).__name__})"
            if rule.outcome is Outcome.FATAL:
                return HubSpotFatalError(text)
            return HubSpotConnectionError(text)
    return HubSpotFatalError(f"HubSpot {action}: unexpected {type(exc).__name__} ({endpoint})")


# -- waits ---------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; ``None`` when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(timedelta(0), when - current)


def seconds_to_utc_midnight(now: datetime | None = None) -> float:
    """Seconds until the next midnight UTC (at least one)."""
    current = now or datetime.now(UTC)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - current).total_seconds())
