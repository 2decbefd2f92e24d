"""Benchmark sync and backfill from both sandbox CRMs into SQLite; prints a Markdown table.

Run: ``.venv/bin/python bench/bench_sync.py [--opportunities N] [--backfill N]
[--naive-salesforce N] [--naive-hubspot N]``. The rows are also saved to
``var/bench-results/bench_sync.json``.

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
* a naive baseline per CRM, one API request per record, in the same run against the same
  sandbox: simple-salesforce ``sf.<SObject>.get(id)`` and hubspot-api-client
  ``basic_api.get_by_id`` (retrying a 429 after half a second, as simple client code does)
  over a sample of ids of both objects in their proportion; its records/s is extrapolated to
  the full set, and the sync's ratio to it printed (the baseline only fetches, it stores
  nothing, so the ratio favours it);
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

import results

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench-cache"
NAIVE_RETRY_SECONDS = 0.5
SF_AREA, HS_AREA, BACKFILL_AREA = "sync (Salesforce)", "sync (HubSpot)", "backfill (Salesforce)"
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


def naive_salesforce(config_path: str, ids_path: str) -> None:
    """Child mode: one REST GET per record (``sf.<SObject>.get(id)``), nothing stored."""
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
    wanted: list[list[str]] = json.loads(Path(ids_path).read_text())
    started = time.perf_counter()
    for sobject, record_id in wanted:
        record = getattr(sf, sobject).get(record_id)
        assert record["Id"] == record_id
    print(json.dumps({"records": len(wanted), "seconds": time.perf_counter() - started}))


def naive_hubspot(url: str, token: str, ids_path: str) -> None:
    """Child mode: one ``basic_api.get_by_id`` per record; a 429 is retried after a pause.

    Under a rolling ten-second quota the requests go out in bursts of the quota, one window
    apart; the sample is a whole number of windows plus one request (see
    :func:`hubspot_sample`), so first-to-last spans whole windows: what a long run sustains.
    """
    from hubspot import HubSpot

    client = HubSpot(access_token=token, host=url)
    apis = {"deals": client.crm.deals.basic_api, "companies": client.crm.companies.basic_api}
    wanted: list[list[str]] = json.loads(Path(ids_path).read_text())
    limited = 0
    done_at: list[float] = []
    started = time.perf_counter()
    for object_type, record_id in wanted:
        while True:
            try:
                record = apis[object_type].get_by_id(record_id)
                break
            except Exception as exc:  # each API module has its own ApiException class
                if getattr(exc, "status", None) != 429:
                    raise
                limited += 1
                time.sleep(NAIVE_RETRY_SECONDS)
        assert record.id == record_id
        done_at.append(time.perf_counter())
    print(
        json.dumps(
            {
                "records": len(wanted),
                "seconds": done_at[-1] - started,
                "rate": (len(done_at) - 1) / (done_at[-1] - done_at[0]),
                "rate_limited": limited,
            }
        )
    )


def salesforce_sample(sf: SalesforceSandbox, size: int) -> list[tuple[str, str]]:
    """About ``size`` (sObject, Id) pairs spread over accounts and opportunities."""
    sample: list[tuple[str, str]] = []
    total = sf.count("Opportunity") + sf.count("Account")
    for sobject in ("Opportunity", "Account"):
        share = max(1, round(size * sf.count(sobject) / total))
        step = max(1, sf.count(sobject) // share)
        rows = sf.records(sobject, f'"rowid" % {step} = 0')[:share]
        sample += [(sobject, str(row["Id"])) for row in rows]
    return sample


def hubspot_sample(hs: HubSpotSandbox, size: int, quota: int) -> list[tuple[str, str]]:
    """(object type, id) pairs spread over deals and companies: about ``size``, rounded to a
    whole number of ``quota`` windows plus one (at least one window)."""
    size = max(1, round((size - 1) / quota)) * quota + 1
    pools = [hs.account.store.ids(t, archived=False) for t in ("deals", "companies")]
    total = sum(len(ids) for ids in pools)
    sample: list[tuple[str, str]] = []
    for object_type, ids in zip(("deals", "companies"), pools, strict=True):
        share = max(1, round(size * len(ids) / total))
        sample += [(object_type, str(i)) for i in ids[:: max(1, len(ids) // share)][:share]]
    return sample[:size]


def record_naive(
    area: str,
    *,
    sample: int,
    naive_rate: float,
    records: int,
    sync_rate: float,
    sync_requests: int,
    note: str,
) -> tuple[float, float]:
    """Record the baseline and the sync's ratios to it; return (rate ratio, request ratio)."""
    rate_ratio = sync_rate / naive_rate
    request_ratio = sync_requests / records  # the baseline spends one request per record
    results.record(
        f"naive baseline, one request per record ({sample:,}-record sample)",
        naive_rate,
        "records/s",
        note=f"{note}; extrapolated: {records:,} requests, "
        f"{records / naive_rate / 60:,.1f} min for the {records:,} records",
        area=area,
    )
    results.record("sync ÷ naive, records/s", rate_ratio, "×", area=area)
    results.record(
        "sync ÷ naive, API requests",
        request_ratio,
        "×",
        note=f"{sync_requests:,} vs {records:,}: {records / max(sync_requests, 1):,.0f}× fewer",
        area=area,
    )
    return rate_ratio, request_ratio


