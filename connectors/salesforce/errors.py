"""Salesforce failures, translated into stagelink's error tree by one classification table.

Every simple-salesforce, ``requests`` or ``urllib3`` exception raised while talking to
Salesforce goes through :func:`classify` (called only from ``client.py`` and ``auth.py``), so
no vendor exception reaches the rest of stagelink::

    StagelinkError                          (connectors.core.errors)
    ├── ConfigurationError
    │   └── SalesforceConfigurationError    status / error_code / connection attributes
    │       ├── LoginFailedError            token or SOAP login refused (bad credentials, app)
    │       ├── SessionExpiredError         401 INVALID_SESSION_ID; the client logs in again
    │       │   └── SessionKeepsExpiringError  ...and it still failed after the re-login ceiling
    │       ├── PermissionDeniedError       403 INSUFFICIENT_ACCESS, API disabled, ...
    │       ├── SchemaMismatchError         INVALID_FIELD / INVALID_TYPE from configured names
    │       └── TlsVerificationError        certificate not trusted: set ``ca_bundle``
    ├── TransientError
    │   └── SalesforceTransientError        5xx, timeouts, truncated or malformed JSON
    │       ├── SalesforceConnectionError   refused, DNS, dropped connection
    │       ├── BudgetExhaustedError        403 REQUEST_LIMIT_EXCEEDED (daily); ``retry_after``
    │       └── QueryCursorLostError        INVALID_QUERY_LOCATOR: run the query again
    ├── RecordError
    │   └── SalesforceRecordError           one record is bad (validation, 404, 300 on ext id)
    └── FatalError
        └── SalesforceFatalError            MALFORMED_QUERY and everything unexpected

REQUEST_LIMIT_EXCEEDED, decided: Salesforce uses the same 403 code for the rolling 24-hour
request allocation ("TotalRequests Limit exceeded.") and for the cap on concurrent
long-running requests (facts A12; the exact messages are unconfirmed). A message that
mentions concurrency is an ordinary transient error (retried in the call with backoff);
anything else is :class:`BudgetExhaustedError`, which the client never retries in the call:
the allocation is a rolling 24-hour window, so capacity returns only gradually and the
scheduler should come back after ``retry_after``.

Messages are for people: they name the connection, the action, Salesforce's error code and
message, and a hint. They never contain credentials (secrets are sent only in request bodies,
which no message quotes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceOperationError,
)

from connectors.core.errors import BudgetExhaustedError as CoreBudgetExhaustedError
from connectors.core.errors import (
    ConfigurationError,
    FatalError,
    RecordError,
    StagelinkError,
    TransientError,
)

__all__ = [
    "DAILY_LIMIT_RETRY_AFTER",
    "NOT_RETRIED_IN_CALL",
    "VENDOR_ERRORS",
    "BudgetExhaustedError",
    "LoginFailedError",
    "PermissionDeniedError",
    "QueryCursorLostError",
    "SalesforceConfigurationError",
    "SalesforceConnectionError",
    "SalesforceFatalError",
    "SalesforceRecordError",
    "SalesforceTransientError",
    "SchemaMismatchError",
    "SessionExpiredError",
    "SessionKeepsExpiringError",
    "TlsVerificationError",
    "classify",
]

# How long to wait before trying again once the daily allocation is spent. The window is a
# rolling 24 hours (https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm),
# so requests made a day ago drop out gradually: re-check hourly rather than wait a full day.
DAILY_LIMIT_RETRY_AFTER = timedelta(hours=1)


class _Details(StagelinkError):
    """What every Salesforce error carries besides its message.

    ``detail`` is the cause alone ("connection refused", "INVALID_FIELD — ..."), for callers
    that word their own sentence around it (the probe).
    """

    def __init__(
        self,
        message: str,
        *,
        connection: str = "",
        status: int | None = None,
        error_code: str | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection
        self.status = status
        self.error_code = error_code
        self.detail = detail or message


class SalesforceConfigurationError(_Details, ConfigurationError):
    """Credentials, permissions, configured names or TLS settings are wrong."""


class LoginFailedError(SalesforceConfigurationError):
    """Salesforce refused the login (token endpoint or SOAP ``login``)."""


class SessionExpiredError(SalesforceConfigurationError):
    """401 INVALID_SESSION_ID. The client logs in again; callers see it only via its subclass."""


class SessionKeepsExpiringError(SessionExpiredError):
    """Fresh sessions were refused too, more often than the re-login ceiling allows."""


class PermissionDeniedError(SalesforceConfigurationError):
    """The integration user lacks a permission (403)."""


class SchemaMismatchError(SalesforceConfigurationError):
    """A configured object or field does not exist for this user (INVALID_FIELD/INVALID_TYPE)."""


class TlsVerificationError(SalesforceConfigurationError):
    """The server certificate is not trusted; ``ca_bundle`` must name the CA that signed it."""


class SalesforceTransientError(_Details, TransientError):
    """Salesforce or the network failed for now; the same read may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        connection: str = "",
        status: int | None = None,
        error_code: str | None = None,
        detail: str = "",
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(
            message, connection=connection, status=status, error_code=error_code, detail=detail
        )
        self.retry_after = retry_after


