"""Static shape of the emulated HubSpot account: object types, properties, pipelines, associations.

Everything here follows ``crm-api-facts.md`` Part B (B2 objects, B4 pipelines and properties,
B5 association type ids, B6 engagements). Bump :data:`SCHEMA_VERSION` whenever this module or
the seed generator changes what a seeded database contains; cached seeds are keyed on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot.timeutil import iso_from_ms, parse_datetime_ms

SCHEMA_VERSION = 1

# When the account's "HubSpot-defined" things were created (fixed, so output is reproducible).
DEFINITIONS_CREATED_AT = "2023-03-01T12:00:00.000Z"


# --------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class PropertyDef:
    """One property definition as served by ``/crm/v3/properties/{objectType}``."""

    name: str
    label: str
    type: str  # string | number | datetime | date | enumeration | bool
    field_type: (
        str  # text | textarea | number | date | select | booleancheckbox | calculation_equation
    )
    group: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    read_only: bool = False  # the API refuses writes (calculated or system-maintained)
    calculated: bool = False
    unique: bool = False  # hasUniqueValue: usable as idProperty
    hubspot_defined: bool = True
    description: str = ""
    dynamic_options: bool = False  # options come from live data (owners), not from ``options``

    def to_json(self, *, options: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """The property the way the properties API returns it."""
        opts = list(self.options) if options is None else options
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [
                {
                    "label": label,
                    "value": value,
                    "displayOrder": index,
                    "hidden": False,
                    "description": "",
                }
                for index, (value, label) in enumerate(opts)
            ],
            "displayOrder": -1,
            "calculated": self.calculated,
            "externalOptions": self.dynamic_options,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "formField": not self.read_only,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "createdAt": DEFINITIONS_CREATED_AT,
            "updatedAt": DEFINITIONS_CREATED_AT,
            "archived": False,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body


def _p(
    name: str,
    label: str,
    type_: str = "string",
    field_type: str = "text",
    group: str = "",
    **kwargs: Any,
) -> PropertyDef:
    return PropertyDef(
        name=name, label=label, type=type_, field_type=field_type, group=group, **kwargs
    )


def _dt(name: str, label: str, group: str, **kwargs: Any) -> PropertyDef:
    return _p(name, label, "datetime", "date", group, **kwargs)


def _num(name: str, label: str, group: str, **kwargs: Any) -> PropertyDef:
    return _p(name, label, "number", "number", group, **kwargs)


def _enum(
    name: str, label: str, group: str, options: list[tuple[str, str]], **kwargs: Any
) -> PropertyDef:
    return _p(name, label, "enumeration", "select", group, options=tuple(options), **kwargs)


def _bool(name: str, label: str, group: str, **kwargs: Any) -> PropertyDef:
    return _p(
        name,
        label,
        "bool",
        "booleancheckbox",
        group,
        options=(("true", "True"), ("false", "False")),
        **kwargs,
    )


def _object_id() -> PropertyDef:
    return _num("hs_object_id", "Record ID", "", read_only=True)


def _owner(group: str) -> PropertyDef:
    return _p(
        "hubspot_owner_id",
        "Owner",
        "enumeration",
        "select",
        group,
        dynamic_options=True,
    )


INDUSTRIES: list[tuple[str, str]] = [
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("BANKING", "Banking"),
    ("INSURANCE", "Insurance"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"),
    ("PHARMACEUTICALS", "Pharmaceuticals"),
    ("AUTOMOTIVE", "Automotive"),
    ("HIGHER_EDUCATION", "Higher Education"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("REAL_ESTATE", "Real Estate"),
    ("RETAIL", "Retail"),
    ("CONSTRUCTION", "Construction"),
    ("UTILITIES", "Utilities"),
    ("OIL_ENERGY", "Oil & Energy"),
    ("FOOD_BEVERAGES", "Food & Beverages"),
    ("BIOTECHNOLOGY", "Biotechnology"),
    ("MEDICAL_DEVICES", "Medical Devices"),
    ("INTERNET", "Internet"),
    ("COMPUTER_HARDWARE", "Computer Hardware"),
    ("MACHINERY", "Machinery"),
]

CURRENCIES: list[tuple[str, str]] = [
    ("USD", "US Dollar"),
    ("EUR", "Euro"),
    ("GBP", "British Pound"),
    ("CAD", "Canadian Dollar"),
    ("AUD", "Australian Dollar"),
    ("JPY", "Japanese Yen"),
    ("CHF", "Swiss Franc"),
    ("SEK", "Swedish Krona"),
]

LIFECYCLE_STAGES: list[tuple[str, str]] = [
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
]

# facts B6: NOT_STARTED/COMPLETED documented; the others exist [unconfirmed] and are accepted.
TASK_STATUSES = ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]
TASK_PRIORITIES = ["LOW", "MEDIUM", "HIGH"]
TASK_TYPES = ["EMAIL", "CALL", "TODO"]

NOTE_BODY_MAX = 65_536  # facts B6


# --------------------------------------------------------------------------- pipelines


@dataclass(frozen=True)
class Stage:
    """A deal stage: id, label, order, probability and whether it closes the deal."""

    id: str
    label: str
    display_order: int
    probability: str  # a string, as HubSpot's metadata is dict[str, str]
    is_closed: bool

    @property
    def is_won(self) -> bool:
        """Closed with probability 1.0 counts as won (HubSpot's own rule for hs_is_closed_won)."""
        return self.is_closed and float(self.probability) >= 1.0

    def to_json(self) -> dict[str, Any]:
        """Stage as served by the pipelines API (metadata values are strings)."""
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": {
                "isClosed": "true" if self.is_closed else "false",
                "probability": self.probability,
            },
            "archived": False,
            "createdAt": DEFINITIONS_CREATED_AT,
            "updatedAt": DEFINITIONS_CREATED_AT,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }


