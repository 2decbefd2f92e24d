"""Whose activity is it: the rep's own CRM user, or a fallback that the activity names.

Reps are matched to CRM users by e-mail among the owners the connector synced (Salesforce
Users, HubSpot owners; ``crm_owners``, e-mails stored lower-case). A rep without an active
user there is recorded on the opportunity owner's timeline, else on the configured
integration user's, else left to the CRM's default (the API user in Salesforce, no owner in
HubSpot) — and the activity says so in a sentence, so nobody mistakes whose use it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.core.activities import OwnerSource
from stagelink.storage import CrmOwner

__all__ = ["Attribution", "OwnerDirectory"]

# How each CRM calls its users and deals, for the sentence in the activity.
_USER_WORDS = {"salesforce": "Salesforce user", "hubspot": "HubSpot owner"}
_DEAL_WORDS = {"salesforce": "opportunity owner", "hubspot": "deal owner"}
_DEFAULT_WORDS = {"salesforce": "the API user", "hubspot": "no owner"}


@dataclass(frozen=True)
class Attribution:
    """The CRM user an activity is assigned to, and why."""

    owner_crm_id: str | None
    source: OwnerSource
    #: The sentence the activity carries when the owner is not the rep (else ``None``).
    note: str | None = None


class OwnerDirectory:
    """The active CRM users of one connection by e-mail (loaded once per pass)."""

    def __init__(
        self,
        kind: str,
        by_email: Mapping[str, str],
        *,
        inactive: frozenset[str] = frozenset(),
        integration_email: str | None = None,
    ) -> None:
        self.kind = kind
        self.by_email = dict(by_email)
        self.inactive = inactive
        self.integration_email = integration_email.strip().lower() if integration_email else None

    @classmethod
    def load(
        cls,
        session: Session,
        connection_id: int,
        kind: str,
        *,
        integration_email: str | None = None,
    ) -> OwnerDirectory:
        """Read the connection's synced owners."""
        by_email: dict[str, str] = {}
        inactive: set[str] = set()
        rows = session.execute(
            select(CrmOwner.crm_id, CrmOwner.email, CrmOwner.active)
            .where(CrmOwner.connection_id == connection_id)
            .order_by(CrmOwner.id)
        )
        for crm_id, email, active in rows:
            if not active:
                inactive.add(crm_id)
                continue
            if email:
                # Two live users with one address: the first synced keeps it (stable).
                by_email.setdefault(email.strip().lower(), crm_id)
        return cls(
            kind, by_email, inactive=frozenset(inactive), integration_email=integration_email
        )

    def attribute(self, rep_email: str, opportunity_owner: str | None) -> Attribution:
        """The owner for an activity of ``rep_email`` on a deal owned by ``opportunity_owner``."""
        rep = rep_email.strip().lower()
        user = self.by_email.get(rep)
        if user is not None:
            return Attribution(user, OwnerSource.REP)
        who = self._no_user(rep_email)
        if opportunity_owner and opportunity_owner not in self.inactive:
            deal_word = _DEAL_WORDS.get(self.kind, "opportunity owner")
            return Attribution(
                opportunity_owner,
                OwnerSource.OPPORTUNITY_OWNER,
                f"{who}; assigned to the {deal_word}.",
            )
        integration = self.by_email.get(self.integration_email or "")
        if integration is not None:
            return Attribution(
                integration,
                OwnerSource.INTEGRATION_USER,
                f"{who}; assigned to the integration user {self.integration_email}.",
            )
        default = _DEFAULT_WORDS.get(self.kind, "the CRM's default owner")
        return Attribution(None, OwnerSource.DEFAULT, f"{who}; assigned to {default}.")

    def _no_user(self, rep_email: str) -> str:
        word = _USER_WORDS.get(self.kind, f"{self.kind} user")
        return f"Recorded for {rep_email}, who has no {word}"
