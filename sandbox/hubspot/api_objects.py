"""``/crm/v3/objects/{type}``: list, read, create, update, archive, batch and search (facts B2, B3).

Status codes follow the library's ``response_types_map``: create and batch create answer
**201**, read/update/upsert/batch read/search 200, partial batch failures **207**, archive 204.

Injected per-record failures: a ``FaultKind.SERVER_ERROR`` fault with ``status=207`` whose
``path_prefix`` matches a batch endpoint makes that batch fail every input at an odd position
(1, 3, 5, …): those inputs are not applied and come back in ``errors`` with category
``INTERNAL_ERROR`` (context ``index``, plus ``ids`` or ``objectWriteTraceId`` when known); the
other inputs succeed and the response is 207.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sandbox.hubspot.crm import InlineAssociation
from sandbox.hubspot.errors import HubSpotError, not_found, validation_error
from sandbox.hubspot.http import (
    Ctx,
    Endpoint,
    Reply,
    batch_inputs,
    batch_reply,
    decode_cursor,
    encode_cursor,
    now_iso,
    per_record_error,
)
from sandbox.hubspot.schema import ObjectTypeDef
from sandbox.hubspot.search import compile_search
from sandbox.hubspot.store import ObjectRow

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account

LIST_MAX = 100
HISTORY_LIST_MAX = 50  # facts B2: pages with propertiesWithHistory hold at most 50


def _injected_failure(index: int, context: dict[str, list[str]]) -> dict[str, Any]:
    return per_record_error(
        "INTERNAL_ERROR",
        "This input failed (sandbox-injected per-record error); retry it.",
        {"index": [str(index)], **context},
    )


def _fails(ctx: Ctx, index: int) -> bool:
    return ctx.partial_fault and index % 2 == 1


# --------------------------------------------------------------------------- basic


def list_objects(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/objects/{type}``."""
    definition = ctx.object_type()
    history = ctx.query_list("propertiesWithHistory")
    limit = ctx.query_int("limit", 10, maximum=HISTORY_LIST_MAX if history else LIST_MAX)
    archived = ctx.query_bool("archived", False)
    after = decode_cursor(ctx.query("after"))
    rows = account.store.page(definition.name, archived=archived, after_id=after, limit=limit + 1)
    body: dict[str, Any] = {
        "results": account.crm.render_many(
            definition,
            rows[:limit],
            properties=ctx.query_list("properties"),
            with_history=history,
            associations=ctx.query_list("associations"),
        )
    }
    if len(rows) > limit:
        cursor = encode_cursor(rows[limit].id)
        body["paging"] = {
            "next": {
                "after": cursor,
                "link": f"{ctx.base_url}/crm/v3/objects/{definition.name}?after={cursor}",
            }
        }
    return Reply(200, body)


def _lookup(account: Account, ctx: Ctx, definition: ObjectTypeDef, *, archived: bool) -> ObjectRow:
    key = ctx.path("object_id")
    row = account.crm.find(definition, key, id_property=ctx.query("idProperty"), archived=archived)
    if row is None:
        raise not_found(key)
    return row


