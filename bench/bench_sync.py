"""Benchmark sync and backfill from both sandbox CRMs into SQLite; prints a Markdown table.

Run: ``.venv/bin/python bench/bench_sync.py [--opportunities N] [--backfill N]``.

Every measured job runs in its own child process (``stagelink sync`` / ``stagelink backfill``,
exactly what an admin runs), so its peak RSS is its own (``os.wait4``) and it does not share
the GIL with the emulators, which run in this process. Measured, with the issue's targets:

* Salesforce full sync of N opportunities + N/5 accounts: records/s, API requests against the
  floor (records ÷ 2,000 per page), peak RSS; and, in the same run, bare simple-salesforce
  paging of the same records (``query_all_iter``) — the sync must reach at least half its rate;
* HubSpot full sync with the sandbox's quota at 190 requests/10 s: records/s, share of the
  quota used (target ≥ 90%), 429s drawn (target ≤ 1% of requests), requests against the floor
  (records ÷ 100 per list page);
* an incremental sync with no changes: API requests per stream (target ≤ 2);
* a Salesforce backfill of the ``--backfill`` size through Bulk API 2.0: peak RSS (< 400 MB).

Seeds are cached under ``var/bench-cache`` so a second run starts in seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench-cache"
SF_FIELDS = (
    "Id, AccountId, Name, StageName, Amount, CloseDate, Probability, IsClosed, IsWon, Type, "
    "OwnerId, CurrencyIsoCode, Product_Line__c, CreatedDate, SystemModstamp, IsDeleted"
)


@dataclass
class ChildRun:
    """What one child process did."""

    seconds: float
    peak_rss_mib: float
    output: str
    returncode: int

    def json(self) -> Any:
        return json.loads(self.output)


def run_child(command: list[str]) -> ChildRun:
    """Run ``command``, returning its wall time and its own peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stderr is not None
    output = process.stdout.read()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    if code not in (0,):
        sys.stderr.write(errors[-3000:])
    return ChildRun(seconds, usage.ru_maxrss / 1024, output, code)


def stagelink(*args: str) -> list[str]:
    return [sys.executable, "-m", "stagelink.cli.main", *args]


def bare_salesforce(config_path: str) -> None:
    """Child mode: page every account and opportunity with bare simple-salesforce."""
    from simple_salesforce.api import Salesforce

    from connectors.salesforce.auth import login
    from connectors.salesforce.config import SalesforceConnectionConfig
    from connectors.salesforce.http import build_session
    from stagelink.settings import load_config

    config = load_config(Path(config_path)).connection("sandbox-salesforce")
    assert isinstance(config, SalesforceConnectionConfig)
    session = build_session(config)
    token = login(config, session)
    sf = Salesforce(instance_url=token.instance_url, session_id=token.access_token, session=session)
    started = time.perf_counter()
    count = sum(1 for _ in sf.query_all_iter(f"SELECT {SF_FIELDS} FROM Opportunity"))
    count += sum(
        1
        for _ in sf.query_all_iter(
            "SELECT Id, Name, Type, Industry, BillingCountry, OwnerId, AnnualRevenue, "
            "CurrencyIsoCode, Region__c, CreatedDate, SystemModstamp, IsDeleted FROM Account"
        )
    )
    print(json.dumps({"records": count, "seconds": time.perf_counter() - started}))


def write_config(work: Path, running: RunningSandboxes) -> Path:
    path = work / "stagelink.yaml"
    database = work / "stagelink.db"
    database.unlink(missing_ok=True)
    path.write_text(sandbox_config_yaml(running, database_url=f"sqlite:///{database}"))
    return path


