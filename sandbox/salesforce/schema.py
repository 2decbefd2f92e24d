"""sObject definitions of the Salesforce emulator, as data.

One :class:`SObjectDef` per stored sObject, each with its :class:`FieldDef` entries in the
order the describe call lists them. The same data drives three things, so they cannot
disagree:

* the SQLite tables (:func:`create_table_sql`) — one table per sObject, one column per field
  API name, plus ``IsDeleted`` on every table (storage convention shared with ``soql.py``);
* the REST describe body (:func:`describe`);
* SOQL name resolution and typing (``sandbox.salesforce.soql``).

Field and object names are case-insensitive in SOQL and in the REST API, so lookups here
(:meth:`SObjectDef.field`, :meth:`SObjectDef.relationship`, :func:`get_sobject`) ignore case
and callers render the API casing stored in the definitions.

Storage convention: datetimes are ISO-8601 UTC text with milliseconds
(``YYYY-MM-DDTHH:MM:SS.fffZ``, sortable as text), dates ``YYYY-MM-DD``, booleans INTEGER 0/1,
numbers REAL/INTEGER.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal[
    "id",
    "string",
    "textarea",
    "picklist",
    "reference",
    "datetime",
    "date",
    "boolean",
    "currency",
    "double",
    "percent",
    "int",
    "email",
    "url",
]

# Types whose values are text in SOQL (single-quoted literals, case-insensitive comparison).
TEXT_TYPES: frozenset[str] = frozenset({"string", "textarea", "picklist", "email", "url"})
NUMBER_TYPES: frozenset[str] = frozenset({"currency", "double", "percent", "int"})

# Long text areas cannot be filtered or sorted in SOQL; Salesforce's cut-off is 255.
_FILTERABLE_TEXTAREA_MAX = 255


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject, with the attributes the describe call reports."""

    name: str
    type: FieldType
    length: int | None = None
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    external_id: bool = False
    unique: bool = False
    label: str = ""
    # Not part of the brief's minimum, but describe reports them and the emulator needs them.
    default_value: str | None = None
    restricted_picklist: bool = False
    precision: int = 0
    scale: int = 0
    name_field: bool = False

    @property
    def custom(self) -> bool:
        """Custom fields end with ``__c``."""
        return self.name.endswith("__c")

    @property
    def filterable(self) -> bool:
        """Whether SOQL may use the field in WHERE (long text areas may not)."""
        return not (self.type == "textarea" and (self.length or 0) > _FILTERABLE_TEXTAREA_MAX)

    @property
    def sortable(self) -> bool:
        """Whether SOQL may use the field in ORDER BY."""
        return self.filterable


@dataclass(frozen=True)
class SObjectDef:
    """One sObject: API name, 3-character key prefix and fields keyed by API name."""

    name: str
    key_prefix: str
    fields: dict[str, FieldDef]
    label: str = ""
    label_plural: str = ""
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    _by_lower: dict[str, FieldDef] = field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: precompute the case-insensitive indexes once.
        object.__setattr__(self, "_by_lower", {k.lower(): v for k, v in self.fields.items()})
        relationships = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }
        object.__setattr__(self, "_by_relationship", relationships)

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any case), or ``None``."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name`` (any case), or ``None``."""
        return self._by_relationship.get(name.lower())


# --------------------------------------------------------------------------- field helpers


def _label_from_name(name: str) -> str:
    base = name.removesuffix("__c").replace("_", " ")
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).strip()


def _f(name: str, type_: FieldType, **kwargs: Any) -> FieldDef:
    kwargs.setdefault("label", _label_from_name(name))
    if type_ in ("id", "reference"):
        kwargs.setdefault("length", 18)
    if type_ == "boolean":
        # Salesforce booleans are never null.
        kwargs.setdefault("nillable", False)
    return FieldDef(name=name, type=type_, **kwargs)


def _id(label: str) -> FieldDef:
    return _f("Id", "id", nillable=False, createable=False, updateable=False, label=label)


def _ref(name: str, targets: tuple[str, ...], relationship: str, **kwargs: Any) -> FieldDef:
    return _f(name, "reference", reference_to=targets, relationship_name=relationship, **kwargs)


def _readonly(name: str, type_: FieldType, **kwargs: Any) -> FieldDef:
    return _f(name, type_, createable=False, updateable=False, **kwargs)


