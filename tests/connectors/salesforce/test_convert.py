"""Salesforce record dicts (REST JSON and Bulk CSV) → normalized records, without HTTP."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.core.normalize import (
    MAX_RAW_STRING,
    FieldError,
    clip_raw,
    to_bool,
    to_datetime,
    to_decimal,
    to_fraction,
)
from connectors.core.records import (
    Account,
    BadRecord,
    Deletion,
    ObjectType,
    Opportunity,
    Owner,
    Stage,
    StageChange,
)
from connectors.salesforce import convert
from connectors.salesforce.convert import FieldContext

NAME = '株式会社サンプル — Größe & Co. KG 🚀 O\'Brien "quoted"'
MULTI = FieldContext(
    extra_fields={"Product_Line__c": "picklist", "Seats__c": "double", "Renewal__c": "date"},
    multi_currency=True,
)

# The same opportunity as REST JSON and as a Bulk API 2.0 CSV row.
JSON_OPPORTUNITY: dict[str, Any] = {
    "attributes": {"type": "Opportunity", "url": "/services/data/v59.0/sobjects/Opportunity/x"},
    "Id": "0065e0000000041AAA",
    "Name": NAME,
    "AccountId": "0015e000000000OAAQ",
    "StageName": "Négociation/Revue",
    "Amount": 25800000.5,
    "CurrencyIsoCode": "JPY",
    "CloseDate": "2024-01-20",
    "Probability": 75.0,
    "IsClosed": False,
    "IsWon": False,
    "Type": "New Customer",
    "OwnerId": "0055e0000000007AAA",
    "CreatedDate": "2024-01-20T03:00:54.618+0000",
    "SystemModstamp": "2024-02-01T10:00:00.000+0000",
    "IsDeleted": False,
    "Product_Line__c": "Mobile — Ünïcode",
    "Seats__c": 12.0,
    "Renewal__c": "2025-01-31",
}
CSV_OPPORTUNITY: dict[str, str] = {
    "Id": "0065e0000000041AAA",
    "Name": NAME,
    "AccountId": "0015e000000000OAAQ",
    "StageName": "Négociation/Revue",
    "Amount": "25800000.50",
    "CurrencyIsoCode": "JPY",
    "CloseDate": "2024-01-20",
    "Probability": "75",
    "IsClosed": "false",
    "IsWon": "false",
    "Type": "New Customer",
    "OwnerId": "0055e0000000007AAA",
    "CreatedDate": "2024-01-20T03:00:54.618Z",
    "SystemModstamp": "2024-02-01T10:00:00.000Z",
    "IsDeleted": "false",
    "Product_Line__c": "Mobile — Ünïcode",
    "Seats__c": "12",
    "Renewal__c": "2025-01-31",
}


@pytest.mark.parametrize("record", [JSON_OPPORTUNITY, CSV_OPPORTUNITY], ids=["json", "csv"])
def test_an_opportunity_reads_the_same_from_json_and_csv(record: dict[str, Any]) -> None:
    result = convert.opportunity(record, MULTI)

    assert result == Opportunity(
        crm_id="0065e0000000041AAA",
        name=NAME,
        account_crm_id="0015e000000000OAAQ",
        pipeline_crm_id="default",
        stage_crm_id="Négociation/Revue",
        stage_label="Négociation/Revue",
        amount=Decimal("25800000.5"),
        currency="JPY",
        close_date=date(2024, 1, 20),
        probability=0.75,
        is_closed=False,
        is_won=False,
        type="New Customer",
        owner_crm_id="0055e0000000007AAA",
        custom_fields={
            "Product_Line__c": "Mobile — Ünïcode",
            "Seats__c": 12.0,
            "Renewal__c": "2025-01-31",
        },
        crm_created_at=datetime(2024, 1, 20, 3, 0, 54, 618000, tzinfo=UTC),
        crm_modified_at=datetime(2024, 2, 1, 10, tzinfo=UTC),
    )
    assert isinstance(result, Opportunity)
    assert "attributes" not in result.raw
    assert result.raw["Name"] == NAME


@pytest.mark.parametrize(
    ("context", "record", "currency"),
    [
        (FieldContext(multi_currency=True), {"CurrencyIsoCode": "EUR"}, "EUR"),
        # A single-currency org: no CurrencyIsoCode field, the org's currency applies.
        (FieldContext(multi_currency=False, default_currency="GBP"), {}, "GBP"),
        (FieldContext(multi_currency=False), {}, None),
        # The org is not multi-currency: a stray value is not trusted over the org's.
        (FieldContext(default_currency="USD"), {"CurrencyIsoCode": "EUR"}, "USD"),
    ],
    ids=["multi-currency", "org-default", "unknown", "single-currency-ignores-field"],
)
def test_an_amount_keeps_its_currency(
    context: FieldContext, record: dict[str, Any], currency: str | None
) -> None:
    base = {"Id": "006A", "StageName": "Prospecting", "Amount": 1000.5, "IsDeleted": False}
    result = convert.opportunity({**base, **record}, context)

    assert isinstance(result, Opportunity)
    assert (result.amount, result.currency) == (Decimal("1000.5"), currency)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("CloseDate", "2024-13-45", "CloseDate"),
        ("CloseDate", "next week", "CloseDate"),
        ("CreatedDate", "yesterday", "CreatedDate"),
        # No offset: reading it as local time would be a silent timezone slip.
        ("SystemModstamp", "2024-01-02T03:04:05", "SystemModstamp"),
        ("Amount", "12,5 €", "Amount"),
        ("Probability", "150", "Probability"),
        ("IsWon", "maybe", "IsWon"),
        ("Seats__c", "a dozen", "Seats__c"),
        ("Renewal__c", "31/01/2025", "Renewal__c"),
    ],
)
@pytest.mark.parametrize("record", [JSON_OPPORTUNITY, CSV_OPPORTUNITY], ids=["json", "csv"])
def test_a_malformed_value_quarantines_the_record_naming_the_field(
    record: dict[str, Any], field: str, value: str, named: str
) -> None:
    result = convert.opportunity({**record, field: value}, MULTI)

    assert isinstance(result, BadRecord)
    assert result.object_type is ObjectType.OPPORTUNITY
    assert result.crm_id == "0065e0000000041AAA"
    assert repr(named) in result.reason
    assert result.raw is not None
    assert result.raw[field] == value


@pytest.mark.parametrize("stage", [None, "", "   "], ids=["null", "csv-empty", "blank"])
def test_an_opportunity_without_stage_is_a_bad_record(stage: str | None) -> None:
    result = convert.opportunity({**JSON_OPPORTUNITY, "StageName": stage}, MULTI)

    assert isinstance(result, BadRecord)
    assert "StageName" in result.reason
    assert result.crm_id == "0065e0000000041AAA"


def test_a_record_without_id_is_a_bad_record_without_crm_id() -> None:
    record = {**CSV_OPPORTUNITY, "Id": ""}

    result = convert.opportunity(record, MULTI)

    assert isinstance(result, BadRecord)
    assert result.crm_id is None
    assert "'Id'" in result.reason


def test_a_ten_megabyte_text_is_clipped_in_raw_but_the_record_is_kept() -> None:
    description = "Ünïcödé " * (10 * 1024 * 1024 // 8)
    record = {**JSON_OPPORTUNITY, "Description": description}

    result = convert.opportunity(record, MULTI)

    assert isinstance(result, Opportunity)
    stored = result.raw["Description"]
    assert len(stored) < MAX_RAW_STRING + 100
    assert stored.startswith("Ünïcödé Ünïcödé")
    assert stored.endswith(f"[clipped {len(description) - MAX_RAW_STRING} characters]")


def test_a_bad_record_keeps_a_clipped_raw_payload_too() -> None:
    record = {**JSON_OPPORTUNITY, "StageName": None, "Description": "x" * 10_000_000}

    result = convert.opportunity(record, MULTI)

    assert isinstance(result, BadRecord)
    assert result.raw is not None
    assert len(result.raw["Description"]) < MAX_RAW_STRING + 100
    assert "attributes" not in result.raw


@pytest.mark.parametrize(
    ("record", "deleted_at"),
    [
        (
            {"Id": "006D", "IsDeleted": True, "SystemModstamp": "2024-03-01T00:00:00.000+0000"},
            datetime(2024, 3, 1, tzinfo=UTC),
        ),
        (
            {"Id": "006D", "IsDeleted": "true", "SystemModstamp": "2024-03-01T00:00:00.000Z"},
            datetime(2024, 3, 1, tzinfo=UTC),
        ),
        # A deleted row needs no stage and no readable time: the deletion is what matters.
        ({"Id": "006D", "IsDeleted": True, "SystemModstamp": "garbled"}, None),
    ],
    ids=["json", "csv", "garbled-time"],
)
def test_recycle_bin_rows_become_deletions(
    record: dict[str, Any], deleted_at: datetime | None
) -> None:
    assert convert.opportunity(record, MULTI) == Deletion(
        ObjectType.OPPORTUNITY, "006D", deleted_at=deleted_at
    )
    assert convert.account(record, FieldContext()) == Deletion(
        ObjectType.ACCOUNT, "006D", deleted_at=deleted_at
    )


@pytest.mark.parametrize(
    ("sf_type", "json_value", "csv_value", "expected"),
    [
        ("picklist", "Ünïcode", "Ünïcode", "Ünïcode"),
        ("picklist", None, "", None),
        ("boolean", True, "true", True),
        ("boolean", False, "false", False),
        ("int", 42, "42", 42),
        ("double", 0.5, "0.5", 0.5),
        ("currency", 1234.5, "1234.50", 1234.5),
        ("percent", 12.0, "12", 12.0),
        ("date", "2024-02-29", "2024-02-29", "2024-02-29"),
        (
            "datetime",
            "2024-02-29T23:00:00.000+0000",
            "2024-02-29T23:00:00.000Z",
            "2024-02-29T23:00:00+00:00",
        ),
        ("multipicklist", "A;B", "A;B", "A;B"),
    ],
)
def test_extra_fields_are_the_same_from_json_and_csv(
    sf_type: str, json_value: Any, csv_value: str, expected: Any
) -> None:
    assert convert.custom_value(json_value, "X__c", sf_type) == expected
    assert convert.custom_value(csv_value, "X__c", sf_type) == expected


@pytest.mark.parametrize("source", ["json", "csv"])
def test_an_account_takes_region_only_from_a_configured_extra_field(source: str) -> None:
    record: dict[str, Any] = {
        "Id": "0015e0000000001AAA",
        "Name": "Müller GmbH — 東京",
        "Industry": "Électronique",
        "BillingCountry": "Deutschland",
        "Type": "Customer - Direct",
        "OwnerId": "0055e0000000002AAA",
        "AnnualRevenue": 289200000.0 if source == "json" else "289200000",
        "CurrencyIsoCode": "EUR",
        "Region__c": "EMEA",
        "CreatedDate": "2023-01-01T00:00:00.000+0000",
        "SystemModstamp": "2023-02-01T00:00:00.000+0000",
        "IsDeleted": False if source == "json" else "false",
    }
    with_extra = FieldContext(extra_fields={"Region__c": "picklist"}, multi_currency=True)

    configured = convert.account(record, with_extra)
    not_configured = convert.account(record, FieldContext(multi_currency=True))

    assert isinstance(configured, Account)
    assert isinstance(not_configured, Account)
    assert configured.region == "EMEA"
    assert configured.custom_fields == {"Region__c": "EMEA"}
    assert not_configured.region is None  # Region__c is not a standard field
    assert not_configured.custom_fields == {}
    assert (configured.annual_revenue, configured.currency) == (Decimal("289200000"), "EUR")
    assert (configured.name, configured.industry, configured.country) == (
        "Müller GmbH — 東京",
        "Électronique",
        "Deutschland",
    )


@pytest.mark.parametrize(
    "record",
    [
        {
            "Id": "01J1",
            "ApiName": "Proposal/Price Quote",
            "MasterLabel": "Angebot/Preis — Ünïcode",
            "DefaultProbability": 75.0,
            "IsClosed": False,
            "IsWon": False,
            "SortOrder": 7,
            "IsActive": True,
        },
        {
            "Id": "01J1",
            "ApiName": "Proposal/Price Quote",
            "MasterLabel": "Angebot/Preis — Ünïcode",
            "DefaultProbability": "75",
            "IsClosed": "false",
            "IsWon": "false",
            "SortOrder": "7",
            "IsActive": "true",
        },
    ],
    ids=["json", "csv"],
)
def test_an_opportunity_stage_becomes_a_stage_of_the_default_pipeline(
    record: dict[str, Any],
) -> None:
    assert convert.stage(record) == Stage(
        pipeline_crm_id="default",
        crm_id="Proposal/Price Quote",
        label="Angebot/Preis — Ünïcode",
        display_order=7,
        probability=0.75,
        is_closed=False,
        is_won=False,
        active=True,
    )


def test_a_won_stage_is_closed_and_won() -> None:
    result = convert.stage(
        {"ApiName": "Closed Won", "MasterLabel": "Closed Won", "DefaultProbability": 100,
         "IsClosed": True, "IsWon": True, "SortOrder": 9, "IsActive": True}
    )  # fmt: skip

    assert isinstance(result, Stage)
    assert (result.probability, result.is_closed, result.is_won) == (1.0, True, True)


@pytest.mark.parametrize(
    ("active", "expected"), [(True, True), ("false", False), (None, True)], ids=str
)
def test_a_user_becomes_an_owner(active: Any, expected: bool) -> None:
    record = {"Id": "0055e0000000003AAA", "Name": "Søren Rossi", "Email": "s@x.example"}

    assert convert.owner({**record, "IsActive": active}) == Owner(
        crm_id="0055e0000000003AAA", email="s@x.example", name="Søren Rossi", active=expected
    )


def test_field_history_rows_become_stage_changes() -> None:
    row = {
        "Id": "0175e000000003DAAQ",
        "OpportunityId": "0065e0000000023AAA",
        "OldValue": "Qualification",
        "NewValue": "Clôturée — gagnée",
        "CreatedDate": "2024-01-30T14:29:09.367Z",
    }

    assert convert.field_history_change(row) == StageChange(
        opportunity_crm_id="0065e0000000023AAA",
        to_stage="Clôturée — gagnée",
        changed_at=datetime(2024, 1, 30, 14, 29, 9, 367000, tzinfo=UTC),
        from_stage="Qualification",
        source="field_history",
        crm_id="0175e000000003DAAQ",
    )
    broken = convert.field_history_change({**row, "NewValue": None})
    assert isinstance(broken, BadRecord)
    assert broken.object_type is ObjectType.STAGE_CHANGE
    assert "NewValue" in broken.reason


def test_opportunity_history_snapshots_become_transitions_within_a_page() -> None:
    def row(row_id: str, opportunity: str, stage: str, when: str) -> dict[str, str]:
        created = f"2024-01-0{when}T00:00:00.000Z"
        return {
            "Id": row_id,
            "OpportunityId": opportunity,
            "StageName": stage,
            "CreatedDate": created,
        }

    rows = [
        row("008a", "006A", "Prospecting", "1"),
        row("008b", "006B", "Qualification", "2"),
        row("008c", "006A", "Prospecting", "3"),  # amount changed, same stage
        row("008d", "006A", "Closed Won", "4"),
        row("008e", "006B", "Closed Lost", "5"),
        {"Id": "008f", "OpportunityId": "006C", "StageName": "", "CreatedDate": "2024-01-06"},
    ]

    changes = convert.opportunity_history_changes(rows)

    transitions = [
        (c.crm_id, c.opportunity_crm_id, c.from_stage, c.to_stage)
        for c in changes
        if isinstance(c, StageChange)
    ]
    assert transitions == [
        ("008a", "006A", None, "Prospecting"),
        ("008b", "006B", None, "Qualification"),
        ("008d", "006A", "Prospecting", "Closed Won"),
        ("008e", "006B", "Qualification", "Closed Lost"),
    ]
    assert all(c.source == "opportunity_history" for c in changes if isinstance(c, StageChange))
    [bad] = [c for c in changes if isinstance(c, BadRecord)]
    assert bad.crm_id == "008f"
    assert "StageName" in bad.reason


# -- the fast readings of plain JSON values are the careful converters' readings ---------------

MOMENTS: list[Any] = [
    "2024-01-20T03:00:54.618+0000",
    "2024-01-20T03:00:54Z",
    "2024-01-20T03:00:54.618-08:00",
    " 2024-01-20T03:00:54.618+0000 ",
    "1705719654618",
    1705719654618,
    "20240120",
    "2024-01-20T03:00:54",
    "garbage",
    "",
    None,
]
FIELD_VALUES: list[tuple[str, str, Callable[[Any], Any], list[Any]]] = [
    (
        "Amount",
        "amount",
        lambda v: to_decimal(v, "Amount"),
        [1.5, 0.1, 1e20, -0.0, 3, True, math.nan, math.inf, "12.50", " 7 ", "", None, "abc"],
    ),
    (
        "Probability",
        "probability",
        lambda v: to_fraction(v, "Probability", percent=True),
        [75.0, 0.0, 100.0, 33.333, 100.5, -1.0, "50", math.nan, None],
    ),
    (
        "IsClosed",
        "is_closed",
        lambda v: to_bool(v, "IsClosed"),
        [True, False, None, "true", "FALSE", 1, 0, 2, "yes", "maybe", 1.0],
    ),
    ("CreatedDate", "crm_created_at", lambda v: to_datetime(v, "CreatedDate"), MOMENTS),
    ("SystemModstamp", "crm_modified_at", lambda v: to_datetime(v, "SystemModstamp"), MOMENTS),
]


def careful_reading(careful: Callable[[Any], Any], value: Any) -> tuple[bool, Any]:
    """(True, the value) or (False, the error message) of a normalize converter."""
    try:
        return True, careful(value)
    except FieldError as error:
        return False, str(error)


@pytest.mark.parametrize(
    ("field", "attribute", "careful", "value"),
    [(f, a, c, v) for f, a, c, values in FIELD_VALUES for v in values],
    ids=[f"{f}={v!r}" for f, _, _, values in FIELD_VALUES for v in values],
)
def test_every_json_shape_reads_as_the_normalize_converters_read_it(
    field: str, attribute: str, careful: Callable[[Any], Any], value: Any
) -> None:
    record = {**JSON_OPPORTUNITY, field: value}

    result = convert.opportunity(record, MULTI)

    readable, expected = careful_reading(careful, value)
    if not readable:
        assert isinstance(result, BadRecord)
        assert result.reason == expected
        return
    assert isinstance(result, Opportunity)
    assert getattr(result, attribute) == expected
    assert repr(getattr(result, attribute)) == repr(expected)  # same type, exponent, zone
    if attribute == "crm_modified_at":
        assert convert.timestamp(value, field) == expected


@pytest.mark.parametrize(
    "value",
    ["plain", "x\x00y", "x" * (MAX_RAW_STRING + 1), math.nan, math.inf, [1, "a\x00"], {"a": 1}],
    ids=["text", "nul", "long", "nan", "inf", "list", "dict"],
)
def test_the_stored_payload_is_clipped_exactly_as_clip_raw_does(value: Any) -> None:
    record = {**JSON_OPPORTUNITY, "Description": value}

    raw = convert.raw_payload(record)

    expected = clip_raw({k: v for k, v in record.items() if k != "attributes"})
    assert raw == expected or (value != value and str(raw) == str(expected))  # nan != nan
    assert list(raw) == list(expected)
