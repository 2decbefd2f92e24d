"""The opportunity view every rep surface renders, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from stagelink.recommendations import OpportunityNotFound, Recommender
from stagelink.storage import make_engine
from stagelink.surfaces.links import LinkSigner
from stagelink.surfaces.views import build_view, format_amount
from tests.mapping.crm_data import seed
from tests.mapping.test_service import config_for

SIGNER = LinkSigner(b"v" * 32)


@pytest.fixture
def recommender(database_url: str, tmp_path: Path) -> Iterator[Recommender]:
    seed(database_url)
    config = config_for(database_url, tmp_path)
    described = [
        rule.model_copy(update={"description": "Banks want proof from other banks."})
        for rule in config.rules
    ]
    engine = make_engine(database_url)
    try:
        yield Recommender.open(config.model_copy(update={"rules": described}), engine)
    finally:
        engine.dispose()


def test_the_view_shows_the_deal_and_its_content_with_links_signed_for_the_rep(
    recommender: Recommender,
) -> None:
    view = build_view(
        recommender, SIGNER, connection="salesforce-prod", opportunity_id="006NORD",
        rep="Ana@Example.com",
    )  # fmt: skip
    assert (view.name, view.account_name, view.stage_label) == (
        "Deal 006NORD", "Nordbank AG", "Proposal/Price Quote",
    )  # fmt: skip
    assert (view.canonical_stage, view.amount, view.rep) == (
        "proposal",
        "€120,000",
        "ana@example.com",
    )
    expected = recommender.recommend("salesforce-prod", "006NORD", mobile=True)
    assert [card.content_id for card in view.cards] == [r.content.id for r in expected]
    banking = next(card for card in view.cards if card.content_id == "banking-case-study")
    assert banking.why == "Banks want proof from other banks."
    others = [card for card in view.cards if card.content_id != "banking-case-study"]
    assert others
    assert all(c.why.startswith("Made for the proposal stage") for c in others)
    for card in view.cards:
        grant = SIGNER.read_tracked_token(card.tracked_path.removeprefix("/c/"))
        assert (grant.rep, grant.opportunity_id, grant.content_id) == (
            "ana@example.com", "006NORD", card.content_id,
        )  # fmt: skip
    page = urlsplit(view.page_path)
    assert page.path == "/m/salesforce-prod/006NORD"
    token = parse_qs(page.query)["t"][0]
    assert SIGNER.read_page_token(token, connection="salesforce-prod", opportunity_id="006NORD")
    assert SIGNER.read_session_token(view.session_token).connection == "salesforce-prod"


def test_deleted_or_unknown_deals_and_connections_raise(recommender: Recommender) -> None:
    with pytest.raises(OpportunityNotFound, match="was deleted"):
        build_view(recommender, SIGNER, connection="salesforce-prod", opportunity_id="006GONE",
                   rep="ana@example.com")  # fmt: skip
    with pytest.raises(KeyError, match="no connection named 'nope'"):
        build_view(recommender, SIGNER, connection="nope", opportunity_id="006NORD",
                   rep="ana@example.com")  # fmt: skip


def test_amounts_read_the_way_reps_write_them() -> None:
    assert format_amount(Decimal("120000"), "EUR") == "€120,000"
    assert format_amount(Decimal("95500.5"), "CHF") == "CHF 95,500.50"
    assert format_amount(Decimal("10"), None) == "10"
    assert format_amount(None, "USD") is None
