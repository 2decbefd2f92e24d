"""Framework-free request/response values for the REST handlers.

The ASGI edge (``app.py``) turns an HTTP request into an :class:`ApiRequest`; Composite
turns each subrequest into one too, so every handler serves both paths the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce.auth import Session
from sandbox.salesforce.errors import ApiError

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class ApiRequest:
    """One REST call under ``/services/data/vXX.X/``."""

    method: str
    version: str  # "59.0"
    segments: tuple[str, ...]  # percent-decoded path segments after the version
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    session: Session

    def json(self) -> Any:
        """The JSON body; 400 JSON_PARSER_ERROR if it is not JSON."""
        if not self.body.strip():
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is empty")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {error}") from None

    @property
    def path(self) -> str:
        """The resource path as a client would write it after the version."""
        return "/".join(self.segments)


@dataclass
class ApiResponse:
    """A handler's answer: a JSON body, no body (``body is None`` with ``empty``), or a stream."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None
    media_type: str = JSON_TYPE
    empty: bool = False

    @classmethod
    def no_content(cls) -> ApiResponse:
        """204 without a body."""
        return cls(204, empty=True)

    @classmethod
    def error(cls, error: ApiError) -> ApiResponse:
        """The Salesforce error array answer."""
        return cls(error.status, error.body())


class ApiUsage:
    """The org's daily API request counter (``Sforce-Limit-Info``, ``/limits``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def consume(self) -> bool:
        """Count one request; ``False`` (and not counted) when the allocation is spent."""
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value."""
        with self._lock:
            return f"api-usage={self.used}/{self.limit}"

    def set_limit(self, limit: int) -> None:
        """Change the allocation (used stays)."""
        with self._lock:
            self.limit = limit

    def reset(self) -> None:
        """Start a new day."""
        with self._lock:
            self.used = 0