class SalesforceConnectionError(SalesforceTransientError):
    """No usable connection: refused, unknown host, or dropped before a full answer."""


class BudgetExhaustedError(SalesforceTransientError, CoreBudgetExhaustedError):
    """The org's API request allocation is spent; come back after ``retry_after``."""


class QueryCursorLostError(SalesforceTransientError):
    """The query locator expired or was dropped; the query must start again (not retried here)."""


class SalesforceRecordError(_Details, RecordError):
    """One record was rejected; quarantine it and go on."""


class SalesforceFatalError(_Details, FatalError):
    """A state stagelink does not expect (often a bug in a query we built)."""


# Raised by the retry policy only for these when they are TransientError subclasses.
NOT_RETRIED_IN_CALL: tuple[type[StagelinkError], ...] = (
    BudgetExhaustedError,
    QueryCursorLostError,
)


# -- the classification table -------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRule:
    """An HTTP answer that maps to an error class. ``None`` matches anything."""

    status: int | None
    code: str | None
    error: type[_Details]
    hint: str = ""
    message_contains: str | None = None


# Record-level error codes (errorcodes.htm): the request was fine, this record is not.
_RECORD_CODES = (
    "REQUIRED_FIELD_MISSING",
    "STRING_TOO_LONG",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "MALFORMED_ID",
    "INVALID_ID_FIELD",
    "DUPLICATE_VALUE",
    "DUPLICATES_DETECTED",
    "ENTITY_IS_DELETED",
    "FIELD_INTEGRITY_EXCEPTION",
    "INVALID_CROSS_REFERENCE_KEY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    "UNABLE_TO_LOCK_ROW",
)

_CA_HINT = (
    "set ca_bundle to the PEM file of the CA that signed the server certificate; "
    "for the sandbox, its sandbox-ca.pem"
)

# First matching row wins: specific (status, code) pairs before the status-wide rows.
HTTP_RULES: Sequence[HttpRule] = (
    # facts A3: an expired or revoked token; in direct mode every 401 means "log in again".
    HttpRule(401, None, SessionExpiredError, "the access token was not accepted"),
    HttpRule(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        SalesforceTransientError,
        "too many concurrent long-running requests",
        message_contains="concurrent",
    ),
    HttpRule(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        BudgetExhaustedError,
        "the org's API request allocation (rolling 24 h) is spent",
    ),
    HttpRule(403, None, PermissionDeniedError, "grant the integration user the missing permission"),
    HttpRule(
        None,
        "INVALID_FIELD",
        SchemaMismatchError,
        "check the field names in the connection's configuration",
    ),
    HttpRule(
        None,
        "INVALID_TYPE",
        SchemaMismatchError,
        "the object does not exist or the user cannot see it",
    ),
    HttpRule(
        None,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        SchemaMismatchError,
        "the field is read-only for the integration user",
    ),
    HttpRule(None, "INVALID_QUERY_LOCATOR", QueryCursorLostError, "run the query again"),
    *(HttpRule(None, code, SalesforceRecordError) for code in _RECORD_CODES),
    HttpRule(300, None, SalesforceRecordError, "several records match the external id"),
    HttpRule(404, None, SalesforceRecordError, "the record or resource does not exist"),
    HttpRule(408, None, SalesforceTransientError),
    HttpRule(429, None, SalesforceTransientError),
    HttpRule(500, None, SalesforceTransientError),
    HttpRule(502, None, SalesforceTransientError),
    HttpRule(503, None, SalesforceTransientError, "Salesforce is unavailable"),
    HttpRule(504, None, SalesforceTransientError),
    HttpRule(None, None, SalesforceFatalError),
)


