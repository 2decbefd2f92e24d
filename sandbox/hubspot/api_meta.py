"""Pipelines (facts B4), owners and property definitions.

Pipelines are static (``default`` plus one custom pipeline with numeric ids); stage metadata
values are strings. Owners page with an opaque ``after`` like the objects API. The properties
API serves every property the emulator validates against, including the custom unique
``stagelink_event_id`` on notes and tasks, and lets a client create more.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.hubspot.errors import HubSpotError, resource_not_found, validation_error
from sandbox.hubspot.http import Ctx, Endpoint, Reply, decode_cursor, encode_cursor
from sandbox.hubspot.schema import (
    PIPELINES,
    PIPELINES_BY_ID,
    Pipeline,
    PropertyDef,
)
from sandbox.hubspot.store import Owner
from sandbox.hubspot.timeutil import iso_from_ms

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account

OWNERS_MAX = 500
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}


# --------------------------------------------------------------------------- pipelines


def _pipeline_type(ctx: Ctx) -> None:
    definition = ctx.object_type()
    if definition.name != "deals":
        raise validation_error(f"Object type {definition.name} does not have pipelines here.")


def _pipeline(ctx: Ctx) -> Pipeline:
    _pipeline_type(ctx)
    pipeline_id = ctx.path("pipeline_id")
    pipeline = PIPELINES_BY_ID.get(pipeline_id)
    if pipeline is None:
        raise resource_not_found(f"Unable to find pipeline {pipeline_id}.")
    return pipeline


def list_pipelines(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/pipelines/deals`` → ``{"results": [...]}`` (no paging)."""
    _pipeline_type(ctx)
    return Reply(200, {"results": [pipeline.to_json() for pipeline in PIPELINES]})


