"""Timeline events and templates, the app-partner API the library 12.x speaks (facts B7).

* Events need an OAuth access token of the app's install (``auth_settings=["oauth2"]``); a
  private-app token gets 403. Templates use the developer key as ``?hapikey=``.
* An event must name an existing template of this app and a live object of the template's
  type; every token must be declared by the template and match its type (number, date,
  enumeration option). Token values come back as strings.
* ``id`` reuse: on a different object the last write wins (documented); on the same object
  the ``duplicate_timeline_event_id`` option decides — 409 ``conflict`` (default), ``ignore``
  (201 echoing the stored event) or ``overwrite``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sandbox.hubspot.errors import HubSpotError, resource_not_found, validation_error
from sandbox.hubspot.http import (
    Ctx,
    Endpoint,
    Reply,
    batch_inputs,
    batch_reply,
    now_iso,
    per_record_error,
)
from sandbox.hubspot.schema import normalize_number, resolve_object_type
from sandbox.hubspot.timeutil import iso_from_ms, parse_datetime_ms

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account

BATCH_MAX = 100


def _template_for_app(account: Account, template_id: str) -> dict[str, Any]:
    found = account.store.template(template_id)
    if found is None or found[0] != account.credentials.app_id:
        raise resource_not_found(f"Event template {template_id} not found for this app.")
    return found[1]


def _token_value(token: dict[str, Any], value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    kind = token["type"]
    if kind == "number":
        return normalize_number(text)
    if kind == "date":
        return str(parse_datetime_ms(text))
    if kind == "enumeration":
        allowed = [option["value"] for option in token.get("options", [])]
        if text not in allowed:
            raise ValueError(f"{text} is not one of {allowed}")
    return text


def _prepare(account: Account, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation_error("Each timeline event must be an object.")
    template_id = str(body.get("eventTemplateId") or "")
    if not template_id:
        raise validation_error("eventTemplateId is required.")
    template = _template_for_app(account, template_id)
    definition = resolve_object_type(template["objectType"])
    object_id = str(body.get("objectId") or "")
    row = (
        account.store.get(definition.name, int(object_id))
        if definition is not None and object_id.isdigit()
        else None
    )
    if definition is None or row is None or row.archived:
        raise HubSpotError(
            404,
            "OBJECT_NOT_FOUND",
            f"objectId {object_id or '(missing)'} is not a {template['objectType']} record.",
            context={"objectId": [object_id]},
        )
    declared = {token["name"]: token for token in template.get("tokens", [])}
    raw_tokens = body.get("tokens") or {}
    if not isinstance(raw_tokens, dict):
        raise validation_error("tokens must be an object.")
    tokens: dict[str, str] = {}
    problems: list[str] = []
    for name, value in raw_tokens.items():
        token = declared.get(name)
        if token is None:
            problems.append(f"Token {name} is not defined on template {template_id}.")
            continue
        try:
            tokens[name] = _token_value(token, value)
        except (ValueError, OverflowError) as exc:
            problems.append(f"Invalid value for token {name} ({token['type']}): {exc}")
    if problems:
        raise validation_error(
            " ".join(problems),
            errors=[{"message": problem, "code": "INVALID_TOKEN"} for problem in problems],
        )
    now = account.clock.now_ms()
    timestamp = body.get("timestamp")
    try:
        stamp = iso_from_ms(parse_datetime_ms(str(timestamp))) if timestamp else iso_from_ms(now)
    except ValueError:
        raise validation_error(f"Invalid timestamp {timestamp!r}.") from None
    event: dict[str, Any] = {
        "id": str(body.get("id") or uuid.uuid4()),
        "eventTemplateId": template_id,
        "objectId": object_id,
        "objectType": definition.name,
        "tokens": tokens,
        "timestamp": stamp,
        "createdAt": iso_from_ms(now),
    }
    for key in ("extraData", "timelineIFrame"):
        if body.get(key) is not None:
            event[key] = body[key]
    return event


def _store_event(account: Account, event: dict[str, Any]) -> dict[str, Any]:
    """Save an event, applying the duplicate-id policy; returns what the API echoes."""
    existing = account.store.timeline_event(event["eventTemplateId"], event["id"])
    if existing is not None and existing["objectId"] == event["objectId"]:
        policy = account.options.duplicate_timeline_event_id
        if policy == "conflict":
            raise HubSpotError(
                409,
                "CONFLICT",
                f"An event with id {event['id']} already exists for template "
                f"{event['eventTemplateId']}.",
                context={"id": [event["id"]]},
            )
        if policy == "ignore":
            return existing
    account.store.save_timeline_event(event["eventTemplateId"], event["id"], event)
    return event


def create_event(account: Account, ctx: Ctx) -> Reply:
    """``POST /integrators/timeline/v3/events`` → 201."""
    with account.store.transaction():
        event = _store_event(account, _prepare(account, ctx.json()))
    return Reply(201, event)


def batch_create_events(account: Account, ctx: Ctx) -> Reply:
    """``POST /integrators/timeline/v3/events/batch/create`` → 201, 207 on per-event errors."""
    started = now_iso()
    inputs = batch_inputs(ctx.json_object(), maximum=BATCH_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with account.store.transaction():
        for index, item in enumerate(inputs):
            try:
                results.append(_store_event(account, _prepare(account, item)))
            except HubSpotError as exc:
                context = {"index": [str(index)], **(exc.context or {})}
                errors.append(per_record_error(exc.category, exc.message, context))
    return batch_reply(results, errors, ok_status=201, started=started)


def read_event(account: Account, ctx: Ctx) -> Reply:
    """``GET /integrators/timeline/v3/events/{eventTemplateId}/{eventId}``."""
    event = account.store.timeline_event(ctx.path("template_id"), ctx.path("event_id"))
    if event is None:
        raise resource_not_found(f"Event {ctx.path('event_id')} not found.")
    return Reply(200, event)


# --------------------------------------------------------------------------- templates


def _app(account: Account, ctx: Ctx) -> int:
    app_id = ctx.path("app_id")
    if app_id != str(account.credentials.app_id):
        raise resource_not_found(f"App {app_id} not found for this developer key.")
    return account.credentials.app_id


def list_templates(account: Account, ctx: Ctx) -> Reply:
    """``GET /integrators/timeline/v3/{appId}/event-templates``."""
    return Reply(200, {"results": account.store.templates(_app(account, ctx))})


def read_template(account: Account, ctx: Ctx) -> Reply:
    """``GET /integrators/timeline/v3/{appId}/event-templates/{eventTemplateId}``."""
    _app(account, ctx)
    return Reply(200, _template_for_app(account, ctx.path("template_id")))


def create_template(account: Account, ctx: Ctx) -> Reply:
    """``POST /integrators/timeline/v3/{appId}/event-templates`` → 201."""
    app_id = _app(account, ctx)
    body = ctx.json_object()
    object_type = resolve_object_type(str(body.get("objectType", "")))
    if not body.get("name") or object_type is None:
        raise validation_error("name and a valid objectType are required.")
    tokens = body.get("tokens") or []
    if not isinstance(tokens, list) or any(
        not isinstance(t, dict) or t.get("type") not in ("date", "enumeration", "number", "string")
        for t in tokens
    ):
        raise validation_error("tokens must have a type of date, enumeration, number or string.")
    stamp = iso_from_ms(account.clock.now_ms())
    template = {
        "id": str(2_000_000 + len(account.store.templates(app_id)) + 1),
        "name": body["name"],
        "objectType": object_type.name,
        "headerTemplate": body.get("headerTemplate"),
        "detailTemplate": body.get("detailTemplate"),
        "tokens": [{**token, "createdAt": stamp, "updatedAt": stamp} for token in tokens],
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    account.store.save_template(app_id, template)
    return Reply(201, template)


def delete_template(account: Account, ctx: Ctx) -> Reply:
    """``DELETE /integrators/timeline/v3/{appId}/event-templates/{eventTemplateId}`` → 204."""
    _app(account, ctx)
    _template_for_app(account, ctx.path("template_id"))
    account.store.delete_template(ctx.path("template_id"))
    return Reply(204)


EVENTS = "/integrators/timeline/v3/events"
TEMPLATES = "/integrators/timeline/v3/{app_id}/event-templates"

ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", EVENTS + "/batch/create", batch_create_events, "timeline", auth="oauth"),
    Endpoint("POST", EVENTS, create_event, "timeline", auth="oauth"),
    Endpoint("GET", EVENTS + "/{template_id}/{event_id}", read_event, "timeline", auth="oauth"),
    Endpoint("GET", TEMPLATES, list_templates, "timeline_templates", auth="hapikey"),
    Endpoint("POST", TEMPLATES, create_template, "timeline_templates", auth="hapikey"),
    Endpoint(
        "GET", TEMPLATES + "/{template_id}", read_template, "timeline_templates", auth="hapikey"
    ),
    Endpoint(
        "DELETE",
        TEMPLATES + "/{template_id}",
        delete_template,
        "timeline_templates",
        auth="hapikey",
    ),
]
