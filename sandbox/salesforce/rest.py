"""REST resources: versions, limits, query, describe, sObject rows, Get Updated/Deleted.

Shapes and status codes follow facts A4-A7 and A12: create 201 with a SaveResult, update
and delete 204, upsert 201 ``created:true`` / 200 ``created:false`` or 204 (switchable) /
300 with record URLs when several records match, errors as JSON arrays.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.salesforce import schema, timefmt
from sandbox.salesforce.errors import ApiError, RecordError, not_found
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.org import Org
from sandbox.salesforce.query import batch_size_from_header
from sandbox.salesforce.records import MultipleMatches
from sandbox.salesforce.schema import SObjectDef
from sandbox.salesforce.store import quote
from sandbox.salesforce.wire import ApiRequest, ApiResponse

# Release names of the API versions listed by GET /services/data/ (Salesforce release notes).
RELEASES = {
    "55.0": "Summer '22",
    "56.0": "Winter '23",
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}
REPLICATION_DAYS = 30  # Get Updated/Deleted only cover the last 30 days (facts A7)


def versions() -> list[dict[str, str]]:
    """``GET /services/data/``: the API versions the org serves."""
    return [
        {"label": label, "url": f"/services/data/v{version}", "version": version}
        for version, label in RELEASES.items()
    ]


def resources(org: Org, req: ApiRequest) -> ApiResponse:
    """``GET /services/data/vXX.X/``: the resource directory."""
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "search", "recent")
    return ApiResponse(200, {name: f"/services/data/v{req.version}/{name}" for name in names})


def limits(org: Org, req: ApiRequest) -> ApiResponse:
    """``GET /limits/`` (facts A12)."""
    remaining = max(0, org.usage.limit - org.usage.used)
    jobs = org.bulk.count()
    return ApiResponse(
        200,
        {
            "DailyApiRequests": {"Max": org.usage.limit, "Remaining": remaining},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - jobs},
            "DailyBulkV2QueryFileStorageMB": {"Max": 1_000_000, "Remaining": 1_000_000},
            "DailyAsyncApexExecutions": {"Max": 250_000, "Remaining": 250_000},
            "DataStorageMB": {"Max": 5120, "Remaining": 4900},
            "FileStorageMB": {"Max": 20480, "Remaining": 20480},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        },
    )


# -- query ------------------------------------------------------------------------------------


def query(org: Org, req: ApiRequest, *, include_deleted: bool) -> ApiResponse:
    """``GET /query/?q=`` and ``/queryAll/?q=``."""
    batch = batch_size_from_header(
        req.headers.get("sforce-query-options"), org.options.default_batch_size
    )
    body = org.queries.run(
        req.query.get("q"),
        include_deleted=include_deleted,
        batch_size=batch,
        user_id=req.session.user_id,
        token=req.session.token,
        api_version=req.version,
    )
    return ApiResponse(200, body)


def query_more(org: Org, req: ApiRequest, locator: str) -> ApiResponse:
    """``GET /query/01g…-N`` (also under queryAll)."""
    return ApiResponse(
        200, org.queries.more(locator, token=req.session.token, api_version=req.version)
    )


# -- describe -----------------------------------------------------------------------------------


def _sobject_or_404(name: str) -> SObjectDef:
    obj = schema.get_sobject(name)
    if obj is None:
        raise not_found()
    return obj


def _summary(obj: SObjectDef, version: str) -> dict[str, Any]:
    full = schema.describe(obj.name, api_version=version)
    return {
        key: value
        for key, value in full.items()
        if key not in ("fields", "childRelationships", "recordTypeInfos")
    }


def describe_global(org: Org, req: ApiRequest) -> ApiResponse:
    """``GET /sobjects/``."""
    return ApiResponse(
        200,
        {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [_summary(obj, req.version) for obj in schema.SCHEMA.values()],
        },
    )


def sobject_info(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``GET /sobjects/{Type}/``: basic information and recent items."""
    obj = _sobject_or_404(sobject)
    return ApiResponse(200, {"objectDescribe": _summary(obj, req.version), "recentItems": []})


