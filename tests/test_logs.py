"""Logs never carry credentials, whatever shape they arrive in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from stagelink.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_redact_secret_keys_and_token_values(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    get_logger("test").info(
        "login",
        password="hunter2",
        headers={"Authorization": "Bearer abc.def", "Accept": "application/json"},
        url="https://x/services/data?token=1 Bearer 00Dxx0000001gPL!AR8AQJabc",
        portal_token="pat-na1-11111111-2222",
    )
    logging.getLogger("stdlib").warning("called with pat-na1-aaaa-bbbb")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    first, second = lines
    assert first["password"] == "[redacted]"
    assert first["headers"] == {"Authorization": "[redacted]", "Accept": "application/json"}
    assert "00Dxx" not in first["url"]
    assert first["portal_token"] == "[redacted]"
    assert first["event"] == "login"
    assert "pat-na1" not in second["event"]
    assert second["level"] == "warning"
