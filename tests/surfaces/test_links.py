"""Signed rep links: each kind grants exactly what it says, until it expires, and no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.core.errors import ConfigurationError
from stagelink.settings import AppConfig
from stagelink.surfaces.links import LinkError, LinkSigner, page_path, signing_key_for

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def signer_at(moment: datetime, key: bytes = KEY) -> LinkSigner:
    return LinkSigner(key, clock=lambda: moment)


def test_a_page_token_opens_only_its_own_deal_until_it_expires() -> None:
    token = signer_at(NOW).page_token(rep="Ana@Example.com", connection="hs", opportunity_id="42")
    grant = signer_at(NOW + timedelta(days=6)).read_page_token(
        token, connection="hs", opportunity_id="42"
    )
    assert (grant.rep, grant.connection, grant.opportunity_id) == ("ana@example.com", "hs", "42")
    with pytest.raises(LinkError, match="another opportunity"):
        signer_at(NOW).read_page_token(token, connection="hs", opportunity_id="43")
    with pytest.raises(LinkError) as expired:
        signer_at(NOW + timedelta(days=7, seconds=1)).read_page_token(
            token, connection="hs", opportunity_id="42"
        )
    assert expired.value.reason == "expired at 2026-12-03 12:00Z"


def test_tampered_tokens_and_other_keys_are_refused() -> None:
    signer = signer_at(NOW)
    token = signer.tracked_token(
        rep="ana@example.com", connection="hs", opportunity_id="42", content_id="roi"
    )
    payload, signature = token.rsplit(".", 1)
    # Same signature over another payload (a different content id, say).
    other = signer.tracked_token(
        rep="ana@example.com", connection="hs", opportunity_id="42", content_id="pricing"
    )
    swapped = other.rsplit(".", 1)[0] + "." + signature
    for bad in (swapped, payload + ".", token[:-3] + "abc", "", "x" * 3000):
        with pytest.raises(LinkError):
            signer.read_tracked_token(bad)
    with pytest.raises(LinkError, match="bad signature"):
        signer_at(NOW, b"another key, also 32 bytes long!").read_tracked_token(token)
    assert signer.read_tracked_token(token).content_id == "roi"


def test_one_kind_of_token_never_passes_for_another() -> None:
    signer = signer_at(NOW)
    page = signer.page_token(rep="ana@example.com", connection="hs", opportunity_id="42")
    session = signer.session_token(rep="ana@example.com", connection="hs")
    with pytest.raises(LinkError):
        signer.read_tracked_token(page)
    with pytest.raises(LinkError):
        signer.read_session_token("sls_" + page)
    with pytest.raises(LinkError):
        signer.read_page_token(session.removeprefix("sls_"), connection="hs", opportunity_id="42")
    assert signer.read_session_token(session).rep == "ana@example.com"


def test_paths_quote_what_would_break_a_url() -> None:
    assert page_path("hs", "a/b c", "t.k") == "/m/hs/a%2Fb%20c?t=t.k"


def test_the_key_comes_from_config_else_a_key_file_beside_sqlite(tmp_path: Path) -> None:
    sqlite = AppConfig(database_url=f"sqlite:///{tmp_path}/db/stagelink.db")
    first = signing_key_for(sqlite)
    assert (tmp_path / "db" / "stagelink-links.key").exists()
    assert signing_key_for(sqlite) == first  # stable across restarts
    configured = AppConfig.model_validate(
        {"database_url": sqlite.database_url, "surfaces": {"signing_key": "s" * 40}}
    )
    assert signing_key_for(configured) != first
    postgres = AppConfig(database_url="postgresql://stagelink@db:5432/stagelink")
    with pytest.raises(ConfigurationError, match=r"^surfaces\.signing_key: required"):
        signing_key_for(postgres)


def test_a_short_signing_key_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match="signing_key must be at least 32 characters"):
        AppConfig.model_validate({"surfaces": {"signing_key": "short"}})
