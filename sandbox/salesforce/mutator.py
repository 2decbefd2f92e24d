"""Changes a running org the way its users would, so syncs have something to pick up.

:meth:`Mutator.mutate` edits, deletes and creates Accounts and Opportunities through the
record engine (so every rule, history row and SystemModstamp bump is the real thing). With
``shared_timestamp`` all its writes carry one SystemModstamp, as a bulk update in a real org
does — the case that breaks cursors built on ``>`` alone.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

from sandbox.salesforce import timefmt
from sandbox.salesforce.options import MutationSummary
from sandbox.salesforce.org import Org
from sandbox.salesforce.schema import INDUSTRIES, PRODUCT_LINES, SCHEMA, get_sobject
from sandbox.salesforce.store import quote

_OPPORTUNITY = SCHEMA["Opportunity"]
_ACCOUNT = SCHEMA["Account"]
# Accounts whose deletion cascades to nothing: no live opportunity points at them.
_NO_LIVE_DEALS = (
    '"Id" NOT IN (SELECT "AccountId" FROM "Opportunity" '
    'WHERE "IsDeleted" = 0 AND "AccountId" IS NOT NULL)'
)


class Mutator:
    """Seeded edits/deletes/creates plus row inspection for tests and the admin API."""

    def __init__(self, org: Org, seed: int) -> None:
        self.org = org
        self._rng = random.Random(f"stagelink-sf-mutate-{seed}")
        self._lock = threading.Lock()
        self._created = 0

    # -- inspection -----------------------------------------------------------------------------

    def records(
        self, sobject: str, where_sql: str | None = None, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Stored rows of ``sobject`` as dicts, ordered by Id.

        Values follow the storage convention (booleans 0/1, dateTimes ``…000Z``).
        ``where_sql`` is a literal SQL condition on the table's columns, for example
        ``"IsWon" = 1`` (column names double-quoted, text single-quoted); deleted rows are
        left out unless ``include_deleted``.
        """
        obj = get_sobject(sobject)
        if obj is None:
            raise KeyError(f"unknown sObject {sobject!r}")
        conditions = [] if include_deleted else ['"IsDeleted" = 0']
        if where_sql:
            conditions.append(f"({where_sql})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.org.store.locked() as conn:
            cursor = conn.execute(f'SELECT * FROM {quote(obj.name)}{where} ORDER BY "Id"')
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def count(self, sobject: str, include_deleted: bool = False) -> int:
        """Number of records of ``sobject`` (live only unless ``include_deleted``)."""
        obj = get_sobject(sobject)
        if obj is None:
            raise KeyError(f"unknown sObject {sobject!r}")
        where = "" if include_deleted else ' WHERE "IsDeleted" = 0'
        return int(self.org.store.scalar(f"SELECT count(*) FROM {quote(obj.name)}{where}") or 0)

    # -- mutation ------------------------------------------------------------------------------

    def mutate(
        self, *, edits: int, deletes: int, creates: int, shared_timestamp: bool = True
    ) -> MutationSummary:
        """Apply ``edits`` edits, ``deletes`` deletes and ``creates`` creates.

        Edits go two thirds to Opportunities (half of those move the stage, which writes
        history) and one third to Accounts; deletes go to Opportunities, and to Accounts that
        have no live Opportunity left (so no cascade surprises); creates make Accounts and
        Opportunities on existing Accounts.
        """
        if min(edits, deletes, creates) < 0:
            raise ValueError("edits, deletes and creates must not be negative")
        with self._lock, self.org.store.transaction():
            summary = MutationSummary()
            base = timefmt.utc_now()
            used: set[dt.datetime] = set()

            def stamp() -> dt.datetime:
                moment = base if shared_timestamp else base + dt.timedelta(milliseconds=len(used))
                used.add(moment)
                return moment

            users = [row["Id"] for row in self.records("User", '"IsActive" = 1')]
            stages = [s.api_name for s in self.org.engine.stages().values() if s.is_active]
            for record in self._pick("Opportunity", edits - edits // 3, summary):
                change: dict[str, Any]
                if self._rng.random() < 0.5:
                    current = self.org.engine.existing(_OPPORTUNITY, record)["StageName"]
                    change = {"StageName": self._rng.choice([s for s in stages if s != current])}
                    summary.stage_changes.append(record)
                else:
                    change = {
                        "Amount": float(self._rng.randrange(5, 900) * 1000),
                        "NextStep": self._rng.choice(("Call back", "Send deck", "Pricing review")),
                    }
                self._apply(summary.edited, "Opportunity", record, change, users, stamp())
            for record in self._pick("Account", edits // 3, summary):
                change = {
                    "Industry": self._rng.choice(INDUSTRIES),
                    "NumberOfEmployees": self._rng.randrange(10, 90_000),
                }
                self._apply(summary.edited, "Account", record, change, users, stamp())
            account_deletes = deletes // 3
            for record in self._pick("Opportunity", deletes - account_deletes, summary):
                self._delete(summary, "Opportunity", record, users, stamp())
            for record in self._pick("Account", account_deletes, summary, where=_NO_LIVE_DEALS):
                self._delete(summary, "Account", record, users, stamp())
            for index in range(creates):
                self._create(summary, index, users, stamp())
            summary.timestamps = sorted(used)
            return summary

    def _pick(
        self, sobject: str, count: int, exclude: MutationSummary, *, where: str | None = None
    ) -> list[str]:
        """Up to ``count`` random live ids of ``sobject`` not yet touched by this mutation."""
        if count <= 0:
            return []
        condition = '"IsDeleted" = 0' + (f" AND ({where})" if where else "")
        table = quote(sobject)
        total = int(self.org.store.scalar(f"SELECT count(*) FROM {table} WHERE {condition}") or 0)
        taken = exclude.all_ids
        picked: list[str] = []
        for offset in self._rng.sample(range(total), min(total, count + len(taken))):
            row = self.org.store.fetch_one(
                f'SELECT "Id" FROM {table} WHERE {condition} ORDER BY "Id" LIMIT 1 OFFSET ?',
                (offset,),
            )
            if row is not None and row[0] not in taken and row[0] not in picked:
                picked.append(row[0])
                if len(picked) == count:
                    break
        return picked

    def _apply(
        self,
        group: dict[str, list[str]],
        sobject: str,
        record_id: str,
        change: dict[str, Any],
        users: list[str],
        now: dt.datetime,
    ) -> None:
        self.org.engine.update(sobject, record_id, change, user_id=self._rng.choice(users), now=now)
        group.setdefault(sobject, []).append(record_id)

    def _delete(
        self,
        summary: MutationSummary,
        sobject: str,
        record_id: str,
        users: list[str],
        now: dt.datetime,
    ) -> None:
        self.org.engine.delete(sobject, record_id, user_id=self._rng.choice(users), now=now)
        summary.deleted.setdefault(sobject, []).append(record_id)

    def _create(
        self, summary: MutationSummary, index: int, users: list[str], now: dt.datetime
    ) -> None:
        self._created += 1
        owner = self._rng.choice(users)
        if index % 3 == 2:
            record_id = self.org.engine.create(
                "Account",
                {
                    "Name": f"Neukunde {self._created} — Größe & Co. KG",
                    "Industry": self._rng.choice(INDUSTRIES),
                    "BillingCountry": "Germany",
                    "CurrencyIsoCode": "EUR",
                    "Region__c": "EMEA",
                    "OwnerId": owner,
                },
                user_id=owner,
                now=now,
            )
            summary.created.setdefault("Account", []).append(record_id)
            return
        [account_id] = self._pick("Account", 1, MutationSummary())
        account = self.org.engine.existing(_ACCOUNT, account_id)
        close = (now + dt.timedelta(days=self._rng.randrange(10, 120))).date().isoformat()
        record_id = self.org.engine.create(
            "Opportunity",
            {
                "Name": f"{account['Name']} - New deal {self._created}"[:120],
                "AccountId": account["Id"],
                "StageName": "Prospecting",
                "CloseDate": close,
                "Amount": float(self._rng.randrange(5, 400) * 1000),
                "CurrencyIsoCode": account["CurrencyIsoCode"],
                "Product_Line__c": self._rng.choice(PRODUCT_LINES),
                "OwnerId": owner,
            },
            user_id=owner,
            now=now,
        )
        summary.created.setdefault("Opportunity", []).append(record_id)
