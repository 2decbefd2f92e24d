"""Rule matching, table-driven: every kind of condition, currencies, custom fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mapping.rules import resolve_field
from tests.mapping.helpers import NOW, deal, item, make_engine, rule

CUSTOM = {"opportunity": {"Product_Line__c", "Seats__c", "Strategic__c"}, "account": {"Region__c"}}
RATES = {"currency": {"base": "USD", "rates": {"EUR": 1.08, "GBP": 1.25}}}


def matches(when: dict[str, Any], facts: Any, settings: dict[str, Any] | None = None) -> bool:
    engine = make_engine(
        [item("x", stages=["proposal"])],
        [rule("r", when=when, select={"content_ids": ["x"]})],
        settings=settings,
        custom_fields=CUSTOM,
    )
    return engine.matching_rules(facts, now=NOW) == ["r"]


@pytest.mark.parametrize(
    ("when", "facts", "settings", "expected"),
    [
        pytest.param({}, deal(), None, True, id="no-conditions-match-every-deal"),
        pytest.param({"stages": ["proposal"]}, deal("proposal"), None, True, id="stage"),
        pytest.param({"stages": ["proposal"]}, deal("qualify"), None, False, id="other-stage"),
        pytest.param({"industries": ["Financial Services"]},
                     deal(account={"industry": "FINANCIAL_SERVICES"}), None, True,
                     id="industry-label-vs-hubspot-enum"),
        pytest.param({"industries": ["Banking"]}, deal(account={"industry": "Retail"}), None,
                     False, id="industry-differs"),
        pytest.param({"industries": ["Banking"]}, deal(), None, False, id="no-account"),
        pytest.param({"countries": ["United Kingdom"]},
                     deal(account={"country": "united kingdom"}), None, True, id="country"),
        pytest.param({"regions": ["EMEA", "APAC"]}, deal(account={"region": "APAC"}), None,
                     True, id="region-any-of"),
        pytest.param({"account_types": ["Customer - Direct"]},
                     deal(account={"type": "Customer - Direct"}), None, True, id="account-type"),
        pytest.param({"types": ["New Customer", "newbusiness"]}, deal(type="newbusiness"), None,
                     True, id="opportunity-type"),
        pytest.param({"record_types": ["Enterprise Deal"]}, deal(record_type="SMB Deal"), None,
                     False, id="record-type-differs"),
        pytest.param({"pipelines": ["2871935"]}, deal(pipeline_crm_id="2871935"), None, True,
                     id="pipeline"),
        pytest.param({"owners": ["Ana@Example.com"]}, deal(owner="ana@example.com"), None, True,
                     id="owner-email"),
        pytest.param({"amount": {"min": 50000, "currency": "USD"}},
                     deal(amount=50000, currency="USD"), None, True, id="amount-min-inclusive"),
        pytest.param({"amount": {"max": 50000, "currency": "USD"}},
                     deal(amount=50000.01, currency="USD"), None, False, id="amount-over-max"),
        pytest.param({"amount": {"min": 50000, "currency": "EUR"}},
                     deal(amount=90000, currency="USD"), None, False,
                     id="eur-range-never-matches-usd-deal-without-rates"),
        pytest.param({"amount": {"min": 50000, "currency": "EUR"}},
                     deal(amount=60000, currency="USD"), RATES, True,
                     id="usd-deal-converted-to-eur"),
        pytest.param({"amount": {"min": 50000, "currency": "USD"}},
                     deal(amount=47000, currency="EUR"), RATES, True,
                     id="eur-deal-converted-to-usd"),
        pytest.param({"amount": {"min": 50000, "currency": "USD"}},
                     deal(amount=90000, currency="JPY"), RATES, False,
                     id="no-rate-for-the-deal-currency"),
        pytest.param({"amount": {"min": 50000, "currency": "USD"}},
                     deal(amount=60000), RATES, True, id="deal-without-currency-is-in-base"),
        pytest.param({"amount": {"min": 50000}}, deal(amount=60000, currency="SEK"), None, True,
                     id="range-without-currency-and-no-base-compares-raw"),
        pytest.param({"amount": {"min": 50000}}, deal(amount=60000, currency="SEK"), RATES,
                     False, id="range-without-currency-is-in-base"),
        pytest.param({"amount": {"min": 1}}, deal(), None, False, id="no-amount"),
        pytest.param({"days_in_stage": {"min": 30}},
                     deal(stage_entered_at=NOW - timedelta(days=30, hours=1)), None, True,
                     id="days-in-stage"),
        pytest.param({"days_in_stage": {"min": 30}},
                     deal(stage_entered_at=NOW - timedelta(days=29, hours=23)), None, False,
                     id="not-long-enough-in-stage"),
        pytest.param({"days_in_stage": {"max": 7}}, deal(), None, False,
                     id="unknown-stage-entry-never-matches"),
        pytest.param({"fields": {"opportunity.Product_Line__c": ["Analytics"]}},
                     deal(custom_fields={"Product_Line__c": "analytics"}), None, True,
                     id="custom-field"),
        pytest.param({"fields": {"Product_Line__c": ["Analytics"]}},
                     deal(custom_fields={"Product_Line__c": "Platform;Analytics"}), None, True,
                     id="multi-select-picklist"),
        pytest.param({"fields": {"Seats__c": [100]}}, deal(custom_fields={"Seats__c": 100.0}),
                     None, True, id="number-field"),
        pytest.param({"fields": {"Strategic__c": [True]}},
                     deal(custom_fields={"Strategic__c": "true"}), None, True,
                     id="checkbox-vs-hubspot-string"),
        pytest.param({"fields": {"Region__c": ["EMEA"]}},
                     deal(account={"custom_fields": {"Region__c": "EMEA"}}), None, True,
                     id="account-custom-field"),
        pytest.param({"fields": {"account.industry": ["Banking"]}},
                     deal(account={"industry": "Banking"}), None, True, id="standard-field"),
        pytest.param({"industries": ["Banking"], "stages": ["proposal"],
                      "amount": {"min": 10, "currency": "USD"}},
                     deal("proposal", account={"industry": "Banking"}, amount=5, currency="USD"),
                     None, False, id="every-condition-must-hold"),
    ],
)  # fmt: skip
def test_rule_conditions(
    when: dict[str, Any], facts: Any, settings: dict[str, Any] | None, expected: bool
) -> None:
    assert matches(when, facts, settings) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("opportunity.Product_Line__c", ("opportunity", "Product_Line__c")),
        ("Product_Line__c", ("opportunity", "Product_Line__c")),
        ("Region__c", ("account", "Region__c")),
        ("industry", ("account", "industry")),
        ("owner.email", ("owner", "email")),
        ("type", "field 'type' exists on opportunity and account: write e.g. opportunity.type"),
        ("Product_Line", "unknown field 'Product_Line' (did you mean "
                         "'opportunity.Product_Line__c'?) (synced custom fields: "
                         "account.Region__c, opportunity.Product_Line__c, "
                         "opportunity.Seats__c, opportunity.Strategic__c; add it to the "
                         "connection's extra_fields / extra_properties to use it)"),
    ],
)  # fmt: skip
def test_field_references(key: str, expected: object) -> None:
    assert resolve_field(key, CUSTOM) == expected


def test_rule_explanations_name_the_deal_facts() -> None:
    engine = make_engine(
        [item("case", stages=["proposal"])],
        [
            rule(
                "big-eu-banks",
                when={"industries": ["banking"], "amount": {"min": 50000, "currency": "USD"}},
                select={"content_ids": ["case"]},
            ),
            rule("at-proposal", when={"stages": ["proposal"]}, select={"content_ids": ["case"]}),
            rule("always", select={"content_ids": ["case"]}, boost=0.5),
        ],
        settings=RATES,
    )
    facts = deal(account={"industry": "Banking"}, amount=50000, currency="EUR")
    [rec] = engine.recommend_for(facts, now=NOW)
    assert rec.reasons == (
        "stage Proposal/Price Quote → proposal",
        "industry Banking, amount 50,000 EUR (≈ 54,000 USD) matched rule big-eu-banks (+1)",
        "stage proposal matched rule at-proposal (+1)",
        "matched rule always (applies to every deal) (+0.5)",
    )
    assert rec.score == 3.5
    assert rec.rules == ("big-eu-banks", "at-proposal", "always")