@dataclass(frozen=True)
class Pipeline:
    """A deal pipeline with its ordered stages."""

    id: str
    label: str
    display_order: int
    stages: tuple[Stage, ...]

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """Stages that do not close the deal, in order."""
        return tuple(stage for stage in self.stages if not stage.is_closed)

    @property
    def won_stage(self) -> Stage:
        """The closed-won stage."""
        return next(stage for stage in self.stages if stage.is_won)

    @property
    def lost_stage(self) -> Stage:
        """The closed-lost stage."""
        return next(stage for stage in self.stages if stage.is_closed and not stage.is_won)

    def stage(self, stage_id: str) -> Stage | None:
        """The stage with this id in this pipeline, if any."""
        return next((stage for stage in self.stages if stage.id == stage_id), None)

    def to_json(self) -> dict[str, Any]:
        """Pipeline as served by ``/crm/v3/pipelines/deals``."""
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": False,
            "createdAt": DEFINITIONS_CREATED_AT,
            "updatedAt": DEFINITIONS_CREATED_AT,
            "stages": [stage.to_json() for stage in self.stages],
        }


# facts B4: the default pipeline's seven stages (ids, labels, probabilities).
DEFAULT_PIPELINE = Pipeline(
    id="default",
    label="Sales Pipeline",
    display_order=0,
    stages=(
        Stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2", False),
        Stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4", False),
        Stage("presentationscheduled", "Presentation Scheduled", 2, "0.6", False),
        Stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8", False),
        Stage("contractsent", "Contract Sent", 4, "0.9", False),
        Stage("closedwon", "Closed Won", 5, "1.0", True),
        Stage("closedlost", "Closed Lost", 6, "0.0", True),
    ),
)

# A custom pipeline: HubSpot gives custom pipelines and stages numeric-string ids.
ENTERPRISE_PIPELINE = Pipeline(
    id="2871935",
    label="Enterprise Pipeline",
    display_order=1,
    stages=(
        Stage("2871936", "Discovery", 0, "0.1", False),
        Stage("2871937", "Technical Evaluation", 1, "0.3", False),
        Stage("2871938", "Proposal", 2, "0.5", False),
        Stage("2871939", "Negotiation", 3, "0.75", False),
        Stage("2871940", "Closed Won", 4, "1.0", True),
        Stage("2871941", "Closed Lost", 5, "0.0", True),
    ),
)