def read_pipeline(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/pipelines/deals/{pipelineId}``."""
    return Reply(200, _pipeline(ctx).to_json())


def list_stages(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/pipelines/deals/{pipelineId}/stages``."""
    return Reply(200, {"results": [stage.to_json() for stage in _pipeline(ctx).stages]})


def read_stage(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/pipelines/deals/{pipelineId}/stages/{stageId}``."""
    pipeline = _pipeline(ctx)
    stage = pipeline.stage(ctx.path("stage_id"))
    if stage is None:
        raise resource_not_found(f"Unable to find stage {ctx.path('stage_id')} in {pipeline.id}.")
    return Reply(200, stage.to_json())


# --------------------------------------------------------------------------- owners


def owner_json(owner: Owner) -> dict[str, Any]:
    """An owner as ``/crm/v3/owners`` returns it."""
    return {
        "id": str(owner.id),
        "email": owner.email,
        "type": "PERSON",
        "firstName": owner.first_name,
        "lastName": owner.last_name,
        "userId": None if owner.archived else owner.user_id,
        "userIdIncludingInactive": owner.user_id,
        "createdAt": iso_from_ms(owner.created_ms),
        "updatedAt": iso_from_ms(owner.updated_ms),
        "archived": owner.archived,
        "teams": owner.teams,
    }


def list_owners(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/owners/`` with ``email``, ``limit`` (≤500), ``after``, ``archived``."""
    limit = ctx.query_int("limit", 100, maximum=OWNERS_MAX)
    owners = account.store.owners(
        archived=ctx.query_bool("archived", False),
        after_id=decode_cursor(ctx.query("after")),
        limit=limit + 1,
        email=ctx.query("email"),
    )
    body: dict[str, Any] = {"results": [owner_json(owner) for owner in owners[:limit]]}
    if len(owners) > limit:
        cursor = encode_cursor(owners[limit].id)
        body["paging"] = {
            "next": {"after": cursor, "link": f"{ctx.base_url}/crm/v3/owners/?after={cursor}"}
        }
    return Reply(200, body)


def read_owner(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/owners/{ownerId}`` (``idProperty=id|userId``)."""
    key = ctx.path("owner_id")
    id_property = ctx.query("idProperty") or "id"
    if id_property not in ("id", "userId"):
        raise validation_error("idProperty must be id or userId.")
    owner = None
    if key.isdigit():
        found = (
            account.store.owner(int(key))
            if id_property == "id"
            else account.store.owner_by_user_id(int(key))
        )
        if found is not None and found.archived == ctx.query_bool("archived", False):
            owner = found
    if owner is None:
        raise resource_not_found(f"Owner {key} not found.")
    return Reply(200, owner_json(owner))


# --------------------------------------------------------------------------- properties


def _property_json(account: Account, prop: PropertyDef) -> dict[str, Any]:
    options = None
    if prop.dynamic_options:
        owners = account.store.owners(archived=False, after_id=None, limit=10_000, email=None)
        options = [
            (str(owner.id), f"{owner.first_name or ''} {owner.last_name or ''}".strip())
            for owner in owners
        ]
    return prop.to_json(options=options)


def list_properties(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/properties/{objectType}``."""
    definition = ctx.object_type()
    defs = account.crm.property_defs(definition)
    return Reply(200, {"results": [_property_json(account, prop) for prop in defs.values()]})


def read_property(account: Account, ctx: Ctx) -> Reply:
    """``GET /crm/v3/properties/{objectType}/{propertyName}``."""
    definition = ctx.object_type()
    name = ctx.path("property_name")
    prop = account.crm.property_defs(definition).get(name)
    if prop is None:
        raise resource_not_found(f"Unable to find property {name} for {definition.name}.")
    return Reply(200, _property_json(account, prop))


def create_property(account: Account, ctx: Ctx) -> Reply:
    """``POST /crm/v3/properties/{objectType}`` → 201 (409 if the name is taken)."""
    definition = ctx.object_type()
    body = ctx.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not PROPERTY_NAME.match(name):
        raise validation_error("name must be lower-case letters, digits and underscores.")
    for key in ("label", "type", "fieldType", "groupName"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise validation_error(f"{key} is required.")
    if body["type"] not in PROPERTY_TYPES:
        raise validation_error(f"type must be one of {sorted(PROPERTY_TYPES)}.")
    if name in account.crm.property_defs(definition):
        raise HubSpotError(
            409,
            "CONFLICT",
            f"A property named '{name}' already exists.",
            context={"name": [name]},
        )
    options = body.get("options") or []
    if not isinstance(options, list) or not all(
        isinstance(o, dict) and isinstance(o.get("value"), str) for o in options
    ):
        raise validation_error("options must be a list of {label, value}.")
    stored = {
        "name": name,
        "label": body["label"],
        "type": body["type"],
        "fieldType": body["fieldType"],
        "groupName": body["groupName"],
        "description": body.get("description", ""),
        "options": [{"value": o["value"], "label": o.get("label", o["value"])} for o in options],
        "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
    }
    account.store.add_custom_property(definition.name, stored)
    prop = account.crm.property_defs(definition)[name]
    created = _property_json(account, prop)
    created["createdAt"] = created["updatedAt"] = iso_from_ms(account.clock.now_ms())
    return Reply(201, created)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/crm/v3/pipelines/{object_type}", list_pipelines, "pipelines"),
    Endpoint("GET", "/crm/v3/pipelines/{object_type}/{pipeline_id}", read_pipeline, "pipelines"),
    Endpoint(
        "GET", "/crm/v3/pipelines/{object_type}/{pipeline_id}/stages", list_stages, "pipelines"
    ),
    Endpoint(
        "GET",
        "/crm/v3/pipelines/{object_type}/{pipeline_id}/stages/{stage_id}",
        read_stage,
        "pipelines",
    ),
    Endpoint("GET", "/crm/v3/owners/", list_owners, "owners"),
    Endpoint("GET", "/crm/v3/owners", list_owners, "owners"),
    Endpoint("GET", "/crm/v3/owners/{owner_id}", read_owner, "owners"),
    Endpoint("GET", "/crm/v3/properties/{object_type}", list_properties, "properties"),
    Endpoint("POST", "/crm/v3/properties/{object_type}", create_property, "properties"),
    Endpoint(
        "GET", "/crm/v3/properties/{object_type}/{property_name}", read_property, "properties"
    ),
]
