"""`stagelink recommend`, `coverage`, `report effectiveness` and `check` on the example
configuration, against a real SQLite database filled through the storage models."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stagelink.cli.main import app
from tests.mapping.crm_data import seed

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The CLI points the root logger at the runner's stderr; put pytest's handlers back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def config_file(tmp_path: Path, sqlite_database_url: str) -> Path:
    """The shipped example configuration and catalog, pointed at a migrated SQLite file."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "database_url: sqlite:///var/stagelink.db", f"database_url: {sqlite_database_url}"
    )
    path = tmp_path / "stagelink.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def crm(sqlite_database_url: str) -> None:
    seed(sqlite_database_url)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("crm")
def test_recommend_json_explains_each_item(config_file: Path) -> None:
    code, out, err = invoke(
        "recommend", "salesforce-prod", "006NORD", "-c", str(config_file), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["stage"] == {
        "crm": "Proposal/Price Quote", "canonical": "proposal", "via": "map", "detail": "",
    }  # fmt: skip
    assert [r["id"] for r in data["recommendations"]] == [
        "banking-case-study",
        "roi-calculator",
        "security-whitepaper",
        "customer-reference-program",
        "pricing-2026",
    ]
    first, roi = data["recommendations"][:2]
    assert first["explanation"] == (
        "stage Proposal/Price Quote → proposal; industry Banking matched rule banking-proof "
        "(+2); made for industry Banking (+0.5); made for region EMEA (+0.5)"
    )
    assert first["url"] == "https://content.example.com/case-studies/nordbank"
    # Effectiveness blending (example: blend 0.5) lifts the ROI calculator: 4 of 4 won.
    assert roi["reasons"][-1].startswith("boosted by ")
    assert roi["reasons"][-1].endswith("win-rate lift (4 closed deals used it at proposal)")
    assert roi["score"] > 2.5


@pytest.mark.usefixtures("crm")
def test_recommend_table_with_explain(config_file: Path) -> None:
    code, out, _ = invoke("recommend", "salesforce-prod", "006SHOP", "-c", str(config_file),
                          "--explain", "--mobile", "--limit", "3")  # fmt: skip
    assert code == 0
    assert "Deal 006SHOP — Shopwell Inc., 9,000 USD" in out
    assert "stage Proposal/Price Quote → proposal" in out
    assert "left out pricing-2025: expired on 2026-01-01" in out
    assert "content made for proposal: 11" in out
    assert "no rule matched" in out
    assert out.count("https://content.example.com/") == 3


@pytest.mark.usefixtures("crm")
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["salesforce-prod", "006NOPE"], 1,
         "opportunity '006NOPE' of connection 'salesforce-prod' is not synced"),
        (["salesforce-prod", "006GONE"], 1, "was deleted in the CRM"),
        (["salesforce-dev", "006NORD"], 2,
         "no connection named 'salesforce-dev' (configured: salesforce-prod, hubspot-eu)"),
    ],
)  # fmt: skip
def test_recommend_refuses_unknown_deals_and_connections(
    config_file: Path, args: list[str], code: int, message: str
) -> None:
    exit_code, _, err = invoke("recommend", *args, "-c", str(config_file))
    assert exit_code == code
    assert message in " ".join(err.split())


@pytest.mark.usefixtures("crm")
def test_an_unmapped_stage_is_reported_not_dropped(config_file: Path) -> None:
    code, out, err = invoke(
        "recommend", "salesforce-prod", "006ODD", "-c", str(config_file), "--json"
    )
    assert code == 0
    assert json.loads(out)["stage"]["via"] == "unmapped"
    assert json.loads(out)["recommendations"] == []
    assert "stage Mystery Stage is not mapped to a canonical stage: add it to the stage_map" in (
        " ".join(err.split())
    )

    code, out, err = invoke(
        "recommend", "salesforce-prod", "006TECH", "-c", str(config_file), "--json"
    )
    assert json.loads(out)["stage"] == {
        "crm": "Technical Validation", "canonical": "solution", "via": "fallback",
        "detail": "probability 55%",
    }  # fmt: skip
    assert "Technical Validation" in err  # logged: the fallback is a stopgap


@pytest.mark.usefixtures("crm")
def test_coverage_reports_gaps(config_file: Path) -> None:
    code, out, _ = invoke("coverage", "-c", str(config_file), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["stages_without_content"] == ["closed_lost"]
    unmapped = {u["crm_stage"]: u for u in report["unmapped_crm_stages"]}
    assert set(unmapped) == {"Technical Validation", "Mystery Stage"}
    assert unmapped["Technical Validation"]["fallback"] == "solution"
    assert unmapped["Mystery Stage"]["fallback"] is None
    assert unmapped["Mystery Stage"]["open_opportunities"] == 1
    assert report["deals_checked"] == 14  # the deleted one is not counted
    # No synced deal is an existing-customer upgrade or a new logo before proposal.
    assert report["rules_matching_nothing"] == ["no-pricing-before-proposal", "upsell-playbook"]
    assert {"connection": "salesforce-prod", "key": "Negotiation/Review"} in (
        report["unused_stage_map_keys"]
    )

    code, out, _ = invoke("coverage", "-c", str(config_file))
    assert code == 0
    assert "CRM stages with no mapping" in out
    assert "Mystery Stage" in out
    assert "rules that match none of 14 deals: no-pricing-before-proposal, upsell-playbook" in out


@pytest.mark.usefixtures("crm")
def test_report_effectiveness_csv(config_file: Path) -> None:
    code, out, _ = invoke("report", "effectiveness", "-c", str(config_file), "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["content_id"], r["stage"]) for r in rows] == [("roi-calculator", "proposal")]
    row = rows[0]
    assert row["title"] == "ROI calculator"
    assert (row["uses"], row["opportunities"]) == ("8", "4")
    assert (row["won_touched"], row["closed_touched"]) == ("4", "4")
    assert (row["won_untouched"], row["closed_untouched"]) == ("1", "6")
    assert float(row["lift"]) > 0.3

    code, out, _ = invoke("report", "effectiveness", "-c", str(config_file))
    assert code == 0
    assert "roi-calculator" in out
    assert "4 / 4" in out


@pytest.mark.usefixtures("crm")
def test_check_names_unmapped_stages(config_file: Path) -> None:
    code, out, _ = invoke("check", "-c", str(config_file))
    assert code == 0
    assert "content: 25 items in 2 catalog files" in out
    assert "unmapped CRM stage salesforce-prod: 'Mystery Stage' (1 deals; no content shown)" in out
    assert "'Technical Validation' (1 deals; fallback → solution)" in out


def test_check_fails_on_a_bad_catalog_with_its_location(config_file: Path) -> None:
    catalog = config_file.parent / "examples" / "content" / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(
        text.replace("https://content.example.com/tools/roi-calculator", "ftp://roi"),
        encoding="utf-8",
    )
    csv_file = config_file.parent / "examples" / "content" / "regional-assets.csv"
    csv_file.write_text(
        csv_file.read_text(encoding="utf-8").replace("retail-one-pager", "company-overview"),
        encoding="utf-8",
    )
    code, _, err = invoke("check", "-c", str(config_file))
    assert code == 2
    lines = [" ".join(line.split()) for line in err.splitlines()]
    assert (
        f"{catalog}:64: items[6].url: expected an http(s) URL such as https://example.com; found 'ftp://roi'"
        in lines
    )
    assert any(
        line.startswith(f"{csv_file}:4: row 3, id: duplicate content id 'company-overview'")
        for line in lines
    )
