"""``HubSpotSandbox``: a seeded, API-faithful HubSpot account on a local port."""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.common import BackgroundServer, CallLog, FaultPlan
from sandbox.common.copies import private_copy
from sandbox.hubspot.account import Account
from sandbox.hubspot.app import build_app
from sandbox.hubspot.auth import HubSpotCredentials, make_credentials
from sandbox.hubspot.mutate import MutationSummary, mutate
from sandbox.hubspot.options import HubSpotOptions
from sandbox.hubspot.schema import resolve_object_type
from sandbox.hubspot.seed import SeedPlan, cached_seed, plan_for
from sandbox.hubspot.store import Store


def default_data_dir() -> Path:
    """Where seeded databases are cached when no ``data_dir`` is given."""
    return Path(tempfile.gettempdir()) / "stagelink-sandbox" / "hubspot"


class HubSpotSandbox:
    """A local HubSpot account for tests, demos and benchmarks.

    >>> with HubSpotSandbox(seed=1, size="small") as hs:
    ...     client = HubSpot(access_token=hs.credentials.private_app_token, host=hs.url)

    The seeded database is cached in ``data_dir`` per (seed, size, schema version) and built
    in the constructor if missing, so a second instance is a file copy; each instance works on
    its own copy, deleted on :meth:`stop`.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        size: str | int = "small",
        data_dir: Path | None = None,
        options: HubSpotOptions | None = None,
    ) -> None:
        self.seed = seed
        self.plan: SeedPlan = plan_for(size)
        self.data_dir = data_dir if data_dir is not None else default_data_dir()
        # A private copy: set_search_lag() must not leak into other sandboxes sharing options.
        self.options = replace(options) if options is not None else HubSpotOptions()
        self.credentials: HubSpotCredentials = make_credentials(seed)
        self.faults = FaultPlan(seed=seed)
        self.calls = CallLog()
        self._server: BackgroundServer | None = None
        self._mutations = 0
        seeded = cached_seed(
            self.data_dir, seed=seed, plan=self.plan, app_id=self.credentials.app_id
        )
        self._db_path: Path | None = private_copy(seeded, self.data_dir / "instances", "hs")
        self._account: Account | None = Account(
            store=Store(self._db_path),
            credentials=self.credentials,
            options=self.options,
            faults=self.faults,
            calls=self.calls,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def account(self) -> Account:
        """The live account state (store, tokens, limits) behind the API."""
        if self._account is None:
            raise RuntimeError("sandbox stopped")
        return self._account

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> HubSpotSandbox:
        """Serve the API on ``host:port`` (0 = a free port) in a background thread."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        server = BackgroundServer(build_app(self.account, self), host=host, port=port)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and delete this instance's database copy."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._account is not None:
            self._account.store.close()
            self._account = None
        if self._db_path is not None:
            self._db_path.unlink(missing_ok=True)
            self._db_path = None

    def serve_forever(self) -> None:
        """Block until Ctrl-C (``python -m sandbox.hubspot``)."""
        if self._server is None:
            raise RuntimeError("call start() first")
        try:
            self._server.serve_forever()
        finally:
            self._server = None
            self.stop()

    def __enter__(self) -> HubSpotSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to pass as ``host=`` to ``HubSpot(...)``, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url

    # ------------------------------------------------------------------ inspection

    def _type(self, object_type: str) -> str:
        definition = resolve_object_type(object_type)
        if definition is None:
            raise ValueError(f"unknown object type {object_type!r}")
        return definition.name

    def objects(self, object_type: str, archived: bool = False) -> list[dict[str, Any]]:
        """Every object of a type with all its properties, in id order, as the API shapes it."""
        definition = resolve_object_type(self._type(object_type))
        assert definition is not None
        crm = self.account.crm
        rows = self.account.store.all_objects(definition.name, archived=archived)
        return [crm.full_json(definition, row) for row in rows]

    def count(self, object_type: str, archived: bool = False) -> int:
        """Number of objects of a type."""
        return self.account.store.count(self._type(object_type), archived=archived)

    def associations(self, from_type: str, object_id: str, to_type: str) -> dict[str, list[int]]:
        """Associated ``to_type`` ids with their association type ids: ``{"201": [5, 341]}``."""
        linked = self.account.store.associations(
            self._type(from_type), [int(object_id)], self._type(to_type)
        )
        return {str(to_id): types for to_id, types in linked.get(int(object_id), {}).items()}

    def timeline_events(self) -> list[dict[str, Any]]:
        """Every timeline event stored so far."""
        return self.account.store.timeline_events()

    # ------------------------------------------------------------------ mutation and switches

    def mutate(
        self, *, edits: int, deletes: int, creates: int, shared_timestamp: bool = True
    ) -> MutationSummary:
        """Simulate user activity over companies and deals (see :mod:`sandbox.hubspot.mutate`)."""
        self._mutations += 1
        rng = random.Random(f"stagelink-hubspot:{self.seed}:mutate:{self._mutations}")
        return mutate(
            self.account,
            rng,
            seed=self.seed,
            edits=edits,
            deletes=deletes,
            creates=creates,
            shared_timestamp=shared_timestamp,
        )

    def expire_tokens(self) -> int:
        """Expire every OAuth access token now (the refresh token keeps working)."""
        return self.account.tokens.expire_all()

    def set_rate_limits(
        self,
        *,
        ten_second: int | None = None,
        daily: int | None = None,
        search_per_second: int | None = None,
        retry_after: bool | None = None,
        reset: bool = False,
    ) -> None:
        """Change request budgets at run time; ``reset=True`` also forgets counted requests."""
        limiter = self.account.limiter
        limiter.configure(
            ten_second=ten_second,
            daily=daily,
            search_per_second=search_per_second,
            retry_after=retry_after,
        )
        if reset:
            limiter.reset()

    def set_search_lag(self, seconds: float) -> None:
        """Hide records modified in the last ``seconds`` from search (index lag)."""
        if seconds < 0:
            raise ValueError("lag must not be negative")
        self.options.search_index_lag_seconds = seconds