@dataclass(frozen=True)
class TransportRule:
    """An exception type (matched along its MRO) that maps to an error class."""

    exception: type[BaseException]
    error: type[_Details]
    hint: str = ""
    message_contains: tuple[str, ...] = ()


TRANSPORT_RULES: Sequence[TransportRule] = (
    # A certificate that does not verify will not fix itself; other TLS failures (a peer that
    # hangs up mid-handshake) are network trouble.
    TransportRule(
        requests.exceptions.SSLError,
        TlsVerificationError,
        _CA_HINT,
        message_contains=("certificate", "hostname", "verify"),
    ),
    TransportRule(requests.exceptions.SSLError, SalesforceConnectionError, "TLS handshake failed"),
    TransportRule(requests.exceptions.ConnectTimeout, SalesforceConnectionError, "connect timeout"),
    TransportRule(requests.exceptions.ReadTimeout, SalesforceTransientError, "read timeout"),
    TransportRule(requests.exceptions.ConnectionError, SalesforceConnectionError),
    TransportRule(requests.exceptions.ChunkedEncodingError, SalesforceTransientError),
    TransportRule(requests.exceptions.ContentDecodingError, SalesforceTransientError),
    # requests' own JSONDecodeError: a 200 whose body was cut short.
    TransportRule(
        requests.exceptions.JSONDecodeError, SalesforceTransientError, "malformed JSON answer"
    ),
    TransportRule(requests.exceptions.InvalidURL, SalesforceConfigurationError, "check the URLs"),
    TransportRule(
        requests.exceptions.MissingSchema, SalesforceConfigurationError, "check the URLs"
    ),
    TransportRule(
        requests.exceptions.InvalidSchema, SalesforceConfigurationError, "check the URLs"
    ),
    TransportRule(requests.exceptions.RequestException, SalesforceFatalError),
    TransportRule(urllib3.exceptions.HTTPError, SalesforceTransientError),
    TransportRule(json.JSONDecodeError, SalesforceTransientError, "malformed JSON answer"),
    TransportRule(SalesforceAuthenticationFailed, LoginFailedError),
    TransportRule(SalesforceOperationError, SalesforceFatalError),
)

VENDOR_ERRORS: tuple[type[BaseException], ...] = (
    SalesforceError,
    SalesforceOperationError,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    json.JSONDecodeError,
)
"""Exceptions :func:`classify` understands; ``client.py`` catches exactly these."""


def error_items(content: Any) -> list[tuple[str | None, str]]:
    """``(errorCode, message)`` pairs of a Salesforce error body (facts A5: a JSON array)."""
    if isinstance(content, list):
        items = []
        for entry in content:
            if isinstance(entry, dict):
                code = entry.get("errorCode") or entry.get("statusCode")
                items.append((str(code) if code else None, str(entry.get("message", ""))))
        if items:
            return items
    if isinstance(content, dict):
        code = content.get("errorCode") or content.get("error")
        message = content.get("message") or content.get("error_description") or ""
        return [(str(code) if code else None, str(message))]
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    text = str(content or "").strip()
    return [(None, text[:300])]


def _http_rule(status: int, code: str | None, message: str) -> HttpRule:
    for rule in HTTP_RULES:
        if rule.status is not None and rule.status != status:
            continue
        if rule.code is not None and rule.code != code:
            continue
        if rule.message_contains and rule.message_contains not in message.lower():
            continue
        return rule
    raise AssertionError("HTTP_RULES ends with a catch-all row")  # pragma: no cover


def _transport_rule(exc: BaseException) -> TransportRule | None:
    text = str(exc).lower()
    for klass in type(exc).__mro__:
        for rule in TRANSPORT_RULES:
            if rule.exception is not klass:
                continue
            if rule.message_contains and not any(word in text for word in rule.message_contains):
                continue
            return rule
    return None


