"""Bad rules and catalogs fail at load time, each problem with its file, line and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mapping import MappingError, build_engine
from stagelink.settings import ConfigError, load_config

CATALOG = """\
items:
  - id: banking-case-study
    title: Nordbank case study
    url: https://content.example.com/nordbank
    type: case_study
    stages: [solution, proposal]
    tags: {industries: [Banking], segments: [enterprise]}
  - id: pricing-2026
    title: Pricing
    url: https://content.example.com/pricing
    type: pricing
    stages: [proposal, negotiate]
"""

CONFIG_HEAD = """\
connections:
  - name: sf
    kind: salesforce
    auth: {method: password, username: api@example.com, password: "${SF_PASSWORD}"}
    extra_fields: {opportunity: [Product_Line__c]}
content:
  catalogs: [catalog.yaml]
"""


def problems(tmp_path: Path, rules: str, catalog: str = CATALOG) -> list[str]:
    (tmp_path / "catalog.yaml").write_text(catalog, encoding="utf-8")
    (tmp_path / "stagelink.yaml").write_text(CONFIG_HEAD + textwrap.dedent(rules), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "stagelink.yaml", environ={"SF_PASSWORD": "x"})
    return [p.render().replace(f"{tmp_path}/", "") for p in caught.value.problems]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param(
            """\
            rules:
              - id: product-demo
                when: {fields: {Product_Line: [Analytics]}}
                select: {content_ids: [banking-case-study]}
            """,
            ["line 10: rules[0].when.fields.Product_Line: unknown field 'Product_Line' (did you "
             "mean 'opportunity.Product_Line__c'?) (synced custom fields: "
             "opportunity.Product_Line__c; add it to the connection's extra_fields / "
             "extra_properties to use it)"],
            id="unknown-field",
        ),
        pytest.param(
            """\
            rules:
              - id: r
                select: {content_ids: [banking-casestudy, nope]}
            """,
            ["line 10: rules[0].select.content_ids[0]: unknown content id 'banking-casestudy' "
             "(did you mean 'banking-case-study'?)",
             "line 10: rules[0].select.content_ids[1]: unknown content id 'nope'"],
            id="unknown-content-ids",
        ),
        pytest.param(
            """\
            rules:
              - id: r
                select:
                  tags: [enterprize]
            """,
            ["line 11: rules[0].select.tags[0]: no content has tag 'enterprize' (did you mean "
             "'enterprise'?)"],
            id="unknown-tag",
        ),
        pytest.param(
            """\
            rules:
              - id: early-pricing
                when: {stages: [discover, qualify]}
                select: {content_ids: [pricing-2026]}
            """,
            ["line 10: rules[0].when.stages: shows nothing: it applies only at stages discover, "
             "qualify but the content it selects is for other stages (e.g. pricing-2026: "
             "proposal, negotiate)"],
            id="contradiction-stage-vs-content",
        ),
        pytest.param(
            """\
            rules:
              - id: banks-see-pricing
                when: {industries: [Banking], stages: [proposal]}
                select: {content_ids: [pricing-2026]}
              - id: no-pricing-at-proposal
                when: {stages: [proposal, negotiate]}
                select: {content_ids: [pricing-2026]}
                exclude: true
            """,
            ["line 11: rules[0].select: can never show anything: rule 'no-pricing-at-proposal' "
             "(rules[1]) excludes everything it selects whenever it applies"],
            id="contradiction-include-always-excluded",
        ),
        pytest.param(
            """\
            rules:
              - id: r
                when: {amount: {min: 10, max: 5}, days_in_stage: {}}
                select: {content_ids: [pricing-2026]}
            """,
            ["line 10: rules[0].when.amount: min (10.0) is larger than max (5.0)",
             "line 10: rules[0].when.days_in_stage: give min, max or both"],
            id="impossible-ranges",
        ),
        pytest.param(
            """\
            mapping:
              stage_fallback: {won: closed_wonn}
              tag_facts: {industries: [account.sector]}
            """,
            ["line 9: mapping.stage_fallback.won: 'closed_wonn' is not a canonical stage "
             "(did you mean 'closed_won'?)",
             "line 10: mapping.tag_facts.industries[0]: unknown field 'account.sector' (did you "
             "mean 'account.country'?) (synced custom fields: opportunity.Product_Line__c; add "
             "it to the connection's extra_fields / extra_properties to use it)"],
            id="mapping-settings",
        ),
    ],
)  # fmt: skip
def test_bad_mapping_fails_the_config_with_its_location(
    tmp_path: Path, rules: str, expected: list[str]
) -> None:
    found = problems(tmp_path, rules)
    assert [p.replace("stagelink.yaml:", "line ") for p in found] == expected


def test_catalog_problems_fail_the_config_naming_the_catalog_file(tmp_path: Path) -> None:
    catalog = CATALOG.replace("https://content.example.com/nordbank", "file:///etc/passwd")
    assert problems(tmp_path, "rules: []\n", catalog) == [
        "catalog.yaml:4: items[0].url: expected an http(s) URL such as https://example.com; "
        "found 'file:///etc/passwd'"
    ]


def test_an_exclusion_that_changes_nothing_is_only_a_warning(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "stagelink.yaml").write_text(
        CONFIG_HEAD
        + "rules:\n  - id: r\n    when: {stages: [discover]}\n"
        + "    select: {content_ids: [pricing-2026]}\n    exclude: true\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "stagelink.yaml", environ={"SF_PASSWORD": "x"})
    engine = build_engine(config)  # loads: warnings do not stop anything
    assert [r.id for r in engine.rules] == ["r"]


def test_build_engine_refuses_a_catalog_changed_into_something_bad(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "stagelink.yaml").write_text(
        CONFIG_HEAD + "rules:\n  - id: r\n    select: {content_ids: [pricing-2026]}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "stagelink.yaml", environ={"SF_PASSWORD": "x"})
    (tmp_path / "catalog.yaml").write_text(
        CATALOG + CATALOG.removeprefix("items:\n"), encoding="utf-8"
    )
    with pytest.raises(MappingError) as caught:
        build_engine(config)
    assert str(caught.value).splitlines() == [
        "2 mapping problems",
        f"  {tmp_path / 'catalog.yaml'}:13: items[2].id: duplicate content id "
        f"'banking-case-study' (also {tmp_path / 'catalog.yaml'}:2)",
        f"  {tmp_path / 'catalog.yaml'}:19: items[3].id: duplicate content id 'pricing-2026' "
        f"(also {tmp_path / 'catalog.yaml'}:8)",
    ]
    lenient = build_engine(config, strict=False)  # a running server keeps the good rows
    assert [item.id for item in lenient.catalog.items] == ["banking-case-study", "pricing-2026"]
