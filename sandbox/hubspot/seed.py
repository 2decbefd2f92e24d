"""Deterministic demo data for the HubSpot emulator, streamed into SQLite and cached.

Same seed and size give the same database byte for byte in content: every random choice comes
from ``random.Random`` seeded per stream, and every timestamp hangs off
:data:`~sandbox.hubspot.timeutil.ANCHOR` (2026-11-01T00:00:00Z), never the wall clock.

Shapes a connector has to cope with, on purpose:

* two pipelines (``default`` with HubSpot's stage ids, a custom one with numeric ids); closed
  won/lost deals with ``hs_date_entered_*`` and ``dealstage`` property history;
* every fifth deal (up to 5,000) and every tenth company share one ``hs_lastmodifieddate``
  (a bulk import at :data:`BULK_IMPORT_MS`), so cursor ties cross page boundaries;
* one day (:data:`WINDOW_START_MS`) in which one deal in eight was modified — more than
  10,000 deals for ``large`` — so a search over that window exceeds the 10,000-result cap;
* amounts as strings (some with decimals, some null), USD and EUR, HubSpot industry values,
  unicode names, owners including a deactivated one, deals without a company.

Rows are produced by generators and written with ``executemany`` in chunks inside one
transaction, so a million deals seed in bounded memory.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.hubspot.schema import (
    COMPANIES,
    CONTACTS,
    DEALS,
    DEFAULT_PIPELINE,
    ENTERPRISE_PIPELINE,
    INDUSTRIES,
    NOTES,
    SCHEMA_VERSION,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TASK_TYPES,
    TASKS,
    Pipeline,
    Stage,
    stage_derived_properties,
)
from sandbox.hubspot.store import DDL, INDEXES
from sandbox.hubspot.timeutil import ANCHOR_MS, DAY_MS, iso_from_ms, parse_datetime_ms

BULK_IMPORT_MS = parse_datetime_ms("2026-06-15T09:30:00.000Z")
WINDOW_START_MS = parse_datetime_ms("2026-10-15T00:00:00.000Z")
BULK_IMPORT_CAP = 5_000
TIMELINE_TEMPLATE_ID = "1001298"

SIZES: dict[str, tuple[int, int, int]] = {
    # name: (owners, companies, deals)
    "small": (10, 60, 300),
    "medium": (50, 4_000, 20_000),
    "large": (200, 20_000, 100_000),
}


@dataclass(frozen=True)
class SeedPlan:
    """How many rows of each kind one seed size produces."""

    label: str
    owners: int
    companies: int
    deals: int
    contacts: int
    notes: int
    tasks: int


def plan_for(size: str | int) -> SeedPlan:
    """Resolve ``"small" | "medium" | "large"`` or a number of deals into row counts."""
    if isinstance(size, str):
        if size.isdigit():
            return plan_for(int(size))
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; use one of {sorted(SIZES)} or a number")
        owners, companies, deals = SIZES[size]
        label = size
    else:
        if size < 1:
            raise ValueError("size must be at least one deal")
        deals = size
        companies = max(1, size // 5)
        owners = max(5, size // 500)
        label = str(size)
    return SeedPlan(
        label=label,
        owners=owners,
        companies=companies,
        deals=deals,
        contacts=min(companies, 1_000),
        notes=min(max(5, deals // 20), 500),
        tasks=min(max(3, deals // 40), 250),
    )


# --------------------------------------------------------------------------- vocabulary

FIRST_NAMES = [
    "Ana",
    "Jürgen",
    "Chloé",
    "Søren",
    "Aiko",
    "Mateo",
    "Zoë",
    "Łukasz",
    "Priya",
    "Olamide",
    "François",
    "Ingrid",
    "Yusuf",
    "Mei",
    "Björn",
    "Camila",
    "Dmitri",
    "Siobhán",
    "Kenji",
    "Amara",
]
LAST_NAMES = [
    "García",
    "Schmidt",
    "Dubois",
    "Østergaard",
    "Tanaka",
    "Rossi",
    "Nowak",
    "Patel",
    "Okafor",
    "Müller",
    "Lindqvist",
    "Yılmaz",
    "Chen",
    "Novák",
    "Fernández",
    "Ivanova",
    "O'Brien",
    "Sato",
    "Mensah",
    "Kowalczyk",
]
COMPANY_PREFIXES = [
    "Nordwind",
    "Blue Harbor",
    "Müller & Söhne",
    "Société Lumière",
    "Åkesson",
    "Zürich",
    "São Paulo",
    "Kraków",
    "Østerbro",
    "Crème de la Code",
    "Ōsaka",
    "Δέλτα",
    "Acme",
    "Globex",
    "Initech",
    "Pinecrest",
    "Redwood",
    "Northwind",
    "Helios",
    "Meridian",
    "北京星辰",
    "Sierra",
    "Tidewater",
    "Quantum Ridge",
    "Lakeside",
    "Ember",
    "Vantage",
    "Coral Bay",
    "Granite",
    "Silverline",
]
COMPANY_CORES = [
    "Analytics",
    "Logistics",
    "Systems",
    "Health",
    "Capital",
    "Robotics",
    "Foods",
    "Energy",
    "Software",
    "Media",
    "Bio",
    "Mobility",
    "Insurance",
    "Retail",
    "Telecom",
    "Labs",
]
COMPANY_SUFFIXES = ["GmbH", "AG", "Ltd", "Inc.", "S.A.", "AB", "S.r.l.", "LLC", "K.K.", "Oy", "SE"]
COUNTRIES = [
    ("United States", ["New York", "Austin", "San Francisco", "Chicago", "Boston"]),
    ("Germany", ["Berlin", "München", "Hamburg", "Köln"]),
    ("France", ["Paris", "Lyon", "Toulouse"]),
    ("United Kingdom", ["London", "Manchester", "Edinburgh"]),
    ("Japan", ["Tokyo", "Ōsaka", "Kyoto"]),
    ("Brazil", ["São Paulo", "Rio de Janeiro"]),
    ("Sweden", ["Stockholm", "Göteborg", "Malmö"]),
    ("Switzerland", ["Zürich", "Genève"]),
    ("Poland", ["Kraków", "Warszawa", "Łódź"]),
    ("Canada", ["Toronto", "Montréal"]),
]
PRODUCTS = ["Platform", "Analytics Suite", "Mobile Seats", "Enablement Pro", "Data Connector"]
DEAL_KINDS = ["Renewal", "Expansion", "New Logo", "Pilot", "Upsell", "Rollout"]
TEAMS = [("41000001", "EMEA"), ("41000002", "North America"), ("41000003", "APAC")]
NOTE_BODIES = [
    "<p>Call recap: discussed pricing — next step is a demo for the CFO.</p>",
    "<p>Champion confirmed budget 👍. Legal review starts next week.</p>",
    "<p>Kunde wünscht ein Angebot für 50 zusätzliche Lizenzen.</p>",
    "<p>Sent the security questionnaire and the SOC 2 report.</p>",
    "<p>Réunion avec l'équipe achats : délai de paiement à 60 jours.</p>",
]
TASK_SUBJECTS = [
    "Follow up on proposal",
    "Send case study",
    "Book technical deep-dive",
    "Confirm renewal date",
    "Share pricing deck",
]

OWNER_ID_BASE = 70_000_001
USER_ID_BASE = 9_000_001


def _rng(seed: int, stream: str) -> random.Random:
    # String seeds are hashed deterministically (random.seed version 2), unlike hash().
    return random.Random(f"stagelink-hubspot:{seed}:{stream}")


def company_name(seed: int, index: int) -> str:
    """The seeded name of company ``index`` (also used to build deal names)."""
    n = index + seed * 7
    prefix = COMPANY_PREFIXES[n % len(COMPANY_PREFIXES)]
    core = COMPANY_CORES[(n // len(COMPANY_PREFIXES)) % len(COMPANY_CORES)]
    suffix = COMPANY_SUFFIXES[(n // 3) % len(COMPANY_SUFFIXES)]
    cycle = len(COMPANY_PREFIXES) * len(COMPANY_CORES)
    number = f" {index // cycle + 1}" if index >= cycle else ""
    return f"{prefix} {core}{number} {suffix}"


def _slug(text: str) -> str:
    ascii_only = text.encode("ascii", "ignore").decode().lower()
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in ascii_only)
    return "-".join(part for part in cleaned.split("-") if part) or "company"


def _amount(rng: random.Random) -> str | None:
    if rng.random() < 0.08:
        return None
    whole = rng.randrange(5, 2_500) * 100
    if rng.random() < 0.1:
        cents = rng.choice(["0.5", "0.25", "0.75", "0.99"])
        return f"{whole}{cents[1:]}"
    return str(whole)


def _dumps(props: dict[str, str | None]) -> str:
    return json.dumps(
        {key: value for key, value in props.items() if value is not None},
        ensure_ascii=False,
        separators=(",", ":"),
    )


# --------------------------------------------------------------------------- generators


def _owner_rows(seed: int, plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    rng = _rng(seed, "owners")
    for index in range(plan.owners):
        first = FIRST_NAMES[(index + seed) % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7 + seed) % len(LAST_NAMES)]
        ascii_first = _slug(first)
        ascii_last = _slug(last)
        created = ANCHOR_MS - rng.randrange(400, 1500) * DAY_MS
        team_id, team_name = TEAMS[index % len(TEAMS)]
        archived = plan.owners >= 5 and index == plan.owners - 1  # one deactivated user
        yield (
            OWNER_ID_BASE + index,
            f"{ascii_first}.{ascii_last}{index + 1}@stagelink-demo.example",
            first,
            last,
            USER_ID_BASE + index,
            created,
            created + rng.randrange(1, 300) * DAY_MS,
            int(archived),
            json.dumps([{"id": team_id, "name": team_name, "primary": True}]),
        )


def _owner_id(rng: random.Random, plan: SeedPlan, null_rate: float) -> str | None:
    if rng.random() < null_rate:
        return None
    return str(OWNER_ID_BASE + rng.randrange(plan.owners))


def _company_rows(seed: int, plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    rng = _rng(seed, "companies")
    for index in range(plan.companies):
        name = company_name(seed, index)
        country, cities = COUNTRIES[rng.randrange(len(COUNTRIES))]
        created = ANCHOR_MS - rng.randrange(DAY_MS * 365, DAY_MS * 4 * 365)
        if index % 10 == 0 and created < BULK_IMPORT_MS:
            modified = BULK_IMPORT_MS
        else:
            modified = max(created, ANCHOR_MS - rng.randrange(0, DAY_MS * 365))
        domain = None if rng.random() < 0.07 else f"{_slug(name)}-{index + 1}.example.com"
        props: dict[str, str | None] = {
            "name": name,
            "domain": domain,
            "website": f"https://www.{domain}" if domain else None,
            "industry": None if rng.random() < 0.1 else rng.choice(INDUSTRIES)[0],
            "country": country,
            "city": rng.choice(cities),
            "numberofemployees": None if rng.random() < 0.15 else str(rng.randrange(5, 20_000)),
            "annualrevenue": (
                None if rng.random() < 0.2 else str(rng.randrange(100, 500_000) * 1_000)
            ),
            "phone": None
            if rng.random() < 0.3
            else f"+1 555 01{rng.randrange(10, 99)} {index:04d}",
            "hubspot_owner_id": _owner_id(rng, plan, 0.05),
        }
        yield ("companies", COMPANIES.id_base + index, created, modified, 0, None, _dumps(props))


@dataclass
class _DealRows:
    objects: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    associations: list[tuple[Any, ...]]


def _stage_path(rng: random.Random, pipeline: Pipeline) -> list[Stage]:
    open_stages = list(pipeline.open_stages)
    outcome = rng.random()
    if outcome < 0.25:
        return [*open_stages[: rng.randint(2, len(open_stages))], pipeline.won_stage]
    if outcome < 0.45:
        return [*open_stages[: rng.randint(1, len(open_stages))], pipeline.lost_stage]
    return open_stages[: rng.randint(1, len(open_stages))]


def _deal_chunks(seed: int, plan: SeedPlan, chunk_size: int = 5_000) -> Iterator[_DealRows]:
    rng = _rng(seed, "deals")
    bulk_taken = 0
    rows = _DealRows([], [], [])
    for index in range(plan.deals):
        deal_id = DEALS.id_base + index
        pipeline = ENTERPRISE_PIPELINE if rng.random() < 0.2 else DEFAULT_PIPELINE
        path = _stage_path(rng, pipeline)
        bulk = index % 5 == 0 and bulk_taken < BULK_IMPORT_CAP
        window = not bulk and index % 8 == 3
        if bulk:
            bulk_taken += 1
            created = BULK_IMPORT_MS - rng.randrange(DAY_MS, DAY_MS * 900)
            last_activity = BULK_IMPORT_MS - rng.randrange(0, DAY_MS // 2)
            modified = BULK_IMPORT_MS
        elif window:
            modified = WINDOW_START_MS + rng.randrange(0, DAY_MS)
            created = WINDOW_START_MS - rng.randrange(DAY_MS, DAY_MS * 900)
            last_activity = modified - rng.randrange(0, 3_600_000)
        else:
            created = ANCHOR_MS - rng.randrange(DAY_MS, DAY_MS * 3 * 365)
            last_activity = min(ANCHOR_MS - 1, created + rng.randrange(DAY_MS, DAY_MS * 400))
            modified = min(ANCHOR_MS, last_activity + rng.randrange(0, DAY_MS * 20))
        # Stage entry times: the first at creation, the others in order until last activity.
        times = [created, *sorted(rng.randrange(created, last_activity + 1) for _ in path[1:])]
        stage = path[-1]
        owner = _owner_id(rng, plan, 0.05)
        owner_user = None if owner is None else USER_ID_BASE + int(owner) - OWNER_ID_BASE
        company_index = None if rng.random() < 0.03 else rng.randrange(plan.companies)
        product = PRODUCTS[rng.randrange(len(PRODUCTS))]
        kind = DEAL_KINDS[rng.randrange(len(DEAL_KINDS))]
        name_base = (
            company_name(seed, company_index)
            if company_index is not None
            else f"Inbound lead #{index}"
        )
        closedate: str | None
        if stage.is_closed:
            closedate = iso_from_ms(times[-1])
        elif rng.random() < 0.9:
            closedate = iso_from_ms(ANCHOR_MS + rng.randrange(7, 180) * DAY_MS)
        else:
            closedate = None
        currency_roll = rng.random()
        props: dict[str, str | None] = {
            "dealname": f"{name_base} – {product} {kind}",
            "dealstage": stage.id,
            "pipeline": pipeline.id,
            "amount": _amount(rng),
            "deal_currency_code": (
                None if currency_roll < 0.03 else "EUR" if currency_roll < 0.18 else "USD"
            ),
            "closedate": closedate,
            "dealtype": rng.choice(["newbusiness"] * 6 + ["existingbusiness"] * 3 + [None]),
            "hubspot_owner_id": owner,
            **stage_derived_properties(stage),
        }
        source = "IMPORT" if bulk else "CRM_UI"
        for entered, ts in zip(path, times, strict=True):
            props[f"hs_date_entered_{entered.id}"] = iso_from_ms(ts)
            props[f"hs_v2_date_entered_{entered.id}"] = iso_from_ms(ts)
            rows.history.append(
                (
                    "deals",
                    deal_id,
                    "dealstage",
                    entered.id,
                    ts,
                    source,
                    None if owner_user is None else f"userId:{owner_user}",
                    owner_user,
                )
            )
        rows.objects.append(("deals", deal_id, created, modified, 0, None, _dumps(props)))
        if company_index is not None:
            company_id = COMPANIES.id_base + company_index
            for type_id, inverse in ((5, 6), (341, 342)):
                rows.associations.append(("deals", deal_id, "companies", company_id, type_id))
                rows.associations.append(("companies", company_id, "deals", deal_id, inverse))
        if len(rows.objects) >= chunk_size:
            yield rows
            rows = _DealRows([], [], [])
    if rows.objects:
        yield rows


def _contact_rows(
    seed: int, plan: SeedPlan
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    rng = _rng(seed, "contacts")
    for index in range(plan.contacts):
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        company_index = index % plan.companies
        created = ANCHOR_MS - rng.randrange(DAY_MS * 30, DAY_MS * 3 * 365)
        modified = min(ANCHOR_MS, created + rng.randrange(0, DAY_MS * 300))
        props: dict[str, str | None] = {
            "firstname": first,
            "lastname": last,
            "email": (
                f"{_slug(first)}.{_slug(last)}.{index + 1}@customer{company_index + 1}.example"
            ),
            "company": company_name(seed, company_index),
            "jobtitle": rng.choice(
                ["VP Sales", "CFO", "Head of RevOps", "Account Executive", None]
            ),
            "lifecyclestage": rng.choice(["lead", "opportunity", "customer", "salesqualifiedlead"]),
            "hubspot_owner_id": _owner_id(rng, plan, 0.1),
        }
        contact_id = CONTACTS.id_base + index
        company_id = COMPANIES.id_base + company_index
        associations = [
            ("contacts", contact_id, "companies", company_id, 1),
            ("contacts", contact_id, "companies", company_id, 279),
            ("companies", company_id, "contacts", contact_id, 2),
            ("companies", company_id, "contacts", contact_id, 280),
        ]
        yield (("contacts", contact_id, created, modified, 0, None, _dumps(props)), associations)


def _engagement_rows(
    seed: int, plan: SeedPlan, kind: str
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    rng = _rng(seed, kind)
    definition = NOTES if kind == "notes" else TASKS
    count = plan.notes if kind == "notes" else plan.tasks
    for index in range(count):
        created = ANCHOR_MS - rng.randrange(DAY_MS, DAY_MS * 200)
        modified = min(ANCHOR_MS, created + rng.randrange(0, DAY_MS * 10))
        deal_id = DEALS.id_base + rng.randrange(plan.deals)
        props: dict[str, str | None]
        if kind == "notes":
            props = {
                "hs_timestamp": iso_from_ms(created),
                "hs_note_body": NOTE_BODIES[rng.randrange(len(NOTE_BODIES))],
                "hubspot_owner_id": _owner_id(rng, plan, 0.2),
            }
            type_id, inverse = 214, 213
        else:
            props = {
                "hs_timestamp": iso_from_ms(created + rng.randrange(1, 14) * DAY_MS),
                "hs_task_subject": TASK_SUBJECTS[rng.randrange(len(TASK_SUBJECTS))],
                "hs_task_body": "Prepared by the seed.",
                "hs_task_status": rng.choice(TASK_STATUSES),
                "hs_task_priority": rng.choice(TASK_PRIORITIES),
                "hs_task_type": rng.choice(TASK_TYPES),
                "hubspot_owner_id": _owner_id(rng, plan, 0.2),
            }
            type_id, inverse = 216, 215
        object_id = definition.id_base + index
        associations = [
            (kind, object_id, "deals", deal_id, type_id),
            ("deals", deal_id, kind, object_id, inverse),
        ]
        yield ((kind, object_id, created, modified, 0, None, _dumps(props)), associations)


def timeline_template(app_id: int) -> dict[str, Any]:
    """The seeded timeline event template ("content used") of the emulated app."""
    created = "2024-05-02T10:00:00.000Z"

    def token(name: str, label: str, type_: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": type_,
            "createdAt": created,
            "updatedAt": created,
            **extra,
        }

    return {
        "id": TIMELINE_TEMPLATE_ID,
        "name": "stagelink content used",
        "objectType": "deals",
        "headerTemplate": "{{asset}} was used ({{channel}})",
        "detailTemplate": "Opened {{views}} time(s). Link: {{asset_url}}",
        "tokens": [
            token("asset", "Asset", "string"),
            token("asset_url", "Asset URL", "string"),
            token("views", "Views", "number"),
            token(
                "channel",
                "Channel",
                "enumeration",
                options=[
                    {"value": "mobile", "label": "Mobile"},
                    {"value": "web", "label": "Web"},
                    {"value": "crm_card", "label": "CRM card"},
                ],
            ),
            token("used_at", "Used at", "date"),
        ],
        "createdAt": created,
        "updatedAt": created,
    }


# --------------------------------------------------------------------------- writing

_OBJECT_INSERT = (
    "INSERT INTO objects (object_type, id, created_ms, updated_ms, archived, archived_ms, props) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_ASSOC_INSERT = (
    "INSERT OR IGNORE INTO associations (from_type, from_id, to_type, to_id, type_id) "
    "VALUES (?, ?, ?, ?, ?)"
)
_HISTORY_INSERT = (
    "INSERT INTO history (object_type, object_id, name, value, ts_ms, source_type, source_id, "
    "user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _write_with_associations(
    conn: sqlite3.Connection, rows: Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]
) -> None:
    pending: list[tuple[Any, ...]] = []

    def objects() -> Iterator[tuple[Any, ...]]:
        for row, associations in rows:
            pending.extend(associations)
            yield row

    conn.executemany(_OBJECT_INSERT, objects())
    conn.executemany(_ASSOC_INSERT, pending)


def seed_database(path: Path, *, seed: int, plan: SeedPlan, app_id: int) -> None:
    """Create and fill a fresh database at ``path``."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(DDL)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO owners (id, email, first_name, last_name, user_id, created_ms, "
            "updated_ms, archived, teams) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _owner_rows(seed, plan),
        )
        conn.executemany(_OBJECT_INSERT, _company_rows(seed, plan))
        for chunk in _deal_chunks(seed, plan):
            conn.executemany(_OBJECT_INSERT, chunk.objects)
            conn.executemany(_HISTORY_INSERT, chunk.history)
            conn.executemany(_ASSOC_INSERT, chunk.associations)
        _write_with_associations(conn, _contact_rows(seed, plan))
        _write_with_associations(conn, _engagement_rows(seed, plan, "notes"))
        _write_with_associations(conn, _engagement_rows(seed, plan, "tasks"))
        template = timeline_template(app_id)
        conn.execute(
            "INSERT INTO timeline_templates (id, app_id, body) VALUES (?, ?, ?)",
            (template["id"], app_id, json.dumps(template)),
        )
        for key, value in {
            "schema_version": str(SCHEMA_VERSION),
            "seed": str(seed),
            "size": plan.label,
        }.items():
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        conn.execute("COMMIT")
        conn.executescript(INDEXES)
        conn.execute("ANALYZE")
    finally:
        conn.close()


def cached_seed(cache_dir: Path, *, seed: int, plan: SeedPlan, app_id: int) -> Path:
    """Path of the seeded database for (seed, size, schema version), building it if missing.

    Built under a temporary name and renamed into place, so concurrent test processes never
    read a half-written file.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"hubspot-v{SCHEMA_VERSION}-seed{seed}-{plan.label}.sqlite"
    if target.exists():
        return target
    scratch = cache_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        seed_database(scratch, seed=seed, plan=plan, app_id=app_id)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    return target
