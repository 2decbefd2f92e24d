"""What route handlers share: the application's state, reached through a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from stagelink.settings import AppConfig
from stagelink.sync.debounce import Debouncer
from stagelink.sync.runner import Storage

__all__ = ["WebState", "WebStateDep", "get_state"]


@dataclass(frozen=True)
class WebState:
    """Everything a request handler may use; built once by :func:`stagelink.web.create_app`."""

    config: AppConfig
    storage: Storage
    #: Collects record ids touched by webhooks and syncs them in debounced batches.
    debouncer: Debouncer
    #: Larger request bodies are refused with 413 before being read in full.
    max_body_bytes: int = 1_000_000
    #: Accept HubSpot's untimestamped v1/v2 signatures (replayable; off by default).
    accept_legacy_signatures: bool = False


def get_state(request: Request) -> WebState:
    """The :class:`WebState` of the app serving ``request``."""
    state: WebState = request.app.state.stagelink
    return state


WebStateDep = Annotated[WebState, Depends(get_state)]
