"""``nudges:`` settings: mistakes are named by key, VAPID keys load in the formats people
have, and the ``vapid-key`` command writes one stagelink reads back."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from typer.testing import CliRunner

from stagelink.cli.nudges import app
from stagelink.nudges.config import NudgeSettings, VapidSettings, load_vapid_key
from stagelink.nudges.service import configuration_problems
from stagelink.settings import AppConfig, ConfigError, parse_config
from tests.nudges.conftest import VAPID_PEM

SMTP = {"host": "smtp.example.com", "from_address": "stagelink <n@example.com>"}
VAPID = {"private_key": VAPID_PEM, "subject": "mailto:ops@example.com"}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        NudgeSettings.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def test_off_by_default_and_nothing_else_required() -> None:
    assert NudgeSettings().enabled is False


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        ({"enabled": True, "channels": ["email"]}, "", "smtp: required"),
        ({"enabled": True, "channels": ["push"], "smtp": SMTP}, "", "vapid: required"),
        ({"channels": ["sms"]}, "channels.0", "'email' or 'push'"),
        ({"smtp": {**SMTP, "from_address": "nobody"}}, "smtp.from_address", "e-mail address"),
        ({"smtp": {**SMTP, "username": "u"}}, "smtp", "username and password go together"),
        ({"vapid": {**VAPID, "private_key": "bm90IGEga2V5"}}, "vapid.private_key", "readable"),
        ({"vapid": {**VAPID, "subject": "ops@example.com"}}, "vapid.subject", "pattern"),
        (
            {"quiet_hours": {"start": "20:00", "end": "07:00", "timezone": "Mars/Olympus"}},
            "quiet_hours.timezone",
            "unknown time zone",
        ),
        ({"quiet_hours": {"start": "20:00", "end": "20:00"}}, "quiet_hours", "must differ"),
        ({"rate_limit": {"max": 0}}, "rate_limit.max", "greater than or equal to 1"),
        (
            {"reps": [{"email": "a@x.com"}, {"email": "A@x.com"}]},
            "",
            "reps[1].email: a@x.com is listed twice",
        ),
    ],
)
def test_mistakes_name_the_key_and_what_was_expected(
    data: dict[str, Any], where: str, says: str
) -> None:
    found = problems(data)

    assert any(loc == where and says in msg for loc, msg in found), found


def test_rep_preferences_override_channels_and_quiet_hours() -> None:
    settings = NudgeSettings.model_validate(
        {
            "channels": ["email", "push"],
            "quiet_hours": {"start": "20:00", "end": "07:00"},
            "reps": [
                {"email": "Ana@Example.com", "channels": ["push"]},
                {"email": "bo@example.com", "enabled": False},
                {"email": "cy@example.com", "quiet_hours": {"start": "22:00", "end": "06:00"}},
            ],
        }
    )

    assert settings.channels_for("ana@example.com") == ["push"]
    assert settings.channels_for("bo@example.com") == []
    assert settings.channels_for("dee@example.com") == ["email", "push"]
    cy = settings.quiet_hours_for("cy@example.com")
    assert cy is not None
    assert str(cy.start) == "22:00:00"
    default = settings.quiet_hours_for("ana@example.com")
    assert default is not None
    assert str(default.start) == "20:00:00"


def test_vapid_keys_load_from_pem_raw_base64url_and_der() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    expected = key.private_numbers().private_value

    for text in (
        pem,
        base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),  # `web-push generate-vapid-keys`
        base64.urlsafe_b64encode(der).decode(),
    ):
        assert load_vapid_key(text).private_numbers().private_value == expected


def test_a_key_on_another_curve_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    with pytest.raises(ValueError, match="P-256"):
        load_vapid_key(other.decode())


def test_vapid_key_command_writes_a_private_key_stagelink_reads(tmp_path: Path) -> None:
    out = tmp_path / "keys" / "vapid.pem"
    runner = CliRunner()

    made = runner.invoke(app, ["vapid-key", "--out", str(out)])
    refused = runner.invoke(app, ["vapid-key", "--out", str(out)])

    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"${{file:{out}}}" in made.stdout.replace("\n", "")
    settings = VapidSettings(private_key=out.read_text(), subject="mailto:ops@example.com")
    assert len(base64.urlsafe_b64decode(settings.public_key + "=")) == 65
    assert refused.exit_code == 2
    assert "--force" in refused.output


def test_whole_configuration_problems_name_their_keys() -> None:
    settings = NudgeSettings(enabled=True, channels=["email"], smtp=SMTP, connections=["nope"])
    config = AppConfig().model_copy(update={"nudges": settings})

    found = dict(configuration_problems(config))

    assert set(found) == {"server.public_url", "nudges.connections[0]"}
    assert "no connection named 'nope'" in found["nudges.connections[0]"]
    assert configuration_problems(AppConfig()) == []


def test_loading_a_config_with_nudges_but_no_public_url_names_the_key_and_line(
    tmp_path: Path,
) -> None:
    """Links in e-mails and push messages must be absolute: the file says where to fix it."""
    text = (
        "nudges:\n"
        "  enabled: true\n"
        "  channels: [email]\n"
        "  connections: [nope]\n"
        "  smtp: {host: 127.0.0.1, port: 2525, security: none,\n"
        "         from_address: 'stagelink <n@example.com>'}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source=tmp_path / "stagelink.yaml", environ={})
    rendered = raised.value.render()
    assert "server.public_url: required when nudges.enabled is true" in rendered
    assert "stagelink.yaml:4: nudges.connections[0]: no connection named 'nope'" in rendered
