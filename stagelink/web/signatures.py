"""HubSpot request signatures (webhooks and CRM-card fetches), verified as pure functions.

HubSpot signs every request it sends to an app with the app's client secret
(https://developers.hubspot.com/docs/api/webhooks/validating-requests):

* **v3** (``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp`` in epoch ms): base64 of
  HMAC-SHA256 over ``method + uri + body + timestamp``, where ``uri`` is the full URL HubSpot
  called with a fixed set of percent-encoded reserved characters decoded. The timestamp bounds
  replays: a request more than five minutes old (or ahead of our clock) is refused.
* **v1** (``X-HubSpot-Signature-Version: v1``): hex SHA-256 of ``secret + body``;
* **v2**: hex SHA-256 of ``secret + method + uri + body`` (the URI exactly as requested).

v1 and v2 carry no timestamp, so a captured request stays valid forever; and HubSpot sends a
v1 signature *next to* every v3 one, so accepting v1 at all would let anyone replay a v3
request with its v3 headers stripped. :func:`verify_hubspot_request` therefore insists on v3
unless the caller explicitly accepts the legacy versions (apps that only get v1/v2).

The library's ``Signature.is_valid`` neither decodes the URI nor refuses future timestamps
(facts B9, gotcha 7), hence this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

__all__ = [
    "MAX_AGE_MS",
    "MAX_FUTURE_MS",
    "SignatureError",
    "decode_reserved",
    "verify_hubspot_request",
    "verify_v1",
    "verify_v2",
    "verify_v3",
]

#: HubSpot: "reject the request if the timestamp is older than 5 minutes".
MAX_AGE_MS = 5 * 60 * 1000
#: A timestamp this far ahead of our clock is refused too (it would extend the replay window).
MAX_FUTURE_MS = 5 * 60 * 1000

V3_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADER = "x-hubspot-signature"
VERSION_HEADER = "x-hubspot-signature-version"

# The table of "Validating requests" (v3): only these escapes are decoded before hashing;
# every other escape (%20, %26...) stays as it was sent.
_RESERVED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_RESERVED_PATTERN = re.compile("|".join(_RESERVED), re.IGNORECASE)


class SignatureError(Exception):
    """The request is not provably from HubSpot; ``reason`` is safe to log (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_reserved(uri: str) -> str:
    """``uri`` with the reserved characters HubSpot decodes for v3 signatures decoded."""
    return _RESERVED_PATTERN.sub(lambda match: _RESERVED[match.group(0).upper()], uri)


def _same(expected: str, given: str) -> bool:
    # Constant-time: the comparison must not tell an attacker how many characters matched.
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def verify_v1(*, client_secret: str, body: bytes, signature: str | None) -> None:
    """Check a v1 signature (hex SHA-256 of ``secret + body``); raise :class:`SignatureError`."""
    if not signature:
        raise SignatureError("missing X-HubSpot-Signature header")
    expected = hashlib.sha256(client_secret.encode() + body).hexdigest()
    if not _same(expected, signature.lower()):
        raise SignatureError("v1 signature does not match")


def verify_v2(
    *, client_secret: str, method: str, uri: str, body: bytes, signature: str | None
) -> None:
    """Check a v2 signature (hex SHA-256 of ``secret + method + uri + body``)."""
    if not signature:
        raise SignatureError("missing X-HubSpot-Signature header")
    message = f"{client_secret}{method.upper()}{uri}".encode() + body
    if not _same(hashlib.sha256(message).hexdigest(), signature.lower()):
        raise SignatureError("v2 signature does not match (is the public URL right?)")


def verify_v3(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int | None = None,
    max_age_ms: int = MAX_AGE_MS,
    max_future_ms: int = MAX_FUTURE_MS,
) -> None:
    """Check a v3 signature and its timestamp; raise :class:`SignatureError` with the reason.

    ``uri`` is the full URL HubSpot called (scheme, host, path and query, as sent); the
    reserved characters are decoded here.
    """
    if not signature:
        raise SignatureError("missing X-HubSpot-Signature-v3 header")
    if not timestamp:
        raise SignatureError("missing X-HubSpot-Request-Timestamp header")
    try:
        stamp = int(timestamp.strip())
    except ValueError:
        raise SignatureError("X-HubSpot-Request-Timestamp is not epoch milliseconds") from None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - stamp > max_age_ms:
        raise SignatureError(
            f"timestamp is stale: {(now - stamp) / 1000:.0f} s old "
            f"(at most {max_age_ms / 1000:.0f} s allowed)"
        )
    if stamp - now > max_future_ms:
        raise SignatureError(
            f"timestamp is {(stamp - now) / 1000:.0f} s in the future "
            f"(at most {max_future_ms / 1000:.0f} s allowed; check the clock)"
        )
    message = f"{method.upper()}{decode_reserved(uri)}".encode() + body + timestamp.strip().encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    if not _same(base64.b64encode(digest).decode(), signature):
        raise SignatureError("v3 signature does not match (wrong secret or public URL?)")


def verify_hubspot_request(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    accept_legacy: bool = False,
    now_ms: int | None = None,
) -> str:
    """Verify a request HubSpot sent; return the signature version used (``"v3"``...).

    ``headers`` must look names up case-insensitively (Starlette's and httpx's headers do).
    A request carrying v3 headers is judged by v3 alone. Without them it is refused, unless
    ``accept_legacy`` allows v1/v2 (no replay protection; see the module docstring).
    """
    if headers.get(V3_HEADER) is not None or headers.get(TIMESTAMP_HEADER) is not None:
        verify_v3(
            client_secret=client_secret,
            method=method,
            uri=uri,
            body=body,
            signature=headers.get(V3_HEADER),
            timestamp=headers.get(TIMESTAMP_HEADER),
            now_ms=now_ms,
        )
        return "v3"
    if not accept_legacy:
        if headers.get(LEGACY_HEADER):
            raise SignatureError(
                "only a v1/v2 signature was sent; v3 (timestamped) signatures are required"
            )
        raise SignatureError("missing X-HubSpot-Signature-v3 header")
    version = (headers.get(VERSION_HEADER) or "v1").strip().lower()
    signature = headers.get(LEGACY_HEADER)
    if version == "v1":
        verify_v1(client_secret=client_secret, body=body, signature=signature)
    elif version == "v2":
        verify_v2(
            client_secret=client_secret, method=method, uri=uri, body=body, signature=signature
        )
    else:
        raise SignatureError(f"unknown X-HubSpot-Signature-Version {version[:10]!r}")
    return version
