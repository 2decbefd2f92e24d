"""Web Push (RFC 8030) with VAPID (RFC 8292) through pywebpush: encrypts the payload for
the browser's keys (RFC 8291, aes128gcm) and POSTs it to the subscription's push service.

Answers sorted for the caller: 404/410 mean the subscription is gone (delete it); 400,
403 and 413 will not get better by retrying; 429, 5xx and network errors are transient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from stagelink.nudges.config import VapidSettings

__all__ = ["PushOutcome", "PushSender", "endpoint_problem"]

_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class PushOutcome:
    """How one push message went: ``sent``, ``gone`` (unsubscribed) or ``failed``."""

    state: Literal["sent", "gone", "failed"]
    detail: str = ""
    permanent: bool = False


def endpoint_problem(endpoint: str, settings: VapidSettings) -> str | None:
    """Why stagelink must not POST to ``endpoint`` (None: it is a known push service)."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not (settings.allow_http and parts.scheme == "http"):
        return "the endpoint must be an https:// URL of a push service"
    host = (parts.hostname or "").lower()
    if not host:
        return "the endpoint has no host"
    for allowed in settings.endpoint_hosts:
        allowed = allowed.lower()
        if host == allowed.lstrip(".") or (allowed.startswith(".") and host.endswith(allowed)):
            return None
    return f"{host} is not a known push service (nudges.vapid.endpoint_hosts)"


class PushSender:
    """Sends encrypted, VAPID-signed push messages; keeps one HTTP session."""

    def __init__(self, settings: VapidSettings) -> None:
        self.settings = settings
        self._vapid = Vapid02(settings.key)
        self._session = requests.Session()

    def send(self, subscription: Mapping[str, object], payload: Mapping[str, str]) -> PushOutcome:
        """Deliver ``payload`` (JSON) to ``subscription`` (``endpoint`` + ``keys``)."""
        endpoint = str(subscription.get("endpoint", ""))
        problem = endpoint_problem(endpoint, self.settings)
        if problem is not None:
            return PushOutcome("failed", problem, permanent=True)
        try:
            webpush(
                subscription_info=subscription,
                data=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                vapid_private_key=self._vapid,
                # A new dict each time: pywebpush writes "aud" and "exp" into it.
                vapid_claims={"sub": self.settings.subject},
                ttl=int(self.settings.ttl.total_seconds()),
                timeout=_TIMEOUT_SECONDS,
                headers={"Urgency": "normal"},
                requests_session=self._session,
            )
        except WebPushException as exc:
            status = exc.status_code
            if status in (404, 410):
                return PushOutcome("gone", f"push service answered {status}", permanent=True)
            if status is None:  # refused before sending: the stored keys are unusable
                return PushOutcome("failed", exc.message, permanent=True)
            permanent = status in (400, 403, 413)
            return PushOutcome("failed", f"push service answered {status}", permanent=permanent)
        except requests.RequestException as exc:
            host = urlsplit(endpoint).hostname
            return PushOutcome("failed", f"cannot reach {host}: {type(exc).__name__}")
        return PushOutcome("sent")

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()
