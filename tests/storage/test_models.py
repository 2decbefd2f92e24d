"""Tables keep their promises on both backends: uniqueness, UTC datetimes, JSON, money."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from stagelink.storage import (
    Base,
    Connection,
    CrmOpportunity,
    CrmOwner,
    CrmStageHistory,
    JobKind,
    JobRun,
    OutboxState,
    UsageAction,
    UsageEvent,
    UsageStatus,
    WritebackOutbox,
    session_factory,
)


@pytest.fixture
def acme(session: Session) -> Connection:
    connection = Connection(name="acme", kind="salesforce")
    session.add(connection)
    session.commit()
    return connection


def _event(connection: Connection, client_event_id: uuid.UUID) -> UsageEvent:
    return UsageEvent(
        client_event_id=client_event_id,
        connection_id=connection.id,
        rep_email="rep@example.com",
        opportunity_crm_id="006000000000001AAA",
        content_id="deck-1",
        action=UsageAction.PRESENTED,
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        status=UsageStatus.ACCEPTED,
    )


def test_duplicate_client_event_id_is_rejected(session: Session, acme: Connection) -> None:
    event_id = uuid.uuid4()
    session.add(_event(acme, event_id))
    session.commit()

    session.add(_event(acme, event_id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()

    assert session.scalars(select(UsageEvent.client_event_id)).all() == [event_id]


def test_crm_ids_are_unique_per_connection_only(session: Session, acme: Connection) -> None:
    other = Connection(name="acme-hubspot", kind="hubspot")
    session.add(other)
    session.flush()
    session.add_all(
        [
            CrmOpportunity(connection_id=acme.id, crm_id="42", name="Acme renewal"),
            CrmOpportunity(connection_id=other.id, crm_id="42", name="Same id, other CRM"),
        ]
    )
    session.commit()

    session.add(CrmOpportunity(connection_id=acme.id, crm_id="42", name="Duplicate"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_same_stage_transition_is_stored_once(session: Session, acme: Connection) -> None:
    changed = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    history = {
        "connection_id": acme.id,
        "opportunity_crm_id": "006A",
        "from_stage": "Qualification",
        "to_stage": "Proposal",
        "changed_at": changed,
        "source": "field_history",
    }
    session.add(CrmStageHistory(**history))
    session.commit()
    # Learned again from another source, at the same instant written in another zone.
    in_berlin = changed.astimezone(timezone(timedelta(hours=1)))
    again = dict(history, source="date_entered", changed_at=in_berlin)
    session.add(CrmStageHistory(**again))
    with pytest.raises(IntegrityError):
        session.commit()


def test_aware_datetimes_round_trip_as_utc(engine: Engine, acme: Connection) -> None:
    factory = session_factory(engine)
    new_york = timezone(timedelta(hours=-5))
    modified = datetime(2026, 2, 28, 19, 45, 30, 123456, tzinfo=new_york)
    with factory.begin() as session:
        session.add(
            CrmOpportunity(
                connection_id=acme.id,
                crm_id="006B",
                crm_modified_at=modified,
                close_date=date(2026, 3, 31),
            )
        )
    with factory() as session:  # a new session: values come from the database
        stored = session.scalars(select(CrmOpportunity)).one()
        assert stored.crm_modified_at == modified
        assert stored.crm_modified_at is not None
        assert stored.crm_modified_at.tzinfo == UTC
        assert stored.crm_modified_at.isoformat() == "2026-03-01T00:45:30.123456+00:00"
        assert stored.close_date == date(2026, 3, 31)
        # Comparisons in SQL see the instant, whatever zone the bound value is in.
        tokyo = timezone(timedelta(hours=9))
        modified_before = select(CrmOpportunity.crm_id).where(
            CrmOpportunity.crm_modified_at < datetime(2026, 3, 1, 9, 45, 31, tzinfo=tokyo)
        )
        assert session.scalars(modified_before).all() == ["006B"]
        modified_after = select(CrmOpportunity.crm_id).where(
            CrmOpportunity.crm_modified_at > datetime(2026, 3, 1, 9, 45, 31, tzinfo=tokyo)
        )
        assert session.scalars(modified_after).all() == []


def test_naive_datetimes_are_refused(session: Session, acme: Connection) -> None:
    session.add(
        JobRun(connection_id=acme.id, kind=JobKind.SYNC, started_at=datetime(2026, 1, 1))  # noqa: DTZ001
    )
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()


def test_json_round_trips_unicode_and_nesting(engine: Engine, acme: Connection) -> None:
    factory = session_factory(engine)
    raw = {
        "Name": "Ünïcödé GmbH — 株式会社テスト — شركة — 🚀",
        "Nested": {"list": [1, 2.5, None, True, "ß"], "empty": {}},
        "Quote": 'He said "hi"\n\ttab',
    }
    custom = {"Product_Line__c": "Paiements ✓", "Zahl": 3}
    with factory.begin() as session:
        session.add(
            CrmOpportunity(connection_id=acme.id, crm_id="006C", raw=raw, custom_fields=custom)
        )
    with factory() as session:
        stored = session.scalars(select(CrmOpportunity)).one()
        assert stored.raw == raw
        assert stored.custom_fields == custom


def test_money_is_exact(engine: Engine, acme: Connection) -> None:
    factory = session_factory(engine)
    amounts = [Decimal("1234567890.12"), Decimal("0.01"), Decimal("99999999.9999")]
    with factory.begin() as session:
        for number, amount in enumerate(amounts):
            session.add(
                CrmOpportunity(
                    connection_id=acme.id, crm_id=f"m{number}", amount=amount, currency="EUR"
                )
            )
    with factory() as session:
        stored = session.scalars(select(CrmOpportunity.amount).order_by(CrmOpportunity.crm_id))
        assert list(stored) == amounts


def test_emails_match_whatever_their_case(session: Session, acme: Connection) -> None:
    session.add(CrmOwner(connection_id=acme.id, crm_id="005A", email=" Jane.Doe@Example.COM "))
    session.commit()
    owner = session.scalars(select(CrmOwner).where(CrmOwner.email == "JANE.DOE@example.com")).one()
    session.refresh(owner)
    assert owner.email == "jane.doe@example.com"


def test_status_values_are_stored_as_readable_words(session: Session, acme: Connection) -> None:
    event = _event(acme, uuid.uuid4())
    session.add(event)
    session.flush()
    session.add(
        WritebackOutbox(
            usage_event_id=event.id,
            connection_id=acme.id,
            external_marker=f"stagelink:{event.client_event_id}",
        )
    )
    session.commit()
    row = session.execute(
        text(
            "SELECT e.action, e.status, o.state, o.attempts FROM usage_events e "
            "JOIN writeback_outbox o ON o.usage_event_id = e.id"
        )
    ).one()
    assert tuple(row) == ("presented", "accepted", "pending", 0)
    assert session.scalars(select(WritebackOutbox.state)).one() is OutboxState.PENDING


def test_deleting_a_connection_removes_its_records(session: Session, acme: Connection) -> None:
    event = _event(acme, uuid.uuid4())
    session.add_all([event, CrmOpportunity(connection_id=acme.id, crm_id="006D")])
    session.flush()
    session.add(
        WritebackOutbox(usage_event_id=event.id, connection_id=acme.id, external_marker="m")
    )
    session.commit()

    session.execute(text("DELETE FROM connections WHERE name = 'acme'"))
    session.commit()

    for table in ("usage_events", "writeback_outbox", "crm_opportunities"):
        assert session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_constraint_names_fit_postgresql() -> None:
    names: list[object] = []
    for table in Base.metadata.tables.values():
        names += [constraint.name for constraint in table.constraints]
        names += [index.name for index in table.indexes]
    assert all(isinstance(name, str) and len(name) <= 63 for name in names), names
