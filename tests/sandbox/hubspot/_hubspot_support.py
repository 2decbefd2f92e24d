"""Small helpers shared by the HubSpot sandbox tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hubspot import HubSpot

from sandbox.hubspot import HubSpotSandbox

FreshSandbox = Callable[..., HubSpotSandbox]


def body(exc: Any) -> dict[str, Any]:
    """Parse the raw JSON body of a library ``ApiException``."""
    raw = exc.body
    return dict(json.loads(raw.decode() if isinstance(raw, bytes) else raw))


def client_for(hs: HubSpotSandbox, token: str | None = None) -> HubSpot:
    """A library client for ``hs`` (private-app token unless another is given)."""
    return HubSpot(access_token=token or hs.credentials.private_app_token, host=hs.url)