PIPELINES: tuple[Pipeline, ...] = (DEFAULT_PIPELINE, ENTERPRISE_PIPELINE)
PIPELINES_BY_ID: dict[str, Pipeline] = {pipeline.id: pipeline for pipeline in PIPELINES}
ALL_STAGES: tuple[Stage, ...] = tuple(stage for p in PIPELINES for stage in p.stages)


def stage_derived_properties(stage: Stage | None) -> dict[str, str | None]:
    """Calculated deal properties that follow from the stage (hs_is_closed, ...)."""
    if stage is None:
        return {"hs_is_closed": None, "hs_is_closed_won": None, "hs_deal_stage_probability": None}
    return {
        "hs_is_closed": "true" if stage.is_closed else "false",
        "hs_is_closed_won": "true" if stage.is_won else "false",
        "hs_deal_stage_probability": stage.probability,
    }


# --------------------------------------------------------------------------- object types


@dataclass(frozen=True)
class ObjectTypeDef:
    """One CRM object type the emulator serves."""

    name: str  # plural API name, e.g. "deals"
    singular: str  # e.g. "deal" (used in v3 association type names)
    type_id: str  # e.g. "0-3" (v4 responses, and accepted in paths)
    id_base: int  # first seeded id; ids are numeric strings in the API
    created_property: str
    modified_property: str
    default_properties: tuple[str, ...]
    searchable: tuple[str, ...]  # properties the free-text search ``query`` looks at
    required: tuple[str, ...]
    properties: dict[str, PropertyDef] = field(default_factory=dict)


def _props(*defs: PropertyDef) -> dict[str, PropertyDef]:
    return {definition.name: definition for definition in defs}


def _stage_date_props() -> list[PropertyDef]:
    defs: list[PropertyDef] = []
    for stage in ALL_STAGES:
        defs.append(
            _dt(
                f"hs_date_entered_{stage.id}",
                f"Date entered '{stage.label}'",
                "dealinformation",
                read_only=True,
                calculated=True,
            )
        )
        defs.append(
            _dt(
                f"hs_v2_date_entered_{stage.id}",
                f"Date entered '{stage.label}' (v2)",
                "dealinformation",
                read_only=True,
                calculated=True,
            )
        )
    return defs


