"""Salesforce error shapes.

REST resources answer errors as a JSON **array** ``[{"message", "errorCode", "fields"?}]``
(facts A5); sObject Collections report per-record errors with ``statusCode`` instead of
``errorCode`` (facts A8). :class:`ApiError` is the former, :class:`RecordError` the latter's
source: the record engine raises RecordError and each resource renders it its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ErrorItem:
    """One Salesforce error: a code, a message and the fields it concerns."""

    code: str
    message: str
    fields: list[str] | None = None

    def rest(self) -> dict[str, Any]:
        """The REST form: ``{"message", "errorCode", "fields"?}``."""
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = list(self.fields)
        return body

    def save_result(self) -> dict[str, Any]:
        """The SaveResult form used by sObject Collections: ``statusCode`` and ``fields``."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields or [])}


class ApiError(Exception):
    """An HTTP error answer with a Salesforce error array body."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.items = [ErrorItem(code, message, fields)]

    @classmethod
    def of(cls, status: int, items: list[ErrorItem]) -> ApiError:
        """An error answer carrying several items."""
        error = cls(status, items[0].code, items[0].message, items[0].fields)
        error.items = list(items)
        return error

    def body(self) -> list[dict[str, Any]]:
        """The JSON array body."""
        return [item.rest() for item in self.items]


@dataclass
class RecordError(Exception):
    """A record failed validation or saving; ``status`` is the single-record HTTP status."""

    items: list[ErrorItem] = field(default_factory=list)
    status: int = 400
    record_id: str | None = None  # which record, for SaveResults of updates and deletes

    @classmethod
    def one(
        cls, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> RecordError:
        """A record error with a single item."""
        return cls([ErrorItem(code, message, fields)], status)

    def to_api_error(self) -> ApiError:
        """The same failure as an HTTP error answer (single-record resources)."""
        return ApiError.of(self.status, self.items)


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    """404 NOT_FOUND, the answer for unknown resources and ids."""
    return ApiError(404, "NOT_FOUND", message)
