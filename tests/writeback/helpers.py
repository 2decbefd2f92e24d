"""What the tests look at: activities in each sandbox CRM, found by their markers."""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select

from connectors.core.activities import marker_token
from sandbox.common import FaultPlan
from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.storage import (
    Connection,
    CrmOpportunity,
    CrmOwner,
    OutboxState,
    UsageAction,
    WritebackOutbox,
)
from stagelink.sync import Storage
from stagelink.writeback.testing import EventSpec


@dataclass(frozen=True)
class Written:
    """One activity found in a sandbox CRM."""

    crm_id: str
    object_type: str
    opportunity: str | None
    owner: str | None
    text: str
    company: str | None = None


class CrmView:
    """Read-only eyes on a sandbox CRM (plus the few admin actions tests need)."""

    kind = ""
    #: How long the engine waits before trusting a "not found" (the sandbox's search is
    #: immediate).
    lookup_settle = timedelta(0)

    @property
    def faults(self) -> FaultPlan:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The CRM's base URL."""
        raise NotImplementedError

    def via(self, url: str) -> dict[str, Any]:
        """Connection settings that reach the CRM through ``url`` (a proxy)."""
        raise NotImplementedError

    def activities(self, markers: list[str]) -> dict[str, list[Written]]:
        """Every activity carrying one of ``markers``, by marker (duplicates show as lists)."""
        raise NotImplementedError

    def delete_opportunity(self, crm_id: str) -> None:
        raise NotImplementedError


class SalesforceView(CrmView):
    """Tasks and Events of the Salesforce sandbox."""

    kind = "salesforce"

    def __init__(self, org: SalesforceSandbox) -> None:
        self.org = org

    @property
    def faults(self) -> FaultPlan:
        return self.org.faults

    @property
    def url(self) -> str:
        return self.org.url

    def via(self, url: str) -> dict[str, Any]:
        return {"login_url": url, "instance_url": url}

    def activities(self, markers: list[str]) -> dict[str, list[Written]]:
        wanted = set(markers)
        found: dict[str, list[Written]] = defaultdict(list)
        for sobject in ("Task", "Event"):
            for row in self.org.records(sobject, "\"Description\" LIKE '%stagelink event: sl-%'"):
                marker = str(row["Description"]).rsplit("stagelink event: ", 1)[1].strip()
                if marker in wanted:
                    found[marker].append(
                        Written(
                            str(row["Id"]),
                            sobject,
                            row.get("WhatId"),
                            row.get("OwnerId"),
                            f"{row['Subject']}\n{row['Description']}",
                        )
                    )
        return dict(found)

    def delete_opportunity(self, crm_id: str) -> None:
        session = requests.Session()
        session.verify, session.trust_env = str(self.org.ca_bundle), False
        answer = session.delete(
            f"{self.org.url}/services/data/v59.0/sobjects/Opportunity/{crm_id}",
            headers={"Authorization": f"Bearer {self.org.issue_token()}"},
            timeout=10,
        )
        assert answer.status_code == 204, answer.text


