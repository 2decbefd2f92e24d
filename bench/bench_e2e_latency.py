"""Benchmark the whole loop's latency: usage accepted by the API → activity in the sandbox CRM.

Run: ``.venv/bin/python bench/bench_e2e_latency.py [--seconds 20] [--rates 0.5,10,50]``.
Prints a Markdown table. Target: p95 under 5 s under a steady stream.

Set-up, as a user runs it: both sandbox CRMs (in this process), a SQLite database synced
from them, a content catalog, an integration token, and a real ``stagelink serve`` child
process (uvicorn + scheduler) whose interval jobs are an hour apart, so every write comes
from the debounced writeback trigger (``scheduler.writeback_debounce`` quiet, at most
``scheduler.writeback_max_wait`` after the first event of a burst).

For each rate, events are POSTed one per request (a rep's tap), alternating between the
two CRMs, for ``--seconds``. An event's clock starts when the API answers ``accepted`` and
stops when a poller (every 50 ms, straight from the sandbox's store) first sees the
activity carrying its marker. Also reported: how many writeback passes ran and events per
pass (batching under load), and the CRM requests they spent. The rows are also saved to
``var/bench-results/bench_e2e_latency.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import results
import yaml
from serving import ServeChild
from sqlalchemy import select

from connectors.core.activities import marker_token
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml
from stagelink.demo.stored import owned_deals
from stagelink.settings import load_config
from stagelink.storage import JobRun, TokenKind
from stagelink.sync import Storage, SyncOptions, open_storage, run_job
from stagelink.usage.tokens import create_token

SF, HS = "sandbox-salesforce", "sandbox-hubspot"
CONTENT = ("roi-calculator", "pricing-2026")
POLL_SECONDS = 0.05
AREA = "usage → CRM activity"
TARGET_P95_SECONDS = 5.0


@dataclass
class Stream:
    """What one rate produced."""

    rate: float
    accepted: dict[str, tuple[str, float]] = field(default_factory=dict)  # marker → (crm, t)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self) -> bool:
        """Every accepted event has been seen in its CRM."""
        with self.lock:
            return len(self.seen) >= len(self.accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="stream length per rate")
    parser.add_argument("--rates", default="0.5,10,50", help="events per second, comma-separated")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        directory = Path(scratch)
        # Generous HubSpot pacing limits: this measures stagelink, not the 10-second window.
        hs = HubSpotSandbox(
            seed=1,
            size="small",
            data_dir=directory,
            options=HubSpotOptions(ten_second_limit=100_000),
        ).start()
        sf = SalesforceSandbox(seed=1, size="small", data_dir=directory)
        sf.start()
        try:
            config_path, token, deals = prepare(directory, sf, hs)
            server = Server(config_path, directory)
            try:
                for rate in rates:
                    stream = Stream(rate)
                    poller = Poller(sf, hs, stream)
                    poller.start()
                    passes_before = server.passes()
                    send(server.url, token, deals, stream, args.seconds)
                    wait_until(stream.complete, timeout=60)
                    poller.stop()
                    time.sleep(1.0)  # let the last pass record its job run
                    passes = server.passes()[len(passes_before) :]
                    rows += summarize(stream, passes)
            finally:
                server.stop()
        finally:
            sf.stop()
            hs.stop()
    print_table(rows, args.seconds)
    results.save("bench_e2e_latency", params=vars(args))


def prepare(
    directory: Path, sf: SalesforceSandbox, hs: HubSpotSandbox
) -> tuple[Path, str, dict[str, list[tuple[str, str]]]]:
    """Config, synced database, token, and (deal, rep e-mail) pairs per connection."""
    catalog = directory / "catalog.yaml"
    items = [
        {
            "id": content_id,
            "title": content_id.replace("-", " ").title(),
            "url": f"https://content.example.com/{content_id}",
            "type": "deck",
            "stages": ["discover"],
        }
        for content_id in CONTENT
    ]
    catalog.write_text(yaml.safe_dump({"items": items}), encoding="utf-8")
    database = f"sqlite:///{directory / 'stagelink.db'}"
    data = yaml.safe_load(
        sandbox_config_yaml(RunningSandboxes(salesforce=sf, hubspot=hs), database_url=database)
    )
    for connection in data["connections"]:
        connection["sync"] = {"interval": "1h"}
        connection["writeback"] = {"interval": "1h"}
    data.update(
        content={"catalogs": [str(catalog)]},
        rules=[],
        logging={"level": "warning"},
    )
    config_path = directory / "stagelink.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = load_config(config_path)
    with open_storage(config) as storage:
        for name in (SF, HS):
            outcome = run_job(config, storage, name, SyncOptions())
            assert outcome.ok, outcome.error
        with storage.sessions.begin() as session:
            _, token = create_token(session, "bench", kind=TokenKind.INTEGRATION)
        deals = {name: deals_and_reps(storage, name) for name in (SF, HS)}
    return config_path, token, deals


def deals_and_reps(storage: Storage, connection: str) -> list[tuple[str, str]]:
    """(deal id, its owner's e-mail) of deals owned by an active user with an e-mail."""
    with storage.sessions() as session:
        owned = owned_deals(session, connection, active_owners=True, limit=200)
    return [(deal.crm_id, deal.owner_email) for deal in owned]


class Server(ServeChild):
    """``stagelink serve`` (web + scheduler) in a child process."""

    def __init__(self, config_path: Path, directory: Path) -> None:
        super().__init__(config_path, directory)
        self.config = load_config(config_path)

    def passes(self) -> list[dict[str, Any]]:
        """Counts of every writeback pass the usage trigger started, oldest first."""
        with open_storage(self.config) as storage, storage.sessions() as session:
            runs = session.scalars(
                select(JobRun).where(JobRun.kind == "writeback").order_by(JobRun.id)
            ).all()
            return [
                {"trigger": run.params.get("trigger"), **run.counts}
                for run in runs
                if run.finished_at is not None
            ]


class Poller(threading.Thread):
    """Notes when each marker's activity first exists in its sandbox."""

    def __init__(self, sf: SalesforceSandbox, hs: HubSpotSandbox, stream: Stream) -> None:
        super().__init__(daemon=True)
        self.sf, self.hs, self.stream = sf, hs, stream
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with self.stream.lock:
                waiting = {m: crm for m, (crm, _) in self.stream.accepted.items()}
                waiting = {m: c for m, c in waiting.items() if m not in self.stream.seen}
            if waiting:
                found = self._written(waiting)
                now = time.monotonic()
                with self.stream.lock:
                    for marker in found:
                        self.stream.seen.setdefault(marker, now)
            self._stop_event.wait(POLL_SECONDS)

    def _written(self, waiting: dict[str, str]) -> set[str]:
        found: set[str] = set()
        if SF in waiting.values():
            rows = self.sf.records("Task", "\"Description\" LIKE '%stagelink event: sl-%'")
            texts = {
                str(row["Description"]).rsplit("stagelink event: ", 1)[1].strip() for row in rows
            }
            found |= {m for m, crm in waiting.items() if crm == SF and m in texts}
        if HS in waiting.values():
            bodies = " ".join(
                note["properties"].get("hs_note_body") or "" for note in self.hs.objects("notes")
            )
            found |= {m for m, crm in waiting.items() if crm == HS and marker_token(m) in bodies}
        return found

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def send(
    url: str, token: str, deals: dict[str, list[tuple[str, str]]], stream: Stream, seconds: float
) -> None:
    """POST one event per request at ``stream.rate`` per second, alternating CRMs."""
    total = max(2, round(stream.rate * seconds))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        started = time.monotonic()
        for i in range(total):
            due = started + i / stream.rate
            time.sleep(max(0.0, due - time.monotonic()))
            connection = (SF, HS)[i % 2]
            deal, rep = deals[connection][(i // 2) % len(deals[connection])]
            event_id = uuid.uuid4()
            event = {
                "client_event_id": str(event_id),
                "rep": rep,
                "connection": connection,
                "opportunity_id": deal,
                "content_id": CONTENT[i % len(CONTENT)],
                "action": "presented",
                "occurred_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
                "channel": "mobile_page",
            }
            response = client.post("/api/v1/usage", json={"events": [event]})
            accepted_at = time.monotonic()
            result = response.json()["results"][0]
            if result["status"] != "accepted":
                raise RuntimeError(f"event not accepted: {result}")
            with stream.lock:
                stream.accepted[f"sl-{event_id}"] = (connection, accepted_at)


def summarize(stream: Stream, passes: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    usage_passes = [p for p in passes if p.get("trigger") == "usage" and p.get("written")]
    for connection, label in ((SF, "Salesforce"), (HS, "HubSpot")):
        latencies = sorted(
            stream.seen[m] - at
            for m, (crm, at) in stream.accepted.items()
            if crm == connection and m in stream.seen
        )
        if not latencies:
            rows.append((f"{stream.rate:g}/s", label, "0", "-", "-", "-", "no"))
            results.record(
                f"{label}, {stream.rate:g} events/s: p95",
                None,
                note="no activity seen",
                target=f"< {TARGET_P95_SECONDS:g} s",
                met=False,
                area=AREA,
            )
            continue
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        results.record(
            f"{label}, {stream.rate:g} events/s: p95 accepted → in the CRM",
            p95,
            "s",
            note=f"p50 {p50:.2f} s, max {latencies[-1]:.2f} s, {len(latencies)} events",
            target=f"< {TARGET_P95_SECONDS:g} s",
            met=p95 < TARGET_P95_SECONDS,
            area=AREA,
        )
        rows.append(
            (
                f"{stream.rate:g}/s",
                label,
                str(len(latencies)),
                f"{p50:.2f} s",
                f"{p95:.2f} s",
                f"{latencies[-1]:.2f} s",
                "yes" if p95 < TARGET_P95_SECONDS else "no",
            )
        )
    written = sum(int(p.get("written", 0)) for p in usage_passes)
    requests = sum(int(p.get("requests", 0)) for p in usage_passes)
    per_pass = written / len(usage_passes) if usage_passes else 0
    results.record(
        f"both CRMs, {stream.rate:g} events/s: events per writeback pass",
        per_pass,
        note=f"{len(usage_passes)} passes, {requests} CRM requests",
        area=AREA,
    )
    rows.append(
        (
            f"{stream.rate:g}/s",
            "both: writeback passes",
            f"{len(usage_passes)} passes",
            f"{per_pass:.1f} events/pass",
            f"{requests} CRM requests",
            "",
            "",
        )
    )
    return rows


def percentile(ordered: list[float], pct: int) -> float:
    """The ``pct``-th percentile of sorted values (inclusive method: fine for few samples)."""
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[pct - 1]


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout} s")
        time.sleep(0.05)


def print_table(rows: list[tuple[str, ...]], seconds: float) -> None:
    print(f"\nUsage accepted → activity in the sandbox CRM ({seconds:g} s per rate)\n")
    header = ("rate", "CRM", "events", "p50", "p95", "max", "p95 < 5 s")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
