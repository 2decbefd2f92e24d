"""``nudges:`` settings: who gets stage-change nudges, how, and how often.

::

    nudges:
      enabled: true
      channels: [email, push]
      smtp:
        host: smtp.example.com
        port: 587
        security: starttls          # starttls | tls | none
        username: stagelink
        password: ${SMTP_PASSWORD}
        from_address: "stagelink <nudges@example.com>"
      vapid:
        private_key: ${file:/run/secrets/vapid.pem}   # `stagelink nudges vapid-key` makes one
        subject: mailto:ops@example.com
      rate_limit: {max: 4, per: 1h}
      quiet_hours: {start: "20:00", end: "07:00", timezone: Europe/Berlin}
      digest_threshold: 5
      reps:
        - email: ana@example.com
          channels: [push]
          quiet_hours: {start: "22:00", end: "06:30", timezone: America/New_York}
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, time, timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, field_validator, model_validator

from connectors.core.config import Duration, StrictModel
from connectors.core.secrets import Secret

__all__ = [
    "DEFAULT_PUSH_HOSTS",
    "Channel",
    "NudgeSettings",
    "QuietHours",
    "RateLimit",
    "RepPreference",
    "SmtpSettings",
    "VapidSettings",
    "load_vapid_key",
]

Channel = Literal["email", "push"]

#: Hosts of the browsers' push services (Chrome/Android/Opera/Samsung use FCM, Firefox
#: Mozilla's autopush, Edge WNS, Safari Apple's). A leading dot matches any subdomain.
#: Subscriptions pointing anywhere else are refused: stagelink would POST to that URL.
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    ".push.services.mozilla.com",
    ".notify.windows.com",
    "web.push.apple.com",
    ".push.apple.com",
)


class SmtpSettings(StrictModel):
    """The SMTP server nudge e-mails go through."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (local relay).",
    )
    username: str | None = None
    password: Secret | None = None
    from_address: str = Field(description='Sender, e.g. "stagelink <nudges@example.com>".')
    timeout: Duration = Field(default=timedelta(seconds=30))

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        _name, address = parseaddr(value)
        if not address or "@" not in address:
            raise ValueError('expected an e-mail address such as "stagelink <nudges@example.com>"')
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    @property
    def sender(self) -> Address:
        """The From header as an address object."""
        name, address = parseaddr(self.from_address)
        user, _, domain = address.partition("@")
        return Address(display_name=name, username=user, domain=domain)


class VapidSettings(StrictModel):
    """The application server key (VAPID, RFC 8292) that signs Web Push requests."""

    private_key: Secret = Field(
        description="P-256 private key: PEM, or base64url of the raw 32-byte key."
    )
    subject: str = Field(
        pattern=r"^(mailto:\S+@\S+|https://\S+)$",
        description="Who push services contact about this sender: mailto: or https: URL.",
    )
    ttl: Duration = Field(
        default=timedelta(hours=12),
        description="How long a push service keeps a message for a phone that is offline.",
    )
    endpoint_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PUSH_HOSTS),
        description="Push service hosts subscriptions may point to (leading dot: subdomains).",
    )
    allow_http: bool = Field(
        default=False, description="Accept http:// endpoints (only for a local test service)."
    )

    @field_validator("private_key")
    @classmethod
    def _parses(cls, value: Secret) -> Secret:
        load_vapid_key(value.reveal())  # raises ValueError with what is wrong
        return value

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(days=28):
            raise ValueError("ttl must be between 0s and 28d (push services keep no longer)")
        return value

    @cached_property
    def key(self) -> ec.EllipticCurvePrivateKey:
        """The parsed private key."""
        return load_vapid_key(self.private_key.reveal())

    @property
    def public_key(self) -> str:
        """The browser's ``applicationServerKey``: base64url of the uncompressed point."""
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, base64url raw (32 bytes) or base64 DER text."""
    text = text.strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            data = base64.urlsafe_b64decode(text.replace("\n", "") + "=" * (-len(text) % 4))
            if len(data) == 32:
                return ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1())
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error):
        raise ValueError(
            "not a readable private key: expected PEM or base64url of a raw 32-byte P-256 key "
            "(`stagelink nudges vapid-key` writes one)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        # ValueError, not TypeError: pydantic reports only ValueErrors as config problems.
        raise ValueError("the VAPID key must be an EC key on the P-256 (prime256v1) curve")  # noqa: TRY004
    return key


class QuietHours(StrictModel):
    """A daily window (local time) in which nothing is sent; may span midnight."""

    start: time = Field(description='Local time quiet hours begin, e.g. "20:00".')
    end: time = Field(description='Local time they end, e.g. "07:00".')
    timezone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Berlin.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected an IANA name such as Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _window(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ (an empty or a 24-hour window)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("write start and end without an offset; set timezone instead")
        return self

    def ends_after(self, moment: datetime) -> datetime | None:
        """When the quiet window containing ``moment`` ends (aware), or None outside it."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
            end_day = local.date()
        else:  # spans midnight: 20:00-07:00
            inside = clock >= self.start or clock < self.end
            end_day = local.date() + timedelta(days=1) if clock >= self.start else local.date()
        if not inside:
            return None
        # fold=0 and ZoneInfo resolve a DST gap/overlap to a real instant; good enough.
        return datetime.combine(end_day, self.end, tzinfo=zone)


