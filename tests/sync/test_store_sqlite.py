"""On SQLite the writer binds rows itself (SQLAlchemy's per-row work was most of a sync's time):
what it stores must be exactly what SQLAlchemy stores, and "unchanged" must still mean
unchanged. PostgreSQL keeps the SQLAlchemy path, covered with SQLite by ``test_engine.py``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.records import Account, CrmRecord, Opportunity, Owner, Pipeline, Stage
from stagelink.storage import (
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmPipeline,
    CrmStage,
    get_or_create_connection,
    make_engine,
    session_factory,
)
from stagelink.sync.store import RecordWriter

INDIA = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2026, 1, 5, 9, 30, 15, 250_000, tzinfo=UTC)

RECORDS: list[CrmRecord] = [
    Owner("005A", " Rep.Name@Example.COM ", "Ren\x00ée", raw={"Id": "005A"}),
    Pipeline("default", "Opportunities", raw={}),
    Stage("default", "Closed Won", "Closed Won", 7, 1.0, True, True, raw={"ApiName": "x"}),
    Account(
        "001A",
        "Ünïcødé GmbH \x00",
        industry="Banking",
        annual_revenue=Decimal("123456789.1234"),
        currency="EUR",
        custom_fields={"Region__c": "EMEA", "Seats": 12, "Ratio": 0.25},
        crm_created_at=datetime(2024, 2, 29, 23, 59, 59, tzinfo=INDIA),
        crm_modified_at=T0,
        raw={"Id": "001A", "Name": "Ünïcødé GmbH", "AnnualRevenue": 123456789.1234},
    ),
    Opportunity(
        "006A",
        "株式会社 — Deal",
        account_crm_id="001A",
        pipeline_crm_id="default",
        stage_crm_id="Closed Won",
        stage_label="Closed Won",
        amount=Decimal("25800000.5"),
        currency="JPY",
        close_date=date(2024, 1, 20),
        probability=0.75,
        is_closed=True,
        is_won=True,
        custom_fields={"b": "x\x00y", "a": None, "nested": {"k": [1, 2.5, None, True]}},
        crm_created_at=datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        crm_modified_at=datetime(2024, 1, 20, 3, 0, tzinfo=UTC),
        raw={"Id": "006A", "Amount": 25800000.5, "IsWon": True, "Name": "株式会社 — Deal"},
    ),
    Opportunity(
        "006B",
        None,
        amount=Decimal("0.1"),
        probability=None,
        close_date=date(999, 12, 31),
        crm_modified_at=datetime(2024, 1, 20, 3, 0, 0, 1, tzinfo=INDIA),
        stage_entered_at=datetime(2024, 1, 1, tzinfo=INDIA),
        raw={"Id": "006B"},
    ),
]
TABLES = [CrmOwner, CrmPipeline, CrmStage, CrmAccount, CrmOpportunity]


@pytest.fixture
def engine(sqlite_database_url: str) -> Engine:
    return make_engine(sqlite_database_url)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def connection_ids(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions.begin() as session:
        ours = get_or_create_connection(session, "ours", "salesforce").id
        reference = get_or_create_connection(session, "reference", "salesforce").id
    return ours, reference


def scrub(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) else value


def reference_row(record: CrmRecord) -> dict[str, Any]:
    """The row as the SQLAlchemy path builds it: NULs out of text, e-mail lower-cased by
    its column type, no stage entry time when the CRM gave none (the derived one is kept)."""
    row = {k: scrub(v) for k, v in dataclasses.asdict(record).items()}
    row["raw"] = record.raw if hasattr(record, "raw") else None
    if isinstance(record, Opportunity) and record.stage_entered_at is None:
        del row["stage_entered_at"]
    return row


def raw_rows(session: Session, model: Any, connection_id: int) -> dict[str, tuple[Any, ...]]:
    table = model.__table__
    columns = [c.name for c in table.c if c.name not in ("id", "connection_id", "synced_at")]
    found = session.execute(
        text(f"SELECT {', '.join(columns)} FROM {table.name} WHERE connection_id = :c"),
        {"c": connection_id},
    )
    return {f"{row.crm_id}": tuple(row) for row in found}


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(
    sessions: sessionmaker[Session],
) -> None:
    ours, reference = connection_ids(sessions)
    synced = datetime(2026, 1, 1, tzinfo=UTC)
    with sessions.begin() as session:
        counts = RecordWriter(ours).apply(session, RECORDS)
        for model in TABLES:
            rows = [
                {**reference_row(r), "connection_id": reference, "synced_at": synced}
                for r in RECORDS
                if type(r).__name__ == model.__name__.removeprefix("Crm")
            ]
            for row in rows:  # one statement per row: each keeps its own set of columns
                session.execute(insert(model), [row])

    assert counts["inserted"] == len(RECORDS)
    with sessions() as session:
        for model in TABLES:
            assert raw_rows(session, model, ours) == raw_rows(session, model, reference), model


def test_a_second_write_of_the_same_records_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    ours, _ = connection_ids(sessions)
    with sessions.begin() as session:
        RecordWriter(ours).apply(session, RECORDS)
    reordered = [
        dataclasses.replace(r, raw=dict(reversed(list(r.raw.items()))))
        if isinstance(r, Opportunity)
        else r
        for r in RECORDS
    ]

    with sessions.begin() as session:
        again = RecordWriter(ours).apply(session, reordered)

    # The same payload with its keys in another order is the same data.
    assert (again["unchanged"], again["updated"], again["inserted"]) == (len(RECORDS), 0, 0)


def test_a_changed_value_is_written_and_an_older_read_is_not(
    sessions: sessionmaker[Session],
) -> None:
    ours, _ = connection_ids(sessions)
    first = RECORDS[-1]
    assert isinstance(first, Opportunity)
    assert first.crm_modified_at is not None
    with sessions.begin() as session:
        RecordWriter(ours).apply(session, [first])
    newer = dataclasses.replace(
        first, amount=Decimal("0.2"), crm_modified_at=first.crm_modified_at + timedelta(seconds=1)
    )
    older = dataclasses.replace(
        first, amount=Decimal("0.3"), crm_modified_at=first.crm_modified_at - timedelta(days=1)
    )

    with sessions.begin() as session:
        changed = RecordWriter(ours).apply(session, [newer])
    with sessions.begin() as session:
        stale = RecordWriter(ours).apply(session, [older])

    assert (changed["updated"], stale["updated"], stale["unchanged"]) == (1, 0, 1)
    with sessions() as session:
        amount = session.execute(
            text("SELECT amount FROM crm_opportunities WHERE crm_id = '006B'")
        ).scalar()
    assert amount == 0.2