def _audit(*names: str) -> list[FieldDef]:
    """System audit datetimes: set by the platform, never null, never writable."""
    return [_readonly(n, "datetime", nillable=False) for n in names]


def _is_deleted() -> FieldDef:
    return _readonly("IsDeleted", "boolean", label="Deleted")


def _picklist(name: str, values: Sequence[str], **kwargs: Any) -> FieldDef:
    kwargs.setdefault("length", 255)
    return _f(name, "picklist", picklist_values=tuple(values), **kwargs)


def _currency(name: str, **kwargs: Any) -> FieldDef:
    kwargs.setdefault("precision", 18)
    kwargs.setdefault("scale", 2)
    return _f(name, "currency", **kwargs)


def _object(
    name: str,
    key_prefix: str,
    fields: Sequence[FieldDef],
    *,
    label: str | None = None,
    label_plural: str | None = None,
    writable: bool = True,
) -> SObjectDef:
    by_name = {f.name: f for f in fields}
    if len(by_name) != len(fields):
        raise ValueError(f"duplicate field on {name}")
    lbl = label or _label_from_name(name)
    return SObjectDef(
        name=name,
        key_prefix=key_prefix,
        fields=by_name,
        label=lbl,
        label_plural=label_plural or lbl + "s",
        createable=writable,
        updateable=writable,
        deletable=writable,
    )


# --------------------------------------------------------------------------- picklist values

# Default stages of a new org (facts doc A6); the emulator overrides them from OpportunityStage.
DEFAULT_STAGE_NAMES: tuple[str, ...] = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
FORECAST_CATEGORY_NAMES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")
# OpportunityHistory.ForecastCategory uses the API values, not the labels.
FORECAST_CATEGORIES = ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")
CURRENCY_ISO_CODES = ("USD", "EUR", "GBP", "JPY")
ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Other",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
)
REGIONS = ("AMER", "EMEA", "APAC", "LATAM")
PRODUCT_LINES = ("Platform", "Analytics", "Mobile", "Services")
OPPORTUNITY_TYPES = (
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
TASK_TYPES = ("Call", "Email", "Meeting", "Other")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
TIME_ZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Paris",
    "Asia/Tokyo",
    "GMT",
)
LANGUAGES = ("en_US", "de", "fr", "ja", "es")


def _currency_iso_code() -> FieldDef:
    return _picklist(
        "CurrencyIsoCode",
        CURRENCY_ISO_CODES,
        length=3,
        nillable=False,
        default_value="USD",
        restricted_picklist=True,
        label="Currency ISO Code",
    )


# --------------------------------------------------------------------------- the objects

_USER = _object(
    "User",
    "005",
    [
        _id("User ID"),
        _f("Username", "string", length=80, nillable=False, unique=True),
        _f("Email", "email", length=128, nillable=False),
        _f("FirstName", "string", length=40),
        _f("LastName", "string", length=80, nillable=False),
        _readonly("Name", "string", length=121, nillable=False, label="Full Name", name_field=True),
        _f("IsActive", "boolean", label="Active"),
        _ref("UserRoleId", ("UserRole",), "UserRole", label="Role ID"),
        _picklist("TimeZoneSidKey", TIME_ZONES, length=40, nillable=False, label="Time Zone"),
        _picklist("LanguageLocaleKey", LANGUAGES, length=40, nillable=False, label="Language"),
        *_audit("CreatedDate", "LastModifiedDate", "SystemModstamp"),
    ],
)

_ACCOUNT = _object(
    "Account",
    "001",
    [
        _id("Account ID"),
        _f("Name", "string", length=255, nillable=False, label="Account Name", name_field=True),
        _picklist("Type", ACCOUNT_TYPES, label="Account Type"),
        _picklist("Industry", INDUSTRIES),
        _f("BillingCountry", "string", length=80),
        _f("BillingCity", "string", length=40),
        _f("Website", "url", length=255),
        _ref("OwnerId", ("User",), "Owner", nillable=False),
        _ref("ParentId", ("Account",), "Parent", label="Parent Account ID"),
        _currency("AnnualRevenue", scale=0),
        _f("NumberOfEmployees", "int", label="Employees", precision=8),
        _picklist("Region__c", REGIONS, label="Region"),
        _currency_iso_code(),
        *_audit("CreatedDate", "LastModifiedDate", "SystemModstamp"),
        _is_deleted(),
    ],
    label_plural="Accounts",
)

