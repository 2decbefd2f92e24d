"""The content catalog: YAML, CSV and folders; every bad row named by file, line and field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mapping.catalog import load_catalog
from mapping.config import DEFAULT_CANONICAL_STAGES

GOOD_YAML = """\
items:
  - id: roi-calculator
    title: ROI calculator
    url: https://content.example.com/roi
    type: Calculator
    stages: [solution, proposal]
    tags: {segments: [enterprise], industries: [Banking]}
  - id: pricing-2026
    title: Pricing 2026
    url: http://content.example.com/pricing
    type: pricing
    stages: [proposal]
    mobile_ready: false
    valid_from: 2026-01-01
    expires_at: 2026-12-31T18:00:00+01:00
"""

GOOD_CSV = (
    "id,title,url,type,stages,industries,segments,mobile_ready,owner\n"
    'retail-one-pager,"Retail, on one page",https://content.example.com/retail,one-pager,'
    "qualify;solution,Retail,smb; mid-market,no,mkt@example.com\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def messages(folder: Path, vocabulary: dict[str, list[str]] | None = None) -> list[str]:
    catalog = load_catalog(
        [folder], canonical_stages=DEFAULT_CANONICAL_STAGES, vocabulary=vocabulary
    )
    return [p.render().replace(f"{folder}/", "") for p in catalog.problems]


def test_yaml_and_csv_files_in_a_folder_load_in_order(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD_YAML)
    write(tmp_path, "sub/b.csv", GOOD_CSV)
    write(tmp_path, ".hidden/c.yaml", "items: [{broken: yes}]\n")
    write(tmp_path, "notes.txt", "not a catalog")
    catalog = load_catalog([tmp_path], canonical_stages=DEFAULT_CANONICAL_STAGES)
    assert catalog.problems == ()
    assert [item.id for item in catalog.items] == [
        "roi-calculator",
        "pricing-2026",
        "retail-one-pager",
    ]
    roi, pricing, retail = catalog.items
    assert roi.type == "calculator"
    assert roi.tags == {"segments": ("enterprise",), "industries": ("Banking",)}
    assert roi.source == f"{tmp_path / 'a.yaml'}:2"
    assert pricing.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert pricing.expires_at == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert pricing.mobile_ready is False
    assert retail.title == "Retail, on one page"
    assert retail.type == "one_pager"
    assert retail.stages == ("qualify", "solution")
    assert retail.tags == {"industries": ("Retail",), "segments": ("smb", "mid-market")}
    assert retail.mobile_ready is False
    assert retail.owner == "mkt@example.com"
    assert retail.source == f"{tmp_path / 'sub' / 'b.csv'}:2"


def test_expired_and_future_items_load_but_say_why_they_are_not_shown(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD_YAML)
    catalog = load_catalog([tmp_path])
    pricing = catalog.get("pricing-2026")
    assert pricing is not None
    assert pricing.unavailable_reason(datetime(2025, 12, 31, tzinfo=UTC)) == (
        "not valid before 2026-01-01"
    )
    assert pricing.unavailable_reason(datetime(2026, 6, 1, tzinfo=UTC)) is None
    assert pricing.unavailable_reason(datetime(2027, 1, 1, tzinfo=UTC)) == (
        "expired on 2026-12-31T17:00+00:00"
    )
    assert [(i.id, r) for i, r in catalog.unavailable(datetime(2027, 1, 1, tzinfo=UTC))] == [
        ("pricing-2026", "expired on 2026-12-31T17:00+00:00")
    ]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"a.yaml": "items:\n  - {id: x, title: X, url: ftp://files.example.com/x, "
                       "type: deck, stages: [proposal]}\n"},
            ["a.yaml:2: items[0].url: expected an http(s) URL such as https://example.com; "
             "found 'ftp://files.example.com/x'"],
            id="non-http-url",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - id: x\n    title: X\n    url: https://e.com/x\n"
                       "    type: deck\n    stages: [proposal]\n"
                       "    tags: {segments: [enterprize]}\n"},
            ["a.yaml:7: items[0].tags.segments: unknown tag 'enterprize' (did you mean "
             "'enterprise'?) (content.tags.segments: smb, mid-market, enterprise)"],
            id="unknown-tag",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - {id: x, title: X, url: 'https://e.com/x', type: deck, "
                       "stages: [proposal], tags: {industry: [Banking]}}\n"},
            ["a.yaml:2: items[0].tags.industry: unknown tag facet (did you mean "
             "'industries'?) (allowed: industries, products, regions, countries, languages, "
             "segments)"],
            id="unknown-tag-facet",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - id: x\n    title: X\n    url: https://e.com/x\n"
                       "    type: deck\n    stages: [proposl]\n"},
            ["a.yaml:6: items[0].stages: 'proposl' is not a canonical stage (did you mean "
             "'proposal'?) (canonical_stages: discover, qualify, solution, proposal, "
             "negotiate, closed_won, closed_lost)"],
            id="unknown-stage",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - id: x\n    title: X\n    url: https://e.com/x\n"
                       "    type: battle card\n    stages: [proposal]\n    colour: red\n"},
            ["a.yaml:5: items[0].type: unknown content type 'battle card' (did you mean "
             "'battlecard'?) (allowed: deck, case_study, battlecard, one_pager, video, "
             "pricing, demo, calculator, whitepaper, datasheet, playbook, template, webinar, "
             "article, faq, other)",
             "a.yaml:7: items[0].colour: unknown field (fields: id, title, url, type, stages, "
             "tags, mobile_ready, owner, description, valid_from, expires_at)"],
            id="unknown-type-and-field-both-reported",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - {id: x, url: 'https://e.com/x', type: deck, stages: [qualify],"
                       " expires_at: soon}\n"},
            ["a.yaml:2: items[0].title: required field is missing",
             "a.yaml:2: items[0].expires_at: expected a date such as 2026-01-31 or a time such as "
             "2026-01-31T18:00:00Z; found 'soon'"],
            id="missing-field-and-bad-date",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - {id: x, title: X, url: 'https://e.com/x', type: deck, "
                       "stages: [qualify], valid_from: 2026-03-01, expires_at: 2026-02-01}\n"},
            ["a.yaml:2: items[0]: valid_from must be before expires_at"],
            id="window-backwards",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - {id: dup, title: A, url: 'https://e.com/a', type: deck, "
                       "stages: [qualify]}\n",
             "b.csv": "id,title,url,type,stages\n"
                      "ok,OK,https://e.com/ok,deck,qualify\n"
                      "dup,B,https://e.com/b,deck,qualify\n"},
            ["b.csv:3: row 2, id: duplicate content id 'dup' (also a.yaml:2)"],
            id="duplicate-id-across-files",
        ),
        pytest.param(
            {"b.csv": "id,title,link,type,stages\nx,X,https://e.com/x,deck,qualify\n"},
            ["b.csv:1: unknown column 'link' (columns: id, title, url, type, stages, "
             "mobile_ready, owner, description, valid_from, expires_at, industries, products, "
             "regions, countries, languages, segments)"],
            id="csv-unknown-column",
        ),
        pytest.param(
            {"b.csv": "id,title,url,type,stages,regions\n"
                      "ok,OK,https://e.com/ok,deck,qualify,EMEA\n"
                      '"multi\nline",Bad,mailto:x@example.com,deck,qualify,MARS\n'
                      "x,X,https://e.com/x,deck,qualify,EMEA,extra\n"},
            ["b.csv:3: row 2, id: expected letters, digits, '.', '_' or '-' (at most 200, "
             "starting with a letter or digit); found 'multi\\nline'",
             "b.csv:3: row 2, url: expected an http(s) URL such as https://example.com; found "
             "'mailto:x@example.com'",
             "b.csv:3: row 2, regions: unknown tag 'MARS' (content.tags.regions: "
             "AMER, EMEA, APAC, LATAM)",
             "b.csv:5: row 3: 7 cells but the header has 6 columns"],
            id="csv-rows-name-line-row-and-column",
        ),
        pytest.param(
            {"a.yaml": "items:\n  - id: x\n    title: [oops\n"},
            ["a.yaml:4: invalid YAML: expected ',' or ']', but got '<stream end>'"],
            id="invalid-yaml",
        ),
        pytest.param(
            {"a.yaml": "item:\n  - {id: x}\n"},
            ["a.yaml:1: item: unknown key (did you mean 'items'?) (a catalog file holds items:)",
             "a.yaml:1: expected items: (a list)"],
            id="misspelt-items-key",
        ),
    ],
)  # fmt: skip
def test_bad_rows_are_reported_with_file_line_and_field(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    vocabulary = {
        "segments": ["smb", "mid-market", "enterprise"],
        "regions": ["AMER", "EMEA", "APAC", "LATAM"],
    }
    found = messages(tmp_path, vocabulary)
    assert found == [e.replace("{dir}", str(tmp_path)) for e in expected]


def test_bad_rows_are_left_out_and_the_rest_loads(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.csv",
        "id,title,url,type,stages\n"
        "good,Good,https://e.com/good,deck,qualify\n"
        "bad,Bad,javascript:alert(1),deck,qualify\n"
        "also-good,Also good,https://e.com/also,video,qualify\n",
    )
    catalog = load_catalog([tmp_path], canonical_stages=DEFAULT_CANONICAL_STAGES)
    assert [item.id for item in catalog.items] == ["good", "also-good"]
    assert len(catalog.problems) == 1


def test_tag_vocabulary_compares_ignoring_case_and_punctuation(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "items:\n  - {id: x, title: X, url: 'https://e.com/x', type: deck, stages: [qualify], "
        "tags: {segments: [Mid Market, ENTERPRISE]}}\n",
    )
    catalog = load_catalog([tmp_path], vocabulary={"segments": ["mid-market", "enterprise"]})
    assert catalog.problems == ()


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    catalog = load_catalog([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert [(p.render(), p.severity) for p in catalog.problems] == [
        (f"{tmp_path / 'nope.yaml'}: does not exist", "error"),
        (f"{tmp_path / 'empty'}: folder holds no catalog files (*.yaml, *.yml, *.csv)",
         "warning"),
    ]  # fmt: skip
