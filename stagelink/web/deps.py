"""What route handlers share: the application's state, reached through a dependency."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, HTTPException, Request

from stagelink.recommendations import Recommender
from stagelink.settings import AppConfig
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.debounce import Debouncer
from stagelink.sync.runner import Storage

__all__ = [
    "RecommenderDep",
    "SignerDep",
    "WebState",
    "WebStateDep",
    "get_recommender",
    "get_signer",
    "get_state",
    "render_limiter",
]


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
    #: Signs and reads rep links; None when no key is configured (see ``signer_problem``).
    signer: LinkSigner | None = None
    #: Why rep surfaces are off (a configuration error naming the key), when they are.
    signer_problem: str | None = None
    _recommender: list[Recommender] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def recommender(self) -> Recommender:
        """The recommendation engine, built on first use (loads the catalog and rules)."""
        with self._lock:
            if not self._recommender:
                self._recommender.append(Recommender.open(self.config, self.storage.engine))
            return self._recommender[0]


def get_state(request: Request) -> WebState:
    """The :class:`WebState` of the app serving ``request``."""
    state: WebState = request.app.state.stagelink
    return state


def get_signer(request: Request) -> LinkSigner:
    """The app's link signer; 503 with the configuration problem when there is none."""
    state = get_state(request)
    if state.signer is None:
        raise HTTPException(503, detail=state.signer_problem or "rep links are not configured")
    return state.signer


def get_recommender(request: Request) -> Recommender:
    """The app's recommender (built once, thread-safe)."""
    return get_state(request).recommender()


#: Rep views built at once, each in a worker thread. They are CPU-bound under one GIL:
#: more threads only queue there and stretch the latency tail (bench/bench_surfaces.py: 40
#: threads gave a saturated p99 of ~950 ms, 4 gave ~200 ms and more throughput).
RENDER_THREADS = 4


def render_limiter(request: Request) -> CapacityLimiter:
    """The app's limiter for building rep views (made on first use, on the event loop)."""
    limiter: CapacityLimiter | None = getattr(request.app.state, "render_limiter", None)
    if limiter is None:
        limiter = request.app.state.render_limiter = CapacityLimiter(RENDER_THREADS)
    return limiter


WebStateDep = Annotated[WebState, Depends(get_state)]
SignerDep = Annotated[LinkSigner, Depends(get_signer)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