_OPPORTUNITY = _object(
    "Opportunity",
    "006",
    [
        _id("Opportunity ID"),
        _ref("AccountId", ("Account",), "Account"),
        _f("Name", "string", length=120, nillable=False, label="Opportunity Name", name_field=True),
        _picklist(
            "StageName",
            DEFAULT_STAGE_NAMES,
            nillable=False,
            restricted_picklist=True,
            label="Stage",
        ),
        _currency("Amount"),
        _f("CloseDate", "date", nillable=False),
        _f("Probability", "percent", precision=3, scale=0, label="Probability (%)"),
        _readonly("IsClosed", "boolean", label="Closed"),
        _readonly("IsWon", "boolean", label="Won"),
        _picklist(
            "ForecastCategoryName",
            FORECAST_CATEGORY_NAMES,
            length=40,
            restricted_picklist=True,
            label="Forecast Category",
        ),
        _ref("OwnerId", ("User",), "Owner", nillable=False),
        _picklist("Type", OPPORTUNITY_TYPES, label="Opportunity Type"),
        _picklist("LeadSource", LEAD_SOURCES),
        _f("NextStep", "string", length=255),
        _currency_iso_code(),
        _picklist("Product_Line__c", PRODUCT_LINES, restricted_picklist=True),
        *_audit("CreatedDate", "LastModifiedDate", "SystemModstamp"),
        _is_deleted(),
    ],
    label_plural="Opportunities",
)

_OPPORTUNITY_STAGE = _object(
    "OpportunityStage",
    "01J",
    [
        _id("Opportunity Stage ID"),
        _readonly("ApiName", "string", length=255, nillable=False),
        _readonly("MasterLabel", "string", length=255, nillable=False, name_field=True),
        _readonly("DefaultProbability", "percent", precision=3, scale=0),
        _readonly("IsClosed", "boolean", label="Closed"),
        _readonly("IsWon", "boolean", label="Won"),
        _readonly(
            "ForecastCategoryName",
            "picklist",
            length=40,
            picklist_values=FORECAST_CATEGORY_NAMES,
            label="Forecast Category",
        ),
        _readonly("SortOrder", "int", precision=9),
        _readonly("IsActive", "boolean", label="Active"),
        *_audit("SystemModstamp"),
    ],
    writable=False,
)

_OPPORTUNITY_FIELD_HISTORY = _object(
    "OpportunityFieldHistory",
    "017",
    [
        _id("Opportunity Field History ID"),
        _readonly(
            "OpportunityId",
            "reference",
            nillable=False,
            reference_to=("Opportunity",),
            relationship_name="Opportunity",
        ),
        _readonly(
            "Field",
            "picklist",
            length=255,
            nillable=False,
            picklist_values=("StageName", "Amount", "CloseDate"),
            label="Changed Field",
        ),
        # anyType in Salesforce; the emulator stores the rendered text.
        _readonly("OldValue", "string", length=255),
        _readonly("NewValue", "string", length=255),
        *_audit("CreatedDate"),
        _readonly(
            "CreatedById",
            "reference",
            nillable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
        ),
        _is_deleted(),
    ],
    label="Opportunity Field History",
    label_plural="Opportunity Field History",
    writable=False,
)

_OPPORTUNITY_HISTORY = _object(
    "OpportunityHistory",
    "008",
    [
        _id("Opportunity History ID"),
        _readonly(
            "OpportunityId",
            "reference",
            nillable=False,
            reference_to=("Opportunity",),
            relationship_name="Opportunity",
        ),
        _readonly(
            "StageName", "picklist", length=255, nillable=False, picklist_values=DEFAULT_STAGE_NAMES
        ),
        _readonly("Amount", "currency", precision=18, scale=2),
        _readonly("Probability", "percent", precision=3, scale=0, label="Probability (%)"),
        _readonly("CloseDate", "date"),
        _readonly("ForecastCategory", "picklist", length=40, picklist_values=FORECAST_CATEGORIES),
        *_audit("CreatedDate"),
        _readonly(
            "CreatedById",
            "reference",
            nillable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
        ),
        *_audit("SystemModstamp"),
        _is_deleted(),
    ],
    label="Opportunity History",
    label_plural="Opportunity History",
    writable=False,
)