def describe(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``GET /sobjects/{Type}/describe/``; StageName values come from OpportunityStage."""
    obj = _sobject_or_404(sobject)
    overrides: dict[str, list[str | schema.PicklistValue]] = {}
    if obj.name in ("Opportunity", "OpportunityHistory"):
        overrides["StageName"] = list(org.stage_picklist())
    return ApiResponse(
        200, schema.describe(obj.name, picklists_override=overrides, api_version=req.version)
    )


# -- records ------------------------------------------------------------------------------------


def render_record(
    org: Org, obj: SObjectDef, record_id: str, fields: str | None, version: str
) -> dict[str, Any]:
    """One live record as REST renders it (all fields, or ``fields``), via the SOQL engine."""
    names = fields.split(",") if fields else list(obj.fields)
    names = [name.strip() for name in names if name.strip()]
    if not any(name.lower() == "id" for name in names):
        names.insert(0, "Id")
    compiled = org.queries.compile(
        f"SELECT {', '.join(names)} FROM {obj.name} WHERE Id = '{record_id}'",
        include_deleted=False,
    )
    rows = org.store.fetch_all(compiled.sql, compiled.params)
    if not rows:
        raise not_found()
    return compiled.shape_row(rows[0], version)


def _record_id_or_404(obj: SObjectDef, value: str) -> str:
    record_id = normalize_id(value)
    if record_id is None:
        # Salesforce reads a non-id segment as an external id field name.
        raise not_found(f"Provided external ID field does not exist or is not accessible: {value}")
    return record_id


def get_record(org: Org, req: ApiRequest, sobject: str, record: str) -> ApiResponse:
    """``GET /sobjects/{Type}/{id}`` (``?fields=`` optional)."""
    obj = _sobject_or_404(sobject)
    record_id = _record_id_or_404(obj, record)
    try:
        org.engine.existing(obj, record_id)
    except RecordError as error:
        raise error.to_api_error() from None
    return ApiResponse(
        200, render_record(org, obj, record_id, req.query.get("fields"), req.version)
    )


def create_record(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``POST /sobjects/{Type}/``."""
    obj = _sobject_or_404(sobject)
    try:
        record_id = org.engine.create(obj.name, _body_dict(req), user_id=req.session.user_id)
    except RecordError as error:
        raise error.to_api_error() from None
    return ApiResponse(201, {"id": record_id, "success": True, "errors": []})


def update_record(org: Org, req: ApiRequest, sobject: str, record: str) -> ApiResponse:
    """``PATCH /sobjects/{Type}/{id}`` → 204."""
    obj = _sobject_or_404(sobject)
    record_id = _record_id_or_404(obj, record)
    try:
        org.engine.update(obj.name, record_id, _body_dict(req), user_id=req.session.user_id)
    except RecordError as error:
        raise error.to_api_error() from None
    return ApiResponse.no_content()


def delete_record(org: Org, req: ApiRequest, sobject: str, record: str) -> ApiResponse:
    """``DELETE /sobjects/{Type}/{id}`` → 204."""
    obj = _sobject_or_404(sobject)
    record_id = _record_id_or_404(obj, record)
    try:
        org.engine.delete(obj.name, record_id, user_id=req.session.user_id)
    except RecordError as error:
        raise error.to_api_error() from None
    return ApiResponse.no_content()


def _matches(org: Org, obj: SObjectDef, field_name: str, value: str) -> list[str]:
    try:
        fdef = org.engine.external_id_field(obj, field_name)
    except RecordError as error:
        raise error.to_api_error() from None
    return org.engine.find_by_external_id(obj, fdef, value)


def _multiple(obj: SObjectDef, ids: list[str], version: str) -> ApiResponse:
    return ApiResponse(300, [f"/services/data/v{version}/sobjects/{obj.name}/{i}" for i in ids])


def get_by_external_id(
    org: Org, req: ApiRequest, sobject: str, field_name: str, value: str
) -> ApiResponse:
    """``GET /sobjects/{Type}/{ExtField}/{value}``: 200, 300 or 404."""
    obj = _sobject_or_404(sobject)
    ids = _matches(org, obj, field_name, value)
    if not ids:
        raise not_found()
    if len(ids) > 1:
        return _multiple(obj, ids, req.version)
    return ApiResponse(200, render_record(org, obj, ids[0], req.query.get("fields"), req.version))


def upsert_record(
    org: Org, req: ApiRequest, sobject: str, field_name: str, value: str
) -> ApiResponse:
    """``PATCH /sobjects/{Type}/{ExtField}/{value}``: 201 / 200-or-204 / 300 / 404."""
    obj = _sobject_or_404(sobject)
    try:
        outcome = org.engine.upsert(
            obj.name,
            field_name,
            value,
            _body_dict(req),
            user_id=req.session.user_id,
            update_only=req.query.get("updateOnly", "").lower() == "true",
        )
    except MultipleMatches as multiple:
        return _multiple(obj, multiple.ids, req.version)
    except RecordError as error:
        raise error.to_api_error() from None
    body = {"id": outcome.record_id, "success": True, "errors": [], "created": outcome.created}
    if outcome.created:
        return ApiResponse(201, body)
    if org.options.upsert_existing_status == 204:
        return ApiResponse.no_content()
    return ApiResponse(200, body)


def delete_by_external_id(
    org: Org, req: ApiRequest, sobject: str, field_name: str, value: str
) -> ApiResponse:
    """``DELETE /sobjects/{Type}/{ExtField}/{value}``."""
    obj = _sobject_or_404(sobject)
    ids = _matches(org, obj, field_name, value)
    if not ids:
        raise not_found()
    if len(ids) > 1:
        return _multiple(obj, ids, req.version)
    return delete_record(org, req, obj.name, ids[0])


def _body_dict(req: ApiRequest) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(
            400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object"
        )
    return body


# -- Get Updated / Get Deleted ----------------------------------------------------------------


def _replication_window(req: ApiRequest) -> tuple[str, str, dt.datetime]:
    """Validated ``[start, end)`` in storage form, plus the ``latestDateCovered`` moment.

    ``start`` and ``end`` are truncated to the minute (facts A7). An ``end`` in the future
    covers up to the current moment; ``latestDateCovered`` is that moment truncated to the
    minute, so a client resuming from it re-reads at most one minute and never skips one.
    """
    bounds = []
    for name in ("start", "end"):
        text = req.query.get(name)
        if not text:
            raise ApiError(400, "MISSING_ARGUMENT", f"Missing required parameter: {name}")
        moment = timefmt.parse_input_datetime(text)
        if moment is None:
            raise ApiError(400, "INVALID_REPLICATION_DATE", f"Invalid {name} date: {text}")
        bounds.append(moment.replace(second=0, microsecond=0))
    start, end = bounds
    if start >= end:
        raise ApiError(
            400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"
        )
    now = timefmt.utc_now()
    if start < now - dt.timedelta(days=REPLICATION_DAYS):
        raise ApiError(
            400,
            "INVALID_REPLICATION_DATE",
            f"startDate cannot be more than {REPLICATION_DAYS} days ago",
        )
    end = min(end, now)
    covered = end.replace(second=0, microsecond=0)
    return timefmt.to_storage(start), timefmt.to_storage(end), covered


def updated(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``GET /sobjects/{Type}/updated/?start=&end=``."""
    obj = _sobject_or_404(sobject)
    if "SystemModstamp" not in obj.fields:
        raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"{obj.name} is not replicateable")
    start, end, covered = _replication_window(req)
    limit = org.options.updated_deleted_id_limit
    rows = org.store.fetch_all(
        f'SELECT "Id" FROM {quote(obj.name)} WHERE "IsDeleted" = 0 '
        'AND "SystemModstamp" >= ? AND "SystemModstamp" < ? ORDER BY "SystemModstamp", "Id" '
        "LIMIT ?",
        (start, end, limit + 1),
    )
    if len(rows) > limit:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", f"more than {limit} ids in the requested window")
    return ApiResponse(
        200, {"ids": [row[0] for row in rows], "latestDateCovered": timefmt.to_api(covered)}
    )


def deleted(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``GET /sobjects/{Type}/deleted/?start=&end=``."""
    obj = _sobject_or_404(sobject)
    start, end, covered = _replication_window(req)
    limit = org.options.updated_deleted_id_limit
    rows = org.store.fetch_all(
        'SELECT d.record_id, d.deleted_date FROM "_sl_deleted" AS d '
        f'JOIN {quote(obj.name)} AS t ON t."Id" = d.record_id AND t."IsDeleted" = 1 '
        "WHERE d.sobject = ? AND d.deleted_date >= ? AND d.deleted_date < ? "
        "ORDER BY d.deleted_date, d.record_id LIMIT ?",
        (obj.name, start, end, limit + 1),
    )
    if len(rows) > limit:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", f"more than {limit} ids in the requested window")
    earliest = org.store.scalar(
        'SELECT min(deleted_date) FROM "_sl_deleted" WHERE sobject = ?', (obj.name,)
    )
    window_start = timefmt.utc_now() - dt.timedelta(days=REPLICATION_DAYS)
    earliest_text = (
        timefmt.storage_to_api(earliest)
        if earliest and earliest > timefmt.to_storage(window_start)
        else timefmt.to_api(window_start.replace(second=0, microsecond=0))
    )
    return ApiResponse(
        200,
        {
            "deletedRecords": [
                {"id": row[0], "deletedDate": timefmt.storage_to_api(row[1])} for row in rows
            ],
            "earliestDateAvailable": earliest_text,
            "latestDateCovered": timefmt.to_api(covered),
        },
    )
