"""Benchmark the rep surfaces: the HubSpot card endpoint and the mobile page under 50 clients.

Run: ``.venv/bin/python bench/bench_surfaces.py [--seconds 10] [--clients 50] [--rates 50,half]``
Prints Markdown tables. Target: p99 under 50 ms.

Set-up, as a user runs it: both sandbox CRMs (``small``) synced into a SQLite database with
the example catalog and rules (as ``stagelink demo``), then the sandboxes are stopped and a
real ``stagelink serve --no-scheduler`` child process (one uvicorn worker) serves that
database, so the load generator here does not share its GIL.

Requests, spread over every synced HubSpot deal that has an owner with an e-mail:

* **card**: ``GET /api/v1/hubspot/card/{connection}?dealId=...&userId=...&userEmail=...
  &portalId=...&appId=...``, as ``hubspot.fetch`` sends it, each signed afresh with a v3
  signature (``X-HubSpot-Signature-v3`` + timestamp) over the exact URL requested;
* **page**: ``GET /m/{connection}/{deal}?t=<page token>`` for the deal's owner.

For each, after a short warm-up, runs of ``--seconds`` by ``--clients`` concurrent clients
(asyncio tasks, one keep-alive connection each):

* **saturated**: every client sends its next request as soon as the previous one answers:
  the server's capacity. With N clients waiting on one server, latency here is queueing
  (Little's law: latency ≈ clients / throughput), not what a rep waits.
* **paced**: together the clients send a fixed number of requests/s, each client on its own
  fixed schedule: by default 50/s (each of the 50 clients once a second, far more than reps
  opening deals) and half the saturated throughput. Latency counts from the *scheduled*
  send time, so a slow answer that delays the next request is charged to it (no
  coordinated omission). These are the rows the p99 target is for.

Load requests carry ``Accept-Encoding: gzip`` as phones and HubSpot's proxy do, so the
server's compression is part of the measured work.

Then the page's size on a first visit: the HTML and every asset its markup loads
(stylesheet, script, icon, manifest) plus the service worker its script registers, each
fetched uncompressed and with ``Accept-Encoding: gzip`` (bytes on the wire, body only); the
issue's target is under 50 KB transferred without content thumbnails.

The machine has two cores shared with whatever else runs; the load average printed with
the table says how quiet it was.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import h11
import httpx
import results
import yaml
from serving import ServeChild

from sandbox.hubspot import HubSpotSandbox
from sandbox.hubspot.webhooks import signed_headers
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml
from stagelink.demo.stored import owned_deals
from stagelink.settings import load_config
from stagelink.surfaces.links import LinkSigner, page_path
from stagelink.sync import Storage, SyncOptions, open_storage, run_job

HS = "sandbox-hubspot"
TARGET_P99_MS = 50.0
PAGE_BUDGET_BYTES = 50 * 1024
WARMUP_SECONDS = 2.0
APP_ID = 1000001  # what hubspot.fetch appends as appId; the endpoint does not check it


@dataclass(frozen=True)
class Deal:
    """One synced deal and the rep who owns it."""

    crm_id: str
    owner_id: str
    rep: str
    page_path: str


@dataclass(frozen=True)
class Setup:
    config_path: Path
    client_secret: str
    portal_id: int
    deals: list[Deal]


@dataclass
class Run:
    """What one load run measured."""

    endpoint: str
    mode: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


# -- set-up ---------------------------------------------------------------------------------


def prepare(directory: Path) -> Setup:
    """Sync the HubSpot sandbox into SQLite, write the config, and sign a page link per deal."""
    # Both sandboxes, as `stagelink demo` runs them: the example mapping uses fields of each.
    hubspot = HubSpotSandbox(seed=1, size="small", data_dir=directory).start()
    salesforce = SalesforceSandbox(seed=1, size="small", data_dir=directory)
    salesforce.start()
    try:
        database = f"sqlite:///{directory / 'stagelink.db'}"
        running = RunningSandboxes(salesforce=salesforce, hubspot=hubspot)
        data = yaml.safe_load(sandbox_config_yaml(running, database_url=database))
        for connection in data["connections"]:
            connection["sync"] = {"interval": "1h"}
            connection["writeback"] = {"interval": "1h"}
        data["logging"] = {"level": "warning"}
        config_path = directory / "stagelink.yaml"
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        config = load_config(config_path)
        with open_storage(config) as storage:
            for connection in data["connections"]:
                outcome = run_job(config, storage, connection["name"], SyncOptions())
                if not outcome.ok:
                    raise RuntimeError(f"sync of {connection['name']} failed: {outcome.error}")
            owned = deals_and_owners(storage)
        secret = hubspot.credentials.client_secret
        portal = int(hubspot.credentials.portal_id)
    finally:
        salesforce.stop()
        hubspot.stop()
    # The server derives the same key from the same config (key file beside the database).
    signer = LinkSigner.from_config(config)
    deals = [
        Deal(
            crm_id=deal,
            owner_id=owner,
            rep=rep,
            page_path=page_path(
                HS, deal, signer.page_token(rep=rep, connection=HS, opportunity_id=deal)
            ),
        )
        for deal, owner, rep in owned
    ]
    if not deals:
        raise RuntimeError("the sandbox sync produced no deals with an owner e-mail")
    return Setup(config_path, secret, portal, deals)


def deals_and_owners(storage: Storage) -> list[tuple[str, str, str]]:
    """(deal id, owner id, owner e-mail) of live deals owned by an active user with an e-mail."""
    with storage.sessions() as session:
        owned = owned_deals(session, HS, active_owners=True)
    return [(deal.crm_id, deal.owner_crm_id, deal.owner_email) for deal in owned]


# -- requests -------------------------------------------------------------------------------

Request = Callable[[int], tuple[str, dict[str, str]]]  # i → (url, headers)


def card_request(base_url: str, setup: Setup) -> Request:
    """The i-th card fetch, signed as HubSpot signs ``hubspot.fetch`` calls (v3)."""

    def build(i: int) -> tuple[str, dict[str, str]]:
        deal = setup.deals[i % len(setup.deals)]
        query = urlencode(
            {
                "dealId": deal.crm_id,
                "userId": deal.owner_id,
                "userEmail": deal.rep,
                "portalId": setup.portal_id,
                "appId": APP_ID,
            }
        )
        url = f"{base_url}/api/v1/hubspot/card/{HS}?{query}"
        headers = signed_headers(
            client_secret=setup.client_secret, method="GET", url=url, body="", version="v3"
        )
        return url, headers

    return build


def page_request(base_url: str, setup: Setup) -> Request:
    """The i-th mobile page open (the deal owner's signed link)."""

    def build(i: int) -> tuple[str, dict[str, str]]:
        return base_url + setup.deals[i % len(setup.deals)].page_path, {}

    return build


def check(name: str, request: Request, expect: str) -> None:
    """One request answers 200 with ``expect`` content, or the benchmark stops saying why."""
    url, headers = request(0)
    response = httpx.get(url, headers=headers, timeout=30)
    kind = response.headers.get("content-type", "")
    if response.status_code != 200 or expect not in kind:
        raise SystemExit(
            f"{name}: GET {urlsplit(url).path} answered {response.status_code} "
            f"({kind or 'no content type'}): {response.text[:300]}"
        )


# -- load -----------------------------------------------------------------------------------


async def fetch(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection],
    host: str,
    target: str,
    headers: dict[str, str],
) -> tuple[int, int]:
    """One GET on a kept-alive connection; (status, body bytes)."""
    reader, writer, state = connection
    request = h11.Request(method="GET", target=target, headers=[("Host", host), *headers.items()])
    writer.write(state.send(request) + state.send(h11.EndOfMessage()))
    status, size = 0, 0  # size: bytes on the wire (compressed when the server compressed)
    while True:
        event = state.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            state.receive_data(data)
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            size += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            state.start_next_cycle()
            return status, size


