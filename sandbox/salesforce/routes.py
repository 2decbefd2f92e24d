"""Which handler serves ``METHOD /services/data/vXX.X/<segments>``, and under which call kind.

The kind is known before the request is authenticated or faulted, so the call log counts
every request the emulator received, whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.salesforce import composite, rest
from sandbox.salesforce.errors import ApiError, not_found
from sandbox.salesforce.org import Org
from sandbox.salesforce.wire import ApiRequest, ApiResponse

Handler = Callable[[Org, ApiRequest], ApiResponse]


@dataclass(frozen=True)
class Route:
    """A matched resource: the call kind to log and the handler per allowed method."""

    kind: str
    methods: dict[str, Handler]

    def handler(self, method: str) -> Handler:
        """The handler for ``method``; 405 METHOD_NOT_ALLOWED otherwise."""
        found = self.methods.get(method)
        if found is None:
            allowed = ",".join(sorted(self.methods))
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
            )
        return found


def _unknown(org: Org, req: ApiRequest) -> ApiResponse:
    raise not_found()


UNKNOWN = Route("unknown", dict.fromkeys(("GET", "POST", "PATCH", "PUT", "DELETE"), _unknown))


def route(method: str, segments: tuple[str, ...]) -> Route:
    """Match the path segments after the version (trailing slashes already dropped)."""
    match segments:
        case ():
            return Route("resources", {"GET": rest.resources})
        case ("limits",):
            return Route("limits", {"GET": rest.limits})
        case ("query",) | ("queryAll",):
            deleted = segments[0] == "queryAll"
            return Route("query", {"GET": lambda o, r: rest.query(o, r, include_deleted=deleted)})
        case ("query" | "queryAll", locator):
            return Route("query_more", {"GET": lambda o, r: rest.query_more(o, r, locator)})
        case ("sobjects",):
            return Route("describe_global", {"GET": rest.describe_global})
        case ("sobjects", sobject):
            return Route(
                "sobject_create" if method == "POST" else "sobject_info",
                {
                    "GET": lambda o, r: rest.sobject_info(o, r, sobject),
                    "POST": lambda o, r: rest.create_record(o, r, sobject),
                },
            )
        case ("sobjects", sobject, "describe"):
            return Route("describe", {"GET": lambda o, r: rest.describe(o, r, sobject)})
        case ("sobjects", sobject, "updated"):
            return Route("updated", {"GET": lambda o, r: rest.updated(o, r, sobject)})
        case ("sobjects", sobject, "deleted"):
            return Route("deleted", {"GET": lambda o, r: rest.deleted(o, r, sobject)})
        case ("sobjects", sobject, record):
            kinds = {"GET": "sobject_get", "PATCH": "sobject_update", "DELETE": "sobject_delete"}
            return Route(
                kinds.get(method, "sobject_get"),
                {
                    "GET": lambda o, r: rest.get_record(o, r, sobject, record),
                    "PATCH": lambda o, r: rest.update_record(o, r, sobject, record),
                    "DELETE": lambda o, r: rest.delete_record(o, r, sobject, record),
                },
            )
        case ("sobjects", sobject, field_name, value):
            kinds = {
                "GET": "sobject_get_by_external_id",
                "PATCH": "sobject_upsert",
                "DELETE": "sobject_delete",
            }
            return Route(
                kinds.get(method, "sobject_upsert"),
                {
                    "GET": lambda o, r: rest.get_by_external_id(o, r, sobject, field_name, value),
                    "PATCH": lambda o, r: rest.upsert_record(o, r, sobject, field_name, value),
                    "DELETE": lambda o, r: rest.delete_by_external_id(
                        o, r, sobject, field_name, value
                    ),
                },
            )
        case ("composite",):
            return Route("composite", {"POST": lambda o, r: composite.composite(o, r, dispatch)})
        case ("composite", "batch"):
            return Route(
                "composite_batch",
                {"POST": lambda o, r: composite.composite_batch(o, r, dispatch)},
            )
        case ("composite", "sobjects"):
            return Route(
                "composite_sobjects",
                {
                    "POST": composite.collection_create,
                    "PATCH": composite.collection_update,
                    "DELETE": composite.collection_delete,
                },
            )
        case ("composite", "sobjects", sobject):
            return Route(
                "composite_sobjects",
                {
                    "GET": lambda o, r: composite.collection_get(o, r, sobject),
                    "POST": lambda o, r: composite.collection_get(o, r, sobject),
                },
            )
        case ("composite", "sobjects", sobject, field_name):
            return Route(
                "composite_sobjects",
                {"PATCH": lambda o, r: composite.collection_upsert(o, r, sobject, field_name)},
            )
        case ("jobs", "query"):
            return Route(
                "bulk_create" if method == "POST" else "bulk_list",
                {
                    "POST": lambda o, r: ApiResponse(
                        200,
                        o.bulk.create(r.json(), user_id=r.session.user_id, api_version=r.version),
                    ),
                    "GET": lambda o, r: ApiResponse(200, o.bulk.list()),
                },
            )
        case ("jobs", "query", job_id):
            kinds = {"GET": "bulk_poll", "PATCH": "bulk_abort", "DELETE": "bulk_delete"}
            return Route(
                kinds.get(method, "bulk_poll"),
                {
                    "GET": lambda o, r: ApiResponse(200, o.bulk.get(job_id)),
                    "PATCH": lambda o, r: ApiResponse(200, o.bulk.abort(job_id, r.json())),
                    "DELETE": lambda o, r: _bulk_delete(o, job_id),
                },
            )
        case ("jobs", "query", job_id, "results"):
            return Route("bulk_results", {"GET": lambda o, r: _bulk_results(o, r, job_id)})
    return UNKNOWN


def _bulk_delete(org: Org, job_id: str) -> ApiResponse:
    org.bulk.delete(job_id)
    return ApiResponse.no_content()


def _bulk_results(org: Org, req: ApiRequest, job_id: str) -> ApiResponse:
    page = org.bulk.results(
        job_id,
        api_version=req.version,
        locator=req.query.get("locator"),
        max_records=req.query.get("maxRecords"),
    )
    return ApiResponse(
        200,
        headers={
            "Sforce-NumberOfRecords": str(page.number_of_records),
            "Sforce-Locator": page.locator,
        },
        stream=page.chunks,
        media_type="text/csv",
    )


def dispatch(org: Org, req: ApiRequest) -> ApiResponse:
    """Serve one (sub)request; raises :class:`ApiError` for error answers."""
    return route(req.method, req.segments).handler(req.method)(org, req)