def requests_per_stream(outcome: dict[str, Any]) -> dict[str, int]:
    return {name: counts.get("requests", 0) for name, counts in outcome["streams"].items()}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child-bare-salesforce":
        bare_salesforce(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--backfill", type=int, default=1_000_000)
    parser.add_argument("--hubspot-quota", type=int, default=190)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []  # measure, value, target, met

    def row(measure: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("yes" if met else "**no**")
        rows.append((measure, value, target, verdict))
        print(f"  {measure}: {value}", file=sys.stderr)

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as scratch:
        work = Path(scratch)
        n = args.opportunities
        sf = SalesforceSandbox(seed=1, size=n, data_dir=CACHE)
        sf.start()
        hs = HubSpotSandbox(
            seed=1,
            size=n,
            data_dir=CACHE,
            options=HubSpotOptions(ten_second_limit=args.hubspot_quota, daily_limit=10_000_000),
        ).start()
        try:
            sf.set_api_limit(10_000_000, reset_usage=True)
            running = RunningSandboxes(salesforce=sf, hubspot=hs)
            config = str(write_config(work, running))
            sf_records = sf.count("Opportunity") + sf.count("Account")

            # -- Salesforce: bare library vs full sync, same sandbox, same run ----------------
            bare = run_child([sys.executable, __file__, "--child-bare-salesforce", config])
            bare_rate = bare.json()["records"] / bare.json()["seconds"]
            full = run_child(stagelink("sync", "sandbox-salesforce", "--config", config, "--json"))
            outcome = full.json()["sandbox-salesforce"]
            # The same records the bare run pages: the accounts and opportunities streams.
            record_ms = sum(outcome["streams"][s]["ms"] for s in ("accounts", "opportunities"))
            sync_rate = sf_records / (record_ms / 1000)
            requests = sum(outcome["streams"][s]["requests"] for s in ("accounts", "opportunities"))
            floor = math.ceil(sf.count("Opportunity") / 2000) + math.ceil(
                sf.count("Account") / 2000
            )
            ratio = sync_rate / bare_rate
            row(
                f"Salesforce full sync ({sf.count('Opportunity'):,} opportunities"
                f" + {sf.count('Account'):,} accounts)",
                f"{sync_rate:,.0f} records/s ({record_ms / 1000:.1f} s; whole job with owners,"
                f" stages and stage history {outcome['seconds']:.1f} s)",
            )
            row("  bare simple-salesforce paging, same records", f"{bare_rate:,.0f} records/s")
            row("  sync rate ÷ bare paging rate", f"{ratio:.2f}", "≥ 0.5", ratio >= 0.5)
            row(
                "  API requests of the accounts + opportunities streams vs floor (records ÷ 2,000)",
                f"{requests:,} vs {floor:,}",
            )
            row("  peak RSS of the sync process", f"{full.peak_rss_mib:,.0f} MiB")
            again = run_child(stagelink("sync", "sandbox-salesforce", "--config", config, "--json"))
            per_stream = requests_per_stream(again.json()["sandbox-salesforce"])
            worst = max(per_stream.values())
            row(
                "Salesforce incremental, no changes: requests per stream",
                ", ".join(f"{k} {v}" for k, v in per_stream.items()),
                "≤ 2 each",
                worst <= 2,
            )

            # -- HubSpot: paced full sync at the ten-second quota -----------------------------
            hs.set_rate_limits(ten_second=args.hubspot_quota, reset=True)
            hs.calls.reset()
            hs_records = hs.count("deals") + hs.count("companies")
            full = run_child(stagelink("sync", "sandbox-hubspot", "--config", config, "--json"))
            outcome = full.json()["sandbox-hubspot"]
            calls = hs.calls.snapshot()
            limited = calls.get("rate_limited", 0)
            answered = calls.get("total", 0)
            quota_share = answered / (outcome["seconds"] / 10 * args.hubspot_quota)
            floor = math.ceil(hs.count("deals") / 100) + math.ceil(hs.count("companies") / 100)
            row(
                f"HubSpot full sync ({hs.count('deals'):,} deals"
                f" + {hs.count('companies'):,} companies)",
                f"{hs_records / outcome['seconds']:,.0f} records/s ({outcome['seconds']:.1f} s)",
            )
            row(
                f"  share of the {args.hubspot_quota}/10 s quota used",
                f"{quota_share:.0%}",
                "≥ 90%",
                quota_share >= 0.9,
            )
            row(
                "  429 answers",
                f"{limited:,} of {answered:,} requests ({limited / max(answered, 1):.2%})",
                "≤ 1%",
                limited <= 0.01 * answered,
            )
            row(
                "  API requests vs floor (records ÷ 100)",
                f"{outcome['counts']['requests']:,} vs {floor:,}",
            )
            row("  peak RSS of the sync process", f"{full.peak_rss_mib:,.0f} MiB")
            again = run_child(stagelink("sync", "sandbox-hubspot", "--config", config, "--json"))
            per_stream = requests_per_stream(again.json()["sandbox-hubspot"])
            worst = max(per_stream.values())
            row(
                "HubSpot incremental, no changes: requests per stream",
                ", ".join(f"{k} {v}" for k, v in per_stream.items()),
                "≤ 2 each",
                worst <= 2,
            )
        finally:
            hs.stop()
            sf.stop()

        # -- Salesforce backfill at scale: bounded memory -----------------------------------
        if args.backfill:
            big = SalesforceSandbox(seed=1, size=args.backfill, data_dir=CACHE)
            big.start()
            try:
                big.set_api_limit(10_000_000, reset_usage=True)
                config = str(write_config(work, RunningSandboxes(salesforce=big, hubspot=None)))
                run = run_child(
                    stagelink(
                        "backfill",
                        "sandbox-salesforce",
                        "--objects",
                        "opportunities",
                        "--config",
                        config,
                        "--json",
                    )
                )
                outcome = run.json()["sandbox-salesforce"]
                count = outcome["counts"]["read"]
                row(
                    f"Salesforce backfill of {count:,} opportunities (Bulk API 2.0)",
                    f"{count / outcome['seconds']:,.0f} records/s ({outcome['seconds']:.0f} s, "
                    f"{outcome['counts']['requests']:,} requests)",
                )
                row(
                    "  peak RSS of the backfill process",
                    f"{run.peak_rss_mib:,.0f} MiB",
                    "< 400 MB",
                    run.peak_rss_mib * 1.048576 < 400,
                )
            finally:
                big.stop()

    print(f"\nsync benchmark, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("| measure | value | target | met |")
    print("| --- | --- | --- | --- |")
    for measure, value, target, met in rows:
        print(f"| {measure} | {value} | {target} | {met} |")


if __name__ == "__main__":
    main()
