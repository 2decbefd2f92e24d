"""``stagelink recommend``, ``stagelink coverage`` and ``stagelink report effectiveness``."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from mapping import CoverageReport, Effect, Evaluation, MappingError, OpportunityFacts
from mapping.validation import mapping_problems
from stagelink.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    fail,
    load,
    print_json,
)
from stagelink.recommendations import OpportunityNotFound, Recommender
from stagelink.settings import AppConfig
from stagelink.storage import StorageError, make_engine, session_factory, upgrade

report_app = typer.Typer(help="Reports on content use and what it does for deals.")


@contextmanager
def _recommender(settings: AppConfig, *, effectiveness: bool = True) -> Iterator[Recommender]:
    try:
        database = make_engine(settings.database_url)
        upgrade(database)  # idempotent; an empty database gets its tables
    except StorageError as exc:
        fail(str(exc))
    try:
        yield Recommender.open(settings, database, effectiveness=effectiveness)
    except MappingError as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(f"{exc} (run `stagelink db upgrade` and a sync first)")
    finally:
        database.dispose()


# --- recommend ------------------------------------------------------------------------------


def recommend(
    connection: Annotated[str, typer.Argument(help="Connection name from the configuration.")],
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity's CRM id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Also show matched rules and every excluded item."),
    ] = False,
    mobile: Annotated[bool, typer.Option("--mobile", help="Rank as for a rep on a phone.")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, max=50, help="How many (default: content.top_n).")
    ] = None,
) -> None:
    """Recommend content for one synced opportunity, each item with why it is there."""
    settings = load(config)
    with _recommender(settings) as recommender:
        try:
            facts, evaluation = recommender.evaluate(
                connection, opportunity_id, mobile=mobile, limit=limit, explain=explain
            )
        except KeyError as exc:
            fail(str(exc.args[0]))
        except OpportunityNotFound as exc:
            fail(f"{exc} (run a sync, or check the id)", EXIT_FAILED)
    if not evaluation.stage.mapped:
        hint = "" if settings.mapping.stage_fallback else " (or configure mapping.stage_fallback)"
        err_console.print(
            f"[yellow]warning:[/] {evaluation.stage.describe()}: add it to the stage_map of "
            f"connection {connection!r}{hint}",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        print_json(_evaluation_json(facts, evaluation, explain=explain))
        return
    opportunity = facts.opportunity
    amount = (
        f"{opportunity.amount:,.0f} {opportunity.currency or ''}".strip()
        if opportunity.amount is not None
        else "no amount"
    )
    account = facts.account.name if facts.account and facts.account.name else "no account"
    console.print(
        f"[bold]{opportunity.name or opportunity.crm_id}[/] — {account}, {amount}", highlight=False
    )
    console.print(evaluation.stage.describe(), highlight=False)
    table = Table(show_lines=True)
    for column in ("#", "content", "type", "score", "why"):
        table.add_column(column, overflow="fold")
    for position, rec in enumerate(evaluation.recommendations, start=1):
        table.add_row(
            str(position),
            f"{rec.content.title}\n[dim]{rec.content.url}[/]",
            rec.content.type.replace("_", " "),
            f"{rec.score:.2f}",
            "\n".join(rec.reasons[1:]) or "made for this stage",
        )
    if evaluation.recommendations:
        console.print(table)
    else:
        console.print("no content to recommend")
    if explain:
        console.print(f"content made for {evaluation.stage.canonical}: {evaluation.candidates}")
        for rule_id, text in evaluation.matched_rules:
            console.print(f"  rule {rule_id}: {text}", highlight=False)
        if not evaluation.matched_rules:
            console.print("  no rule matched")
        for content_id, reason in evaluation.excluded:
            console.print(f"  left out {content_id}: {reason}", highlight=False)


def _evaluation_json(
    facts: OpportunityFacts, evaluation: Evaluation, *, explain: bool
) -> dict[str, Any]:
    stage = evaluation.stage
    data: dict[str, Any] = {
        "connection": facts.connection,
        "opportunity": facts.opportunity.crm_id,
        "name": facts.opportunity.name,
        "stage": {
            "crm": stage.crm_stage,
            "canonical": stage.canonical,
            "via": stage.via,
            "detail": stage.detail,
        },
        "recommendations": [
            {
                "id": rec.content.id,
                "title": rec.content.title,
                "url": rec.content.url,
                "type": rec.content.type,
                "mobile_ready": rec.content.mobile_ready,
                "score": rec.score,
                "rules": list(rec.rules),
                "reasons": list(rec.reasons),
                "explanation": rec.explanation,
            }
            for rec in evaluation.recommendations
        ],
    }
    if explain:
        data["candidates"] = evaluation.candidates
        data["matched_rules"] = [{"id": i, "explanation": t} for i, t in evaluation.matched_rules]
        data["excluded"] = [{"id": i, "reason": r} for i, r in evaluation.excluded]
    return data


# --- coverage -------------------------------------------------------------------------------


def coverage(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    max_deals: Annotated[
        int | None,
        typer.Option(min=1, help="Check rules against at most this many deals (default: all)."),
    ] = None,
) -> None:
    """What the mapping does not cover: stages without content, CRM stages without a
    mapping, rules that match no synced deal, content no rule can reach."""
    settings = load(config)
    with _recommender(settings, effectiveness=False) as recommender:
        report = recommender.coverage(max_deals=max_deals)
    if as_json:
        print_json(coverage_json(report))
        return
    print_coverage(report)


def coverage_json(report: CoverageReport) -> dict[str, Any]:
    """The coverage report as plain data."""
    return {
        "stages": [
            {
                "stage": s.stage,
                "content": s.items,
                "unavailable": s.unavailable,
                "crm_stages": s.crm_stages,
                "rules": s.rules,
            }
            for s in report.stages
        ],
        "stages_without_content": report.empty_stages,
        "unmapped_crm_stages": [
            {
                "connection": u.connection,
                "crm_stage": u.crm_stage,
                "pipeline": u.pipeline,
                "stage_id": u.stage_id,
                "opportunities": u.opportunities,
                "open_opportunities": u.open_opportunities,
                "fallback": u.fallback,
                "fallback_reason": u.detail,
            }
            for u in report.unmapped
        ],
        "crm_stages_seen": report.crm_stages_seen,
        "unused_stage_map_keys": [{"connection": c, "key": k} for c, k in report.unused_map_keys],
        "deals_checked": report.deals_checked,
        "rules_matching_nothing": report.idle_rules,
        "content_no_rule_reaches": report.unreached_content,
        "unavailable_content": [{"id": i, "reason": r} for i, r in report.unavailable_content],
    }


def print_coverage(report: CoverageReport) -> None:
    """The coverage report as tables."""
    table = Table(title="canonical stages", title_justify="left")
    for column in ("stage", "content", "expired / not yet valid", "CRM stages mapped", "rules"):
        table.add_column(column)
    for s in report.stages:
        count = f"[red]{s.items}[/]" if s.items == 0 else str(s.items)
        mapped = f"[yellow]{s.crm_stages}[/]" if s.crm_stages == 0 else str(s.crm_stages)
        table.add_row(s.stage, count, str(s.unavailable), mapped, str(s.rules))
    console.print(table)
    if report.unmapped:
        unmapped = Table(title="CRM stages with no mapping", title_justify="left")
        for column in ("connection", "CRM stage", "pipeline / id", "deals (open)", "fallback"):
            unmapped.add_column(column)
        for u in report.unmapped:
            fallback = f"{u.fallback} ({u.detail})" if u.fallback else "[red]none: no content[/]"
            unmapped.add_row(
                u.connection,
                u.crm_stage,
                f"{u.pipeline or '-'} / {u.stage_id or '-'}",
                f"{u.opportunities} ({u.open_opportunities})",
                fallback,
            )
        console.print(unmapped)
    elif report.crm_stages_seen:
        console.print(f"all {report.crm_stages_seen} CRM stages in the synced data are mapped")
    else:
        console.print("no CRM stages synced yet: run `stagelink sync` to see unmapped ones")
    for connection, key in report.unused_map_keys:
        console.print(f"stage_map of {connection}: {key!r} names no synced CRM stage")
    if report.idle_rules:
        console.print(
            f"rules that match none of {report.deals_checked:,} deals: "
            f"{', '.join(report.idle_rules)}",
            highlight=False,
        )
    else:
        console.print(f"every rule matches some of {report.deals_checked:,} deals")
    if report.unreached_content:
        console.print(
            f"content no rule reaches (shown by stage only): {', '.join(report.unreached_content)}",
            highlight=False,
        )
    for content_id, reason in report.unavailable_content:
        console.print(f"not shown: {content_id} ({reason})", highlight=False)


# --- report effectiveness -------------------------------------------------------------------


@report_app.command("effectiveness")
def effectiveness(
    config: ConfigOption = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Per content item and canonical stage: uses, deals touched, win rate of touched
    deals vs the rest (Beta-smoothed towards the stage's win rate) and the lift."""
    settings = load(config)
    with _recommender(settings, effectiveness=False) as recommender:
        effects = recommender.effectiveness()
        titles = {item.id: item.title for item in recommender.engine.catalog.items}
    rows = [_effect_row(effect, titles) for effect in effects]
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=_EFFECT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if as_json:
        print_json(rows)
        return
    print_effectiveness(effects, prior_strength=settings.mapping.effectiveness.prior_strength)


