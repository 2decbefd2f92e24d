"""Benchmark the usage API's intake on SQLite: events/s and per-request latency; prints a
Markdown table.

Run: ``.venv/bin/python bench/bench_usage_ingest.py [--events N] [--batch 50]``.

The app (``create_app`` under uvicorn, one worker, exactly what ``stagelink serve`` runs)
lives in a child process on a migrated SQLite file, so the load generator here does not
share its GIL. Every event names a synced opportunity, so each is *accepted*: the event
row, its outbox row and the token check are real work, in one transaction per batch.
Measured per number of concurrent clients: new events (all accepted) and the same
batches sent again (all answered ``duplicate``, as a client's retry after a lost answer).
The rows are also saved to ``var/bench-results/bench_usage_ingest.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import results
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONNECTION = "bench-hubspot"
CONTENT = "discovery-questions"  # in the example catalog
DEALS = 1_000
AREA = "usage ingest (SQLite)"


def child_server(config_path: str, port: int) -> None:
    """Serve the app on ``port`` until killed."""
    import uvicorn

    from stagelink.logs import configure_logging
    from stagelink.settings import load_config
    from stagelink.sync import open_storage
    from stagelink.web import create_app

    config = load_config(Path(config_path))
    configure_logging(config.logging.level, config.logging.format)  # as `stagelink serve`
    with open_storage(config) as storage:
        uvicorn.run(create_app(config, storage), host="127.0.0.1", port=port, log_level="warning")


def prepare(directory: Path) -> tuple[Path, str]:
    """A config, a migrated database with synced deals, and an integration token."""
    from sqlalchemy import insert

    from stagelink.settings import load_config
    from stagelink.storage import CrmOpportunity, TokenKind, get_or_create_connection
    from stagelink.sync import open_storage
    from stagelink.usage.tokens import create_token

    config_path = directory / "stagelink.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{directory / 'stagelink.db'}",
                "logging": {"level": "warning"},
                "connections": [
                    {
                        "name": CONNECTION,
                        "kind": "hubspot",
                        "allow_plaintext_secrets": True,
                        "auth": {"method": "private_app", "token": "pat-bench"},
                    }
                ],
                "content": {"catalogs": [str(ROOT / "examples" / "content")]},
            }
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    with open_storage(config) as storage, storage.sessions.begin() as session:
        connection_id = get_or_create_connection(session, CONNECTION, "hubspot").id
        session.execute(
            insert(CrmOpportunity),
            [
                {"connection_id": connection_id, "crm_id": str(10_000 + i), "name": f"Deal {i}"}
                for i in range(DEALS)
            ],
        )
        _, token = create_token(session, "bench", kind=TokenKind.INTEGRATION)
    return config_path, token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def batches(count: int, size: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for b in range(count):
        events = [
            {
                "client_event_id": str(uuid.uuid4()),
                "rep": f"rep{(b * size + i) % 40}@example.com",
                "connection": CONNECTION,
                "opportunity_id": str(10_000 + (b * size + i) % DEALS),
                "content_id": CONTENT,
                "action": "presented",
                "occurred_at": (now - timedelta(seconds=b)).isoformat(),
                "duration_seconds": 30,
                "channel": "mobile_page",
            }
            for i in range(size)
        ]
        out.append({"events": events})
    return out


def post_all(
    url: str, token: str, work: list[dict[str, Any]], clients: int
) -> tuple[float, list[float], dict[str, int]]:
    """POST ``work`` with ``clients`` threads; wall seconds, per-request seconds, statuses."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    queue = list(reversed(work))

    def client() -> None:
        with httpx.Client(
            base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                response = http.post("/api/v1/usage", json=body)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                counts = response.json()["counts"]
                with lock:
                    latencies.append(elapsed)
                    for key, value in counts.items():
                        statuses[key] = statuses.get(key, 0) + value

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events per scenario")
    parser.add_argument("--batch", type=int, default=50, help="events per request")
    parser.add_argument("--clients", default="1,4", help="concurrent clients to measure")
    parser.add_argument("--child-server", nargs=2, metavar=("CONFIG", "PORT"))
    args = parser.parse_args()
    if args.child_server:
        child_server(args.child_server[0], int(args.child_server[1]))
        return

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="stagelink-bench-usage-") as tmp:
        config_path, token = prepare(Path(tmp))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--child-server", str(config_path), str(port)],
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            # Warm-up: connection pools, the catalog, first-use code paths.
            post_all(url, token, batches(5, args.batch), 1)
            for clients in (int(c) for c in args.clients.split(",")):
                work = batches(max(1, args.events // args.batch), args.batch)
                events = sum(len(b["events"]) for b in work)
                for scenario in ("new (accepted)", "retried (duplicate)"):
                    seconds, latencies, statuses = post_all(url, token, work, clients)
                    expected = "accepted" if scenario.startswith("new") else "duplicate"
                    assert statuses.get(expected) == events, statuses
                    rows.append(
                        (
                            scenario,
                            str(clients),
                            f"{events:,}",
                            f"{events / seconds:,.0f}",
                            f"{statistics.median(latencies) * 1000:.1f}",
                            f"{percentile(latencies, 0.99) * 1000:.1f}",
                        )
                    )
                    label = f"{scenario}, {clients} client{'s' if clients > 1 else ''}"
                    results.record(
                        f"{label}: events/s",
                        events / seconds,
                        "events/s",
                        note=f"{events:,} events in batches of {args.batch}",
                        area=AREA,
                    )
                    results.record(
                        f"{label}: p99 per request",
                        percentile(latencies, 0.99) * 1000,
                        "ms",
                        note=f"p50 {statistics.median(latencies) * 1000:.1f} ms",
                        area=AREA,
                    )
                    print(
                        f"  {scenario}, {clients} clients: {rows[-1][3]} events/s", file=sys.stderr
                    )
        finally:
            server.terminate()
            server.wait(30)

    print(
        f"\nusage intake benchmark, SQLite, batches of {args.batch}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| scenario | clients | events | events/s | p50 ms/request | p99 ms/request |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    results.save(
        "bench_usage_ingest", params={k: v for k, v in vars(args).items() if k != "child_server"}
    )


if __name__ == "__main__":
    main()
