"""Request context, replies and endpoint declarations shared by the API modules.

Handlers are plain synchronous functions ``(account, ctx) -> Reply``: the store answers in
microseconds, so they run on the event loop; the ASGI wrapper in :mod:`sandbox.hubspot.app`
adds authentication, rate limiting, call counting and error bodies around them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request

from sandbox.hubspot.auth import Caller
from sandbox.hubspot.errors import HubSpotError, validation_error
from sandbox.hubspot.schema import ObjectTypeDef, resolve_object_type

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account

JSON_TYPE = "application/json;charset=utf-8"
PARTIAL_FAULT_KEY = "sandbox.partial_fault"  # set in the ASGI scope by an injected 207 fault


@dataclass
class Reply:
    """What a handler answers: a status, a JSON body (``None`` for 204) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def encode_json(body: Any) -> bytes:
    """Compact UTF-8 JSON (HubSpot does not escape non-ASCII)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def now_iso() -> str:
    """Wall-clock time for batch ``startedAt``/``completedAt``."""
    moment = dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Ctx:
    """One request as a handler sees it."""

    def __init__(
        self,
        request: Request,
        body: bytes,
        caller: Caller | None,
        correlation: str,
    ) -> None:
        self.request = request
        self.raw_body = body
        self.caller = caller
        self.correlation = correlation

    @property
    def partial_fault(self) -> bool:
        """True when an injected fault asks this batch request to fail some of its inputs."""
        return bool(self.request.scope.get(PARTIAL_FAULT_KEY))

    @property
    def base_url(self) -> str:
        """Scheme, host and port the client used (for ``paging.next.link``)."""
        return str(self.request.base_url).rstrip("/")

    def path(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])

    def object_type(self, name: str = "object_type") -> ObjectTypeDef:
        """The object type named in the path; 400 like HubSpot for unknown ones."""
        raw = self.path(name)
        definition = resolve_object_type(raw)
        if definition is None:
            raise validation_error(f"Unable to infer object type from: {raw}")
        return definition

    def query(self, name: str) -> str | None:
        """A single query parameter."""
        return self.request.query_params.get(name)

    def query_list(self, name: str) -> list[str] | None:
        """A list parameter given as repeated keys and/or comma-separated values (facts B2)."""
        raw = self.request.query_params.getlist(name)
        if not raw:
            return None
        return [item.strip() for value in raw for item in value.split(",") if item.strip()]

    def query_bool(self, name: str, default: bool) -> bool:
        """A boolean parameter; ``True``/``true``/``TRUE`` alike (the library sends ``True``)."""
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        lowered = raw.lower()
        if lowered not in ("true", "false"):
            raise validation_error(f"Invalid boolean for {name}: {raw}")
        return lowered == "true"

    def query_int(self, name: str, default: int, *, maximum: int) -> int:
        """An integer parameter between 1 and ``maximum``; 400 otherwise."""
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise validation_error(f"{name} must be an integer; got {raw!r}.") from None
        if value < 1 or value > maximum:
            raise validation_error(
                f"{name} must be between 1 and {maximum}; got {value}.",
                context={name: [raw]},
            )
        return value

    def json(self) -> Any:
        """The JSON body; 400 ``VALIDATION_ERROR`` when it is not JSON."""
        if not self.raw_body:
            raise validation_error("Invalid input JSON: the request body is empty.")
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise validation_error(f"Invalid input JSON on line 1: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        body = self.json()
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object.")
        return body


def encode_cursor(next_id: int) -> str:
    """Opaque ``after`` for list endpoints (connectors must not parse it)."""
    return base64.urlsafe_b64encode(str(next_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """Inverse of :func:`encode_cursor`; 400 for anything this emulator did not issue."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode()).decode()
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise validation_error(f"Invalid paging cursor after={cursor!r}.") from None


AuthMode = Literal["bearer", "oauth", "hapikey", "none"]
LimitMode = Literal["standard", "search", "none"]
Handler = Callable[["Account", Ctx], Reply]


@dataclass(frozen=True)
class Endpoint:
    """One API route: method, Starlette path pattern, handler and how it is guarded."""

    method: str
    path: str
    handler: Handler
    kind: str  # CallLog key
    auth: AuthMode = "bearer"
    limits: LimitMode = "standard"


def batch_inputs(body: dict[str, Any], *, maximum: int = 100) -> list[Any]:
    """``inputs`` of a batch request; 400 when missing or longer than ``maximum`` (facts B2)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation_error("Invalid input JSON: inputs must be an array.")
    if len(inputs) > maximum:
        raise validation_error(
            f"Too many inputs: {len(inputs)}. The maximum batch size is {maximum}.",
            context={"inputs": [str(len(inputs))]},
        )
    return inputs


def batch_reply(
    results: list[Any],
    errors: list[dict[str, Any]],
    *,
    ok_status: int,
    started: str,
) -> Reply:
    """Batch response: ``ok_status`` when all inputs succeeded, 207 with errors otherwise."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Reply(207, body)
    return Reply(ok_status, body)


def per_record_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """One entry of a batch response's ``errors``."""
    return {"status": "error", "category": category, "message": message, "context": context}


def require(condition: bool, message: str) -> None:
    """400 ``VALIDATION_ERROR`` unless ``condition``."""
    if not condition:
        raise validation_error(message)


__all__ = [
    "JSON_TYPE",
    "PARTIAL_FAULT_KEY",
    "Ctx",
    "Endpoint",
    "HubSpotError",
    "Reply",
    "batch_inputs",
    "batch_reply",
    "decode_cursor",
    "encode_cursor",
    "encode_json",
    "now_iso",
    "per_record_error",
    "require",
]
