"""Deterministic demo data for the Salesforce sandbox, cached per (seed, size, schema).

Same seed and size → byte-for-byte the same records: every value comes from seeded
``random.Random`` instances and timestamps are offsets from a fixed anchor
(:data:`ANCHOR`, 2026-11-01T00:00:00Z), never from the wall clock.

What a seeded org holds (sizes in :func:`plan_for`):

* users with unicode names (a few inactive ones still own records), the integration user first;
* the ten default opportunity stages, one custom active stage and one inactive legacy stage
  (a few old open opportunities still sit in it, as in real orgs);
* accounts across countries, currencies (USD, EUR, GBP, JPY) and regions, with nulls where
  real orgs have them (Industry, Website, AnnualRevenue, ...), unicode and quote-heavy names;
* opportunities with stage paths over time: OpportunityHistory rows per stage step,
  OpportunityFieldHistory rows per StageName/Amount change (about 3-4 history rows per
  opportunity; above :data:`FULL_HISTORY_LIMIT` opportunities only the newest ones get
  history, to keep a million-row seed fast);
* several "mass update" SystemModstamps shared by many records, a few recycled (deleted)
  opportunities, and a few Tasks/Events, some already carrying a Stagelink external id.

Rows are streamed into SQLite with ``executemany`` from generators in one transaction
(journal off, synchronous off) and indexes are built after the load, so a million
opportunities seed in well under two minutes without holding them in memory.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.store import BOOKKEEPING_SQL, quote

# Bump when the generated data changes, so cached databases are rebuilt.
SEED_FORMAT_VERSION = "4"
ANCHOR_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
ANCHOR = "2026-11-01T00:00:00.000Z"
DAY_MS = 86_400_000
YEARS_OF_DATA = 3
FULL_HISTORY_LIMIT = 200_000
CHUNK = 5_000


@dataclass(frozen=True)
class SeedPlan:
    """How many records of each kind a seed size produces."""

    label: str
    users: int
    accounts: int
    opportunities: int
    tasks: int
    events: int


NAMED_SIZES: dict[str, tuple[int, int, int]] = {
    "small": (10, 60, 300),
    "medium": (50, 4_000, 20_000),
    "large": (200, 20_000, 100_000),
}


def plan_for(size: str | int) -> SeedPlan:
    """The plan of a named size (small, medium, large) or of N opportunities."""
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"seed size must be a positive number of opportunities, got {size}")
        users, accounts, opportunities = max(5, size // 500), max(1, size // 5), size
        label = f"n{size}"
    else:
        if size not in NAMED_SIZES:
            raise ValueError(f"unknown seed size {size!r}; use small, medium, large or a number")
        users, accounts, opportunities = NAMED_SIZES[size]
        label = size
    return SeedPlan(
        label=label,
        users=users,
        accounts=accounts,
        opportunities=opportunities,
        tasks=min(max(20, opportunities // 50), 5_000),
        events=min(max(5, opportunities // 200), 1_000),
    )


def fingerprint() -> str:
    """Identifies the schema and generator; part of the cache file name."""
    digest = hashlib.sha256((schema.create_all_tables_sql() + SEED_FORMAT_VERSION).encode())
    return digest.hexdigest()[:12]


def cached_seed(data_dir: Path, seed: int, size: str | int) -> Path:
    """Path of the seeded database for (seed, size, schema), building it if missing."""
    plan = plan_for(size)
    cache_dir = data_dir / "seeds"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"salesforce-seed{seed}-{plan.label}-{fingerprint()}.sqlite"
    if path.exists():
        return path
    # Build beside the final name and rename: a concurrent builder never sees half a file.
    partial = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.partial")
    try:
        build_database(partial, seed=seed, plan=plan)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------- formatting


_DAY_PREFIX: dict[int, str] = {}


def _date(ms: int) -> str:
    day = ms // DAY_MS
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        t = time.gmtime(day * 86_400)
        prefix = _DAY_PREFIX[day] = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    return prefix


def _ts(ms: int) -> str:
    # Millions of calls when seeding: the date part is cached per day.
    seconds, millis = divmod(ms % DAY_MS, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date(ms)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


# --------------------------------------------------------------------------- reference data

FIRST_NAMES = (
    "Ana", "José", "Åsa", "Chloé", "Yuki", "Siobhán", "Ngozi", "Raj", "Zoë", "Wei",
    "Mateus", "Hannah", "Oliver", "Emma", "Liam", "Søren", "Łucja", "Mehmet", "Aiko", "Björn",
    "Fatima", "Diego", "Priya", "Noah", "Ines", "Kwame", "Olga", "Tomás", "Mei", "Elif",
)  # fmt: skip
LAST_NAMES = (
    "García", "Müller", "Lindqvist", "Dubois", "Tanaka", "O'Connor", "Okafor", "Patel",
    "Øvrebø", "Zhang", "Conceição", "Schmidt", "Smith", "Johnson", "Brown", "Kowalski",
    "Yılmaz", "Nakamura", "Andersson", "Haddad", "Fernández", "Iyer", "Williams", "Rossi",
    "Mensah", "Ivanova", "Núñez", "Chen", "Demir", "田中",
)  # fmt: skip

# country → (cities, currency, region, legal suffixes)
COUNTRIES: dict[str, tuple[tuple[str, ...], str, str, tuple[str, ...]]] = {
    "United States": (("New York", "San Francisco", "Chicago", "Austin", "Boston"), "USD",
                      "AMER", ("Inc.", "LLC", "Corp.")),
    "Canada": (("Toronto", "Vancouver", "Montréal"), "USD", "AMER", ("Inc.", "Ltd.")),
    "Brazil": (("São Paulo", "Rio de Janeiro"), "USD", "LATAM", ("Ltda.", "S.A.")),
    "Mexico": (("Ciudad de México", "Monterrey"), "USD", "LATAM", ("S.A. de C.V.",)),
    "Germany": (("Berlin", "München", "Hamburg", "Köln"), "EUR", "EMEA", ("GmbH", "AG")),
    "France": (("Paris", "Lyon", "Orléans"), "EUR", "EMEA", ("SA", "SARL")),
    "Spain": (("Madrid", "Barcelona", "A Coruña"), "EUR", "EMEA", ("S.L.", "S.A.")),
    "Netherlands": (("Amsterdam", "Rotterdam"), "EUR", "EMEA", ("B.V.",)),
    "Sweden": (("Stockholm", "Göteborg", "Malmö"), "EUR", "EMEA", ("AB",)),
    "United Kingdom": (("London", "Manchester", "Edinburgh"), "GBP", "EMEA", ("Ltd", "plc")),
    "Ireland": (("Dublin", "Cork"), "EUR", "EMEA", ("Ltd",)),
    "Japan": (("東京", "Osaka", "Kyoto"), "JPY", "APAC", ("K.K.", "株式会社")),
    "Australia": (("Sydney", "Melbourne"), "USD", "APAC", ("Pty Ltd",)),
    "India": (("Bengaluru", "Mumbai"), "USD", "APAC", ("Pvt Ltd",)),
    "Singapore": (("Singapore",), "USD", "APAC", ("Pte. Ltd.",)),
}  # fmt: skip
COUNTRY_WEIGHTS = (30, 5, 4, 3, 10, 7, 4, 3, 3, 10, 2, 8, 4, 4, 3)
COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Wonka", "Oceanic", "Aperture", "Nakatomi", "Monarch", "Prestige",
    "Müller", "Nordström", "Ødegaard", "Łukasiewicz", "Çelik", "Åkesson", "Peña", "Dupré",
    "Sánchez", "Kühne", "Brønd", "Yamada", "Zürich", "Blue Harbor", "Northwind", "Contoso",
    "Fabrikam", "Tailspin", "Litware", "Proseware", "Adatum", "Woodgrove", "Alpine",
)  # fmt: skip
COMPANY_SECTORS = (
    "Systems", "Logistics", "Health", "Energy", "Foods", "Capital", "Labs", "Industries",
    "Analytics", "Robotics", "Media", "Pharma", "Software", "Retail", "Bank", "Motors",
    "Textil", "Maschinenbau", "Télécom", "Solutions",
)  # fmt: skip
SHOWCASE_ACCOUNTS = (
    ("Müller GmbH", "Germany"),
    ("株式会社サンプル", "Japan"),
    ("O'Brien & Sons", "Ireland"),
    ("Société Générale d'Équipement SA", "France"),
    ('Back\\slash "Quoted" Ltd', "United Kingdom"),
    ("Ødegaard & Søn AS", "Sweden"),
    ("50% Off_Deals LLC", "United States"),
)
OPPORTUNITY_KINDS = (
    "Expansion", "Renewal", "Pilot", "Rollout", "Upgrade", "New Logo", "Add-on", "Migration",
)  # fmt: skip
NEXT_STEPS = (
    "Send proposal", "Schedule demo", "Security review", "Legal review — redlines",
    "Follow up with CFO", "Kick-off call", "Procurement sign-off",
)  # fmt: skip
TASK_SUBJECTS = (
    "Call", "Send Quote", "Follow-up email", "Demo prep", "Reunión de seguimiento",
    "Angebot nachfassen", "見積書送付", "Other",
)  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """One OpportunityStage row."""

    api_name: str
    probability: int
    is_closed: bool
    is_won: bool
    forecast: str
    sort_order: int
    is_active: bool


STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 10, False, False, "Pipeline", 1, True),
    Stage("Qualification", 10, False, False, "Pipeline", 2, True),
    Stage("Needs Analysis", 20, False, False, "Pipeline", 3, True),
    Stage("Value Proposition", 50, False, False, "Pipeline", 4, True),
    # A custom stage the org added: connectors must read OpportunityStage, not hard-code.
    Stage("Technical Validation", 55, False, False, "Best Case", 5, True),
    Stage("Id. Decision Makers", 60, False, False, "Pipeline", 6, True),
    Stage("Perception Analysis", 70, False, False, "Pipeline", 7, True),
    Stage("Proposal/Price Quote", 75, False, False, "Pipeline", 8, True),
    Stage("Negotiation/Review", 90, False, False, "Pipeline", 9, True),
    Stage("Closed Won", 100, True, True, "Closed", 10, True),
    Stage("Closed Lost", 0, True, False, "Omitted", 11, True),
    # A retired stage: inactive, yet a few old open opportunities still carry it.
    Stage("Discovery Call", 15, False, False, "Pipeline", 12, False),
)
OPEN_STAGES = tuple(s for s in STAGES if not s.is_closed and s.is_active)
STAGE_BY_NAME = {s.api_name: s for s in STAGES}
# OpportunityHistory.ForecastCategory holds API values, not the labels.
FORECAST_API = {
    "Pipeline": "Pipeline",
    "Best Case": "BestCase",
    "Commit": "Forecast",
    "Closed": "Closed",
    "Omitted": "Omitted",
}


@dataclass(frozen=True)
class _Account:
    id: str
    name: str
    currency: str
    owner: str
    created_ms: int


# --------------------------------------------------------------------------- building


def build_database(path: Path, *, seed: int, plan: SeedPlan) -> None:
    """Create and fill a new database file at ``path``."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-32768")
        indexes: list[str] = []
        for name in schema.SCHEMA:
            for statement in schema.create_table_sql(name).split(";\n"):
                statement = statement.strip()
                if statement.startswith("CREATE TABLE"):
                    conn.execute(statement)
                elif statement:
                    indexes.append(statement)  # built after the load: much faster
        for statement in BOOKKEEPING_SQL:
            conn.execute(statement)
        conn.execute("BEGIN")
        _Generator(conn, seed, plan).run()
        conn.execute("COMMIT")
        for statement in indexes:
            conn.execute(statement)
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _insert(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Any]
) -> None:
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", rows)


