"""The view-model every rep surface renders: one deal, its stage and its content cards.

The mobile page, the HubSpot card, Salesforce Canvas and nudges all show the same thing,
so they all build it here: facts from storage, recommendations from the engine, and per
card a tracked link signed for this rep and deal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from stagelink.recommendations import Recommender
from stagelink.surfaces.links import LinkSigner, page_path, tracked_path

__all__ = ["ContentCard", "OpportunityView", "build_view", "format_amount"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}


@dataclass(frozen=True)
class ContentCard:
    """One recommended piece of content, ready to show."""

    content_id: str
    title: str
    type: str
    #: The content's own URL (from the catalog).
    url: str
    #: ``/c/<token>``: opening it records a view for this rep and deal, then redirects.
    tracked_path: str
    #: One sentence a rep understands: why this fits the deal.
    why: str
    #: The engine's full explanation, most important first.
    reasons: tuple[str, ...]
    mobile_ready: bool
    score: float
    description: str = ""


@dataclass(frozen=True)
class OpportunityView:
    """A deal as a rep sees it."""

    connection: str
    opportunity_id: str
    name: str | None
    account_name: str | None
    stage_label: str | None
    canonical_stage: str | None
    #: Formatted for people, e.g. ``€120,000``.
    amount: str | None
    owner_name: str | None
    is_closed: bool
    rep: str
    cards: list[ContentCard]
    #: Signed ``/m/...`` link to this page for ``rep``.
    page_path: str
    #: ``sls_...`` bearer with which the page reports usage for ``rep``.
    session_token: str


def build_view(
    recommender: Recommender,
    signer: LinkSigner,
    *,
    connection: str,
    opportunity_id: str,
    rep: str,
    mobile: bool = True,
    limit: int | None = None,
) -> OpportunityView:
    """The view of one synced deal for ``rep``.

    Raises ``KeyError`` for an unknown connection and
    :class:`~stagelink.recommendations.OpportunityNotFound` for a deal not synced.
    """
    facts, evaluation = recommender.evaluate(connection, opportunity_id, mobile=mobile, limit=limit)
    opportunity = facts.opportunity
    rules = {rule.id: rule for rule in recommender.config.rules}
    canonical = evaluation.stage.canonical
    cards: list[ContentCard] = []
    for recommendation in evaluation.recommendations:
        item = recommendation.content
        token = signer.tracked_token(
            rep=rep, connection=connection, opportunity_id=opportunity_id, content_id=item.id
        )
        described = [
            rules[rule_id].description
            for rule_id in recommendation.rules
            if rule_id in rules and rules[rule_id].description
        ]
        cards.append(
            ContentCard(
                content_id=item.id,
                title=item.title,
                type=item.type,
                url=item.url,
                tracked_path=tracked_path(token),
                why=" ".join(described) or _stage_reason(canonical, opportunity.stage_label),
                reasons=recommendation.reasons,
                mobile_ready=item.mobile_ready,
                score=recommendation.score,
                description=item.description,
            )
        )
    page_token = signer.page_token(rep=rep, connection=connection, opportunity_id=opportunity_id)
    return OpportunityView(
        connection=connection,
        opportunity_id=opportunity_id,
        name=opportunity.name,
        account_name=facts.account.name if facts.account else None,
        stage_label=opportunity.stage_label
        or (facts.stage.label if facts.stage else None)
        or opportunity.stage_crm_id,
        canonical_stage=canonical,
        amount=format_amount(opportunity.amount, opportunity.currency),
        owner_name=(facts.owner.name or facts.owner.email) if facts.owner else None,
        is_closed=opportunity.is_closed,
        rep=rep.lower(),
        cards=cards,
        page_path=page_path(connection, opportunity_id, page_token),
        session_token=signer.session_token(rep=rep, connection=connection),
    )


def _stage_reason(canonical: str | None, label: str | None) -> str:
    if canonical is None:
        return "Popular content while this deal's stage is not mapped yet."
    shown = canonical.replace("_", " ")
    return f"Made for the {shown} stage ({label})." if label else f"Made for the {shown} stage."


def format_amount(amount: Decimal | None, currency: str | None) -> str | None:
    """``€120,000`` / ``CHF 95,500.50``; None without an amount."""
    if amount is None:
        return None
    digits = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    code = (currency or "").upper()
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{symbol}{digits}"
    return f"{code} {digits}".strip()
