"""The ``scheduler:`` block: durations as elsewhere, mistakes reported with their key path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stagelink.settings import ConfigError, parse_config


def test_the_scheduler_block_takes_durations_and_has_safe_defaults() -> None:
    default = parse_config("connections: []\n").scheduler
    assert (default.enabled, default.node_id, default.lease_ttl) == (
        True,
        None,
        timedelta(minutes=5),
    )
    settings = parse_config(
        "scheduler:\n  node_id: worker-1\n  lease_ttl: 30s\n  writeback_debounce: 500ms\n"
    ).scheduler
    assert settings.node_id == "worker-1"
    assert settings.lease_ttl == timedelta(seconds=30)
    assert settings.writeback_debounce == timedelta(milliseconds=500)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("lease_ttl: 0s", "lease_ttl must be at least 1s"),
        ("writeback_debounce: 5s\n  writeback_max_wait: 2s", "must not be shorter"),
        ("lease_tll: 1m", "lease_ttl"),  # a typo gets a "did you mean"
        ("misfire_grace: soon", "expected a duration"),
    ],
)
def test_scheduler_mistakes_are_reported_with_their_key(block: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f"scheduler:\n  {block}\n")
    rendered = raised.value.render()
    assert "scheduler" in rendered
    assert message in rendered
