"""A nudge's words: the e-mail (HTML + text, from Jinja2 templates) and the push payload.

Both are built from :class:`~stagelink.surfaces.views.OpportunityView` — the same view the
mobile page shows — so the links in a nudge are the rep's own tracked links and signed
page link, made absolute with ``server.public_url``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stagelink.surfaces.links import absolute
from stagelink.surfaces.views import OpportunityView

__all__ = ["CardLink", "DealLink", "RenderedNudge", "deal_link", "render_digest", "render_single"]

# Push services accept about 4 KB of encrypted payload; keep well below it.
_TITLE_MAX = 90
_BODY_MAX = 240
# Deals a digest names without links, after those it shows in full.
_NAMED_MAX = 200

_env = Environment(
    loader=PackageLoader("stagelink.nudges", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class CardLink:
    """One content item with its absolute tracked link."""

    title: str
    type: str
    why: str
    url: str


@dataclass(frozen=True)
class DealLink:
    """One deal in a nudge: what it is, its new stage, its page and its content."""

    connection: str
    opportunity_id: str
    name: str
    account_name: str | None
    stage_label: str
    amount: str | None
    page_url: str
    cards: tuple[CardLink, ...]


@dataclass(frozen=True)
class RenderedNudge:
    """What one nudge says on each channel."""

    subject: str
    text: str
    html: str
    #: The JSON the service worker shows: title, body, url, tag.
    push: dict[str, str]


def deal_link(view: OpportunityView, base_url: str, *, items: int) -> DealLink:
    """``view`` with absolute links and at most ``items`` content items."""
    cards = tuple(
        CardLink(
            title=card.title,
            type=card.type.replace("_", " "),
            why=card.why,
            url=absolute(base_url, card.tracked_path),
        )
        for card in view.cards[:items]
    )
    return DealLink(
        connection=view.connection,
        opportunity_id=view.opportunity_id,
        name=view.name or view.opportunity_id,
        account_name=view.account_name,
        stage_label=view.stage_label or (view.canonical_stage or "a new stage").replace("_", " "),
        amount=view.amount,
        page_url=absolute(base_url, view.page_path),
        cards=cards,
    )


def render_single(deal: DealLink, *, rep: str) -> RenderedNudge:
    """The nudge for one deal that entered a new stage."""
    subject = _clip(f"{deal.name} moved to {deal.stage_label}", 150)
    context: dict[str, Any] = {"deal": deal, "rep": rep}
    titles = ", ".join(card.title for card in deal.cards)
    body = f"Content for this stage: {titles}" if titles else "Open the deal's page."
    return RenderedNudge(
        subject=subject,
        text=_env.get_template("single.txt").render(context),
        html=_env.get_template("single.html").render(context),
        push={
            "title": _clip(f"{deal.name} → {deal.stage_label}", _TITLE_MAX),
            "body": _clip(body, _BODY_MAX),
            "url": deal.page_url,
            # One notification per deal: a newer nudge replaces the older one.
            "tag": _clip(f"stagelink:{deal.connection}:{deal.opportunity_id}", 200),
        },
    )


def render_digest(
    deals: Sequence[DealLink], *, rep: str, others: Sequence[tuple[str, str]] = ()
) -> RenderedNudge:
    """One message for many deals that changed stage at once: ``deals`` with their links,
    ``others`` — (name, stage) of the rest, beyond what one e-mail should carry — by name."""
    count = len(deals) + len(others)
    noun = "deal" if count == 1 else "deals"
    subject = f"{count} of your {noun} changed stage"
    named = list(others[:_NAMED_MAX])
    context: dict[str, Any] = {
        "deals": deals,
        "others": named,
        "unnamed": len(others) - len(named),
        "rep": rep,
        "count": count,
    }
    names = [deal.name for deal in deals[:3]]
    more = count - len(names)
    listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
    return RenderedNudge(
        subject=subject,
        text=_env.get_template("digest.txt").render(context),
        html=_env.get_template("digest.html").render(context),
        push={
            "title": _clip(f"{count} {noun} changed stage", _TITLE_MAX),
            "body": _clip(f"{listed}. Tap to open the first.", _BODY_MAX),
            "url": deals[0].page_url if deals else "",
            "tag": "stagelink-digest",
        },
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
