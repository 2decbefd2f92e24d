"""Composite resources (facts A8): sObject Collections, Composite and Composite Batch.

* ``/composite/sobjects`` (POST create, PATCH update, DELETE, GET) and
  ``/composite/sobjects/{Type}/{ExtIdField}`` (PATCH upsert): at most 200 records, HTTP 200
  with one SaveResult per record in input order; errors carry ``statusCode``; with
  ``allOrNone`` one failure rolls everything back and the other records report
  ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.
* ``/composite``: at most 25 subrequests (at most 5 of them queries or collections),
  ``@{ref.field}`` references to earlier results, ``allOrNone`` rollback; HTTP 200 always.
* ``/composite/batch``: at most 25 independent subrequests; ``haltOnError`` answers 412 for
  the ones after a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.salesforce.errors import ApiError, ErrorItem, RecordError
from sandbox.salesforce.ids import PREFIX_TO_SOBJECT, key_prefix, normalize_id
from sandbox.salesforce.org import Org
from sandbox.salesforce.records import MultipleMatches, rolled_back_error
from sandbox.salesforce.rest import render_record
from sandbox.salesforce.schema import get_sobject
from sandbox.salesforce.wire import ApiRequest, ApiResponse

Dispatch = Callable[[Org, ApiRequest], ApiResponse]

MAX_COLLECTION_RECORDS = 200
MAX_COLLECTION_GET_IDS = 2000  # [unconfirmed, facts A8]
MAX_SUBREQUESTS = 25
MAX_COMPOSITE_QUERIES = 5
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Rollback(Exception):
    """Raised inside a transaction to undo it."""


def _abort() -> NoReturn:
    raise _Rollback


# -- sObject Collections -----------------------------------------------------------------------


def _collection_body(req: ApiRequest) -> tuple[bool, list[Any]]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must have a records array")
    records: list[Any] = body["records"]
    if len(records) > MAX_COLLECTION_RECORDS:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return bool(body.get("allOrNone", False)), records


def _failure(items: list[ErrorItem], record_id: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"success": False, "errors": [item.save_result() for item in items]}
    if record_id is not None:
        result = {"id": record_id, **result}
    return result


def _record_type(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    attributes = record.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
        return str(attributes["type"])
    return None


def _run_all(
    org: Org,
    count: int,
    all_or_none: bool,
    one: Callable[[int], dict[str, Any]],
    *,
    ids_in_failures: bool,
) -> list[dict[str, Any]]:
    """Run ``one(i)`` for each record, each in its own savepoint; apply ``allOrNone``.

    ``ids_in_failures``: updates and deletes name the record in failed SaveResults; creates
    and upserts have no id to name.
    """
    results: list[dict[str, Any]] = []
    try:
        with org.store.transaction():
            for index in range(count):
                try:
                    with org.store.transaction():
                        results.append(one(index))
                except RecordError as error:
                    results.append(_failure(error.items, error.record_id))
            if all_or_none and any(not r["success"] for r in results):
                _abort()
    except _Rollback:
        rolled = rolled_back_error()
        results = [
            r if not r["success"] else _failure([rolled], r["id"] if ids_in_failures else None)
            for r in results
        ]
    return results


def _cross_reference(error: RecordError) -> RecordError:
    # Collections name a missing record as a bad cross reference, not a missing resource.
    if error.items[0].code == "NOT_FOUND":
        return RecordError.one("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
    return error


def _with_id(error: RecordError, record_id: str | None) -> RecordError:
    error.record_id = record_id
    return error


def collection_create(org: Org, req: ApiRequest) -> ApiResponse:
    """``POST /composite/sobjects``."""
    all_or_none, records = _collection_body(req)

    def one(index: int) -> dict[str, Any]:
        record = records[index]
        sobject = _record_type(record)
        if sobject is None:
            raise RecordError.one("INVALID_TYPE", "Must send a concrete entity type.")
        data = {k: v for k, v in record.items() if k != "attributes"}
        if any(key.lower() == "id" for key in data):
            raise RecordError.one("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        record_id = org.engine.create(sobject, data, user_id=req.session.user_id)
        return {"id": record_id, "success": True, "errors": []}

    return ApiResponse(200, _run_all(org, len(records), all_or_none, one, ids_in_failures=False))


def collection_update(org: Org, req: ApiRequest) -> ApiResponse:
    """``PATCH /composite/sobjects``: every record carries its ``id``."""
    all_or_none, records = _collection_body(req)

    def one(index: int) -> dict[str, Any]:
        record = records[index]
        sobject = _record_type(record)
        if sobject is None:
            raise RecordError.one("INVALID_TYPE", "Must send a concrete entity type.")
        data = {k: v for k, v in record.items() if k != "attributes"}
        record_id = next((data.pop(k) for k in list(data) if k.lower() == "id"), None)
        if not record_id:
            raise RecordError.one("MISSING_ARGUMENT", "Id not specified in an update call", [])
        canonical = normalize_id(str(record_id))
        if canonical is None:
            raise _with_id(RecordError.one("MALFORMED_ID", f"malformed id {record_id}", []), None)
        try:
            org.engine.update(sobject, canonical, data, user_id=req.session.user_id)
        except RecordError as error:
            raise _with_id(_cross_reference(error), canonical) from None
        return {"id": canonical, "success": True, "errors": []}

    return ApiResponse(200, _run_all(org, len(records), all_or_none, one, ids_in_failures=True))


def collection_upsert(org: Org, req: ApiRequest, sobject: str, field_name: str) -> ApiResponse:
    """``PATCH /composite/sobjects/{Type}/{ExtIdField}``: results include ``created``."""
    obj = get_sobject(sobject)
    if obj is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    try:
        fdef = org.engine.external_id_field(obj, field_name)
    except RecordError as error:
        raise error.to_api_error() from None
    all_or_none, records = _collection_body(req)

    def one(index: int) -> dict[str, Any]:
        record = records[index]
        declared = _record_type(record)
        if declared is None or declared.lower() != obj.name.lower():
            raise RecordError.one("INVALID_TYPE", "Must send a concrete entity type.")
        data = {k: v for k, v in record.items() if k != "attributes"}
        value = next((data.pop(k) for k in list(data) if k.lower() == fdef.name.lower()), None)
        if value is None or value == "":
            raise RecordError.one("MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
        try:
            outcome = org.engine.upsert(
                obj.name, fdef.name, str(value), data, user_id=req.session.user_id
            )
        except MultipleMatches as multiple:
            raise RecordError.one(
                "DUPLICATE_EXTERNAL_ID",
                f"{fdef.name}: more than one record found for external id field: "
                f"[{', '.join(multiple.ids)}]",
                [fdef.name],
            ) from None
        return {
            "id": outcome.record_id,
            "success": True,
            "errors": [],
            "created": outcome.created,
        }

    return ApiResponse(200, _run_all(org, len(records), all_or_none, one, ids_in_failures=False))


def collection_delete(org: Org, req: ApiRequest) -> ApiResponse:
    """``DELETE /composite/sobjects?ids=a,b&allOrNone=false``."""
    ids = [i for i in req.query.get("ids", "").split(",") if i]
    if not ids:
        raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > MAX_COLLECTION_RECORDS:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = req.query.get("allOrNone", "false").lower() == "true"

    def one(index: int) -> dict[str, Any]:
        raw = ids[index]
        record_id = normalize_id(raw)
        if record_id is None:
            raise _with_id(RecordError.one("MALFORMED_ID", f"malformed id {raw}", []), raw)
        sobject = PREFIX_TO_SOBJECT.get(key_prefix(record_id))
        if sobject is None or get_sobject(sobject) is None:
            raise _with_id(
                RecordError.one("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []),
                record_id,
            )
        try:
            org.engine.delete(sobject, record_id, user_id=req.session.user_id)
        except RecordError as error:
            raise _with_id(_cross_reference(error), record_id) from None
        return {"id": record_id, "success": True, "errors": []}

    return ApiResponse(200, _run_all(org, len(ids), all_or_none, one, ids_in_failures=True))


def collection_get(org: Org, req: ApiRequest, sobject: str) -> ApiResponse:
    """``GET /composite/sobjects/{Type}?ids=&fields=`` (or POST with a JSON body)."""
    obj = get_sobject(sobject)
    if obj is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if req.method == "POST":
        body = req.json()
        ids = [str(i) for i in body.get("ids", [])] if isinstance(body, dict) else []
        fields = ",".join(str(f) for f in body.get("fields", [])) if isinstance(body, dict) else ""
    else:
        ids = [i for i in req.query.get("ids", "").split(",") if i]
        fields = req.query.get("fields", "")
    if not fields:
        raise ApiError(400, "MISSING_ARGUMENT", "fields parameter is required")
    if not ids:
        raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > MAX_COLLECTION_GET_IDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", "too many ids: at most 2000 per request")
    records: list[dict[str, Any] | None] = []
    for raw in ids:
        record_id = normalize_id(raw)
        if record_id is None:
            raise ApiError(400, "MALFORMED_ID", f"malformed id {raw}")
        try:
            records.append(render_record(org, obj, record_id, fields, req.version))
        except ApiError as error:
            if error.status != 404:
                raise
            records.append(None)
    return ApiResponse(200, records)


# -- Composite -----------------------------------------------------------------------------------


def _resolve_path(value: Any, path: str) -> Any:
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = part
        if key:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(key)
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(index)
            value = value[int(index)]
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``@{ref.path}`` in every string of ``value``; KeyError names a bad reference."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            ref, path = match.group(1), match.group(2)
            if ref not in results:
                raise KeyError(f"{ref}{path}")
            try:
                return str(_resolve_path(results[ref], path))
            except KeyError:
                raise KeyError(f"{ref}{path}") from None

        return _REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


def _subrequest(
    req: ApiRequest, method: str, url: str, body: Any, headers: dict[str, str]
) -> ApiRequest:
    """An ApiRequest for a subrequest URL such as ``/services/data/v59.0/sobjects/Task``."""
    parts = urlsplit(url)
    path = parts.path
    if path.startswith("/services/data/"):
        path = path[len("/services/data/") :]
    path = path.lstrip("/")
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments or not re.fullmatch(r"v\d+\.\d", segments[0]):
        raise ApiError(400, "INVALID_API_INPUT", f"Invalid URL: {url}")
    return ApiRequest(
        method=method.upper(),
        version=segments[0][1:],
        segments=tuple(segments[1:]),
        query=dict(parse_qsl(parts.query)),
        headers={k.lower(): v for k, v in headers.items()},
        body=b"" if body is None else json.dumps(body).encode(),
        session=req.session,
    )


def _call(org: Org, dispatch: Dispatch, sub: ApiRequest) -> ApiResponse:
    try:
        return dispatch(org, sub)
    except ApiError as error:
        return ApiResponse.error(error)


def composite(org: Org, req: ApiRequest, dispatch: Dispatch) -> ApiResponse:
    """``POST /composite``."""
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must have compositeRequest")
    subrequests: list[Any] = body["compositeRequest"]
    if len(subrequests) > MAX_SUBREQUESTS:
        raise ApiError(
            400,
            "LIMIT_EXCEEDED",
            f"Composite request cannot contain more than {MAX_SUBREQUESTS} subrequests",
        )
    queries = 0
    references: set[str] = set()
    for sub in subrequests:
        if not isinstance(sub, dict) or not all(k in sub for k in ("method", "url", "referenceId")):
            raise ApiError(
                400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId"
            )
        ref = str(sub["referenceId"])
        if ref in references:
            raise ApiError(400, "INVALID_API_INPUT", f"Duplicate referenceId: {ref}")
        references.add(ref)
        url = str(sub["url"])
        if "/query" in url or "/queryAll" in url or "/composite/sobjects" in url:
            queries += 1
    if queries > MAX_COMPOSITE_QUERIES:
        raise ApiError(
            400,
            "LIMIT_EXCEEDED",
            f"Composite request cannot contain more than {MAX_COMPOSITE_QUERIES} query or "
            "collection subrequests",
        )
    all_or_none = bool(body.get("allOrNone", False))
    outputs: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    failed_at: int | None = None
    try:
        with org.store.transaction():
            for index, sub in enumerate(subrequests):
                ref = str(sub["referenceId"])
                try:
                    url = _substitute(str(sub["url"]), results)
                    payload = _substitute(sub.get("body"), results)
                except KeyError as missing:
                    response = ApiResponse.error(
                        ApiError(
                            400,
                            "PROCESSING_HALTED",
                            f"Invalid reference specified. No value for {missing.args[0]} found "
                            f"in {ref}. Provided referenceId ('{ref}') must be the id of a prior "
                            "subrequest that succeeded.",
                        )
                    )
                else:
                    try:
                        sub_req = _subrequest(
                            req, str(sub["method"]), url, payload, sub.get("httpHeaders") or {}
                        )
                    except ApiError as error:
                        response = ApiResponse.error(error)
                    else:
                        response = _call(org, dispatch, sub_req)
                output: dict[str, Any] = {
                    "body": None if response.empty else response.body,
                    "httpHeaders": {},
                    "httpStatusCode": response.status,
                    "referenceId": ref,
                }
                if response.status == 201 and isinstance(response.body, dict):
                    record_id = response.body.get("id")
                    output["httpHeaders"] = {"Location": f"{url.rstrip('/')}/{record_id}"}
                outputs.append(output)
                if response.status < 300 and not response.empty:
                    results[ref] = response.body
                if response.status >= 400 and all_or_none:
                    failed_at = index
                    _abort()
    except _Rollback:
        halted = [{"errorCode": "PROCESSING_HALTED", "message": _HALTED}]
        final = []
        for index, sub in enumerate(subrequests):
            if index == failed_at:
                final.append(outputs[index])
            else:
                final.append(
                    {
                        "body": halted,
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": str(sub["referenceId"]),
                    }
                )
        outputs = final
    return ApiResponse(200, {"compositeResponse": outputs})


def composite_batch(org: Org, req: ApiRequest, dispatch: Dispatch) -> ApiResponse:
    """``POST /composite/batch``."""
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("batchRequests"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must have batchRequests")
    batch: list[Any] = body["batchRequests"]
    if len(batch) > MAX_SUBREQUESTS:
        raise ApiError(
            400, "LIMIT_EXCEEDED", f"A batch cannot contain more than {MAX_SUBREQUESTS} subrequests"
        )
    halt = bool(body.get("haltOnError", False))
    results: list[dict[str, Any]] = []
    halted = False
    for sub in batch:
        if halted:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {
                            "errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request",
                        }
                    ],
                }
            )
            continue
        if not isinstance(sub, dict) or "method" not in sub or "url" not in sub:
            raise ApiError(400, "JSON_PARSER_ERROR", "Each batch request needs method and url")
        url = str(sub["url"])
        if not url.startswith("/"):
            url = "/services/data/" + url
        try:
            sub_req = _subrequest(req, str(sub["method"]), url, sub.get("richInput"), {})
        except ApiError as error:
            response = ApiResponse.error(error)
        else:
            response = _call(org, dispatch, sub_req)
        results.append(
            {"statusCode": response.status, "result": None if response.empty else response.body}
        )
        if response.status >= 400 and halt:
            halted = True
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return ApiResponse(200, {"hasErrors": has_errors, "results": results})