def _root_reason(exc: BaseException) -> str:
    """The innermost cause of a transport error, in a few words (``Connection refused``)."""
    reason: BaseException = exc
    seen = 0
    while seen < 8:
        seen += 1
        nested = getattr(reason, "reason", None)
        if isinstance(nested, BaseException):
            reason = nested
            continue
        if reason.args and isinstance(reason.args[0], BaseException):
            reason = reason.args[0]
            continue
        break
    text = str(reason)
    lowered = text.lower()
    for needle, short in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host (DNS lookup failed)"),
        ("nodename nor servname", "unknown host (DNS lookup failed)"),
        ("failed to resolve", "unknown host (DNS lookup failed)"),
        ("temporary failure in name resolution", "unknown host (DNS lookup failed)"),
        ("certificate verify failed", "certificate verify failed"),
        ("remote end closed connection", "connection dropped by the server"),
        ("connection aborted", "connection dropped by the server"),
        ("connection broken", "connection dropped in the middle of the answer"),
        ("connection reset", "connection reset by the server"),
        ("timed out", "timed out"),
    ):
        if needle in lowered:
            if needle == "certificate verify failed":
                detail = text.split("certificate verify failed", 1)[1]
                detail = re.sub(r"\(_ssl\.c:\d+\)", "", detail).strip(" :()")
                return f"certificate verify failed{': ' + detail if detail else ''}"
            return short
    return text[:200] or type(reason).__name__


def _origin(exc: BaseException) -> str:
    """``https://host:port`` of the request a ``requests`` exception belongs to, if known."""
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def classify(
    exc: BaseException,
    *,
    connection: str,
    action: str,
    retry_after: timedelta | None = None,
) -> StagelinkError:
    """Translate a vendor exception into the stagelink error that says what to do next.

    ``action`` names what was attempted ("query", "describe Account", "login"); the message
    reads ``Salesforce <action> for connection '<name>' failed: <code> — <message> (<hint>)``.
    ``retry_after`` is a server-sent ``Retry-After`` seen on the failing response, if any.
    """
    if isinstance(exc, StagelinkError):
        return exc
    prefix = f"Salesforce {action} for connection {connection!r} failed"
    if isinstance(exc, SalesforceError) and not isinstance(exc, SalesforceAuthenticationFailed):
        items = error_items(exc.content)
        code, first_message = items[0]
        text = "; ".join(message for _, message in items if message) or first_message
        rule = _http_rule(exc.status, code, text)
        detail = f"{code} — {text}" if code else f"HTTP {exc.status} {text}".rstrip()
        return _build(
            rule.error, prefix, detail, rule.hint, connection, exc.status, code, retry_after
        )
    if isinstance(exc, SalesforceAuthenticationFailed):
        if isinstance(exc.code, int) and (exc.code >= 500 or exc.code in (408, 429)):
            # The library reports an unparsable login answer with its HTTP status as code.
            return SalesforceTransientError(
                f"{prefix}: HTTP {exc.code} from the login endpoint",
                connection=connection,
                status=exc.code,
                retry_after=retry_after,
            )
        code = str(exc.code) if exc.code is not None else None
        reason = exc.auth_message.strip() or "no reason given"
        detail = f"{code} — {reason}" if code else reason
        return LoginFailedError(
            f"{prefix}: {detail}", connection=connection, error_code=code, detail=detail
        )
    rule_t = _transport_rule(exc)
    if rule_t is None:
        return SalesforceFatalError(
            f"{prefix}: unexpected {type(exc).__name__}: {exc}", connection=connection
        )
    origin = _origin(exc)
    where = f" at {origin}" if origin else ""
    return _build(
        rule_t.error,
        prefix,
        _root_reason(exc),
        rule_t.hint,
        connection,
        None,
        None,
        retry_after,
        where=where,
    )


def _build(
    error: type[_Details],
    prefix: str,
    detail: str,
    hint: str,
    connection: str,
    status: int | None,
    code: str | None,
    retry_after: timedelta | None,
    *,
    where: str = "",
) -> StagelinkError:
    message = f"{prefix}: {detail}{where}" + (f" ({hint})" if hint else "")
    if issubclass(error, SalesforceTransientError):
        if error is BudgetExhaustedError:
            retry_after = max(retry_after or timedelta(0), DAILY_LIMIT_RETRY_AFTER)
        return error(
            message,
            connection=connection,
            status=status,
            error_code=code,
            detail=detail,
            retry_after=retry_after,
        )
    return error(message, connection=connection, status=status, error_code=code, detail=detail)