_TASK = _object(
    "Task",
    "00T",
    [
        _id("Activity ID"),
        _f("Subject", "string", length=255),
        _f("Description", "textarea", length=32000, label="Comments"),
        _f("ActivityDate", "date", label="Due Date Only"),
        _picklist(
            "Status",
            TASK_STATUSES,
            length=40,
            nillable=False,
            default_value="Not Started",
            restricted_picklist=True,
        ),
        _picklist(
            "Priority",
            TASK_PRIORITIES,
            length=40,
            nillable=False,
            default_value="Normal",
            restricted_picklist=True,
        ),
        _readonly("IsClosed", "boolean", label="Closed"),
        _ref("WhatId", ("Opportunity", "Account"), "What", label="Related To ID"),
        _ref("WhoId", ("Contact", "Lead"), "Who", label="Name ID"),
        _ref("OwnerId", ("User",), "Owner", nillable=False, label="Assigned To ID"),
        _picklist("Type", TASK_TYPES, length=40),
        _picklist("TaskSubtype", TASK_SUBTYPES, length=40, updateable=False),
        _f(
            "Stagelink_Event_Id__c",
            "string",
            length=64,
            external_id=True,
            unique=True,
            label="Stagelink Event ID",
        ),
        *_audit("CreatedDate", "LastModifiedDate", "SystemModstamp"),
        _is_deleted(),
    ],
)

_EVENT = _object(
    "Event",
    "00U",
    [
        _id("Activity ID"),
        _f("Subject", "string", length=255),
        _f("Description", "textarea", length=32000),
        _f("StartDateTime", "datetime", label="Start"),
        _f("EndDateTime", "datetime", label="End"),
        _f("DurationInMinutes", "int", label="Duration", precision=8),
        _f("ActivityDateTime", "datetime", label="Due Date Time"),
        _ref("WhatId", ("Opportunity", "Account"), "What", label="Related To ID"),
        _ref("OwnerId", ("User",), "Owner", nillable=False, label="Assigned To ID"),
        _f(
            "Stagelink_Event_Id__c",
            "string",
            length=64,
            external_id=True,
            unique=True,
            label="Stagelink Event ID",
        ),
        *_audit("CreatedDate", "LastModifiedDate", "SystemModstamp"),
        _is_deleted(),
    ],
)

SCHEMA: dict[str, SObjectDef] = {
    obj.name: obj
    for obj in (
        _USER,
        _ACCOUNT,
        _OPPORTUNITY,
        _OPPORTUNITY_STAGE,
        _OPPORTUNITY_FIELD_HISTORY,
        _OPPORTUNITY_HISTORY,
        _TASK,
        _EVENT,
    )
}
_SCHEMA_LOWER = {name.lower(): obj for name, obj in SCHEMA.items()}


def get_sobject(name: str) -> SObjectDef | None:
    """The sObject called ``name`` (any case), or ``None``."""
    return _SCHEMA_LOWER.get(name.lower())


# --------------------------------------------------------------------------- SQLite DDL

