"""Outbound drivers: what HubSpot sends *to* an app — signed webhook batches and CRM-card fetches.

Signatures follow facts B9 (and HubSpot's "Validating requests" page):

* v1: hex SHA-256 of ``client_secret + body``;
* v2: hex SHA-256 of ``client_secret + method + uri + body`` (the URI exactly as requested);
* v3: base64 HMAC-SHA256 keyed with the client secret over ``method + uri + body + timestamp``
  (timestamp in epoch ms, sent as ``X-HubSpot-Request-Timestamp``), where HubSpot decodes the
  percent-encoded reserved characters of the URI before hashing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

# HubSpot's table of characters to URL-decode in the URI before computing a v3 signature.
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


def _text(body: str | bytes) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else body


def decode_reserved(uri: str) -> str:
    """Decode the percent-encoded reserved characters HubSpot decodes for v3 signatures."""
    return _RESERVED_PATTERN.sub(lambda match: _RESERVED[match.group(0).upper()], uri)


def sign_v1(secret: str, body: str | bytes) -> str:
    """``X-HubSpot-Signature`` for ``X-HubSpot-Signature-Version: v1``."""
    return hashlib.sha256(f"{secret}{_text(body)}".encode()).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: str | bytes) -> str:
    """``X-HubSpot-Signature`` for ``X-HubSpot-Signature-Version: v2``."""
    return hashlib.sha256(f"{secret}{method}{uri}{_text(body)}".encode()).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: str | bytes, timestamp_ms: int) -> str:
    """``X-HubSpot-Signature-v3`` (pass the URI as HubSpot hashes it: reserved chars decoded)."""
    message = f"{method}{uri}{_text(body)}{timestamp_ms}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def signed_headers(
    *,
    client_secret: str,
    method: str,
    url: str,
    body: str,
    version: str,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """Signature headers HubSpot would attach for ``version`` (``v1``, ``v2`` or ``v3``).

    For v3 HubSpot also sends a v1 signature for backward compatibility; so does this.
    """
    if version == "v1":
        return {
            "X-HubSpot-Signature": sign_v1(client_secret, body),
            "X-HubSpot-Signature-Version": "v1",
        }
    if version == "v2":
        return {
            "X-HubSpot-Signature": sign_v2(client_secret, method, url, body),
            "X-HubSpot-Signature-Version": "v2",
        }
    if version != "v3":
        raise ValueError(f"unknown signature version {version!r}")
    stamp = _now_ms() if timestamp_ms is None else timestamp_ms
    return {
        "X-HubSpot-Signature-v3": sign_v3(client_secret, method, decode_reserved(url), body, stamp),
        "X-HubSpot-Request-Timestamp": str(stamp),
        "X-HubSpot-Signature": sign_v1(client_secret, body),
        "X-HubSpot-Signature-Version": "v1",
    }


def send_webhook_batch(
    url: str,
    events: Sequence[Mapping[str, Any]],
    *,
    client_secret: str,
    version: str = "v3",
    timestamp_ms: int | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST a JSON array of webhook events (facts B10) to ``url``, signed like HubSpot does.

    Pass an old ``timestamp_ms`` to test that the receiver rejects stale v3 signatures.
    """
    if len(events) > 100:
        raise ValueError("HubSpot sends at most 100 events per webhook request")
    body = json.dumps(list(events), separators=(",", ":"), ensure_ascii=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "HubSpot Webhooks",
        **signed_headers(
            client_secret=client_secret,
            method="POST",
            url=url,
            body=body,
            version=version,
            timestamp_ms=timestamp_ms,
        ),
    }
    return httpx.post(url, content=body.encode(), headers=headers, timeout=timeout)


def make_card_fetch_request(
    base_url: str,
    *,
    client_secret: str,
    portal_id: int,
    user_id: int,
    user_email: str,
    object_id: int | str,
    object_type: str = "DEAL",
    properties: Mapping[str, str] | None = None,
    timestamp_ms: int | None = None,
) -> tuple[str, dict[str, str]]:
    """URL and headers of a legacy CRM-card data fetch (facts B9), ready for ``GET``.

    The query carries ``userId``, ``userEmail``, ``associatedObjectId``,
    ``associatedObjectType`` (upper case), ``portalId`` and each of ``properties``; headers carry
    ``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp`` and a v2 signature.
    """
    query: list[tuple[str, str]] = [
        ("userId", str(user_id)),
        ("userEmail", user_email),
        ("associatedObjectId", str(object_id)),
        ("associatedObjectType", object_type.upper()),
        ("portalId", str(portal_id)),
    ]
    query += list((properties or {"hs_object_id": str(object_id)}).items())
    separator = "&" if "?" in base_url else "?"
    url = f"{base_url}{separator}{urlencode(query)}"
    stamp = _now_ms() if timestamp_ms is None else timestamp_ms
    headers = {
        "Accept": "application/json",
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
        "X-HubSpot-Signature-v3": sign_v3(client_secret, "GET", decode_reserved(url), "", stamp),
        "X-HubSpot-Request-Timestamp": str(stamp),
        "X-HubSpot-Signature": sign_v2(client_secret, "GET", url, ""),
        "X-HubSpot-Signature-Version": "v2",
    }
    return url, headers
