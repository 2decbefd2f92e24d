"""convert.py: HubSpot payloads to stagelink records, and bad payloads to quarantine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.core.normalize import MAX_RAW_STRING, MAX_TEXT
from connectors.core.records import (
    Account,
    BadRecord,
    ObjectType,
    Opportunity,
    Pipeline,
    Stage,
    StageChange,
)
from connectors.hubspot import convert
from connectors.hubspot.wire import AssociatedId, CrmObject, Owner
from connectors.hubspot.wire import Pipeline as WirePipeline

PIPELINES_JSON: list[dict[str, Any]] = [
    {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": [
            {"id": "appointmentscheduled", "label": "Appointment Scheduled", "displayOrder": 0,
             "metadata": {"isClosed": "false", "probability": "0.2"}},
            {"id": "qualifiedtobuy", "label": "Qualified To Buy", "displayOrder": 1,
             "metadata": {"isClosed": "false", "probability": "0.4"}},
            {"id": "closedwon", "label": "Closed Won", "displayOrder": 5,
             "metadata": {"isClosed": "true", "probability": "1.0"}},
            {"id": "closedlost", "label": "Closed Lost", "displayOrder": 6,
             "metadata": {"isClosed": "true", "probability": "0.0"}},
        ],
    },
    {
        "id": "2871935",
        "label": "Enterprise",
        "displayOrder": 1,
        "archived": True,
        "stages": [
            {"id": "2871936", "label": "Discovery", "displayOrder": 0,
             "metadata": {"isClosed": "false", "probability": "0.1"}},
            {"id": "2871940", "label": "Gewonnen ✓", "displayOrder": 4,
             "metadata": {"isClosed": "true", "probability": "1.0"}, "archived": True},
        ],
    },
]  # fmt: skip
CATALOG = convert.StageCatalog(WirePipeline.from_json(p) for p in PIPELINES_JSON)


def deal(
    props: dict[str, Any] | None = None, *, companies: list[dict[str, Any]] | None = None
) -> CrmObject:
    """A deal as the list endpoint returns it (with the given properties on top)."""
    base: dict[str, Any] = {
        "dealname": "Q3 renewal",
        "pipeline": "default",
        "dealstage": "qualifiedtobuy",
        "amount": "1000.50",
        "deal_currency_code": "EUR",
        "closedate": "2024-03-31T23:30:00.000Z",
        "hs_deal_stage_probability": "0.4",
        "hs_is_closed": "false",
        "hs_is_closed_won": "false",
        "dealtype": "newbusiness",
        "hubspot_owner_id": "101",
        "createdate": "2024-01-02T03:04:05.123Z",
        "hs_lastmodifieddate": "2024-02-03T04:05:06.789Z",
        "hs_v2_date_entered_appointmentscheduled": "2024-01-02T03:04:05.123Z",
        "hs_date_entered_appointmentscheduled": "2024-01-02T03:04:05.123Z",
        "hs_v2_date_entered_qualifiedtobuy": "2024-01-20T00:00:00.000Z",
        "hs_date_entered_qualifiedtobuy": "2024-01-20T00:00:00.000Z",
    }
    base.update(props or {})
    body: dict[str, Any] = {
        "id": "9001",
        "properties": base,
        "createdAt": "2024-01-02T03:04:05.123Z",
        "updatedAt": "2024-02-03T04:05:06.789Z",
        "archived": False,
    }
    if companies is not None:
        body["associations"] = {"companies": {"results": companies}}
    return CrmObject.from_json(body)


def company(props: dict[str, Any]) -> CrmObject:
    return CrmObject.from_json({"id": "501", "properties": props, "archived": False})


def opportunity(result: list[Opportunity | StageChange] | BadRecord) -> Opportunity:
    assert isinstance(result, list), result
    first = result[0]
    assert isinstance(first, Opportunity)
    return first


# -- deals -----------------------------------------------------------------------------------


def test_a_deal_becomes_an_opportunity_with_every_field() -> None:
    obj = deal(
        {"product_line": "Mobile"},
        companies=[
            {"id": "77", "type": "deal_to_company_unlabeled"},
            {"id": "78", "type": "deal_to_company"},
            {"id": "78", "type": "deal_to_company_unlabeled"},
        ],
    )
    opp = opportunity(convert.deal_to_records(obj, CATALOG, ["product_line"]))
    assert opp == Opportunity(
        crm_id="9001",
        name="Q3 renewal",
        account_crm_id="78",  # the primary company, not the first listed
        pipeline_crm_id="default",
        stage_crm_id="qualifiedtobuy",
        stage_label="Qualified To Buy",
        amount=Decimal("1000.50"),
        currency="EUR",
        close_date=date(2024, 3, 31),  # the UTC date of HubSpot's closedate timestamp
        probability=0.4,
        is_closed=False,
        is_won=False,
        type="newbusiness",
        owner_crm_id="101",
        custom_fields={"product_line": "Mobile"},
        crm_created_at=datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        crm_modified_at=datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
        stage_entered_at=datetime(2024, 1, 20, tzinfo=UTC),
    )
    assert opp.raw["properties"]["dealname"] == "Q3 renewal"
    assert opp.raw["associations"]["companies"][1] == {
        "id": "78",
        "types": ["deal_to_company", "deal_to_company_unlabeled"],
        "typeIds": [],
    }


def test_stage_history_follows_the_date_entered_properties_in_time_order() -> None:
    obj = deal(
        {
            "dealstage": "closedwon",
            "hs_is_closed": "true",
            "hs_is_closed_won": "true",
            "hs_deal_stage_probability": "1",
            # Only the old property for this stage: it is used when v2 is missing.
            "hs_date_entered_closedwon": "2024-02-01T00:00:00.000Z",
            # A stage of another pipeline the deal went through before it moved.
            "hs_v2_date_entered_2871936": "2023-12-24T00:00:00.000Z",
        }
    )
    result = convert.deal_to_records(obj, CATALOG)
    assert isinstance(result, list)
    changes = [r for r in result if isinstance(r, StageChange)]
    assert [(c.from_stage, c.to_stage, c.changed_at.date()) for c in changes] == [
        (None, "2871936", date(2023, 12, 24)),
        ("2871936", "appointmentscheduled", date(2024, 1, 2)),
        ("appointmentscheduled", "qualifiedtobuy", date(2024, 1, 20)),
        ("qualifiedtobuy", "closedwon", date(2024, 2, 1)),
    ]
    assert {c.source for c in changes} == {"date_entered"}
    assert {c.opportunity_crm_id for c in changes} == {"9001"}
    opp = opportunity(result)
    assert (opp.is_closed, opp.is_won, opp.probability) == (True, True, 1.0)
    assert opp.stage_entered_at == datetime(2024, 2, 1, tzinfo=UTC)


def test_the_v2_date_entered_property_wins_over_the_old_one() -> None:
    obj = deal({"hs_date_entered_qualifiedtobuy": "2020-01-01T00:00:00.000Z"})
    opp = opportunity(convert.deal_to_records(obj, CATALOG))
    assert opp.stage_entered_at == datetime(2024, 1, 20, tzinfo=UTC)


def test_missing_calculated_properties_fall_back_to_the_stage_metadata() -> None:
    obj = deal(
        {
            "dealstage": "closedwon",
            "hs_is_closed": None,
            "hs_is_closed_won": None,
            "hs_deal_stage_probability": None,
            "amount": "",
            "deal_currency_code": None,
            "closedate": None,
        }
    )
    opp = opportunity(convert.deal_to_records(obj, CATALOG))
    assert (opp.is_closed, opp.is_won, opp.probability) == (True, True, 1.0)
    assert (opp.amount, opp.currency, opp.close_date) == (None, None, None)
    assert opp.account_crm_id is None  # no association block: no company


def test_unicode_survives_every_field() -> None:
    name = "Åkesson & Söhne – 東京支社 🚀"
    obj = deal({"dealname": name, "dealtype": "ñ", "product_line": "Ünïcødé"})
    opp = opportunity(convert.deal_to_records(obj, CATALOG, ["product_line"]))
    assert (opp.name, opp.type, opp.custom_fields) == (name, "ñ", {"product_line": "Ünïcødé"})
    assert opp.raw["properties"]["dealname"] == name


def test_a_ten_megabyte_text_field_is_clipped_not_refused() -> None:
    huge = "x" * 10_000_000
    obj = deal({"dealname": huge, "description": huge})
    opp = opportunity(convert.deal_to_records(obj, CATALOG, ["description"]))
    assert opp.name is not None
    assert len(opp.name) == MAX_TEXT
    assert len(opp.custom_fields["description"]) == MAX_TEXT
    stored = opp.raw["properties"]["description"]
    assert len(stored) < MAX_RAW_STRING + 100
    assert stored.endswith("characters]")


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"dealstage": None}, "dealstage"),
        ({"dealstage": ""}, "dealstage"),
        ({"pipeline": None}, "pipeline"),
        ({"pipeline": "no-such-pipeline"}, "pipeline"),
        ({"dealstage": "2871936"}, "dealstage"),  # a stage of another pipeline
        ({"closedate": "31/03/2024"}, "closedate"),
        ({"createdate": "2024-01-02T03:04:05"}, "createdate"),  # no offset: not guessed
        ({"hs_lastmodifieddate": "yesterday"}, "hs_lastmodifieddate"),
        ({"hs_v2_date_entered_qualifiedtobuy": "soon"}, "hs_v2_date_entered_qualifiedtobuy"),
        ({"amount": "12,50 €"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"hs_deal_stage_probability": "40"}, "hs_deal_stage_probability"),
        ({"hs_is_closed": "maybe"}, "hs_is_closed"),
    ],
)
def test_a_bad_deal_becomes_a_bad_record_naming_the_field(
    props: dict[str, Any], field: str
) -> None:
    result = convert.deal_to_records(deal(props), CATALOG)
    assert isinstance(result, BadRecord)
    assert result.object_type is ObjectType.OPPORTUNITY
    assert result.crm_id == "9001"
    assert f"field '{field}'" in result.reason
    assert result.raw is not None
    assert result.raw["id"] == "9001"


def test_primary_company_prefers_type_five_else_the_first() -> None:
    v4 = [AssociatedId("1", type_ids=(341,)), AssociatedId("2", type_ids=(5, 341))]
    assert convert.primary_company(v4) == "2"
    assert convert.primary_company([AssociatedId("3", ("deal_to_company_unlabeled",))]) == "3"
    assert convert.primary_company([]) is None


def test_deal_properties_ask_for_every_stage_entry_date() -> None:
    names = convert.deal_properties(CATALOG, ["product_line"])
    assert "product_line" in names
    assert "dealstage" in names
    assert {"hs_v2_date_entered_2871940", "hs_date_entered_closedlost"} <= set(names)
    assert len(names) == len(set(names))


# -- companies -------------------------------------------------------------------------------


def test_a_company_becomes_an_account() -> None:
    obj = company(
        {
            "name": "Müller & Söhne GmbH",
            "industry": "COMPUTER_SOFTWARE",
            "country": "Germany",
            "region": "DACH",
            "type": "PROSPECT",
            "hubspot_owner_id": "101",
            "annualrevenue": "2500000.75",
            "currency": "EUR",
            "createdate": "2024-01-02T03:04:05.123Z",
            "hs_lastmodifieddate": "1706932800000",  # epoch ms are read as well
        }
    )
    account = convert.company_to_account(obj, ["region", "currency"])
    assert account == Account(
        crm_id="501",
        name="Müller & Söhne GmbH",
        industry="COMPUTER_SOFTWARE",
        country="Germany",
        region="DACH",
        type="PROSPECT",
        owner_crm_id="101",
        currency="EUR",
        annual_revenue=Decimal("2500000.75"),
        custom_fields={"region": "DACH", "currency": "EUR"},
        crm_created_at=datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        crm_modified_at=datetime(2024, 2, 3, 4, tzinfo=UTC),
    )


def test_region_is_read_only_when_configured() -> None:
    account = convert.company_to_account(company({"name": "A", "region": "EMEA"}))
    assert isinstance(account, Account)
    assert (account.region, account.custom_fields) == (None, {})


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"annualrevenue": "a lot"}, "annualrevenue"),
        ({"createdate": "not a date"}, "createdate"),
    ],
)
def test_a_bad_company_becomes_a_bad_record_naming_the_field(
    props: dict[str, Any], field: str
) -> None:
    result = convert.company_to_account(company({"name": "A", **props}))
    assert isinstance(result, BadRecord)
    assert result.object_type is ObjectType.ACCOUNT
    assert f"field '{field}'" in result.reason


# -- metadata --------------------------------------------------------------------------------


def test_owners_are_named_and_archived_ones_are_inactive() -> None:
    owner = convert.owner_to_record(Owner("7", "ana@example.com", "Ana", "Løvik", 1, False))
    gone = convert.owner_to_record(Owner("8", None, None, " ", None, True))
    assert (owner.crm_id, owner.email, owner.name, owner.active) == (
        "7",
        "ana@example.com",
        "Ana Løvik",
        True,
    )
    assert (gone.name, gone.email, gone.active) == (None, None, False)


def test_pipelines_become_pipelines_and_stages_with_metadata() -> None:
    records = [r for p in CATALOG.pipelines for r in convert.pipeline_to_records(p)]
    pipelines = {r.crm_id: r for r in records if isinstance(r, Pipeline)}
    stages = {r.crm_id: r for r in records if isinstance(r, Stage)}
    assert pipelines["default"].label == "Sales Pipeline"
    assert pipelines["2871935"].active is False
    assert stages["qualifiedtobuy"] == Stage(
        "default", "qualifiedtobuy", "Qualified To Buy", 1, 0.4, False, False, True
    )
    assert (stages["closedwon"].is_closed, stages["closedwon"].is_won) == (True, True)
    assert (stages["closedlost"].is_closed, stages["closedlost"].is_won) == (True, False)
    won = stages["2871940"]
    assert (won.pipeline_crm_id, won.label, won.is_won, won.active) == (
        "2871935",
        "Gewonnen ✓",
        True,
        False,
    )