def read_object(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/objects/{type}/{id}``."""
    definition = ctx.object_type()
    row = _lookup(account, ctx, definition, archived=ctx.query_bool("archived", False))
    return Reply(
        200,
        account.crm.render(
            definition,
            row,
            properties=ctx.query_list("properties"),
            with_history=ctx.query_list("propertiesWithHistory"),
            associations=ctx.query_list("associations"),
        ),
    )


def _written(definition: ObjectTypeDef, row: ObjectRow) -> list[str]:
    return sorted({*row.props, *definition.default_properties})


def create_object(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v3/objects/{type}`` → 201."""
    definition = ctx.object_type()
    body = ctx.json_object()
    crm = account.crm
    with account.store.transaction():
        changes = crm.validate(definition, body.get("properties"), None)
        links = crm.validate_associations(definition, body.get("associations"))
        row = crm.create(definition, changes, links)
    return Reply(201, crm.render(definition, row, properties=_written(definition, row)))


def update_object(account: Account, ctx: Ctx) -> Reply:
    """``PATCH /crm/v3/objects/{type}/{id}`` → 200."""
    definition = ctx.object_type()
    body = ctx.json_object()
    crm = account.crm
    with account.store.transaction():
        row = _lookup(account, ctx, definition, archived=False)
        changes = crm.validate(definition, body.get("properties"), row)
        crm.apply(definition, row, changes)
    return Reply(200, crm.render(definition, row, properties=_written(definition, row)))


def archive_object(account: Account, ctx: Ctx) -> Reply:
    """``DELETE /crm/v3/objects/{type}/{id}`` → 204 (also for ids that do not exist)."""
    definition = ctx.object_type()
    key = ctx.path("object_id")
    with account.store.transaction():
        row = account.crm.find(definition, key, id_property=ctx.query("idProperty"))
        if row is not None:
            account.crm.archive(row)
    return Reply(204)


# --------------------------------------------------------------------------- batch


def _input_id(item: Any, index: int) -> str:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        raise validation_error(f"inputs[{index}].id is required.")
    return str(item["id"])


def _no_duplicates(ids: list[str]) -> None:
    duplicates = sorted(value for value, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise validation_error(
            "Duplicate IDs found in batch input: " + ", ".join(duplicates),
            context={"ids": duplicates},
        )


def batch_read(account: Account, ctx: Ctx) -> Reply:
    """``POST …/batch/read`` → 200, or 207 listing ids that were not found."""
    definition = ctx.object_type()
    started = now_iso()
    body = ctx.json_object()
    inputs = batch_inputs(body)
    ids = [_input_id(item, index) for index, item in enumerate(inputs)]
    id_property = body.get("idProperty")
    archived = ctx.query_bool("archived", False)
    rows: list[ObjectRow] = []
    missing: list[str] = []
    errors: list[dict[str, Any]] = []
    for index, key in enumerate(dict.fromkeys(ids)):
        if _fails(ctx, index):
            errors.append(_injected_failure(index, {"ids": [key]}))
            continue
        row = account.crm.find(definition, key, id_property=id_property, archived=archived)
        if row is None:
            missing.append(key)
        else:
            rows.append(row)
    if missing:
        errors.insert(
            0,
            per_record_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {definition.name} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                {"ids": missing},
            ),
        )
    results = account.crm.render_many(
        definition,
        rows,
        properties=body.get("properties") or None,
        with_history=body.get("propertiesWithHistory") or None,
    )
    return batch_reply(results, errors, ok_status=200, started=started)


def batch_create(account: Account, ctx: Ctx) -> Reply:
    """``POST …/batch/create`` → 201; 207 for unique-value conflicts or injected failures.

    Invalid properties anywhere in the batch reject the whole batch with 400, as HubSpot does.
    """
    definition = ctx.object_type()
    started = now_iso()
    inputs = batch_inputs(ctx.json_object())
    crm = account.crm
    created: list[ObjectRow] = []
    errors: list[dict[str, Any]] = []
    with account.store.transaction():
        prepared: list[tuple[int, dict[str, str | None], list[InlineAssociation], str | None]] = []
        for index, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise validation_error(f"inputs[{index}] must be an object.")
            trace = item.get("objectWriteTraceId")
            try:
                changes = crm.validate(definition, item.get("properties"), None)
            except HubSpotError as exc:
                if exc.status_code != 409:
                    raise
                errors.append(_conflict(exc, index, trace))
                continue
            links = crm.validate_associations(definition, item.get("associations"))
            prepared.append((index, changes, links, trace))
        seen_unique: dict[tuple[str, str], int] = {}
        for index, changes, links, trace in prepared:
            trace_ctx = {"objectWriteTraceId": [str(trace)]} if trace else {}
            if _fails(ctx, index):
                errors.append(_injected_failure(index, trace_ctx))
                continue
            clash = _batch_unique_clash(
                crm.unique_properties(definition), changes, seen_unique, index
            )
            if clash:
                errors.append(
                    per_record_error("CONFLICT", clash, {"index": [str(index)], **trace_ctx})
                )
                continue
            created.append(crm.create(definition, changes, links))
    results = [crm.render(definition, row, properties=_written(definition, row)) for row in created]
    return batch_reply(results, errors, ok_status=201, started=started)


def _batch_unique_clash(
    unique: set[str],
    changes: dict[str, str | None],
    seen: dict[tuple[str, str], int],
    index: int,
) -> str | None:
    for name in unique:
        value = changes.get(name)
        if value is None:
            continue
        if (name, value) in seen:
            return f"{name}={value} is used by inputs {seen[(name, value)]} and {index}."
        seen[(name, value)] = index
    return None


def _conflict(exc: HubSpotError, index: int, trace: Any) -> dict[str, Any]:
    context: dict[str, list[str]] = {"index": [str(index)], **(exc.context or {})}
    if trace:
        context["objectWriteTraceId"] = [str(trace)]
    return per_record_error("CONFLICT", exc.message, context)


def batch_update(account: Account, ctx: Ctx) -> Reply:
    """``POST …/batch/update`` → 200; 207 for ids that do not exist (those are skipped)."""
    definition = ctx.object_type()
    started = now_iso()
    inputs = batch_inputs(ctx.json_object())
    ids = [_input_id(item, index) for index, item in enumerate(inputs)]
    _no_duplicates(ids)
    crm = account.crm
    updated: list[ObjectRow] = []
    errors: list[dict[str, Any]] = []
    missing: list[str] = []
    with account.store.transaction():
        plan: list[tuple[ObjectRow, dict[str, str | None]]] = []
        for index, (item, key) in enumerate(zip(inputs, ids, strict=True)):
            row = crm.find(definition, key, id_property=item.get("idProperty"))
            if row is None:
                missing.append(key)
                continue
            try:
                changes = crm.validate(definition, item.get("properties"), row)
            except HubSpotError as exc:
                if exc.status_code != 409:
                    raise
                errors.append(_conflict(exc, index, item.get("objectWriteTraceId")))
                continue
            if _fails(ctx, index):
                errors.append(_injected_failure(index, {"ids": [key]}))
                continue
            plan.append((row, changes))
        for row, changes in plan:
            crm.apply(definition, row, changes)
            updated.append(row)
    if missing:
        errors.insert(
            0,
            per_record_error(
                "OBJECT_NOT_FOUND",
                f"Could not update some {definition.name} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                {"ids": missing},
            ),
        )
    results = [crm.render(definition, row, properties=_written(definition, row)) for row in updated]
    return batch_reply(results, errors, ok_status=200, started=started)


def batch_upsert(account: Account, ctx: Ctx) -> Reply:
    """``POST …/batch/upsert`` by a unique ``idProperty`` → 200, each result with ``new``."""
    definition = ctx.object_type()
    started = now_iso()
    inputs = batch_inputs(ctx.json_object())
    ids = [_input_id(item, index) for index, item in enumerate(inputs)]
    crm = account.crm
    unique = crm.unique_properties(definition)
    for index, item in enumerate(inputs):
        id_property = item.get("idProperty")
        if id_property not in unique:
            raise validation_error(
                f"inputs[{index}].idProperty must name a unique-value property of "
                f"{definition.name}; got {id_property!r}.",
                context={"idProperty": [str(id_property)]},
            )
    _no_duplicates([f"{item['idProperty']}={key}" for item, key in zip(inputs, ids, strict=True)])
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with account.store.transaction():
        plan: list[tuple[ObjectRow | None, dict[str, str | None]]] = []
        for index, (item, key) in enumerate(zip(inputs, ids, strict=True)):
            id_property = str(item["idProperty"])
            row = crm.find(definition, key, id_property=id_property)
            values = dict(item.get("properties") or {})
            values[id_property] = key
            try:
                changes = crm.validate(definition, values, row)
            except HubSpotError as exc:
                if exc.status_code != 409:
                    raise
                errors.append(_conflict(exc, index, item.get("objectWriteTraceId")))
                continue
            if _fails(ctx, index):
                errors.append(_injected_failure(index, {"ids": [key]}))
                continue
            plan.append((row, changes))
        for existing, changes in plan:
            if existing is None:
                row = crm.create(definition, changes)
            else:
                crm.apply(definition, existing, changes)
                row = existing
            result = crm.render(definition, row, properties=_written(definition, row))
            result["new"] = existing is None
            results.append(result)
    return batch_reply(results, errors, ok_status=200, started=started)


def batch_archive(account: Account, ctx: Ctx) -> Reply:
    """``POST …/batch/archive`` → 204 (unknown ids are ignored)."""
    definition = ctx.object_type()
    inputs = batch_inputs(ctx.json_object())
    ids = [_input_id(item, index) for index, item in enumerate(inputs)]
    with account.store.transaction():
        for key in ids:
            row = account.crm.find(definition, key)
            if row is not None:
                account.crm.archive(row)
    return Reply(204)


# --------------------------------------------------------------------------- search


def search_objects(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v3/objects/{type}/search`` (facts B3)."""
    definition = ctx.object_type()
    compiled = compile_search(
        definition,
        account.crm.property_defs(definition),
        ctx.json(),
        visible_before_ms=account.search_visible_before_ms(),
        result_cap=account.options.search_result_cap,
    )
    total, rows = account.store.query_objects(
        compiled.where, compiled.params, compiled.order, compiled.limit, compiled.offset
    )
    body: dict[str, Any] = {
        "total": total,
        "results": account.crm.render_many(
            definition, rows, properties=compiled.properties, with_archived_at=False
        ),
    }
    next_offset = compiled.offset + len(rows)
    if rows and next_offset < total:
        # Keeps pointing past the cap: following it blindly ends in the documented 400.
        body["paging"] = {"next": {"after": str(next_offset)}}
    return Reply(200, body)


OBJECT = "/crm/v3/objects/{object_type}"

ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", OBJECT + "/search", search_objects, "search", limits="search"),
    Endpoint("POST", OBJECT + "/batch/read", batch_read, "batch_read"),
    Endpoint("POST", OBJECT + "/batch/create", batch_create, "batch_create"),
    Endpoint("POST", OBJECT + "/batch/update", batch_update, "batch_update"),
    Endpoint("POST", OBJECT + "/batch/upsert", batch_upsert, "batch_upsert"),
    Endpoint("POST", OBJECT + "/batch/archive", batch_archive, "batch_archive"),
    Endpoint("GET", OBJECT, list_objects, "list"),
    Endpoint("POST", OBJECT, create_object, "create"),
    Endpoint("GET", OBJECT + "/{object_id}", read_object, "read"),
    Endpoint("PATCH", OBJECT + "/{object_id}", update_object, "update"),
    Endpoint("DELETE", OBJECT + "/{object_id}", archive_object, "archive"),
]