async def load(
    endpoint: str,
    request: Request,
    *,
    base_url: str,
    clients: int,
    seconds: float,
    rate: float | None,
) -> Run:
    """``clients`` concurrent clients for ``seconds``: back to back, or ``rate`` req/s in all.

    Each client is one kept-alive HTTP/1.1 connection driven with h11 on asyncio streams:
    httpx's client costs ~0.7 ms of CPU per request here (and its pool slows down with 50
    connections), which on two cores would measure the load generator, not the server.
    """
    mode = "saturated" if rate is None else f"paced {rate:.0f}/s"
    run = Run(endpoint, mode, seconds)
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = iter(range(10**9))
    started = time.perf_counter()
    end = started + seconds

    async def client(number: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        connection = (reader, writer, h11.Connection(h11.CLIENT))
        interval = clients / rate if rate else 0.0
        # Spread the paced clients' schedules over one interval, so sends do not bunch.
        due = started + interval * random.Random(number).random()
        try:
            while True:
                if rate:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    scheduled = due
                    due += interval
                else:
                    scheduled = time.perf_counter()
                if scheduled >= end:
                    return
                url, headers = request(next(counter))
                headers = {"Accept-Encoding": "gzip", **headers}
                target = urlsplit(url)
                path = target.path + (f"?{target.query}" if target.query else "")
                status, _ = await fetch(connection, parts.netloc, path, headers)
                if status == 200:
                    run.latencies.append(time.perf_counter() - scheduled)
                else:
                    run.errors[str(status)] = run.errors.get(str(status), 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    run.seconds = max(seconds, time.perf_counter() - started)
    return run


def measure(
    endpoint: str,
    request: Request,
    *,
    base_url: str,
    clients: int,
    seconds: float,
    rates: list[str],
) -> list[Run]:
    """Warm up, then the saturated run, then one paced run per entry of ``rates`` (req/s,
    or ``half``: half the saturated throughput)."""

    def once(length: float, pace: float | None) -> Run:
        return asyncio.run(
            load(endpoint, request, base_url=base_url, clients=clients, seconds=length, rate=pace)
        )

    once(WARMUP_SECONDS, None)
    runs = [once(seconds, None)]
    for rate in rates:
        pace = max(1.0, round(runs[0].rate / 2)) if rate == "half" else float(rate)
        runs.append(once(seconds, pace))
    return runs


# -- page size ------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """URLs of what a page makes the browser fetch (no content thumbnails: there are none)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").lower()
            if any(word in rel for word in ("stylesheet", "icon", "manifest", "preload")):
                self.urls.append(str(values["href"]))
        elif tag in ("script", "img") and values.get("src"):
            self.urls.append(str(values["src"]))


@dataclass(frozen=True)
class Size:
    """One resource the page loads: body bytes uncompressed and as sent to a phone."""

    name: str
    identity: int
    transferred: int
    encoding: str


def page_sizes(base_url: str, setup: Setup) -> list[Size]:
    """The page HTML, each asset its markup loads, and the service worker its script
    registers: each fetched uncompressed and with ``Accept-Encoding: gzip`` (as a phone)."""
    url = base_url + setup.deals[0].page_path
    sizes: list[Size] = []
    with httpx.Client(timeout=30) as http:

        def download(name: str, target: str) -> str:
            plain = http.get(target, headers={"Accept-Encoding": "identity"})
            packed = http.get(target, headers={"Accept-Encoding": "gzip"})
            if plain.status_code != 200 or packed.status_code != 200:
                raise SystemExit(f"page size: GET {target} answered {plain.status_code}")
            sizes.append(
                Size(
                    name,
                    len(plain.content),
                    packed.num_bytes_downloaded,
                    packed.headers.get("content-encoding", "identity"),
                )
            )
            return plain.text

        html = download("page HTML", url)
        parser = _Assets()
        parser.feed(html)
        texts = [html]
        for asset in dict.fromkeys(parser.urls):
            if not asset.startswith("data:"):
                texts.append(download(urlsplit(asset).path, urljoin(url, asset)))
        # The service worker is registered from script; the browser fetches it once too.
        if any("sw.js" in text for text in texts):
            download("/m/sw.js (service worker)", urljoin(url, "/m/sw.js"))
    return sizes


# -- output ---------------------------------------------------------------------------------


def percentile_ms(ordered: list[float], pct: int) -> float:
    """The ``pct``-th percentile in ms (inclusive method)."""
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0] * 1000
    return statistics.quantiles(ordered, n=100, method="inclusive")[pct - 1] * 1000


def print_tables(runs: list[Run], sizes: list[Size], clients: int, load: str) -> None:
    print(
        f"\nRep surfaces under {clients} concurrent clients "
        f"(stagelink serve, one worker, SQLite; load average {load})\n"
    )
    header = ("endpoint", "load", "requests", "req/s", "p50", "p99", "max", "errors", "p99 < 50 ms")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for run in runs:
        ordered = sorted(run.latencies)
        p99 = percentile_ms(ordered, 99)
        errors = ", ".join(f"HTTP {k}: {v}" for k, v in sorted(run.errors.items())) or "0"
        cells = (
            run.endpoint,
            run.mode,
            str(len(ordered)),
            f"{run.rate:.0f}",
            f"{percentile_ms(ordered, 50):.1f} ms",
            f"{p99:.1f} ms",
            f"{ordered[-1] * 1000:.1f} ms" if ordered else "-",
            errors,
            "yes" if p99 < TARGET_P99_MS and not run.errors else "no",
        )
        print("| " + " | ".join(cells) + " |")
    if not sizes:
        return
    print("\nMobile page: bytes a phone downloads on a first visit (bodies; no thumbnails)\n")
    print("| resource | uncompressed | transferred (Accept-Encoding: gzip) |")
    print("|---|---|---|")
    for size in sizes:
        print(f"| {size.name} | {size.identity:,} B | {size.transferred:,} B ({size.encoding}) |")
    identity = sum(size.identity for size in sizes)
    transferred = sum(size.transferred for size in sizes)
    print(f"| **total** | **{identity:,} B** | **{transferred:,} B** |")
    verdict = "yes" if transferred < PAGE_BUDGET_BYTES else "no"
    print(f"\nUnder 50 KB transferred: {verdict} ({transferred / 1024:.1f} KiB).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument(
        "--rates",
        default="50,half",
        help="paced runs, req/s in all, comma-separated; 'half' = half the saturated rate",
    )
    parser.add_argument(
        "--only", choices=("card", "page"), default=None, help="benchmark one surface"
    )
    args = parser.parse_args()
    runs: list[Run] = []
    sizes: list[Size] = []
    with tempfile.TemporaryDirectory(prefix="bench-surfaces-") as scratch:
        directory = Path(scratch)
        setup = prepare(directory)
        server = ServeChild(setup.config_path, directory, "--no-scheduler")
        try:
            requests = {
                "card": (card_request(server.url, setup), "application/json"),
                "page": (page_request(server.url, setup), "text/html"),
            }
            for name, (request, expect) in requests.items():
                if args.only in (None, name):
                    check(name, request, expect)
                    runs += measure(
                        name,
                        request,
                        base_url=server.url,
                        clients=args.clients,
                        seconds=args.seconds,
                        rates=[r.strip() for r in args.rates.split(",") if r.strip()],
                    )
            if args.only in (None, "page"):
                sizes = page_sizes(server.url, setup)
        finally:
            server.stop()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print_tables(runs, sizes, args.clients, load)
    record_results(runs, sizes, args)


def record_results(runs: list[Run], sizes: list[Size], args: argparse.Namespace) -> None:
    """The same figures as rows for bench/RESULTS.md (see bench/results.py).

    The p99 target is judged on the paced runs at 50 req/s (50 clients, one request a
    second each: a busy sales floor); saturated latency is queueing behind 49 others and
    the half-capacity runs show the headroom, so both are reported without a verdict."""
    for run in runs:
        ordered = sorted(run.latencies)
        p99 = percentile_ms(ordered, 99)
        judged = run.mode == "paced 50/s"
        results.record(
            f"{run.endpoint}, {run.mode}, {args.clients} clients: p99",
            round(p99, 1),
            "ms",
            note=f"p50 {percentile_ms(ordered, 50):.1f} ms, {run.rate:.0f} req/s, "
            f"{sum(run.errors.values())} errors",
            target=f"< {TARGET_P99_MS:g} ms" if judged else None,
            met=(p99 < TARGET_P99_MS and not run.errors) if judged else None,
            area="surfaces",
        )
    if sizes:
        transferred = sum(size.transferred for size in sizes)
        results.record(
            "mobile page, first visit transferred (HTML + CSS + JS + service worker)",
            round(transferred / 1024, 1),
            "KiB",
            note=f"{sum(size.identity for size in sizes) / 1024:.1f} KiB uncompressed",
            target="< 50 KB",
            met=transferred < PAGE_BUDGET_BYTES,
            area="surfaces",
        )
    results.save("bench_surfaces", params=vars(args))


if __name__ == "__main__":
    main()
