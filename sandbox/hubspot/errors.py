"""HubSpot error bodies (facts B1, B2, B8) and the exception handlers raise to produce them."""

from __future__ import annotations

import json
import uuid
from typing import Any


def correlation_id() -> str:
    """A fresh correlation id (HubSpot uses UUIDs)."""
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """Raised inside a handler; becomes ``{"status": "error", "message", "category", ...}``."""

    def __init__(
        self,
        status_code: int,
        category: str,
        message: str,
        *,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.category = category
        self.message = message
        self.context = context
        self.sub_category = sub_category
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, correlation: str) -> dict[str, Any]:
        """The JSON body HubSpot would send."""
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation,
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def validation_error(message: str, **kwargs: Any) -> HubSpotError:
    """400 ``VALIDATION_ERROR``."""
    return HubSpotError(400, "VALIDATION_ERROR", message, **kwargs)


def not_found(object_id: str) -> HubSpotError:
    """404 ``OBJECT_NOT_FOUND`` exactly as the objects API words it (facts B2)."""
    return HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [object_id]},
    )


def resource_not_found(message: str = "Resource not found") -> HubSpotError:
    """404 for unknown pipelines, owners, templates, ..."""
    return HubSpotError(404, "OBJECT_NOT_FOUND", message)


def property_errors(problems: list[dict[str, Any]]) -> HubSpotError:
    """400 for invalid property values, with HubSpot's JSON-in-message list.

    Each problem: ``{"name", "error", "message"}`` with ``error`` such as
    ``PROPERTY_DOESNT_EXIST``, ``INVALID_OPTION``, ``READ_ONLY_VALUE``, ``REQUIRED``.
    """
    listed = [
        {
            "isValid": False,
            "message": problem["message"],
            "error": problem["error"],
            "name": problem["name"],
            "localizedErrorMessage": problem["message"],
        }
        for problem in problems
    ]
    message = "Property values were not valid: " + json.dumps(listed, separators=(",", ":"))
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        message,
        errors=[
            {
                "message": problem["message"],
                "code": problem["error"],
                "context": {"propertyName": [problem["name"]]},
            }
            for problem in problems
        ],
    )


def invalid_authentication() -> HubSpotError:
    """401 for a missing or unknown token (facts B1)."""
    return HubSpotError(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
        "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )


def expired_authentication(expired_ago_seconds: int, expire_time_iso: str) -> HubSpotError:
    """401 for an expired OAuth access token, with the ``context`` HubSpot adds (facts B1)."""
    return HubSpotError(
        401,
        "EXPIRED_AUTHENTICATION",
        f"The OAuth token used to make this call expired {expired_ago_seconds} second(s) ago.",
        context={"expire time": [expire_time_iso]},
    )