DEALS = ObjectTypeDef(
    name="deals",
    singular="deal",
    type_id="0-3",
    id_base=30_000_000_001,
    created_property="createdate",
    modified_property="hs_lastmodifieddate",
    # facts B2 (list itself unconfirmed)
    default_properties=(
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    searchable=("dealname",),
    required=(),
    properties=_props(
        _p("dealname", "Deal Name", group="dealinformation"),
        _enum(
            "dealstage",
            "Deal Stage",
            "dealinformation",
            [(stage.id, stage.label) for stage in ALL_STAGES],
        ),
        _enum("pipeline", "Pipeline", "dealinformation", [(p.id, p.label) for p in PIPELINES]),
        _num("amount", "Amount", "dealinformation"),
        _dt("closedate", "Close Date", "dealinformation"),
        _dt("createdate", "Create Date", "dealinformation"),
        _dt("hs_lastmodifieddate", "Last Modified Date", "dealinformation", read_only=True),
        _owner("dealinformation"),
        _enum(
            "dealtype",
            "Deal Type",
            "dealinformation",
            [("newbusiness", "New Business"), ("existingbusiness", "Existing Business")],
        ),
        _bool(
            "hs_is_closed", "Is Deal Closed?", "dealinformation", read_only=True, calculated=True
        ),
        _bool(
            "hs_is_closed_won", "Is Closed Won", "dealinformation", read_only=True, calculated=True
        ),
        _num(
            "hs_deal_stage_probability",
            "Deal Stage Probability",
            "dealinformation",
            read_only=True,
            calculated=True,
        ),
        _enum("deal_currency_code", "Currency", "dealinformation", CURRENCIES),
        _p("description", "Deal Description", "string", "textarea", "dealinformation"),
        _object_id(),
        *_stage_date_props(),
    ),
)

COMPANIES = ObjectTypeDef(
    name="companies",
    singular="company",
    type_id="0-2",
    id_base=20_000_000_001,
    created_property="createdate",
    modified_property="hs_lastmodifieddate",
    default_properties=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    searchable=("name", "domain", "phone", "website"),
    required=(),
    properties=_props(
        _p("name", "Company name", group="companyinformation"),
        _p("domain", "Company Domain Name", group="companyinformation"),
        _p("website", "Website URL", group="companyinformation"),
        _p("phone", "Phone Number", group="companyinformation"),
        _enum("industry", "Industry", "companyinformation", INDUSTRIES),
        _p("country", "Country/Region", group="companyinformation"),
        _p("city", "City", group="companyinformation"),
        _num("numberofemployees", "Number of Employees", "companyinformation"),
        _num("annualrevenue", "Annual Revenue", "companyinformation"),
        _p("description", "Description", "string", "textarea", "companyinformation"),
        _owner("companyinformation"),
        _dt("createdate", "Create Date", "companyinformation"),
        _dt("hs_lastmodifieddate", "Last Modified Date", "companyinformation", read_only=True),
        _object_id(),
    ),
)

CONTACTS = ObjectTypeDef(
    name="contacts",
    singular="contact",
    type_id="0-1",
    id_base=10_000_000_001,
    created_property="createdate",
    modified_property="lastmodifieddate",  # facts B3: contacts use lastmodifieddate
    default_properties=(
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    searchable=("firstname", "lastname", "email", "phone", "company"),
    required=(),
    properties=_props(
        _p("firstname", "First Name", group="contactinformation"),
        _p("lastname", "Last Name", group="contactinformation"),
        _p("email", "Email", group="contactinformation", unique=True),
        _p("phone", "Phone Number", group="contactinformation"),
        _p("company", "Company Name", group="contactinformation"),
        _p("jobtitle", "Job Title", group="contactinformation"),
        _enum("lifecyclestage", "Lifecycle Stage", "contactinformation", LIFECYCLE_STAGES),
        _owner("contactinformation"),
        _dt("createdate", "Create Date", "contactinformation"),
        _dt("lastmodifieddate", "Last Modified Date", "contactinformation", read_only=True),
        _object_id(),
    ),
)


def _event_id_property() -> PropertyDef:
    # The custom unique property stagelink writes so batch upsert makes writeback idempotent.
    return _p(
        "stagelink_event_id",
        "stagelink event id",
        group="stagelink",
        unique=True,
        hubspot_defined=False,
        description="Usage event id written by stagelink; unique, used as idProperty for upserts.",
    )


NOTES = ObjectTypeDef(
    name="notes",
    singular="note",
    type_id="0-46",
    id_base=40_000_000_001,
    created_property="hs_createdate",
    modified_property="hs_lastmodifieddate",
    default_properties=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    searchable=("hs_note_body",),
    required=("hs_timestamp",),  # facts B6
    properties=_props(
        _dt("hs_timestamp", "Activity date", "engagement"),
        _p("hs_note_body", "Note body", "string", "textarea", "engagement"),
        _p("hs_attachment_ids", "Attachment IDs", group="engagement"),
        _owner("engagement"),
        _dt("hs_createdate", "Created at", "engagement", read_only=True),
        _dt("hs_lastmodifieddate", "Last Modified Date", "engagement", read_only=True),
        _object_id(),
        _event_id_property(),
    ),
)

TASKS = ObjectTypeDef(
    name="tasks",
    singular="task",
    type_id="0-27",
    id_base=50_000_000_001,
    created_property="hs_createdate",
    modified_property="hs_lastmodifieddate",
    default_properties=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    searchable=("hs_task_subject", "hs_task_body"),
    required=("hs_timestamp",),  # facts B6
    properties=_props(
        _dt("hs_timestamp", "Due date", "task"),
        _p("hs_task_subject", "Task Title", group="task"),
        _p("hs_task_body", "Notes", "string", "textarea", "task"),
        _enum("hs_task_status", "Task Status", "task", [(s, s.title()) for s in TASK_STATUSES]),
        _enum("hs_task_priority", "Priority", "task", [(s, s.title()) for s in TASK_PRIORITIES]),
        _enum("hs_task_type", "Task Type", "task", [(s, s.title()) for s in TASK_TYPES]),
        _p("hs_task_reminders", "Reminders", group="task"),
        _owner("task"),
        _dt("hs_createdate", "Created at", "task", read_only=True),
        _dt("hs_lastmodifieddate", "Last Modified Date", "task", read_only=True),
        _object_id(),
        _event_id_property(),
    ),
)

OBJECT_TYPES: dict[str, ObjectTypeDef] = {
    definition.name: definition for definition in (CONTACTS, COMPANIES, DEALS, NOTES, TASKS)
}
# Paths may name an object type by its id ("0-3") or its singular form as well.
OBJECT_TYPE_ALIASES: dict[str, str] = {
    **{definition.name: definition.name for definition in OBJECT_TYPES.values()},
    **{definition.type_id: definition.name for definition in OBJECT_TYPES.values()},
    **{definition.singular: definition.name for definition in OBJECT_TYPES.values()},
}


def resolve_object_type(name: str) -> ObjectTypeDef | None:
    """Look an object type up by plural name, singular name or type id (case-insensitive)."""
    canonical = OBJECT_TYPE_ALIASES.get(name.lower())
    return OBJECT_TYPES[canonical] if canonical else None


# --------------------------------------------------------------------------- associations


@dataclass(frozen=True)
class AssociationTypeDef:
    """A HUBSPOT_DEFINED association type id between two object types."""

    type_id: int
    from_type: str
    to_type: str
    inverse: int
    label: str | None = None  # "Primary" for the primary company associations

    @property
    def v3_name(self) -> str:
        """Name used by the v3 inline ``associations`` block (``deal_to_company``...)."""
        base = f"{OBJECT_TYPES[self.from_type].singular}_to_{OBJECT_TYPES[self.to_type].singular}"
        # A labelled (primary) association and an unlabelled one share a pair of objects.
        return (
            base
            if self.label or not _has_primary(self.from_type, self.to_type)
            else (base + "_unlabeled")
        )


def _has_primary(from_type: str, to_type: str) -> bool:
    return (from_type, to_type) in {
        ("deals", "companies"),
        ("companies", "deals"),
        ("contacts", "companies"),
        ("companies", "contacts"),
    }


def _pair(
    a: int, b: int, from_type: str, to_type: str, label: str | None = None
) -> list[AssociationTypeDef]:
    return [
        AssociationTypeDef(a, from_type, to_type, b, label),
        AssociationTypeDef(b, to_type, from_type, a, label),
    ]


# facts B5 (library AssociationType).
ASSOCIATION_TYPES: dict[int, AssociationTypeDef] = {
    definition.type_id: definition
    for definition in (
        *_pair(1, 2, "contacts", "companies", "Primary"),
        *_pair(279, 280, "contacts", "companies"),
        *_pair(3, 4, "deals", "contacts"),
        *_pair(5, 6, "deals", "companies", "Primary"),
        *_pair(341, 342, "deals", "companies"),
        *_pair(214, 213, "notes", "deals"),
        *_pair(216, 215, "tasks", "deals"),
        *_pair(190, 189, "notes", "companies"),
        *_pair(192, 191, "tasks", "companies"),
        *_pair(202, 201, "notes", "contacts"),
        *_pair(204, 203, "tasks", "contacts"),
    )
}

# The unlabelled ("default") association type for each ordered pair of object types.
DEFAULT_ASSOCIATION: dict[tuple[str, str], int] = {
    (definition.from_type, definition.to_type): definition.type_id
    for definition in ASSOCIATION_TYPES.values()
    if definition.label is None
}
# A primary association always comes with the unlabelled one (facts B5 example: 5 and 341).
PRIMARY_COMPANION: dict[int, int] = {1: 279, 2: 280, 5: 341, 6: 342}


# --------------------------------------------------------------------------- values


def normalize_number(value: str) -> str:
    """Render a number the way HubSpot echoes it: ``"1000"``, ``"1000.5"``."""
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def normalize_datetime(value: str) -> str:
    """ISO with ms and ``Z`` from an epoch-ms string or any ISO 8601 date/datetime."""
    return iso_from_ms(parse_datetime_ms(value))
