"""``stagelink tokens create|list|revoke``: API tokens for the usage API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from connectors.core.config import Duration
from stagelink.cli.common import ConfigOption, JsonOption, console, fail, load, print_json
from stagelink.storage import StorageError, TokenKind, utcnow
from stagelink.sync import open_storage
from stagelink.usage.tokens import (
    DEFAULT_SCOPES,
    TokenError,
    TokenInfo,
    create_token,
    list_tokens,
    revoke_tokens,
)

app = typer.Typer(
    help="API tokens for the usage API (stored hashed; shown once).", no_args_is_help=True
)

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


def _expiry(text: str | None) -> timedelta | None:
    if text is None or text.strip().lower() in ("", "never", "none"):
        return None
    try:
        return _DURATION.validate_python(text)
    except ValidationError:
        fail(f"--expires {text!r}: expected a duration such as 90d, 12h or 30m, or 'never'")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _row(token: TokenInfo, now: datetime) -> dict[str, Any]:
    return {
        "prefix": token.prefix,
        "name": token.name,
        "kind": token.kind.value,
        "rep": token.rep_email,
        "scopes": list(token.scopes),
        "state": token.state(now),
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name people recognise: 'ana-phone', 'web-page'.")],
    rep: Annotated[
        str | None, typer.Option("--rep", help="A rep token acting as this rep (e-mail).")
    ] = None,
    integration: Annotated[
        bool,
        typer.Option("--integration", help="An integration token; each event names its rep."),
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime such as 90d, 12h; default: never."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"Scope (repeatable; default {', '.join(DEFAULT_SCOPES)})."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it once: only its SHA-256 is stored."""
    if (rep is None) == (not integration):
        fail("give exactly one of --rep EMAIL (a rep's token) or --integration")
    lifetime = _expiry(expires)
    settings = load(config)
    kind = TokenKind.REP if rep is not None else TokenKind.INTEGRATION
    try:
        with open_storage(settings) as storage, storage.sessions.begin() as session:
            info, token = create_token(
                session,
                name,
                kind=kind,
                rep_email=rep.strip().lower() if rep else None,
                scopes=scope or DEFAULT_SCOPES,
                expires_in=lifetime,
            )
    except (TokenError, StorageError) as exc:
        fail(str(exc))
    if as_json:
        print_json({**_row(info, utcnow()), "token": token})
        return
    who = f"rep {info.rep_email}" if info.rep_email else "an integration"
    console.print(
        f"created token [bold]{info.name}[/] ({info.prefix}…) for {who}, "
        f"expires {_when(info.expires_at) if info.expires_at else 'never'}",
        highlight=False,
    )
    console.print("Copy it now; it is not stored and cannot be shown again:")
    # Plain print: no wrapping or markup may alter the secret.
    typer.echo(token)


@app.command("list")
def list_command(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every token: prefix, name, kind, rep, created, last used, expires, state."""
    settings = load(config)
    try:
        with open_storage(settings) as storage, storage.sessions() as session:
            tokens = list_tokens(session)
    except StorageError as exc:
        fail(str(exc))
    now = utcnow()
    rows = [_row(token, now) for token in tokens]
    if as_json:
        print_json(rows)
        return
    table = Table(title="API tokens", title_justify="left")
    for column in ("prefix", "name", "kind", "rep", "created", "last used", "expires", "state"):
        table.add_column(column)
    for token in tokens:
        state = token.state(now)
        if state == "revoked":
            state = f"revoked {_when(token.revoked_at)}"
        table.add_row(
            token.prefix,
            token.name,
            token.kind.value,
            token.rep_email or "-",
            _when(token.created_at),
            _when(token.last_used_at),
            _when(token.expires_at) if token.expires_at else "never",
            state,
        )
    console.print(table)


@app.command("revoke")
def revoke(
    name_or_prefix: Annotated[str, typer.Argument(help="The token's name or its prefix.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token now: its next request is refused with 401."""
    settings = load(config)
    try:
        with open_storage(settings) as storage, storage.sessions.begin() as session:
            revoked = revoke_tokens(session, name_or_prefix)
    except (TokenError, StorageError) as exc:
        fail(str(exc))
    now = utcnow()
    if as_json:
        print_json([_row(token, now) for token in revoked])
        return
    if not revoked:
        console.print(f"{name_or_prefix}: already revoked", highlight=False)
        return
    for token in revoked:
        console.print(f"revoked {token.name} ({token.prefix}…)", highlight=False)