USER_COLUMNS = (
    "Id", "Username", "Email", "FirstName", "LastName", "Name", "IsActive", "UserRoleId",
    "TimeZoneSidKey", "LanguageLocaleKey", "CreatedDate", "LastModifiedDate", "SystemModstamp",
    "IsDeleted",
)  # fmt: skip
STAGE_COLUMNS = (
    "Id", "ApiName", "MasterLabel", "DefaultProbability", "IsClosed", "IsWon",
    "ForecastCategoryName", "SortOrder", "IsActive", "SystemModstamp", "IsDeleted",
)  # fmt: skip
ACCOUNT_COLUMNS = (
    "Id", "Name", "Type", "Industry", "BillingCountry", "BillingCity", "Website", "OwnerId",
    "ParentId", "AnnualRevenue", "NumberOfEmployees", "Region__c", "CurrencyIsoCode",
    "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted",
)  # fmt: skip
OPPORTUNITY_COLUMNS = (
    "Id", "AccountId", "Name", "StageName", "Amount", "CloseDate", "Probability", "IsClosed",
    "IsWon", "ForecastCategoryName", "OwnerId", "Type", "LeadSource", "NextStep",
    "CurrencyIsoCode", "Product_Line__c", "CreatedDate", "LastModifiedDate", "SystemModstamp",
    "IsDeleted",
)  # fmt: skip
HISTORY_COLUMNS = (
    "Id", "OpportunityId", "StageName", "Amount", "Probability", "CloseDate", "ForecastCategory",
    "CreatedDate", "CreatedById", "SystemModstamp", "IsDeleted",
)  # fmt: skip
FIELD_HISTORY_COLUMNS = (
    "Id", "OpportunityId", "Field", "OldValue", "NewValue", "CreatedDate", "CreatedById",
    "IsDeleted",
)  # fmt: skip
TASK_COLUMNS = (
    "Id", "Subject", "Description", "ActivityDate", "Status", "Priority", "IsClosed", "WhatId",
    "WhoId", "OwnerId", "Type", "TaskSubtype", "Stagelink_Event_Id__c", "CreatedDate",
    "LastModifiedDate", "SystemModstamp", "IsDeleted",
)  # fmt: skip
EVENT_COLUMNS = (
    "Id", "Subject", "Description", "StartDateTime", "EndDateTime", "DurationInMinutes",
    "ActivityDateTime", "WhatId", "OwnerId", "Stagelink_Event_Id__c", "CreatedDate",
    "LastModifiedDate", "SystemModstamp", "IsDeleted",
)  # fmt: skip


