"""Settings of a HubSpot connection. Login methods are a discriminated union on ``method``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from connectors.core.config import (
    ConnectionConfig,
    Duration,
    HttpUrl,
    StrictModel,
    SyncSettings,
    WritebackSettings,
)
from connectors.core.secrets import Secret

_PROPERTY_NAME = r"^[a-z][a-z0-9_]*$"


class PrivateAppLogin(StrictModel):
    """A private app's static access token (``pat-...``)."""

    method: Literal["private_app"]
    token: Secret


class OAuthLogin(StrictModel):
    """A public app installed in the portal: refresh token exchanged for 30-minute access tokens."""

    method: Literal["oauth"]
    client_id: str
    client_secret: Secret
    refresh_token: Secret


HubSpotLogin = Annotated[PrivateAppLogin | OAuthLogin, Field(discriminator="method")]


class HubSpotExtraProperties(StrictModel):
    """Extra (often custom) properties to sync so mapping rules can use them."""

    companies: list[Annotated[str, Field(pattern=_PROPERTY_NAME)]] = []
    deals: list[Annotated[str, Field(pattern=_PROPERTY_NAME)]] = []


class HubSpotSyncSettings(SyncSettings):
    """Sync settings, plus how often archived (deleted) records are reconciled."""

    archive_check_interval: Duration = Field(
        default=timedelta(hours=1),
        description=(
            "Incremental syncs list archived deals and companies at most this often: archiving "
            "does not change the modified date, so search never sees deletes."
        ),
    )


class HubSpotWriteback(WritebackSettings):
    """How content usage lands on the HubSpot timeline."""

    activity: Literal["note", "task"] = "note"
    event_id_property: str | None = Field(
        default="stagelink_event_id",
        pattern=_PROPERTY_NAME,
        description="Unique custom property on notes/tasks used to upsert idempotently.",
    )
    timeline_event_template_id: str | None = Field(
        default=None, description="Write timeline events instead (app partners only)."
    )


class HubSpotConnectionConfig(ConnectionConfig):
    """A HubSpot portal."""

    kind: Literal["hubspot"]
    base_url: HttpUrl = "https://api.hubapi.com"
    auth: HubSpotLogin
    app_client_secret: Secret | None = Field(
        default=None, description="The app's client secret: verifies card and webhook signatures."
    )
    portal_id: int | None = Field(default=None, gt=0)
    extra_properties: HubSpotExtraProperties = HubSpotExtraProperties()
    sync: HubSpotSyncSettings = HubSpotSyncSettings()
    writeback: HubSpotWriteback = HubSpotWriteback()
