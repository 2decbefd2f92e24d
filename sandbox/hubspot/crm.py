"""CRM object rules shared by the HTTP API and the Python mutation API.

Writes are validated the way HubSpot validates them (facts B2, B4, B6): unknown or read-only
properties, bad enumeration values, deal stages outside the deal's pipeline, missing
``hs_timestamp`` on notes and tasks, over-long text and duplicate unique values are refused.
Values are stored as the strings HubSpot emits (``"true"``, ``"1000.5"``, ISO datetimes with
milliseconds and ``Z``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.errors import HubSpotError, property_errors, validation_error
from sandbox.hubspot.schema import (
    ASSOCIATION_TYPES,
    OBJECT_TYPES,
    PIPELINES_BY_ID,
    PRIMARY_COMPANION,
    ObjectTypeDef,
    PropertyDef,
    normalize_datetime,
    normalize_number,
    resolve_object_type,
    stage_derived_properties,
)
from sandbox.hubspot.store import HistoryEntry, ObjectRow, Store
from sandbox.hubspot.timeutil import Clock, iso_from_ms, parse_datetime_ms

TEXT_MAX = 65_536  # HubSpot's limit for string property values (and hs_note_body, facts B6)


@dataclass(frozen=True)
class WriteSource:
    """Who changed a value, for property history."""

    source_type: str  # API | CRM_UI | IMPORT | INTEGRATION
    source_id: str | None = None
    user_id: int | None = None


API_SOURCE = WriteSource("API", "sandbox-api")


@dataclass(frozen=True)
class InlineAssociation:
    """One ``associations`` entry of a create request, validated."""

    to_type: str
    to_id: int
    type_id: int


class Crm:
    """Validation, writes and rendering of CRM objects over a :class:`Store`."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------ definitions

    def property_defs(self, definition: ObjectTypeDef) -> dict[str, PropertyDef]:
        """HubSpot-defined plus API-created properties of an object type."""
        defs = dict(definition.properties)
        defs.update(self.store.custom_properties(definition.name))
        return defs

    def unique_properties(self, definition: ObjectTypeDef) -> set[str]:
        """Names usable as ``idProperty``."""
        return {name for name, prop in self.property_defs(definition).items() if prop.unique}

    # ------------------------------------------------------------------ lookups

    def find(
        self,
        definition: ObjectTypeDef,
        key: str,
        *,
        id_property: str | None = None,
        archived: bool = False,
    ) -> ObjectRow | None:
        """An object by id (or by a unique property value), in the wanted archived state."""
        if id_property and id_property != "hs_object_id":
            if id_property not in self.unique_properties(definition):
                raise validation_error(
                    f"Property {id_property} is not a unique identifier property for "
                    f"{definition.name}."
                )
            object_id = self.store.by_unique(definition.name, id_property, key)
            if object_id is None:
                return None
        else:
            if not key.isdigit():
                return None
            object_id = int(key)
        row = self.store.get(definition.name, object_id)
        if row is None or row.archived != archived:
            return None
        return row

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        definition: ObjectTypeDef,
        values: Any,
        existing: ObjectRow | None,
    ) -> dict[str, str | None]:
        """Normalised changes for a create (``existing is None``) or an update; raise 400/409."""
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise validation_error("Invalid input JSON: properties must be an object.")
        defs = self.property_defs(definition)
        owners: set[int] | None = None
        problems: list[dict[str, str]] = []
        changes: dict[str, str | None] = {}
        for name, raw in values.items():
            prop = defs.get(name)
            if prop is None:
                problems.append(
                    _problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if prop.read_only:
                problems.append(
                    _problem(
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            if raw is None or raw == "":
                changes[name] = None
                continue
            if isinstance(raw, bool):
                text = "true" if raw else "false"
            elif isinstance(raw, int | float):
                text = repr(raw) if isinstance(raw, float) else str(raw)
            elif isinstance(raw, str):
                text = raw
            else:
                problems.append(
                    _problem(name, "INVALID_VALUE", f"{raw!r} is not a valid value for {name}.")
                )
                continue
            if prop.dynamic_options:
                owners = self.store.active_owner_ids() if owners is None else owners
                if not text.isdigit() or int(text) not in owners:
                    problems.append(
                        _problem(name, "INVALID_OWNER_ID", f"{text} is not a valid owner id")
                    )
                    continue
                changes[name] = text
                continue
            problem, value = _normalize(prop, text)
            if problem:
                problems.append(_problem(name, problem[0], problem[1]))
                continue
            changes[name] = value
        if existing is None:
            for name in definition.required:
                if changes.get(name) is None:
                    problems.append(_problem(name, "REQUIRED", f"{name} is required"))
        else:
            for name in definition.required:
                if name in changes and changes[name] is None:
                    problems.append(_problem(name, "REQUIRED", f"{name} is required"))
        if definition.name == "deals":
            problems.extend(self._check_stage(changes, existing))
        if problems:
            raise property_errors(problems)
        self._check_unique(definition, defs, changes, existing)
        return changes

    @staticmethod
    def _check_stage(
        changes: dict[str, str | None], existing: ObjectRow | None
    ) -> list[dict[str, str]]:
        current = existing.props if existing else {}
        if existing is None and changes.get("pipeline") is None:
            changes["pipeline"] = "default"  # HubSpot files deals without a pipeline here
        pipeline_id = changes.get("pipeline", current.get("pipeline"))
        if "pipeline" in changes and pipeline_id is None:
            return [_problem("pipeline", "INVALID_OPTION", "pipeline cannot be cleared")]
        stage_id = changes.get("dealstage", current.get("dealstage"))
        if "dealstage" in changes and stage_id is None:
            return [_problem("dealstage", "INVALID_OPTION", "dealstage cannot be cleared")]
        pipeline = PIPELINES_BY_ID.get(pipeline_id or "")
        if pipeline is None:
            return [
                _problem(
                    "pipeline",
                    "INVALID_OPTION",
                    f"{pipeline_id} was not one of the allowed options",
                )
            ]
        if stage_id is not None and pipeline.stage(stage_id) is None:
            return [
                _problem(
                    "dealstage",
                    "INVALID_OPTION",
                    f"{stage_id} is not a valid stage of pipeline {pipeline.id}; allowed: "
                    + ", ".join(stage.id for stage in pipeline.stages),
                )
            ]
        return []

    def _check_unique(
        self,
        definition: ObjectTypeDef,
        defs: dict[str, PropertyDef],
        changes: dict[str, str | None],
        existing: ObjectRow | None,
    ) -> None:
        for name, value in changes.items():
            if value is None or not defs[name].unique:
                continue
            holder = self.store.by_unique(definition.name, name, value)
            if holder is not None and (existing is None or holder != existing.id):
                raise HubSpotError(
                    409,
                    "CONFLICT",
                    f"A {definition.singular} with {name}={value} already exists. "
                    f"Existing ID: {holder}",
                    context={"id": [str(holder)]},
                )

    def validate_associations(
        self, definition: ObjectTypeDef, associations: Any
    ) -> list[InlineAssociation]:
        """Check inline ``associations``: known type ids from this type, live targets."""
        if associations is None:
            return []
        if not isinstance(associations, list):
            raise validation_error("Invalid input JSON: associations must be an array.")
        found: list[InlineAssociation] = []
        for entry in associations:
            to_id = _dig(entry, "to", "id")
            types = entry.get("types") if isinstance(entry, dict) else None
            if to_id is None or not isinstance(types, list) or not types:
                raise validation_error("Each association needs to.id and at least one type.")
            for spec in types:
                category = spec.get("associationCategory") if isinstance(spec, dict) else None
                type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
                assoc = ASSOCIATION_TYPES.get(type_id) if isinstance(type_id, int) else None
                if category != "HUBSPOT_DEFINED" or assoc is None:
                    raise validation_error(
                        f"Association type {category}/{type_id} is not defined.",
                        context={"associationTypeId": [str(type_id)]},
                    )
                if assoc.from_type != definition.name:
                    raise validation_error(
                        f"Association type {type_id} goes from {assoc.from_type} to "
                        f"{assoc.to_type}, not from {definition.name}.",
                        context={"associationTypeId": [str(type_id)]},
                    )
                target = str(to_id)
                row = self.store.get(assoc.to_type, int(target)) if target.isdigit() else None
                if row is None or row.archived:
                    raise validation_error(
                        f"Could not create association: {OBJECT_TYPES[assoc.to_type].singular} "
                        f"{target} does not exist.",
                        context={"toObjectId": [target]},
                    )
                found.append(InlineAssociation(assoc.to_type, int(target), assoc.type_id))
        return found

    # ------------------------------------------------------------------ writes

    def create(
        self,
        definition: ObjectTypeDef,
        changes: dict[str, str | None],
        associations: Sequence[InlineAssociation] = (),
        *,
        source: WriteSource = API_SOURCE,
        now_ms: int | None = None,
    ) -> ObjectRow:
        """Insert a validated new object (inside the caller's transaction)."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        row = ObjectRow(
            object_type=definition.name,
            id=self.store.next_id(definition.name),
            created_ms=now,
            updated_ms=now,
            archived=False,
            archived_ms=None,
            props={},
        )
        self.store.insert(row)
        self.apply(definition, row, changes, source=source, now_ms=now, creating=True)
        for link in associations:
            self.associate(definition.name, row.id, link.to_type, link.to_id, link.type_id)
        return row

    def apply(
        self,
        definition: ObjectTypeDef,
        row: ObjectRow,
        changes: dict[str, str | None],
        *,
        source: WriteSource = API_SOURCE,
        now_ms: int | None = None,
        creating: bool = False,
    ) -> list[str]:
        """Write validated changes, derived deal properties and history; returns changed names."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        defs = self.property_defs(definition)
        changed: list[tuple[str, str | None]] = []
        for name, value in changes.items():
            if name == definition.created_property:
                if value is not None:
                    row.created_ms = parse_datetime_ms(value)
                changed.append((name, value))
                continue
            if row.props.get(name) == value and not creating:
                continue
            if value is None:
                row.props.pop(name, None)
            else:
                row.props[name] = value
            changed.append((name, value))
            if defs[name].unique:
                self.store.set_unique(definition.name, name, value, row.id)
        if definition.name == "deals" and any(name == "dealstage" for name, _ in changed):
            stage = PIPELINES_BY_ID[row.props["pipeline"]].stage(row.props["dealstage"])
            stamp = iso_from_ms(now)
            row.props[f"hs_date_entered_{row.props['dealstage']}"] = stamp
            row.props[f"hs_v2_date_entered_{row.props['dealstage']}"] = stamp
            for key, value in stage_derived_properties(stage).items():
                if value is not None:
                    row.props[key] = value
            if stage is not None and stage.is_closed and not row.props.get("closedate"):
                row.props["closedate"] = stamp
        row.updated_ms = now
        self.store.save(row)
        self.store.add_history(
            definition.name,
            row.id,
            changed,
            ts_ms=now,
            source_type=source.source_type,
            source_id=source.source_id,
            user_id=source.user_id,
        )
        return [name for name, _ in changed]

    def archive(self, row: ObjectRow, *, now_ms: int | None = None) -> None:
        """Archive (soft-delete). ``hs_lastmodifieddate`` is deliberately left unchanged."""
        if row.archived:
            return
        row.archived = True
        row.archived_ms = self.clock.now_ms() if now_ms is None else now_ms
        self.store.save(row)
        self.store.drop_uniques_of(row.object_type, row.id)

    def associate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int
    ) -> None:
        """Store an association and its inverse (a primary one brings its unlabelled twin)."""
        assoc = ASSOCIATION_TYPES[type_id]
        if assoc.label == "Primary":
            # Only one primary company: moving it removes the old primary pair.
            for previous in self.store.associations(from_type, [from_id], to_type).get(from_id, {}):
                self.store.remove_associations(from_type, from_id, to_type, previous, type_id)
                self.store.remove_associations(to_type, previous, from_type, from_id, assoc.inverse)
        type_ids = [type_id]
        if type_id in PRIMARY_COMPANION:
            type_ids.append(PRIMARY_COMPANION[type_id])
        for current in type_ids:
            self.store.add_association(from_type, from_id, to_type, to_id, current)
            self.store.add_association(
                to_type, to_id, from_type, from_id, ASSOCIATION_TYPES[current].inverse
            )

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def value_of(definition: ObjectTypeDef, row: ObjectRow, name: str) -> str | None:
        """A property's current value as the API shows it."""
        if name == definition.created_property:
            return iso_from_ms(row.created_ms)
        if name == definition.modified_property:
            return iso_from_ms(row.updated_ms)
        if name == "hs_object_id":
            return str(row.id)
        return row.props.get(name)

    def render_many(
        self,
        definition: ObjectTypeDef,
        rows: Sequence[ObjectRow],
        *,
        properties: Sequence[str] | None = None,
        with_history: Sequence[str] | None = None,
        associations: Sequence[str] | None = None,
        with_archived_at: bool = True,
    ) -> list[dict[str, Any]]:
        """API representations of several objects (one history/association query per page)."""
        defs = self.property_defs(definition)
        wanted = list(properties) if properties else list(definition.default_properties)
        always = [definition.created_property, definition.modified_property, "hs_object_id"]
        names = [name for name in dict.fromkeys([*wanted, *always]) if name in defs]
        history_names = [name for name in dict.fromkeys(with_history or []) if name in defs]
        ids = [row.id for row in rows]
        history = self.store.history(definition.name, ids, history_names) if history_names else {}
        linked: dict[str, dict[int, dict[int, list[int]]]] = {}
        for to_name in dict.fromkeys(associations or []):
            target = resolve_object_type(to_name)
            if target is not None:
                linked[to_name] = self.store.associations(definition.name, ids, target.name)
        rendered: list[dict[str, Any]] = []
        for row in rows:
            body: dict[str, Any] = {
                "id": str(row.id),
                "properties": {name: self.value_of(definition, row, name) for name in names},
                "createdAt": iso_from_ms(row.created_ms),
                "updatedAt": iso_from_ms(row.updated_ms),
                "archived": row.archived,
            }
            if row.archived and row.archived_ms is not None and with_archived_at:
                body["archivedAt"] = iso_from_ms(row.archived_ms)
            if history_names:
                body["propertiesWithHistory"] = {
                    name: self._history_json(definition, row, name, history.get((row.id, name)))
                    for name in history_names
                }
            blocks: dict[str, Any] = {}
            for to_name, by_id in linked.items():
                results = [
                    {"id": str(to_id), "type": ASSOCIATION_TYPES[type_id].v3_name}
                    for to_id, type_ids in by_id.get(row.id, {}).items()
                    for type_id in type_ids
                ]
                if results:
                    blocks[to_name] = {"results": results}
            if blocks:
                body["associations"] = blocks
            rendered.append(body)
        return rendered

    def render(self, definition: ObjectTypeDef, row: ObjectRow, **kwargs: Any) -> dict[str, Any]:
        """API representation of one object."""
        return self.render_many(definition, [row], **kwargs)[0]

    def _history_json(
        self,
        definition: ObjectTypeDef,
        row: ObjectRow,
        name: str,
        entries: list[HistoryEntry] | None,
    ) -> list[dict[str, Any]]:
        if not entries:
            value = self.value_of(definition, row, name)
            if value is None:
                return []
            # Seeded values without recorded history: one entry, set when the record was made.
            entries = [HistoryEntry(value, row.created_ms, "CRM_UI", None, None)]
        out: list[dict[str, Any]] = []
        for entry in entries:
            item: dict[str, Any] = {
                "value": entry.value if entry.value is not None else "",
                "timestamp": iso_from_ms(entry.ts_ms),
                "sourceType": entry.source_type,
            }
            if entry.source_id is not None:
                item["sourceId"] = entry.source_id
            if entry.user_id is not None:
                item["updatedByUserId"] = entry.user_id
            out.append(item)
        return out

    def full_json(self, definition: ObjectTypeDef, row: ObjectRow) -> dict[str, Any]:
        """Every property with a value (inspection API and admin endpoint)."""
        names = sorted(
            {*row.props, definition.created_property, definition.modified_property, "hs_object_id"}
        )
        return self.render(definition, row, properties=names)


def _problem(name: str, error: str, message: str) -> dict[str, str]:
    return {"name": name, "error": error, "message": message}


def _normalize(prop: PropertyDef, text: str) -> tuple[tuple[str, str] | None, str | None]:
    """(problem, normalised value) for one non-empty value."""
    if prop.type == "number":
        try:
            return None, normalize_number(text)
        except ValueError:
            return ("INVALID_FLOAT", f"{text} was not a valid number."), None
    if prop.type in ("datetime", "date"):
        try:
            return None, normalize_datetime(text)
        except (ValueError, OverflowError):
            return (
                "INVALID_DATE",
                f"{text} was not a valid date or datetime; use epoch milliseconds or ISO 8601.",
            ), None
    if prop.type == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            return ("INVALID_BOOLEAN", f"{text} was not a valid boolean."), None
        return None, lowered
    if prop.type == "enumeration":
        allowed = [value for value, _ in prop.options]
        if text not in allowed:
            return (
                "INVALID_OPTION",
                f"{text} was not one of the allowed options: [" + ", ".join(allowed) + "]",
            ), None
        return None, text
    if len(text) > TEXT_MAX:
        return (
            "INVALID_LENGTH",
            f"Value for {prop.name} is {len(text)} characters long; the maximum is {TEXT_MAX}.",
        ), None
    return None, text


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