_SQL_TYPES: dict[str, str] = {
    "boolean": "INTEGER NOT NULL DEFAULT 0",
    "currency": "REAL",
    "double": "REAL",
    "percent": "REAL",
    "int": "INTEGER",
}


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (table or column); names come from the schema, never users."""
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(sobject: str) -> str:
    """SQLite DDL for one sObject: the table plus its indexes. Run it with ``executescript``.

    Columns follow the storage convention; ``IsDeleted`` exists on every table even where the
    API has no such field (User, OpportunityStage), so ``query``/``queryAll`` filter uniformly.
    Indexes: ``(SystemModstamp, Id)`` and ``(IsDeleted, SystemModstamp, Id)`` for incremental
    sync cursors, every reference column (child lookups), and external ids — unique among
    live rows and case-insensitive, as Salesforce's unique external ids are.
    """
    obj = SCHEMA[sobject]
    table = quote_ident(obj.name)
    columns = ['"Id" TEXT PRIMARY KEY NOT NULL']
    for f in obj.fields.values():
        if f.name in ("Id", "IsDeleted"):
            continue
        columns.append(f"{quote_ident(f.name)} {_SQL_TYPES.get(f.type, 'TEXT')}")
    columns.append('"IsDeleted" INTEGER NOT NULL DEFAULT 0')
    statements = [f"CREATE TABLE IF NOT EXISTS {table} (\n  " + ",\n  ".join(columns) + "\n)"]

    def index(suffix: str, cols: str, *, unique: bool = False, where: str = "") -> None:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        name = quote_ident(f"ix_{obj.name}_{suffix}")
        statements.append(f"CREATE {kind} IF NOT EXISTS {name} ON {table} ({cols}){where}")

    if "SystemModstamp" in obj.fields:
        index("SystemModstamp", '"SystemModstamp", "Id"')
        index("IsDeleted_SystemModstamp", '"IsDeleted", "SystemModstamp", "Id"')
    for f in obj.fields.values():
        if f.type == "reference":
            index(f.name, quote_ident(f.name))
        if f.external_id:
            col = f"{quote_ident(f.name)} COLLATE NOCASE"
            index(f.name + "_ext", col)
            if f.unique:
                index(f.name + "_uniq", col, unique=True, where=' WHERE "IsDeleted" = 0')
    return ";\n".join(statements) + ";\n"


def create_all_tables_sql() -> str:
    """DDL for every sObject in :data:`SCHEMA`."""
    return "".join(create_table_sql(name) for name in SCHEMA)


# --------------------------------------------------------------------------- describe


@dataclass(frozen=True)
class PicklistValue:
    """One picklist entry for :func:`describe` overrides (e.g. stages from OpportunityStage)."""

    value: str
    label: str | None = None
    active: bool = True
    default: bool = False


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "boolean": "xsd:boolean",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


def _picklist_entries(
    f: FieldDef, override: Sequence[str | PicklistValue] | None
) -> list[dict[str, Any]]:
    if override is None:
        if f.type != "picklist":
            return []
        values: Sequence[str | PicklistValue] = f.picklist_values
    else:
        values = override
    entries = []
    for v in values:
        entry = v if isinstance(v, PicklistValue) else PicklistValue(v)
        entries.append(
            {
                "active": entry.active,
                "defaultValue": entry.default or entry.value == f.default_value,
                "label": entry.label if entry.label is not None else entry.value,
                "validFor": None,
                "value": entry.value,
            }
        )
    return entries


def _describe_field(f: FieldDef, override: Sequence[str | PicklistValue] | None) -> dict[str, Any]:
    is_text = f.type in TEXT_TYPES or f.type in ("id", "reference")
    length = (f.length or 0) if is_text else 0
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": length,
        "byteLength": length * 3,
        "precision": f.precision,
        "scale": f.scale,
        "digits": f.precision if f.type == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "custom": f.custom,
        "calculated": False,
        "defaultedOnCreate": f.type == "boolean" or f.default_value is not None or f.type == "id",
        "defaultValue": f.default_value,
        "filterable": f.filterable,
        "sortable": f.sortable,
        "groupable": f.filterable and f.type not in NUMBER_TYPES,
        "nameField": f.name_field,
        "idLookup": f.type == "id" or f.external_id or f.name == "Username",
        "externalId": f.external_id,
        "unique": f.unique,
        "caseSensitive": False,
        "restrictedPicklist": f.restricted_picklist,
        "picklistValues": _picklist_entries(f, override),
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "polymorphicForeignKey": len(f.reference_to) > 1,
    }


def describe(
    sobject: str,
    picklists_override: Mapping[str, Sequence[str | PicklistValue]] | None = None,
    *,
    api_version: str = "59.0",
) -> dict[str, Any]:
    """The REST ``/sobjects/{sobject}/describe`` body.

    ``picklists_override`` maps a field API name (any case) to the picklist entries to report
    instead of the static ones — the emulator passes ``StageName`` entries read from the
    OpportunityStage table, inactive stages as ``PicklistValue(..., active=False)``.
    """
    obj = get_sobject(sobject)
    if obj is None:
        raise KeyError(sobject)
    overrides = {k.lower(): v for k, v in (picklists_override or {}).items()}
    base = f"/services/data/v{api_version}/sobjects/{obj.name}"
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "undeletable": obj.deletable,
        "queryable": True,
        "retrieveable": True,
        "searchable": obj.createable,
        "replicateable": "SystemModstamp" in obj.fields,
        "triggerable": obj.createable,
        "layoutable": obj.createable,
        "mergeable": False,
        "fields": [_describe_field(f, overrides.get(f.name.lower())) for f in obj.fields.values()],
        "childRelationships": [],
        "recordTypeInfos": [],
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }
