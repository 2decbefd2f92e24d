"""Associations v4 (facts B5): batch read with per-input paging, single reads, default and
labelled creation, batch create / associate-default / archive.

Limits: batch read takes up to 1,000 inputs (HubSpot changelog, Feb 2025); batch create and
archive up to 100 here [limit unconfirmed]. Each input of a batch read returns at most
``association_page_size`` targets (option, default 500) with its own ``paging.next.after``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.hubspot.errors import HubSpotError, validation_error
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
from sandbox.hubspot.schema import (
    ASSOCIATION_TYPES,
    DEFAULT_ASSOCIATION,
    ObjectTypeDef,
)

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account

BATCH_READ_MAX = 1_000
BATCH_WRITE_MAX = 100
SINGLE_READ_MAX = 500


def _types(ctx: Ctx, from_key: str, to_key: str) -> tuple[ObjectTypeDef, ObjectTypeDef]:
    return ctx.object_type(from_key), ctx.object_type(to_key)


def _type_json(type_id: int) -> dict[str, Any]:
    definition = ASSOCIATION_TYPES[type_id]
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": definition.label}


def _live(account: Account, definition: ObjectTypeDef, key: Any) -> int | None:
    text = str(key) if key is not None else ""
    if not text.isdigit():
        return None
    row = account.store.get(definition.name, int(text))
    return None if row is None or row.archived else row.id


def _targets(
    account: Account, source: ObjectTypeDef, from_id: int, target: ObjectTypeDef
) -> list[tuple[int, list[int]]]:
    linked = account.store.associations(source.name, [from_id], target.name).get(from_id, {})
    return sorted(linked.items())


def _page(
    targets: list[tuple[int, list[int]]], after: int | None, size: int
) -> tuple[list[tuple[int, list[int]]], int | None]:
    start = [to_id for to_id, _ in targets]
    begin = 0
    if after is not None:
        begin = next((i for i, to_id in enumerate(start) if to_id >= after), len(start))
    chunk = targets[begin : begin + size]
    following = targets[begin + size] if begin + size < len(targets) else None
    return chunk, None if following is None else following[0]


def batch_read(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v4/associations/{from}/{to}/batch/read`` → 200, or 207 with per-input errors."""
    source, target = _types(ctx, "from_type", "to_type")
    started = now_iso()
    inputs = batch_inputs(ctx.json_object(), maximum=BATCH_READ_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    size = account.options.association_page_size
    for index, item in enumerate(inputs):
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise validation_error(f"inputs[{index}].id is required.")
        key = str(item["id"])
        from_id = _live(account, source, key)
        targets = [] if from_id is None else _targets(account, source, from_id, target)
        if not targets:
            errors.append(
                per_record_error(
                    "OBJECT_NOT_FOUND",
                    f"No {target.singular} is associated with {source.singular} {key}.",
                    {"fromObjectId": [key]},
                )
            )
            continue
        chunk, next_id = _page(targets, decode_cursor(item.get("after")), size)
        result: dict[str, Any] = {
            "from": {"id": key},
            "to": [
                {"toObjectId": to_id, "associationTypes": [_type_json(t) for t in type_ids]}
                for to_id, type_ids in chunk
            ],
        }
        if next_id is not None:
            result["paging"] = {"next": {"after": encode_cursor(next_id)}}
        results.append(result)
    return batch_reply(results, errors, ok_status=200, started=started)


def list_associations(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v4/objects/{type}/{id}/associations/{toType}`` (``limit`` ≤ 500, ``after``)."""
    source, target = _types(ctx, "object_type", "to_type")
    limit = ctx.query_int("limit", SINGLE_READ_MAX, maximum=SINGLE_READ_MAX)
    from_id = _live(account, source, ctx.path("object_id"))
    targets = [] if from_id is None else _targets(account, source, from_id, target)
    chunk, next_id = _page(targets, decode_cursor(ctx.query("after")), limit)
    body: dict[str, Any] = {
        "results": [
            {"toObjectId": to_id, "associationTypes": [_type_json(t) for t in type_ids]}
            for to_id, type_ids in chunk
        ]
    }
    if next_id is not None:
        body["paging"] = {"next": {"after": encode_cursor(next_id)}}
    return Reply(200, body)


def _both(
    account: Account, source: ObjectTypeDef, from_key: Any, target: ObjectTypeDef, to_key: Any
) -> tuple[int, int]:
    from_id = _live(account, source, from_key)
    to_id = _live(account, target, to_key)
    if from_id is None or to_id is None:
        missing = from_key if from_id is None else to_key
        kind = source if from_id is None else target
        raise HubSpotError(
            404,
            "OBJECT_NOT_FOUND",
            f"No {kind.singular} with id {missing} exists.",
            context={"id": [str(missing)]},
        )
    return from_id, to_id


def _default_type(source: ObjectTypeDef, target: ObjectTypeDef) -> int:
    type_id = DEFAULT_ASSOCIATION.get((source.name, target.name))
    if type_id is None:
        raise validation_error(
            f"There is no default association from {source.name} to {target.name}."
        )
    return type_id


def _default_results(
    source: ObjectTypeDef, from_id: int, target: ObjectTypeDef, to_id: int, type_id: int
) -> list[dict[str, Any]]:
    inverse = ASSOCIATION_TYPES[type_id].inverse
    return [
        {
            "from": {"id": str(from_id)},
            "to": {"id": str(to_id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": type_id,
            },
        },
        {
            "from": {"id": str(to_id)},
            "to": {"id": str(from_id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": inverse,
            },
        },
    ]


def create_default(account: Account, ctx: Ctx) -> Reply:
    """``PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}`` → 200."""
    source, target = _types(ctx, "object_type", "to_type")
    started = now_iso()
    type_id = _default_type(source, target)
    with account.store.transaction():
        from_id, to_id = _both(account, source, ctx.path("object_id"), target, ctx.path("to_id"))
        account.crm.associate(source.name, from_id, target.name, to_id, type_id)
    return batch_reply(
        _default_results(source, from_id, target, to_id, type_id),
        [],
        ok_status=200,
        started=started,
    )


def _specs(source: ObjectTypeDef, target: ObjectTypeDef, specs: Any) -> list[int]:
    if not isinstance(specs, list) or not specs:
        raise validation_error("At least one association type is required.")
    type_ids: list[int] = []
    for spec in specs:
        category = spec.get("associationCategory") if isinstance(spec, dict) else None
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        definition = ASSOCIATION_TYPES.get(type_id) if isinstance(type_id, int) else None
        if (
            category != "HUBSPOT_DEFINED"
            or definition is None
            or (definition.from_type, definition.to_type) != (source.name, target.name)
        ):
            raise validation_error(
                f"Association type {category}/{type_id} is not valid from {source.name} to "
                f"{target.name}.",
                context={"associationTypeId": [str(type_id)]},
            )
        type_ids.append(definition.type_id)
    return type_ids


def _labels_json(
    account: Account, source: ObjectTypeDef, from_id: int, target: ObjectTypeDef, to_id: int
) -> dict[str, Any]:
    linked = account.store.associations(source.name, [from_id], target.name)
    type_ids = linked.get(from_id, {}).get(to_id, [])
    return {
        "fromObjectTypeId": source.type_id,
        "fromObjectId": from_id,
        "toObjectTypeId": target.type_id,
        "toObjectId": to_id,
        "labels": [
            label for label in (ASSOCIATION_TYPES[t].label for t in type_ids) if label is not None
        ],
    }


def create_labelled(account: Account, ctx: Ctx) -> Reply:
    """``PUT /crm/v4/objects/{from}/{id}/associations/{to}/{toId}`` with type specs → 201."""
    source, target = _types(ctx, "object_type", "to_type")
    type_ids = _specs(source, target, ctx.json())
    with account.store.transaction():
        from_id, to_id = _both(account, source, ctx.path("object_id"), target, ctx.path("to_id"))
        for type_id in type_ids:
            account.crm.associate(source.name, from_id, target.name, to_id, type_id)
    return Reply(201, _labels_json(account, source, from_id, target, to_id))


def delete_pair(account: Account, ctx: Ctx) -> Reply:
    """``DELETE /crm/v4/objects/{from}/{id}/associations/{to}/{toId}`` → 204 (all types)."""
    source, target = _types(ctx, "object_type", "to_type")
    from_key, to_key = ctx.path("object_id"), ctx.path("to_id")
    if from_key.isdigit() and to_key.isdigit():
        with account.store.transaction():
            account.store.remove_associations(source.name, int(from_key), target.name, int(to_key))
            account.store.remove_associations(target.name, int(to_key), source.name, int(from_key))
    return Reply(204)


def _pair_ids(item: Any, index: int) -> tuple[Any, Any]:
    from_id = item.get("from", {}).get("id") if isinstance(item, dict) else None
    to = item.get("to") if isinstance(item, dict) else None
    to_id = to.get("id") if isinstance(to, dict) else None
    if from_id is None or to_id is None:
        raise validation_error(f"inputs[{index}] needs from.id and to.id.")
    return from_id, to_id


def batch_create(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v4/associations/{from}/{to}/batch/create`` → 201, 207 for missing objects."""
    source, target = _types(ctx, "from_type", "to_type")
    started = now_iso()
    inputs = batch_inputs(ctx.json_object(), maximum=BATCH_WRITE_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with account.store.transaction():
        for index, item in enumerate(inputs):
            from_key, to_key = _pair_ids(item, index)
            type_ids = _specs(source, target, item.get("types"))
            try:
                from_id, to_id = _both(account, source, from_key, target, to_key)
            except HubSpotError as exc:
                errors.append(per_record_error(exc.category, exc.message, exc.context or {}))
                continue
            for type_id in type_ids:
                account.crm.associate(source.name, from_id, target.name, to_id, type_id)
            results.append(_labels_json(account, source, from_id, target, to_id))
    return batch_reply(results, errors, ok_status=201, started=started)


def batch_associate_default(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v4/associations/{from}/{to}/batch/associate/default`` → 200."""
    source, target = _types(ctx, "from_type", "to_type")
    started = now_iso()
    inputs = batch_inputs(ctx.json_object(), maximum=BATCH_WRITE_MAX)
    type_id = _default_type(source, target)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with account.store.transaction():
        for index, item in enumerate(inputs):
            from_key, to_key = _pair_ids(item, index)
            try:
                from_id, to_id = _both(account, source, from_key, target, to_key)
            except HubSpotError as exc:
                errors.append(per_record_error(exc.category, exc.message, exc.context or {}))
                continue
            account.crm.associate(source.name, from_id, target.name, to_id, type_id)
            results.extend(_default_results(source, from_id, target, to_id, type_id))
    return batch_reply(results, errors, ok_status=200, started=started)


def batch_archive(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v4/associations/{from}/{to}/batch/archive`` → 204.

    Inputs: ``{"from": {"id"}, "to": [{"id"}, ...]}``.
    """
    source, target = _types(ctx, "from_type", "to_type")
    inputs = batch_inputs(ctx.json_object(), maximum=BATCH_WRITE_MAX)
    with account.store.transaction():
        for index, item in enumerate(inputs):
            from_key = item.get("from", {}).get("id") if isinstance(item, dict) else None
            targets = item.get("to") if isinstance(item, dict) else None
            if from_key is None or not isinstance(targets, list):
                raise validation_error(f"inputs[{index}] needs from.id and a to array.")
            for entry in targets:
                to_key = str(entry.get("id", "")) if isinstance(entry, dict) else ""
                if str(from_key).isdigit() and to_key.isdigit():
                    account.store.remove_associations(
                        source.name, int(from_key), target.name, int(to_key)
                    )
                    account.store.remove_associations(
                        target.name, int(to_key), source.name, int(from_key)
                    )
    return Reply(204)


V4 = "/crm/v4/associations/{from_type}/{to_type}"
OBJ = "/crm/v4/objects/{object_type}/{object_id}/associations"

ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", V4 + "/batch/read", batch_read, "associations"),
    Endpoint("POST", V4 + "/batch/create", batch_create, "associations"),
    Endpoint("POST", V4 + "/batch/associate/default", batch_associate_default, "associations"),
    Endpoint("POST", V4 + "/batch/archive", batch_archive, "associations"),
    Endpoint("PUT", OBJ + "/default/{to_type}/{to_id}", create_default, "associations"),
    Endpoint("GET", OBJ + "/{to_type}", list_associations, "associations"),
    Endpoint("PUT", OBJ + "/{to_type}/{to_id}", create_labelled, "associations"),
    Endpoint("DELETE", OBJ + "/{to_type}/{to_id}", delete_pair, "associations"),
]
