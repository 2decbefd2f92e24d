"""Benchmark the Salesforce sandbox: seed a million opportunities, then list them back.

Run: ``.venv/bin/python bench/bench_sandbox_salesforce.py [--opportunities N] [--list M]``.
Prints a Markdown table and saves its rows to ``var/bench-results/bench_sandbox_salesforce.json``.

Measured:

* seeding N opportunities (plus N/5 accounts, users, stage history, tasks) from scratch:
  wall time, database size and the process's peak RSS;
* a sandbox start on the cached seed (a file copy of the database);
* listing M opportunities through simple-salesforce ``query_all_iter`` (REST, 2,000 per
  page, the cursor query a sync runs): records/s and requests;
* the same M rows through ``sf.bulk2.Opportunity.query`` (Bulk API 2.0 CSV pages).
"""

from __future__ import annotations

import argparse
import csv
import io
import resource
import tempfile
import time
from pathlib import Path

import requests
import results
from simple_salesforce import Salesforce

from sandbox.salesforce import SalesforceOptions, SalesforceSandbox

AREA = "sandbox (Salesforce)"

FIELDS = "Id, Name, AccountId, StageName, Amount, CloseDate, OwnerId, IsClosed, SystemModstamp"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--list", type=int, default=100_000)
    args = parser.parse_args()
    options = SalesforceOptions(api_daily_limit=10_000_000, bulk_job_seconds=0.05)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-salesforce-") as scratch:
        data_dir = Path(scratch)
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        sandbox = SalesforceSandbox(
            seed=1, size=args.opportunities, data_dir=data_dir, options=options
        )
        seed_seconds = time.perf_counter() - started
        cached = next((data_dir / "seeds").glob("*.sqlite"))
        results.record(
            "seed from scratch",
            args.opportunities / seed_seconds,
            "opportunities/s",
            note=f"{args.opportunities:,} opportunities in {seed_seconds:.1f} s, "
            f"database {cached.stat().st_size / 2**20:,.0f} MiB",
            area=AREA,
        )
        rows += [
            (
                "opportunities seeded",
                f"{args.opportunities:,} (+{sandbox.count('Account'):,} accounts, "
                f"{sandbox.count('OpportunityHistory'):,} history rows)",
            ),
            ("seed time (from scratch, incl. first copy)", f"{seed_seconds:.1f} s"),
            ("seed rate", f"{args.opportunities / seed_seconds:,.0f} opportunities/s"),
            ("database size", f"{cached.stat().st_size / 2**20:,.0f} MiB"),
            ("peak RSS after seeding", f"{peak_rss_mib():,.0f} MiB (before: {rss_before:,.0f})"),
        ]
        sandbox.stop()
        started = time.perf_counter()
        sandbox = SalesforceSandbox(
            seed=1, size=args.opportunities, data_dir=data_dir, options=options
        )
        sandbox.start()
        restart_seconds = time.perf_counter() - started
        rows.append(("second start (cached seed)", f"{restart_seconds:.2f} s"))
        results.record("second start (cached seed)", restart_seconds, "s", area=AREA)
        try:
            session = requests.Session()
            session.verify = str(sandbox.ca_bundle)
            session.trust_env = False
            sf = Salesforce(
                instance_url=sandbox.url, session_id=sandbox.issue_token(), session=session
            )
            soql = f"SELECT {FIELDS} FROM Opportunity ORDER BY SystemModstamp, Id LIMIT {args.list}"

            sandbox.calls.reset()
            started = time.perf_counter()
            seen = sum(1 for _ in sf.query_all_iter(soql))
            rest_seconds = time.perf_counter() - started
            calls = sandbox.calls.snapshot()
            assert seen == min(args.list, sandbox.count("Opportunity")), seen
            results.record(
                "simple-salesforce query_all_iter (REST, 2,000 per page)",
                seen / rest_seconds,
                "records/s",
                note=f"{seen:,} rows, {calls.get('query', 0) + calls.get('query_more', 0)} "
                "requests",
                area=AREA,
            )
            rows += [
                (f"REST query_all_iter, {seen:,} rows", f"{rest_seconds:.1f} s"),
                ("REST throughput", f"{seen / rest_seconds:,.0f} records/s"),
                (
                    "REST requests",
                    f"{calls.get('query', 0)} query + {calls.get('query_more', 0)} more",
                ),
            ]

            sandbox.calls.reset()
            started = time.perf_counter()
            bulk_rows = 0
            for page in sf.bulk2.Opportunity.query(soql, max_records=50_000, wait=0):
                bulk_rows += sum(1 for _ in csv.DictReader(io.StringIO(page)))
            bulk_seconds = time.perf_counter() - started
            calls = sandbox.calls.snapshot()
            assert bulk_rows == seen, bulk_rows
            results.record(
                "simple-salesforce Bulk API 2.0 query",
                bulk_rows / bulk_seconds,
                "records/s",
                note=f"{bulk_rows:,} rows",
                area=AREA,
            )
            rows += [
                (f"Bulk 2.0 query, {bulk_rows:,} rows", f"{bulk_seconds:.1f} s"),
                ("Bulk 2.0 throughput", f"{bulk_rows / bulk_seconds:,.0f} records/s"),
                (
                    "Bulk 2.0 requests",
                    f"{calls.get('bulk_create', 0)} create + {calls.get('bulk_poll', 0)} polls "
                    f"+ {calls.get('bulk_results', 0)} result pages",
                ),
                ("peak RSS at the end", f"{peak_rss_mib():,.0f} MiB"),
            ]
        finally:
            sandbox.stop()
    results.record("peak RSS of the benchmark process", peak_rss_mib(), "MiB", area=AREA)
    print("| measure | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    results.save("bench_sandbox_salesforce", params=vars(args))


if __name__ == "__main__":
    main()