def print_effectiveness(effects: list[Effect], *, prior_strength: float) -> None:
    """The effectiveness report as a table (or a line saying there is no usage yet)."""
    if not effects:
        console.print("no usage recorded on synced deals yet")
        return
    table = Table(title="content effectiveness", title_justify="left")
    for column in (
        "content",
        "stage",
        "uses",
        "deals",
        "won / closed",
        "win rate",
        "others' win rate",
        "lift",
    ):
        table.add_column(column)
    for effect in effects:
        raw = effect.raw_win_rate_touched
        lift = f"{effect.lift:+.0%}"
        table.add_row(
            effect.content_id,
            effect.stage,
            str(effect.uses),
            str(effect.opportunities),
            f"{effect.won_touched} / {effect.closed_touched}",
            f"{effect.win_rate_touched:.0%}" + (f" (raw {raw:.0%})" if raw is not None else ""),
            f"{effect.win_rate_untouched:.0%}",
            f"[green]{lift}[/]" if effect.lift > 0 else lift,
        )
    console.print(table)
    console.print(
        "win rates are smoothed towards each stage's own win rate "
        f"(prior of {prior_strength:g} deals); "
        "correlation, not proof of cause"
    )


_EFFECT_COLUMNS = (
    "content_id",
    "title",
    "stage",
    "uses",
    "opportunities",
    "closed_touched",
    "won_touched",
    "closed_untouched",
    "won_untouched",
    "baseline",
    "win_rate_touched",
    "win_rate_untouched",
    "lift",
)


