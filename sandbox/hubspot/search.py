"""``POST /crm/v3/objects/{type}/search`` compiled to SQL (facts B3).

* ``filterGroups`` are ORed, filters inside a group ANDed; at most 5 groups, 10 filters per
  group and 25 filters in all (400 otherwise).
* Operators: EQ, NEQ, LT, LTE, GT, GTE, BETWEEN (``value`` + ``highValue``), IN/NOT_IN
  (``values``), HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN. Negative
  operators also match records that have no value.
* Date values: epoch-ms strings (documented) or ISO 8601 (accepted, unconfirmed upstream).
* ``sorts``: objects ``{"propertyName", "direction"}`` or strings (``"-name"`` = descending);
  one sort at most. Ties are broken by id so paging is stable.
* ``limit`` ≤ 200; ``after`` is an offset; asking for results at or past
  ``search_result_cap`` (10,000) is a 400, even though ``paging.next`` keeps pointing there.
* Archived records never match; with an index lag, records modified in the last ``lag``
  seconds are not visible yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.errors import validation_error
from sandbox.hubspot.schema import ObjectTypeDef, PropertyDef, normalize_datetime, normalize_number
from sandbox.hubspot.timeutil import parse_datetime_ms

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
MAX_LIMIT = 200

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_COMPARE = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


@dataclass(frozen=True)
class CompiledSearch:
    """SQL pieces plus paging of one search request."""

    where: str
    params: list[Any]
    order: str
    limit: int
    offset: int
    properties: list[str] | None


class _Column:
    """How one property is read and compared in SQL."""

    def __init__(self, definition: ObjectTypeDef, prop: PropertyDef) -> None:
        self.prop = prop
        name = prop.name
        if name == "hs_object_id":
            self.kind = "int"
            self.sql = "o.id"
        elif name == definition.created_property:
            self.kind = "ms"
            self.sql = "o.created_ms"
        elif name == definition.modified_property:
            self.kind = "ms"
            self.sql = "o.updated_ms"
        else:
            raw = f"json_extract(o.props, '$.\"{name}\"')"
            self.kind = {"number": "real", "bool": "bool"}.get(prop.type, "text")
            if prop.type in ("datetime", "date"):
                self.kind = "iso"
            self.sql = {
                "real": f"CAST({raw} AS REAL)",
                "text": f"hs_fold({raw})",
            }.get(self.kind, raw)
        self.raw = (
            self.sql if self.kind in ("int", "ms") else (f"json_extract(o.props, '$.\"{name}\"')")
        )

    def param(self, value: Any) -> Any:
        """Convert a filter value to what the SQL expression compares against."""
        if value is None:
            raise ValueError("missing value")
        text = str(value).strip()
        if isinstance(value, bool):
            text = "true" if value else "false"
        if self.kind == "int":
            return int(normalize_number(text))
        if self.kind == "ms":
            return parse_datetime_ms(text)
        if self.kind == "iso":
            return normalize_datetime(text)
        if self.kind == "real":
            return float(normalize_number(text))
        if self.kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower()
        return text.casefold()


def compile_search(
    definition: ObjectTypeDef,
    defs: dict[str, PropertyDef],
    body: Any,
    *,
    visible_before_ms: int | None,
    result_cap: int,
) -> CompiledSearch:
    """Validate a search body and build the SQL; raise 400 ``VALIDATION_ERROR`` on bad input."""
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: the search request must be an object.")
    limit = _int(body.get("limit", 10), "limit")
    if limit < 1 or limit > MAX_LIMIT:
        raise validation_error(
            f"limit must be between 1 and {MAX_LIMIT}; got {limit}.",
            context={"limit": [str(limit)]},
        )
    after_raw = body.get("after")
    offset = 0 if after_raw in (None, "") else _int(after_raw, "after")
    if offset < 0:
        raise validation_error("after must not be negative.")
    if offset >= result_cap:
        # facts B3: paging beyond 10,000 results is a 400, not a silent truncation.
        raise validation_error(
            f"Paging past {result_cap} results is not supported by search; narrow the query "
            f"(after={offset}).",
            context={"after": [str(offset)]},
        )
    where = ["o.object_type = ?", "o.archived = 0"]
    params: list[Any] = [definition.name]
    if visible_before_ms is not None:
        where.append("o.updated_ms <= ?")
        params.append(visible_before_ms)
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise validation_error("filterGroups must be an array.")
    if len(groups) > MAX_GROUPS:
        raise validation_error(
            f"Too many filter groups: {len(groups)}. The maximum is {MAX_GROUPS}.",
            sub_category="TOO_MANY_FILTER_GROUPS",
        )
    total_filters = 0
    group_sql: list[str] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("Each filter group needs a filters array.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: {len(filters)}. The maximum is "
                f"{MAX_FILTERS_PER_GROUP}.",
                sub_category="TOO_MANY_FILTERS_IN_GROUP",
            )
        total_filters += len(filters)
        if total_filters > MAX_FILTERS:
            raise validation_error(
                f"Too many filters: the maximum is {MAX_FILTERS} across all groups.",
                sub_category="TOO_MANY_FILTERS",
            )
        clauses: list[str] = []
        for item in filters:
            clause, values = _filter(definition, defs, item)
            clauses.append(clause)
            params.extend(values)
        if clauses:
            group_sql.append("(" + " AND ".join(clauses) + ")")
    if group_sql:
        where.append("(" + " OR ".join(group_sql) + ")")
    query = body.get("query")
    if isinstance(query, str) and query.strip():
        needle = query.strip().casefold()
        fields = [
            f"instr(hs_fold(json_extract(o.props, '$.\"{name}\"')), ?) > 0"
            for name in definition.searchable
        ]
        where.append("(" + " OR ".join(fields) + ")")
        params.extend([needle] * len(fields))
    order = _order(definition, defs, body.get("sorts"))
    properties = body.get("properties")
    if properties is not None and not (
        isinstance(properties, list) and all(isinstance(p, str) for p in properties)
    ):
        raise validation_error("properties must be an array of strings.")
    return CompiledSearch(
        where=" AND ".join(where),
        params=params,
        order=order,
        limit=min(limit, result_cap - offset),
        offset=offset,
        properties=properties,
    )


def _int(value: Any, name: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise validation_error(f"{name} must be an integer; got {value!r}.") from None


def _filter(
    definition: ObjectTypeDef, defs: dict[str, PropertyDef], item: Any
) -> tuple[str, list[Any]]:
    if not isinstance(item, dict):
        raise validation_error("Each filter must be an object.")
    name = item.get("propertyName")
    operator = item.get("operator", "EQ")
    if operator not in OPERATORS:
        raise validation_error(
            f"Unknown operator {operator!r}; use one of " + ", ".join(sorted(OPERATORS)) + "."
        )
    prop = defs.get(name) if isinstance(name, str) else None
    if prop is None:
        raise validation_error(
            f"There was a problem with the request: property {name!r} does not exist on "
            f"{definition.name}.",
            context={"propertyName": [str(name)]},
        )
    column = _Column(definition, prop)
    try:
        compiled = _filter_sql(column, operator, item)
    except (ValueError, OverflowError):
        raise validation_error(
            f"Invalid value for {operator} filter on {name}: "
            f"{item.get('value')!r} (high: {item.get('highValue')!r}).",
            context={"propertyName": [str(name)]},
        ) from None
    return compiled


def _filter_sql(column: _Column, operator: str, item: dict[str, Any]) -> tuple[str, list[Any]]:
    if operator in _COMPARE:
        value = column.param(item.get("value"))
        if operator in ("NEQ",):
            return f"({column.raw} IS NULL OR {column.sql} != ?)", [value]
        return f"{column.sql} {_COMPARE[operator]} ?", [value]
    if operator == "BETWEEN":
        low = column.param(item.get("value"))
        high = column.param(item.get("highValue"))
        return f"{column.sql} BETWEEN ? AND ?", [low, high]
    if operator in ("IN", "NOT_IN"):
        values = item.get("values")
        if not isinstance(values, list) or not values:
            raise validation_error(f"{operator} needs a non-empty values array.")
        converted = [column.param(value) for value in values]
        marks = ",".join("?" * len(converted))
        if operator == "IN":
            return f"{column.sql} IN ({marks})", converted
        return f"({column.raw} IS NULL OR {column.sql} NOT IN ({marks}))", converted
    if operator == "HAS_PROPERTY":
        return f"{column.raw} IS NOT NULL", []
    if operator == "NOT_HAS_PROPERTY":
        return f"{column.raw} IS NULL", []
    token = _token(item.get("value"))
    if operator == "CONTAINS_TOKEN":
        return f"hs_contains_token(CAST({column.raw} AS TEXT), ?) = 1", [token]
    return (
        f"({column.raw} IS NULL OR hs_contains_token(CAST({column.raw} AS TEXT), ?) = 0)",
        [token],
    )


def _token(value: Any) -> str:
    if not isinstance(value, str | int | float) or str(value) == "":
        raise ValueError("missing value")
    return str(value)


def _order(definition: ObjectTypeDef, defs: dict[str, PropertyDef], sorts: Any) -> str:
    if not sorts:
        return "o.created_ms ASC, o.id ASC"
    if not isinstance(sorts, list):
        raise validation_error("sorts must be an array.")
    if len(sorts) > 1:
        raise validation_error("Only one sort is supported per search request.")
    sort = sorts[0]
    if isinstance(sort, str):
        descending = sort.startswith("-")
        name = sort.lstrip("-")
    elif isinstance(sort, dict):
        name = sort.get("propertyName", "")
        direction = str(sort.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(
                f"Sort direction must be ASCENDING or DESCENDING; got {direction}."
            )
        descending = direction == "DESCENDING"
    else:
        raise validation_error("Each sort must be a string or an object.")
    prop = defs.get(name)
    if prop is None:
        raise validation_error(f"Cannot sort by unknown property {name!r}.")
    column = _Column(definition, prop)
    way = "DESC" if descending else "ASC"
    return f"{column.sql} {way}, o.id {way}"
