"""Benchmark usage write-back to both sandbox CRMs; prints a Markdown table.

Run: ``.venv/bin/python bench/bench_writeback.py [--events N] [--naive N]``. The rows are also
saved to ``var/bench-results/bench_writeback.json``.

For each CRM, ``--events`` (default 10,000) accepted usage events spread over the synced
opportunities and a few reps are inserted into a fresh SQLite database, then one
``stagelink writeback`` pass runs in a child process (the emulators run in this one, so
they do not share its GIL). Measured: API requests the pass used — against the issue's
targets, ceil(N / 200) + 5 for Salesforce (sObject Collections) and ceil(N / 100) + 5 for
HubSpot (batch create) — events/s, and that each event became exactly one activity.

The naive baseline writes one request per event (the same engine with batches of one) on
a ``--naive`` sample (HubSpot's 190 requests/10 s quota makes 10,000 single writes take
almost nine minutes); its events/s and requests per event give the ratios. HubSpot runs at
its documented quota of 190 requests per ten seconds throughout; under that rolling window
single writes go out in bursts one window apart, so HubSpot's sample is rounded to a whole
number of windows plus one, which makes its rate the one a long run sustains.

Salesforce is measured both ways it can be idempotent: upserts by the external-id field,
and plain creates with the marker in the description.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import results
import yaml
from sqlalchemy import select

from connectors.core.activities import marker_token
from connectors.core.connector import ReadMode
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import hubspot_block as sandbox_hubspot_block
from stagelink.demo.sandboxes import salesforce_block as sandbox_salesforce_block
from stagelink.logs import configure_logging
from stagelink.settings import load_config
from stagelink.storage import CrmOpportunity, CrmOwner, UsageAction, make_engine, upgrade
from stagelink.sync import Storage, SyncEngine, SyncOptions, open_connector
from stagelink.writeback import WritebackOptions, run_writeback
from stagelink.writeback.testing import EventSpec, insert_accepted_events

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench-cache"
HUBSPOT_QUOTA = 190
Counter_ = Callable[[list[str]], Counter[str]]


@dataclass
class Case:
    """One thing to measure: a connection block and how to count its activities."""

    label: str
    area: str
    block: dict[str, Any]
    batch: int
    count: Counter_
    quota: int | None = None  # requests per rolling ten seconds, when the CRM enforces one

    def naive_size(self, wanted: int) -> int:
        """The naive sample: ``wanted``, or whole quota windows plus one request."""
        if self.quota is None:
            return wanted
        return max(1, round((wanted - 1) / self.quota)) * self.quota + 1


def salesforce_block(org: SalesforceSandbox, name: str, **writeback: Any) -> dict[str, Any]:
    return sandbox_salesforce_block(
        org, name, budget={"max_daily_fraction": 1.0}, writeback=writeback
    )


def hubspot_block(portal: HubSpotSandbox, name: str) -> dict[str, Any]:
    return sandbox_hubspot_block(portal, name, budget={"max_daily_fraction": 1.0})


def salesforce_counter(org: SalesforceSandbox) -> Counter_:
    def count(markers: list[str]) -> Counter[str]:
        wanted = set(markers)
        found: Counter[str] = Counter()
        for row in org.records("Task", "\"Description\" LIKE '%stagelink event: sl-%'"):
            marker = str(row["Description"]).rsplit("stagelink event: ", 1)[1].strip()
            if marker in wanted:
                found[marker] += 1
        return found

    return count


def hubspot_counter(portal: HubSpotSandbox) -> Counter_:
    def count(markers: list[str]) -> Counter[str]:
        tokens = {marker_token(m): m for m in markers}
        found: Counter[str] = Counter()
        for note in portal.objects("notes"):
            body = note["properties"].get("hs_note_body") or ""
            token = body.rsplit("stagelink event: ", 1)[-1].split("<", 1)[0]
            if token in tokens:
                found[tokens[token]] += 1
        return found

    return count


def prepare(storage: Storage, config_path: Path, name: str, events: int, seed: int) -> list[str]:
    """Sync owners and opportunities, then insert ``events`` accepted events."""
    config = load_config(config_path)
    with open_connector(config.connection(name)) as connector:
        outcome = SyncEngine(storage.sessions, connector, connection_name=name).run(
            SyncOptions(mode=ReadMode.FULL, streams=["owners", "opportunities"])
        )
        assert outcome.ok, outcome.error
        kind = connector.kind
    with storage.sessions() as session:
        deals = session.scalars(
            select(CrmOpportunity.crm_id).where(CrmOpportunity.deleted_at.is_(None))
        ).all()
        emails = session.scalars(
            select(CrmOwner.email).where(CrmOwner.active.is_(True), CrmOwner.email.is_not(None))
        ).all()
    rng = random.Random(seed)
    reps = [str(e) for e in emails[:5]] + ["no.crm.user@example.com"]
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    specs = [
        EventSpec(
            opportunity_crm_id=rng.choice(deals),
            rep_email=rng.choice(reps),
            content_id=f"content-{rng.randrange(40)}",
            action=rng.choice(list(UsageAction)),
            occurred_at=start + timedelta(seconds=i * 7),
            duration_seconds=rng.choice([None, 30, 95, 600]),
        )
        for i in range(events)
    ]
    return insert_accepted_events(storage.sessions, name, kind, specs)


def run_child(command: list[str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{command[3:5]} failed with exit code {done.returncode}")
    return seconds, json.loads(done.stdout)


def naive_child(config_path: str, name: str, events: int) -> None:
    """One request per event: the engine with batches of one (run as a child process)."""
    config = load_config(Path(config_path))
    configure_logging("warning")
    engine = make_engine(config.database_url)
    storage = Storage(engine)
    options = WritebackOptions(batch_size=1, trigger="bench-naive")
    outcome = run_writeback(config, storage, name, max_events=events, options=options)
    engine.dispose()
    print(json.dumps({"counts": outcome.counts, "seconds": outcome.seconds}))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--naive-child":
        naive_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=300, help="events in the naive sample")
    args = parser.parse_args()
    configure_logging("warning")
    rows: list[tuple[str, str, str, str]] = []

    def row(measure: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("yes" if met else "**no**")
        rows.append((measure, value, target, verdict))
        print(f"  {measure}: {value}", file=sys.stderr)

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-writeback-") as scratch:
        work = Path(scratch)
        sf = SalesforceSandbox(seed=1, size="small", data_dir=CACHE)
        sf.start()
        hs = HubSpotSandbox(
            seed=1,
            size="small",
            data_dir=CACHE,
            options=HubSpotOptions(ten_second_limit=HUBSPOT_QUOTA, daily_limit=10_000_000),
        ).start()
        try:
            sf.set_api_limit(10_000_000, reset_usage=True)
            cases = [
                Case(
                    "Salesforce, upsert by external id",
                    "writeback (Salesforce, upsert)",
                    salesforce_block(
                        sf, "bench-sf-upsert", external_id_field="Stagelink_Event_Id__c"
                    ),
                    200,
                    salesforce_counter(sf),
                ),
                Case(
                    "Salesforce, create with description marker",
                    "writeback (Salesforce, create)",
                    salesforce_block(sf, "bench-sf-create"),
                    200,
                    salesforce_counter(sf),
                ),
                Case(
                    "HubSpot notes, unique event-id property",
                    "writeback (HubSpot notes)",
                    hubspot_block(hs, "bench-hubspot"),
                    100,
                    hubspot_counter(hs),
                    quota=HUBSPOT_QUOTA,
                ),
            ]
            for index, case in enumerate(cases):
                database = work / f"case-{index}.db"
                config_path = work / f"case-{index}.yaml"
                url = f"sqlite:///{database}"
                upgrade(url)
                config_path.write_text(
                    yaml.safe_dump({"database_url": url, "connections": [case.block]}),
                    encoding="utf-8",
                )
                engine = make_engine(url)
                storage = Storage(engine)
                name = case.block["name"]
                markers = prepare(storage, config_path, name, args.events, seed=index)
                naive_size = case.naive_size(args.naive)
                sample = prepare(storage, config_path, name, naive_size, seed=100 + index)
                hs.set_rate_limits(reset=True)

                # The batched pass writes the big set first (older rows go first), then the
                # naive sample in a second child with batches of one.
                seconds, answer = run_child(
                    [
                        sys.executable,
                        "-m",
                        "stagelink.cli.main",
                        "writeback",
                        name,
                        "--max-events",
                        str(args.events),
                        "--json",
                        "-c",
                        str(config_path),
                    ]
                )
                outcome = answer[name]
                requests = outcome["counts"]["requests"]
                written = outcome["counts"]["written"]
                rate = written / outcome["seconds"]
                target = math.ceil(args.events / case.batch) + 5
                counted = case.count(markers)
                exact = len(counted) == len(markers) and set(counted.values()) == {1}
                row(
                    f"{case.label}: {args.events:,} events",
                    f"{rate:,.0f} events/s ({outcome['seconds']:.1f} s in the pass, "
                    f"{seconds:.1f} s with process start)",
                )
                row(
                    "  API requests",
                    f"{requests:,}",
                    f"≤ {target:,}",
                    requests <= target,
                )
                row("  activities in the CRM, one per event", "yes" if exact else "no", "", exact)
                results.record(
                    f"{args.events:,} events",
                    rate,
                    "events/s",
                    note=f"{outcome['seconds']:.1f} s in the pass",
                    area=case.area,
                )
                results.record(
                    f"API requests for {args.events:,} events",
                    requests,
                    target=f"≤ {target:,}",
                    met=requests <= target,
                    area=case.area,
                )
                results.record(
                    "activities in the CRM, exactly one per event",
                    "yes" if exact else "no",
                    target="exactly one each",
                    met=exact,
                    area=case.area,
                )

                hs.set_rate_limits(reset=True)
                naive_child_command = [sys.executable, __file__, "--naive-child"]
                _, naive = run_child(
                    [*naive_child_command, str(config_path), name, str(naive_size)]
                )
                naive_rate = naive["counts"]["written"] / naive["seconds"]
                naive_per_event = naive["counts"]["requests"] / max(naive["counts"]["written"], 1)
                per_event = requests / max(written, 1)
                row(
                    f"  naive baseline, one request per event ({naive_size:,} events)",
                    f"{naive_rate:,.0f} events/s, {naive_per_event:.2f} requests/event "
                    f"(≈ {naive_per_event * args.events:,.0f} requests for {args.events:,})",
                )
                row(
                    "  batched ÷ naive",
                    f"{rate / naive_rate:,.1f}× the events/s, "
                    f"{naive_per_event / per_event:,.0f}× fewer requests",
                )
                results.record(
                    f"naive baseline, one request per event ({naive_size:,}-event sample)",
                    naive_rate,
                    "events/s",
                    note=f"{naive_per_event:.2f} requests/event; extrapolated: "
                    f"{naive_per_event * args.events:,.0f} requests for {args.events:,}",
                    area=case.area,
                )
                results.record("batched ÷ naive, events/s", rate / naive_rate, "×", area=case.area)
                results.record(
                    "batched ÷ naive, API requests per event",
                    per_event / naive_per_event,
                    "×",
                    note=f"{naive_per_event / per_event:,.0f}× fewer",
                    area=case.area,
                )
                sample_counts = case.count(sample)
                assert set(sample_counts.values()) == {1}, "naive run duplicated activities"
                engine.dispose()
        finally:
            hs.stop()
            sf.stop()

    print(f"\nwriteback benchmark, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("| measure | value | target | met |")
    print("| --- | --- | --- | --- |")
    for measure, value, target, met in rows:
        print(f"| {measure} | {value} | {target} | {met} |")
    results.save("bench_writeback", params=vars(args))


if __name__ == "__main__":
    main()
