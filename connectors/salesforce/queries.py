"""What the sync selects, learned from describe, and the SOQL that reads it.

Every statement is built with :func:`connectors.salesforce.client.soql` (``format_soql``):
values are quoted and escaped; identifiers go in through ``{:literal}`` only after
:func:`ident` has checked they are API names.

Field lists come from describe: :func:`describe_object` selects the standard fields the
org shows to the integration user, the optional ones it has (``CurrencyIsoCode`` exists only
in multi-currency orgs, ``RecordTypeId`` only with record types — selecting either elsewhere
fails with ``INVALID_FIELD``, facts A11) and the configured extra fields, refusing an extra
field the org does not have. The result (:class:`ObjectSchema`) is cached in the stream's
position for :data:`DESCRIBE_TTL`, so an incremental run with nothing new costs one query.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.salesforce.client import SalesforceClient, soql
from connectors.salesforce.convert import FieldContext
from connectors.salesforce.errors import PermissionDeniedError, SchemaMismatchError

__all__ = [
    "DESCRIBE_TTL",
    "OPPORTUNITY_STAGE_FIELDS",
    "USER_FIELDS",
    "ObjectSchema",
    "UnknownExtraFieldError",
    "before_condition",
    "count_query",
    "describe_object",
    "equals_condition",
    "field_history_fields",
    "floor_second",
    "ident",
    "ids_query",
    "live_ids_query",
    "select_query",
    "since_condition",
]

#: How long a describe result cached in a position is trusted. Fields change rarely, and an
#: INVALID_FIELD from a stale cache makes the connector describe again at once anyway.
DESCRIBE_TTL = timedelta(hours=24)

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# facts A11. Required: without them a record cannot be identified, staged or ordered.
_STANDARD: dict[str, tuple[str, ...]] = {
    "Opportunity": (
        "Id",
        "Name",
        "AccountId",
        "StageName",
        "Amount",
        "CloseDate",
        "Probability",
        "IsClosed",
        "IsWon",
        "Type",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "Account": (
        "Id",
        "Name",
        "Type",
        "Industry",
        "BillingCountry",
        "OwnerId",
        "AnnualRevenue",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
}
_REQUIRED: dict[str, frozenset[str]] = {
    "Opportunity": frozenset({"Id", "StageName", "CreatedDate", "SystemModstamp", "IsDeleted"}),
    "Account": frozenset({"Id", "CreatedDate", "SystemModstamp", "IsDeleted"}),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "Opportunity": ("CurrencyIsoCode", "RecordTypeId"),
    "Account": ("CurrencyIsoCode",),
}

#: Standard User fields the owners stream reads (present in every org).
USER_FIELDS: tuple[str, ...] = ("Id", "Name", "Email", "IsActive", "SystemModstamp")
#: OpportunityStage fields the stages stream reads (facts A6).
OPPORTUNITY_STAGE_FIELDS: tuple[str, ...] = (
    "Id",
    "ApiName",
    "MasterLabel",
    "DefaultProbability",
    "IsClosed",
    "IsWon",
    "SortOrder",
    "IsActive",
)


def field_history_fields(source: str) -> tuple[str, ...]:
    """Fields of the stage-history object read for ``source``."""
    if source == "field_history":
        return ("Id", "OpportunityId", "OldValue", "NewValue", "CreatedDate")
    return ("Id", "OpportunityId", "StageName", "CreatedDate")


class UnknownExtraFieldError(SchemaMismatchError):
    """A configured extra field does not exist on the object (or the user cannot see it)."""

    def __init__(
        self,
        message: str,
        *,
        connection: str,
        sobject: str,
        fields: Sequence[str],
        suggestions: Mapping[str, Sequence[str]],
    ) -> None:
        super().__init__(message, connection=connection, error_code="INVALID_FIELD")
        self.sobject = sobject
        self.fields = tuple(fields)
        self.suggestions = {name: tuple(close) for name, close in suggestions.items()}


def ident(name: str) -> str:
    """``name`` if it is an API name (safe to put in SOQL unquoted); ``ValueError`` otherwise."""
    if not _API_NAME.match(name):
        raise ValueError(f"not a Salesforce API name: {name!r}")
    return name


def floor_second(moment: datetime) -> datetime:
    """``moment`` without its fraction: SOQL dateTime literals carry whole seconds (facts A4)."""
    return moment.replace(microsecond=0)


@dataclass(frozen=True)
class ObjectSchema:
    """What to select from one object, as describe told it."""

    sobject: str
    fields: tuple[str, ...]
    #: Configured extra fields: API name as the org spells it → describe type.
    extra_types: Mapping[str, str] = field(default_factory=dict)
    default_currency: str | None = None
    described_at: datetime | None = None
    #: Read from a saved position (not described in this run).
    cached: bool = False

    @property
    def context(self) -> FieldContext:
        """What the converters need to know."""
        return FieldContext(
            extra_fields=dict(self.extra_types),
            multi_currency="CurrencyIsoCode" in self.fields,
            default_currency=self.default_currency,
        )

    def fresh(self, now: datetime, extras: Sequence[str]) -> bool:
        """Younger than :data:`DESCRIBE_TTL` and describing the extras configured now."""
        if self.described_at is None or now - self.described_at >= DESCRIBE_TTL:
            return False
        return {name.lower() for name in self.extra_types} == {name.lower() for name in extras}

    def to_position(self) -> dict[str, Any]:
        """The cache entries of a stream position."""
        return {
            "fields": list(self.fields),
            "extra_types": dict(self.extra_types),
            "default_currency": self.default_currency,
            "described_at": self.described_at.isoformat() if self.described_at else None,
        }

    @classmethod
    def from_position(cls, sobject: str, position: Mapping[str, Any] | None) -> ObjectSchema | None:
        """The schema cached in ``position``, or ``None`` when there is none (or it is garbled)."""
        if not position:
            return None
        fields = position.get("fields")
        extra_types = position.get("extra_types")
        described = position.get("described_at")
        if not isinstance(fields, list) or not isinstance(extra_types, dict):
            return None
        if not isinstance(described, str):
            return None
        try:
            described_at = datetime.fromisoformat(described)
            names = tuple(ident(str(name)) for name in fields)
            extras = {ident(str(k)): str(v) for k, v in extra_types.items()}
        except ValueError:
            return None
        if described_at.tzinfo is None:
            return None
        currency = position.get("default_currency")
        return cls(
            sobject=sobject,
            fields=names,
            extra_types=extras,
            default_currency=currency if isinstance(currency, str) else None,
            described_at=described_at,
            cached=True,
        )


def _close_matches(name: str, known: Mapping[str, str]) -> list[str]:
    close = difflib.get_close_matches(name.lower(), list(known), n=3, cutoff=0.6)
    return [known[key] for key in close]


def describe_object(
    client: SalesforceClient, sobject: str, extras: Sequence[str], *, now: datetime
) -> ObjectSchema:
    """Describe ``sobject`` (one request) and decide what to select.

    Raises :class:`UnknownExtraFieldError` naming the connection, the object, every missing
    extra field and its closest matches; :class:`SchemaMismatchError` when a field the sync
    cannot do without is hidden from the integration user.
    """
    body = client.describe(sobject)
    known: dict[str, dict[str, Any]] = {}
    for entry in body.get("fields") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            known[entry["name"].lower()] = entry
    spelled = {key: str(entry["name"]) for key, entry in known.items()}

    hidden = sorted(name for name in _REQUIRED[sobject] if name.lower() not in known)
    if hidden:
        raise SchemaMismatchError(
            f"connection {client.connection!r}: {sobject} has no field "
            f"{', '.join(hidden)} for the integration user (check its field-level security)",
            connection=client.connection,
            error_code="INVALID_FIELD",
        )
    missing = [name for name in extras if name.lower() not in known]
    if missing:
        suggestions = {name: _close_matches(name, spelled) for name in missing}
        parts = []
        for name in missing:
            close = suggestions[name]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            parts.append(f"{name}{hint}")
        raise UnknownExtraFieldError(
            f"connection {client.connection!r}: {sobject} has no field "
            f"{'; '.join(parts)} — remove it from extra_fields.{sobject.lower()} or create "
            "it in the org (and grant the integration user read access)",
            connection=client.connection,
            sobject=sobject,
            fields=missing,
            suggestions=suggestions,
        )

    selected: list[str] = []
    for name in (*_STANDARD[sobject], *_OPTIONAL[sobject]):
        if name.lower() in known and name not in selected:
            selected.append(spelled[name.lower()])
    extra_types: dict[str, str] = {}
    for name in extras:
        api_name = spelled[name.lower()]
        extra_types[api_name] = str(known[name.lower()].get("type") or "string")
        if api_name not in selected:
            selected.append(api_name)

    default_currency = None
    if "currencyisocode" not in known:
        default_currency = _org_currency(client)
    return ObjectSchema(
        sobject=sobject,
        fields=tuple(ident(name) for name in selected),
        extra_types=extra_types,
        default_currency=default_currency,
        described_at=now,
    )


def _org_currency(client: SalesforceClient) -> str | None:
    """A single-currency org's currency (``Organization.DefaultCurrencyIsoCode``), if readable."""
    try:
        page = client.query("SELECT DefaultCurrencyIsoCode FROM Organization LIMIT 1")
    except (SchemaMismatchError, PermissionDeniedError):
        return None  # not readable for this user: amounts keep no currency
    if page.records:
        value = page.records[0].get("DefaultCurrencyIsoCode")
        return str(value) if value else None
    return None


