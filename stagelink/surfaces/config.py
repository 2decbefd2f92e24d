"""``surfaces:`` settings: how long rep links live and what signs them."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from connectors.core.config import Duration, StrictModel
from connectors.core.secrets import Secret

__all__ = ["SurfaceSettings"]


class SurfaceSettings(StrictModel):
    """Signed links to rep pages and tracked content links."""

    page_link_ttl: Duration = Field(
        default=timedelta(days=7),
        description="A link to an opportunity's page (e-mails, nudges) works this long.",
    )
    tracked_link_ttl: Duration = Field(
        default=timedelta(days=30),
        description="A tracked content link (shared with a buyer, say) works this long.",
    )
    session_ttl: Duration = Field(
        default=timedelta(days=7),
        description="An opened page may report usage this long (offline taps queue meanwhile).",
    )
    view_dedup_window: Duration = Field(
        default=timedelta(minutes=10),
        description="Opening one tracked link again within this window records no new view.",
    )
    signing_key: Secret | None = Field(
        default=None,
        description=(
            "HMAC key for links (32+ characters). Default: derived from secret_key, else a key "
            "file next to the SQLite database. Required for PostgreSQL: every node must share it."
        ),
    )

    @model_validator(mode="after")
    def _sane(self) -> SurfaceSettings:
        for name in ("page_link_ttl", "tracked_link_ttl", "session_ttl"):
            if getattr(self, name) < timedelta(minutes=1):
                raise ValueError(f"{name} must be at least 1m")
        if self.signing_key is not None and len(self.signing_key.reveal()) < 32:
            raise ValueError("signing_key must be at least 32 characters")
        return self
