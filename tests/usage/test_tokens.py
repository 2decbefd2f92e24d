"""API tokens: stored as SHA-256 only, revocable, expiring; and ``stagelink tokens`` as an admin
runs it (a real process, real exit codes)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from stagelink.storage import ApiToken, TokenKind, make_engine
from stagelink.sync.runner import Storage
from stagelink.usage import AuthError, TokenError, authenticate
from stagelink.usage.tokens import create_token, revoke_tokens

from .helpers import make_token

STAGELINK = Path(sys.executable).parent / "stagelink"


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    engine = make_engine(database_url)
    yield Storage(engine)
    engine.dispose()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_only_the_hash_is_stored_and_the_token_authenticates(storage: Storage) -> None:
    info, token = make_token(storage, "ana-phone", rep="Ana@Example.com")
    assert token.startswith("slk_")
    assert len(token) >= 40
    with storage.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        stored = [str(getattr(row, c.key)) for c in ApiToken.__table__.columns]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in value for value in stored)  # the secret is nowhere
    assert row.prefix == token[:12]
    assert (row.kind, row.rep_email, row.scopes) == (
        TokenKind.REP,
        "ana@example.com",
        ["usage:write"],
    )
    found = authenticate(storage.sessions, bearer(token))
    assert (found.id, found.rep_email) == (info.id, "ana@example.com")
    # The scheme is case-insensitive (RFC 7235); the token is not.
    assert authenticate(storage.sessions, f"bearer  {token} ").id == info.id
    with pytest.raises(AuthError) as wrong_case:
        authenticate(storage.sessions, bearer(token.upper()))
    assert wrong_case.value.code == "invalid_token"


def test_revoked_and_expired_tokens_are_refused(storage: Storage) -> None:
    _, token = make_token(storage, "web-page")
    _, short = make_token(storage, "short-lived", expires_in=timedelta(hours=1))
    assert authenticate(storage.sessions, bearer(short)).expires_at is not None
    with storage.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.name == "short-lived")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(AuthError, match="expired at") as expired:
        authenticate(storage.sessions, bearer(short))
    assert (expired.value.code, expired.value.status) == ("invalid_token", 401)
    with storage.sessions.begin() as session:
        revoked = revoke_tokens(session, token[:12])  # by prefix
    assert [t.name for t in revoked] == ["web-page"]
    assert revoked[0].state() == "revoked"
    with pytest.raises(AuthError, match="was revoked"):
        authenticate(storage.sessions, bearer(token))
    with pytest.raises(AuthError) as missing:
        authenticate(storage.sessions, None)
    assert missing.value.code == "missing_token"


def test_names_are_unique_among_active_tokens_and_kinds_are_checked(storage: Storage) -> None:
    make_token(storage, "web-page")
    with pytest.raises(TokenError, match="an active token named 'web-page' exists"):
        make_token(storage, "web-page")
    with storage.sessions.begin() as session:
        revoke_tokens(session, "web-page")
    make_token(storage, "web-page")  # the name is free again
    with storage.sessions.begin() as session:
        with pytest.raises(TokenError, match="needs the rep"):
            create_token(session, "x", kind=TokenKind.REP)
        with pytest.raises(TokenError, match="give no --rep"):
            create_token(session, "y", kind=TokenKind.INTEGRATION, rep_email="a@b.co")
        with pytest.raises(TokenError, match="unknown scope admin"):
            create_token(session, "z", kind=TokenKind.INTEGRATION, scopes=["admin"])
        with pytest.raises(TokenError, match="no token named"):
            revoke_tokens(session, "nobody")


# -- the command ------------------------------------------------------------------------------


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINK_")}
    environ["COLUMNS"] = "200"
    return subprocess.run(
        [str(STAGELINK), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


def test_tokens_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    (tmp_path / "stagelink.yaml").write_text("database_url: sqlite:///stagelink.db\n")
    created = run(
        "tokens",
        "create",
        "ana-phone",
        "--rep",
        "ana@example.com",
        "--expires",
        "90d",
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("slk_")
    assert "expires 20" in created.stdout
    made = run("tokens", "create", "web", "--integration", "--json", cwd=tmp_path)
    web = json.loads(made.stdout)
    assert (web["kind"], web["rep"], web["expires_at"]) == ("integration", None, None)

    listed = run("tokens", "list", cwd=tmp_path)
    assert listed.returncode == 0
    assert token[:12] in listed.stdout
    assert token not in listed.stdout  # shown once, at creation only
    assert "ana@example.com" in listed.stdout
    rows = json.loads(run("tokens", "list", "--json", cwd=tmp_path).stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("ana-phone", "active"), ("web", "active")]
    expires = datetime.fromisoformat(rows[0]["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=89) < expires <= timedelta(days=90)

    revoked = run("tokens", "revoke", token[:12], cwd=tmp_path)
    assert revoked.returncode == 0
    assert "revoked ana-phone" in revoked.stdout
    rows = json.loads(run("tokens", "list", "--json", cwd=tmp_path).stdout)
    assert [r["state"] for r in rows] == ["revoked", "active"]
    engine = make_engine(f"sqlite:///{tmp_path / 'stagelink.db'}")
    try:
        with pytest.raises(AuthError, match="revoked"):
            authenticate(Storage(engine).sessions, bearer(token))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "x"], "give exactly one of --rep EMAIL"),
        (["create", "x", "--rep", "a@b.co", "--integration"], "give exactly one of --rep EMAIL"),
        (["create", "x", "--integration", "--expires", "soon"], "--expires 'soon'"),
        (["create", "x", "--integration", "--scope", "admin"], "unknown scope admin"),
        (["revoke", "nobody"], "no token named or starting with 'nobody'"),
    ],
)
def test_tokens_command_refuses_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "stagelink.yaml").write_text("database_url: sqlite:///stagelink.db\n")
    result = run("tokens", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
