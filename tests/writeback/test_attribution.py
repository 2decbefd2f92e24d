"""Whose timeline an activity lands on, and what it says when that is not the rep's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.core.activities import Activity, OwnerSource, clip, format_duration
from stagelink.writeback import OwnerDirectory, WritebackOptions

DIRECTORY = OwnerDirectory(
    "salesforce",
    {"ana@acme.example": "005A", "ops@acme.example": "005I"},
    inactive=frozenset({"005X"}),
    integration_email="Ops@Acme.example",
)


def test_a_rep_with_a_crm_user_owns_the_activity_without_a_note() -> None:
    found = DIRECTORY.attribute("Ana@Acme.example ", "005B")
    assert (found.owner_crm_id, found.source, found.note) == ("005A", OwnerSource.REP, None)


def test_a_rep_without_a_user_falls_back_to_the_deal_owner_and_says_so() -> None:
    found = DIRECTORY.attribute("new@acme.example", "005B")
    assert (found.owner_crm_id, found.source) == ("005B", OwnerSource.OPPORTUNITY_OWNER)
    assert found.note == (
        "Recorded for new@acme.example, who has no Salesforce user; "
        "assigned to the opportunity owner."
    )


def test_an_inactive_deal_owner_gives_way_to_the_integration_user() -> None:
    found = DIRECTORY.attribute("new@acme.example", "005X")
    assert (found.owner_crm_id, found.source) == ("005I", OwnerSource.INTEGRATION_USER)
    assert found.note is not None
    assert found.note.endswith("assigned to the integration user ops@acme.example.")


def test_with_nobody_known_the_crm_default_is_named() -> None:
    hubspot = OwnerDirectory("hubspot", {})
    found = hubspot.attribute("new@acme.example", None)
    assert (found.owner_crm_id, found.source) == (None, OwnerSource.DEFAULT)
    assert found.note == (
        "Recorded for new@acme.example, who has no HubSpot owner; assigned to no owner."
    )


def _activity(**changes: object) -> Activity:
    values: dict[str, object] = {
        "marker": "sl-00000000-0000-0000-0000-000000000001",
        "opportunity_crm_id": "006A",
        "action": "downloaded",
        "occurred_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "content_id": "deck",
        "content_title": "Deck",
        "rep_email": "ana@acme.example",
    }
    values.update(changes)
    return Activity(**values)  # type: ignore[arg-type]


def test_subjects_are_cut_to_the_crm_limit_with_an_ellipsis() -> None:
    subject = _activity(content_title="t" * 400).subject(255)
    assert len(subject) == 255
    assert subject.startswith("Downloaded: ttt")
    assert subject.endswith("…")
    assert clip("short", 255) == "short"


def test_a_cut_body_keeps_its_marker_line() -> None:
    body = _activity(content_title="t" * 5000).text_body(1000)
    assert len(body) <= 1000
    assert body.endswith("stagelink event: sl-00000000-0000-0000-0000-000000000001")


def test_durations_read_like_people_write_them() -> None:
    assert [format_duration(s) for s in (45, 60, 95, 3600)] == [
        "45 s",
        "1 min",
        "1 min 35 s",
        "60 min",
    ]


def test_an_activity_without_its_owner_keeps_the_earlier_note() -> None:
    changed = _activity(owner_crm_id="005X", attribution_note="Recorded for x.").without_owner(
        "Refused."
    )
    assert (changed.owner_crm_id, changed.owner_source) == (None, OwnerSource.DEFAULT)
    assert changed.attribution_note == "Recorded for x. Refused."


def test_retries_back_off_exponentially_with_jitter_within_bounds() -> None:
    options = WritebackOptions(backoff_base=timedelta(seconds=10), backoff_max=timedelta(hours=1))
    delays = [options.backoff(n).total_seconds() for n in (1, 2, 3, 12)]
    assert 10 <= delays[0] <= 20
    assert 20 <= delays[1] <= 30
    assert 40 <= delays[2] <= 50
    assert delays[3] == 3600
    assert options.backoff(1, timedelta(minutes=5)) == timedelta(minutes=5)
