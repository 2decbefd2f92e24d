"""When a rep's waiting changes go out: quiet hours, collecting a burst, rate limit, digests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from stagelink.nudges.config import QuietHours, RateLimit
from stagelink.nudges.plan import Decision, Policy, Waiting, decide

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def policy(**changes: object) -> Policy:
    values: dict[str, object] = {
        "rate_limit": RateLimit(max=4, per=timedelta(hours=1)),
        "digest_threshold": 5,
        "collect_for": timedelta(seconds=30),
        "collect_max": timedelta(minutes=5),
        "quiet_hours": None,
    }
    values.update(changes)
    return Policy(**values)  # type: ignore[arg-type]


def waiting(count: int, *, ago: timedelta = timedelta(minutes=1)) -> list[Waiting]:
    return [Waiting(id=i + 1, detected_at=NOW - ago) for i in range(count)]


def test_a_few_changes_go_out_one_nudge_each() -> None:
    assert decide(waiting(3), now=NOW, policy=policy(), recent=[]) == Decision(singles=(1, 2, 3))


def test_many_changes_at_once_make_one_digest() -> None:
    decision = decide(waiting(500), now=NOW, policy=policy(), recent=[])

    assert decision.singles == ()
    assert decision.digest == tuple(range(1, 501))


def test_more_changes_than_the_rate_limit_allows_make_a_digest() -> None:
    recent = [NOW - timedelta(minutes=10)] * 3  # one of four left this hour

    decision = decide(waiting(2), now=NOW, policy=policy(), recent=recent)

    assert decision == Decision(digest=(1, 2))


def test_at_the_rate_limit_the_rep_waits_until_the_oldest_nudge_ages_out() -> None:
    recent = [NOW - timedelta(minutes=m) for m in (50, 40, 30, 5)]

    decision = decide(waiting(1), now=NOW, policy=policy(), recent=recent)

    assert decision.wait == "rate_limited"
    assert decision.until == NOW + timedelta(minutes=10)


def test_nudges_older_than_the_window_do_not_count() -> None:
    recent = [NOW - timedelta(hours=2)] * 10

    assert decide(waiting(1), now=NOW, policy=policy(), recent=recent) == Decision(singles=(1,))


def test_a_burst_still_arriving_is_collected_but_not_forever() -> None:
    arriving = [
        Waiting(1, NOW - timedelta(seconds=50)),
        Waiting(2, NOW - timedelta(seconds=10)),
    ]
    endless = [Waiting(1, NOW - timedelta(minutes=6)), Waiting(2, NOW - timedelta(seconds=1))]

    first = decide(arriving, now=NOW, policy=policy(), recent=[])
    capped = decide(endless, now=NOW, policy=policy(), recent=[])

    assert first.wait == "collecting"
    assert first.until == NOW + timedelta(seconds=20)
    assert capped == Decision(singles=(1, 2))


BERLIN_NIGHT = QuietHours(start=time(20, 0), end=time(7, 0), timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("utc", "ends"),
    [
        # 23:30 in Berlin (CET, UTC+1): quiet until 07:00 the next morning.
        (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        # 06:59 in Berlin: quiet for one more minute.
        (datetime(2026, 11, 27, 5, 59, tzinfo=UTC), datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        # 07:00 and 19:59 in Berlin: not quiet.
        (datetime(2026, 11, 27, 6, 0, tzinfo=UTC), None),
        (datetime(2026, 11, 27, 18, 59, tzinfo=UTC), None),
        # Summer time (CEST, UTC+2): 21:00 local is 19:00 UTC.
        (datetime(2026, 7, 1, 19, 0, tzinfo=UTC), datetime(2026, 7, 2, 5, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_are_local_time_and_may_span_midnight(
    utc: datetime, ends: datetime | None
) -> None:
    found = BERLIN_NIGHT.ends_after(utc)

    assert found == ends


def test_quiet_hours_hold_everything_until_they_end() -> None:
    night = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)

    decision = decide(
        [Waiting(1, night - timedelta(hours=1))],
        now=night,
        policy=policy(quiet_hours=BERLIN_NIGHT),
        recent=[],
    )

    assert decision.wait == "quiet_hours"
    assert decision.until == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def test_a_daytime_window_does_not_span_midnight() -> None:
    lunch = QuietHours(start=time(12, 0), end=time(13, 0), timezone="UTC")

    assert lunch.ends_after(NOW + timedelta(minutes=30)) == NOW + timedelta(hours=1)
    assert lunch.ends_after(NOW - timedelta(minutes=1)) is None
    assert lunch.ends_after(NOW + timedelta(hours=1)) is None