class _Generator:
    """Generates one org. Each table draws from its own RNG, so tables stay independent."""

    def __init__(self, conn: sqlite3.Connection, seed: int, plan: SeedPlan) -> None:
        self.conn = conn
        self.seed = seed
        self.plan = plan
        self.start_ms = ANCHOR_MS - YEARS_OF_DATA * 365 * DAY_MS
        self.sequences: dict[str, int] = {}
        self.user_ids: list[str] = []
        self.active_user_ids: list[str] = []
        self.accounts: list[_Account] = []
        self.opportunity_ids: list[str] = []
        # Bulk updates: many records share one of these SystemModstamps.
        self.mass_updates = [ANCHOR_MS - d * DAY_MS - 3_600_000 * h for d, h in
                             ((2, 3), (9, 20), (20, 7), (45, 1), (120, 11))]  # fmt: skip

    def rng(self, table: str) -> random.Random:
        return random.Random(f"stagelink-sf-{self.seed}-{table}")

    def next_id(self, prefix: str) -> str:
        number = self.sequences.get(prefix, 0) + 1
        self.sequences[prefix] = number
        return make_id(prefix, number)

    def run(self) -> None:
        self.users()
        self.stages()
        self.accounts_()
        self.opportunities()
        self.tasks()
        self.events()
        self.bookkeeping()

    def system_modstamp(self, rng: random.Random, last_modified_ms: int) -> int:
        # ~12% of records were touched by a mass update after their last edit.
        if rng.random() < 0.12:
            later = [ts for ts in self.mass_updates if ts > last_modified_ms]
            if later:
                return rng.choice(later)
        return last_modified_ms

    # -- users ------------------------------------------------------------------------------

    def users(self) -> None:
        rng = self.rng("User")
        rows = []
        for n in range(self.plan.users):
            user_id = self.next_id("005")
            if n == 0:
                first, last, username = "Integration", "User", INTEGRATION_USERNAME
                active = True
            else:
                first = FIRST_NAMES[(n * 7 + rng.randrange(3)) % len(FIRST_NAMES)]
                last = LAST_NAMES[(n * 11 + rng.randrange(5)) % len(LAST_NAMES)]
                username = (
                    f"{_ascii(first) or 'user'}.{_ascii(last) or 'user'}.{n}"
                    "@sandbox.stagelink.example"
                )
                active = n % 9 != 4  # a few inactive users who still own records
            created = self.start_ms - rng.randrange(30, 400) * DAY_MS
            rows.append(
                (
                    user_id, username, username.replace("@sandbox.", "@mail."), first, last,
                    f"{first} {last}", int(active), None, rng.choice(schema.TIME_ZONES),
                    rng.choice(schema.LANGUAGES), _ts(created), _ts(created), _ts(created), 0,
                )
            )  # fmt: skip
            self.user_ids.append(user_id)
            if active:
                self.active_user_ids.append(user_id)
        _insert(self.conn, "User", USER_COLUMNS, rows)

    def stages(self) -> None:
        stamp = _ts(self.start_ms - 400 * DAY_MS)
        rows = [
            (
                self.next_id("01J"), s.api_name, s.api_name, s.probability, int(s.is_closed),
                int(s.is_won), s.forecast, s.sort_order, int(s.is_active), stamp, 0,
            )
            for s in STAGES
        ]  # fmt: skip
        _insert(self.conn, "OpportunityStage", STAGE_COLUMNS, rows)

    # -- accounts ---------------------------------------------------------------------------

    def accounts_(self) -> None:
        rng = self.rng("Account")
        countries = list(COUNTRIES)
        rows = []
        for n in range(self.plan.accounts):
            account_id = self.next_id("001")
            country: str | None
            if n < len(SHOWCASE_ACCOUNTS):
                name, country = SHOWCASE_ACCOUNTS[n]
            else:
                country = rng.choices(countries, COUNTRY_WEIGHTS)[0]
                suffix = rng.choice(COUNTRIES[country][3])
                word = rng.choice(COMPANY_WORDS)
                sector = rng.choice(COMPANY_SECTORS)
                name = (
                    f"{suffix} {word} {sector}"
                    if suffix == "株式会社"
                    else (f"{word} {sector} {suffix}")
                )
            cities, currency, region, _ = COUNTRIES[country]
            city: str | None = rng.choice(cities)
            if n >= len(SHOWCASE_ACCOUNTS) and rng.random() < 0.05:
                country, city, region_value = None, None, None  # incomplete address
            else:
                region_value = region
            owner = rng.choice(self.user_ids)
            created = self.start_ms + rng.randrange(0, 200 * DAY_MS)
            modified = min(created + rng.randrange(0, 700 * DAY_MS), ANCHOR_MS - DAY_MS)
            parent = rng.choice(self.accounts).id if self.accounts and rng.random() < 0.05 else None
            website = (
                None if rng.random() < 0.25 else f"https://www.{_ascii(name)[:20] or 'x'}.example"
            )
            rows.append(
                (
                    account_id, name,
                    None if rng.random() < 0.2 else rng.choice(schema.ACCOUNT_TYPES),
                    None if rng.random() < 0.15 else rng.choice(schema.INDUSTRIES),
                    country, city, website, owner, parent,
                    None if rng.random() < 0.3 else float(rng.randrange(1, 5000) * 100_000),
                    None if rng.random() < 0.2 else rng.randrange(5, 250_000),
                    region_value, currency, _ts(created), _ts(modified),
                    _ts(self.system_modstamp(rng, modified)), 0,
                )
            )  # fmt: skip
            self.accounts.append(_Account(account_id, name, currency, owner, created))
        _insert(self.conn, "Account", ACCOUNT_COLUMNS, rows)

    # -- opportunities and their history ----------------------------------------------------

    def opportunities(self) -> None:
        rng = self.rng("Opportunity")
        history_rng = self.rng("OpportunityHistory")
        total = self.plan.opportunities
        history_from = max(0, total - FULL_HISTORY_LIMIT)
        deleted: list[tuple[str, str, str]] = []
        for chunk_start in range(0, total, CHUNK):
            opportunities: list[tuple[Any, ...]] = []
            history: list[tuple[Any, ...]] = []
            field_history: list[tuple[Any, ...]] = []
            for n in range(chunk_start, min(total, chunk_start + CHUNK)):
                row, path = self.opportunity(rng, n)
                if rng.random() < 0.02:
                    # In the Recycle Bin: flagged, restamped, logged for /deleted/.
                    when = max(ANCHOR_MS - rng.randrange(1, 14) * DAY_MS, path[-1][1] + 1000)
                    row = (*row[:18], _ts(when), 1)
                    deleted.append(("Opportunity", row[0], row[18]))
                opportunities.append(row)
                if n >= history_from:
                    self.history(history_rng, row, path, history, field_history)
            _insert(self.conn, "Opportunity", OPPORTUNITY_COLUMNS, opportunities)
            _insert(self.conn, "OpportunityHistory", HISTORY_COLUMNS, history)
            _insert(self.conn, "OpportunityFieldHistory", FIELD_HISTORY_COLUMNS, field_history)
        self.conn.executemany(
            'INSERT INTO "_sl_deleted" (sobject, record_id, deleted_date) VALUES (?, ?, ?)',
            deleted,
        )

    def opportunity(
        self, rng: random.Random, n: int
    ) -> tuple[tuple[Any, ...], list[tuple[Stage, int]]]:
        opportunity_id = self.next_id("006")
        self.opportunity_ids.append(opportunity_id)
        account = rng.choice(self.accounts)
        # Opportunities are created over three years, newer ones more often.
        created = self.start_ms + int((rng.random() ** 0.7) * (ANCHOR_MS - DAY_MS - self.start_ms))
        created = max(created, account.created_ms + DAY_MS)
        age_days = (ANCHOR_MS - created) // DAY_MS
        roll = rng.random()
        if (age_days > 120 and roll < 0.75) or (age_days <= 120 and roll < 0.2):
            final = STAGES[9] if rng.random() < 0.45 else STAGES[10]  # Closed Won / Closed Lost
        elif age_days > 400 and rng.random() < 0.08:
            final = STAGE_BY_NAME["Discovery Call"]  # stuck in a retired stage
        else:
            final = rng.choice(OPEN_STAGES)
        path = self.stage_path(rng, final, created)
        last_change = path[-1][1]
        if final.is_closed:
            close_ms = last_change
        else:
            close_ms = ANCHOR_MS + rng.randrange(-30, 180) * DAY_MS  # some are overdue
        amount: float | None = None
        if rng.random() >= 0.08:
            amount = float(rng.randrange(5, 500) * 1000)
            if account.currency == "JPY":
                amount = float(int(amount * 150))
        probability = final.probability
        if not final.is_closed and rng.random() < 0.1:
            probability = max(5, min(95, probability + rng.choice((-10, -5, 5, 10))))
        kind = rng.choice(OPPORTUNITY_KINDS)
        product = rng.choice(schema.PRODUCT_LINES)
        no_account = rng.random() < 0.02
        owner = account.owner if rng.random() < 0.7 else rng.choice(self.user_ids)
        row = (
            opportunity_id,
            None if no_account else account.id,
            f"{account.name} - {product} {kind}"[:120],
            final.api_name,
            amount,
            _date(close_ms),
            float(probability),
            int(final.is_closed),
            int(final.is_won),
            final.forecast,
            owner,
            None if rng.random() < 0.15 else rng.choice(schema.OPPORTUNITY_TYPES),
            None if rng.random() < 0.2 else rng.choice(schema.LEAD_SOURCES),
            None if final.is_closed or rng.random() < 0.6 else rng.choice(NEXT_STEPS),
            account.currency,
            None if rng.random() < 0.1 else product,
            _ts(created),
            _ts(last_change),
            _ts(self.system_modstamp(rng, last_change)),
            0,
        )
        return row, path

    def stage_path(self, rng: random.Random, final: Stage, created: int) -> list[tuple[Stage, int]]:
        """Stages an opportunity went through, with the time it entered each."""
        if final.api_name == "Discovery Call":
            steps = [final]
        else:
            open_before = (
                [s for s in OPEN_STAGES if s.sort_order < final.sort_order]
                if not final.is_closed
                else list(OPEN_STAGES)
            )
            count = min(len(open_before), rng.choice((0, 1, 1, 2, 2, 3)))
            steps = [*sorted(rng.sample(open_before, count), key=lambda s: s.sort_order), final]
        span = max(
            DAY_MS, min(ANCHOR_MS - DAY_MS, created + rng.randrange(10, 300) * DAY_MS) - created
        )
        times = [created]
        for _ in steps[1:]:
            times.append(times[-1] + rng.randrange(1, max(2, span // len(steps))))
        return list(zip(steps, times, strict=True))

    def history(
        self,
        rng: random.Random,
        row: tuple[Any, ...],
        path: list[tuple[Stage, int]],
        history: list[tuple[Any, ...]],
        field_history: list[tuple[Any, ...]],
    ) -> None:
        opportunity_id, amount, close_date, owner = row[0], row[4], row[5], row[10]
        deleted = row[19]
        previous: Stage | None = None
        for stage, at in path:
            stamp = _ts(at)
            history.append(
                (
                    self.next_id("008"), opportunity_id, stage.api_name, amount,
                    float(stage.probability), close_date, FORECAST_API[stage.forecast], stamp,
                    owner, stamp, deleted,
                )
            )  # fmt: skip
            if previous is not None:
                field_history.append(
                    (self.next_id("017"), opportunity_id, "StageName", previous.api_name,
                     stage.api_name, stamp, owner, deleted)
                )  # fmt: skip
            previous = stage
        if amount is not None and rng.random() < 0.25:
            at = path[-1][1]
            old = amount * rng.choice((0.5, 0.8, 1.25))
            field_history.append(
                (self.next_id("017"), opportunity_id, "Amount", f"{old:.2f}", f"{amount:.2f}",
                 _ts(at), owner, deleted)
            )  # fmt: skip

    # -- activities -------------------------------------------------------------------------

    def tasks(self) -> None:
        rng = self.rng("Task")

        def rows() -> Iterator[tuple[Any, ...]]:
            for n in range(self.plan.tasks):
                status = rng.choice(schema.TASK_STATUSES)
                created = ANCHOR_MS - rng.randrange(2, 300) * DAY_MS
                modified = created + rng.randrange(0, DAY_MS)
                description = None
                if rng.random() < 0.5:
                    description = (
                        "Notizen: Kunde fragt nach Preisen — näher besprechen.\n"
                        * rng.randrange(1, 5)
                    )
                yield (
                    self.next_id("00T"), rng.choice(TASK_SUBJECTS), description,
                    _date(created + rng.randrange(0, 30) * DAY_MS), status,
                    rng.choice(schema.TASK_PRIORITIES), int(status == "Completed"),
                    rng.choice(self.opportunity_ids), None, rng.choice(self.active_user_ids),
                    rng.choice(schema.TASK_TYPES), rng.choice(("Task", "Call", "Email")),
                    f"seed-event-{n:05d}" if n % 4 == 0 else None,
                    _ts(created), _ts(modified), _ts(modified), 0,
                )  # fmt: skip

        _insert(self.conn, "Task", TASK_COLUMNS, rows())

    def events(self) -> None:
        rng = self.rng("Event")

        def rows() -> Iterator[tuple[Any, ...]]:
            for _ in range(self.plan.events):
                start = (
                    ANCHOR_MS - rng.randrange(-20, 200) * DAY_MS + rng.randrange(8, 18) * 3_600_000
                )
                minutes = rng.choice((30, 45, 60, 90))
                created = min(start, ANCHOR_MS - DAY_MS) - rng.randrange(1, 20) * DAY_MS
                what = (
                    rng.choice(self.opportunity_ids)
                    if rng.random() < 0.7
                    else rng.choice(self.accounts).id
                )
                yield (
                    self.next_id("00U"), rng.choice(("Demo", "Workshop", "QBR", "Kick-off")),
                    None, _ts(start), _ts(start + minutes * 60_000), minutes, _ts(start), what,
                    rng.choice(self.active_user_ids), None, _ts(created), _ts(created),
                    _ts(created), 0,
                )  # fmt: skip

        _insert(self.conn, "Event", EVENT_COLUMNS, rows())

    def bookkeeping(self) -> None:
        self.conn.executemany(
            'INSERT INTO "_sl_sequence" (prefix, next) VALUES (?, ?)',
            [(prefix, number + 1) for prefix, number in self.sequences.items()],
        )
        meta = {
            "seed": str(self.seed),
            "size": self.plan.label,
            "fingerprint": fingerprint(),
            "organization_id": organization_id(self.seed),
            "anchor": ANCHOR,
        }
        self.conn.executemany('INSERT INTO "_sl_meta" (key, value) VALUES (?, ?)', meta.items())


INTEGRATION_USERNAME = "integration@sandbox.stagelink.example"


def organization_id(seed: int) -> str:
    """The org id of a seeded org (stable per seed)."""
    return make_id("00D", 1000 + seed % 100_000)
