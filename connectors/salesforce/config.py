"""Settings of a Salesforce connection. Login methods are a discriminated union on ``method``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from connectors.core.config import (
    ConnectionConfig,
    HttpUrl,
    ReadableFile,
    StrictModel,
    WritebackSettings,
)
from connectors.core.secrets import Secret

_API_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


class PasswordLogin(StrictModel):
    """Username-password + security token (OAuth password grant with a connected app, or SOAP)."""

    method: Literal["password"]
    username: str
    password: Secret
    security_token: Secret | None = None
    consumer_key: str | None = None
    consumer_secret: Secret | None = None


class RefreshTokenLogin(StrictModel):
    """OAuth refresh-token flow of a connected app."""

    method: Literal["refresh_token"]
    consumer_key: str
    consumer_secret: Secret
    refresh_token: Secret


class JwtLogin(StrictModel):
    """JWT bearer flow: server-to-server, signed with the connected app's private key."""

    method: Literal["jwt"]
    username: str
    consumer_key: str
    private_key_file: ReadableFile


SalesforceLogin = Annotated[
    PasswordLogin | RefreshTokenLogin | JwtLogin, Field(discriminator="method")
]


class SalesforceExtraFields(StrictModel):
    """Extra (often custom) fields to sync so mapping rules can use them."""

    account: list[Annotated[str, Field(pattern=_API_NAME)]] = []
    opportunity: list[Annotated[str, Field(pattern=_API_NAME)]] = []


class SalesforceWriteback(WritebackSettings):
    """How content usage lands on the Salesforce timeline."""

    external_id_field: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$",
        description="Task external-id field for idempotent upserts, e.g. Stagelink_Event_Id__c.",
    )
    presented_as_event: bool = Field(
        default=False, description="Write 'presented' usage as a calendar Event, not a Task."
    )
    daily_digest: bool = Field(default=False, description="One Task per opportunity per day.")
    integration_user_email: str | None = None


class SalesforceConnectionConfig(ConnectionConfig):
    """A Salesforce org."""

    kind: Literal["salesforce"]
    instance_url: HttpUrl | None = Field(
        default=None, description="The org's URL; taken from the login response when omitted."
    )
    login_url: HttpUrl = Field(
        default="https://login.salesforce.com",
        description="Where logins go: login.salesforce.com, test.salesforce.com or My Domain.",
    )
    api_version: str = Field(default="59.0", pattern=r"^\d{2,3}\.\d$")
    auth: SalesforceLogin
    extra_fields: SalesforceExtraFields = SalesforceExtraFields()
    bulk_threshold: int = Field(
        default=50_000, ge=0, description="Use Bulk API 2.0 when a pull is larger than this."
    )
    writeback: SalesforceWriteback = SalesforceWriteback()
    canvas_consumer_secret: Secret | None = Field(
        default=None,
        description=(
            "The Canvas connected app's consumer secret: verifies the signed request with "
            "which Salesforce opens stagelink's opportunity page inside the record page."
        ),
    )

    @field_validator("api_version", mode="before")
    @classmethod
    def _no_v_prefix(cls, value: object) -> object:
        if isinstance(value, str) and value.lower().startswith("v"):
            raise ValueError("write the API version without a leading 'v', e.g. 59.0")
        return value
