"""Typed shapes of the HubSpot answers the client returns, parsed from the raw JSON.

The client reads bodies itself instead of using the library's generated models: they are
slow to build (facts, throughput ceilings) and coerce values with ``str()`` (gotcha 4), which
would hide a malformed answer. Every timestamp becomes an aware UTC ``datetime`` here, at
the edge. Parsers raise ``ValueError``/``TypeError``/``KeyError`` on a shape HubSpot never sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from connectors.hubspot.errors import HubSpotRecordError

__all__ = [
    "AssociatedId",
    "BatchRead",
    "CrmObject",
    "Owner",
    "Page",
    "Pipeline",
    "PipelineStage",
    "PropertyInfo",
    "SearchPage",
    "TokenGrant",
    "TokenInfo",
    "associations_from_v4",
    "paging_after",
    "parse_datetime",
]


def parse_datetime(value: Any) -> datetime | None:
    """HubSpot's ISO 8601 (``2024-01-02T03:04:05.123Z``) or epoch milliseconds, as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")


def _property_value(value: Any) -> str | None:
    # HubSpot sends strings or null; anything else is normalised the way HubSpot would spell it.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise TypeError(f"expected a list under {key!r}")
    return value


@dataclass(frozen=True)
class AssociatedId:
    """One associated record: its id and the association types that link it.

    List pages (v3) name the types (``deal_to_company`` is the primary company,
    ``deal_to_company_unlabeled`` the plain link); the v4 batch read gives type ids (5 and
    341 for deal → company, facts B5). Either may be empty.
    """

    id: str
    types: tuple[str, ...] = ()
    type_ids: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON form for stored raw payloads."""
        return {"id": self.id, "types": list(self.types), "typeIds": list(self.type_ids)}


def _v3_associations(data: Any) -> dict[str, tuple[AssociatedId, ...]]:
    """``{"companies": {"results": [{"id": "1", "type": "deal_to_company"}, ...]}}``, merged by
    id (HubSpot lists one entry per id *and* type)."""
    found: dict[str, tuple[AssociatedId, ...]] = {}
    for to_type, block in _object(data).items():
        merged: dict[str, list[str]] = {}
        for entry in _list(_object(block), "results"):
            item = _object(entry)
            if item.get("id") is None:
                raise ValueError("an association without an id")
            kinds = merged.setdefault(str(item["id"]), [])
            kind = item.get("type")
            if isinstance(kind, str) and kind not in kinds:
                kinds.append(kind)
        found[str(to_type)] = tuple(AssociatedId(i, tuple(k)) for i, k in merged.items())
    return found


@dataclass(frozen=True)
class CrmObject:
    """One CRM record (deal, company, note, ...) with its requested properties."""

    id: str
    properties: dict[str, str | None]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived: bool = False
    archived_at: datetime | None = None
    #: Associated ids by object type (``"companies"``), when the request asked for them.
    associations: dict[str, tuple[AssociatedId, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> CrmObject:
        """Parse one element of ``results``."""
        item = _object(data)
        raw_id = item.get("id")
        if raw_id is None:
            raise ValueError("a CRM object without an id")
        props = item.get("properties") or {}
        links = item.get("associations")
        return cls(
            id=str(raw_id),
            properties={str(k): _property_value(v) for k, v in _object(props).items()},
            created_at=parse_datetime(item.get("createdAt")),
            updated_at=parse_datetime(item.get("updatedAt")),
            archived=bool(item.get("archived", False)),
            archived_at=parse_datetime(item.get("archivedAt")),
            associations=_v3_associations(links) if links else {},
        )

    def with_associations(self, to_type: str, linked: tuple[AssociatedId, ...]) -> CrmObject:
        """A copy with the associations of ``to_type`` replaced (from a separate read)."""
        return replace(self, associations={**self.associations, to_type: linked})

    def to_json(self) -> dict[str, Any]:
        """The object in HubSpot's shape again (what a stored raw payload keeps)."""
        body: dict[str, Any] = {
            "id": self.id,
            "properties": dict(self.properties),
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
            "archived": self.archived,
        }
        if self.archived_at is not None:
            body["archivedAt"] = _iso(self.archived_at)
        if self.associations:
            body["associations"] = {
                to_type: [link.to_json() for link in linked]
                for to_type, linked in self.associations.items()
            }
        return body


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def associations_from_v4(data: Any) -> tuple[dict[str, list[AssociatedId]], dict[str, str]]:
    """Parse a v4 association batch read: targets by source id, and the ``after`` cursor of
    every source that has more (facts B5). Sources with no association are simply absent
    (HubSpot reports them as per-input ``OBJECT_NOT_FOUND`` errors)."""
    body = _object(data)
    found: dict[str, list[AssociatedId]] = {}
    more: dict[str, str] = {}
    for entry in body.get("results") or []:
        item = _object(entry)
        source = str(_object(item["from"])["id"])
        targets = found.setdefault(source, [])
        for target in _list(item, "to"):
            link = _object(target)
            type_ids = tuple(
                int(kind["typeId"])
                for kind in link.get("associationTypes") or []
                if isinstance(kind, Mapping) and kind.get("typeId") is not None
            )
            targets.append(AssociatedId(str(link["toObjectId"]), type_ids=type_ids))
        after = paging_after(item)
        if after is not None:
            more[source] = after
    return found, more