def _effect_row(effect: Effect, titles: dict[str, str]) -> dict[str, Any]:
    return {
        "content_id": effect.content_id,
        "title": titles.get(effect.content_id, ""),
        "stage": effect.stage,
        "uses": effect.uses,
        "opportunities": effect.opportunities,
        "closed_touched": effect.closed_touched,
        "won_touched": effect.won_touched,
        "closed_untouched": effect.closed_untouched,
        "won_untouched": effect.won_untouched,
        "baseline": round(effect.baseline, 4),
        "win_rate_touched": round(effect.win_rate_touched, 4),
        "win_rate_untouched": round(effect.win_rate_untouched, 4),
        "lift": round(effect.lift, 4),
    }


# --- for `stagelink check` ------------------------------------------------------------------


def mapping_summary(settings: AppConfig, *, database_ok: bool) -> dict[str, Any]:
    """What ``check`` says about content and mapping: catalog size, warnings, and CRM
    stages with no mapping (from the synced data, when the database is reachable)."""
    catalog, problems = mapping_problems(settings)
    summary: dict[str, Any] = {
        "content_items": len(catalog),
        "catalog_files": len(catalog.files),
        "warnings": [p.render() for p in problems if p.severity == "warning"],
        "unmapped_stages": [],
    }
    if database_ok:
        try:
            database = make_engine(settings.database_url)
            try:
                recommender = Recommender(settings, session_factory(database), strict=False)
                report = recommender.coverage(max_deals=0)
            finally:
                database.dispose()
        except StorageError:
            return summary  # not migrated yet: check reports the revision already
        summary["unmapped_stages"] = [
            {
                "connection": u.connection,
                "crm_stage": u.crm_stage,
                "opportunities": u.opportunities,
                "fallback": u.fallback,
            }
            for u in report.unmapped
        ]
    return summary


def print_mapping_summary(summary: dict[str, Any]) -> None:
    """The check lines about content and mapping."""
    console.print(
        f"content: {summary['content_items']} items in {summary['catalog_files']} catalog files"
    )
    for warning in summary["warnings"]:
        console.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for stage in summary["unmapped_stages"]:
        fallback = f"fallback → {stage['fallback']}" if stage["fallback"] else "no content shown"
        console.print(
            f"  [yellow]unmapped CRM stage[/] {stage['connection']}: {stage['crm_stage']!r} "
            f"({stage['opportunities']} deals; {fallback})",
            highlight=False,
            soft_wrap=True,
        )


__all__ = [
    "coverage",
    "coverage_json",
    "effectiveness",
    "mapping_summary",
    "print_coverage",
    "print_mapping_summary",
    "recommend",
    "report_app",
]