class HubSpotView(CrmView):
    """Notes and tasks of the HubSpot sandbox."""

    kind = "hubspot"

    def __init__(self, portal: HubSpotSandbox) -> None:
        self.portal = portal

    @property
    def faults(self) -> FaultPlan:
        return self.portal.account.faults

    @property
    def url(self) -> str:
        return self.portal.url

    def via(self, url: str) -> dict[str, Any]:
        return {"base_url": url}

    def activities(self, markers: list[str]) -> dict[str, list[Written]]:
        tokens = {marker_token(m): m for m in markers}
        found: dict[str, list[Written]] = defaultdict(list)
        for object_type, body in (("notes", "hs_note_body"), ("tasks", "hs_task_body")):
            for item in self.portal.objects(object_type):
                text = item["properties"].get(body) or ""
                for token, marker in tokens.items():
                    if token in text:
                        deals = self.portal.associations(object_type, item["id"], "deals")
                        companies = self.portal.associations(object_type, item["id"], "companies")
                        found[marker].append(
                            Written(
                                item["id"],
                                object_type,
                                next(iter(deals), None),
                                item["properties"].get("hubspot_owner_id"),
                                text,
                                next(iter(companies), None),
                            )
                        )
        return dict(found)

    def delete_opportunity(self, crm_id: str) -> None:
        request = urllib.request.Request(
            f"{self.portal.url}/crm/v3/objects/deals/{crm_id}",
            method="DELETE",
            headers={"Authorization": f"Bearer {self.portal.credentials.private_app_token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204


@dataclass(frozen=True)
class Deal:
    """A synced opportunity and its owner."""

    crm_id: str
    owner: str | None
    account: str | None


def deals_and_reps(
    storage: Storage, connection: str, count: int, *, seed: int = 7
) -> tuple[list[Deal], list[tuple[str, str]]]:
    """``count`` live synced deals (random, reproducible) and reps as ``(email, user id)``."""
    with storage.sessions() as session:
        connection_id = session.scalar(select(Connection.id).where(Connection.name == connection))
        # Deals owned by an active user: an inactive owner cannot be given activities.
        rows = session.execute(
            select(
                CrmOpportunity.crm_id,
                CrmOpportunity.owner_crm_id,
                CrmOpportunity.account_crm_id,
            )
            .join(
                CrmOwner,
                (CrmOwner.connection_id == CrmOpportunity.connection_id)
                & (CrmOwner.crm_id == CrmOpportunity.owner_crm_id),
            )
            .where(
                CrmOpportunity.connection_id == connection_id,
                CrmOpportunity.deleted_at.is_(None),
                CrmOwner.active.is_(True),
            )
            .order_by(CrmOpportunity.crm_id)
        ).all()
        owners = session.execute(
            select(CrmOwner.email, CrmOwner.crm_id)
            .where(
                CrmOwner.connection_id == connection_id,
                CrmOwner.active.is_(True),
                CrmOwner.email.is_not(None),
            )
            .order_by(CrmOwner.crm_id)
        ).all()
    picked = random.Random(seed).sample(list(rows), count)
    return [Deal(*row) for row in picked], [(str(e), str(i)) for e, i in owners]


def spread_events(
    deals: list[Deal], reps: list[str], count: int, *, start: datetime | None = None
) -> list[EventSpec]:
    """``count`` events over ``deals`` and ``reps`` in turn, one action after another."""
    actions = list(UsageAction)
    moment = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return [
        EventSpec(
            opportunity_crm_id=deals[i % len(deals)].crm_id,
            rep_email=reps[i % len(reps)],
            content_id=f"content-{i % 4}",
            action=actions[i % len(actions)],
            occurred_at=moment + timedelta(minutes=i),
            duration_seconds=90 + i if i % 2 else None,
            channel="mobile_page",
        )
        for i in range(count)
    ]


def outbox_states(storage: Storage) -> dict[str, OutboxState]:
    """Every outbox row's state by marker."""
    with storage.sessions() as session:
        rows = session.execute(select(WritebackOutbox.external_marker, WritebackOutbox.state))
        return {row[0]: row[1] for row in rows}


def outbox_rows(storage: Storage, markers: list[str]) -> dict[str, WritebackOutbox]:
    """The outbox rows of ``markers``."""
    with storage.sessions() as session:
        rows = session.scalars(
            select(WritebackOutbox).where(WritebackOutbox.external_marker.in_(markers))
        )
        return {row.external_marker: row for row in rows}


class SlowAnswers:
    """A TCP proxy that forwards requests at once and holds every answer for ``delay``.

    The CRM applies a write as soon as it arrives; the writer hears back only ``delay``
    later. A writer killed inside that window has had its batch applied but never recorded
    it — the case reconciliation exists for. TLS passes through untouched (the sandbox
    certificate names 127.0.0.1, whatever the port).
    """

    def __init__(self, target_url: str, delay: float) -> None:
        parts = urlsplit(target_url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.target = (parts.hostname, parts.port)
        self.scheme = parts.scheme
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """Where clients should connect instead of the CRM."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop accepting connections (open ones end with their peers)."""
        self._closed.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.delay), daemon=True
            ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        held: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def deliver() -> None:
            while True:
                due, chunk = held.get()
                if not chunk:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    sink.sendall(chunk)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        try:
            while chunk := source.recv(65536):
                held.put((time.monotonic() + delay, chunk))
        except OSError:
            pass
        held.put((0.0, b""))
        sender.join(timeout=delay + 30)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.close()