def naive_ratios(rate_ratio: float, request_ratio: float) -> str:
    return (
        f"{rate_ratio:,.1f}× the records/s; {request_ratio:.2g}× the API requests "
        f"({1 / request_ratio:,.0f}× fewer)"
    )


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
    if len(sys.argv) == 4 and sys.argv[1] == "--child-naive-salesforce":
        naive_salesforce(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--child-naive-hubspot":
        naive_hubspot(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--backfill", type=int, default=1_000_000)
    parser.add_argument("--hubspot-quota", type=int, default=190)
    parser.add_argument(
        "--naive-salesforce", type=int, default=2_000, help="records in the naive sample (0: skip)"
    )
    parser.add_argument(
        "--naive-hubspot",
        type=int,
        default=381,
        help="records in the naive sample, rounded to whole quota windows plus one (0: skip); "
        "at 190 requests/10 s it reads 19 records/s, so 381 take 20 s",
    )
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
            results.record(
                "full sync, accounts + opportunities",
                sync_rate,
                "records/s",
                note=f"{sf_records:,} records in {record_ms / 1000:.1f} s; whole job "
                f"{outcome['seconds']:.1f} s",
                area=SF_AREA,
            )
            results.record(
                "bare simple-salesforce paging, same records, same run",
                bare_rate,
                "records/s",
                area=SF_AREA,
            )
            results.record(
                "sync rate ÷ bare paging rate", ratio, "×", target="≥ 0.5", met=ratio >= 0.5,
                area=SF_AREA,
            )  # fmt: skip
            results.record(
                "API requests vs floor (records ÷ 2,000 per page)",
                requests,
                note=f"floor {floor:,}",
                area=SF_AREA,
            )
            results.record("peak RSS of the sync process", full.peak_rss_mib, "MiB", area=SF_AREA)
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
            results.record(
                "incremental sync, no changes: API requests per stream (worst)",
                worst,
                note=", ".join(f"{k} {v}" for k, v in per_stream.items()),
                target="≤ 2 each",
                met=worst <= 2,
                area=SF_AREA,
            )
            row(
                "Salesforce incremental, no changes: requests per stream",
                ", ".join(f"{k} {v}" for k, v in per_stream.items()),
                "≤ 2 each",
                worst <= 2,
            )

            if args.naive_salesforce:
                sample = salesforce_sample(sf, args.naive_salesforce)
                ids_path = work / "naive-salesforce.json"
                ids_path.write_text(json.dumps(sample))
                sf.calls.reset()
                naive = run_child(
                    [sys.executable, __file__, "--child-naive-salesforce", config, str(ids_path)]
                ).json()
                gets = sf.calls.snapshot().get("sobject_get", 0)
                naive_rate = naive["records"] / naive["seconds"]
                rate_ratio, request_ratio = record_naive(
                    SF_AREA,
                    sample=len(sample),
                    naive_rate=naive_rate,
                    records=sf_records,
                    sync_rate=sync_rate,
                    sync_requests=requests,
                    note=f"{gets:,} GET requests",
                )
                row(
                    f"  naive baseline, one GET per record ({len(sample):,}-record sample)",
                    f"{naive_rate:,.0f} records/s, {gets:,} requests "
                    f"(extrapolated: {sf_records:,} requests, "
                    f"{sf_records / naive_rate / 60:,.1f} min)",
                )
                row("  sync ÷ naive", naive_ratios(rate_ratio, request_ratio))

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
            hs_rate = hs_records / outcome["seconds"]
            hs_requests = int(outcome["counts"]["requests"])
            results.record(
                f"full sync at {args.hubspot_quota} requests/10 s",
                hs_rate,
                "records/s",
                note=f"{hs_records:,} records in {outcome['seconds']:.1f} s",
                area=HS_AREA,
            )
            # Under five windows the first burst and the last partial window dominate the share.
            judged = outcome["seconds"] >= 50
            results.record(
                f"share of the {args.hubspot_quota}/10 s quota used",
                quota_share * 100,
                "%",
                target="≥ 90%",
                met=quota_share >= 0.9 if judged else None,
                note=None if judged else "run shorter than 5 windows: not judged",
                area=HS_AREA,
            )
            results.record(
                "429 answers",
                limited / max(answered, 1) * 100,
                "%",
                note=f"{limited:,} of {answered:,} requests",
                target="≤ 1%",
                met=limited <= 0.01 * answered,
                area=HS_AREA,
            )
            results.record(
                "API requests vs floor (records ÷ 100 per page)",
                hs_requests,
                note=f"floor {floor:,}",
                area=HS_AREA,
            )
            row(
                f"HubSpot full sync ({hs.count('deals'):,} deals"
                f" + {hs.count('companies'):,} companies)",
                f"{hs_records / outcome['seconds']:,.0f} records/s ({outcome['seconds']:.1f} s)",
            )
            row(
                f"  share of the {args.hubspot_quota}/10 s quota used",
                f"{quota_share:.0%}" + ("" if judged else " (under 5 windows: not judged)"),
                "≥ 90%",
                quota_share >= 0.9 if judged else None,
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
            results.record("peak RSS of the sync process", full.peak_rss_mib, "MiB", area=HS_AREA)
            again = run_child(stagelink("sync", "sandbox-hubspot", "--config", config, "--json"))
            per_stream = requests_per_stream(again.json()["sandbox-hubspot"])
            worst = max(per_stream.values())
            results.record(
                "incremental sync, no changes: API requests per stream (worst)",
                worst,
                note=", ".join(f"{k} {v}" for k, v in per_stream.items()),
                target="≤ 2 each",
                met=worst <= 2,
                area=HS_AREA,
            )
            row(
                "HubSpot incremental, no changes: requests per stream",
                ", ".join(f"{k} {v}" for k, v in per_stream.items()),
                "≤ 2 each",
                worst <= 2,
            )

            if args.naive_hubspot:
                sample = hubspot_sample(hs, args.naive_hubspot, args.hubspot_quota)
                ids_path = work / "naive-hubspot.json"
                ids_path.write_text(json.dumps(sample))
                hs.set_rate_limits(ten_second=args.hubspot_quota, reset=True)
                naive = run_child(
                    [
                        sys.executable,
                        __file__,
                        "--child-naive-hubspot",
                        hs.url,
                        hs.credentials.private_app_token,
                        str(ids_path),
                    ]
                ).json()
                naive_rate = naive["rate"]
                rate_ratio, request_ratio = record_naive(
                    HS_AREA,
                    sample=len(sample),
                    naive_rate=naive_rate,
                    records=hs_records,
                    sync_rate=hs_rate,
                    sync_requests=hs_requests,
                    note=f"same quota, over whole ten-second windows; "
                    f"{naive['rate_limited']:,} answers were 429",
                )
                row(
                    f"  naive baseline, one get_by_id per record ({len(sample):,}-record sample)",
                    f"{naive_rate:,.1f} records/s over whole quota windows, "
                    f"{naive['rate_limited']:,} 429s (extrapolated: {hs_records:,} requests, "
                    f"{hs_records / naive_rate / 60:,.0f} min)",
                )
                row("  sync ÷ naive", naive_ratios(rate_ratio, request_ratio))
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
                results.record(
                    "backfill via Bulk API 2.0",
                    count / outcome["seconds"],
                    "records/s",
                    note=f"{count:,} opportunities in {outcome['seconds']:.0f} s, "
                    f"{outcome['counts']['requests']:,} requests",
                    area=BACKFILL_AREA,
                )
                results.record(
                    f"peak RSS of the backfill process ({count:,} opportunities)",
                    run.peak_rss_mib * 1.048576,
                    "MB",
                    target="< 400 MB",
                    met=run.peak_rss_mib * 1.048576 < 400,
                    area=BACKFILL_AREA,
                )
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
    results.save("bench_sync", params=vars(args))


if __name__ == "__main__":
    main()