def _where(conditions: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def since_condition(field_name: str, start: datetime) -> str:
    """``<field> >= <start>`` with the start floored to the second (a closed start)."""
    return soql("{:literal} >= {}", ident(field_name), floor_second(start))


def before_condition(field_name: str, end: datetime) -> str:
    """``<field> < <end>`` (an open end; the fraction is kept off by rounding up)."""
    whole = floor_second(end)
    if whole != end:
        whole += timedelta(seconds=1)
    return soql("{:literal} < {}", ident(field_name), whole)


def equals_condition(field_name: str, value: Any) -> str:
    """``<field> = <value>``, the value escaped."""
    return soql("{:literal} = {}", ident(field_name), value)


def select_query(
    sobject: str,
    fields: Sequence[str],
    conditions: Sequence[str] = (),
    order_by: Sequence[str] = (),
) -> str:
    """``SELECT fields FROM sobject [WHERE c1 AND c2] [ORDER BY ...]``.

    ``conditions`` must come from the ``*_condition`` helpers (or :func:`soql`).
    """
    order = ", ".join(ident(name) for name in order_by)
    return soql(
        "SELECT {fields:literal} FROM {sobject:literal}{where:literal}{order:literal}",
        fields=", ".join(ident(name) for name in fields),
        sobject=ident(sobject),
        where=_where(conditions),
        order=f" ORDER BY {order}" if order else "",
    )


def count_query(sobject: str, conditions: Sequence[str] = ()) -> str:
    """``SELECT COUNT() FROM sobject [WHERE ...]``."""
    return soql(
        "SELECT COUNT() FROM {sobject:literal}{where:literal}",
        sobject=ident(sobject),
        where=_where(conditions),
    )


def ids_query(sobject: str, fields: Sequence[str], ids: Sequence[str]) -> str:
    """``SELECT fields FROM sobject WHERE Id IN (...)``."""
    return soql(
        "SELECT {fields:literal} FROM {sobject:literal} WHERE Id IN {ids}",
        fields=", ".join(ident(name) for name in fields),
        sobject=ident(sobject),
        ids=list(ids),
    )


def live_ids_query(sobject: str) -> str:
    """``SELECT Id FROM sobject``: run with ``query`` (not queryAll) it lists live records."""
    return select_query(sobject, ("Id",))
