"""Benchmark the HubSpot sandbox: seed 100k deals, then page through them with the real library.

Run: ``.venv/bin/python bench/bench_sandbox_hubspot.py [--deals N]``. Prints a Markdown table
and saves its rows to ``var/bench-results/bench_sandbox_hubspot.json``.

Measured:

* seeding N deals (plus N/5 companies, history, associations) from scratch: wall time, database
  size and the process's peak RSS;
* a second sandbox start on the cached seed (a file copy);
* listing every deal through ``hubspot-api-client`` ``crm.deals.basic_api.get_page`` (100 per
  page, the library's own page size) with the rate limits raised: records/s and requests;
* the same paging with plain httpx (no model building), to separate the emulator's cost from
  the library's;
* one search over the seed's busiest modification day, to show it is over the 10,000 cap.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import httpx
import results
from hubspot import HubSpot
from hubspot.crm.deals import PublicObjectSearchRequest

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.hubspot.seed import WINDOW_START_MS
from sandbox.hubspot.timeutil import DAY_MS

AREA = "sandbox (HubSpot)"
SEARCH_CAP = 10_000


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=100_000)
    args = parser.parse_args()
    options = HubSpotOptions(
        ten_second_limit=1_000_000_000, daily_limit=1_000_000_000, search_per_second=1_000
    )
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hubspot-") as scratch:
        data_dir = Path(scratch)
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        hs = HubSpotSandbox(seed=1, size=args.deals, data_dir=data_dir, options=options)
        seed_seconds = time.perf_counter() - started
        cached = next(data_dir.glob("hubspot-v*.sqlite"))
        results.record(
            "seed from scratch",
            hs.plan.deals / seed_seconds,
            "deals/s",
            note=f"{hs.plan.deals:,} deals in {seed_seconds:.1f} s, "
            f"database {cached.stat().st_size / 2**20:,.0f} MiB",
            area=AREA,
        )
        rows += [
            ("deals seeded", f"{hs.plan.deals:,} (+{hs.plan.companies:,} companies)"),
            ("seed time (from scratch)", f"{seed_seconds:.1f} s"),
            ("seed rate", f"{hs.plan.deals / seed_seconds:,.0f} deals/s"),
            ("database size", f"{cached.stat().st_size / 2**20:,.0f} MiB"),
            ("peak RSS during seeding", f"{peak_rss_mib():,.0f} MiB (before: {rss_before:,.0f})"),
        ]
        hs.stop()
        started = time.perf_counter()
        hs = HubSpotSandbox(seed=1, size=args.deals, data_dir=data_dir, options=options)
        rows.append(("second start (cached seed)", f"{time.perf_counter() - started:.2f} s"))
        hs.start()
        try:
            client = HubSpot(access_token=hs.credentials.private_app_token, host=hs.url)
            hs.calls.reset()
            started = time.perf_counter()
            seen = 0
            after: str | None = None
            while True:
                page = client.crm.deals.basic_api.get_page(limit=100, after=after)
                seen += len(page.results)
                if page.paging is None:
                    break
                after = page.paging.next.after
            library_seconds = time.perf_counter() - started
            requests = hs.calls.snapshot()["list"]
            assert seen == hs.plan.deals, (seen, hs.plan.deals)
            results.record(
                "hubspot-api-client get_page paging (100 per page, no rate limit)",
                seen / library_seconds,
                "records/s",
                note=f"{requests:,} requests",
                area=AREA,
            )
            rows += [
                ("library get_page paging", f"{seen / library_seconds:,.0f} records/s"),
                ("  requests / time", f"{requests:,} requests in {library_seconds:.1f} s"),
            ]

            headers = {"Authorization": f"Bearer {hs.credentials.private_app_token}"}
            started = time.perf_counter()
            raw_seen = 0
            with httpx.Client(base_url=hs.url, headers=headers) as http:
                params: dict[str, str] = {"limit": "100"}
                while True:
                    data = http.get("/crm/v3/objects/deals", params=params).json()
                    raw_seen += len(data["results"])
                    if "paging" not in data:
                        break
                    params["after"] = data["paging"]["next"]["after"]
            raw_seconds = time.perf_counter() - started
            rows.append(("httpx paging (no models)", f"{raw_seen / raw_seconds:,.0f} records/s"))
            results.record(
                "httpx paging, same pages (no model building)",
                raw_seen / raw_seconds,
                "records/s",
                area=AREA,
            )

            window = client.crm.deals.search_api.do_search(
                PublicObjectSearchRequest(
                    filter_groups=[
                        {
                            "filters": [
                                {
                                    "propertyName": "hs_lastmodifieddate",
                                    "operator": "BETWEEN",
                                    "value": str(WINDOW_START_MS),
                                    "highValue": str(WINDOW_START_MS + DAY_MS - 1),
                                }
                            ]
                        }
                    ],
                    limit=1,
                )
            )
            rows.append(("deals modified on 2026-10-15 (search total)", f"{window.total:,}"))
            # One deal in eight is modified that day, so only a seed above 80,000 deals puts
            # more than the search cap there (what the sync's window slicing is tested with).
            over_cap = hs.plan.deals > 8 * SEARCH_CAP
            results.record(
                "deals modified on the seed's busiest day (search total)",
                window.total,
                target=f"> {SEARCH_CAP:,} (over the search cap)" if over_cap else None,
                met=window.total > SEARCH_CAP if over_cap else None,
                area=AREA,
            )
        finally:
            hs.stop()
    rows.append(("peak RSS (whole run)", f"{peak_rss_mib():,.0f} MiB"))
    results.record("peak RSS of the benchmark process", peak_rss_mib(), "MiB", area=AREA)
    print("| measure | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    results.save("bench_sandbox_hubspot", params=vars(args))


if __name__ == "__main__":
    main()
