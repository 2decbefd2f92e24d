"""Benchmark the recommendation engine: 10,000 content items, 1,000 rules, 100,000 deals.

Run: ``.venv/bin/python bench/bench_recommend.py [--items N] [--rules N] [--deals N]``.
Prints a Markdown table and saves its rows to ``var/bench-results/bench_recommend.json``.

The data is generated (seeded) to look like a large org: items spread over the canonical
stages with industry/region/product/segment tags, some expired or not yet valid; rules
mixing stage, industry, region, type, amount (USD and EUR, converted), days-in-stage and
custom-field conditions, selecting by tag or by id, a tenth of them exclusions; deals across
every Salesforce stage (including one that only the probability fallback maps) with
accounts, amounts in several currencies and custom fields; win-rate lifts for a fifth of the
item × stage pairs with blending on.

Measured:

* building the engine (indexes) and validating rules against the catalog;
* the latency of one ``recommend_for`` call, p50 / p90 / p99 / max over every deal;
* the wall time to recommend for all deals, one after the other, in one process.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import results

from connectors.core.records import Account, Opportunity, Owner
from mapping import Catalog, CatalogItem, Effect, OpportunityFacts, RecommendationEngine
from mapping.config import DEFAULT_CANONICAL_STAGES, MappingSettings, Rule
from mapping.rules import check_rules

TARGET_P99_MS = 5.0
AREA = "recommend"
FULL_DEALS = 100_000  # the size
NOW = datetime(2026, 6, 1, tzinfo=UTC)
OPEN = DEFAULT_CANONICAL_STAGES[:5]
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality",
    "Insurance", "Machinery", "Manufacturing", "Media", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities",
)  # fmt: skip
REGIONS = ("AMER", "EMEA", "APAC", "LATAM")
PRODUCTS = ("Platform", "Analytics", "Mobile", "Services")
SEGMENTS = ("smb", "mid-market", "enterprise")
TYPES = ("New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement")
CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP", "JPY")
STAGE_MAP = {
    "Prospecting": "discover",
    "Qualification": "qualify",
    "Needs Analysis": "qualify",
    "Value Proposition": "solution",
    "Id. Decision Makers": "solution",
    "Perception Analysis": "solution",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiate",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
CRM_STAGES = (*STAGE_MAP, "Technical Validation")  # the last one only the fallback maps
CONTENT_TYPES = ("deck", "case_study", "battlecard", "one_pager", "video", "pricing", "demo")


def make_items(rng: random.Random, count: int) -> list[CatalogItem]:
    items = []
    for i in range(count):
        tags: dict[str, tuple[str, ...]] = {}
        if rng.random() < 0.4:
            tags["industries"] = tuple(rng.sample(INDUSTRIES, rng.randint(1, 2)))
        if rng.random() < 0.3:
            tags["regions"] = (rng.choice(REGIONS),)
        if rng.random() < 0.3:
            tags["products"] = (rng.choice(PRODUCTS),)
        if rng.random() < 0.3:
            tags["segments"] = tuple(rng.sample(SEGMENTS, rng.randint(1, 2)))
        window = rng.random()
        items.append(
            CatalogItem(
                id=f"content-{i:05d}",
                title=f"Content {i}",
                url=f"https://content.example.com/{i}",
                type=rng.choice(CONTENT_TYPES),
                stages=tuple(sorted(rng.sample(DEFAULT_CANONICAL_STAGES, rng.randint(1, 3)))),
                tags=tags,
                mobile_ready=rng.random() < 0.8,
                expires_at=NOW - timedelta(days=1) if window < 0.05 else None,
                valid_from=NOW + timedelta(days=1) if 0.05 <= window < 0.07 else None,
            )
        )
    return items


def make_rules(rng: random.Random, count: int, items: list[CatalogItem]) -> list[Rule]:
    rules = []
    tag_pool = [
        *(f"industries:{v}" for v in INDUSTRIES),
        *(f"regions:{v}" for v in REGIONS),
        *(f"products:{v}" for v in PRODUCTS),
        *(f"segments:{v}" for v in SEGMENTS),
    ]
    for i in range(count):
        when: dict[str, object] = {}
        if rng.random() < 0.5:
            when["stages"] = rng.sample(OPEN, rng.randint(1, 2))
        if rng.random() < 0.4:
            when["industries"] = rng.sample(INDUSTRIES, rng.randint(1, 3))
        if rng.random() < 0.2:
            when["regions"] = [rng.choice(REGIONS)]
        if rng.random() < 0.2:
            when["types"] = [rng.choice(TYPES)]
        if rng.random() < 0.3:
            when["amount"] = {
                "min": rng.choice([10_000, 50_000, 100_000]),
                "currency": rng.choice(["USD", "EUR"]),
            }
        if rng.random() < 0.1:
            when["days_in_stage"] = {"min": rng.choice([14, 30, 60])}
        if rng.random() < 0.2:
            when["fields"] = {"opportunity.Product_Line__c": [rng.choice(PRODUCTS)]}
        if rng.random() < 0.6:
            select: dict[str, object] = {"tags": [rng.choice(tag_pool)]}
        else:
            select = {"content_ids": [rng.choice(items).id for _ in range(rng.randint(1, 5))]}
        rules.append(
            Rule.model_validate(
                {
                    "id": f"rule-{i:04d}",
                    "when": when,
                    "select": select,
                    "boost": rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]),
                    "exclude": rng.random() < 0.1,
                }
            )
        )
    return rules


def make_deals(rng: random.Random, count: int) -> list[OpportunityFacts]:
    deals = []
    for i in range(count):
        stage = rng.choice(CRM_STAGES)
        closed = stage.startswith("Closed")
        account = Account(
            crm_id=f"001{i:06d}",
            name=f"Account {i}",
            industry=rng.choice(INDUSTRIES) if rng.random() < 0.85 else None,
            region=rng.choice(REGIONS),
            country="Germany",
            custom_fields={"Region__c": rng.choice(REGIONS)},
        )
        opportunity = Opportunity(
            crm_id=f"006{i:06d}",
            name=f"Deal {i}",
            account_crm_id=account.crm_id,
            pipeline_crm_id="default",
            stage_crm_id=stage,
            stage_label=stage,
            amount=Decimal(rng.randint(1, 400) * 1000),
            currency=rng.choice(CURRENCIES),
            probability=0.55 if stage == "Technical Validation" else None,
            is_closed=closed,
            is_won=stage == "Closed Won",
            type=rng.choice(TYPES),
            custom_fields={"Product_Line__c": rng.choice(PRODUCTS)},
            stage_entered_at=NOW - timedelta(days=rng.randint(0, 120)),
        )
        owner = Owner(crm_id="005A", email="rep@example.com", name="Rep")
        deals.append(OpportunityFacts("sf", opportunity, account, owner))
    return deals


def make_effects(rng: random.Random, items: list[CatalogItem]) -> list[Effect]:
    effects = []
    for item in items:
        for stage in item.stages:
            if rng.random() < 0.2:
                lift = rng.uniform(-0.4, 0.8)
                effects.append(Effect(item.id, stage, 20, 12, 10, 6, 200, 80, 0.4, 0.55,
                                      0.55 / (1 + lift), lift))  # fmt: skip
    return effects


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    items = make_items(rng, args.items)
    catalog = Catalog(items)
    custom = {"opportunity": {"Product_Line__c"}, "account": {"Region__c"}}
    # Generated rules can contradict the catalog (an id picked for other stages): keep only
    # rules that pass the load-time checks, as a real configuration must.
    candidates = make_rules(rng, args.rules * 6 // 5, items)
    broken = {
        p.path[1]
        for p in check_rules(
            candidates, catalog, custom_fields=custom, canonical_stages=DEFAULT_CANONICAL_STAGES
        )
        if p.severity == "error"
    }
    rules = [rule for i, rule in enumerate(candidates) if i not in broken][: args.rules]
    deals = make_deals(rng, args.deals)
    effects = make_effects(rng, items)
    settings = MappingSettings.model_validate(
        {
            "stage_fallback": {
                "won": "closed_won",
                "lost": "closed_lost",
                "by_probability": [{"up_to": 0.3, "stage": "qualify"},
                                   {"up_to": 0.7, "stage": "solution"},
                                   {"up_to": 1.0, "stage": "negotiate"}],
            },
            "currency": {"base": "USD", "rates": {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}},
            "tag_facts": {
                "industries": ["account.industry"],
                "regions": ["account.region"],
                "products": ["opportunity.Product_Line__c"],
            },
            "effectiveness": {"blend": 0.5},
        }
    )  # fmt: skip

    started = time.perf_counter()
    problems = check_rules(
        rules, catalog, custom_fields=custom, canonical_stages=DEFAULT_CANONICAL_STAGES
    )
    validate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    engine = RecommendationEngine(
        catalog=catalog,
        rules=rules,
        stage_maps={"sf": STAGE_MAP},
        canonical_stages=DEFAULT_CANONICAL_STAGES,
        settings=settings,
        top_n=5,
        custom_fields=custom,
        effects=effects,
    )
    build_seconds = time.perf_counter() - started

    gc.collect()
    gc.freeze()  # the catalog and engine live forever; keep the collector off them
    latencies: list[float] = []
    shown = 0
    clock = time.perf_counter_ns
    recommend = engine.recommend_for
    started = time.perf_counter()
    for facts in deals:
        begin = clock()
        recs = recommend(facts, now=NOW)
        latencies.append((clock() - begin) / 1e6)
        shown += len(recs)
    total_seconds = time.perf_counter() - started
    latencies.sort()
    p50, p90, p99 = (percentile(latencies, f) for f in (0.5, 0.9, 0.99))
    verdict = "met" if p99 < TARGET_P99_MS else "**not met**"
    errors = sum(1 for p in problems if p.severity == "error")
    rows = [
        ("content items / rules / deals", f"{args.items:,} / {len(rules):,} / {args.deals:,}",
         ""),
        ("rule problems at load (must be 0 errors)", f"{errors} errors, "
         f"{len(problems) - errors} warnings", ""),
        ("validate rules against the catalog", f"{validate_seconds:.2f} s", ""),
        ("build engine (indexes, static orders)", f"{build_seconds:.2f} s", ""),
        ("one recommendation, p50", f"{p50:.3f} ms", ""),
        ("one recommendation, p90", f"{p90:.3f} ms", ""),
        ("one recommendation, p99", f"{p99:.3f} ms", f"< {TARGET_P99_MS:g} ms: {verdict}"),
        ("one recommendation, max", f"{latencies[-1]:.3f} ms", ""),
        ("mean", f"{statistics.fmean(latencies):.3f} ms", ""),
        (f"all {args.deals:,} deals, one process", f"{total_seconds:.1f} s "
         f"({args.deals / total_seconds:,.0f} deals/s)", ""),
        ("items shown per deal (top 5)", f"{shown / args.deals:.2f}", ""),
    ]  # fmt: skip
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")

    size = f"{args.items:,} items, {len(rules):,} rules, {args.deals:,} deals"
    results.record("validate rules against the catalog", validate_seconds, "s", area=AREA)
    results.record("build the engine", build_seconds, "s", area=AREA)
    results.record(f"one recommendation, p50 ({size})", p50, "ms", area=AREA)
    results.record(
        f"one recommendation, p99 ({size})",
        p99,
        "ms",
        target=f"< {TARGET_P99_MS:g} ms",
        met=p99 < TARGET_P99_MS,
        area=AREA,
    )
    results.record("one recommendation, max", latencies[-1], "ms", area=AREA)
    # The issue asks for the time for 100,000 deals; a smaller run extrapolates (and says so).
    extrapolated = (
        ""
        if args.deals >= FULL_DEALS
        else f"; ≈ {FULL_DEALS / (args.deals / total_seconds):.0f} s for {FULL_DEALS:,} deals"
    )
    results.record(
        f"recommend for all {args.deals:,} deals, one process",
        args.deals / total_seconds,
        "deals/s",
        note=f"{total_seconds:.1f} s{extrapolated}",
        area=AREA,
    )
    results.save("bench_recommend", params=vars(args))


if __name__ == "__main__":
    main()