class RateLimit(StrictModel):
    """At most ``max`` nudges (a digest counts as one) per rep in any ``per`` window."""

    max: int = Field(default=4, ge=1, le=1000)
    per: Duration = Field(default=timedelta(hours=1))

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("per must be at least 1m")
        return value


class RepPreference(StrictModel):
    """One rep's own choices; unset fields follow the defaults above."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    enabled: bool = True
    channels: list[Channel] | None = None
    quiet_hours: QuietHours | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class NudgeSettings(StrictModel):
    """Stage-change nudges: e-mail and Web Push to the deal's owner when it changes stage."""

    enabled: bool = Field(default=False, description="Send stage-change nudges at all.")
    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](("email", "push")),
        description="Default channels; push reaches only reps who allowed it on their phone.",
    )
    connections: list[str] | None = Field(
        default=None, description="Only these connections (default: every connection)."
    )
    smtp: SmtpSettings | None = None
    vapid: VapidSettings | None = None
    content_items: int = Field(
        default=3, ge=1, le=10, description="Content items in a nudge for one deal."
    )
    digest_items: int = Field(
        default=2, ge=0, le=10, description="Content items per deal in a digest."
    )
    digest_max_deals: int = Field(
        default=25,
        ge=1,
        le=200,
        description="Deals a digest shows with links; the rest are listed by name.",
    )
    rate_limit: RateLimit = RateLimit()
    quiet_hours: QuietHours | None = None
    digest_threshold: int = Field(
        default=5,
        ge=2,
        description="This many changes waiting for one rep go out as one digest.",
    )
    collect_for: Duration = Field(
        default=timedelta(seconds=30),
        description="Wait this long after a rep's latest change for more (a bulk edit).",
    )
    collect_max: Duration = Field(
        default=timedelta(minutes=5),
        description="...but send at the latest this long after the first one waiting.",
    )
    max_age: Duration = Field(
        default=timedelta(hours=24),
        description="Never nudge for a change older than this (backfills bring old history).",
    )
    max_attempts: int = Field(default=5, ge=1, le=50)
    reps: list[RepPreference] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> NudgeSettings:
        if not self.channels:
            raise ValueError("channels: name at least one of email, push")
        uses = set(self.channels) | {c for rep in self.reps for c in rep.channels or ()}
        if self.enabled and "email" in uses and self.smtp is None:
            raise ValueError("smtp: required when the email channel is used")
        if self.enabled and "push" in uses and self.vapid is None:
            raise ValueError("vapid: required when the push channel is used")
        if self.collect_max < self.collect_for:
            raise ValueError("collect_max must not be shorter than collect_for")
        if self.max_age < timedelta(minutes=5):
            raise ValueError("max_age must be at least 5m")
        seen: set[str] = set()
        for index, rep in enumerate(self.reps):
            if rep.email in seen:
                raise ValueError(f"reps[{index}].email: {rep.email} is listed twice")
            seen.add(rep.email)
        return self

    def preference(self, email: str) -> RepPreference | None:
        """The rep's own entry in ``reps``, if any."""
        wanted = email.lower()
        return next((rep for rep in self.reps if rep.email == wanted), None)

    def channels_for(self, email: str) -> list[Channel]:
        """The channels ``email`` wants ([] when the rep switched nudges off)."""
        rep = self.preference(email)
        if rep is None:
            return list(self.channels)
        if not rep.enabled:
            return []
        return list(rep.channels if rep.channels is not None else self.channels)

    def quiet_hours_for(self, email: str) -> QuietHours | None:
        """The rep's quiet hours, else the default ones."""
        rep = self.preference(email)
        if rep is not None and rep.quiet_hours is not None:
            return rep.quiet_hours
        return self.quiet_hours