def paging_after(body: Mapping[str, Any]) -> str | None:
    """``paging.next.after`` of a list or search answer, or ``None`` on the last page."""
    paging = body.get("paging")
    if not isinstance(paging, Mapping):
        return None
    following = paging.get("next")
    if not isinstance(following, Mapping) or following.get("after") in (None, ""):
        return None
    return str(following["after"])


class Page(NamedTuple):
    """One page of a list endpoint; ``next_after`` is ``None`` on the last page."""

    results: list[CrmObject]
    next_after: str | None

    @classmethod
    def from_json(cls, data: Any) -> Page:
        """Parse ``{"results": [...], "paging": {"next": {"after": ...}}}``."""
        body = _object(data)
        return cls([CrmObject.from_json(r) for r in _list(body, "results")], paging_after(body))


class SearchPage(NamedTuple):
    """One page of a search; unpacks as ``(results, total, next_after)``."""

    results: list[CrmObject]
    total: int
    next_after: str | None

    @classmethod
    def from_json(cls, data: Any) -> SearchPage:
        """Parse ``{"total": n, "results": [...], "paging": {"next": {"after": ...}}}``."""
        body = _object(data)
        total = body.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise TypeError("a search answer without an integer total")
        results = [CrmObject.from_json(r) for r in _list(body, "results")]
        return cls(results, total, paging_after(body))


@dataclass(frozen=True)
class BatchRead:
    """A batch read: the records found and, for a 207, what failed (``RecordError`` each)."""

    results: list[CrmObject]
    errors: list[HubSpotRecordError] = field(default_factory=list)


@dataclass(frozen=True)
class PipelineStage:
    """A deal stage; ``probability``/``is_closed`` come from HubSpot's string metadata."""

    id: str
    label: str
    display_order: int
    probability: float | None
    is_closed: bool
    archived: bool = False

    @classmethod
    def from_json(cls, data: Any) -> PipelineStage:
        """Parse one stage of a pipeline."""
        item = _object(data)
        metadata = item.get("metadata") or {}
        probability = metadata.get("probability")
        return cls(
            id=str(item["id"]),
            label=str(item.get("label") or ""),
            display_order=int(item.get("displayOrder") or 0),
            probability=float(probability) if probability not in (None, "") else None,
            is_closed=str(metadata.get("isClosed", "false")).lower() == "true",
            archived=bool(item.get("archived", False)),
        )


@dataclass(frozen=True)
class Pipeline:
    """A pipeline and its stages in display order."""

    id: str
    label: str
    display_order: int
    stages: tuple[PipelineStage, ...]
    archived: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Pipeline:
        """Parse one element of ``/crm/v3/pipelines/{type}`` ``results``."""
        item = _object(data)
        stages = sorted(
            (PipelineStage.from_json(s) for s in item.get("stages") or []),
            key=lambda stage: stage.display_order,
        )
        return cls(
            id=str(item["id"]),
            label=str(item.get("label") or ""),
            display_order=int(item.get("displayOrder") or 0),
            stages=tuple(stages),
            archived=bool(item.get("archived", False)),
        )


@dataclass(frozen=True)
class Owner:
    """A HubSpot owner (the user a deal or company is assigned to)."""

    id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    user_id: int | None
    archived: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Owner:
        """Parse one element of ``/crm/v3/owners`` ``results``."""
        item = _object(data)
        user_id = item.get("userId")
        return cls(
            id=str(item["id"]),
            email=item.get("email"),
            first_name=item.get("firstName"),
            last_name=item.get("lastName"),
            user_id=int(user_id) if user_id is not None else None,
            archived=bool(item.get("archived", False)),
        )


@dataclass(frozen=True)
class PropertyInfo:
    """A property definition from ``/crm/v3/properties/{type}``."""

    name: str
    label: str
    type: str
    field_type: str
    has_unique_value: bool = False
    calculated: bool = False

    @classmethod
    def from_json(cls, data: Any) -> PropertyInfo:
        """Parse one element of the properties API's ``results``."""
        item = _object(data)
        return cls(
            name=str(item["name"]),
            label=str(item.get("label") or ""),
            type=str(item.get("type") or ""),
            field_type=str(item.get("fieldType") or ""),
            has_unique_value=bool(item.get("hasUniqueValue", False)),
            calculated=bool(item.get("calculated", False)),
        )


@dataclass(frozen=True)
class TokenGrant:
    """What ``POST /oauth/v1/token`` returned (the secrets stay out of ``repr``)."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> TokenGrant:
        """Parse ``{"access_token", "expires_in", "refresh_token", "token_type"}``."""
        item = _object(data)
        token = item.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("the token answer has no access_token")
        expires_in = item.get("expires_in")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise TypeError("the token answer has no numeric expires_in")
        refresh = item.get("refresh_token")
        return cls(token, float(expires_in), refresh if isinstance(refresh, str) else None)


@dataclass(frozen=True)
class TokenInfo:
    """``GET /oauth/v1/access-tokens/{token}``: who the OAuth token belongs to."""

    hub_id: int
    app_id: int | None
    scopes: tuple[str, ...]
    user: str | None

    @classmethod
    def from_json(cls, data: Any) -> TokenInfo:
        """Parse the access-token metadata."""
        item = _object(data)
        app_id = item.get("app_id")
        return cls(
            hub_id=int(item["hub_id"]),
            app_id=int(app_id) if app_id is not None else None,
            scopes=tuple(str(s) for s in item.get("scopes") or []),
            user=item.get("user"),
        )
